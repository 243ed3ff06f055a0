"""``partner_contract``: a partner's agent reads data classes its company's declared contract does not cover.

Stories run on the real engine (``tests.detector_harness``).  A credit
bureau's contract covers names and contact details (identity, contact); its
agent reads those in the CRM on weekdays from Monday 2 November, then, one
afternoon, pulls income figures (financial, high sensitivity) for ninety
minutes.  A declared contract needs no warm-up: it is known from the first event.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from datetime import timedelta

import orjson
import pytest

from detectors.engine import DetectionEngine
from detectors.partner_contract import PartnerContract, organisation_key
from detectors.state_codec import decode_state, encode_state
from models.alert import Severity
from models.config import ConfigError
from tests.detector_contract import DetectorContract
from tests.detector_harness import (
    Actor,
    burst,
    describe,
    detectors_for,
    history,
    local,
    run,
    settings_with,
    stream,
)

NAME = "partner_contract"
BUREAU = "Credit Bureau"  # as the contract names it; its agents' events say "credit-bureau"
AGENT = Actor("ptn-0001", kind="partner", role="analyst", department=None, organization="credit-bureau", ip="10.5.0.1")
CONTRACTS = {NAME: {"contracts": {BUREAU: {"data_classes": ["identity", "contact"]}}}}
INCOME_FIELDS = ("name", "income")  # identity, in the contract, and financial, outside it
PASSPORT_AND_CARD = ("name", "passport_number", "payment_card")  # government_id and financial, both high outside


def pulls_income(day: int = 14, first_hour: int = 90, second_half_hour: int = 45):
    """The agent, two weeks into the contract, reads income for ninety minutes from 14:00: ``first_hour`` records
    in the first hour, ``second_half_hour`` in the next half hour (one a read)."""
    return stream(
        history(AGENT, days=day, per_hour=3, records=2),
        burst(AGENT, local(day, 14), events=first_hour, within=timedelta(hours=1), fields=INCOME_FIELDS),
        burst(AGENT, local(day, 15), events=second_half_hour, fields=INCOME_FIELDS),
    )


def insider():
    return pulls_income()


# -- the shared interface ------------------------------------------------------


class TestContract(DetectorContract):
    detector = PartnerContract
    scales = ("short",)
    bad_values = [
        ("min_records", 0, "greater than or equal to 1"),
        ("tenfold_score", -1, "greater than or equal to 0"),
        ("sensitivity_scores", {"high": "x"}, "a valid number"),
        ("sensitivity_scores", {"secret": 9.0}, "unknown key"),
        ("contracts", {BUREAU: ["identity"]}, "a table"),
        ("contracts", {BUREAU: {"data_classes": [], "fields": ["income"]}}, "unknown key"),
        ("contracts", {"Acme": {"data_classes": []}, "ACME ": {"data_classes": []}}, "one contract a company"),
        ("classes", ["financial"], "unknown key"),
    ]
    run_options = {"config": CONTRACTS}

    def story(self):
        return insider()


def test_counts_on_the_compliance_page_on_its_own_and_judges_from_the_first_event():
    # a declared contract broken has its figure there (``dashboard.queries.contract_breaches``), not one more
    # column of the partners' usual scope, learned from habit
    assert not PartnerContract.partner_scope and PartnerContract.judges_during_warmup
    assert PartnerContract.title == "read outside a contract"


# -- the contract, as the configuration declares it ----------------------------


def test_the_default_configuration_declares_no_contract_and_judges_nothing():
    assert settings_with().detectors[NAME].get("contracts", {}) == {}
    assert run(insider(), NAME).alerts == []


def _contracts(classes, env=None):
    from configs.loader import load_settings

    overrides = {f"detectors.{NAME}.contracts": {BUREAU: {"data_classes": classes}}} if classes is not None else {}
    return load_settings(env=env or {}, overrides=overrides)


def test_a_contracts_data_classes_are_the_classifications_and_a_wrong_one_is_named_in_one_line():
    assert _contracts(["identity", "contact", "unclassified"]).detectors[NAME]["contracts"]
    with pytest.raises(ConfigError) as raised:
        _contracts(["contact", "adress"])
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"configuration error: detectors.{NAME}.contracts.{BUREAU}.data_classes.1 = 'adress'")
    assert message.endswith(
        "expected a data class of [classification]: contact, financial, government_id, identity, special,"
        " transactions, unclassified"
    )
    with pytest.raises(ConfigError, match=r"'address' is a field of contact\): contact, financial"):
        _contracts(["contact", "address"])
    # T13: a near miss is named, and a default class emptied (fields = []) is no choice
    with pytest.raises(
        ConfigError, match=r"\(did you mean 'contact'\?\): contact, financial, government_id, identity,"
    ):
        _contracts(["contacts"])
    emptied = {"ACCESSWATCH_CLASSIFICATION__CLASSES__SPECIAL__FIELDS": "[]"}
    with pytest.raises(ConfigError, match=r"identity, transactions, unclassified$"):
        _contracts(["adress"], env=emptied)


def test_a_class_the_operator_adds_to_the_classification_can_be_contracted():
    from configs.loader import load_settings

    with pytest.raises(ConfigError, match="'loyalty'"):
        _contracts(["loyalty"])
    settings = load_settings(
        env={},
        overrides={
            "classification.classes.loyalty": {"sensitivity": "low", "fields": ["membership_tier"]},
            f"detectors.{NAME}.contracts": {BUREAU: {"data_classes": ["loyalty"]}},
        },
    )
    assert settings.detectors[NAME]["contracts"][BUREAU]["data_classes"] == ["loyalty"]


def test_a_contract_set_by_an_environment_variable_alone_finds_its_company():
    variable = f"ACCESSWATCH_DETECTORS__{NAME.upper()}__CONTRACTS__CREDIT_BUREAU__DATA_CLASSES"
    settings = _contracts(None, env={variable: '["identity", "contact"]'})
    assert settings.detectors[NAME]["contracts"] == {"credit_bureau": {"data_classes": ["identity", "contact"]}}
    with pytest.raises(ConfigError, match=f"from {variable}"):
        _contracts(None, env={variable: '["identity", "finance"]'})
    config = {NAME: settings.detectors[NAME]}
    assert run(insider(), NAME, config=config).only().actor_id == AGENT.id


@pytest.mark.parametrize("written", ["credit-bureau", "Credit Bureau", "CREDIT_BUREAU", " credit  bureau "])
def test_a_company_is_matched_whatever_its_case_and_separators(written):
    assert organisation_key(written) == organisation_key(AGENT.organization or "") == "credit bureau"


# -- what it exists for --------------------------------------------------------


def test_every_window_of_a_ninety_minute_pull_is_a_finding_with_all_its_records_counted():
    # the tester's case: new_access spoke of the first hour only, and sensitive_access's min_records (50) missed
    # the next 45 reads; every record outside the contract counts here, in every window
    events = insider()
    result = run(events, NAME, config=CONTRACTS)
    alert = result.only()
    assert [(f.window_start, f.evidence["outside_contract"]["financial"]["records"]) for f in result.findings] == [
        (local(14, 14).timestamp(), 90),
        (local(14, 15).timestamp(), 45),
    ]
    assert (alert.window_start, alert.window_end) == (local(14, 14), local(14, 16))
    assert alert.evidence["findings"] == 2
    first_income_read = next(e for e in events if e.fields and "income" in e.fields)
    assert alert.evidence["outside_contract"] == {
        "financial": {
            "records": 90,
            "sensitivity": "high",
            "fields": ["bank_account", "credit_score", "income", "payment_card"],
            "first_event_id": first_income_read.event_id,
        }
    }
    assert alert.evidence["contract"] == {"organization": BUREAU, "data_classes": ["contact", "identity"]}
    assert alert.evidence["records_outside_contract"] == 90
    # the grown alert adds up the records outside the contract over both windows: 135, not the hours' 180
    assert alert.evidence["records_in_alert"] == 135
    assert alert.summary.endswith("135 records read outside the contract in their windows in all.")
    assert alert.evidence["records_by_class"] == {"financial": 90, "identity": 90}


def test_the_summary_names_the_company_the_classes_read_outside_and_what_the_contract_covers():
    first = run(insider(), NAME, config=CONTRACTS).findings[0]
    assert first.summary == (
        "Partner ptn-0001 of credit-bureau (analyst) read 90 records with financial data outside the contract of"
        " Credit Bureau, which covers contact and identity, on Mon 16 Nov 14:00-15:00 Asia/Shanghai."
    )
    several = burst(AGENT, local(14, 10), events=3, fields=("passport_number", "income", "membership_tier"))
    found = run(stream(history(AGENT, days=14), several), NAME, config=CONTRACTS).only()
    # each access read all three classes: 3 records outside, in each class, never "3, 3 and 3" to be summed
    assert found.summary.endswith(
        "read 3 records outside the contract of Credit Bureau, which covers contact and identity, on Mon 16 Nov"
        " 10:00-11:00 Asia/Shanghai: 3 of them with financial data, 3 with government id data and 3 with fields no"
        " class names."
    )
    assert sorted(found.evidence["outside_contract"]) == ["financial", "government_id", "unclassified"]


def test_an_access_that_read_two_classes_outside_counts_once_in_the_records_read_outside_the_contract():
    events = stream(history(AGENT, days=14), burst(AGENT, local(14, 10), records=100, fields=PASSPORT_AND_CARD))
    alert = run(events, NAME, config=CONTRACTS).only()
    evidence = alert.evidence
    assert {name: item["records"] for name, item in evidence["outside_contract"].items()} == {
        "financial": 100,
        "government_id": 100,
    }
    # 100 records outside the contract, not the classes' 200
    assert (evidence["records_outside_contract"], evidence["records"]) == (100, 100)
    assert evidence["records_outside_contract_by_sensitivity"] == {"high": 100}
    assert "read 100 records outside the contract of Credit Bureau" in alert.summary
    assert alert.summary.endswith(": 100 of them with financial data and 100 with government id data.")
    assert (alert.score, alert.severity) == (7.0, Severity.CRITICAL), describe(alert)  # 5 + a hundredfold


def overlapping_reads(day: int = 14, hour: int = 10):
    """100 records read with passports and cards together, 30 with passports alone, 20 with cards alone: 150
    records outside the contract, 130 of them with government ids and 120 with financial data."""
    return [
        *burst(AGENT, local(day, hour), records=100, fields=PASSPORT_AND_CARD),
        *burst(AGENT, local(day, hour, 10), records=30, fields=("name", "passport_number")),
        *burst(AGENT, local(day, hour, 20), records=20, fields=("name", "payment_card")),
    ]


@pytest.mark.parametrize("restart_every", [None, 1])
def test_the_records_outside_the_contract_are_neither_the_classes_sum_nor_the_largest_class(restart_every):
    # a restart in the hour (its window saved and loaded between accesses) keeps the records by touch
    events = stream(history(AGENT, days=14), overlapping_reads())
    found = run(events, NAME, config=CONTRACTS, batch=1, restart_every=restart_every).only()
    by_class = {name: item["records"] for name, item in found.evidence["outside_contract"].items()}
    assert by_class == {"government_id": 130, "financial": 120}  # 250 summed; the largest, 130, a floor
    assert (found.evidence["records_outside_contract"], found.evidence["records"]) == (150, 150)
    assert "read 150 records outside the contract" in found.summary
    assert found.summary.endswith(": 130 of them with government id data and 120 with financial data.")
    assert found.score == round(5 + math.log10(150), 3)


def test_an_hour_open_before_the_contract_was_declared_tells_a_floor_and_says_so():
    # the hour's window was opened (and saved) before the contract was in the configuration: it kept each class's
    # records alone, whose largest is all that is known of the records outside
    events = stream(history(AGENT, days=14), overlapping_reads())
    opened = next(n for n, e in enumerate(events) if e.fields and "passport_number" in e.fields) + 1
    settings = settings_with()
    before = DetectionEngine(settings, detectors_for(settings, NAME))
    before.process(events[:opened])
    after = DetectionEngine(settings, detectors_for(settings, NAME, CONTRACTS))
    after.load_state(decode_state(encode_state(before.to_state())))
    (alert,) = [*after.process(events[opened:]).alerts, *after.flush().alerts]
    assert "read at least 130 records outside the contract" in alert.summary
    assert alert.evidence["records_outside_contract"] == 130 and alert.evidence["records"] is None
    assert "records_outside_contract_by_sensitivity" not in alert.evidence
    assert alert.score == round(5 + math.log10(130), 3)


def test_a_grown_alert_adds_up_each_windows_records_outside_the_contract_counted_once():
    events = stream(history(AGENT, days=14), overlapping_reads(hour=10), overlapping_reads(hour=11))
    alert = run(events, NAME, config=CONTRACTS).only()
    assert alert.evidence["records_in_alert"] == 300  # 150 an hour; the classes' largest made it 260
    assert alert.summary.endswith("300 records read outside the contract in their windows in all.")


def test_each_sensitivity_counts_the_records_of_the_accesses_that_read_it_outside_once():
    reads = [
        *burst(AGENT, local(14, 10), records=10, fields=("passport_number", "booking_history")),
        *burst(AGENT, local(14, 10, 30), records=5, fields=("booking_history", "membership_tier")),
    ]
    found = run(stream(history(AGENT, days=14), reads), NAME, config=CONTRACTS).only()
    assert found.evidence["records_outside_contract"] == 15
    assert found.evidence["records_outside_contract_by_sensitivity"] == {"high": 10, "medium": 15, "low": 5}
    assert found.score == round(5 + math.log10(10), 3)  # high's 6.0 over medium's 3 + 1.18


def test_only_the_windows_of_agents_under_a_contract_keep_their_records_by_touch():
    # the figure costs a dictionary's update an access: the others' windows go without it
    employee = Actor("emp-0001", organization="credit-bureau")
    other = Actor("ptn-0900", kind="partner", role="agent", department=None, organization="blue-sky-travel")
    events = stream(*(burst(actor, local(0, 10), fields=INCOME_FIELDS) for actor in (AGENT, employee, other)))
    settings = settings_with()
    for config, kept in [(CONTRACTS, {AGENT.id: {("financial", "identity"): 1}}), (None, {})]:
        engine = DetectionEngine(settings, detectors_for(settings, NAME, config))
        engine.process(events)  # the hour still open
        (windows,) = engine._open["short"].values()
        assert {actor_id: window.touch_records for actor_id, window in windows.items()} == {
            AGENT.id: kept.get(AGENT.id),
            employee.id: None,
            other.id: None,
        }


def test_a_declared_contract_needs_no_warm_up_it_is_known_from_the_first_event():
    # the agent's very first hour, on the system's first day: no baseline, no warm-up, still outside the contract
    events = stream(burst(AGENT, local(0, 10), events=5, fields=INCOME_FIELDS))
    alert = run(events, NAME, config=CONTRACTS).only()
    assert alert.window_start == local(0, 10) and alert.severity is Severity.HIGH, describe(alert)


@pytest.mark.parametrize(
    "fields, records, score, severity",
    [
        (("name", "membership_tier"), 1, 2.0, Severity.LOW),  # unclassified (low): one record
        (("name", "membership_tier"), 10, 3.0, Severity.MEDIUM),  # ... ten of them
        (("name", "booking_history"), 1, 3.0, Severity.MEDIUM),  # transactions (medium): one record
        (("name", "booking_history"), 1000, 6.0, Severity.HIGH),
        (("name", "income"), 1, 5.0, Severity.HIGH),  # financial (high): one record
        (("name", "income"), 100, 7.0, Severity.CRITICAL),
        (PASSPORT_AND_CARD, 60, 6.778, Severity.HIGH),  # 60 high records in two classes: not 120 (7.08, critical)
    ],
)
def test_severity_follows_the_sensitivity_of_what_was_read_and_how_much(fields, records, score, severity):
    events = stream(history(AGENT, days=14), burst(AGENT, local(14, 10), records=records, fields=fields))
    alert = run(events, NAME, config=CONTRACTS).only()
    assert (alert.score, alert.severity) == (score, severity), describe(alert)


def test_the_records_of_one_sensitivity_read_in_several_classes_add_up_to_its_volume():
    # 50 passports and, in other accesses, 50 cards: a hundred high records outside the contract, critical, where
    # either class alone (5 + 1.7) is high
    reads = [
        *burst(AGENT, local(14, 10), records=50, fields=("name", "passport_number")),
        *burst(AGENT, local(14, 10, 30), records=50, fields=("name", "payment_card")),
    ]
    alert = run(stream(history(AGENT, days=14), reads), NAME, config=CONTRACTS).only()
    assert (alert.score, alert.severity) == (7.0, Severity.CRITICAL), describe(alert)
    assert alert.evidence["records_outside_contract"] == 100


def test_the_most_sensitive_or_largest_class_outside_sets_the_score():
    # one income figure (5.0) beside 10,000 unclassified records (2 + 4): the larger one
    events = stream(
        history(AGENT, days=14),
        burst(AGENT, local(14, 10), records=1, fields=INCOME_FIELDS),
        burst(AGENT, local(14, 10, 30), records=10_000, fields=("name", "membership_tier")),
    )
    assert run(events, NAME, config=CONTRACTS).only().score == 6.0
    tuned = {NAME: {**CONTRACTS[NAME], "sensitivity_scores": {"high": 6.5}, "tenfold_score": 0.5}}
    assert run(events, NAME, config=tuned).only().score == 6.5


def test_min_records_sets_how_much_of_a_class_outside_makes_a_finding():
    events = stream(history(AGENT, days=14), burst(AGENT, local(14, 10), events=4, fields=INCOME_FIELDS))
    assert run(events, NAME, config={NAME: {**CONTRACTS[NAME], "min_records": 5}}).alerts == []
    assert run(events, NAME, config={NAME: {**CONTRACTS[NAME], "min_records": 4}}).only()


def test_a_purpose_cited_lowers_nothing_unless_documented_max_severity_is_set():
    cited = burst(AGENT, local(14, 10), events=10, records=10, fields=INCOME_FIELDS, purpose="CONTRACT-2291")
    events = stream(history(AGENT, days=14), cited)
    assert run(events, NAME, config=CONTRACTS).only().severity is Severity.CRITICAL
    capped = run(events, NAME, config={NAME: {**CONTRACTS[NAME], "documented_max_severity": "medium"}}).only()
    assert capped.severity is Severity.MEDIUM and capped.evidence["documented"]["purposes"] == ["CONTRACT-2291"]


# -- what it must leave alone --------------------------------------------------


def test_reads_inside_the_contract_raise_nothing_however_many():
    events = stream(history(AGENT, days=14), burst(AGENT, local(14, 10), events=50, records=400))
    assert run(events, NAME, config=CONTRACTS).alerts == []


def test_a_company_without_a_declared_contract_is_left_to_the_learned_rules():
    other = Actor("ptn-0900", kind="partner", role="agent", department=None, organization="blue-sky-travel")
    events = stream(burst(other, local(14, 10), events=5, fields=INCOME_FIELDS))
    assert run(events, NAME, config=CONTRACTS).alerts == []


def test_an_employee_or_a_service_named_with_the_company_is_not_a_partner_under_its_contract():
    employee = Actor("emp-0001", organization="credit-bureau")
    service = Actor("svc-bureau-sync", kind="service", role="sync", department=None, organization="credit-bureau")
    events = stream(*(burst(actor, local(14, 10), events=5, fields=INCOME_FIELDS) for actor in (employee, service)))
    assert run(events, NAME, config=CONTRACTS).alerts == []


def test_refused_reads_served_nothing_outside_the_contract():
    refused = burst(AGENT, local(14, 10), events=5, fields=INCOME_FIELDS, outcome="denied")
    assert run(stream(history(AGENT, days=14), refused), NAME, config=CONTRACTS).alerts == []


# -- end to end: a crafted log replayed through the command ---------------------


def test_a_replay_of_a_small_log_with_a_contract_in_the_config_file_raises_it(tmp_path):
    config = tmp_path / "accesswatch.toml"
    config.write_text(f'[detectors.{NAME}.contracts."{BUREAU}"]\ndata_classes = ["identity", "contact"]\n')
    log = tmp_path / "access.jsonl"
    lines = [
        *burst(AGENT, local(0, 9), events=4, within=timedelta(hours=1)),  # within the contract
        *burst(AGENT, local(0, 14), events=6, records=5, fields=INCOME_FIELDS),
        *burst(AGENT, local(0, 15), events=3, records=5, fields=INCOME_FIELDS),
    ]
    log.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))

    def aw(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "accesswatch.cli", *args, "--data-dir", str(tmp_path / "data")]
        env = {key: value for key, value in os.environ.items() if not key.startswith("ACCESSWATCH_")}
        done = subprocess.run(command, capture_output=True, timeout=300, env={**env, "ACCESSWATCH_CONFIG": str(config)})
        assert done.returncode == 0, done.stderr
        return done

    aw("replay", str(log))
    alerts = [orjson.loads(line) for line in aw("alerts", "--format", "jsonl").stdout.splitlines()]
    ours = [alert for alert in alerts if alert["detector"] == NAME]
    assert len(ours) == 1, alerts
    alert = ours[0]
    assert (alert["actor_id"], alert["severity"]) == (AGENT.id, "high")
    assert (alert["window_start"], alert["window_end"]) == ("2026-11-02T06:00:00.000Z", "2026-11-02T08:00:00.000Z")
    assert [span[4] for span in alert["evidence"]["spans"]] == [30, 15]  # each window's records, all outside
    assert alert["evidence"]["outside_contract"]["financial"]["records"] == 30
    assert "outside the contract of Credit Bureau" in alert["summary"]
    # the other rules, still in their warm-up, said nothing: this alert is the contract's alone
    assert [a["detector"] for a in alerts] == [NAME]
