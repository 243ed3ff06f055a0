"""``dormant``: an account silent for weeks comes back and reads in volume."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Annotated

from pydantic import Field

from detectors import wording
from detectors.base import Detector, DetectorSettings, Finding, Period

RETURN_SPAN = 86400.0  # how long after its first event back an account is still "returning"


class DormantSettings(DetectorSettings):
    silent_days: Annotated[float, Field(gt=0)] = 14
    min_records: Annotated[int, Field(ge=1)] = 100
    severity_scores: list[float] = Field(default=[1.0, 2.5, 4.0], min_length=3, max_length=3)  # as in the base


class Dormant(Detector[DormantSettings]):
    name = "dormant"
    title = "dormant account woken"
    partner_scope = False  # a silent account woken: not data read out of scope
    Settings = DormantSettings

    def detect(self, period: Period) -> Iterator[Finding]:
        settings = self.settings
        silent_seconds = settings.silent_days * 86400
        for window in period.windows:
            if window.records < settings.min_records:
                continue
            profile = period.profiles.actor(window.actor.id)
            if profile is None or not math.isfinite(profile.last_seen):
                continue  # never seen before: a new actor, judged by the other rules on its peers
            silence = window.first_ts - profile.last_seen
            returning = window.first_ts - profile.resumed_at <= RETURN_SPAN
            if silence < silent_seconds and returning and profile.records_since_resume < settings.min_records:
                silence = profile.silence_before  # still the return: only a few quiet reads came first
            if silence < silent_seconds:
                continue
            days = silence / 86400
            score = 2 * math.log10(window.records / settings.min_records) + days / settings.silent_days
            summary = (
                f"{wording.who(window.actor).capitalize()}, silent for {days:.0f} days, read "
                f"{wording.count(window.records)} records {wording.span(window.start, window.end, period.clock.zone)}."
            )
            evidence = {
                "silent_days": round(days, 1),
                "records": window.records,
                "distinct_customers": window.distinct_customers,
                "egress_records": window.egress_records,
                "records_by_class": dict(sorted(window.class_records.items())),
            }
            yield self.finding(window, score, summary, evidence)
