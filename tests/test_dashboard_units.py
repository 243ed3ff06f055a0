"""The dashboard's plain parts: passwords and roles, masking, the report, the usual band, the launcher."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import re
import subprocess
import sys
import zipfile
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from pydantic import ValidationError

from dashboard import charts, deleted, queries, report, ui
from dashboard.auth import GRANTS, Identity, Permission, Role, hash_password, oidc_identity, sign_in, verify_password
from dashboard.launch import environment, streamlit_command
from dashboard.markdown import markdown_text
from dashboard.masking import Masker, load_key, mask_resource_id, pseudonym
from detectors.base import CITED
from models.alert import AlertStatus, Severity
from models.config import Dashboard, DashboardOidc, DashboardUser
from models.dashboard import AlertDayCount, ClassDay, DataAccessKind, DataAccessQuery, HourActivity
from models.event import format_utc
from models.flagged import flagged, runs
from models.incident import Incident, TriageAction, TriageActionKind
from store.base import EventQuery, EventTotal, IncidentQuery, PurgeRecord
from store.retention import RetentionPolicy
from tests import factories as f


def _users(**extra) -> Dashboard:
    return Dashboard(
        users={
            "ana": DashboardUser(role="analyst", password_hash=hash_password("s3cret", iterations=1000)),
            "demo": DashboardUser(role="admin", password_hash=hash_password("demo-pw", iterations=1000), demo=True),
        },
        **extra,
    )


# -- passwords and roles --------------------------------------------------------------------------
def test_password_hashes_are_salted_and_verify():
    first, second = hash_password("s3cret", iterations=1000), hash_password("s3cret", iterations=1000)
    assert first != second and first.startswith("pbkdf2_sha256$1000$")
    assert verify_password("s3cret", first) and verify_password("s3cret", second)
    assert not verify_password("S3cret", first)
    assert not verify_password("s3cret", "md5$1$x$y") and not verify_password("s3cret", "garbage")
    with pytest.raises(ValueError):
        hash_password("")


def test_sign_in_checks_the_password_and_keeps_demo_users_out_of_production():
    settings = _users()
    identity = sign_in(settings, " ana ", "s3cret")
    assert identity == Identity("ana", Role.ANALYST, "ana", "password")
    assert sign_in(settings, "ana", "wrong") is None
    assert sign_in(settings, "nobody", "s3cret") is None
    assert sign_in(settings, "demo", "demo-pw") is None
    assert sign_in(_users(demo_sign_in=True), "demo", "demo-pw").role is Role.ADMIN


def test_a_malformed_hash_in_the_config_is_refused():
    with pytest.raises(ValueError, match="password_hash"):
        DashboardUser(role="analyst", password_hash="plain-text-password")


def test_oidc_roles_come_from_the_config():
    settings = Dashboard(oidc=DashboardOidc(enabled=True, roles={"Li.Wei@Example.com": "auditor"}))
    assert oidc_identity(settings, "li.wei@example.com", "Li Wei").role is Role.AUDITOR
    assert oidc_identity(settings, "other@example.com", None) is None  # no default role: refused
    assert oidc_identity(settings, None, None) is None
    lenient = Dashboard(oidc=DashboardOidc(enabled=True, default_role="analyst"))
    assert oidc_identity(lenient, "other@example.com", None).role is Role.ANALYST


def test_the_role_rules():
    analyst, auditor, admin = (GRANTS[r] for r in (Role.ANALYST, Role.AUDITOR, Role.ADMIN))
    assert Permission.TRIAGE in analyst and Permission.TRIAGE not in auditor
    for permission in (Permission.AUDIT_SEARCH, Permission.UNMASK, Permission.CUSTOMER_LIST, Permission.COMPLIANCE):
        assert permission not in analyst and permission in auditor
    assert admin == frozenset(Permission)


def test_only_triagers_triage(sqlite_store, settings):
    auditor = Identity("audrey", Role.AUDITOR, "Audrey", "password")
    with pytest.raises(queries.TriageRefused):
        queries.triage(sqlite_store, settings, auditor, "inc-1", TriageActionKind.ACKNOWLEDGE)


def test_an_audit_search_without_a_reason_reads_nothing(sqlite_store):
    from store.base import EventQuery

    auditor = Identity("audrey", Role.AUDITOR, "Audrey", "password")
    with pytest.raises(ValueError, match="reason"):
        queries.audit_search(sqlite_store, auditor, EventQuery(customer_id="c-1"), "  ")
    analyst = Identity("ana", Role.ANALYST, "Ana", "password")
    with pytest.raises(PermissionError):
        queries.audit_search(sqlite_store, analyst, EventQuery(customer_id="c-1"), "curious")


# -- masking ---------------------------------------------------------------------------------------------
def test_pseudonyms_are_stable_per_key_and_hide_the_id(tmp_path):
    key = load_key(tmp_path)
    assert load_key(tmp_path) == key  # kept in the data dir
    assert (tmp_path / "dashboard-mask.key").stat().st_mode & 0o777 == 0o600
    assert pseudonym("c-000001", key) == pseudonym("c-000001", key) != pseudonym("c-000002", key)
    assert pseudonym("c-000001", key) != pseudonym("c-000001", b"another installation")
    assert "000001" not in pseudonym("c-000001", key)


def test_the_masker_masks_customers_record_ids_and_free_values():
    masker = Masker(b"k")
    event = f.event_dict(customer_ids=["c-1", "c-2"], resource={"id": "R93432556"}, extra={"card": "4111"})
    masked = masker.event(event)
    assert all(c.startswith("cust#") for c in masked["customer_ids"])
    assert masked["resource"]["id"] == "R•••" and masked["extra"] == {"card": "•••"}
    assert mask_resource_id("customers") == "customers"  # a table name points at nobody
    assert Masker(b"k", unmasked=True).event(event) == event
    assert masker.customers([f"c-{n}" for n in range(8)], limit=2).endswith("(+6)")


def test_an_access_s_query_shows_the_customer_and_record_it_asked_for_masked_as_every_page():
    asked = {"customer_id": "c-1", "resource": "crm/customer_record/R93432556", "cap": 50_000, "customer_ids": "masked"}
    assert Masker(b"k").asked(asked) == {
        **asked,
        "customer_id": pseudonym("c-1", b"k"),
        "resource": "crm/customer_record/R•••",
    }
    assert Masker(b"k", unmasked=True).asked(asked) == asked
    assert Masker(b"k").asked({"resource": "crm/customer_record", "view": "access log"}) == {
        "resource": "crm/customer_record",  # a kind of record names nobody
        "view": "access log",
    }


def test_a_date_in_a_file_s_name_shows_where_record_ids_stay_masked():
    # the weekly newsletter's file showed as "exports/n•••": its date was taken for a record id
    for shown in (
        "exports/newsletter_20261012.csv",
        "report-2026-10-12.pdf",
        "backup_2026_10_12.tar",
        "daily.20261231.json",
        "customers",
    ):
        assert mask_resource_id(shown) == shown
    for masked in (
        "R93432556",  # a record id
        "C0012345",
        "cust-1234",
        "R20261012",  # a date's digits glued to a letter: as likely a record's number
        "20261012",  # a bare number, a date or not
        "2026-10-12",
        "orders_20261012_88412.csv",  # a date, and a record's number beside it
        "backup_20261012_0300.tar",  # ... or any other run of digits
        "exports/newsletter_20261312.csv",  # month 13: no date
        "exports/newsletter_20260230.csv",  # 30 February
        "exports/newsletter_2026-10_12.csv",  # separators that differ: no date written so
    ):
        assert mask_resource_id(masked) == masked[0] + "•••", masked
    evidence = Masker(b"k").evidence({"resources": ["data-warehouse/table/exports/newsletter_20261012.csv"]})
    assert evidence["resources"] == ["data-warehouse/table/exports/newsletter_20261012.csv"]


# an event a producer wrote as tester T19 did: a customer's id as the record's id, an e-mail address as another's, a
# purpose quoting the customer and their passport
T19_PURPOSE = "complaint of c-152762, passport E12345678"


def test_a_customer_s_id_as_a_record_id_shows_as_the_customer_s_pseudonym():
    masker = Masker(b"k")
    assert masker.resource_id("CUST-XJ9K", ["CUST-XJ9K"]) == pseudonym("CUST-XJ9K", b"k")  # as in its customers
    assert masker.resource_id("CUST-XJ9K", ["c-1"]) == "CUST-XJ9K"  # not this event's customer: a record's name
    for person in ("jane.doe@example.com", "crm/jane@example", "06 12 34 56 78", "+1 (212) 555-0199"):
        assert masker.resource_id(person) == "•••", person  # the person, not a record: not even an initial
    assert masker.resource_id("R93432556") == "R•••" and masker.resource_id("dw.customer_contacts") == (
        "dw.customer_contacts"
    )
    # unmasked for one customer's request, the others named in a record id stay pseudonyms
    subject = Masker(b"k", unmasked=True).for_subject("c-me")
    assert subject.resource_id("c-other", ["c-me", "c-other"]) == pseudonym("c-other", b"k")
    assert subject.resource_id("c-me", ["c-me"]) == "c-me"
    assert Masker(b"k", unmasked=True).resource_id("jane.doe@example.com") == "jane.doe@example.com"


def test_a_purpose_masks_customers_ids_addresses_and_numbers_and_keeps_tickets_readable():
    masker = Masker(b"k")
    assert masker.text(T19_PURPOSE, ["c-152762"]) == f"complaint of {pseudonym('c-152762', b'k')}, passport E•••"
    assert masker.text(T19_PURPOSE) == "complaint of c•••, passport E•••"  # another event's customer: a number
    for ticket in ("TICKET-77", "SR-20261029", "ticket #123456", "INC0012345", "DSAR 2026-118, case 31"):
        assert masker.text(ticket) == ticket
    assert masker.text("write to jane.doe@example.com.") == "write to •••."
    assert masker.text("call +1 (212) 555-0199 or 06 12 34 56 78 re SR-1234") == "call ••• or ••• re SR-1234"
    assert masker.text("weekly exports/newsletter_20261012.csv, order 88412") == (
        "weekly exports/newsletter_20261012.csv, order 8•••"  # a file's date reads as in a resource id
    )
    assert masker.text("c-1 and TICKET-c-1", ["c-1"]) == f"{pseudonym('c-1', b'k')} and TICKET-c-1"  # whole ids
    assert Masker(b"k", unmasked=True).text(T19_PURPOSE, ["c-152762"]) == T19_PURPOSE
    subject = Masker(b"k", unmasked=True).for_subject("c-9")
    assert subject.text(T19_PURPOSE, ["c-152762"]) == f"complaint of {pseudonym('c-152762', b'k')}, passport E12345678"
    # the installation's own tickets, and no others
    jira = Masker(b"k", references=r"OPS-\d+")
    assert jira.text("OPS-4711 and SR-88412") == "OPS-4711 and S•••"


def _documented_alert(**overrides):
    """A documented finding's alert (``detectors.base``): its summary quotes the purposes its evidence keeps."""
    purposes = ["TICKET-77", T19_PURPOSE]
    return f.alert(
        summary=f"Employee emp-0001 read 5,000 records, 50x their usual of 100{CITED}{', '.join(purposes)}.",
        evidence={"records": 5000, "event_ids": ["evt-1"], "documented": {"share": 1.0, "purposes": purposes}},
        **overrides,
    )


