"""``off_hours``: activity in an hour the actor does not usually work, above all outside business hours.

"Usual" is learned per actor from its rhythm over the week (the same hour,
the same hour on other days, the hour next to it), so a night-shift agent at
02:00 is usual and a day-shift agent at 02:00 is not.  An actor without its
own history is judged on its peer group's rhythm.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Annotated

from pydantic import Field

from detectors import wording
from detectors.base import Detector, DetectorSettings, Finding, Period


class OffHoursSettings(DetectorSettings):
    min_events: Annotated[int, Field(ge=1)] = 15
    # an hour whose learned activity is under this fraction of the actor's busiest hour is unusual
    max_usual_level: Annotated[float, Field(gt=0, lt=1)] = 0.1
    severity_scores: list[float] = Field(default=[2.0, 4.0, 6.0], min_length=3, max_length=3)  # as in the base


class OffHours(Detector[OffHoursSettings]):
    name = "off_hours"
    Settings = OffHoursSettings

    def detect(self, period: Period) -> Iterator[Finding]:
        settings = self.settings
        outside_business = not period.in_business_hours(period.start)
        for window in period.windows:
            if window.events < settings.min_events:
                continue
            profile, basis = period.profiles.baseline(window.actor)
            if profile is None or not profile.rhythm.observed_at_least(5 * period.g_slow):
                continue
            share = profile.rhythm.usual_level(period.slot)
            if share >= settings.max_usual_level:
                continue
            rarity = min(2.0, math.log10(settings.max_usual_level / max(share, 1e-3)) + 0.5)
            volume = math.log2(window.events / settings.min_events) + (1.0 if window.records >= 100 else 0.0)
            score = rarity + volume + (1.0 if outside_business else 0.0)
            summary = (
                f"{wording.who(window.actor).capitalize()} made {wording.count(window.events)} accesses to "
                f"{wording.count(window.records)} records {wording.span(window.start, window.end, period.clock.zone)}, "
                f"an hour in which {'they' if basis == 'own' else 'their peers'} "
                f"{'almost never' if share > 0 else 'never'} work"
                + (", outside business hours." if outside_business else ".")
            )
            evidence = {
                "events": window.events,
                "records": window.records,
                "distinct_customers": window.distinct_customers,
                "usual_level": round(share, 4),
                "baseline_from": basis,
                "outside_business_hours": outside_business,
                "local_hour_of_week": period.slot,
            }
            yield self.finding(window, score, summary, evidence)
