"""Tests of the access-log simulator (ingest.simulator).

They check the stream against the contract and each label against the
events it claims: the scenarios must really be in the stream, with the
characteristics their detectors look for, and the benign bulk work must be
there too. Simulations are kept small so the suite runs in seconds.
"""

from __future__ import annotations

import json
import re
import statistics
import tracemalloc
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from itertools import pairwise
from pathlib import Path
from types import SimpleNamespace

import pytest
from jsonschema import Draft202012Validator

from ingest.simulator import SimulationSettings, paced, simulate, write_simulation

CONTRACT = Path(__file__).resolve().parents[2] / "shared" / "contract"
if not CONTRACT.exists():  # CI clones main with shared/ beside it
    CONTRACT = Path("/work/shared/contract")
CST = timezone(timedelta(hours=8))
HEX32 = re.compile(r"^[0-9a-f]{32}$")
PROBED = {"bank_account", "passport_number", "id_number"}
UNCLASSIFIED_ALLOWED = {"membership_tier", "preferred_language"}

MONTH = SimulationSettings(seed=11, employees=40, partner_orgs=3, service_accounts=6)
SMALL = SimulationSettings(seed=3, days=12, employees=20, partner_orgs=1, service_accounts=4)
# one day of every partner template and every optional service
VARIED = SimulationSettings(seed=4, days=1, employees=20, partner_orgs=5, service_accounts=9)


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


def local(event: dict) -> datetime:
    return parse(event["timestamp"]).astimezone(CST)


def load(settings: SimulationSettings) -> SimpleNamespace:
    sim = simulate(settings)
    events = list(sim.events())
    by_actor: defaultdict[str, list[dict]] = defaultdict(list)
    for event in events:
        event["_at"] = parse(event["timestamp"])  # tests' own annotation, never written anywhere
        by_actor[event["actor"]["id"]].append(event)
    for actor_events in by_actor.values():
        actor_events.sort(key=lambda e: e["_at"])
    labels = sim.labels()
    return SimpleNamespace(
        sim=sim,
        events=events,
        by_actor=by_actor,
        labels=labels,
        by_id={e["event_id"]: e for e in events},
        scenarios={s["kind"]: s for s in labels["scenarios"]},
        actors={a["actor_id"]: a for a in labels["actors"]},
    )


@pytest.fixture(scope="module")
def month() -> SimpleNamespace:
    return load(MONTH)


@pytest.fixture(scope="module")
def small() -> SimpleNamespace:
    return load(SMALL)


def in_span(events: list[dict], span: dict) -> list[dict]:
    start, end = parse(span["start"]), parse(span["end"])
    return [e for e in events if start <= e["_at"] <= end]


def daily(events: list[dict], value=lambda e: 1) -> Counter:
    totals: Counter = Counter()
    for event in events:
        totals[local(event).date()] += value(event)
    return totals


# --- settings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("days", 0),
        ("days", 400),
        ("employees", 5),
        ("employees", True),
        ("partner_orgs", 0),
        ("service_accounts", 3),
        ("max_disorder_seconds", -1),
        ("seed", "7"),
        ("scenarios", 1),
        ("start", datetime(2026, 10, 5)),  # naive: ambiguous
    ],
)
def test_settings_reject_out_of_range_values_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        SimulationSettings(**{field: value})


def test_default_settings_are_the_documented_month():
    settings = SimulationSettings()
    assert (settings.seed, settings.days, settings.employees) == (7, 30, 240)
    assert settings.start == datetime(2026, 10, 5, tzinfo=UTC)
    assert settings.start.weekday() == 0


# --- determinism ----------------------------------------------------------------------------


