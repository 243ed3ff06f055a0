"""``sensitive_access``: far more records of high-sensitivity classes (ID documents, financial, special) than usual."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from pydantic import Field

from detectors import wording
from detectors.base import Detector, Finding, Period
from detectors.volume import VolumeSettings, unusual_volume


class SensitiveAccessSettings(VolumeSettings):
    min_records: Annotated[int, Field(ge=0)] = 50
    min_ratio: Annotated[float, Field(ge=1)] = 8.0
    min_z: Annotated[float, Field(ge=0)] = 3.0


class SensitiveAccess(Detector[SensitiveAccessSettings]):
    name = "sensitive_access"
    title = "sensitive data read"
    Settings = SensitiveAccessSettings

    def detect(self, period: Period) -> Iterator[Finding]:
        settings = self.settings
        classifier = period.classifier
        for window in period.windows:
            if window.high_records < settings.min_records:
                continue
            found = unusual_volume(
                period,
                window,
                "high",
                window.high_records,
                settings.min_ratio,
                settings.min_z,
                settings.min_peak_ratio,
                settings.severity_scores,
            )
            if found is None:
                continue
            classes = sorted(name for name in window.class_records if classifier.is_high(name))
            summary = (
                f"{wording.who(window.actor).capitalize()} read {wording.count(window.high_records)} records with "
                f"{', '.join(c.replace('_', ' ') for c in classes)} data "
                f"{wording.span(window.start, window.end, period.clock.zone)}, "
                f"{wording.against(found)}."
            )
            evidence = {
                "high_sensitivity_records": window.high_records,
                "classes": classes,
                "baseline": round(found.expected, 1),
                "baseline_from": found.basis,
                "ratio": round(found.ratio, 2),
                "z": round(found.z, 2),
                "population_factor": round(found.population_factor, 2),
                "records_by_class": dict(sorted(window.class_records.items())),
                "records": window.records,
                "distinct_customers": window.distinct_customers,
            }
            yield self.finding(window, found.score, summary, evidence)
