"""An alert's evidence in words: why the detector thought this unusual, for a person deciding what to do."""

from __future__ import annotations

from typing import Any

from detectors import wording
from detectors.registry import DETECTORS
from models.alert import Alert

_BASIS = {
    "own": "their own usual",
    "own rhythm": "their usual for this hour of the week",
    "own weekday": "their usual for this day of the week",
    "peers": "their peers' usual",
    "employees": "employees' usual",
    "partners": "partners' agents' usual",
    "busiest service": "the busiest service account's usual",
}


def detector_title(name: str) -> str:
    """What people call a detector (``Detector.title``): "large reads", not bulk_read; one without a title (or no
    longer registered, its alerts kept) by its name, its underscores as spaces."""
    detector = DETECTORS.get(name)
    return (detector.title if detector is not None else None) or name.replace("_", " ")


NONE_USUAL = 0.5  # a usual under half of one is none: a ratio against it says nothing (``detectors.wording.compared``)


def _n(value: Any) -> str:
    return f"{value:,.0f}" if isinstance(value, int | float) else str(value)


def _none_usual(baseline: Any) -> bool:
    return isinstance(baseline, int | float) and baseline < NONE_USUAL


def explain(alert: Alert) -> list[str]:
    """A few sentences from the figures the detectors put in ``evidence``; unknown keys are left to the table."""
    e = alert.evidence
    said = []
    if "value" in e and "baseline" in e:
        figure = e.get("figure", "records")
        basis = _BASIS.get(e.get("baseline_from", ""), "the usual")
        if _none_usual(e["baseline"]):  # "against their usual of 0: 4,801 times as many" reads as nonsense
            line = f"{_n(e['value'])} {figure}, where {basis} is none"
        else:
            value, usual = e["value"], e["baseline"]
            numbers = isinstance(value, int | float) and isinstance(usual, int | float)
            line = f"{_n(value)} {figure} against {basis} of {wording.usual(usual) if numbers else _n(usual)}"
            if numbers:
                # the figure over the usual as shown, as the summary says it; the score's ratio is smoothed and
                # allows for a busy day, told below
                line += f": {wording.multiple(value, usual):,.1f} times as many"
        if e.get("z") is not None:
            line += f", {e['z']:.1f} spreads above it"
        said.append(line + ".")
        factor = e.get("population_factor")
        if factor and factor > 1.05:
            said.append(f"Everyone was busier than usual then ({factor:.1f}x); that was allowed for.")
        if e.get("baseline_from") in _KIND_BASES:
            said.append(_KIND_BASES[e["baseline_from"]])
    elif "limit" in e:
        # records are summed over accesses: a list searched, exported and downloaded counts three times
        accesses = f" in {_n(e['events'])} accesses" if isinstance(e.get("events"), int) else ""
        said.append(f"{_n(e.get('value'))} records accessed{accesses}, over the hard limit of {_n(e['limit'])}.")
    for figure in e.get("explanation") or []:  # the behaviour model: the few figures that made it unusual
        said.append(_model_figure(figure))
    if new := e.get("new"):
        firsts = ", ".join(f"{item.get('what', '').replace('_', ' ')} {item.get('value')}" for item in new[:4])
        said.append(f"First time for this actor: {firsts}" + (f" and {len(new) - 4} more." if len(new) > 4 else "."))
    if "usual_level" in e:
        said.append(_usual_hour(e))
        if e.get("judged_on") == "records":
            said.append(_judged_on_records(e, alert.actor_kind.value))
    if outside := e.get("outside_contract"):
        said.append(_outside_contract(e, outside))
    if "denied_in_burst" in e:
        said.append(
            f"{_n(e['denied_in_burst'])} refused accesses within {_n(e.get('burst_minutes'))} minutes"
            + (f" (usually {_n(e['usual_denied'])})." if e.get("usual_denied") is not None else ".")
        )
    if daily := e.get("daily_records"):  # a ramp: the run of days it added up
        days = e.get("days", len(daily))
        shown = (
            ", ".join(map(_n, daily))
            if days == len(daily)
            else f"the latest {len(daily)}: " + ", ".join(map(_n, daily))
        )
        said.append(
            f"Above their usual on {days} days running (records a day, {shown}); "
            f"the days' excesses over it add up to {e.get('cusum', 0):.1f} spreads."
        )
    if "silent_days" in e:
        said.append(f"The account had been silent for {e['silent_days']:.0f} days before this.")
    if by_class := e.get("records_by_class"):
        top = sorted(by_class.items(), key=lambda kv: -kv[1])[:4]
        said.append("Data read: " + ", ".join(f"{name} ({_n(n)})" for name, n in top) + ".")
    if e.get("egress_records"):
        said.append(
            f"{_n(e['egress_records'])} records left the system (export, download, print or share;"
            " summed over those accesses)."
        )
    if resources := e.get("resources"):
        said.append("Resources: " + ", ".join(map(str, resources[:5])) + ".")
    if documented := e.get("documented"):
        said.append(
            f"{documented.get('share', 0):.0%} of it cites a purpose ({', '.join(documented.get('purposes', [])[:3])}):"
            " possibly sanctioned work; check the reference."
        )
    if e.get("findings", 1) > 1:
        said.append(f"Seen in {e['findings']} windows of this episode.")
    return said


