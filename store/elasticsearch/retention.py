"""What retention deletes on Elasticsearch: whole dated indices, by ILM, and how many documents they hold.

ILM deletes an index once its policy's ``min_age`` (the ``[retention]`` days, in
whole seconds: ``mappings.policies``) has passed since the date in its name
(``parse_origination_date``: 00:00 UTC of that day, or of the month's first day).
``accesswatch purge --dry-run`` lists the indices due by then, counted, as the
embedded store's purge counts the rows it would delete.  Unlike that purge,
ILM cannot count a closed incident's days from its close (``store.retention``):
a month of incidents goes ``alerts_days`` after the month, however late they
were closed, or still open (README, Trust, says so).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from store.elasticsearch import mappings as m
from store.elasticsearch.settings import ElasticsearchSettings


@dataclass(frozen=True, slots=True)
class DueIndex:
    """An index ILM deletes (or has the right to): its family, the date in its name, its documents."""

    name: str
    family: str
    dated: date
    documents: int


def retention_of(settings: ElasticsearchSettings, family: str) -> float:
    """Seconds a family's indices are kept after their date: events and dead letters go first."""
    return settings.events_retention if family in m.DAILY else settings.alerts_retention


def dated_before(settings: ElasticsearchSettings, family: str, now: datetime) -> datetime:
    """ILM has deleted (or is about to delete) the family's indices dated at or before this moment."""
    return now.astimezone(UTC) - timedelta(seconds=int(retention_of(settings, family)))


def family_and_date(settings: ElasticsearchSettings, name: str) -> tuple[str, date] | None:
    """``(family, date)`` of one of this store's dated indices (``mappings.dated_index``), else None.

    Another deployment's indices under a longer prefix (``accesswatch-test-events-...``) are not this store's.
    """
    rest = name.removeprefix(f"{settings.prefix}-")
    family, _, stamp = rest.rpartition("-")
    if rest == name or family not in (*m.DAILY, *m.MONTHLY):
        return None
    try:
        return family, datetime.strptime(stamp, "%Y.%m.%d").date()
    except ValueError:
        return None


def due(settings: ElasticsearchSettings, rows: Iterable[Mapping[str, Any]], now: datetime) -> list[DueIndex]:
    """Of ``_cat/indices`` rows (``index``, ``docs.count``), the store's indices past retention, oldest first."""
    found = []
    for row in rows:
        dated = family_and_date(settings, str(row.get("index", "")))
        if dated is None:
            continue
        family, day = dated
        if datetime(day.year, day.month, day.day, tzinfo=UTC) <= dated_before(settings, family, now):
            found.append(DueIndex(str(row["index"]), family, day, int(row.get("docs.count") or 0)))
    return sorted(found, key=lambda index: (index.dated, index.name))
