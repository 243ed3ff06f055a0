"""``partner_contract``: a partner's agent reads data classes its company's declared contract does not cover.

The learned rules know a partner's scope only from what its agents happened to
touch during their warm-up, and ``new_access`` speaks once, at the first touch.
A contract declared in the configuration is known from the first event: every
window in which an agent of that company reads outside it is a finding, with
every record of each class outside it counted, the first hour as the ninetieth
minute.  Judged at the window's close from its records by class, as
``WindowStats`` folds them anyway: nothing is added to the per-event work.

A partner company with no declared contract is left to the learned rules.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterator
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from detectors import wording
from detectors.base import Detector, DetectorSettings, Finding, Period
from detectors.classify import UNCLASSIFIED, first_event_key
from detectors.windows import WindowStats
from models.event import ActorKind

_PARTNER = ActorKind.PARTNER
_SEPARATORS = re.compile(r"[\s_-]+")


def organisation_key(name: str) -> str:
    """How a contract's company is matched with an event's ``actor.organization``: case, and spaces, dashes and
    underscores between words, do not matter ("FastDelivery Ltd" is "fastdelivery-ltd"), so that a contract set by
    an environment variable alone (whose name spells "-" and " " as "_", in upper case) still finds its company."""
    return _SEPARATORS.sub(" ", name.casefold()).strip()


def _a_known_class(name: str, info: ValidationInfo) -> str:
    # the product's classification comes as validation context (``configs.loader``: the detector sections are
    # checked after it); a section built alone (tests, ``build_detectors``) is checked for its form only
    settings = (info.context or {}).get("settings")
    if settings is not None:
        classes = settings.classification.classes
        if name not in classes and name != UNCLASSIFIED:
            # listed: the classes that hold fields (a default class emptied with fields = [] is no choice)
            known = sorted([*(c for c, data_class in classes.items() if data_class.fields), UNCLASSIFIED])
            owner = next((owner for owner, data_class in classes.items() if name in data_class.fields), None)
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
            hint = f" ({name!r} is a field of {owner})" if owner else f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"a data class of [classification]{hint}: {', '.join(known)}")
    return name


class Contract(BaseModel):
    """What a partner company's contract covers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # the data classes its agents may read ([classification]; "unclassified": fields no class names); [] covers none
    data_classes: list[Annotated[str, AfterValidator(_a_known_class)]]


class SensitivityScores(BaseModel):
    """A finding's score for one record outside the contract, by the class's sensitivity."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    low: float = 2.0
    medium: float = 3.0
    high: float = 5.0


class PartnerContractSettings(DetectorSettings):
    # by company, as the events' actor.organization names it (``organisation_key``); none declared: nothing judged
    contracts: dict[str, Contract] = {}
    min_records: Annotated[int, Field(ge=1)] = 1  # records of a class outside the contract before it counts
    sensitivity_scores: SensitivityScores = SensitivityScores()
    tenfold_score: Annotated[float, Field(ge=0)] = 1.0  # added for every tenfold of a class's records

    @field_validator("contracts")
    @classmethod
    def _one_contract_a_company(cls, value: dict[str, Contract]) -> dict[str, Contract]:
        seen: dict[str, str] = {}
        for name in value:
            key = organisation_key(name)
            if not key:
                raise ValueError("company names, not an empty one")
            if key in seen:
                raise ValueError(f"one contract a company: {seen[key]!r} and {name!r} name the same one")
            seen[key] = name
        return value


class PartnerContract(Detector[PartnerContractSettings]):
    name = "partner_contract"
    Settings = PartnerContractSettings
    judges_during_warmup = True  # a declared contract needs no baseline

    def __init__(self, settings: PartnerContractSettings) -> None:
        super().__init__(settings)
        contracts: dict[str, Contract] = settings.contracts
        # by the company's key: the company as the contract names it, and the classes it covers
        self._covered = {
            organisation_key(name): (name, frozenset(contract.data_classes)) for name, contract in contracts.items()
        }

    def detect(self, period: Period) -> Iterator[Finding]:
        if not self._covered:
            return
        covered_by = self._covered
        for window in period.windows:
            actor = window.actor
            if actor.kind is not _PARTNER or not actor.organization:
                continue
            found = covered_by.get(organisation_key(actor.organization))
            if found is not None:
                finding = self._judge(period, window, *found)
                if finding is not None:
                    yield finding

    def _judge(self, period: Period, window: WindowStats, company: str, covered: frozenset[str]) -> Finding | None:
        settings = self.settings
        outside = {
            name: records
            for name, records in window.class_records.items()
            if name not in covered and records >= settings.min_records
        }
        if not outside:
            return None
        classifier = period.classifier
        scores = settings.sensitivity_scores
        by_class = {}
        score = 0.0
        # the most records first, then by name: the summary's order, the same in every process
        for name, records in sorted(outside.items(), key=lambda item: (-item[1], item[0])):
            sensitivity = classifier.sensitivity.get(name, "low")
            score = max(score, getattr(scores, sensitivity) + settings.tenfold_score * math.log10(records))
            by_class[name] = {
                "records": records,
                "sensitivity": sensitivity,
                "fields": sorted(classifier.fields_of_class(name)),  # what the class holds, as classified
                "first_event_id": window.first_ids.get(first_event_key(name)),
            }
        read = [f"{wording.counted(outside[name], 'record')} with {_class_words(name)}" for name in by_class]
        listed = read[0] if len(read) == 1 else f"{', '.join(read[:-1])} and {read[-1]}"
        summary = (
            f"{wording.who(window.actor).capitalize()} read {listed} outside the contract of {company}, "
            f"which covers {_covered_words(covered)}, {wording.span(window.start, window.end, period.clock.zone)}."
        )
        evidence = {
            "contract": {"organization": company, "data_classes": sorted(covered)},
            "outside_contract": by_class,
            # an access that touched two classes outside it counts in each: the largest class's is a floor
            "records_outside_contract": max(outside.values()),
            # what the alert adds up over its findings' windows (``detectors.alerts``): the records outside the
            # contract, not all the hour's, in the grown alert's "150 records read outside the contract in all"
            "records": max(outside.values()),
            "records_are": "read outside the contract",
            "records_read": window.records,
            "events": window.events,
            "records_by_class": dict(sorted(window.class_records.items())),
        }
        return self.finding(window, score, summary, evidence)


def _class_words(name: str) -> str:
    return "fields no class names" if name == UNCLASSIFIED else f"{name.replace('_', ' ')} data"


def _covered_words(covered: frozenset[str]) -> str:
    names = [name.replace("_", " ") for name in sorted(covered)]
    if not names:
        return "no data class"
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