def test_a_summary_shows_the_purposes_it_quotes_masked_on_every_page_and_the_report(sqlite_store, settings):
    """Before, a documented finding's summary quoted its purposes in clear ("... the accesses cite complaint of
    c-152762, passport E12345678") to viewers who see them masked everywhere else: the incident's header and
    alerts, the queue, the actor's incidents and the report."""
    masked, unmasked = Masker(b"k"), Masker(b"k", unmasked=True)
    alert = _documented_alert()
    shown = masked.summary(alert.summary, alert.documented_purposes)
    # the detector's words as written, the purposes as the evidence shows them
    assert shown == (
        "Employee emp-0001 read 5,000 records, 50x their usual of 100; the accesses cite TICKET-77,"
        " complaint of c•••, passport E•••."
    )
    assert unmasked.summary(alert.summary, alert.documented_purposes) == alert.summary
    incident = f.incident_of(alert, "inc-1", 60.0)
    plain = f.alert(actor_id="emp-0002", summary="Employee emp-0002 read 4,000 records of c-152762.")
    other = f.incident_of(plain, "inc-2", 50.0)
    sqlite_store.upsert_alerts([alert, plain], [incident, other])
    incidents = sqlite_store.query_incidents(IncidentQuery())
    # a sentence that quotes no purpose is the detector's, as written
    assert queries.summaries_shown(sqlite_store, incidents, masked) == {"inc-1": shown, "inc-2": plain.summary}
    assert queries.summaries_shown(sqlite_store, incidents, unmasked)["inc-1"] == alert.summary
    view = queries.view_shown(queries.incident_view(sqlite_store, settings, "inc-1"), masked)
    assert (view.incident.summary, [a.summary for a in view.alerts]) == (shown, [shown])
    assert sqlite_store.get_alerts([alert.alert_id])[0].summary == alert.summary  # the record keeps its sentence
    made = dataclasses.replace(_report(settings, None), view=view)
    for text in (report.markdown(made), report.html_document(made)):
        assert "E12345678" not in text and "152762" not in text and "passport E•••" in text


def test_the_readable_references_must_hold_within_the_masker_s_pattern():
    with pytest.raises(ValidationError, match=r"\(\?i:\.\.\.\)"):
        Dashboard(readable_references=r"(?i)ticket-\d+")  # a global flag inside another pattern: refused there
    with pytest.raises(ValidationError, match="empty text"):
        Dashboard(readable_references=r"\d*")
    assert Dashboard(readable_references=r"(?i:ticket)-\d+")


def test_event_rows_csv_rows_readers_and_evidence_mask_the_customers_ids_they_quote(sqlite_store, settings):
    sqlite_store.write(
        [
            f.incoming(
                settings,
                at=f.at(hours=2),
                customer_ids=["CUST-XJ9K"],
                resource={"system": "crm", "type": "customer_record", "id": "CUST-XJ9K"},
                purpose="TICKET-77",
            ),
            f.incoming(
                settings,
                at=f.at(hours=1),
                customer_ids=["c-152762"],
                resource={"system": "crm", "type": "customer_record", "id": "jane.doe@example.com"},
                purpose="TICKET-78",
            ),
            f.incoming(
                settings,
                at=f.at(hours=0),
                customer_ids=["c-152762"],
                resource={"system": "booking", "type": "reservation", "id": "R93432556"},
                purpose=T19_PURPOSE,
            ),
        ]
    )
    items = sqlite_store.query_events(EventQuery()).items
    cust, c1 = pseudonym("CUST-XJ9K", b"k"), pseudonym("c-152762", b"k")
    rows = [queries.event_row(item, Masker(b"k"), UTC) for item in items]
    assert [(row["resource"], row["customers"], row["purpose"]) for row in rows] == [
        (f"crm/customer_record/{cust}", cust, "TICKET-77"),
        ("crm/customer_record/•••", c1, "TICKET-78"),
        ("booking/reservation/R•••", c1, f"complaint of {c1}, passport E•••"),
    ]
    auditor = Identity("audrey", Role.AUDITOR, "Audrey", "password")
    export = queries.export_events(sqlite_store, auditor, EventQuery(), "case 1", Masker(b"k"), UTC, 10)
    exported = list(csv.DictReader(io.StringIO(export.csv)))
    assert [row["resource"] for row in exported] == [row["resource"] for row in rows]
    assert [row["purpose"] for row in exported] == [row["purpose"] for row in rows]
    assert all(needle not in export.csv for needle in ("CUST-XJ9K", "jane.doe", "152762", "E12345678"))
    # the readers' purposes, with no one event's customers: the numbers masked as words
    [reader] = queries.search_readers(sqlite_store, auditor, EventQuery(), "case 1").readers
    stated = queries.reader_row(reader, Masker(b"k"), UTC)["purposes"]
    assert "complaint of c•••, passport E••• (1)" in stated and "TICKET-77 (1)" in stated
    # unmasked, the page records the customers a record id or a purpose showed in clear, beyond the first five
    unmasked = Masker(b"k", unmasked=True)
    many = [f"c-{n}" for n in range(8)] + ["c-152762"]
    sqlite_store.write([f.incoming(settings, at=f.at(hours=3), customer_ids=many, purpose=T19_PURPOSE)])
    newest = sqlite_store.query_events(EventQuery(limit=1)).items
    assert queries.customers_on_screen(newest, unmasked) == [*many[:5], "c-152762"]
    evidence = Masker(b"k").evidence({"documented": {"share": 1.0, "purposes": ["TICKET-77", "c-152762"]}})
    assert evidence["documented"]["purposes"] == ["TICKET-77", "c•••"]


def test_event_times_carry_milliseconds_and_the_utc_offset():
    moment = datetime(2026, 3, 29, 0, 59, 59, 987654, tzinfo=UTC)
    assert queries.event_time(moment, ZoneInfo("Asia/Shanghai")) == "2026-03-29 08:59:59.987 +08:00"
    assert queries.event_time(moment, UTC) == "2026-03-29 00:59:59.987 +00:00"
    # Berlin's clocks went forward at 01:00 UTC that day: the offset says which side of it
    berlin = ZoneInfo("Europe/Berlin")
    assert queries.event_time(moment, berlin) == "2026-03-29 01:59:59.987 +01:00"
    assert queries.event_time(moment + timedelta(hours=1), berlin) == "2026-03-29 03:59:59.987 +02:00"


def test_an_export_has_every_customer_pages_to_its_cap_and_is_recorded(sqlite_store, settings, monkeypatch):
    monkeypatch.setattr(queries, "EXPORT_PAGE", 2)
    odd = 'c,"7;'  # an id a comma- or semicolon-joined cell would split
    sqlite_store.write(
        [
            f.incoming(settings, at=f.at(hours=h), customer_ids=[f"c-{n}" for n in range(h + 6)] + [odd])
            for h in range(5)
        ]
    )
    auditor = Identity("audrey", Role.AUDITOR, "Audrey", "password")
    whole = queries.export_events(sqlite_store, auditor, EventQuery(), "case 1", Masker(b"k", unmasked=True), UTC, 5)
    assert (whole.events, whole.complete) == (5, True)
    rows = list(csv.DictReader(io.StringIO(whole.csv)))
    assert json.loads(rows[0]["customers"]) == [f"c-{n}" for n in range(10)] + [odd]  # newest first, all 11
    cut = queries.export_events(sqlite_store, auditor, EventQuery(), "case 1", Masker(b"k"), UTC, 3)
    assert (cut.events, cut.complete) == (3, False)
    masked = json.loads(next(iter(csv.DictReader(io.StringIO(cut.csv))))["customers"])
    assert len(masked) == 11 and all(c.startswith("cust#") for c in masked)
    exports = sqlite_store.data_accesses(DataAccessQuery())
    assert [(a.kind, a.results, a.what["customer_ids"], a.what["cap"]) for a in exports] == [
        (DataAccessKind.EXPORT, 3, "masked", 3),
        (DataAccessKind.EXPORT, 5, "in clear", 5),
    ]
    analyst = Identity("ana", Role.ANALYST, "Ana", "password")
    with pytest.raises(PermissionError):
        queries.export_events(sqlite_store, analyst, EventQuery(), "case 1", Masker(b"k"), UTC, 3)
    with pytest.raises(ValueError, match="reason"):
        queries.export_events(sqlite_store, auditor, EventQuery(), " ", Masker(b"k"), UTC, 3)


def test_an_export_carries_its_provenance_beside_its_csv_and_is_named_for_what_it_holds(sqlite_store, settings):
    # tester T19: "accesswatch-events-2026-11-25.csv", and nothing said which query, period, zone, exporter, reason,
    # nor whether it was complete; two exports of a day took one name
    sqlite_store.write(
        [f.incoming(settings, at=f.at(days=d), customer_ids=["c-me", f"c-{d}"], purpose="TICKET-7") for d in range(4)]
    )
    sqlite_store.purge(RetentionPolicy.of(events_days=30, alerts_days=30, now=f.at(days=31)))  # day 0's event
    shanghai = ZoneInfo("Asia/Shanghai")
    auditor = Identity("audrey", Role.AUDITOR, "Audrey Auditor", "password")
    now = datetime(2026, 11, 25, 6, 35, 2, tzinfo=UTC)
    asked = EventQuery(actor_id="emp-0001", since=f.at(days=-1), until=datetime(2026, 11, 5, 16, tzinfo=UTC))
    made = queries.export_events(sqlite_store, auditor, asked, "regulator 12", Masker(b"k"), shanghai, 2, 30, now)
    stem = "accesswatch-events-actor-emp-0001-2026-11-01-to-2026-11-05-exported-2026-11-25-143502"
    assert made.archive_name == f"{stem}.zip"
    with zipfile.ZipFile(io.BytesIO(made.archive)) as bundle:
        assert bundle.namelist() == [f"{stem}.csv", f"{stem}.provenance.json"]
        held = bundle.read(f"{stem}.csv").decode()
        told = json.loads(bundle.read(f"{stem}.provenance.json"))
    assert held == made.csv and held.startswith("time,actor,")  # the header first: any CSV reader reads it
    assert told["sha256"] == hashlib.sha256(held.encode()).hexdigest()
    assert told["exported_by"] == {"user": "audrey", "name": "Audrey Auditor", "role": "auditor"}
    assert (told["reason"], told["time_zone"], told["exported_at"]) == (
        "regulator 12",
        "Asia/Shanghai",
        "2026-11-25 14:35:02 +08:00",
    )
    assert told["period"] == (
        "events stamped from 2026-11-01 09:00:00 +08:00 up to (not including) 2026-11-06 00:00:00 +08:00"
    )
    assert told["query"]["actor_id"] == "emp-0001" and told["customer_ids"] == "masked"
    # two of the three kept matched past the cap of 2, and retention deleted the period's first day
    assert (told["events"], told["complete"], told["cut_by_cap"]) == (2, False, True)
    assert told["retention"]["period_complete"] is False and told["retention"]["events_days"] == 30
    assert any("Retention deleted the events stamped before" in note for note in told["notes"])
    [access] = sqlite_store.data_accesses(DataAccessQuery())  # recorded as before, with the file it made
    assert (access.kind, access.reason, access.results) == (DataAccessKind.EXPORT, "regulator 12", 2)
    assert (access.what["file"], access.what["sha256"]) == (f"{stem}.csv", told["sha256"])
    # one customer's events: the customer as the file shows them, all the history kept; a second later, another name
    later = now + timedelta(seconds=1)
    mine = queries.export_events(
        sqlite_store, auditor, EventQuery(customer_id="c-me"), "DSAR 9", Masker(b"k"), shanghai, 10, 30, later
    )
    shown = pseudonym("c-me", b"k").replace("#", "-")
    assert mine.archive_name == f"accesswatch-events-customer-{shown}-all-history-exported-2026-11-25-143503.zip"
    assert mine.provenance.query["customer_id"] == pseudonym("c-me", b"k")
    assert "c-me" not in mine.provenance.model_dump_json()
    # exported in clear, the name holds the id; the access log shows it masked to a masked viewer, as its query
    clear = queries.export_events(
        sqlite_store, auditor, EventQuery(customer_id="c-me"), "DSAR 9", Masker(b"k", True), shanghai, 10, 30, later
    )
    assert clear.archive_name.startswith("accesswatch-events-customer-c-me-all-history-")
    recorded = sqlite_store.data_accesses(DataAccessQuery())[0].what
    assert recorded["file"] == clear.provenance.file
    assert Masker(b"k").asked(recorded)["file"] == mine.provenance.file  # same second: the names differ by the id
    assert queries.provenance.name_part("../../etc/passwd") == "etc-passwd"


