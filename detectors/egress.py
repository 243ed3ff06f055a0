"""``egress``: far more records exported, downloaded, printed or shared than usual."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from pydantic import Field

from detectors import wording
from detectors.base import Detector, Finding, Period
from detectors.volume import VolumeSettings, unusual_volume


class EgressSettings(VolumeSettings):
    min_records: Annotated[int, Field(ge=0)] = 500
    min_ratio: Annotated[float, Field(ge=1)] = 6.0
    min_z: Annotated[float, Field(ge=0)] = 3.0


class Egress(Detector[EgressSettings]):
    name = "egress"
    title = "data taken out"
    Settings = EgressSettings

    def detect(self, period: Period) -> Iterator[Finding]:
        settings = self.settings
        classifier = period.classifier
        for window in period.windows:
            if window.egress_records < settings.min_records:
                continue
            found = unusual_volume(
                period,
                window,
                "egress",
                window.egress_records,
                settings.min_ratio,
                settings.min_z,
                settings.min_peak_ratio,
                settings.severity_scores,
            )
            if found is None:
                continue
            sensitive = sorted(name for name in window.class_records if classifier.is_high(name))
            # data leaving the building with ID documents or bank details in it weighs one step more
            score = found.score + (1.0 if sensitive else 0.0)
            summary = (
                f"{wording.who(window.actor).capitalize()} "
                f"{wording.took_out(window.egress_records, window.egress_by_action)} "
                f"{wording.span(window.start, window.end, period.clock.zone)}, "
                f"{wording.against(found)}"
                + (f", including {', '.join(c.replace('_', ' ') for c in sensitive)} data." if sensitive else ".")
            )
            evidence = {
                "egress_records": window.egress_records,
                "egress_by_action": dict(sorted(window.egress_by_action.items())),
                "baseline": round(found.expected, 1),
                "baseline_from": found.basis,
                "ratio": round(found.ratio, 2),
                "z": round(found.z, 2),
                "population_factor": round(found.population_factor, 2),
                "high_sensitivity_classes": sensitive,
                "records_by_class": dict(sorted(window.class_records.items())),
                "distinct_customers": window.distinct_customers,
            }
            yield self.finding(window, score, summary, evidence)
