"""What a finding comes to, in a few plain words after the actor: 'read 17,651 records after 19 days of silence'.

A page's first line is what a person woken at night reads on a phone's lock screen, where about 160
characters show: who, what and how much.  The alert's summary tells the finding whole (its hour, its
baseline, its peers, the model's rarity), 100 to 600 characters of it; the pages quote it after the first
line.  The gist is read from the figures each detector puts in its alert's evidence, not cut out of its
sentence, and prints them as the summary does (``models.figures``), so that the first line's "11x their
usual" is the summary's.  A detector not known here, or an alert without the figures (written before a
detector kept them), gives its summary, the actor's name at its start left out: the first line cuts it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from models.alert import Alert
from models.figures import count, multiple, times, took_out

# what the isolation forest's explanation figures are, as a verb phrase (``detectors.isolation_forest``)
_FOREST_FIGURES = {
    "records": "read {} records",
    "customers": "read {} distinct customers",
    "events": "made {} accesses",
    "egress": "exported, downloaded, printed or shared {} records",
    "high": "read {} records of high-sensitivity data",
}
_NEW_ITEMS = {"data_class": "{} data", "resource": "{}", "source_ip": "address {}"}


def gist(alert: Alert) -> str:
    """The finding as a verb phrase after the actor's name, from its evidence; its summary when that fails."""
    return from_figures(alert) or _unnamed(alert)


def from_figures(alert: Alert) -> str | None:
    """The gist its detector's figures give, or None: a detector not known here, figures of another shape."""
    told = _BY_DETECTOR.get(alert.detector)
    if told is None:
        return None
    try:
        return told(alert)
    except (KeyError, TypeError, ValueError, IndexError, ZeroDivisionError, AttributeError):
        return None  # an alert written before its detector kept these figures: its summary says it


def _unnamed(alert: Alert) -> str:
    """The summary without the actor it starts with ('Employee emp-0042 (sales) read ...' -> 'read ...')."""
    summary = alert.summary.rstrip(".")
    at = summary.find(alert.actor_id, 0, 80)
    if at < 0:
        return summary
    rest = summary[at + len(alert.actor_id) :]
    # what ``detectors.wording.who`` says after the id: ' of blue-sky-travel' for a partner, then ' (role)'
    organization = f" of {alert.actor_organization}"
    rest = rest.removeprefix(organization) if alert.actor_organization else rest
    if rest.startswith(" (") and ")" in rest:
        rest = rest[rest.index(")") + 1 :]
    return rest.lstrip(" ,:") or summary


def _against(alert: Alert, value: float, baseline: Any, basis: Any = "own") -> str:
    """', 11x their usual' or ', usually none': the summary's multiple (``models.figures.multiple``), of the same
    usual.  The evidence keeps the usual to a tenth, the summary printed it whole: at x.5 it may have rounded either
    way, and the multiple is the one the summary says, or none."""
    if baseline is None:
        return ""
    expected = float(baseline)
    if expected < 0.5:
        return ", usually none"
    shown = {times(multiple(float(value), expected))}
    if expected >= 10 and abs(expected % 1 - 0.5) < 1e-6:
        shown = {times(float(value) / whole) for whole in (expected - 0.5, expected + 0.5)}
        shown = {multiple for multiple in shown if f" {multiple} " in alert.summary}
    if len(shown) != 1:
        return ""
    usual = {"peers": "their peers' usual"}.get(basis, "their usual" if str(basis).startswith("own") else "the usual")
    return f", {shown.pop()} {usual}"


def _counted(value: float, noun: str) -> str:
    return f"{count(value)} {noun if round(value) == 1 else noun + 's'}"


def _classes(names: list[str]) -> str:
    shown = [name.replace("_", " ") for name in names[:3]]
    listed = shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} and {shown[-1]}"
    return listed + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def _bulk_read(alert: Alert) -> str:
    evidence = alert.evidence
    if "limit" in evidence:
        return f"accessed {count(evidence['records'])} records, over the limit of {count(evidence['limit'])}"
    compared = _against(alert, evidence["value"], evidence["baseline"], evidence.get("baseline_from"))
    if evidence["figure"] == "distinct customers":
        return f"read {count(evidence['value'])} distinct customers{compared}"
    return f"accessed {count(evidence['records'])} records{compared}"


def _sensitive_access(alert: Alert) -> str:
    evidence = alert.evidence
    records = evidence["high_sensitivity_records"]
    compared = _against(alert, records, evidence["baseline"], evidence.get("baseline_from"))
    return f"read {count(records)} {_classes(evidence['classes'])} records{compared}"


def _egress(alert: Alert) -> str:
    evidence = alert.evidence
    records = evidence["egress_records"]
    compared = _against(alert, records, evidence["baseline"], evidence.get("baseline_from"))
    return took_out(records, evidence.get("egress_by_action") or {}) + compared


def _dormant(alert: Alert) -> str:
    evidence = alert.evidence
    return f"read {count(evidence['records'])} records after {evidence['silent_days']:.0f} days of silence"


def _denied_burst(alert: Alert) -> str:
    evidence = alert.evidence
    return (
        f"was denied {_counted(evidence['denied_in_burst'], 'time')} in {_counted(evidence['burst_minutes'], 'minute')}"
    )


def _new_access(alert: Alert) -> str:
    evidence = alert.evidence
    items = [_NEW_ITEMS.get(new["what"], "{}").format(str(new["value"]).replace("_", " ")) for new in evidence["new"]]
    shown = ", ".join(items[:2]) + (f" and {len(items) - 2} more" if len(items) > 2 else "")
    return f"touched {shown} for the first time ({_counted(evidence['records'], 'record')})"


def _off_hours(alert: Alert) -> str:
    evidence = alert.evidence
    who = "they" if evidence.get("baseline_from") == "own" else "their peers"
    never = "almost never" if float(evidence.get("usual_level") or 0) > 0 else "never"
    return f"accessed {_counted(evidence['records'], 'record')} in an hour {who} {never} work"


def _ramp(alert: Alert) -> str:
    evidence = alert.evidence
    return (
        f"read more each working day for {evidence['days']} days, {count(evidence['value'])} records on the last"
        + _against(alert, evidence["value"], evidence["baseline"], evidence.get("baseline_from"))
    )


def _isolation_forest(alert: Alert) -> str:
    evidence = alert.evidence
    span = "day" if evidence.get("scale") == "long" else "hour"
    told = f"had an unusual {span}"
    for figure in evidence.get("explanation") or ():  # the figures that made it unusual, most first
        words = _FOREST_FIGURES.get(figure["figure"])
        if words is not None:
            compared = _against(alert, figure["value"], figure["baseline"], figure.get("baseline_from"))
            return f"{told}: {words.format(count(figure['value']))}{compared}"
    return told


def _partner_contract(alert: Alert) -> str:
    evidence = alert.evidence
    return f"read {count(evidence['records_outside_contract'])} records outside their contract"


_BY_DETECTOR: dict[str, Callable[[Alert], str]] = {
    "bulk_read": _bulk_read,
    "sensitive_access": _sensitive_access,
    "egress": _egress,
    "dormant": _dormant,
    "denied_burst": _denied_burst,
    "new_access": _new_access,
    "off_hours": _off_hours,
    "ramp": _ramp,
    "isolation_forest": _isolation_forest,
    "partner_contract": _partner_contract,
}