def test_an_export_of_one_customer_s_events_names_the_other_customers_only_by_pseudonym(sqlite_store, settings):
    # the answer to a subject access request goes to that person: the others an event read are not theirs to see
    sqlite_store.write(
        [f.incoming(settings, at=f.at(hours=h), customer_ids=["c-me", f"c-other-{h}"]) for h in range(3)]
    )
    auditor = Identity("audrey", Role.AUDITOR, "Audrey", "password")
    unmasked = Masker(b"k", unmasked=True)
    export = queries.export_events(sqlite_store, auditor, EventQuery(customer_id="c-me"), "DSAR 7", unmasked, UTC, 10)
    rows = [json.loads(row["customers"]) for row in csv.DictReader(io.StringIO(export.csv))]
    assert len(rows) == 3 and all(ids[0] == "c-me" and ids[1].startswith("cust#") for ids in rows)
    whole = queries.export_events(sqlite_store, auditor, EventQuery(), "case 8", unmasked, UTC, 10)
    assert {tuple(json.loads(row["customers"])) for row in csv.DictReader(io.StringIO(whole.csv))} == {
        ("c-me", f"c-other-{h}") for h in range(3)
    }
    recorded = [a.what["customer_ids"] for a in sqlite_store.data_accesses(DataAccessQuery())]
    assert recorded == ["in clear", "the searched one in clear"]
    # whose ids the files held in clear: the searched one alone, then every one
    listed = [sorted(a.customer_ids) for a in sqlite_store.data_accesses(DataAccessQuery())]
    assert listed == [sorted(["c-me", "c-other-0", "c-other-1", "c-other-2"]), ["c-me"]]


def test_an_access_lists_the_customers_it_showed_each_once_up_to_a_bound_and_counts_them_all(
    sqlite_store, settings, monkeypatch
):
    assert queries.shown_in_clear(["c-2", "c-1", "c-2"]) == (["c-2", "c-1"], 2)
    monkeypatch.setattr(queries, "CUSTOMERS_LISTED", 3)
    sqlite_store.write([f.incoming(settings, at=f.at(hours=h), customer_ids=[f"c-{h}", "c-x"]) for h in range(4)])
    auditor = Identity("audrey", Role.AUDITOR, "Audrey", "password")
    queries.export_events(sqlite_store, auditor, EventQuery(), "case 9", Masker(b"k", unmasked=True), UTC, 10)
    queries.export_events(sqlite_store, auditor, EventQuery(), "case 9", Masker(b"k"), UTC, 10)
    masked, whole = sqlite_store.data_accesses(DataAccessQuery())
    assert (whole.customer_ids, whole.customers_in_clear, whole.customers_unlisted) == (["c-3", "c-x", "c-2"], 5, 2)
    assert (masked.customer_ids, masked.customers_in_clear) == ([], 0)  # pseudonyms name nobody


def test_the_customers_on_screen_are_those_a_row_shows_in_clear(sqlite_store, settings):
    sqlite_store.write([f.incoming(settings, customer_ids=[f"c-{n}" for n in range(8)])])
    events = sqlite_store.query_events(EventQuery()).items
    assert queries.customers_on_screen(events, Masker(b"k")) == []
    shown = queries.customers_on_screen(events, Masker(b"k", unmasked=True))
    assert shown == [f"c-{n}" for n in range(5)]  # the rest is "(+3)" in the row
    assert all(c in queries.event_row(events[0], Masker(b"k", unmasked=True), UTC)["customers"] for c in shown)
    assert queries.customers_on_screen(events, Masker(b"k", unmasked=True).for_subject("c-2")) == ["c-2"]


def test_an_export_keeps_a_spreadsheet_from_running_the_log_s_text(sqlite_store, settings):
    # whoever sends events writes the purpose: it must open as text, not as a formula (CSV injection)
    sqlite_store.write([f.incoming(settings, purpose='=HYPERLINK("http://evil.example","open")')])
    auditor = Identity("audrey", Role.AUDITOR, "Audrey", "password")
    export = queries.export_events(sqlite_store, auditor, EventQuery(), "case 1", Masker(b"k"), UTC, 5)
    [row] = list(csv.DictReader(io.StringIO(export.csv)))
    assert row["purpose"] == '\'=HYPERLINK("http://evil.example","open")'
    assert not any(value.startswith(("=", "+", "-", "@")) for value in row.values())


# -- the usual band ----------------------------------------------------------------------------------------
def test_the_usual_band_counts_idle_hours_as_zero(settings):
    start = datetime(2026, 10, 5, 0, 0, tzinfo=UTC)  # Monday 08:00 in Asia/Shanghai
    history = [
        HourActivity(hour=start + timedelta(days=d, hours=1), events=1, records=10 + d, egress_records=0, denied=0)
        for d in range(5)  # 09:00 local, Monday to Friday
    ]
    band = queries.usual_band(history, start, start + timedelta(days=7), settings)
    low, high = band[(True, 9)]
    assert 10 <= low <= high <= 14
    assert band[(True, 3)] == (0.0, 0.0)  # nights were idle
    assert band[(False, 9)] == (0.0, 0.0)  # so were the weekend's hours


# -- the report ----------------------------------------------------------------------------------------------
def _report(settings, customers):
    incident = Incident(
        incident_id="inc-7",
        actor_id="ptn-7",
        actor_kind="partner",
        actor_role="agent",
        actor_organization="blue-sky <travel>",
        severity="high",
        risk_score=72.0,
        window_start=f.T0,
        window_end=f.T0 + timedelta(hours=2),
        alert_ids=["aw-1"],
        detectors=["bulk_read"],
        summary="Partner ptn-7 read 5,000 records.",
        created_at=f.T0,
        updated_at=f.T0,
    )
    raised = f.T0 + timedelta(hours=3)
    view = queries.IncidentView(
        incident,
        [f.alert(actor_id="ptn-7")],
        [
            TriageAction(
                incident_id="inc-7",
                kind=TriageActionKind.ACKNOWLEDGE,
                by="ana",
                at=raised + timedelta(hours=1),
                note="calling | the partner",
            )
        ],
        raised,
        raised + timedelta(hours=48),
    )
    impact = queries.Impact(
        events=12,
        records=5000,
        egress_records=5000,
        customers={c: queries.CustomerTrace(f.T0, f.T0, 1, exported=True) for c in ("c-1", "c-2", "c-<1>")},
        records_by_class=Counter({"government_id": 5000}),
        fields=Counter({"passport_number": 5000}),
        sources=Counter({("source address", "10.0.0.1"): 12}),
        resources=Counter({"crm/x": 5000}),
        first=f.T0,
        last=f.T0 + timedelta(hours=1),
    )
    return report.Report(view, impact, settings, "ana", raised + timedelta(hours=50), customers)


def test_the_report_says_what_when_who_which_data_and_the_triage(settings):
    text = report.markdown(_report(settings, None))
    for expected in (
        "## What happened",
        "Partner ptn-7 read 5,000 records.",
        "## Who",
        "Organisation: blue-sky",
        "| government_id | high | 5,000 | passport_number |",
        "Customers affected: 3 distinct customer ids logged: 3 in egress events",
        "acknowledge",
        "calling \\| the partner",
        "passed 2 h ago",
    ):
        assert expected in text
    assert "c-1" not in text and "available to auditors" in text
    with_list = report.markdown(_report(settings, ["c-1", "c-2"]))
    assert "## Affected customers (confidential)" in with_list
    assert "Exported, downloaded, printed or shared (2): c-1, c-2" in with_list


def _blocks(markdown: str) -> list[list[str]]:
    """The Markdown's blocks, runs of lines between blank lines: a Markdown reader makes one paragraph of each."""
    return [block.splitlines() for block in markdown.split("\n\n") if block.strip()]


def test_the_report_s_lines_stay_lines_in_markdown(settings):
    text = report.markdown(_report(settings, ["c-1"]))
    for block in _blocks(text):
        # more than one line only as a list or a table; else a reader runs them into one sentence
        assert len(block) == 1 or all(line.startswith(("- ", "|")) for line in block), block
    lines = [line for block in _blocks(text) for line in block]
    for item in (
        "Flagged activity: ",
        "Activity: ",
        "First and last event read: ",
        "Detected (raised) at: ",
        "Reporting deadline: ",
    ):
        assert any(line.startswith(item) for line in lines), item
    for item in ("Actor: ", "Role: ", "Organisation: ", "Events: ", "Customers affected: ", "Resources: ", _YOURS):
        assert any(line.startswith(item) for line in lines), item
    assert ["- bulk_read (high): Employee emp-0001 read 5,000 records, 50x their usual of 100."] in _blocks(text)


def test_the_report_gives_times_with_their_utc_offset_not_an_abbreviation(settings):
    made = _report(settings, None)  # the default zone: Asia/Shanghai
    text = report.markdown(made)
    assert "CST" not in text and "CST" not in report.html_document(made)
    assert "Detected (raised) at: 2026-11-02 12:00 +08:00" in text
    assert "times are local to Asia/Shanghai" in text


def test_local_times_carry_their_utc_offset():
    moment = datetime(2026, 3, 29, 0, 59, 59, tzinfo=UTC)
    assert queries.local_time(moment, ZoneInfo("Asia/Shanghai")) == "2026-03-29 08:59 +08:00"
    assert queries.local_time(moment, ZoneInfo("America/Chicago"), seconds=True) == "2026-03-28 19:59:59 -05:00"
    berlin = ZoneInfo("Europe/Berlin")  # the clocks went forward at 01:00 UTC that day
    assert queries.local_time(moment, berlin) == "2026-03-29 01:59 +01:00"
    assert queries.local_time(moment + timedelta(hours=1), berlin) == "2026-03-29 03:59 +02:00"
    assert queries.local_axis_title(berlin, moment) == "local time: Europe/Berlin, UTC+01:00"


def test_a_time_axis_across_a_clock_change_names_both_offsets():
    new_york = ZoneInfo("America/New_York")  # the clocks went back on Sunday 1 Nov 2026
    start, end = datetime(2026, 10, 29, tzinfo=UTC), datetime(2026, 11, 3, tzinfo=UTC)
    assert queries.local_axis_title(new_york, start, end) == (
        "local time: America/New_York, UTC-04:00 then UTC-05:00 (the clocks changed on 01 Nov)"
    )
    assert queries.local_axis_title(new_york, start, start + timedelta(days=2)) == (
        "local time: America/New_York, UTC-04:00"
    )
    hours = [start + timedelta(hours=h) for h in range(0, 24 * 5)]
    points = [queries.TimelinePoint(hour, 0, 0.0, 0.0, None) for hour in hours]
    spec = charts.timeline(points, (start, end), [], new_york).to_dict()
    assert spec["layer"][-1]["encoding"]["x"]["title"].endswith(
        "UTC-04:00 then UTC-05:00 (the clocks changed on 01 Nov)"
    )