# why a finding was judged against everyone of its kind (``detectors.kind_baseline``)
_KIND_BASES = {
    kind: "They have no baseline of their own yet and no peer group to compare with, so they were compared with"
    f" {whom}."
    for kind, whom in (
        ("employees", "all employees"),
        ("partners", "all partners' agents"),
        ("busiest service", "the busiest service account"),
    )
}


def _judged_on_records(e: dict[str, Any], kind: str) -> str:
    """Why an hour of few accesses is an off-hours finding: what it read."""
    why = (
        "a service account keeps no office hours"
        if kind == "service" and not e.get("outside_business_hours")
        else "few accesses reading a great deal"
    )
    return f"Judged on the {_n(e.get('records'))} records read, not on the {_n(e.get('events'))} accesses ({why})."


def _outside_contract(e: dict[str, Any], outside: dict[str, Any]) -> str:
    """The partner_contract line: the records read outside the company's declared contract, each access's once, then
    each class's, of which an access that read several counts in each (so they are not to be added up)."""
    contract = e.get("contract") or {}
    classes = [(name, item) for name, item in outside.items() if isinstance(item, dict)]
    read = "; ".join(
        f"{name.replace('_', ' ')} ({item.get('sensitivity', '?')} sensitivity): {_n(item.get('records'))} records"
        for name, item in classes
    )
    total = e.get("records_outside_contract")
    if len(classes) > 1 and isinstance(total, int):
        # without records by sensitivity, the total is the largest class's (an alert raised before the total
        # counted each access once, or an hour that kept no records by touch): a floor
        floor = "" if "records_outside_contract_by_sensitivity" in e else "at least "
        read = f"{floor}{_n(total)} records, of which {read} (an access that read several classes counts in each)"
    covered = ", ".join(c.replace("_", " ") for c in contract.get("data_classes", [])) or "no data class"
    return f"Outside the contract of {contract.get('organization', 'the company')}, which covers {covered}: {read}."


def _model_figure(figure: dict[str, Any]) -> str:
    """One of the behaviour model's reasons: the value, the actor's usual, and where it stands among the peers."""
    name = str(figure.get("figure", "")).replace("_", " ")
    line = f"Unusual {name}: {_n(figure.get('value'))}"
    basis = _BASIS.get(figure.get("baseline_from") or "", "the usual")
    if _none_usual(figure.get("baseline")):
        line += f", where {basis} is none"
    elif figure.get("baseline") is not None:
        value, usual = figure.get("value"), figure["baseline"]
        if figure.get("ratio") and isinstance(value, int | float) and isinstance(usual, int | float):
            # a volume: the figure over the usual as shown, as the summary says it ('9.5x their usual of 83'); the
            # stored ratio is the score's, smoothed ((value + 1) / (usual + 1)) and after the population allowance
            line += f" against {basis} of {wording.usual(usual)} ({wording.multiple(value, usual):,.1f} times)"
        else:
            line += f" against {basis} of {_n(usual)}"
    line += _among_peers(figure)
    return line + "."


def _among_peers(figure: dict[str, Any]) -> str:
    """'; more than all 3 other peers active then', '; more than 2 of the 3 ...': counted, not a percentage of 3."""
    below, active = figure.get("peers_below"), figure.get("peers_active")
    if isinstance(below, int) and isinstance(active, int) and active:
        if active == 1:
            return "; more than the one other peer active then" if below else "; not more than the one other peer"
        if below == active:
            return f"; more than all {_n(active)} other peers active then"
        return f"; more than {_n(below)} of the {_n(active)} other peers active then"
    percentile = figure.get("peer_percentile")  # an alert saved before the count was kept
    if percentile is not None and active:
        return f"; above {percentile:.0f}% of the {_n(active)} peers active then"
    return ""


def _usual_hour(e: dict[str, Any]) -> str:
    """The off-hours line: never active then (as the summary says), or the share of their busiest hour."""
    whose = "their peers" if e.get("baseline_from") == "peers" else "they"
    level = e["usual_level"]
    if not isinstance(level, int | float) or level <= 0:
        said = f"Active at an hour when {whose} have not been active before"
    else:
        share = "under 1%" if level < 0.005 else f"{level:.0%}"
        busiest = "their peers' busiest hour" if whose == "their peers" else "their busiest hour"
        said = f"Active at an hour when {whose} are rarely active ({share} of {busiest}'s level)"
    return said + (", outside business hours." if e.get("outside_business_hours") else ".")
