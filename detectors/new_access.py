"""``new_access``: the first touch of a data class, resource or source address, after the actor's warm-up.

New things happen in normal work, so a first touch alone is low severity;
it weighs more when the class is high-sensitivity (most when the actor's
peers never touch it either), when the peers never touch the thing, when
the address is outside the private networks, and when a lot was read with it.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterator, Sequence
from typing import Annotated, Literal

from pydantic import Field

from detectors import wording
from detectors.base import Detector, DetectorSettings, Finding, Period
from models.event import ActorKind

What = Literal["data_class", "resource", "source_ip"]
_LABEL = {"data_class": "data class", "resource": "resource", "source_ip": "address"}


class NewAccessSettings(DetectorSettings):
    what: list[What] = ["data_class", "resource", "source_ip"]
    min_records: Annotated[int, Field(ge=0)] = 1
    severity_scores: list[float] = Field(default=[3.0, 5.0, 7.0], min_length=3, max_length=3)  # as in the base


def is_external(address: str, internal_networks: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    """Outside the organisation's own networks (configured: Python's is_private also counts
    documentation and reserved ranges as private, which an attacker's address may well be in)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False  # not an address (a hostname, a placeholder): no claim either way
    return not any(ip in network for network in internal_networks)


class NewAccess(Detector[NewAccessSettings]):
    name = "new_access"
    title = "first-time access"
    Settings = NewAccessSettings

    def detect(self, period: Period) -> Iterator[Finding]:
        settings = self.settings
        wanted = set(settings.what)
        for window in period.windows:
            items = [(what, value, eid) for (what, value), eid in window.new_items.items() if what in wanted]
            # in order of first appearance; what one event brought is in set order, which differs from
            # process to process (string hashing): sorted, so a restarted process writes the same alert
            first = {eid: position for position, (_, _, eid) in reversed(list(enumerate(items)))}
            items.sort(key=lambda item: (first[item[2]], item[0], item[1]))
            if not items or window.records < settings.min_records:
                continue
            peer = period.profiles.peer(window.actor)
            score, reasons = 0.0, []
            for what, value, _ in items:
                weight = 1.0
                peers_know = what != "source_ip" and peer is not None and peer.knows(what, value)
                if what == "data_class" and period.classifier.is_high(value):
                    # sensitive data the actor's colleagues read in their work is part of the job: noted, not paged
                    weight += 1.0 if peers_know else 2.0
                if what != "source_ip" and not peers_know:
                    weight += 1.0  # nobody in the peer group touches it either
                    if window.actor.kind is ActorKind.PARTNER:
                        weight += 1.0  # outside what the partner company's agents ever do: its contract
                if what == "source_ip" and is_external(value, period.organisation.internal_networks):
                    weight += 1.0 + (2.0 if window.actor.kind is ActorKind.SERVICE else 0.0)
                score = max(score, weight)
                reasons.append(f"{_LABEL[what]} {value}")
            score += 0.5 * math.log2(len(items)) + (1.0 if window.records >= 1000 else 0.0)
            shown = ", ".join(reasons[:4]) + (f" and {len(reasons) - 4} more" if len(reasons) > 4 else "")
            summary = (
                f"{wording.who(window.actor).capitalize()} touched for the first time {shown} "
                f"{wording.span(window.start, window.end, period.clock.zone)}, reading "
                f"{wording.counted(window.records, 'record')}."
            )
            evidence = {
                "new": [{"what": what, "value": value, "first_event_id": eid} for what, value, eid in items[:50]],
                "records": window.records,
                "events": window.events,
                "records_by_class": dict(sorted(window.class_records.items())),
            }
            yield self.finding(window, score, summary, evidence)