def test_spans_are_told_in_local_time_with_their_day_once():
    shanghai = ZoneInfo("Asia/Shanghai")
    assert queries.local_range(f.T0, f.T0 + timedelta(hours=3), shanghai) == "2026-11-02 09:00–12:00 +08:00"
    day = datetime(2026, 11, 1, 16, tzinfo=UTC)
    assert queries.local_range(day, day + timedelta(days=1), shanghai) == "2026-11-02 00:00 – 2026-11-03 00:00 +08:00"
    new_york = ZoneInfo("America/New_York")
    night = datetime(2026, 11, 1, 4, tzinfo=UTC)
    assert queries.local_range(night, night + timedelta(hours=4), new_york) == (
        "2026-11-01 00:00 -04:00 – 2026-11-01 03:00 -05:00"
    )


def _span(start: int, end: int, severity: str) -> list:
    """A finding's span as an alert keeps it (``detectors.alerts``): hours after T0."""
    return [format_utc(f.T0 + timedelta(hours=start)), format_utc(f.T0 + timedelta(hours=end)), 5.0, severity, 100]


def test_an_incident_grown_to_a_day_is_flagged_at_the_hours_its_findings_name():
    hour = lambda h: f.T0 + timedelta(hours=h)  # noqa: E731
    # an hour's finding and its day's finding: one alert, whose window is the day
    bulk = f.alert(
        severity="critical",
        window_start=hour(0),
        window_end=hour(24),
        evidence={"spans": [_span(3, 4, "critical"), _span(0, 24, "high")]},
    )
    egress = f.alert(
        detector="egress",
        severity="critical",
        window_start=hour(3),
        window_end=hour(5),
        evidence={"spans": [_span(3, 4, "critical"), _span(4, 5, "critical")]},
    )
    early = f.alert(detector="new_access", severity="low", window_start=hour(1), window_end=hour(2), evidence={})
    got = flagged([bulk, egress, early], hour(0), hour(24))
    assert (got.start, got.end, got.severity) == (hour(3), hour(5), Severity.CRITICAL)  # the worst, not the day
    assert [(s.start, s.end, s.severity.value, s.detectors) for s in got.spans] == [
        (hour(1), hour(2), "low", ("new_access",)),  # an alert that kept no spans: its window
        (hour(3), hour(4), "critical", ("bulk_read", "egress")),
        (hour(4), hour(5), "critical", ("egress",)),
    ]
    assert [(r.start, r.end, r.severity.value, r.detectors) for r in runs(got.spans)] == [
        (hour(3), hour(5), "critical", ("bulk_read", "egress")),
        (hour(1), hour(2), "low", ("new_access",)),
    ]
    # a day more severe than the hours flagged in it is itself what was flagged
    day = f.alert(
        severity="critical",
        window_start=hour(0),
        window_end=hour(24),
        evidence={"spans": [_span(3, 4, "low"), _span(0, 24, "critical")]},
    )
    assert (flagged([day], hour(0), hour(24)).start, flagged([day], hour(0), hour(24)).end) == (hour(0), hour(24))


def test_the_flagged_activity_runs_on_through_the_findings_that_continue_it():
    # T13: a contract pull flagged critical at 10:00-11:00 and high at 11:00-12:00 is one activity
    hour = lambda h: f.T0 + timedelta(hours=h)  # noqa: E731
    pull = f.alert(
        severity="critical",
        window_start=hour(10),
        window_end=hour(12),
        evidence={"spans": [_span(10, 11, "critical"), _span(11, 12, "high")]},
    )
    early = f.alert(detector="new_access", severity="low", window_start=hour(9), window_end=hour(10), evidence={})
    later = f.alert(detector="egress", severity="medium", window_start=hour(14), window_end=hour(15), evidence={})
    got = flagged([pull, early, later], hour(0), hour(24))
    assert (got.start, got.end, got.severity) == (hour(10), hour(12), Severity.CRITICAL)  # not the low, nor 14:00


def test_the_charts_give_vega_nothing_to_warn_about_and_each_day_a_label_of_its_own():
    zone = ZoneInfo("Asia/Shanghai")
    points = [queries.TimelinePoint(f.T0 + timedelta(hours=h), h, 0.0, 1.0, 0.5) for h in range(48)]
    spec = charts.timeline(points, (f.T0, f.T0 + timedelta(hours=24)), [], zone).to_dict()
    lines = spec["layer"][-1]["encoding"]
    # a legend hidden on one channel of the series and shown on the other: "Conflicting legend property"
    assert lines["strokeDash"].get("legend") == lines["color"]["legend"]
    day = datetime(2026, 11, 2).date()
    counts = [
        AlertDayCount(day=day, severity=s, detector="bulk_read", actor_kind="employee", alerts=1)
        for s in ("low", "high")
    ]
    bars = charts.alerts_by_severity(counts).to_dict()["encoding"]
    assert bars["order"]["type"] == "quantitative"  # an order on a nominal field: "Channel order is inappropriate"
    assert (bars["x"]["type"], bars["x"]["timeUnit"]) == ("ordinal", "yearmonthdate")  # one band, one label a day
    trend = charts.class_trend([ClassDay(day=day, data_class="financial", events=1, records=9)], {day: "emp-1 9"})
    assert trend.to_dict()["layer"][1]["encoding"]["x"]["axis"]["tickCount"] == {"interval": "day", "step": 1}
    assert trend.to_dict()["layer"][0]["mark"]["type"] == "rule"  # the day of a sensitive-data alert, marked
    quiet = charts.class_trend([ClassDay(day=day, data_class="financial", events=1, records=9)], {}).to_dict()
    assert [layer["mark"]["type"] for layer in quiet["layer"]] == ["line"]  # no empty rule: "Infinite extent"
    health = charts.events_per_hour(pd.DataFrame([{"hour": f.T0, "events": 1, "denied": 0}]), zone, f.T0, f.T0)
    assert health.to_dict()["encoding"]["x"]["axis"]["format"] == "%a %d %b %H:%M"  # 24 hours, as the others


def test_the_sensitive_data_read_is_split_by_kind_of_actor(sqlite_store, settings):
    # local days in Asia/Shanghai: T0 is 09:00 on 2 Nov; a service's nightly backup, an employee and a partner's
    # agent read passports; the partner also bank accounts, in an access of both (it counts in each class)
    partner = {"id": "ptn-1", "kind": "partner", "organization": "blue-sky"}
    backup = {"id": "svc-backup", "kind": "service"}
    reads = [
        (f.at(hours=1), {}, ["passport_number"], 12),
        (f.at(hours=2), partner, ["passport_number"], 40),
        (f.at(days=1, hours=3), partner, ["passport_number", "bank_account"], 7),
        (f.at(hours=17), backup, ["passport_number"], 100_000),  # 02:00 on 3 Nov
    ]
    sqlite_store.write(
        [
            f.incoming(settings, at=at, fields=fields, record_count=n, **({"actor": a} if a else {}))
            for at, a, fields, n in reads
        ]
    )
    view = queries.compliance(sqlite_store, settings, f.at(days=2), 30, f.at(days=2))
    partners = [(d.day.isoformat(), d.data_class, d.records) for d in queries.sensitive_of(view.sensitive, "partner")]
    assert partners == [
        ("2026-11-02", "government_id", 40),
        ("2026-11-03", "financial", 7),
        ("2026-11-03", "government_id", 7),
    ]
    everyone = [
        (d.day.isoformat(), d.records) for d in queries.sensitive_of(view.sensitive) if d.data_class == "government_id"
    ]
    assert everyone == [("2026-11-02", 52), ("2026-11-03", 100_007)]
    assert queries.sensitive_by_kind(view.sensitive) == {
        "financial": {"employee": 0, "partner": 7, "service": 0},
        "government_id": {"employee": 12, "partner": 47, "service": 100_000},
    }


def test_the_records_read_outside_a_contract_count_every_alert_of_the_period(sqlite_store, monkeypatch):
    """Before, one read of at most 10,000 alerts: past that, the figure was the first 10,000's, unsaid."""
    monkeypatch.setattr(queries, "CONTRACT_ALERTS_READ", 2)  # alerts read at a time: 5 alerts make 3 reads

    def breach(agent: str, company: str, records: int, hours: int, outside: str) -> object:
        return f.alert(
            actor_id=agent,
            actor_kind="partner",
            actor_organization=company.lower().replace(" ", "-"),
            detector="partner_contract",
            window_start=f.T0 + timedelta(hours=hours),
            window_end=f.T0 + timedelta(hours=hours + 1),
            evidence={
                "contract": {"organization": company, "data_classes": ["contact"]},
                "outside_contract": {outside: {"records": records, "sensitivity": "high"}},
                "records_outside_contract": records,
            },
        )

    sqlite_store.upsert_alerts(
        [
            breach("ptn-1", "Blue Sky", 10, 0, "financial"),
            breach("ptn-2", "Blue Sky", 20, 1, "government_id"),
            breach("ptn-1", "Blue Sky", 30, 2, "financial"),
            breach("ptn-9", "North Wind", 40, 3, "health"),
            breach("ptn-1", "Blue Sky", 50, 4, "identity"),
        ]
    )
    found = queries.contract_breaches(sqlite_store, f.T0, f.T0 + timedelta(days=1))
    assert found == [
        queries.ContractBreach(
            "Blue Sky", agents=2, alerts=4, records=110, classes=["financial", "government_id", "identity"]
        ),
        queries.ContractBreach("North Wind", agents=1, alerts=1, records=40, classes=["health"]),
    ]
    # an alert stored before the others while the pages are read moves them down a place: the last of a page came
    # again at the top of the next, and was counted twice
    read = sqlite_store.query_alerts

    def stored_meanwhile(query):
        found = read(query)
        if query.offset == 0:
            sqlite_store.upsert_alerts([breach("ptn-7", "North Wind", 5, -1, "health")])
        return found

    monkeypatch.setattr(sqlite_store, "query_alerts", stored_meanwhile)
    again = queries.contract_breaches(sqlite_store, f.T0 - timedelta(hours=2), f.T0 + timedelta(days=1))
    assert [(b.organization, b.alerts, b.records) for b in again] == [("Blue Sky", 4, 110), ("North Wind", 1, 40)]


def test_long_summaries_are_cut_at_a_word_and_say_so():
    text = "Employee emp-0065 (sales) read 17,173 records with government id data, where the usual is none"
    assert ui.shortened(text, 200) == text
    cut = ui.shortened(text, 60)
    assert cut == "Employee emp-0065 (sales) read 17,173 records with…" and len(cut) <= 60
    assert ui.shortened("x" * 80, 10) == "x" * 9 + "…"  # one word longer than the room: cut in it


def test_a_page_of_events_says_where_it_stands_among_those_that_match():
    assert ui.events_in_view(1, 50, 50, EventTotal(76), False) == "Page 1 of 2 · events 1–50 of 76, newest first"
    assert ui.events_in_view(2, 50, 26, EventTotal(76), True) == "Page 2 of 2 · events 51–76 of 76, newest first"
    assert ui.events_in_view(1, 50, 50, EventTotal(10_000, more=True), False) == (
        "Page 1 · events 1–50 of more than 10,000, newest first"
    )
    # the store stopped counting (a long scan): more than those shown, and why no total
    assert ui.events_in_view(3, 50, 50, EventTotal(0, more=True), False) == (
        "Page 3 · events 101–150 of more than 150 (not counted further: that would read much of the store),"
        " newest first"
    )
    assert ui.events_in_view(3, 50, 7, EventTotal(0, more=True), True).startswith("Page 3 of 3 · events 101–107 of 107")
    assert ui.counted_events(EventTotal(0, more=True)) == "many events (too many to count quickly)"


