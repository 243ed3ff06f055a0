"""``off_hours``: activity in an hour the actor does not usually work, above all outside business hours.

"Usual" is learned per actor from its rhythm over the week (the same hour,
the same hour on other days, the hour next to it), so a night-shift agent at
02:00 is usual and a day-shift agent at 02:00 is not.  An actor without its
own history is judged on its peer group's rhythm.

How loud such an hour is follows how rare it is, whether the office was
closed, and how much was done in it: the larger of how many times
``min_events`` its accesses were and how many times ``min_records`` its
records were, sensitive records weighing more.  The count of accesses adds
at most ``max_events_score``: a crowd of small accesses at 02:00 says an
account is in use when it should not be, not that data was taken, so only
the records read (or their sensitivity) make it critical.  Outside business
hours, a few accesses that read a great deal make an off-hours finding
however few they are (an evening export of 185,000 records in three
accesses); inside them, an odd hour's few big accesses are left to the
volume rules (a sparse worker's one report at 09:00 is not news by its hour),
except a service account's, which keeps no office hours.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Annotated

from pydantic import Field

from detectors import wording
from detectors.base import Detector, DetectorSettings, Finding, Period
from models.event import ActorKind

_SERVICE = ActorKind.SERVICE


class OffHoursSettings(DetectorSettings):
    # an unusual hour is judged once it holds this many accesses, or outside business hours this many records read
    # (however few the accesses)
    min_events: Annotated[int, Field(ge=1)] = 15
    min_records: Annotated[int, Field(ge=1)] = 1000
    # the most the count of accesses adds to the score (a doubling adds 1): under critical at the default scores
    max_events_score: Annotated[float, Field(ge=0)] = 2.5
    # a record of a high-sensitivity class (ID documents, financial, special) weighs this many records
    sensitive_weight: Annotated[float, Field(ge=1)] = 4.0
    # an hour whose learned activity is under this fraction of the actor's busiest hour is unusual
    max_usual_level: Annotated[float, Field(gt=0, lt=1)] = 0.1
    severity_scores: list[float] = Field(default=[2.0, 4.0, 6.0], min_length=3, max_length=3)  # as in the base


class OffHours(Detector[OffHoursSettings]):
    name = "off_hours"
    title = "unusual hours"
    Settings = OffHoursSettings

    def detect(self, period: Period) -> Iterator[Finding]:
        settings = self.settings
        outside_business = not period.in_business_hours(period.start)
        for window in period.windows:
            weighted = window.records + (settings.sensitive_weight - 1.0) * window.high_records
            # a few big accesses in an odd hour of the working day are bulk_read's to judge by their size, not news
            # by their hour (an auditor's one report at 09:00); when the office is closed, they are both.  A service
            # account keeps no office hours: its hours are its schedule's, and a big read in one it never runs is
            # news whatever the office's clock says (a nightly batch account's credentials used at noon)
            by_size = (outside_business or window.actor.kind is _SERVICE) and weighted >= settings.min_records
            if window.events < settings.min_events and not by_size:
                continue
            profile, basis = period.profiles.baseline(window.actor)
            if profile is None or not profile.rhythm.observed_at_least(5 * period.g_slow):
                continue
            share = profile.rhythm.usual_level(period.slot)
            if share >= settings.max_usual_level:
                continue
            rarity = min(2.0, math.log10(settings.max_usual_level / max(share, 1e-3)) + 0.5)
            # each gate is worth nothing more than the hour itself; every doubling past it adds 1 (half a step)
            by_events = min(max(math.log2(window.events / settings.min_events), 0.0), settings.max_events_score)
            by_records = max(math.log2(max(weighted, 1.0) / settings.min_records), 0.0)
            score = rarity + max(by_events, by_records) + (1.0 if outside_business else 0.0)
            sensitive = f" ({wording.count(window.high_records)} of high sensitivity)" if window.high_records else ""
            summary = (
                f"{wording.who(window.actor).capitalize()} made {wording.counted(window.events, 'access', 'accesses')}"
                f" to {wording.counted(window.records, 'record')}{sensitive} "
                f"{wording.span(window.start, window.end, period.clock.zone)}, "
                f"an hour in which {'they' if basis == 'own' else 'their peers'} "
                f"{'almost never' if share > 0 else 'never'} work"
                + (", outside business hours." if outside_business else ".")
            )
            evidence = {
                "events": window.events,
                "records": window.records,
                "high_records": window.high_records,
                "distinct_customers": window.distinct_customers,
                "judged_on": "records" if by_records > by_events or window.events < settings.min_events else "accesses",
                "usual_level": round(share, 4),
                "baseline_from": basis,
                "outside_business_hours": outside_business,
                "local_hour_of_week": period.slot,
            }
            yield self.finding(window, score, summary, evidence)
