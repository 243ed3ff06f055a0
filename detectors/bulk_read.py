"""``bulk_read``: far more records or distinct customers than the actor's usual, or over a hard limit."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from pydantic import Field

from detectors import wording
from detectors.base import Detector, Finding, Period
from detectors.volume import VolumeSettings, unusual_volume
from models.event import ActorKind


class BulkReadSettings(VolumeSettings):
    min_records: Annotated[int, Field(ge=0)] = 200
    min_ratio: Annotated[float, Field(ge=1)] = 8.0
    min_z: Annotated[float, Field(ge=0)] = 3.0
    daily_min_records: Annotated[int, Field(ge=0)] = 500
    daily_min_ratio: Annotated[float, Field(ge=1)] = 5.0
    daily_min_z: Annotated[float, Field(ge=0)] = 2.5
    # records in one short window that alert whatever the baseline (0 = no limit), each logged customer's counted
    # once (``WindowStats.records_counted_once``); routine work that the actor's own rhythm explains is left alone
    absolute_limits: dict[ActorKind, Annotated[int, Field(ge=0)]] = {
        ActorKind.EMPLOYEE: 50_000,
        ActorKind.PARTNER: 20_000,
        ActorKind.SERVICE: 0,
    }


class BulkRead(Detector[BulkReadSettings]):
    name = "bulk_read"
    title = "large reads"
    Settings = BulkReadSettings
    scales = ("short", "long")
    judges_during_warmup = True  # the hard limit only (no baseline yet): a theft in a deployment's first week alerts

    def detect(self, period: Period) -> Iterator[Finding]:
        settings = self.settings
        short = period.scale == "short"
        min_records = settings.min_records if short else settings.daily_min_records
        min_ratio = settings.min_ratio if short else settings.daily_min_ratio
        min_z = settings.min_z if short else settings.daily_min_z
        peak = settings.min_peak_ratio
        for window in period.windows:
            if window.records < min_records:
                continue
            scores = settings.severity_scores
            by_records = unusual_volume(period, window, "records", window.records, min_ratio, min_z, peak, scores)
            by_customers = unusual_volume(
                period, window, "customers", window.distinct_customers, min_ratio, min_z, peak, scores
            )
            found = [e for e in (by_records, by_customers) if e is not None and period.system_ready]
            limit = settings.absolute_limits.get(window.actor.kind, 0) if short else 0
            # The hard limit is on how much customer data left, not how often it was handled: a list searched,
            # exported and downloaded is one list, not three, where the logged ids show the same customers again.
            # Not the distinct ids alone: they may be a sample (the contract allows it) and the window stops
            # counting them at MAX_TRACKED_CUSTOMERS, under the limits; nor the largest access: a theft cut into
            # many accesses would pass.  An access that logs no ids, or new ones, counts whole, as before.
            once = window.records_counted_once
            over_limit = bool(limit) and once >= limit
            if not found and not over_limit:
                continue
            if found:
                strongest = max(found, key=lambda e: e.score)
                what = "records" if strongest is by_records else "distinct customers"
                score = strongest.score
                done = (
                    wording.accessed(window)
                    if strongest is by_records
                    else f"read {wording.count(strongest.value)} distinct customers"
                )
                summary = (
                    f"{wording.who(window.actor).capitalize()} {done} "
                    f"{wording.span(window.start, window.end, period.clock.zone)}, "
                    f"{wording.against(strongest)}."
                )
                evidence = {
                    "figure": what,
                    "value": strongest.value,
                    "baseline": round(strongest.expected, 1),
                    "baseline_from": strongest.basis,
                    "ratio": round(strongest.ratio, 2),
                    "z": round(strongest.z, 2),
                    "population_factor": round(strongest.population_factor, 2),
                }
            else:
                expectation = period.expectation(window, "records", window.records)
                if expectation is not None and expectation.ratio < 2.0:
                    continue  # the actor's own rhythm explains it: a routine job
                score = settings.severity_scores[0]
                repeats = window.records - once
                counted = f", {wording.count(once)} with each customer counted once" if repeats else ""
                summary = (
                    f"{wording.who(window.actor).capitalize()} {wording.accessed(window)} "
                    f"{wording.span(window.start, window.end, period.clock.zone)}{counted}, over the limit of "
                    f"{wording.count(limit)} for {wording.a_kind(window.actor.kind)}."
                )
                figure = "records counted once per customer" if repeats else "records"
                evidence = {"figure": figure, "value": once, "limit": limit}
            evidence |= {
                "scale": period.scale,
                "records": window.records,
                "distinct_customers": window.distinct_customers,
                "events": window.events,
                "egress_records": window.egress_records,
                "records_by_class": dict(sorted(window.class_records.items())),
                "resources": sorted(window.resources)[:10],
            }
            yield self.finding(window, score, summary, evidence)