def test_the_volume_chart_is_linear_from_zero():
    # a log axis ticked only at 0 and 40,000 made a day 100 times the usual look a bump
    zone = ZoneInfo("Asia/Shanghai")
    days = [datetime(2026, 10, d, tzinfo=zone) for d in range(1, 8)]
    spec = charts.volume_against_peers([(d, 40_000 if d.day == 7 else 400, 380.0) for d in days], zone).to_dict()
    scale = spec["encoding"]["y"]["scale"]
    assert scale["type"] == "linear" and scale["zero"] is True


def test_the_report_title_names_the_incident_once(settings):
    made = _report(settings, None)
    assert report.markdown(made).startswith("# Incident report: inc-7\n")
    assert "<h1>Incident report: inc-7</h1>" in report.html_document(made)


def test_a_closed_incident_reports_when_it_closed_not_a_running_deadline(settings):
    made = _report(settings, None)
    raised = made.view.raised_at

    def closed(kind: TriageActionKind, status: AlertStatus, hours: float) -> str:
        closing = TriageAction(incident_id="inc-7", kind=kind, by="ana", at=raised + timedelta(hours=hours), note="ok")
        view = dataclasses.replace(
            made.view,
            incident=made.incident.model_copy(update={"status": status}),
            actions=[*made.view.actions, closing],
        )
        return report.markdown(dataclasses.replace(made, view=view, prepared_at=raised + timedelta(hours=10)))

    resolved = closed(TriageActionKind.RESOLVE, AlertStatus.RESOLVED, 5)
    assert "; resolved 43 h before it" in resolved and "h left" not in resolved
    late = closed(TriageActionKind.FALSE_POSITIVE, AlertStatus.FALSE_POSITIVE, 50)
    assert "; false positive 2 h after it" in late and "h left" not in late and "passed" not in late


def test_the_html_report_escapes_what_it_quotes(settings):
    document = report.html_document(_report(settings, ["c-<1>"]))
    assert document.startswith("<!doctype html>") and "</html>" in document
    assert "blue-sky &lt;travel&gt;" in document and "c-&lt;1&gt;" in document
    assert "<td>government_id</td>" in document


_YOURS = "To be written by the privacy officer: "
DPO_HEADINGS = ("Nature and cause of the breach", "Likely consequences", "Measures taken or proposed", "Contact point")


def _exfiltration(settings) -> tuple[Incident, list]:
    """emp-0012's day: routine reads that log every id, then exports that log a sample (the contract allows it)."""
    incident = Incident(
        incident_id="inc-12",
        actor_id="emp-0012",
        actor_kind="employee",
        severity="critical",
        risk_score=90.0,
        window_start=f.T0,
        window_end=f.T0 + timedelta(hours=8),
        alert_ids=["aw-12"],
        detectors=["egress"],
        summary="Employee emp-0012 exported 2,000 records.",
        created_at=f.T0,
        updated_at=f.T0,
    )
    actor = {"id": "emp-0012"}
    desk = {"source_ip": "10.0.0.7", "user_agent": "CRM/5.1", "session_id": "s-desk"}
    bulk = {"source_ip": "203.0.113.9", "user_agent": "curl/8.4", "session_id": "s-bulk", "action": "export"}
    events = [
        f.incoming(settings, actor=actor, at=f.at(1), record_count=2, customer_ids=["r-1", "r-2"], **desk),
        f.incoming(settings, actor=actor, at=f.at(1.5), record_count=1, customer_ids=["x-1"], **desk),
        f.incoming(settings, actor=actor, at=f.at(2), record_count=1, customer_ids=["=r-3"], fields=["email"], **desk),
        f.incoming(
            settings,
            actor=actor,
            at=f.at(5),
            record_count=1000,
            customer_ids=["x-1", "x-2"],
            fields=["name", "passport_number"],
            **bulk,
        ),
        f.incoming(
            settings,
            actor=actor,
            at=f.at(6),
            record_count=1000,
            customer_ids=["x-3"],
            fields=["passport_number"],
            **bulk,
        ),
        # refused: nothing left, and its customer is not affected
        f.incoming(settings, actor=actor, at=f.at(7), record_count=500, customer_ids=["d-1"], outcome="denied", **bulk),
        f.incoming(settings, actor=actor, at=f.at(9), record_count=3, customer_ids=["later"]),  # after the incident
    ]
    return incident, events


def test_the_report_of_a_sampled_exfiltration_splits_exported_from_read_and_says_the_list_is_partial(
    sqlite_store, settings
):
    incident, events = _exfiltration(settings)
    sqlite_store.write(events)
    impact = queries.impact(sqlite_store, incident)
    assert sorted(impact.customers) == ["=r-3", "r-1", "r-2", "x-1", "x-2", "x-3"]
    assert sorted(c for c, trace in impact.customers.items() if trace.exported) == ["x-1", "x-2", "x-3"]
    assert (impact.sampled_events, impact.sampled_records, impact.unlisted) == (2, 2000, 1997)
    view = queries.IncidentView(incident, [], [], f.T0 + timedelta(hours=8), f.T0 + timedelta(hours=56))
    made = report.Report(view, impact, settings, "dpo", f.T0 + timedelta(hours=9), sorted(impact.customers))
    text = report.markdown(made)
    for expected in (
        "Customers affected: 6 distinct customer ids logged: 3 in egress events (exported, downloaded, printed or"
        " shared), 3 only read",
        "2 events listed fewer customer ids than records: up to 2,000 records' customers may be affected, of which"
        " only the ids logged are known. 6 ids logged of up to 2,003 customers in all (up to 1,997 more not listed)",
        "First and last event read: 2026-11-02 10:00 +08:00 to 2026-11-02 15:00 +08:00",
        "First and last egress event: 2026-11-02 14:00 +08:00 to 2026-11-02 15:00 +08:00",
        "| source address | 10.0.0.7 | 3 | 0 |",
        "| source address | 203.0.113.9 (external) | 2 | 2 |",  # outside the organisation's networks
        "| user agent | curl/8.4 | 2 | 2 |",
        "| session | s-desk | 3 | 0 |",
        "| government_id | high | 2,000 | passport_number |",
        "| contact | medium | 4 | email, phone |",
        "Exported, downloaded, printed or shared (3): x-1, x-2, x-3",
        "Only read (3): =r-3, r-1, r-2",
        "These are the ids logged only",
    ):
        assert expected in text, expected
    assert "d-1" not in text and "later" not in text
    for heading in DPO_HEADINGS:
        assert f"## {heading}\n\n{_YOURS}" in text, heading
    assert text.index("## Affected customers") < text.index("## Nature and cause of the breach")
    document = report.html_document(made)
    for heading in DPO_HEADINGS:
        assert f"<h2>{heading}</h2>\n<p>{_YOURS}" in document, heading
    assert (
        "<td>203.0.113.9 (external)</td>" in document and "2 events listed fewer customer ids than records" in document
    )

    rows = list(csv.reader(io.StringIO(report.customers_csv(made))))
    assert rows[0] == ["customer_id", "access", "first", "last", "events", "hours"]
    by_id = {row[0]: row[1:] for row in rows[1:]}
    assert len(rows) == 7 and "d-1" not in by_id
    x_1 = ["exported", "2026-11-02 10:30:00.000 +08:00", "2026-11-02 14:00:00.000 +08:00", "2", "window"]
    assert by_id["x-1"] == x_1
    assert by_id["r-1"] == ["read", "2026-11-02 10:00:00.000 +08:00", "2026-11-02 10:00:00.000 +08:00", "1", "window"]
    assert "in the flagged hours" not in text  # the window is the flagged activity: nothing to split
    assert "'=r-3" in by_id  # a spreadsheet shows the id, and does not run it


def test_a_report_splits_the_flagged_hours_from_the_rest_of_a_wider_window(sqlite_store, settings):
    # the exports of 14:00-15:00 were flagged; the morning's reads are the actor's usual work, in the day's window
    incident, events = _exfiltration(settings)
    sqlite_store.write(events)
    hours = (f.at(5), f.at(7))  # 14:00-16:00 in Asia/Shanghai
    impact = queries.impact(sqlite_store, incident, flagged=hours)
    assert impact.in_flagged is not None and (impact.in_flagged.events, impact.in_flagged.records) == (2, 2000)
    assert sorted(c for c, trace in impact.customers.items() if trace.flagged) == ["x-1", "x-2", "x-3"]
    view = queries.IncidentView(incident, [], [], f.T0 + timedelta(hours=8), f.T0 + timedelta(hours=56))
    made = report.Report(view, impact, settings, "dpo", f.T0 + timedelta(hours=9), sorted(impact.customers))
    text = report.markdown(made)
    for expected in (
        "First and last egress event in the flagged hours: 2026-11-02 14:00 +08:00 to 2026-11-02 15:00 +08:00",
        # the flagged activity's own events first, then the window's around them
        "First and last event read in the flagged hours: 2026-11-02 14:00 +08:00 to 2026-11-02 15:00 +08:00",
        "First and last event read in the whole window: 2026-11-02 10:00 +08:00 to 2026-11-02 15:00 +08:00",
        "First and last egress event in the whole window: 2026-11-02 14:00 +08:00 to 2026-11-02 15:00 +08:00",
        "Events: 2 in the flagged hours (0 refused); records read: 2,000; exported, downloaded, printed or shared:"
        " 2,000. In the whole window: 6 events, 2,004 records read, 2,000 exported",
        # whom to notify: the flagged hours' customers, with the sampling caveat of those hours' events
        "Customers affected: 3 distinct customer ids logged in the flagged hours: 3 in egress events (exported,"
        " downloaded, printed or shared), 0 only read",
        "3 ids logged of up to 2,000 customers in all (up to 1,997 more not listed)",
        "Not counted above, the rest of the window (4 events, 4 records, 3 customer ids seen only there) raised no"
        " finding",
        "| government_id | high | 2,000 | 2,000 | passport_number |",
        "| contact | medium | 0 | 4 | email, phone |",
        f"| {report.TOTAL_ROW} |  | 2,000 | 2,004 |  |",
        "In all: in the flagged hours, 2 accesses read 2,000 records; in the whole window, 5 accesses read 2,004"
        " records (1 refused read none). One access can touch several data classes",
        # where from: the flagged hours' sources apart from the routine ones, outside addresses marked
        "| source address | 203.0.113.9 (external) | 2 | 2 | 0 |",
        "| source address | 10.0.0.7 (routine only) | 0 | 0 | 3 |",
        "| session | s-bulk | 2 | 2 | 0 |",
        "| session | s-desk (routine only) | 0 | 0 | 3 |",
    ):
        assert expected in text, expected
    listed = text[text.index("## Affected customers (confidential)") : text.index(f"## {report.ROUTINE_HEADING}")]
    assert "Exported, downloaded, printed or shared (3): x-1, x-2, x-3" in listed
    assert "Only read (0): none" in listed and "r-1" not in listed and "r-3" not in listed
    routine = text[text.index(f"## {report.ROUTINE_HEADING}") : text.index("## Nature and cause")]
    assert "Seen only in the routine activity (3): =r-3, r-1, r-2" in routine and "not counted as affected" in routine
    assert "x-1" not in routine
    rows = list(csv.reader(io.StringIO(report.customers_csv(made))))
    by_id = {row[0]: row for row in rows}
    assert (by_id["x-1"][-1], by_id["r-1"][-1], by_id["'=r-3"][-1]) == ("flagged", "rest", "rest")
    assert [row[-1] for row in rows[1:]] == ["flagged"] * 3 + ["rest"] * 3  # the flagged hours' ids first
    unlisted = report.markdown(dataclasses.replace(made, customer_ids=None))  # an analyst's: no list to point to
    assert report.ROUTINE_HEADING not in unlisted and "Not counted above, the rest of the window" in unlisted


