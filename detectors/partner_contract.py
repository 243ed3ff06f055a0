"""``partner_contract``: a partner's agent reads data classes its company's declared contract does not cover.

The learned rules know a partner's scope only from what its agents happened to
touch during their warm-up, and ``new_access`` speaks once, at the first touch.
A contract declared in the configuration is known from the first event: every
window in which an agent of that company reads outside it is a finding, with
every record read outside it counted, the first hour as the ninetieth minute.
Judged at the window's close from its records by class, as ``WindowStats``
folds them anyway, and, for the records read outside the contract, from its
records by the classes each access touched: an access that read two classes
outside counts in each class's, once in the records outside.  Only the windows
of the agents of a company with a contract keep those (``touch_records_for``).

A partner company with no declared contract is left to the learned rules.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, ConfigDict, Field, ValidationInfo, field_validator

from detectors import wording
from detectors.base import Detector, DetectorSettings, Finding, Period
from detectors.classify import UNCLASSIFIED, first_event_key
from detectors.windows import ActorRef, WindowStats
from models.event import ActorKind
from models.settings_base import SettingsModel

_PARTNER = ActorKind.PARTNER
_SEPARATORS = re.compile(r"[\s_-]+")
_SENSITIVITIES = ("high", "medium", "low")  # the evidence's order: the most sensitive first


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


class Contract(SettingsModel):
    """What a partner company's contract covers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # the data classes its agents may read ([classification]; "unclassified": fields no class names); [] covers none
    data_classes: list[Annotated[str, AfterValidator(_a_known_class)]]


class SensitivityScores(SettingsModel):
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
    # added for every tenfold of the records read outside the contract at a sensitivity
    tenfold_score: Annotated[float, Field(ge=0)] = 1.0

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
    title = "read outside a contract"
    # a declared contract broken, not a scope learned from habit: the Compliance page counts its records on their own
    partner_scope = False
    Settings = PartnerContractSettings
    judges_during_warmup = True  # a declared contract needs no baseline

    def __init__(self, settings: PartnerContractSettings) -> None:
        super().__init__(settings)
        contracts: dict[str, Contract] = settings.contracts
        # by the company's key: the company as the contract names it, and the classes it covers
        self._covered = {
            organisation_key(name): (name, frozenset(contract.data_classes)) for name, contract in contracts.items()
        }

    def touch_records_for(self) -> Callable[[ActorRef], bool] | None:
        return self._under_contract if self._covered else None

    def _under_contract(self, actor: ActorRef) -> bool:
        return actor.kind is _PARTNER and self._contract_of(actor) is not None

    def _contract_of(self, actor: ActorRef) -> tuple[str, frozenset[str]] | None:
        return self._covered.get(organisation_key(actor.organization or ""))

    def detect(self, period: Period) -> Iterator[Finding]:
        if not self._covered:
            return
        for window in period.windows:
            actor = window.actor
            if actor.kind is not _PARTNER or not actor.organization:
                continue
            found = self._contract_of(actor)
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
        sensitivity_of = {name: classifier.sensitivity.get(name, "low") for name in outside}
        total, by_sensitivity, exact = _read_outside(window, sensitivity_of)
        scores = settings.sensitivity_scores
        # the most sensitive data read outside, and how much of it: each access's records once at each sensitivity
        score = max(
            getattr(scores, sensitivity) + settings.tenfold_score * math.log10(records)
            for sensitivity, records in by_sensitivity.items()
        )
        by_class = {}
        # the most records first, then by name: the summary's order, the same in every process
        for name, records in sorted(outside.items(), key=lambda item: (-item[1], item[0])):
            by_class[name] = {
                "records": records,
                "sensitivity": sensitivity_of[name],
                "fields": sorted(classifier.fields_of_class(name)),  # what the class holds, as classified
                "first_event_id": window.first_ids.get(first_event_key(name)),
            }
        who = wording.who(window.actor).capitalize()
        when = wording.span(window.start, window.end, period.clock.zone)
        terms = f"the contract of {company}, which covers {_covered_words(covered)}"
        if len(by_class) == 1:
            (name,) = by_class
            summary = (
                f"{who} read {wording.counted(total, 'record')} with {_class_words(name)} outside {terms}, {when}."
            )
        else:
            # each class's records are a part of the records outside, and may overlap: "of them", never a sum
            parts = [
                f"{wording.count(outside[name])}{' of them' if n == 0 else ''} with {_class_words(name)}"
                for n, name in enumerate(by_class)
            ]
            listed = f"{', '.join(parts[:-1])} and {parts[-1]}"
            floor = "" if exact else "at least "
            summary = f"{who} read {floor}{wording.counted(total, 'record')} outside {terms}, {when}: {listed}."
        evidence: dict[str, Any] = {
            "contract": {"organization": company, "data_classes": sorted(covered)},
            "outside_contract": by_class,
            # the records of the accesses that read a class outside it, each access's once (a class's records
            # count an access that read two classes outside in each)
            "records_outside_contract": total,
            # what the alert adds up over its findings' windows (``detectors.alerts``): the records outside the
            # contract, not all the hour's, in the grown alert's "150 records read outside the contract in all";
            # none where they are only a floor (the alert then tells no total)
            "records": total if exact else None,
            "records_are": "read outside the contract",
            "records_read": window.records,
            "events": window.events,
            "records_by_class": dict(sorted(window.class_records.items())),
        }
        if exact:  # else the figures above are a floor: the window kept no records by touch
            # the records outside by the sensitivity of the classes read, each access's once at each: the score's
            evidence["records_outside_contract_by_sensitivity"] = {
                sensitivity: by_sensitivity[sensitivity]
                for sensitivity in _SENSITIVITIES
                if sensitivity in by_sensitivity
            }
        return self.finding(window, score, summary, evidence)


def _read_outside(window: WindowStats, sensitivity_of: Mapping[str, str]) -> tuple[int, dict[str, int], bool]:
    """The records of the accesses that read a class of ``sensitivity_of`` (those outside the contract that count),
    each access's once; the same by sensitivity, each access's once at each sensitivity of those it read; and
    whether they are exact.

    A window that kept no records by touch (opened by a version before them, or before its company's contract was
    declared, and restored) has each class's alone: the largest is then the figure, a floor (not exact).
    """
    by_sensitivity: dict[str, int] = {}
    by_touch = window.touch_records
    if by_touch is None:
        for name, sensitivity in sensitivity_of.items():
            by_sensitivity[sensitivity] = max(by_sensitivity.get(sensitivity, 0), window.class_records[name])
        return max(by_sensitivity.values()), by_sensitivity, len(sensitivity_of) == 1
    total = 0
    for classes, records in by_touch.items():
        read = {sensitivity_of[name] for name in classes if name in sensitivity_of}
        if read:
            total += records
            for sensitivity in read:
                by_sensitivity[sensitivity] = by_sensitivity.get(sensitivity, 0) + records
    return total, by_sensitivity, True


def _class_words(name: str) -> str:
    return "fields no class names" if name == UNCLASSIFIED else f"{name.replace('_', ' ')} data"


def _covered_words(covered: frozenset[str]) -> str:
    names = [name.replace("_", " ") for name in sorted(covered)]
    if not names:
        return "no data class"
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