def test_same_seed_gives_byte_identical_files_and_another_seed_does_not(tmp_path):
    settings = SimulationSettings(seed=5, days=12, employees=20, partner_orgs=1, service_accounts=4)
    first = write_simulation(tmp_path / "a", settings)
    write_simulation(tmp_path / "b", settings)
    write_simulation(tmp_path / "c", replace(settings, seed=6))
    for name in ("events.jsonl", "labels.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
        assert (tmp_path / "a" / name).read_bytes() != (tmp_path / "c" / name).read_bytes()
    lines = (tmp_path / "a" / "events.jsonl").read_bytes().splitlines()
    assert first["events"] == len(lines) > 1000
    assert first["scenarios"] == len(json.loads((tmp_path / "a" / "labels.json").read_text())["scenarios"])
    assert first["actors"] == len(json.loads((tmp_path / "a" / "labels.json").read_text())["actors"])


def test_events_can_be_streamed_twice_with_the_same_result():
    sim = simulate(SimulationSettings(seed=9, days=2, employees=20, partner_orgs=1, service_accounts=4))
    assert list(sim.events()) == list(sim.events())


# --- the contract -------------------------------------------------------------------------------


def classified_fields() -> set[str]:
    text = (CONTRACT / "data-classes.md").read_text()
    return set(re.findall(r"`([a-z_]+)`", text.split("| class |")[1].split("Why these")[0]))


def contract_validator() -> Draft202012Validator:
    schema = json.loads((CONTRACT / "access-event.schema.json").read_text())
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


@pytest.mark.parametrize("settings", [SMALL, VARIED], ids=["twelve-days-with-scenarios", "every-template"])
def test_every_event_matches_the_contract_schema(settings, small):
    validator = contract_validator()
    known_fields = classified_fields() | UNCLASSIFIED_ALLOWED
    assert {"bank_account", "passport_number", "name"} <= known_fields
    events = small.events if settings is SMALL else list(simulate(settings).events())
    for event in events:
        payload = {k: v for k, v in event.items() if k != "_at"}
        errors = [e.message for e in validator.iter_errors(payload)]
        assert not errors, (errors, payload)
        assert set(event["fields"]) <= known_fields, event["fields"]
    assert len(events) > 1000
    assert {e["actor"]["kind"] for e in events} == {"employee", "partner", "service"}
    if settings is VARIED:
        assert len({e["actor"]["id"] for e in events if e["actor"]["kind"] == "service"}) >= 7


def test_contract_sample_events_still_validate():
    # guards the validator set-up above: a schema it cannot read would accept anything
    validator = contract_validator()
    for line in (CONTRACT / "sample-events.jsonl").read_text().splitlines():
        validator.validate(json.loads(line))
    assert list(
        validator.iter_errors(
            {
                "event_id": "x",
                "timestamp": "yesterday",
                "actor": {"id": "a", "kind": "x"},
                "action": "read",
                "resource": {"system": "crm", "type": "r"},
                "record_count": 1,
                "surprise": True,
            }
        )
    )


def test_event_ids_are_unique_random_hex(month):
    ids = [e["event_id"] for e in month.events]
    assert len(set(ids)) == len(ids)
    assert all(HEX32.match(i) for i in ids)
    assert len({i[:4] for i in ids}) > 10_000  # spread, not a counter


def test_customer_ids_are_exact_for_small_accesses_and_a_sample_for_large(month):
    for event in month.events:
        ids = event.get("customer_ids", [])
        assert len(ids) == len(set(ids))
        assert all(re.fullmatch(r"c-\d{6}", i) and 1 <= int(i[2:]) <= 200_000 for i in ids)
        if event["outcome"] != "success":
            assert event["record_count"] == 0 and not ids
        elif event["record_count"] <= 50:
            assert len(ids) == event["record_count"]
        else:
            assert len(ids) == 50


def test_timestamps_use_both_offsets_and_stay_inside_the_window(month):
    start, end = parse(month.labels["start"]), parse(month.labels["end"])
    assert all(start <= e["_at"] < end for e in month.events)
    suffixes = Counter("Z" if e["timestamp"].endswith("Z") else e["timestamp"][-6:] for e in month.events)
    assert set(suffixes) == {"Z", "+08:00"}


def test_events_leave_at_most_the_disorder_bound_out_of_order(month):
    latest = None
    late = 0
    for event in month.events:
        if latest is not None and event["_at"] < latest:
            late += 1
            assert latest - event["_at"] <= timedelta(seconds=MONTH.max_disorder_seconds)
        latest = event["_at"] if latest is None else max(latest, event["_at"])
    assert late > 100  # the jitter is real


def test_zero_disorder_gives_a_sorted_stream():
    sim = simulate(
        SimulationSettings(seed=2, days=3, employees=20, partner_orgs=1, service_accounts=4, max_disorder_seconds=0)
    )
    times = [parse(e["timestamp"]) for e in sim.events()]
    assert times == sorted(times) and len(times) > 1000


def test_addresses_are_stable_per_actor(month):
    for actor_id, events in month.by_actor.items():
        kind = events[0]["actor"]["kind"]
        addresses = {e["source_ip"] for e in events} - {"198.51.100.77"}
        if kind == "employee":
            assert 1 <= len(addresses) <= 2 and all(a.startswith("10.") for a in addresses), actor_id
        elif kind == "partner":
            assert len(addresses) == 1 and re.match(r"^(203\.0\.113|198\.51\.100)\.", addresses.pop())
        else:
            assert len(addresses) == 1 and addresses.pop().startswith("10.0.5.")


def test_customer_service_quotes_tickets_and_baseline_failures_are_rare(month):
    service_desk = [e for e in month.events if e["actor"].get("role") == "customer_service"]
    with_ticket = sum(e.get("purpose", "").startswith("ticket-") for e in service_desk)
    assert with_ticket / len(service_desk) > 0.7
    outcomes = Counter(e["outcome"] for e in month.events)
    assert 0 < outcomes["denied"] / len(month.events) < 0.02
    assert 0 < outcomes["error"] / len(month.events) < 0.01


# --- labels ---------------------------------------------------------------------------------------

ACTOR_KEYS = {"actor_id", "kind", "role", "department", "organization", "first_active", "shift_worker"}
SCENARIO_KEYS = {"scenario_id", "kind", "actor_id", "start", "end", "event_ids_sample", "description"}
BENIGN_KEYS = {"kind", "actor_id", "start", "end", "description"}
SCENARIO_KINDS = {
    "bulk_exfiltration",
    "slow_ramp",
    "partner_overreach",
    "off_hours_browsing",
    "compromised_service_account",
    "dormant_account",
    "denied_probing",
}
UTC_TEXT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$")


def test_labels_have_the_agreed_shape(month):
    labels = month.labels
    json.dumps(labels)
    assert set(labels) == {"seed", "days", "start", "end", "generator", "actors", "scenarios", "benign", "notes"}
    assert (labels["seed"], labels["days"], labels["start"]) == (11, 30, "2026-10-05T00:00:00Z")
    assert labels["end"] == "2026-11-04T00:00:00Z"
    assert labels["generator"] == "accesswatch-simulator/1"
    for actor in labels["actors"]:
        assert set(actor) == ACTOR_KEYS and UTC_TEXT.match(actor["first_active"])
        assert actor["kind"] in {"employee", "partner", "service"} and isinstance(actor["shift_worker"], bool)
    for scenario in labels["scenarios"]:
        assert set(scenario) == SCENARIO_KEYS
        assert UTC_TEXT.match(scenario["start"]) and UTC_TEXT.match(scenario["end"])
        assert scenario["start"] <= scenario["end"] and scenario["description"]
    for benign in labels["benign"]:
        assert set(benign) == BENIGN_KEYS and UTC_TEXT.match(benign["start"]) and UTC_TEXT.match(benign["end"])
    assert {s["kind"] for s in labels["scenarios"]} == SCENARIO_KINDS
    assert len({s["actor_id"] for s in labels["scenarios"]}) == len(SCENARIO_KINDS)
    assert labels["notes"] == []
    assert set(month.by_actor) <= set(month.actors)
    assert len(labels["actors"]) == 40 + sum(a["kind"] != "employee" for a in labels["actors"])


def test_scenario_spans_tightly_bracket_their_sampled_events(month):
    for scenario in month.labels["scenarios"]:
        sample = [month.by_id[i] for i in scenario["event_ids_sample"]]
        assert sample, scenario["kind"]
        assert all(e["actor"]["id"] == scenario["actor_id"] for e in sample)
        start, end = parse(scenario["start"]), parse(scenario["end"])
        assert all(start <= e["_at"] <= end for e in sample)
        at_edges = {e["_at"] for e in month.by_actor[scenario["actor_id"]]}
        assert start in at_edges and end in at_edges, scenario["kind"]
        history = datetime(2026, 10, 5, tzinfo=UTC) + timedelta(days=9)
        assert start >= history, scenario["kind"]


def scenario_events(month, kind: str) -> tuple[dict, list[dict]]:
    scenario = month.scenarios[kind]
    return scenario, in_span(month.by_actor[scenario["actor_id"]], scenario)


def test_bulk_exfiltration_moves_20k_to_50k_records_in_one_afternoon(month):
    scenario, events = scenario_events(month, "bulk_exfiltration")
    taken = [e for e in events if e["action"] in {"export", "download"} and "id_number" in e["fields"]]
    assert 3 <= len(taken) <= 6
    assert 20_000 <= sum(e["record_count"] for e in taken) <= 50_000
    assert all({"phone", "email", "passport_number"} <= set(e["fields"]) for e in taken)
    assert len({local(e).date() for e in taken}) == 1
    assert all(12 <= local(e).hour < 19 for e in taken)
    assert month.actors[scenario["actor_id"]]["role"] == "sales"


def test_slow_ramp_grows_geometrically_within_office_hours(month):
    scenario, events = scenario_events(month, "slow_ramp")
    actor_events = month.by_actor[scenario["actor_id"]]
    before = daily([e for e in actor_events if e["_at"] < parse(scenario["start"])], lambda e: e["record_count"])
    during = daily(events, lambda e: e["record_count"])
    days = sorted(during)
    assert 5 <= len(days) <= 12
    usual = statistics.median(before.values())
    assert during[days[-1]] >= 5 * usual
    distinct = {d: len({c for e in events if local(e).date() == d for c in e.get("customer_ids", [])}) for d in days}
    assert distinct[days[-1]] >= 3 * distinct[days[0]]
    rises = sum(during[b] > during[a] for a, b in pairwise(days))
    assert rises >= (len(days) - 1) / 2
    assert all(7 <= local(e).hour < 21 for e in events)


def test_partner_overreach_leaves_the_contract_at_several_times_the_volume(month):
    scenario, events = scenario_events(month, "partner_overreach")
    history = [e for e in month.by_actor[scenario["actor_id"]] if e["_at"] < parse(scenario["start"])]
    scope_fields = {f for e in history for f in e["fields"]}
    scope_resources = {(e["resource"]["system"], e["resource"]["type"]) for e in history}
    outside = [
        e
        for e in events
        if not set(e["fields"]) <= scope_fields
        or (e["resource"]["system"], e["resource"]["type"]) not in scope_resources
    ]
    assert len(outside) >= len(events) / 2
    assert {"bank_account", "income"} <= {f for e in outside for f in e["fields"]}
    usual = statistics.median(daily(history).values())
    per_day = daily(events)
    assert 2 <= len(per_day) <= 3
    assert min(per_day.values()) >= 2.5 * usual
    assert events[0]["actor"]["kind"] == "partner" and events[0]["actor"]["organization"]


def test_off_hours_browsing_is_a_day_worker_reading_single_records_on_a_weekend_night(month):
    scenario, events = scenario_events(month, "off_hours_browsing")
    assert not month.actors[scenario["actor_id"]]["shift_worker"]
    assert 200 <= len(events) <= 400
    assert all(e["action"] == "read" and e["record_count"] == 1 for e in events)
    assert all(1 <= local(e).hour < 4 and local(e).weekday() >= 5 for e in events)
    browsing = {e["event_id"] for e in events}
    others = [e for e in month.by_actor[scenario["actor_id"]] if e["event_id"] not in browsing]
    assert others and all(6 <= local(e).hour < 22 for e in others)


def test_compromised_service_account_acts_from_a_new_address_on_new_fields_at_an_odd_hour(month):
    scenario, events = scenario_events(month, "compromised_service_account")
    attack = [e for e in month.events if e["source_ip"] == "198.51.100.77"]
    assert attack and {e["actor"]["id"] for e in attack} == {scenario["actor_id"]}
    assert {e["event_id"] for e in attack} == {e["event_id"] for e in events}
    usual = [e for e in month.by_actor[scenario["actor_id"]] if e["source_ip"] != "198.51.100.77"]
    usual_fields = {f for e in usual for f in e["fields"]}
    usual_hours = {local(e).hour for e in usual}
    assert {e["action"] for e in attack} == {"search", "export"}
    assert all({"id_number", "bank_account"} <= set(e["fields"]) - usual_fields for e in attack)
    assert not {local(e).hour for e in attack} & usual_hours
    assert events[0]["actor"]["kind"] == "service"


def test_dormant_account_is_silent_for_14_days_then_takes_thousands_of_records(month):
    scenario, events = scenario_events(month, "dormant_account")
    actor_events = month.by_actor[scenario["actor_id"]]
    first = actor_events.index(events[0])
    assert first > 0  # active in the first days
    assert events[0]["_at"] - actor_events[first - 1]["_at"] >= timedelta(days=14)
    assert sum(e["record_count"] for e in events) >= 1000
    assert {"export", "download"} & {e["action"] for e in events}


def test_denied_probing_is_mostly_denied_within_half_an_hour(month):
    scenario, events = scenario_events(month, "denied_probing")
    probes = [e for e in events if PROBED & set(e["fields"])]
    assert 40 <= len(probes) <= 105
    assert sum(e["outcome"] == "denied" for e in probes) >= 0.7 * len(probes)
    assert probes[-1]["_at"] - probes[0]["_at"] <= timedelta(minutes=35)
    history = [e for e in month.by_actor[scenario["actor_id"]] if e["_at"] < parse(scenario["start"])]
    assert sum(e["outcome"] == "denied" for e in history) < 0.03 * len(history)


# --- benign bulk work and the calendar ------------------------------------------------------------


def benign(month, kind: str) -> list[dict]:
    return [b for b in month.labels["benign"] if b["kind"] == kind]


def test_weekly_export_runs_every_monday_with_10k_to_20k_contacts(month):
    exports = benign(month, "weekly_export")
    mondays = [date(2026, 10, 5) + timedelta(weeks=n) for n in range(5)]
    assert [parse(b["start"]).astimezone(CST).date() for b in exports] == mondays
    for entry in exports:
        events = in_span(month.by_actor[entry["actor_id"]], entry)
        exported = [e for e in events if e["action"] == "export"]
        assert len(exported) == 1 and 10_000 <= exported[0]["record_count"] <= 20_000
        assert {"email", "phone"} <= set(exported[0]["fields"])
        assert 9 <= local(exported[0]).hour <= 11
    assert len({b["actor_id"] for b in exports}) == 1


def test_month_end_report_runs_on_the_last_working_day(month):
    (report,) = benign(month, "month_end_report")
    assert parse(report["start"]).astimezone(CST).date() == date(2026, 10, 30)
    events = in_span(month.by_actor[report["actor_id"]], report)
    big = [e for e in events if e["record_count"] >= 30_000]
    assert big and all(e["record_count"] <= 60_000 for e in big)
    assert all({"bank_account", "payment_card"} <= set(e["fields"]) for e in big)
    assert month.actors[report["actor_id"]]["role"] == "finance"


def test_nightly_backup_and_etl_run_every_night_between_one_and_three(month):
    for kind in ("nightly_backup", "nightly_etl"):
        runs = benign(month, kind)
        assert len(runs) >= 29
        for run in runs:
            begin, end = parse(run["start"]).astimezone(CST), parse(run["end"]).astimezone(CST)
            assert begin.hour in (1, 2) and (end.hour, end.minute) < (3, 30), run
            assert in_span(month.by_actor[run["actor_id"]], run)
    backups = month.by_actor["svc-backup"]
    assert all(e["action"] == "download" for e in backups)
    assert max(e["record_count"] for e in backups) >= 1_000_000
    etl_nights = daily(month.by_actor["svc-etl-nightly"], lambda e: e["record_count"])
    assert min(etl_nights.values()) >= 10_000


def test_new_hires_appear_mid_period_and_never_before_their_first_day(month):
    start = parse(month.labels["start"])
    hires = [a for a in month.labels["actors"] if parse(a["first_active"]) > start]
    assert hires
    assert {h["actor_id"] for h in hires} == {b["actor_id"] for b in benign(month, "new_hire")}
    for hire in hires:
        first_active = parse(hire["first_active"])
        assert first_active >= start + timedelta(days=8)
        events = month.by_actor.get(hire["actor_id"], [])
        assert all(e["_at"] >= first_active for e in events)
        if first_active < parse(month.labels["end"]) - timedelta(days=4):
            assert events, hire


def test_new_hires_scale_to_three_to_five_in_the_default_organisation():
    labels = simulate(SimulationSettings(days=30)).labels()
    assert 3 <= len([b for b in labels["benign"] if b["kind"] == "new_hire"]) <= 5


def test_the_sale_day_is_clearly_busier_than_the_same_weekday(month):
    (busy,) = benign(month, "busy_day")
    assert busy["actor_id"] is None
    day = parse(busy["start"]).astimezone(CST).date()
    facing = {"customer_service", "store_staff", "sales"}
    per_day = daily([e for e in month.events if e["actor"].get("role") in facing])
    normal = [per_day[day - timedelta(weeks=1)], per_day[day + timedelta(weeks=1)]]
    assert per_day[day] >= 1.6 * max(normal)


def test_shift_workers_work_nights_and_office_staff_do_not(month):
    night = {
        a
        for a, events in month.by_actor.items()
        if any(local(e).hour < 6 for e in events) and events[0]["actor"]["kind"] == "employee"
    }
    shift_workers = {a for a, label in month.actors.items() if label["shift_worker"]}
    assert night & shift_workers
    insiders = {s["actor_id"] for s in month.labels["scenarios"]}
    assert not (night - shift_workers - insiders)


def test_actors_have_their_own_volumes(month):
    agents = [
        a
        for a, label in month.actors.items()
        if label["role"] == "customer_service"
        and not label["shift_worker"]
        and a not in {s["actor_id"] for s in month.labels["scenarios"]}
    ]
    means = [statistics.mean(daily(month.by_actor[a]).values()) for a in agents if a in month.by_actor]
    assert max(means) >= 1.5 * min(means)
    roles = Counter(label["role"] for label in month.actors.values() if label["kind"] == "employee")
    assert {
        "customer_service",
        "store_staff",
        "sales",
        "data_analyst",
        "marketing",
        "finance",
        "it_support",
        "compliance",
    } <= set(roles)


# --- switches and scale ---------------------------------------------------------------------------


def test_no_scenarios_when_disabled_and_the_routine_is_unchanged(small):
    quiet = load(replace(SMALL, scenarios=False))
    assert quiet.labels["scenarios"] == [] and quiet.labels["notes"]
    assert not any(e["source_ip"] == "198.51.100.77" for e in quiet.events)
    assert set(quiet.by_id) < set(small.by_id)  # the same month, minus the injected events
    injected = set(small.by_id) - set(quiet.by_id)
    insiders = {s["actor_id"] for s in small.labels["scenarios"]}
    assert {small.by_id[i]["actor"]["id"] for i in injected} == insiders


def test_short_spans_inject_no_scenarios_and_say_so():
    labels = simulate(SimulationSettings(days=8, employees=20)).labels()
    assert labels["scenarios"] == []
    assert any("no insider scenarios" in note for note in labels["notes"])


def test_twelve_day_spans_place_scaled_scenarios_after_a_week(small):
    kinds = {s["kind"] for s in small.labels["scenarios"]}
    assert kinds == SCENARIO_KINDS - {"dormant_account"}
    assert any(note.startswith("dormant_account") for note in small.labels["notes"])
    earliest = parse(small.labels["start"]) + timedelta(days=6)
    assert all(parse(s["start"]) >= earliest for s in small.labels["scenarios"])


def test_employee_events_grow_about_linearly_with_head_count():
    def employee_events(employees: int) -> int:
        sim = simulate(
            SimulationSettings(days=7, employees=employees, partner_orgs=1, service_accounts=4, scenarios=False)
        )
        return sum(e["actor"]["kind"] == "employee" for e in sim.events())

    ratio = employee_events(120) / employee_events(40)
    assert 2.4 <= ratio <= 3.6


def test_streaming_keeps_memory_bounded():
    settings = SimulationSettings(days=14, employees=20, partner_orgs=1, service_accounts=4, scenarios=False)
    stream = simulate(settings).events()
    next(stream)  # one-off tables (the shuffled customer population) are built with the first day
    tracemalloc.start()
    try:
        count = sum(1 for _ in stream)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count > 12_000
    # Holding the stream would take over 1.5 kB an event; a day or two of buffer is a fraction of that.
    assert peak < 400 * count, (peak, count)


def test_paced_replay_waits_for_event_time_compressed():
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(round(seconds, 6))
        now[0] += seconds

    events = [
        {"timestamp": "2026-10-05T00:00:00Z"},
        {"timestamp": "2026-10-05T00:00:10Z"},
        {"timestamp": "2026-10-05T09:00:10+08:00"},
        {"timestamp": "2026-10-05T01:00:05Z"},
    ]
    out = list(paced(events, speedup=10, clock=lambda: now[0], sleep=sleep))
    assert out == events
    assert slept == [1.0, 360.0]  # 10 s, then an hour, ten times faster; the late one goes at once
    with pytest.raises(ValueError, match="speedup"):
        list(paced(events, speedup=0))