def test_the_which_data_table_totals_each_access_once_where_its_classes_count_one_in_several(sqlite_store, settings):
    incident, events = _exfiltration(settings)
    sqlite_store.write(events)
    made = report.Report(
        queries.IncidentView(incident, [], [], f.T0 + timedelta(hours=8), f.T0 + timedelta(hours=56)),
        queries.impact(sqlite_store, incident),
        settings,
        "dpo",
        f.T0 + timedelta(hours=9),
        None,
    )
    text = report.markdown(made)
    table = text[text.index("## Which data") : text.index("## How much, and whose")]
    rows = [line.split(" | ") for line in table.splitlines() if line.startswith("| ") and "---" not in line][1:]
    # the export of names and passport numbers counts its 1,000 records under both classes: the rows sum past it
    by_class = {row[0].lstrip("| "): int(row[2].replace(",", "")) for row in rows[:-1]}
    assert sum(by_class.values()) > 2004 and by_class["government_id"] == 2000
    assert rows[-1] == [f"| {report.TOTAL_ROW}", "", "2,004", " |"]
    line = (
        "In all: 5 accesses read 2,004 records (1 refused read none). One access can touch several data classes and"
        " counts its records in each: the rows above can add up to more than the total."
    )
    assert line in table.splitlines()
    html_text = report.html_document(made)  # the other download says the same
    assert f"<tr><td>{report.TOTAL_ROW}</td><td></td><td>2,004</td><td></td></tr>" in html_text
    assert f"</tbody></table>\n<p>{line}</p>" in html_text


def test_a_report_counts_a_failed_access_as_read_nothing_as_a_refused_one(sqlite_store, settings):
    """Before, an access that ended in an error counted its records as read and its customers as affected: the
    detectors count only data served."""
    incident, events = _exfiltration(settings)
    failed = f.incoming(
        settings, actor={"id": "emp-0012"}, at=f.at(6.5), record_count=300, customer_ids=["e-1"], outcome="error"
    )
    sqlite_store.write([*events, failed])
    impact = queries.impact(sqlite_store, incident)
    assert (impact.events, impact.records, impact.denied, impact.failed) == (7, 2004, 1, 1)
    assert "e-1" not in impact.customers and impact.records_by_class["government_id"] == 2000
    made = report.Report(
        queries.IncidentView(incident, [], [], f.T0 + timedelta(hours=8), f.T0 + timedelta(hours=56)),
        impact,
        settings,
        "dpo",
        f.T0 + timedelta(hours=9),
        None,
    )
    text = report.markdown(made)
    assert (
        "Events: 7 (1 refused, 1 failed); records read: 2,004; exported, downloaded, printed or shared: 2,000" in text
    )
    assert "In all: 5 accesses read 2,004 records (1 refused, 1 failed read none)." in text


def test_hourly_figures_counted_before_they_left_refused_records_out_say_so():
    # a store upgraded after a purge (store.dash_served): its purged hours may still count refused records
    served = queries.Ingested(events=6, records=2004, egress_records=2000, denied=1)
    assert report._ingested_records(served) == "2,004 records read, 2,000 exported, downloaded, printed or shared"
    older = dataclasses.replace(served, records=2504, egress_records=2500, records_include_refused=True)
    assert report._ingested_records(older).startswith(
        "2,504 records read or asked for, 2,500 of them exported, downloaded, printed or shared or asked to be"
        " (refused or failed accesses' records may be included"
    )
    hours = [
        HourActivity(hour=f.T0, events=2, records=20, egress_records=0, denied=1, records_include_refused=True),
        HourActivity(hour=f.at(1), events=1, records=5, egress_records=5, denied=0),
    ]
    assert queries.Ingested.of(hours) == queries.Ingested(3, 25, 5, 1, records_include_refused=True)


@pytest.mark.parametrize("dashboard_opened_before", [True, False])
def test_a_report_after_a_purge_says_what_retention_deleted_and_gives_the_figures_counted_at_ingestion(
    sqlite_store, settings, dashboard_opened_before
):
    incident, events = _exfiltration(settings)
    sqlite_store.write(events)
    if dashboard_opened_before:
        sqlite_store.fold()  # the hourly figures, as a dashboard reading the store folds them
    # else the purge folds the events it deletes first (T16: a cron purge of a store no dashboard had opened)
    # the morning's routine reads go (stamped before 12:30 local); the exports, the refusal and the newest stay
    purged = sqlite_store.purge(RetentionPolicy(f.at(3.5), f.at(-1)))
    assert purged.events == 3
    assert [(p.horizon, p.events) for p in sqlite_store.purges()] == [(f.at(3.5), 3)]
    hours = (f.at(5), f.at(7))
    impact = queries.impact(sqlite_store, incident, flagged=hours)
    alert = f.alert(actor_id="emp-0012", evidence={"distinct_customers": 3, "event_ids": []})
    kept = queries.retained(sqlite_store, incident, [alert], impact, hours)
    assert kept is not None and (kept.deleted, kept.kept, kept.window.records) == (3, 3, 2004)
    view = queries.IncidentView(incident, [alert], [], f.T0 + timedelta(hours=8), f.T0 + timedelta(hours=56))
    made = report.Report(view, impact, settings, "dpo", f.T0 + timedelta(hours=9), sorted(impact.customers), kept)
    text = report.markdown(made)
    day = sqlite_store.purges()[0].at.astimezone(settings.organisation.tz).date().isoformat()  # its wall-clock day
    for expected in (
        f"3 events of this window were deleted by retention on {day} (events stamped before 2026-11-02 12:30"
        " +08:00); the figures below count the 3 kept (the evidence the alerts cite is kept).",
        # the refused export's 500 records are not read: the hourly figures count served accesses' records only
        "As ingested (the hourly figures, which retention keeps), the window held 6 events (1 refused), 2,004"
        " records read, 2,000 exported, downloaded, printed or shared; the flagged hours 2 events (0 refused), 2,000"
        " records read, 2,000 exported, downloaded, printed or shared.",
        # an alert's count is of one hour or day of the activity: a lower bound, said as one (T19: 808 of 2,847)
        "; at least 3 distinct customer ids were in the activity flagged (the largest count an alert recorded, of"
        " one hour or day of it: no alert counts the customers of the whole activity).",
        # the tables count the events kept, and say so as the lines under them do (T19)
        "| Seen as | Value | Events in the flagged hours (of the events retention kept) | Egress events in them (of the"
        " events retention kept) | Events in the rest of the window (of the events retention kept) |",
        "| Data class | Sensitivity | Records in the flagged hours (of the events retention kept) | Records in the"
        " window (of the events retention kept) | Fields read |",
        "First and last event read in the whole window: 2026-11-02 14:00 +08:00 to 2026-11-02 15:00 +08:00 (of the"
        " events retention kept)",
        "In all (of the events retention kept): in the flagged hours, 2 accesses read 2,000 records; in the whole"
        " window, 2 accesses read 2,000 records (1 refused read none).",
        "These are the ids of the events retention kept only",
    ):
        assert expected in text, expected
    # nothing deleted: no word of retention
    assert (
        queries.retained(sqlite_store, incident.model_copy(update={"window_start": f.at(4)}), [], impact, hours) is None
    )


def test_a_report_names_only_the_purges_that_deleted_events_of_the_window(sqlite_store, settings):
    """A purge whose horizon passed the window's start after an earlier one had passed its end found none of it
    to delete: the report does not say it deleted the window's events, and says what such a later purge means."""
    incident, events = _exfiltration(settings)  # its window: T0 to 8 h; one more event at 9 h, the newest
    sqlite_store.write(events)
    assert sqlite_store.purge(RetentionPolicy(f.at(8), f.at(-1))).events == 6  # the whole window
    # the next day's events, then a purge that deletes them and the 9 h one: nothing of the window was left
    sqlite_store.write([f.incoming(settings, at=f.at(hours), customer_ids=["next"]) for hours in (20, 21, 40)])
    assert sqlite_store.purge(RetentionPolicy(f.at(30), f.at(-1))).events == 3
    first, second = sqlite_store.purges()
    assert (first.events, second.events) == (6, 3) and second.horizon > incident.window_start

    impact = queries.impact(sqlite_store, incident)
    kept = queries.retained(sqlite_store, incident, [], impact, (incident.window_start, incident.window_end))
    assert kept is not None and kept.purges == [first] and kept.later_purges == 1
    view = queries.IncidentView(incident, [], [], f.T0 + timedelta(hours=8), f.T0 + timedelta(hours=56))
    made = report.Report(view, impact, settings, "dpo", f.T0 + timedelta(hours=50), sorted(impact.customers), kept)
    text = report.markdown(made)
    zone = settings.organisation.tz
    day = first.at.astimezone(zone).date().isoformat()
    assert (
        f"6 events of this window were deleted by retention on {day} (events stamped before"
        f" {queries.local_time(first.horizon, zone)}); the figures below count the 0 kept (the evidence the alerts"
        " cite is kept). The later purge whose horizon passed the window's start deleted of it at most what an"
        " earlier one kept (an alert's evidence, the newest event) or a replay stored after it."
    ) in text
    assert queries.local_time(second.horizon, zone) not in text


def test_the_purges_named_for_a_window_are_those_whose_horizon_passed_part_of_it_first():
    start, end = f.at(10), f.at(20)
    horizons = [5, 12, 15, 25, 30, 18]  # before it; into it; further; past it; past it again; back into it (--as-of)
    purges = [PurgeRecord(f.at(100 + n), f.at(hours), 1) for n, hours in enumerate(horizons)]
    through, later = queries.purges_through(purges, start, end)
    assert [p.horizon for p in through] == [f.at(12), f.at(15), f.at(25)] and later == 2


def test_a_report_s_sources_mark_outside_addresses_and_gather_a_routine_sync_s_many_sessions(settings):
    # a sync service's routine: a new session every run from its own address; the breach: one from outside
    outside = {("source address", "198.51.100.77"): 14, ("user agent", "python-requests"): 14, ("session", "s-x"): 14}
    routine = {("source address", "10.0.5.14"): 67, ("user agent", "crm-sync/3.2"): 67}
    routine |= {("session", f"s-{n}"): 4 for n in range(17)}
    inside = queries.Impact(events=14, sources=Counter(outside), egress_sources=Counter({("session", "s-x"): 7}))
    impact = queries.Impact(
        events=81, sources=Counter(outside | routine), flagged=(f.at(2), f.at(3)), in_flagged=inside
    )
    made = dataclasses.replace(_report(settings, None), impact=impact)
    text = report.markdown(made)
    for expected in (
        "| source address | 198.51.100.77 (external) | 14 | 0 | 0 |",
        "| source address | 10.0.5.14 (routine only) | 0 | 0 | 67 |",
        "| session | s-x | 14 | 7 | 0 |",
        "| session | (17 seen in the routine activity only) | 0 | 0 | 68 |",
    ):
        assert expected in text, expected
    assert "s-16" not in text


