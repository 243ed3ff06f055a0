"""The stored alerts one batch's publishing reads, fetched in few requests and kept for the batch.

Publishing a batch's alerts reads, for each alert, its stored revision, and
the alerts of the incident it may join.  Asked one at a time that is a few
statements an alert; during a replay they run on the store writer's thread,
where each lets go of the interpreter lock and may wait out the parser's
switch interval (5 ms) to take it back.  Nothing is stored until the batch
is published, so what is read once holds for the whole batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from models.alert import Alert
from store.base import Store


class StoredAlerts:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._found: dict[str, Alert | None] = {}  # None: asked, and not stored

    def fetch(self, alert_ids: Iterable[str]) -> None:
        """Read these alerts now, in one request, if not read already."""
        missing = [alert_id for alert_id in dict.fromkeys(alert_ids) if alert_id not in self._found]
        if not missing:
            return
        self._found.update(dict.fromkeys(missing))
        self._found.update({alert.alert_id: alert for alert in self.store.get_alerts(missing)})

    def get(self, alert_id: str) -> Alert | None:
        """As ``Store.get_alert``."""
        self.fetch([alert_id])
        return self._found[alert_id]

    def of(self, alert_ids: Sequence[str]) -> list[Alert]:
        """As ``Store.get_alerts``: those stored, in its order."""
        self.fetch(alert_ids)
        found = [alert for alert_id in dict.fromkeys(alert_ids) if (alert := self._found[alert_id]) is not None]
        return sorted(found, key=Alert.listing_order)
