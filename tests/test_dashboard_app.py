"""The dashboard's pages and role rules, run by Streamlit's AppTest over a small prepared store.

The store holds two weeks of a customer-service team's routine, one bulk
read by emp-0001 that is an incident, and a partner's first-time access.
Users sign in through the real form (with cheap hashes, so the suite stays
quick); most tests then start signed in as the role they check.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from configs.loader import load_settings
from dashboard import queries
from dashboard.auth import Identity, Role, hash_password
from dashboard.masking import load_key, pseudonym
from detectors.base import CITED
from detectors.incidents import incident_id
from models.alert import AlertStatus, Severity
from models.dashboard import DataAccess, DataAccessKind, DataAccessQuery, FoldProgress
from models.event import format_utc
from models.incident import TriageActionKind
from store.base import EventQuery
from store.retention import RetentionPolicy
from store.sqlite import SqliteStore
from tests import factories as f

APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"
PASSWORD = "correct horse battery staple"
USERS = {"ana": "analyst", "audrey": "auditor", "root": "admin"}
START = datetime(2026, 10, 19, 1, 0, tzinfo=UTC)  # a Monday, 09:00 in Asia/Shanghai
INCIDENT_HOUR = START + timedelta(days=9, hours=5)  # Wed 28 Oct 14:00 local
BULK_CUSTOMERS = [f"c-{n:06d}" for n in range(1, 49)]  # 8 in each of 6 exports


def _events(settings):
    """Two weeks of working hours for emp-0001..3 (a few records each), then emp-0001's bulk read."""
    crew = {"kind": "employee", "role": "customer_service", "department": "service"}
    events = []
    for day in range(10):
        if (START + timedelta(days=day)).weekday() >= 5:
            continue
        for hour in range(0, 9):
            for n, actor in enumerate(("emp-0001", "emp-0002", "emp-0003")):
                at = START + timedelta(days=day, hours=hour, minutes=7 * n)
                if actor == "emp-0001" and at >= INCIDENT_HOUR:
                    continue  # the bulk read below is all emp-0001 does from then on
                events.append(
                    f.incoming(
                        settings,
                        at=at,
                        actor={"id": actor, **crew},
                        record_count=3 + n,
                        customer_ids=[f"c-9{day:02d}{hour:02d}{n}"],
                    )
                )
    for minute in range(0, 60, 10):
        events.append(
            f.incoming(
                settings,
                at=INCIDENT_HOUR + timedelta(minutes=minute),
                actor={"id": "emp-0001", **crew},
                action="export",
                record_count=800,
                customer_ids=BULK_CUSTOMERS[minute // 10 * 8 : minute // 10 * 8 + 8],
                fields=["name", "passport_number"],
                resource={"system": "crm", "type": "customer_record", "id": "R77001234"},
            )
        )
    events.append(
        f.incoming(
            settings,
            at=INCIDENT_HOUR,
            record_count=2,
            actor={"id": "ptn-0001", "kind": "partner", "role": "agency", "organization": "blue-sky"},
        )
    )
    return events


def _incident_records():
    bulk = f.alert(
        actor_id="emp-0001",
        actor_role="customer_service",
        window_start=INCIDENT_HOUR,
        window_end=INCIDENT_HOUR + timedelta(hours=1),
        severity=Severity.CRITICAL,
        score=9.1,
        summary="Employee emp-0001 (customer_service) read 4,800 records on Wed 28 Oct 14:00-15:00, 300x their usual.",
        evidence={
            "figure": "records",
            "value": 4800,
            "baseline": 15.0,
            "baseline_from": "own",
            "ratio": 300.0,
            "z": 8.2,
            "records_by_class": {"government_id": 4800, "identity": 4800},
            "resources": ["crm/customer_record/R77001234", "crm/customer_record"],  # as bulk_read lists them
            "event_ids": [],
        },
    )
    partner = f.alert(
        actor_id="ptn-0001",
        actor_kind="partner",
        actor_organization="blue-sky",
        detector="new_access",
        severity=Severity.LOW,
        window_start=INCIDENT_HOUR,
        window_end=INCIDENT_HOUR + timedelta(hours=1),
        summary="Partner ptn-0001 of blue-sky touched crm/customer_record for the first time.",
        evidence={"new": [{"what": "resource", "value": "crm/customer_record"}]},
    )
    incidents = []
    for alert in (bulk, partner):
        alert.incident_id = incident_id(alert.actor_id, alert)
        incidents.append(f.incident_of(alert, alert.incident_id, 85.0 if alert is bulk else 10.0))
    return [bulk, partner], incidents


@pytest.fixture
def office(tmp_path, monkeypatch):
    """A data dir with the prepared store and a config of three users; the app's environment points at them."""
    data = tmp_path / "data"
    config = tmp_path / "users.toml"
    config.write_text(
        "".join(
            f'[dashboard.users.{name}]\nrole = "{role}"\npassword_hash = "{hash_password(PASSWORD, iterations=1000)}"\n'
            for name, role in USERS.items()
        )
    )
    settings = load_settings(config, env={}, overrides={"data_dir": str(data)})
    alerts, incidents = _incident_records()
    with SqliteStore(data / settings.store.sqlite.filename) as store:
        store.write(_events(settings))
        store.upsert_alerts(alerts, incidents)
    for name in [n for n in __import__("os").environ if n.startswith("ACCESSWATCH_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("ACCESSWATCH_DATA_DIR", str(data))
    monkeypatch.setenv("ACCESSWATCH_CONFIG", str(config))
    return {
        "settings": settings,
        "store_path": data / settings.store.sqlite.filename,
        "bulk": incidents[0],
        "partner": incidents[1],
    }


def _app(user: str | None = None, page: str | None = None, **query: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60)
    if user is not None:
        at.session_state["_identity"] = Identity(user, Role(USERS[user]), user, "password")
    at.query_params.update(query)
    at.run()
    if page is not None:
        at.switch_page(f"views/{page}.py").run()
    assert not at.exception, at.exception
    return at


def _text(at: AppTest) -> str:
    parts = [
        e.value
        for kind in ("markdown", "caption", "title", "subheader", "error", "success", "info", "warning")
        for e in getattr(at, kind)
    ]
    parts += [f"{m.label}: {m.value}" for m in at.metric]
    return "\n".join(str(p) for p in parts)


def _open(path: Path) -> SqliteStore:
    return SqliteStore(path, cache_mb=8)


def _sign_in(at: AppTest, user: str) -> AppTest:
    at.text_input[0].input(user)
    at.text_input[1].input(PASSWORD)
    return at.button[0].click().run()


def _search(at: AppTest, reason: str = "DSAR 2026-118", **inputs: str) -> AppTest:
    """Fill the Audit search form (text inputs by key: actor, customer, event, field...) and search."""
    for name, value in inputs.items():
        at.text_input(key=f"s-{name}").input(value)
    at.text_input(key="s-reason").input(reason)
    next(b for b in at.button if b.label == "Search").click().run()
    assert not at.exception, at.exception
    return at


def _metric(at: AppTest, label: str):
    return next(m for m in at.metric if m.label == label)


# -- sign-in and roles -------------------------------------------------------------------------
def test_nothing_shows_before_sign_in_and_a_wrong_password_is_refused(office):
    at = _app()
    assert [b.label for b in at.button] == ["Sign in"]
    assert not at.dataframe and "Alerts queue" not in _text(at)
    at.text_input[0].input("ana")
    at.text_input[1].input("wrong")
    at.button[0].click().run()
    assert "Wrong user name or password." in _text(at)
    assert "_identity" not in at.session_state


def test_a_user_signs_in_with_the_configured_password(office):
    at = _app()
    at.text_input[0].input("ana")
    at.text_input[1].input(PASSWORD)
    at.button[0].click().run()
    assert at.session_state["_identity"].role is Role.ANALYST
    assert "Alerts queue" in _text(at)


def test_demo_users_need_demo_mode(office, monkeypatch):
    # the default config's demo users exist but do not sign in outside the demo
    at = _app()
    at.text_input[0].input("demo")
    at.text_input[1].input("accesswatch-demo")
    at.button[0].click().run()
    assert "_identity" not in at.session_state
    monkeypatch.setenv("ACCESSWATCH_DASHBOARD__DEMO_SIGN_IN", "true")
    at = _app()
    at.text_input[0].input("demo")
    at.text_input[1].input("accesswatch-demo")
    at.button[0].click().run()
    assert at.session_state["_identity"].role is Role.ADMIN


def test_analysts_cannot_reach_the_auditors_pages(office):
    at = _app("ana")
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("views/search.py")
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("views/compliance.py")
    assert "Customer identifiers are masked." in _text(at)  # and no way to unmask


def test_auditors_read_but_do_not_triage(office):
    at = _app("audrey", incident=office["bulk"].incident_id)
    assert "Read-only: your role does not triage incidents." in _text(at)
    assert not [b for b in at.button if b.label in ("Acknowledge", "Resolve")]
    at.switch_page("views/search.py").run()
    assert not at.exception


# -- the queue -------------------------------------------------------------------------------------
def test_the_queue_lists_one_line_per_incident_most_severe_first_with_counts(office):
    at = _app("ana")
    at.selectbox(key="q-severity").select("low").run()
    [table] = at.dataframe
    assert list(table.value["severity"]) == ["critical", "low"]
    assert table.value["actor"][0].startswith("emp-0001")
    counts = {m.label: m.value for m in at.metric}
    assert counts["Critical"] == "1" and counts["Low"] == "1" and counts["In the queue"] == "2"


def _show_hidden(at: AppTest) -> list[str]:
    return [b.label for b in at.button if b.label.endswith(" hidden: show them")]


def test_the_queue_opens_at_medium_and_above_with_the_low_ones_a_click_away(office):
    # a morning's queue was 84 low incidents of 92, the default filter "Severity at least: low"
    at = _app("ana")
    assert at.selectbox(key="q-severity").value == "medium"
    assert list(at.dataframe[0].value["severity"]) == ["critical"]
    counts = {m.label: m.value for m in at.metric}
    assert counts["Critical"] == "1" and counts["Low"] == "1" and counts["In the queue"] == "1"  # the make-up kept
    assert _show_hidden(at) == ["1 low incident hidden: show them"]
    next(b for b in at.button if b.label == "1 low incident hidden: show them").click().run()
    assert not at.exception, at.exception
    assert at.selectbox(key="q-severity").value == "low"
    assert list(at.dataframe[0].value["severity"]) == ["critical", "low"]
    assert _metric(at, "In the queue").value == "2" and not _show_hidden(at)
    at.selectbox(key="q-severity").select("critical").run()  # the filter set by hand says so too
    assert _show_hidden(at) == ["1 low incident hidden: show them"]
    at.selectbox(key="q-detector").select("new_access").run()  # nothing listed: the line still offers the low one
    assert "Nothing in the queue under these filters." in _text(at) and _show_hidden(at)


def test_the_queue_s_opening_severity_is_a_setting(office, monkeypatch):
    monkeypatch.setenv("ACCESSWATCH_DASHBOARD__QUEUE_MIN_SEVERITY", "low")
    at = _app("ana")
    assert list(at.dataframe[0].value["severity"]) == ["critical", "low"] and not _show_hidden(at)
    monkeypatch.setenv("ACCESSWATCH_DASHBOARD__QUEUE_MIN_SEVERITY", "critical")
    at = _app("ana")
    assert at.selectbox(key="q-severity").value == "critical" and _show_hidden(at)


def test_the_queue_leads_with_what_a_hand_over_needs_and_ends_with_the_summary(office):
    # at 1440 pixels the status and the assignee were off to the right, past the summary
    at = _app("ana")
    columns = list(at.dataframe[0].value.columns)
    assert columns[:5] == ["severity", "status", "assignee", "actor", "flagged activity"]
    assert columns[-1] == "summary"


def test_a_masked_viewer_sees_the_purposes_a_summary_quotes_masked_on_the_queue_incident_and_actor(office):
    """Before, the queue, the incident's header and alerts, its related incidents and the actor's incidents showed a
    documented finding's sentence as the detector wrote it, the purposes it cites in clear, to an analyst who sees
    them masked in the alert's evidence."""
    purposes = ["TICKET-77", "complaint of c-152762, passport E12345678"]
    alert = f.alert(
        actor_id="emp-0001",
        window_start=INCIDENT_HOUR + timedelta(days=1),
        window_end=INCIDENT_HOUR + timedelta(days=1, hours=1),
        summary=f"Employee emp-0001 read 5,000 records{CITED}{', '.join(purposes)}.",
        evidence={"records": 5000, "event_ids": [], "documented": {"share": 1.0, "purposes": purposes}},
    )
    alert.incident_id = incident_id(alert.actor_id, alert)
    with _open(office["store_path"]) as store:
        store.upsert_alerts([alert], [f.incident_of(alert, alert.incident_id, 90.0)])
    shown = "the accesses cite TICKET-77, complaint of c•••, passport E•••."
    queue = _app("ana")
    assert any(summary.endswith(shown) for summary in queue.dataframe[0].value["summary"])
    # the list to open one from, cut to 90 characters: up to the masked customer's number
    assert any(option.endswith("complaint of c•••…") for option in queue.selectbox(key="q-open-choice").options)
    incident = _app("ana", incident=alert.incident_id)
    assert _text(incident).count(shown) == 2  # the header's, the alert's
    links = [
        e.proto.label
        for at in (_app("ana", incident=office["bulk"].incident_id), _app("ana", page="actor", actor="emp-0001"))
        for e in at.get("page_link")
        if "TICKET-77" in e.proto.label
    ]
    assert len(links) == 2 and all("passport E•••" in label for label in links)
    assert "E12345678" not in _text(incident) + "".join(queue.dataframe[0].value["summary"])


def test_a_mistyped_data_dir_is_an_error_and_no_store_is_made(office, monkeypatch, tmp_path):
    typo = tmp_path / "typo"
    monkeypatch.setenv("ACCESSWATCH_DATA_DIR", str(typo))
    at = _app("ana")
    [error] = at.error
    assert error.value == f"no store at {typo / 'accesswatch.db'}: replay or run something into this data dir first"
    assert not at.success and not at.dataframe  # not "Nothing in the queue" from a store of its own making
    assert not typo.exists()
    typo.mkdir()  # `make demo`: the demo makes the store as the dashboard starts; the next visit finds it
    with SqliteStore(typo / "accesswatch.db"):
        pass
    at = _app("ana")
    assert not at.error and "Nothing in the queue under these filters." in _text(at)


def test_a_store_a_newer_version_upgraded_is_an_error_not_a_traceback(office, monkeypatch, tmp_path):
    data = tmp_path / "newer"
    data.mkdir()
    with SqliteStore(data / "accesswatch.db") as store:
        store._db.execute("INSERT INTO schema_migrations VALUES ('0099-from-the-future', '2027-01-01T00:00:00Z')")
    monkeypatch.setenv("ACCESSWATCH_DATA_DIR", str(data))
    at = _app("ana")
    assert not at.exception
    [error] = at.error
    assert "upgraded by a newer accesswatch (0099-from-the-future)" in error.value


def test_the_pages_give_times_with_their_utc_offset(office):
    at = _app("ana")
    assert at.dataframe[0].value["flagged activity"][0] == "2026-10-28 14:00–15:00 +08:00"
    at = _app("ana", incident=office["bulk"].incident_id)
    assert _metric(at, "Flagged activity").value == "28 Oct 14:00"
    assert _metric(at, "Flagged activity").delta == "to 28 Oct 15:00, UTC+08:00"
    assert _metric(at, "Reporting deadline").delta.startswith("detected ")  # "detected 2026-... +08:00"
    assert _metric(at, "Reporting deadline").delta.endswith(" +08:00")
    # "raised" was the server's clock beside activity in event time: which time starts the clock is said
    assert "on this server's clock, when accesswatch first stored the incident" in _text(at)
    assert "the reporting deadline counts from then" in _text(at)
    at.button(key="r-make").click().run()
    assert "CST" not in at.session_state["r-made"][1] and "+08:00" in at.session_state["r-made"][1]


def test_queue_filters(office):
    at = _app("ana")
    at.selectbox(key="q-severity").select("low").run()
    detectors = at.selectbox(key="q-detector").options
    assert "first-time access" in detectors and "large reads" in detectors and "new_access" not in detectors
    at.selectbox(key="q-detector").select("new_access").run()
    assert list(at.dataframe[0].value["actor"]) == ["ptn-0001 (partner, blue-sky)"]
    assert list(at.dataframe[0].value["detectors"]) == ["first-time access"]
    at.selectbox(key="q-detector").select("any")
    at.selectbox(key="q-severity").select("high").run()
    assert list(at.dataframe[0].value["severity"]) == ["critical"]
    at.selectbox(key="q-severity").select("low")
    at.selectbox(key="q-kind").select("partner").run()
    assert len(at.dataframe[0].value) == 1
    at.selectbox(key="q-kind").select("any")
    at.selectbox(key="q-org").select("blue-sky").run()
    assert len(at.dataframe[0].value) == 1
    at.selectbox(key="q-org").select("any")
    at.selectbox(key="q-status").select("resolved").run()
    assert "Nothing in the queue under these filters." in _text(at)


# -- an incident ---------------------------------------------------------------------------------------
def test_the_incident_page_explains_and_shows_the_events_masked(office):
    at = _app("ana", incident=office["bulk"].incident_id)
    text = _text(at)
    assert "emp-0001: critical incident" in text
    # detectors in the words people use (``explain.detector_title``): in the header, the flagged runs, each alert
    assert "detectors: large reads" in text and "(large reads)" in text and "critical] · large reads" in text
    assert (
        "4,800 records against their own usual of 15: 320.0 times as many"
    )  # 4,800 / 15, whatever ratio the score had in text
    assert "Reporting deadline" in text
    events = next(d.value for d in at.dataframe if "customers" in d.value.columns)
    assert len(events) == 6 and set(events["action"]) == {"export"}
    shown = " ".join(events["customers"])
    assert "c-0000" not in shown and "cust#" in shown  # analysts see pseudonyms
    assert "R77001234" not in " ".join(events["resource"])  # a record id points at a customer
    # ... in the detectors' explanation and evidence too, where the window's resources are listed
    assert "Resources: crm/customer_record/R" in text and "R77001234" not in text
    assert all("R77001234" not in str(shown.value) for shown in at.json)


def test_masked_pages_show_a_customer_s_id_or_address_in_a_record_id_or_a_purpose_masked(office):
    # tester T19: "crm/customer_record/CUST-XJ9K" beside its customer's pseudonym, an e-mail address as a record id
    # and a purpose quoting the customer and a passport, in clear to an analyst and to a masked auditor
    crew = {"id": "emp-0001", "kind": "employee", "role": "customer_service", "department": "service"}
    crafted = [
        ("crm", "customer_record", "CUST-XJ9K", ["CUST-XJ9K"], "TICKET-77"),
        ("crm", "customer_record", "jane.doe@example.com", ["c-152762"], "TICKET-78"),
        ("booking", "reservation", "R93432556", ["c-152762"], "complaint of c-152762, passport E12345678"),
    ]
    with _open(office["store_path"]) as store:
        store.write(
            [
                f.incoming(
                    office["settings"],
                    at=INCIDENT_HOUR + timedelta(minutes=1 + n),
                    actor=crew,
                    customer_ids=customers,
                    resource={"system": system, "type": kind, "id": record},
                    fields=["name", "passport_number"],
                    purpose=purpose,
                )
                for n, (system, kind, record, customers, purpose) in enumerate(crafted)
            ]
        )
    key = load_key(office["settings"].data_dir)
    cust, c1 = pseudonym("CUST-XJ9K", key), pseudonym("c-152762", key)
    shown = {
        (f"crm/customer_record/{cust}", cust, "TICKET-77"),
        ("crm/customer_record/•••", c1, "TICKET-78"),
        ("booking/reservation/R•••", c1, f"complaint of {c1}, passport E•••"),
    }
    at = _app("ana", incident=office["bulk"].incident_id)
    events = next(d.value for d in at.dataframe if "customers" in d.value.columns)
    assert shown <= set(zip(events["resource"], events["customers"], events["purpose"], strict=True))
    at = _search(_app("audrey", page="search"), actor="emp-0001", field="passport_number")
    events = next(d.value for d in at.dataframe if "customers" in d.value.columns)
    assert shown <= set(zip(events["resource"], events["customers"], events["purpose"], strict=True))
    readers = next(d.value for d in at.dataframe if "purposes" in d.value.columns)
    assert "complaint of c•••, passport E•••" in " ".join(readers["purposes"])
    for needle in ("CUST-XJ9K", "jane.doe", "c-152762", "E12345678"):
        assert all(needle not in d.value.to_csv() for d in at.dataframe), needle


def _grown_to_its_day(office):
    """The bulk read's alert as a day's finding grows it (``detectors.alerts``): its window the whole local day,
    its hour kept among its findings' spans.  The incident's window follows."""
    day = datetime(2026, 10, 27, 16, 0, tzinfo=UTC)  # Wed 28 Oct 00:00 in Shanghai
    bulk = office["bulk"]
    spans = [
        [format_utc(INCIDENT_HOUR), format_utc(INCIDENT_HOUR + timedelta(hours=1)), 9.1, "critical", 4800],
        [format_utc(day), format_utc(day + timedelta(days=1)), 4.0, "high", 4815],
    ]
    window = {"window_start": day, "window_end": day + timedelta(days=1)}
    with _open(office["store_path"]) as store:
        [alert] = store.get_alerts(bulk.alert_ids)
        grown = alert.model_copy(update={**window, "evidence": {**alert.evidence, "spans": spans}, "revision": 2})
        store.upsert_alerts([grown], [bulk.model_copy(update={**window, "revision": 2})])
    return bulk


def test_a_day_long_incident_is_shown_at_its_flagged_hour_first(office):
    # the queue said "started 00:00", the header "Activity from 28 Oct 00:00", the events the day's routine first
    incident = _grown_to_its_day(office)
    at = _app("ana")
    assert at.dataframe[0].value["flagged activity"][0] == "2026-10-28 14:00–15:00 +08:00"
    at = _app("ana", incident=incident.incident_id)
    assert _metric(at, "Flagged activity").value == "28 Oct 14:00"
    assert _metric(at, "Flagged activity").delta == "to 28 Oct 15:00, UTC+08:00"
    text = _text(at)
    assert "Flagged: critical 28 Oct 14:00–15:00 (large reads)." in text
    assert "The incident's window, its findings merged: 28 Oct 00:00 to 29 Oct 00:00, UTC+08:00." in text
    assert "large reads** · flagged 2026-10-28 14:00–15:00 +08:00 (its window 28 Oct 00:00 – 29 Oct 00:00)" in text
    # the events: the flagged hour's first, each choice with its count; the whole day a click away
    choice = at.radio(key=f"i-span-{incident.incident_id}")
    assert choice.value == "flagged"
    assert choice.options == [
        "the flagged hours (critical), 28 Oct 14:00–15:00: 6 events",
        "the whole window, 28 Oct 00:00 – 29 Oct 00:00: 11 events",
    ]
    events = next(d.value for d in at.dataframe if "customers" in d.value.columns)
    assert len(events) == 6 and set(events["action"]) == {"export"}
    assert "Page 1 of 1 · events 1–6 of 6, newest first" in _text(at)
    choice.set_value("window").run()
    events = next(d.value for d in at.dataframe if "customers" in d.value.columns)
    assert len(events) == 11 and "events 1–11 of 11" in _text(at)


def _flagged_late_in_its_day_and_one_in_the_morning(office) -> None:
    """Two more critical incidents of emp-0001 on 28 Oct: one whose window is the whole local day (its day's finding
    merged in), flagged 16:00-17:00, and one flagged 09:00-10:00; the bulk read's is 14:00-15:00."""
    day = datetime(2026, 10, 27, 16, 0, tzinfo=UTC)  # Wed 28 Oct 00:00 in Shanghai
    late, early = day + timedelta(hours=16), day + timedelta(hours=9)
    spans = [
        [format_utc(late), format_utc(late + timedelta(hours=1)), 9.0, "critical", 3000],
        [format_utc(day), format_utc(day + timedelta(days=1)), 4.0, "high", 3200],
    ]
    crew = {"actor_id": "emp-0001", "actor_role": "customer_service", "severity": Severity.CRITICAL, "score": 9.0}
    whole_day = f.alert(**crew, window_start=day, window_end=day + timedelta(days=1), evidence={"spans": spans})
    morning = f.alert(**crew, window_start=early, window_end=early + timedelta(hours=1))
    with _open(office["store_path"]) as store:
        store.upsert_alerts(
            [whole_day, morning],
            [f.incident_of(whole_day, "inc-whole-day", 85.0), f.incident_of(morning, "inc-morning", 85.0)],
        )


def test_the_newest_flagged_activity_comes_first_not_the_newest_window(office):
    # the queue sorted by the window's start: the day's incident (00:00) below the morning's, though flagged at 16:00
    _flagged_late_in_its_day_and_one_in_the_morning(office)
    flagged = ["2026-10-28 16:00–17:00 +08:00", "2026-10-28 14:00–15:00 +08:00", "2026-10-28 09:00–10:00 +08:00"]
    at = _app("ana")
    assert list(at.dataframe[0].value["flagged activity"])[:3] == flagged  # most severe first, then newest
    at.selectbox(key="q-severity").select("low")
    at.radio(key="q-order").set_value("newest").run()  # the partner's low one, flagged 14:00-15:00, among them
    assert list(at.dataframe[0].value["flagged activity"]) == [flagged[0], flagged[1], flagged[1], flagged[2]]
    # the actor's past incidents, and an incident's related ones: in the same order
    at = _app("ana", page="actor", actor="emp-0001")
    links = [e.proto.label for e in at.get("page_link") if "2026-10-28" in e.proto.label]
    assert [next(when for when in flagged if when in label) for label in links] == flagged
    at = _app("ana", incident=office["bulk"].incident_id)
    links = [e.proto.label for e in at.get("page_link") if "2026-10-28" in e.proto.label]
    assert [next(when for when in flagged if when in label) for label in links] == [flagged[0], flagged[2]]


LONG_NOTE = (
    "called the team lead: the export of 4800 records with passport numbers was no task of hers, the account is"
    " disabled and HR is told; the morning shift asks where the files went"
)
# typed in the dashboard's note box, which is multi-line: a paragraph, words that would be Markdown and HTML, and a
# 200-character address with no space to break it at
URL = "https://files.example/share/" + "x" * 172
NOTE = f"{LONG_NOTE}\nasked **bold** <b>x</b> about it\n{URL}"


def test_acknowledge_assign_note_and_false_positive_are_recorded_with_who(office):
    incident = office["bulk"].incident_id
    at = _app("ana", incident=incident)
    at.button(key="i-ack").click().run()
    assert "Recorded: acknowledge by ana." in _text(at)
    at.text_input(key="i-assignee").input("li")
    at.button(key="i-assign").click().run()
    at.text_area(key="i-note").input(NOTE)
    at.button(key="i-add-note").click().run()
    # the log is a block an action, when, who and what, with the note whole under its action (a data grid cut it at
    # its column's width, tester T17) as plain text: its lines kept and a long address broken at the block's width,
    # where a table's Markdown cell ran the lines together and scrolled the address sideways (tester T18)
    (log,) = [tab for tab in at.tabs if tab.label.startswith("Triage log")]
    heads = [m.value for m in log.markdown]
    assert len(heads) == 3 and all(" · **ana** · " in head for head in heads)
    assert [head.rsplit(" · ", 1)[1] for head in heads] == ["acknowledge", "assign to li", "note"]
    (note,) = log.text  # st.text: never Markdown or HTML, whoever typed it
    assert note.value == NOTE and note.proto.wrap and NOTE.count("\n") == 2
    assert not any("bold" in head for head in heads)
    at.button(key="i-fp").click().run()
    assert "say why this is a false positive" in _text(at)
    with _open(office["store_path"]) as store:
        actions = store.actions(incident)
        assert [(a.kind, a.by) for a in actions] == [
            (TriageActionKind.ACKNOWLEDGE, "ana"),
            (TriageActionKind.ASSIGN, "ana"),
            (TriageActionKind.NOTE, "ana"),
        ]
        assert actions[1].assignee == "li" and actions[2].note == NOTE
        stored = store.get_incident(incident)
        assert stored.status is AlertStatus.ACKNOWLEDGED and stored.assignee == "li"
    at.text_area(key="i-fp-reason").input("approved migration, ticket CHG-7")
    at.button(key="i-fp").click().run()
    with _open(office["store_path"]) as store:
        assert store.get_incident(incident).status is AlertStatus.FALSE_POSITIVE
        assert store.actions(incident)[-1].note == "approved migration, ticket CHG-7"
    assert [b.label for b in at.button if b.key == "i-reopen"] == ["Reopen"]


def test_the_timeline_has_the_band_the_actor_and_the_peers(office):
    from dashboard import queries

    settings = office["settings"]
    with _open(office["store_path"]) as store:
        points = queries.timeline(store, settings, office["bulk"], store.health().newest_event).points
    by_hour = {p.hour: p for p in points}
    peak = by_hour[INCIDENT_HOUR]
    assert peak.records == 4800
    assert peak.usual_high < 20  # the routine: a few records an hour
    assert peak.peer_median is not None and peak.peer_median < 10
    routine = by_hour[INCIDENT_HOUR - timedelta(days=1)]
    assert routine.usual_low <= routine.records <= routine.usual_high
    night = by_hour[INCIDENT_HOUR - timedelta(hours=12)]
    assert (night.records, night.usual_high) == (0, 0)
    at = _app("ana", incident=office["bulk"].incident_id)
    assert at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart")


def _fold_behind(monkeypatch) -> None:
    """The hourly figures as a dashboard's first look at a store just replayed finds them: not folded yet, for
    as long as the test needs (a page folds no backlog, the server's thread none)."""
    import store.sqlite_dashboard as rollups
    from dashboard import ui

    monkeypatch.setattr(rollups, "FOLD_ON_READ", 0)
    monkeypatch.setattr(ui, "_background_fold", lambda *args: None)


def test_the_timeline_counts_the_actor_s_events_while_the_hourly_figures_are_behind(office, monkeypatch):
    # T17: opened on a store no dashboard had folded, the chart drew the 4,800 records' hour as a flat zero
    from dashboard import queries

    _fold_behind(monkeypatch)
    settings, events = office["settings"], len(_events(office["settings"]))
    with _open(office["store_path"]) as store:
        behind = queries.timeline(store, settings, office["bulk"], store.health().newest_event)
    assert behind.behind == FoldProgress(events=events, folded=0)
    peak = next(p for p in behind.points if p.hour == INCIDENT_HOUR)
    assert peak.records == 4800
    assert all(p.peer_median is None for p in behind.points)  # the peers' hours are the roll-ups' alone: left out
    at = _app("ana", incident=office["bulk"].incident_id)
    assert f"still being computed: 0 of {events:,} stored events folded so far; this actor's records" in _text(at)
    assert at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart")
    with _open(office["store_path"]) as store:
        store.fold()
        folded = queries.timeline(store, settings, office["bulk"], store.health().newest_event)
    assert folded.behind is None
    # the same line and band: counted from the events, from the actor's first one on (none folded told it)
    drawn = [(p.hour, p.records, p.usual_low, p.usual_high) for p in behind.points]
    assert drawn == [(p.hour, p.records, p.usual_low, p.usual_high) for p in folded.points]
    assert "still being computed" not in _text(_app("ana", incident=office["bulk"].incident_id))


def _auto_reruns(monkeypatch) -> list[float]:
    """The intervals a page asks the browser to rerun a fragment at (``st.fragment(run_every=...)``), as sent."""
    from streamlit.runtime.forward_msg_queue import ForwardMsgQueue

    asked: list[float] = []
    enqueue = ForwardMsgQueue.enqueue

    def recorded(queue, msg):
        if msg.HasField("auto_rerun"):
            asked.append(msg.auto_rerun.interval)
        enqueue(queue, msg)

    monkeypatch.setattr(ForwardMsgQueue, "enqueue", recorded)
    return asked


def test_the_incident_s_chart_redraws_itself_while_the_hourly_figures_are_behind_and_only_then(office, monkeypatch):
    # T18: the notice "0 of N folded" never moved, and reloading the page asks for the sign-in again
    _fold_behind(monkeypatch)
    asked = _auto_reruns(monkeypatch)
    at = _app("ana", incident=office["bulk"].incident_id)
    assert "still being computed" in _text(at)
    assert asked == [office["settings"].dashboard.refresh]
    with _open(office["store_path"]) as store:
        store.fold()
    asked.clear()
    at.run()
    assert "still being computed" not in _text(at) and asked == []


def test_the_timeline_waits_for_the_fold_when_the_actor_has_too_many_events_waiting(office, monkeypatch):
    from dashboard import queries

    _fold_behind(monkeypatch)
    monkeypatch.setattr(queries, "UNFOLDED_COUNTED", 10)  # emp-0001's routine is more than that
    at = _app("ana", incident=office["bulk"].incident_id)
    assert "too many events waiting to count them here: the chart is drawn once they are" in _text(at)
    assert not (at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart"))  # no zeros drawn as data


def test_the_actor_profile_says_its_figures_are_still_being_computed(office, monkeypatch):
    _fold_behind(monkeypatch)
    events = len(_events(office["settings"]))
    text = _text(_app("ana", page="actor", actor="emp-0001"))
    assert f"0 of {events:,} stored events folded so far; emp-0001 is not in them yet" in text
    assert "No events of emp-0001" not in text
    with _open(office["store_path"]) as store:
        store.fold()
        crew = {"kind": "employee", "role": "customer_service", "department": "service"}
        store.write([f.incoming(office["settings"], at=INCIDENT_HOUR, actor={"id": "emp-0001", **crew})])
    text = _text(_app("ana", page="actor", actor="emp-0001"))
    assert "Role: customer_service" in text
    assert f"{events:,} of {events + 1:,} stored events folded so far; this profile and its charts" in text
    with _open(office["store_path"]) as store:
        store.fold()
    text = _text(_app("ana", page="actor", actor="emp-0001"))
    assert "Role: customer_service" in text and "still being computed" not in text
    assert "No events of nobody-here in the store." in _text(_app("ana", page="actor", actor="nobody-here"))


def test_the_sensitive_data_trend_and_the_health_chart_say_the_figures_are_still_being_computed(office, monkeypatch):
    _fold_behind(monkeypatch)
    events = len(_events(office["settings"]))
    folding = f"still being computed: 0 of {events:,} stored events folded so far"
    assert f"{folding}; this trend and its table count only those" in _text(_app("audrey", page="compliance"))
    assert f"{folding}; the events per hour below count only those" in _text(_app("ana", page="health"))
    with _open(office["store_path"]) as store:
        store.fold()
    assert "still being computed" not in _text(_app("audrey", page="compliance"))
    assert "still being computed" not in _text(_app("ana", page="health"))


def test_the_report_leaves_the_customers_out_unless_an_auditor_gives_a_reason(office):
    at = _app("ana", incident=office["bulk"].incident_id)
    at.button(key="r-make").click().run()
    text = _text(at)
    assert "How much, and whose" in text and "48 distinct customer ids" in text
    assert "c-000001" not in text and "The list is available to auditors" in text
    assert at.session_state["r-made"][3] is None  # no CSV of customers for an analyst
    assert _downloads(at) == ["Download Markdown", "Download HTML"]

    at = _app("audrey", incident=office["bulk"].incident_id)
    at.text_input(key="r-reason").input("regulator notification 2026-31")
    at.button(key="r-make").click().run()
    text = _text(at)
    assert "Affected customers (confidential)" in text and "c-000001" in text
    with _open(office["store_path"]) as store:
        [access] = store.data_accesses(DataAccessQuery())
    assert (access.by, access.kind, access.results) == ("audrey", DataAccessKind.CUSTOMER_LIST, 48)
    assert access.reason == "regulator notification 2026-31"
    assert access.what["formats"] == ["report", "csv"]  # the list and its CSV: one preparation, one record
    # what the list was made of, so that a customer past its first ids is found again (store.unlisted)
    bulk = office["bulk"]
    assert access.what["list_of"] == {
        "actor_id": bulk.actor_id,
        "since": bulk.window_start.isoformat(),
        "until": bulk.window_end.isoformat(),
        "events": 6,
        "complete": True,
    }
    assert access.customer_ids == BULK_CUSTOMERS and access.customers_in_clear == 48  # whose: by each id
    assert _downloads(at) == ["Download Markdown", "Download HTML", "Download customers CSV"]
    day = at.session_state["r-made"][4].removeprefix(office["bulk"].incident_id + "-")  # the downloads' name
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", day), day
    rows = list(csv.DictReader(io.StringIO(at.session_state["r-made"][3])))
    assert [row["customer_id"] for row in rows] == BULK_CUSTOMERS
    assert {(row["access"], row["events"]) for row in rows} == {("exported", "1")}
    assert rows[0]["first"] == "2026-10-28 14:00:00.000 +08:00"
    # the 6 exports logged 8 ids for 800 records each: the report says the list is a sample
    assert "6 events listed fewer customer ids than records: up to 4,800 records' customers" in text


def _downloads(at: AppTest) -> list[str]:
    return [button.proto.label for button in at.get("download_button")]


def test_a_pager_link_opens_the_incident(office):
    at = _app("ana", incident=office["partner"].incident_id)
    assert "ptn-0001: low incident" in _text(at)


def test_a_pager_link_opens_the_incident_after_the_sign_in(office):
    # the on-call person follows <dashboard_url>/?incident=<id> in a new session: the sign-in comes first
    at = _app(incident=office["partner"].incident_id)
    assert "ptn-0001" not in _text(at)
    _sign_in(at, "ana")
    assert "ptn-0001: low incident" in _text(at) and "Alerts queue" not in _text(at)
    at = _sign_in(_app(actor="emp-0001"), "ana")  # a profile's link the same way
    assert "Role: customer_service" in _text(at)
    at = _sign_in(_app(), "ana")  # and no link: the queue
    assert "Alerts queue" in _text(at)


def test_a_closed_incident_has_no_deadline_running(office):
    at = _app("ana", incident=office["bulk"].incident_id)
    assert _metric(at, "Reporting deadline").value.endswith(" left")
    at.button(key="i-resolve").click().run()
    deadline = _metric(at, "Reporting deadline")
    assert deadline.value == "resolved" and "before the deadline" in deadline.delta
    at.button(key="i-reopen").click().run()
    assert _metric(at, "Reporting deadline").value.endswith(" left")  # reopened: the clock runs again


# -- actor, audit search, compliance, health -------------------------------------------------------------
def test_actor_profile(office):
    at = _app("ana", page="actor", actor="emp-0001")
    text = _text(at)
    assert "Role: customer_service" in text and "Incidents: 1" in text
    tables = [d.value for d in at.dataframe if "name" in d.value.columns]
    classes = next(t for t in tables if "government_id" in set(t["name"]))
    assert int(classes.set_index("name").loc["government_id", "records"]) == 4800


def test_an_audit_search_needs_a_reason_and_is_recorded(office):
    at = _app("audrey", page="search")
    at.text_input(key="s-customer").input("c-000003")
    # a customer's reads are searched in all the history kept, whatever the dates say (a DSAR asks for all)
    at.date_input(key="s-since").set_value(datetime(2026, 10, 29).date())
    next(b for b in at.button if b.label == "Search").click().run()  # without a reason
    assert "Give the reason for this search" in _text(at)
    at.text_input(key="s-reason").input("DSAR 2026-118")
    next(b for b in at.button if b.label == "Search").click().run()
    table = at.dataframe[0]  # the events (the summary by reader follows)
    assert len(table.value) == 1 and table.value["actor"][0] == "emp-0001"
    at.run()  # redrawing the page is not another search
    with _open(office["store_path"]) as store:
        accesses = store.data_accesses(DataAccessQuery())
    # the search's page, and its summary by reader (one reader), each recorded once
    assert [(a.by, a.kind, a.reason, a.results) for a in accesses] == [
        ("audrey", DataAccessKind.SEARCH, "DSAR 2026-118", 1),
        ("audrey", DataAccessKind.SEARCH, "DSAR 2026-118", 1),
    ]
    assert all(a.what["customer_id"] == "c-000003" for a in accesses)
    assert sorted(a.what.get("summary", "") for a in accesses) == ["", "by reader"]


def test_an_audit_search_by_field_shows_the_fields_and_the_time_to_the_millisecond(office):
    at = _app("audrey", page="search")
    assert at.selectbox(key="s-class").options[-1] == "unclassified"
    _search(at, field="passport_number")
    table = at.dataframe[0].value
    assert len(table) == 6 and set(table["fields"]) == {"name, passport_number"}
    assert set(table["actor"]) == {"emp-0001"}
    # newest first, local time with its offset: the last export, 14:50 in Shanghai
    assert table["time"][0] == "2026-10-28 14:50:00.000 +08:00"
    assert "looked for in the events classified `government_id`" in _text(at)  # narrowed by the class index
    at = _app("audrey", page="search")
    _search(at, field="phone")
    assert "passport_number" not in " ".join(at.dataframe[0].value["fields"])


def test_a_field_search_sums_its_events_up_by_reader_and_records_it(office):
    # "who read customers' passport numbers this month, and why?": a partner's agent read them too
    agent = {
        "id": "ptn-0009",
        "kind": "partner",
        "role": "courier",
        "department": "deliveries",
        "organization": "FastDelivery Ltd",
    }
    reads = [
        f.incoming(
            office["settings"],
            at=INCIDENT_HOUR + timedelta(minutes=m),
            actor=agent,
            record_count=2_000,
            fields=["passport_number"],
            purpose=purpose,
        )
        for m, purpose in ((1, "parcel handover"), (2, "parcel handover"), (3, None))
    ]
    with _open(office["store_path"]) as store:
        store.write(reads)
    at = _app("audrey", page="search")
    _search(at, field="passport_number")
    [table] = [d for d in at.dataframe if "reader" in d.value.columns]
    summary = table.value
    # the counts shown with separators, as every other table shows them (6,000, not 6000)
    shown = json.loads(table.proto.columns)
    assert {name: shown[name]["type_config"]["format"] for name in ("events", "records", "no purpose")} == {
        "events": "localized",
        "records": "localized",
        "no purpose": "localized",
    }
    # ... the events' records too (T19: "7363" in the search table beside "7,363" among the readers)
    [events] = [d for d in at.dataframe if "event_id" in d.value.columns]
    assert json.loads(events.proto.columns)["records"]["type_config"]["format"] == "localized"
    assert list(summary["reader"]) == ["ptn-0009", "emp-0001"]  # the most records first: 6,000, then 4,800
    assert list(summary["who"]) == [
        "partner: courier, deliveries, FastDelivery Ltd",
        "employee: customer service, service",
    ]
    assert list(summary["events"]) == [3, 6] and list(summary["records"]) == [6_000, 4_800]
    assert summary["purposes"][0] == "parcel handover (2)" and list(summary["no purpose"]) == [1, 6]
    assert summary["first access"][1] == "2026-10-28 14:00:00.000 +08:00"  # local, with its offset
    assert summary["last access"][1] == "2026-10-28 14:50:00.000 +08:00"
    at.run()  # redrawn, not summed up again
    with _open(office["store_path"]) as store:
        summed = [a for a in store.data_accesses(DataAccessQuery()) if a.what.get("summary") == "by reader"]
    assert [(a.by, a.reason, a.results, a.what["field"], a.what["events"]) for a in summed] == [
        ("audrey", "DSAR 2026-118", 2, "passport_number", 9)
    ]


def test_every_class_finds_a_field_stored_under_an_older_classification(office):
    # stored when passport_number was (say) an identity field: the class index has it there
    older = f.incoming(office["settings"], at=INCIDENT_HOUR, actor={"id": "emp-0002"}, fields=["passport_number"])
    with _open(office["store_path"]) as store:
        store.write([older._replace(classes=frozenset({"identity"}))])
    at = _app("audrey", page="search")
    _search(at, field="passport_number", actor="emp-0002")
    assert "No event matches." in _text(at)
    at.checkbox(key="s-every-class").check()
    next(b for b in at.button if b.label == "Search").click().run()
    assert list(at.dataframe[0].value["event_id"]) == [older.event.event_id]
    assert "looked for in the events classified" not in _text(at)


def test_an_alerts_event_is_looked_up_by_its_id_whatever_the_dates(office):
    with _open(office["store_path"]) as store:
        [wanted] = store.query_events(EventQuery(actor_id="ptn-0001")).items
    at = _app("audrey", page="search", event=wanted.event.event_id)  # the link an alert's evidence gives
    assert at.text_input(key="s-event").value == wanted.event.event_id
    at.date_input(key="s-since").set_value(date(2026, 10, 30))  # after the event
    _search(at)
    [table] = [d.value for d in at.dataframe]  # one event: no summary by reader
    assert list(table["event_id"]) == [wanted.event.event_id]
    with _open(office["store_path"]) as store:
        [access] = store.data_accesses(DataAccessQuery())
    assert access.what["event_id"] == wanted.event.event_id and "since" not in access.what


def test_an_alerts_sample_events_link_to_audit_search_for_auditors(office):
    with _open(office["store_path"]) as store:
        [wanted] = store.query_events(EventQuery(actor_id="ptn-0001")).items
        [alert] = store.get_alerts(office["partner"].alert_ids)
        evidence = {**alert.evidence, "event_ids": [wanted.event.event_id]}
        store.upsert_alerts([alert.model_copy(update={"evidence": evidence, "revision": 2})])
    links = [e.proto.label for e in _app("audrey", incident=office["partner"].incident_id).get("page_link")]
    assert f"Look up {wanted.event.event_id}" in links
    links = [e.proto.label for e in _app("ana", incident=office["partner"].incident_id).get("page_link")]
    assert not [label for label in links if label.startswith("Look up")]  # analysts do not search


def test_the_csv_export_lists_every_customer_masked_until_unmasked(office):
    at = _app("audrey", page="search")
    _search(at, actor="emp-0001", field="passport_number")
    at.button(key="s-export").click().run()
    rows = list(csv.DictReader(io.StringIO(at.session_state["s-csv"].csv)))
    assert len(rows) == 6 and json.loads(rows[0]["fields"]) == ["name", "passport_number"]
    masked = [c for row in rows for c in json.loads(row["customers"])]
    assert len(set(masked)) == 48 and all(c.startswith("cust#") for c in masked)  # all 8 of each, no "(+3)"
    # handed over as a zip of the CSV and its provenance, named for the search (the field's class searched for it)
    # and the second it was made
    assert "Download the export (6 events: CSV and provenance, zip)" in _downloads(at)
    name = at.session_state["s-csv"].archive_name
    assert re.fullmatch(
        r"accesswatch-events-actor-emp-0001-class-government_id-field-passport_number-\d{4}-\d\d-\d\d-to-\d{4}-\d\d-\d\d"
        r"-exported-\d{4}-\d\d-\d\d-\d{6}\.zip",
        name,
    ), name
    at.text_input(key="unmask-reason").input("DSAR 2026-118").run()
    at.button(key="unmask").click().run()
    at.button(key="s-export").click().run()
    rows = list(csv.DictReader(io.StringIO(at.session_state["s-csv"].csv)))
    assert sorted(c for row in rows for c in json.loads(row["customers"])) == BULK_CUSTOMERS
    with _open(office["store_path"]) as store:
        exports = [a for a in store.data_accesses(DataAccessQuery()) if a.kind is DataAccessKind.EXPORT]
    assert [(a.results, a.what["customer_ids"]) for a in exports] == [(6, "in clear"), (6, "masked")]


def test_a_customer_search_offers_the_requester_s_answer_naming_nobody_else(office):
    at = _app("audrey", page="search")
    _search(at, actor="emp-0001")
    assert not [b for b in at.button if b.key == "s-answer"]  # offered for one customer's search only
    _search(at, actor="", customer=BULK_CUSTOMERS[0])
    at.button(key="s-answer").click().run()
    answer = at.session_state["s-answer-csv"]
    rows = list(csv.DictReader(io.StringIO(answer.csv)))  # a plain table: the period is the cover note's
    assert answer.events == len(rows) == 2
    assert answer.notes[0].startswith("Accesses to your data recorded from ")
    assert [row["who"] for row in rows] == [
        "our staff (customer service, service)",
        "blue-sky (partner company), agency",
    ]
    assert (
        "emp-0001" not in answer.csv
        and "ptn-0001" not in answer.csv
        and BULK_CUSTOMERS[1] not in answer.csv
        and "cust#" not in answer.csv
    )
    assert _downloads(at)[-2:] == [
        "Download the answer's cover note (text)",
        "Download the answer's table (2 accesses)",
    ]
    with _open(office["store_path"]) as store:
        [recorded] = [a for a in store.data_accesses(DataAccessQuery()) if a.what.get("shape") == "subject answer"]
    assert (recorded.by, recorded.reason, recorded.results) == ("audrey", "DSAR 2026-118", answer.events)


def test_a_customer_with_no_access_kept_still_gets_an_answer_named_for_them_and_the_day(office):
    at = _app("audrey", page="search")
    _search(at, customer="c-never-read")
    assert "No event matches." in _text(at)
    at.button(key="s-answer").click().run()
    answer = at.session_state["s-answer-csv"]
    assert answer.events == 0
    assert answer.notes[0].startswith("No access to your data was recorded from ")
    assert "Download the answer's table (0 accesses)" in _downloads(at)
    # named for the customer as the screen shows them (masked), and the day: two requests' answers do not collide
    name = at.session_state["s-answer-csv-name"]
    assert re.fullmatch(r"access-request-answer-cust-[0-9a-f]{8}-\d{4}-\d\d-\d\d\.csv", name), name
    note = at.session_state["s-answer-note-name"]
    assert note == name.replace("access-request-answer-", "access-request-answer-note-")[: -len("csv")] + "txt"
    assert "c-never-read" not in name


def test_the_csv_export_pages_through_and_says_when_the_cap_cut_it(office, monkeypatch):
    from dashboard import queries

    monkeypatch.setattr(queries, "EXPORT_PAGE", 4)
    at = _app("audrey", page="search")
    _search(at, actor="emp-0001")
    at.button(key="s-export").click().run()
    export = at.session_state["s-csv"]
    with _open(office["store_path"]) as store:
        matching = len(store.query_events(EventQuery(actor_id="emp-0001", limit=10_000)).items)
    assert (export.events, export.complete) == (matching, True) and matching > 4
    assert "more matched than" not in _text(at)
    monkeypatch.setattr(queries, "EXPORT_CAP", 10)
    at.button(key="s-export").click().run()
    export = at.session_state["s-csv"]
    assert (export.events, export.complete) == (10, False)
    assert len(list(csv.DictReader(io.StringIO(export.csv)))) == 10
    assert "The export holds the newest 10 events only: more matched than the 10" in _text(at)


def test_the_access_log_pages_back_past_the_latest_two_hundred_and_filters(office):
    first = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)
    with _open(office["store_path"]) as store:
        for n in range(450):  # three at each time: a page ends inside a run of equal times
            store.record_data_access(
                DataAccess(
                    at=first + timedelta(hours=n // 3),
                    by="li" if n % 2 else "audrey",
                    role="auditor",
                    kind=DataAccessKind.SEARCH,
                    reason=f"case {n}",
                    what={"actor_id": "emp-0001"},
                    results=n,
                )
            )
    at = _app("audrey", page="compliance")
    seen: list[str] = []
    while True:
        seen += list(next(d.value for d in at.dataframe if "reason" in d.value.columns)["reason"])
        if at.button(key="c-older").disabled:
            break
        at.button(key="c-older").click().run()
    assert len(seen) == 450 and set(seen) == {f"case {n}" for n in range(450)}
    assert seen[0] in {"case 447", "case 448", "case 449"} and seen[-1] in {"case 0", "case 1", "case 2"}
    at.button(key="c-newer").click().run()
    assert "Page 2" in _text(at)
    at.text_input(key="c-who").input("li")
    at.date_input(key="c-since").set_value(date(2026, 6, 2))
    at.date_input(key="c-until").set_value(date(2026, 6, 2)).run()  # a local day: 16:00 to 16:00 UTC
    table = next(d.value for d in at.dataframe if "reason" in d.value.columns)
    expected = {f"case {n}" for n in range(450) if n % 2 and 16 <= n // 3 < 40}
    assert set(table["who"]) == {"li"} and set(table["reason"]) == expected and "Page 1" in _text(at)


def test_unmasking_takes_a_recorded_reason(office):
    at = _app("audrey", incident=office["bulk"].incident_id)
    at.text_input(key="unmask-reason").input("case 31").run()
    at.button(key="unmask").click().run()
    events = next(d.value for d in at.dataframe if "customers" in d.value.columns)
    assert "c-0000" in " ".join(events["customers"])
    with _open(office["store_path"]) as store:
        [view, access] = store.data_accesses(DataAccessQuery())
    assert (access.kind, access.reason) == (DataAccessKind.UNMASK, "case 31")
    assert (view.kind, view.reason) == (DataAccessKind.VIEW, "case 31")  # and what it then showed in clear


# the first five of each bulk export's eight customers: what the events table shows of them, the rest "(+3)"
SHOWN_OF_THE_BULK_READ = {c for n in range(6) for c in BULK_CUSTOMERS[n * 8 : n * 8 + 5]}


def _views(office) -> list[DataAccess]:
    with _open(office["store_path"]) as store:
        return [a for a in store.data_accesses(DataAccessQuery()) if a.kind is DataAccessKind.VIEW]


def _unmask(at: AppTest, reason: str) -> AppTest:
    at.text_input(key="unmask-reason").input(reason).run()
    return at.button(key="unmask").click().run()


def test_an_unmasked_session_records_the_customers_an_incident_s_events_showed_once_a_view(office):
    # a DPO's finding: unmasked with "curious", then an incident's events read in clear, and nothing said whose
    at = _app("audrey", incident=office["bulk"].incident_id)
    assert _views(office) == []  # masked: nobody's id shown, nothing to record
    [events] = [d for d in at.dataframe if "event_id" in d.value.columns]  # records with separators, as elsewhere
    assert json.loads(events.proto.columns)["records"]["type_config"]["format"] == "localized"
    _unmask(at, "curious")
    [view] = _views(office)
    assert (view.by, view.reason, view.incident_id, view.results) == (
        "audrey",
        "curious",
        office["bulk"].incident_id,
        6,
    )
    incident = office["bulk"].incident_id
    assert view.what == {"view": "incident events", "incident_id": incident, "events_of": "flagged", "page": 1}
    assert set(view.customer_ids) == SHOWN_OF_THE_BULK_READ and view.customers_in_clear == 30
    assert BULK_CUSTOMERS[7] not in view.customer_ids  # behind "(+3)": never on the screen
    # Streamlit runs the page again at each click: the same view showing the same ids is one reading
    at.run()
    at.run()
    assert len(_views(office)) == 1
    # under another reason, it is another reading
    at.button(key="mask-again").click().run()
    _unmask(at, "DSAR 2026-118")
    assert [v.reason for v in _views(office)] == ["DSAR 2026-118", "curious"]


def test_a_view_shown_again_after_the_configured_span_is_recorded_again(office, monkeypatch):
    monkeypatch.setenv("ACCESSWATCH_DASHBOARD__VIEW_RECORDED_AGAIN", "0s")
    at = _unmask(_app("audrey", incident=office["bulk"].incident_id), "curious")
    at.run()
    assert len(_views(office)) == 2


def test_the_audit_search_and_its_export_record_the_customers_they_showed_in_clear(office):
    at = _unmask(_app("audrey", page="search"), "DSAR 2026-118")
    _search(at, actor="emp-0001", field="passport_number")
    [view] = _views(office)
    assert view.what["view"] == "audit search" and view.what["actor_id"] == "emp-0001"  # its query: read again
    assert set(view.customer_ids) == SHOWN_OF_THE_BULK_READ and view.results == 6
    at.run()
    assert len(_views(office)) == 1
    at.button(key="s-export").click().run()
    with _open(office["store_path"]) as store:
        [export] = [a for a in store.data_accesses(DataAccessQuery()) if a.kind is DataAccessKind.EXPORT]
    assert sorted(export.customer_ids) == BULK_CUSTOMERS and export.customers_in_clear == 48  # the file holds all


def test_compliance_answers_who_saw_a_customer_in_clear(office):
    _unmask(_app("audrey", incident=office["bulk"].incident_id), "curious")
    at = _app("root", page="compliance")
    at.text_input(key="c-customer").input(BULK_CUSTOMERS[0]).run()
    table = next(d.value for d in at.dataframe if "reason" in d.value.columns)
    assert table[["who", "what", "reason"]].to_dict("records") == [
        {"who": "audrey", "what": "view", "reason": "curious"}
    ]
    # whom it showed: masked here as on every page (the one asked for first), in clear once unmasked, and recorded
    cell = table["customers in clear"][0]
    assert cell.startswith("cust#") and BULK_CUSTOMERS[0] not in cell and cell.count(",") == 19  # 20 of the 30
    assert cell.endswith(" and 10 more")
    _unmask(at, "DSAR 2026-120")
    table = next(d.value for d in at.dataframe if "reason" in d.value.columns)
    assert table["customers in clear"][0].startswith(f"{BULK_CUSTOMERS[0]}, ")
    newest = _views(office)[0]
    assert (newest.by, newest.what["view"], newest.what["customer_id"]) == ("root", "access log", BULK_CUSTOMERS[0])
    assert BULK_CUSTOMERS[0] in newest.customer_ids and len(newest.customer_ids) == 20
    at.run()  # its own record now among the rows: the same ids, the same view
    assert [v.by for v in _views(office)] == ["root", "audrey"]
    at.text_input(key="c-customer").input(BULK_CUSTOMERS[7]).run()  # in the events, never shown in clear
    assert not [d for d in at.dataframe if "reason" in d.value.columns]
    assert "Nobody under these filters." in _text(at)


def _access_log(at: AppTest):
    return next(d.value for d in at.dataframe if "reason" in d.value.columns)


def test_the_access_log_masks_the_customer_a_search_asked_for_as_every_page_does(office):
    # its "asked" column showed the customer id a search was for, in clear, to auditors who see pseudonyms
    target, record = BULK_CUSTOMERS[3], "crm/customer_record/R77001234"
    _search(_app("audrey", page="search"), customer=target, resource=record)
    at = _app("audrey", page="compliance")
    table = _access_log(at)
    cells = " ".join(map(str, table.to_numpy().ravel()))
    assert target not in cells and "R77001234" not in cells  # in no column
    named = pseudonym(target, load_key(office["settings"].data_dir))  # the form and key of every page
    assert set(table["what"]) == {"search"} and len(table) == 2  # the search and its readers
    assert all(
        f"customer_id={named}" in asked and "resource=crm/customer_record/R•••" in asked for asked in table["asked"]
    )
    assert _views(office) == []  # nothing shown in clear, nothing recorded
    _unmask(at, "DSAR 2026-121")
    asked = list(_access_log(at)["asked"])
    assert sum(f"customer_id={target}, resource={record}" in cell for cell in asked) == 2  # in clear once unmasked
    [view] = _views(office)  # and recorded as shown in clear, as the ids of every other cell
    assert (view.what["view"], view.customer_ids) == ("access log", [target])


def test_who_saw_a_customer_finds_an_export_past_the_ids_it_lists(office, monkeypatch):
    # an export of thousands lists its first customers: one past them was answered "nobody"
    from dashboard import queries

    at = _unmask(_app("audrey", page="search"), "case 40")
    _search(at, actor="emp-0001")  # its page's view recorded, listing all it showed
    listed = queries.CUSTOMERS_LISTED
    monkeypatch.setattr(queries, "CUSTOMERS_LISTED", 3)
    at.button(key="s-export").click().run()
    monkeypatch.setattr(queries, "CUSTOMERS_LISTED", listed)  # the export alone cut
    [export] = [a for a in _views_and_exports(office) if a.kind is DataAccessKind.EXPORT]
    assert len(export.customer_ids) == 3 and export.customers_unlisted > 40
    routine = "c-900000"  # emp-0001's first routine read, the oldest event the export held
    assert routine not in export.customer_ids
    at = _app("root", page="compliance")
    at.text_input(key="c-customer").input(routine).run()
    table = _access_log(at)
    assert list(table["what"]) == ["export"]
    named = pseudonym(routine, load_key(office["settings"].data_dir))
    assert table["customers in clear"][0].startswith(f"{named} (not listed: found by its query, read again); cust#")
    at.text_input(key="c-customer").input("c-900001").run()  # emp-0002's, in no export
    assert "Nobody under these filters." in _text(at)
    at.text_input(key="c-customer").input(routine)
    _unmask(at, "DSAR 2026-122")
    assert _access_log(at)["customers in clear"][0].startswith(f"{routine} (not listed")
    newest = _views(office)[0]  # its id shown in clear on the row: recorded as every other
    assert (newest.by, newest.what["view"], routine in newest.customer_ids) == ("root", "access log", True)


def _views_and_exports(office) -> list[DataAccess]:
    with _open(office["store_path"]) as store:
        return store.data_accesses(DataAccessQuery())


def test_compliance_figures(office):
    at = _app("audrey", page="compliance")
    figures = {m.label: m.value for m in at.metric}
    assert figures["Incidents raised"] == "2"
    assert figures["Reviewed"] == "0%"
    assert figures["Open past the 48-hour deadline"] == "0"
    # the partner's first access, in the words people use for it
    assert any("first-time access" in d.value.columns for d in at.dataframe)
    assert not any("new_access" in d.value.columns for d in at.dataframe)


def test_compliance_counts_the_records_read_outside_a_contract_on_their_own(office):
    # a declared contract broken was one more column of "outside their usual scope", headed partner_contract
    breach = f.alert(
        actor_id="ptn-0001",
        actor_kind="partner",
        actor_organization="blue-sky",
        detector="partner_contract",
        window_start=INCIDENT_HOUR,
        window_end=INCIDENT_HOUR + timedelta(hours=2),
        evidence={
            "contract": {"organization": "Blue Sky", "data_classes": ["contact"]},
            "outside_contract": {"financial": {"records": 90, "sensitivity": "high"}},
            "records_outside_contract": 90,
            "records": 90,
            "records_in_alert": 1500,  # its two windows: 90 and 1,410
            "findings": 2,
        },
    )
    with _open(office["store_path"]) as store:
        store.upsert_alerts([breach])
    at = _app("audrey", page="compliance")
    [scope] = [d.value for d in at.dataframe if "first-time access" in d.value.columns]
    assert list(scope.columns) == ["first-time access"]
    assert _metric(at, "Records read outside a contract").value == "1,500"
    [breaches] = [d.value for d in at.dataframe if "records read outside the contract" in d.value.columns]
    assert breaches.to_dict("records") == [
        {
            "company": "Blue Sky",
            "records read outside the contract": 1500,
            "agents": 1,
            "alerts": 1,
            "classes": "financial",
        }
    ]


def test_compliance_names_the_partner_companies_outside_their_usual_scope_and_the_classes(office):
    # a DPO's "which partner companies?": the day's count per detector named none
    sensitive = f.alert(
        actor_id="ptn-0902",
        actor_kind="partner",
        actor_organization="north-wind",
        detector="sensitive_access",
        window_start=INCIDENT_HOUR,
        window_end=INCIDENT_HOUR + timedelta(hours=1),
        evidence={"classes": ["financial", "government_id"], "records_by_class": {"financial": 30, "contact": 4}},
    )
    new = f.alert(
        actor_id="ptn-0903",
        actor_kind="partner",
        actor_organization="north-wind",
        detector="new_access",
        window_start=INCIDENT_HOUR + timedelta(hours=2),
        window_end=INCIDENT_HOUR + timedelta(hours=3),
        evidence={"new": [{"what": "data_class", "value": "health"}, {"what": "resource", "value": "crm/x"}]},
    )
    employee = f.alert(actor_id="emp-0002", detector="off_hours", window_start=INCIDENT_HOUR)  # no partner
    with _open(office["store_path"]) as store:
        store.upsert_alerts([sensitive, new, employee])
    at = _app("audrey", page="compliance")
    [companies] = [d.value for d in at.dataframe if "found" in d.value.columns]
    assert companies.to_dict("records") == [
        {
            "company": "north-wind",
            "alerts": 2,
            "agents": 2,
            "found": "first-time access, sensitive data read",
            "data classes": "contact, financial, government id, health",
        },
        {"company": "blue-sky", "alerts": 1, "agents": 1, "found": "first-time access", "data classes": ""},
    ]


def test_compliance_splits_the_sensitive_data_read_by_kind_of_actor(office):
    # a DPO's "how much sensitive data did partners read": beside the bulk read's 4,800 passports (an employee),
    # a partner's agent reads 40 and 2, a service account 1,000
    settings = office["settings"]
    partner = {"id": "ptn-0001", "kind": "partner", "role": "agency", "organization": "blue-sky"}
    reads = [
        (INCIDENT_HOUR + timedelta(hours=1), partner, 40),
        (INCIDENT_HOUR + timedelta(hours=2), partner, 2),
        (INCIDENT_HOUR + timedelta(hours=1), {"id": "svc-backup", "kind": "service"}, 1000),
    ]
    with _open(office["store_path"]) as store:
        store.write(
            [
                f.incoming(settings, at=at, actor=actor, fields=["passport_number"], record_count=n)
                for at, actor, n in reads
            ]
        )
    at = _app("audrey", page="compliance")
    [table] = [d.value for d in at.dataframe if "partners" in d.value.columns]
    assert table.set_index("class").loc["government_id"].to_dict() == {
        "employees": 4800,
        "partners": 42,
        "service accounts": 1000,
    }
    assert "Records read in the 30 days, by class and kind of actor." in _text(at)
    at.segmented_control(key="c-kind").set_value("partner").run()
    assert "read per local day, by partners only. Red rules: days of high or critical sensitive-data alerts about" in (
        _text(at)
    )


def test_compliance_lists_the_sensitive_reads_a_nightly_job_hides_in_the_chart(office):
    bulk = office["bulk"]
    sensitive = f.alert(
        actor_id="emp-0001",
        detector="sensitive_access",
        severity=Severity.CRITICAL,
        window_start=INCIDENT_HOUR,
        window_end=INCIDENT_HOUR + timedelta(hours=1),
        incident_id=bulk.incident_id,
        evidence={"high_sensitivity_records": 4800, "records": 4800, "classes": ["government_id"]},
    )
    routine = f.alert(actor_id="emp-0002", detector="sensitive_access", severity=Severity.MEDIUM)
    with _open(office["store_path"]) as store:
        store.upsert_alerts([sensitive, routine])
    at = _app("audrey", page="compliance")
    [table] = [d for d in at.dataframe if "sensitive records" in d.value.columns]
    reads = table.value
    # the figures shown with separators (T14: "40000" beside every other page's "40,000")
    shown = json.loads(table.proto.columns)
    assert shown["sensitive records"]["type_config"]["format"] == "localized"
    assert list(reads["actor"]) == ["emp-0001 (employee)"]  # high or critical only
    assert list(reads["flagged activity"]) == ["2026-10-28 14:00–15:00 +08:00"]
    assert list(reads["sensitive records"]) == [4800] and list(reads["incident"]) == [bulk.incident_id]
    assert "Red rules: days of high or critical sensitive-data alerts" in _text(at)


def test_an_audit_search_says_how_many_events_match(office, monkeypatch):
    monkeypatch.setenv("ACCESSWATCH_DASHBOARD__PAGE_SIZE", "5")
    at = _app("audrey", page="search")
    _search(at, field="passport_number")
    assert "Page 1 of 2 · events 1–5 of 6, newest first; this search was recorded." in _text(at)
    at.button(key="s-older").click().run()
    assert "Page 2 of 2 · events 6–6 of 6, newest first" in _text(at)
    with _open(office["store_path"]) as store:
        assert len(store.data_accesses(DataAccessQuery())) == 3  # each page, and the summary by reader once


def test_health_page(office):
    at = _app("ana", page="health")
    figures = {m.label: m.value for m in at.metric}
    assert figures["Events stored"] == f"{len(_events(office['settings'])):,}"
    assert figures["Dead letters"] == "0"
    # the lag, short enough for its column, and no arrow (an arrow up reads as good news); the time below it
    lag = _metric(at, "Event-time lag")
    assert lag.value.endswith(" days") and lag.delta in (None, "")
    assert "Newest event: 2026-10-28 17:14 +08:00 (Asia/Shanghai)." in _text(at)


def test_related_incidents_say_when_their_flagged_activity_was(office):
    # an earlier day-long incident of the same actor, flagged for one hour of it: the link tells that hour
    day = datetime(2026, 10, 26, 16, 0, tzinfo=UTC)  # Tue 27 Oct 00:00 in Asia/Shanghai
    hour = day + timedelta(hours=3)
    spans = [
        [format_utc(hour), format_utc(hour + timedelta(hours=1)), 6.0, "high", 500],
        [format_utc(day), format_utc(day + timedelta(days=1)), 3.0, "medium", 700],
    ]
    earlier = f.alert(window_start=day, window_end=day + timedelta(days=1), evidence={"findings": 2, "spans": spans})
    earlier.incident_id = "inc-earlier"
    with _open(office["store_path"]) as store:
        store.upsert_alerts([earlier], [f.incident_of(earlier, "inc-earlier", 40.0)])
    at = _app("ana", incident=office["bulk"].incident_id)
    links = [e.proto.label for e in at.get("page_link")]
    assert any("2026-10-27 03:00–04:00 +08:00" in label for label in links), links
    assert not any("2026-10-27 00:00" in label for label in links)  # not the day's start


def test_the_log_s_words_on_an_incident_page_are_shown_as_written_never_as_markup_or_a_link(office):
    # a purpose is whoever writes the log's text: it must not become emphasis, a heading or a link to click
    hostile = "case #1 **urgent** | <b>x</b> see http://evil.example and www.evil.example"
    with _open(office["store_path"]) as store:
        [alert] = store.get_alerts(office["bulk"].alert_ids)
        store.upsert_alerts([alert.model_copy(update={"summary": f"Read for {hostile}.", "revision": 2})])
    at = _app("ana", incident=office["bulk"].incident_id)
    sources = [m.value for m in at.markdown]
    said = next(source for source in sources if "urgent" in source and "Read for" in source)
    assert "\\*\\*urgent\\*\\*" in said and "\\<b\\>" in said and "\\#1" in said
    assert "` http://evil.example `" in said and "` www.evil.example" in said  # in code: never a link


def test_an_incident_address_is_shown_as_typed_never_as_a_link(office):
    # a link planted in the address must not come back as a clickable "sign in again" (tester T9)
    at = _app("ana", incident="[Session expired: sign in again](https://evil.example/login)")
    [error] = [e.value for e in at.error]
    assert "\\[Session expired: sign in again\\](` https://evil.example/login) `" in error


def test_a_search_and_an_incident_s_events_say_what_retention_deleted_of_their_range(office):
    """A range reaching before the latest purge's horizon shows fewer events than were logged: it says so, with the
    horizon and, where the hourly figures count it, how many went (T19: "events 1-50 of 86" of 328 logged)."""
    horizon = START + timedelta(days=10)  # after the bulk read, on the hour: its events go, but for the newest
    with _open(office["store_path"]) as store:
        assert store.purge(RetentionPolicy(horizon, START - timedelta(days=1))).events > 0
        [purge] = store.purges()
        kept_of_bulk = store.count_events(EventQuery(actor_id="emp-0001", since=INCIDENT_HOUR), 100).events
    zone = office["settings"].organisation.tz
    ran, before = purge.at.astimezone(zone).date().isoformat(), queries.local_time(horizon, zone)
    at = _app("audrey", page="search")
    at.date_input(key="s-since").set_value(START.date())
    _search(at, actor="emp-0002")
    # emp-0002's 72 reads of the 8 working days, all before the horizon
    assert (
        f"72 events of this range were deleted by retention on {ran} (events stamped before {before}): they are not"
        " shown or counted here (the evidence alerts cite is kept)."
    ) in [info.value for info in at.info]
    assert "No event matches." in _text(at)
    _search(at, actor="", customer=BULK_CUSTOMERS[0])  # all the history: which of the deleted it matched is gone
    assert (
        f"This range reaches before {before}: retention deleted the events stamped before it on {ran}"
        f" ({purge.events:,} events of every actor, the evidence alerts cite kept), and they are not shown or counted"
        " here; how many of them this search would have matched is not known."
    ) in [info.value for info in at.info]
    at.date_input(key="s-since").set_value((horizon + timedelta(days=1)).date())
    _search(at, customer="")
    assert not [info for info in at.info if "retention" in info.value]  # a range after the horizon: nothing to say

    at = _app("audrey", incident=office["bulk"].incident_id)  # the header's figures are the alerts': 4,800 records
    assert (
        f"{6 - kept_of_bulk} events of this range were deleted by retention on {ran} (events stamped before"
        f" {before}): they are not shown or counted here (the evidence alerts cite is kept)."
    ) in [info.value for info in at.info]


def test_a_report_prepared_in_clear_is_not_shown_once_the_viewer_masks_again(office):
    at = _app("audrey", incident=office["bulk"].incident_id)
    _unmask(at, "breach notification, case 31")
    at.button(key="r-make").click().run()
    assert [b for b in at.get("download_button") if b.proto.label == "Download Markdown"]
    at.button(key="mask-again").click().run()
    # it was kept in the session and shown as made, whatever the viewer saw now
    assert not [b for b in at.get("download_button") if b.proto.label == "Download Markdown"]
    at.button(key="r-make").click().run()
    assert [b for b in at.get("download_button") if b.proto.label == "Download Markdown"]


def test_a_report_prepared_by_an_auditor_without_a_reason_says_how_to_include_the_list(office):
    at = _app("audrey", incident=office["bulk"].incident_id)
    at.button(key="r-make").click().run()
    text = _text(at)
    # an auditor was told the list "is available to auditors" (T19)
    assert "The list is available to auditors" not in text
    assert "Not included: prepare the report with a reason to include the list; its export is recorded." in text
    # the bulk read logged 8 customers of each 800 records: the caveat says so without pointing at a list not there
    assert "the ids logged are not all of them." in text and "the list below is not complete" not in text