def test_report_downloads_are_named_by_the_incident_and_the_day_prepared(settings):
    made = _report(settings, ["c-1"])  # prepared 2026-11-04 14:00 +08:00
    assert report.download_name(made, ".md") == "inc-7-2026-11-04.md"
    assert "(inc-7-2026-11-04-customers.csv)" in report.markdown(made)


def test_a_report_whose_events_list_every_id_says_so_and_that_measures_quote_the_triage_notes(settings):
    text = report.markdown(_report(settings, None))
    assert "Every event listed a customer id for each of its records." in text
    assert "fewer customer ids than records" not in text
    assert "First and last egress event: none" in text  # the helper's figures name no egress time
    measures = text[text.index("## Measures taken or proposed") : text.index("## Contact point")]
    assert "ana (acknowledge): calling \\| the partner" in measures


# ids as the log may hold them: each with a character Markdown would read as formatting, a link, code or a cell's end
HOSTILE_CUSTOMERS = ["c|1", "c*2*", "[c3](http://evil.example)", "<b>c4</b>", "`c5`", "_c6_", "c``7"]


def _hostile_report(settings) -> report.Report:
    made = _report(settings, HOSTILE_CUSTOMERS)
    incident = made.incident.model_copy(
        update={"actor_id": "ptn_*7*_`x`", "actor_organization": "blue|sky [travel]", "summary": "- ptn <read> *all*"}
    )
    alert = made.view.alerts[0].model_copy(update={"summary": "Partner ptn_*7* read `5,000` records."})
    note = made.view.actions[0].model_copy(update={"by": "ana_", "note": "calling | the\n# partner <now>"})
    view = dataclasses.replace(made.view, incident=incident, alerts=[alert], actions=[note])
    customers = {c: queries.CustomerTrace(f.T0, f.T0, 1, exported=c.startswith("c|")) for c in HOSTILE_CUSTOMERS}
    impact = dataclasses.replace(
        made.impact,
        customers=customers,
        fields=Counter({"passport_number": 4000, "pass|`no`": 1000}),
        sources=Counter({("source address", "10.0.0.1|<x>"): 12, ("session", "s_*1*"): 12}),
        resources=Counter({"crm/*x*|y": 5000}),
    )
    return dataclasses.replace(made, view=view, impact=impact, prepared_by="dpo_x_")


def _unescaped(markdown: str) -> str:
    """The Markdown without its backslash escapes and code spans: what is left a reader takes as formatting."""
    return re.sub(r"\\.", "", re.sub(r"(`+) .*? \1", "", markdown))


def test_the_markdown_report_escapes_every_id_and_name_it_quotes(settings):
    text = report.markdown(_hostile_report(settings))
    for expected in (
        "Actor: ptn\\_\\*7\\*\\_\\`x\\` (partner)",
        "Organisation: blue\\|sky \\[travel\\] (partner company)",
        "\\- ptn \\<read\\> \\*all\\*",  # a line of its own: not a list item, nor emphasis
        "- bulk_read (high): Partner ptn\\_\\*7\\* read \\`5,000\\` records.",
        "Resources: crm/\\*x\\*\\|y (5,000)",
        "| source address | 10.0.0.1\\|\\<x\\> | 12 | 0 |",
        "| session | s\\_\\*1\\* | 12 | 0 |",
        "| government_id | high | 5,000 | passport_number |",
        " | pass\\|\\`no\\` |",
        "| ana\\_ | acknowledge | calling \\| the \\# partner \\<now\\> |",
        "Exported, downloaded, printed or shared (1): c\\|1",
        "Only read (6): c\\*2\\*, \\[c3\\](` http://evil.example) `, \\<b\\>c4\\</b\\>, \\`c5\\`, \\_c6\\_, c\\`\\`7",
        "ana\\_ (acknowledge): calling \\| the \\# partner \\<now\\>",
        "_Prepared by dpo_x\\_ at ",
    ):
        assert expected in text, expected
    lines = text.splitlines()
    for line in lines:
        if line.startswith("|"):  # a table's row: as many cells as its header, split where GitHub splits them
            assert len(re.split(r"(?<!\\)\|", line)) - 2 == 4, line
        elif not line.startswith("_Prepared by"):
            assert not set("*`[]<>|") & set(_unescaped(line)), line
    assert not any(line.startswith("# partner") for line in lines)  # the note's line break: no heading


def test_markdown_text_keeps_plain_names_as_they_are():
    for plain in ("passport_number", "emp-0001", "10.0.0.7", "=r-3", "crm/x", "2026-11-02"):
        assert markdown_text(plain) == plain
    assert markdown_text("1. first") == "1\\. first" and markdown_text("+ x") == "\\+ x"
    assert markdown_text("a\\|b") == "a\\\\\\|b"  # the backslash itself, then the pipe


# -- the launcher ---------------------------------------------------------------------------------------------
def test_the_launcher_serves_locally_without_telemetry(settings, tmp_path):
    command = streamlit_command("127.0.0.1", 8601)
    joined = " ".join(command)
    assert command[:5] == [sys.executable, "-P", "-m", "streamlit", "run"] and command[5].endswith("dashboard/app.py")
    for flag in (
        "--server.address 127.0.0.1",
        "--server.port 8601",
        "--browser.gatherUsageStats false",
        "--server.headless true",
    ):
        assert flag in joined
    env = environment(settings, tmp_path / "extra.toml", demo=True)
    assert env["ACCESSWATCH_DASHBOARD__DEMO_SIGN_IN"] == "true"
    assert env["ACCESSWATCH_CONFIG"].endswith("extra.toml") and env["ACCESSWATCH_DATA_DIR"]


def test_the_launchers_python_imports_the_installed_product_whatever_folder_it_starts_in(tmp_path):
    # a clone named accesswatch in the folder the dashboard is started from hid the package ("cannot import
    # name '__version__' from 'accesswatch'"): the interpreter the launcher runs leaves that folder off the path
    (tmp_path / "accesswatch").mkdir()
    command = streamlit_command("127.0.0.1", 8601)
    python = command[: command.index("-m")]  # the interpreter and its options
    found = subprocess.run(
        [*python, "-c", "import accesswatch; print(accesswatch.__version__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert found.returncode == 0, found.stderr


def test_the_launcher_says_when_the_data_dir_has_no_store(settings, monkeypatch, capsys):
    from dashboard import launch

    class Server:
        def wait(self, timeout: float | None = None) -> int:
            return 0

    monkeypatch.setattr(launch.subprocess, "Popen", lambda command, env: Server())
    monkeypatch.setattr(launch, "unavailable", lambda address, port: None)  # whatever else listens on 8501 here
    assert launch.run(settings, None, demo=True) == 0
    assert f"no store at {settings.data_dir / 'accesswatch.db'} yet" in capsys.readouterr().err
    assert not settings.data_dir.exists()  # the launcher makes none either


def test_hash_password_command_reads_stdin():
    result = subprocess.run(
        [sys.executable, "-m", "accesswatch.cli", "dashboard", "--hash-password"],
        input="pass phrase\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert verify_password("pass phrase", result.stdout.strip())


# -- triage tells the pager ---------------------------------------------------------------------------------
def test_acknowledging_in_the_dashboard_pages_the_receivers_that_were_paged(settings):
    from accesswatch import app
    from models.page import PageKind
    from store.outbox import OutboxQuery

    alert = f.alert(severity="critical")
    incident = f.incident_of(alert, "inc-9", 85.0)
    alert = alert.model_copy(update={"incident_id": "inc-9"})
    with app.open_store(settings) as store:
        store.upsert_alerts([alert], [incident])
        receivers = app.open_receivers(settings)
        app.open_pager(settings, store, receivers).page([(alert, incident)])  # as the pipeline did
        analyst = Identity("ana", Role.ANALYST, "Ana", "password")
        updated = queries.triage(store, settings, analyst, "inc-9", TriageActionKind.ACKNOWLEDGE)
        assert updated.status.value == "acknowledged"
        assert [(a.kind, a.by) for a in store.actions("inc-9")] == [(TriageActionKind.ACKNOWLEDGE, "ana")]
        kinds = {(row.receiver, row.kind) for row in store.notifications(OutboxQuery(incident_id="inc-9"))}
        assert ("file", PageKind.ACKNOWLEDGE) in kinds and ("file", PageKind.TRIGGER) in kinds
        # a note is no news for the pager
        queries.triage(store, settings, analyst, "inc-9", TriageActionKind.NOTE, note="looking")
        rows = store.notifications(OutboxQuery(incident_id="inc-9"))
        assert sorted(row.receiver for row in rows if row.kind is PageKind.ACKNOWLEDGE) == ["console", "file"]
        # a stale screen: someone resolved it meanwhile; acknowledging now is refused, in a sentence, and not recorded
        queries.triage(store, settings, analyst, "inc-9", TriageActionKind.RESOLVE)
        with pytest.raises(queries.TriageRefused, match="reopen it before you acknowledge it"):
            queries.triage(store, settings, analyst, "inc-9", TriageActionKind.ACKNOWLEDGE)
        assert store.get_incident("inc-9").status.value == "resolved"


def test_a_model_alert_is_explained_by_its_figures_baselines_and_peers():
    from dashboard.explain import explain

    evidence = {
        "scale": "short",
        "explanation": [
            {
                "figure": "customers",
                "value": 3812,
                "baseline": 95.0,
                "baseline_from": "own",
                "ratio": 40.1,
                "peer_percentile": 100.0,
                "peers_active": 23,
            },
            {
                "figure": "new_classes",
                "value": 2.0,
                "baseline": None,
                "baseline_from": None,
                "ratio": None,
                "peer_percentile": None,
                "peers_active": 0,
            },
        ],
        "records": 4000,
    }
    said = explain(f.alert(detector="isolation_forest", evidence=evidence))
    assert "Unusual customers: 3,812 against their own usual of 95 (40.1 times); above 100% of the 23 peers" in said[0]
    assert said[0].endswith("peers active then.")
    assert "Unusual new classes: 2." in said


def test_a_model_figures_multiple_is_the_summarys_not_the_scores_smoothed_ratio():
    """Tester: the summary said '786 distinct customers ... 9.5x their usual of 83' and the explanation under it
    '786 against their own usual of 83 (9.3 times)': the stored ratio is the score's, (786 + 1) / (83.3 + 1)."""
    from dashboard.explain import explain

    customers = {"figure": "customers", "value": 786, "baseline": 83.3, "baseline_from": "own", "ratio": 9.33}
    records = {"figure": "records", "value": 25, "baseline": 6.4, "baseline_from": "own", "ratio": 3.51}
    said = explain(f.alert(detector="isolation_forest", evidence={"explanation": [customers, records]}))
    # as the summary words them (``detectors.wording.compared``): '9.5x their usual of 83', '3.9x their usual of 6.4'
    assert said == [
        "Unusual customers: 786 against their own usual of 83 (9.5 times).",
        "Unusual records: 25 against their own usual of 6.4 (3.9 times).",
    ]


def test_a_usual_of_none_is_said_as_none_not_as_a_ratio():
    from dashboard.explain import explain

    # "140 against their own usual of 0 (119.7 times)": a ratio against nothing reads as nonsense
    figure = {"figure": "high", "value": 140, "baseline": 0.17, "baseline_from": "own", "ratio": 119.7}
    said = explain(f.alert(detector="isolation_forest", evidence={"explanation": [figure]}))
    assert said == ["Unusual high: 140, where their own usual is none."]
    evidence = {"figure": "records", "value": 60304, "baseline": 0.0, "baseline_from": "own", "ratio": 60305.0}
    assert explain(f.alert(evidence=evidence))[0] == "60,304 records, where their own usual is none."


@pytest.mark.parametrize(
    "basis, words",
    [
        ("employees", "employees' usual"),
        ("partners", "partners' agents' usual"),
        ("busiest service", "the busiest service account's usual"),
    ],
)
def test_everyone_of_their_kinds_usual_is_named_as_the_summary_names_it(basis, words):
    from dashboard.explain import explain
    from detectors import wording

    evidence = {"figure": "records", "value": 40000, "baseline": 7.0, "baseline_from": basis, "ratio": 5139.0}
    assert explain(f.alert(evidence=evidence))[0] == f"40,000 records against {words} of 7: 5,714.3 times as many."
    assert wording.compared(40_000, 7.0, basis) == f"5,714x {words} of 7"


def test_a_ramp_alert_is_explained_by_its_days():
    from dashboard.explain import explain

    evidence = {
        "figure": "records",
        "cusum": 7.04,
        "days": 5,
        "first_day_records": 141,
        "daily_records": [141, 237, 248, 448, 709],
        "value": 709,
        "baseline": 251.3,
        "baseline_from": "own",
        "ratio": 2.82,
        "z": 2.08,
    }
    said = explain(f.alert(detector="ramp", evidence=evidence))
    assert said[0] == "709 records against their own usual of 251: 2.8 times as many, 2.1 spreads above it."
    assert "Above their usual on 5 days running (records a day, 141, 237, 248, 448, 709)" in said[1]
    assert said[1].endswith("the days' excesses over it add up to 7.0 spreads.")
    longer = explain(f.alert(detector="ramp", evidence={**evidence, "days": 16}))
    assert "on 16 days running (records a day, the latest 5: 141, 237" in longer[1]


def test_the_compliance_pages_partner_scope_asks_each_detector_so_a_new_one_counts(monkeypatch):
    from detectors import registry
    from detectors.base import Detector
    from models.dashboard import AlertDayCount

    class WeekendBulk(Detector):  # a detector added later: its file and its registry line, nothing in the dashboard
        name = "weekend_bulk"

        def detect(self, period):
            return []

    monkeypatch.setitem(registry.DETECTORS, WeekendBulk.name, WeekendBulk)
    day = datetime(2026, 11, 2).date()
    counts = [
        AlertDayCount(day=day, severity="high", detector=detector, actor_kind=kind, alerts=1)
        for detector, kind in [
            ("weekend_bulk", "partner"),
            ("new_access", "partner"),
            ("denied_burst", "partner"),  # refused reads: nothing read out of scope
            ("isolation_forest", "partner"),
            ("weekend_bulk", "employee"),
        ]
    ]
    assert [(c.detector, c.actor_kind) for c in queries.partner_out_of_scope(counts)] == [
        ("weekend_bulk", "partner"),
        ("new_access", "partner"),
    ]


def test_the_model_s_peer_figure_is_a_count_of_the_peers_not_a_percentage_of_a_few():
    from dashboard.explain import explain

    def said(below: int, active: int) -> str:
        figure = {"figure": "records", "value": 900, "baseline": 100.0, "baseline_from": "own", "ratio": 9.0}
        evidence = {"explanation": [{**figure, "peers_below": below, "peers_active": active, "peer_percentile": 1.0}]}
        return explain(f.alert(detector="isolation_forest", evidence=evidence))[0]

    assert said(3, 3).endswith("; more than all 3 other peers active then.")
    assert said(2, 3).endswith("; more than 2 of the 3 other peers active then.")
    assert said(1, 1).endswith("; more than the one other peer active then.")


def test_the_off_hours_line_agrees_with_the_summary_s_never():
    from dashboard.explain import explain

    def said(**evidence) -> str:
        lines = explain(f.alert(detector="off_hours", evidence={"outside_business_hours": False, **evidence}))
        return next(line for line in lines if line.startswith("Active at an hour"))

    assert said(usual_level=0.0) == "Active at an hour when they have not been active before."
    assert (
        said(usual_level=0.0, baseline_from="peers")
        == "Active at an hour when their peers have not been active before."
    )
    assert (
        said(usual_level=0.003)
        == "Active at an hour when they are rarely active (under 1% of their busiest hour's level)."
    )
    assert said(usual_level=0.04, baseline_from="peers").endswith("(4% of their peers' busiest hour's level).")


def test_a_hard_limit_s_records_are_said_to_be_summed_over_the_accesses():
    from dashboard.explain import explain

    lines = explain(f.alert(evidence={"value": 53946, "limit": 50000, "events": 3, "egress_records": 35964}))
    assert "53,946 records accessed in 3 accesses, over the hard limit of 50,000." in lines
    assert any(line.startswith("35,964 records left the system") and "summed over" in line for line in lines)


def test_markdown_text_puts_web_addresses_in_code_where_no_renderer_makes_them_links():
    # escaping the ':' is not enough: Streamlit's Markdown still linked "https\://evil.example/p" (tester T9)
    assert markdown_text("see https://evil.example/p now") == "see ` https://evil.example/p ` now"
    assert markdown_text("WWW.evil.example") == "` WWW.evil.example `"
    assert markdown_text("ftp://x/`a``b`") == "``` ftp://x/`a``b` ```"  # a fence longer than its backticks
    assert markdown_text("no link: evil.example") == "no link: evil.example"


def test_an_alert_s_resources_mask_a_record_id_that_holds_a_slash():
    # the id is all after the system and type: split at the last "/", "R1234567/profile" kept its number (T9)
    shown = Masker(b"k").evidence({"resources": ["crm/customer_record/R1234567/profile", "crm/customer_record"]})
    assert shown["resources"] == ["crm/customer_record/R•••", "crm/customer_record"]


def test_markdown_text_shows_an_invisible_character_as_its_escape():
    # an id made to look like another (tester T9): emp-0011 with a right-to-left override, or a zero-width space
    assert markdown_text("emp-0011\u202egpj.exe") == "emp-0011\\\\u202egpj.exe"
    assert markdown_text("emp\u200b-0011") == "emp\\\\u200b-0011"
    assert markdown_text("王小明") == "王小明"  # printable letters of any script are left as written


def test_a_report_quotes_its_listed_ids_when_one_holds_a_comma(settings):
    # "c,1" and "c2" are two ids: joined bare they would read as three
    text = report.markdown(_report(settings, ["c,1", 'c"2']))
    assert 'Only read (2): "c,1", "c""2"' in text
    assert "Only read (2): c2, c3" in report.markdown(_report(settings, ["c2", "c3"]))  # no comma: as they are


def test_the_new_findings_are_explained_in_words_not_left_to_the_evidence_table():
    from dashboard.explain import explain
    from detectors import wording

    # T14: a contract breach, an hour judged on its records, an actor compared with everyone of its kind
    contract = f.alert(
        detector="partner_contract",
        actor_kind="partner",
        evidence={
            "contract": {"organization": "Northstar Credit Bureau", "data_classes": ["credit", "identity"]},
            "outside_contract": {"income_documents": {"records": 105, "sensitivity": "high", "fields": ["payslip"]}},
            "records": 105,
        },
    )
    assert (
        "Outside the contract of Northstar Credit Bureau, which covers credit, identity: income documents (high"
        " sensitivity): 105 records."
    ) in explain(contract)
    # two classes outside, read together in 100 of the 150 records: the records outside first, never the classes'
    # sum; an alert raised before that total counted each access once says its largest class's is a floor
    both = {
        "government_id": {"records": 130, "sensitivity": "high"},
        "financial": {"records": 120, "sensitivity": "high"},
    }
    terms = {"organization": "Credit Bureau", "data_classes": ["contact", "identity"]}
    now = {"records_outside_contract": 150, "records_outside_contract_by_sensitivity": {"high": 150}}
    said = {
        kept: explain(
            f.alert(
                detector="partner_contract",
                actor_kind="partner",
                evidence={"contract": terms, "outside_contract": both, **figures},
            )
        )
        for kept, figures in [("now", now), ("before", {"records_outside_contract": 130})]
    }
    classes = (
        "government id (high sensitivity): 130 records; financial (high sensitivity): 120 records (an access that"
        " read several classes counts in each)."
    )
    opening = "Outside the contract of Credit Bureau, which covers contact, identity:"
    assert f"{opening} 150 records, of which {classes}" in said["now"]
    assert f"{opening} at least 130 records, of which {classes}" in said["before"]
    noon = f.alert(
        detector="off_hours",
        actor_kind="service",
        evidence={"usual_level": 0.0, "judged_on": "records", "records": 60000, "events": 7},
    )
    said = explain(noon)
    assert "Judged on the 60,000 records read, not on the 7 accesses (a service account keeps no office hours)." in said
    kind = f.alert(evidence={"value": 40000, "baseline": 6.5, "baseline_from": "employees", "ratio": 5139.0})
    said = explain(kind)
    assert said[0] == "40,000 records against employees' usual of 6.5: 6,153.8 times as many."
    assert said[1].endswith("so they were compared with all employees.")
    assert wording.compared(40_000, 6.546, "employees") == "6,154x employees' usual of 6.5"  # as explained


def test_a_range_reaching_into_an_hour_retention_cut_counts_the_whole_hours_before_it_as_at_least(
    sqlite_store, settings
):
    sqlite_store.write([f.incoming(settings, at=f.at(hours=h)) for h in (0, 1, 1.5, 2, 3)])
    sqlite_store.fold()
    sqlite_store.purge(RetentionPolicy(f.at(hours=1.75), f.at(-1)))  # 00:00, 01:00 and 01:30 go; 02:00 and 03:00 stay
    zone = settings.organisation.tz
    gone = deleted.deleted_in(sqlite_store, EventQuery(since=f.at(), until=f.at(hours=4)), f.at(days=1), 120)
    assert gone is not None and (gone.events, gone.exact) == (1, False)  # hour 00:00 whole; 01:00's two not counted
    assert deleted.note(gone, zone).startswith("At least 1 event of this range was deleted by retention on")
    # a range after the horizon lost nothing
    assert deleted.deleted_in(sqlite_store, EventQuery(since=f.at(hours=2)), f.at(days=1), 120) is None


def test_a_store_whose_retention_records_no_purge_says_where_its_kept_log_begins(sqlite_store, settings, monkeypatch):
    """As Elasticsearch's ILM: a day's index goes, unrecorded; the oldest event kept is all there is to say."""
    sqlite_store.write([f.incoming(settings, at=f.at(days=d)) for d in (3, 4)])
    monkeypatch.setattr(type(sqlite_store), "records_purges", False)
    gone = deleted.deleted_in(sqlite_store, EventQuery(customer_id="c-000001"), f.at(days=5), 120)
    assert gone is not None and gone.purge is None and gone.horizon == f.at(days=3)
    assert deleted.note(gone, ZoneInfo("Asia/Shanghai")) == (
        "The log kept begins at 2026-11-05 09:00 +08:00, and this range reaches before it: retention deletes the"
        " events older than 120 days and records no purge, so those logged before it (if any) are not shown or"
        " counted here, and how many there were is not known."
    )
    assert deleted.deleted_in(sqlite_store, EventQuery(since=f.at(days=3)), f.at(days=5), 120) is None
    monkeypatch.setattr(type(sqlite_store), "records_purges", True)  # a store that records them, and none ran
    assert deleted.deleted_in(sqlite_store, EventQuery(customer_id="c-000001"), f.at(days=5), 120) is None
