"""The answer to a customer's access request: their accesses, in words, naming nobody else."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from configs.loader import load_settings
from dashboard import queries, subject_access
from dashboard.auth import Identity, Role
from models.dashboard import DataAccessKind, DataAccessQuery
from models.incident import TriageAction, TriageActionKind
from store.base import EventTotal
from store.retention import RetentionPolicy
from tests import factories as f

AUDITOR = Identity("audrey", Role.AUDITOR, "Audrey", "password")
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def requester_log(sqlite_store, settings):
    """c-me's data read by staff, a partner and a service, beside other customers; one access denied."""
    events = [
        f.incoming(
            settings,
            at=f.at(hours=2),
            actor={"id": "ptn-0042", "kind": "partner", "organization": "FastDelivery Ltd", "role": "courier_desk"},
            customer_ids=["c-other-1", "c-me"],
            fields=["name", "address"],
            purpose="delivery 5531",
            source_ip="203.0.113.9",
        ),
        f.incoming(settings, at=f.at(hours=0), customer_ids=["c-me", "c-other-2"], fields=["name", "passport_number"]),
        f.incoming(
            settings,
            at=f.at(hours=3),
            actor={"id": "svc-backup", "kind": "service", "role": "backup", "department": "it"},
            resource={"system": "loyalty"},
            action="export",
            customer_ids=["c-me"],
            fields=["loyalty_points"],
        ),
        f.incoming(settings, at=f.at(hours=4), customer_ids=["c-me"], fields=["bank_account"], outcome="denied"),
        f.incoming(settings, at=f.at(hours=5), customer_ids=["c-other-3"], fields=["email"]),
    ]
    sqlite_store.write(events)
    return sqlite_store


def _rows(export: queries.Export) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(export.csv)))


def test_the_answer_lists_the_served_accesses_oldest_first_in_words(requester_log, settings):
    labels = subject_access.Labels.of(settings.classification)
    export = subject_access.subject_access_answer(
        requester_log, AUDITOR, "c-me", "DSAR 2026-118", SHANGHAI, retention_days=180, labels=labels
    )
    rows = _rows(export)
    assert (export.events, export.complete) == (3, True)  # the denied one disclosed nothing
    assert [row["time"] for row in rows] == [
        "2026-11-02 09:00:00.000 +08:00",
        "2026-11-02 11:00:00.000 +08:00",
        "2026-11-02 12:00:00.000 +08:00",
    ]
    assert [row["who"] for row in rows] == [
        "our staff (customer service, service)",
        "FastDelivery Ltd (partner company), courier desk",
        "an automated process of the loyalty system",
    ]
    assert [row["action"] for row in rows] == ["read", "read", "export"]
    # the classification's labels, not the log's ids ("government_id", "passport_number": T19)
    assert rows[0]["data"] == "name, passport number" and rows[0]["categories"] == "identity documents, identity"
    # a purpose not logged is said in words: an empty cell would read as something left out of the answer
    # (the partner's "delivery 5531": a word naming a record, masked as a masked viewer sees it)
    assert [row["purpose"] for row in rows] == ["no purpose recorded", "delivery 5•••", "no purpose recorded"]


def test_the_answer_is_a_plain_table_and_its_notes_a_cover_note_of_their_own(requester_log):
    """Before, the period and the deletions opened the CSV as one-cell lines above the header: a spreadsheet or a
    csv reader took them for rows, and the header for one more."""
    export = subject_access.subject_access_answer(
        requester_log, AUDITOR, "c-me", "DSAR 2026-118", SHANGHAI, retention_days=180, now=f.at(days=1)
    )
    table = list(csv.reader(io.StringIO(export.csv)))
    assert table[0] == list(subject_access.SUBJECT_COLUMNS)  # the first row is the header
    assert len(table) == 1 + export.events and {len(row) for row in table} == {len(subject_access.SUBJECT_COLUMNS)}
    note = export.cover_note("access-request-answer-cust-3fa9c2e1-2026-11-03.csv")
    assert note.startswith(export.notes[0] + "\n\n") and all(line in note for line in export.notes)
    assert note.endswith(
        "The accesses are listed in access-request-answer-cust-3fa9c2e1-2026-11-03.csv, one a row, oldest first:"
        " time, who, action, data, categories, purpose.\n\n"
    )
    assert "c-me" not in note and "DSAR" not in note


def test_the_answer_names_no_other_customer_person_address_or_record(requester_log):
    export = subject_access.subject_access_answer(
        requester_log, AUDITOR, "c-me", "DSAR 2026-118", SHANGHAI, retention_days=180
    )
    for leak in ("c-other", "cust#", "emp-0001", "ptn-0042", "svc-backup", "203.0.113.9", "10.0.0.1", "evt-", "c-me"):
        assert leak not in export.csv
    assert list(_rows(export)[0]) == list(subject_access.SUBJECT_COLUMNS)


def test_the_answer_s_purposes_name_the_requester_alone_and_mask_what_would_disclose_others(sqlite_store, settings):
    """Before, the answer wrote each purpose as the log did: handing it over disclosed the other customer a
    purpose quoted, their passport, address and phone (GDPR art. 15(4))."""
    purposes = [
        "complaint of c-152762 about c-me, passport E12345678, TICKET-77",
        "call jane.doe@example.com or +1 (212) 555-0199 for c-me, ticket #123456",
        "OPS-4711 for c-152762",
    ]
    sqlite_store.write(
        [
            f.incoming(settings, at=f.at(hours=hour), customer_ids=["c-me", "c-152762"], purpose=purpose)
            for hour, purpose in enumerate(purposes)
        ]
    )
    export = subject_access.subject_access_answer(
        sqlite_store, AUDITOR, "c-me", "DSAR 2026-118", SHANGHAI, retention_days=180, references=r"TICKET-\d+"
    )
    assert [row["purpose"] for row in _rows(export)] == [
        "complaint of another customer about c-me, passport E•••, TICKET-77",
        # the installation's references alone kept: "ticket #123456" is not one of them here
        "call ••• or ••• for c-me, ticket #•••",
        "O••• for another customer",
    ]
    for leak in ("152762", "E12345678", "jane.doe", "555-0199", "4711", "cust#"):
        assert leak not in export.csv


def test_the_answer_is_recorded_and_only_auditors_give_it_with_a_reason(requester_log):
    subject_access.subject_access_answer(
        requester_log, AUDITOR, " c-me ", "DSAR 2026-118", SHANGHAI, retention_days=180
    )
    [access] = requester_log.data_accesses(DataAccessQuery())
    assert (access.kind, access.by, access.reason, access.results) == (
        DataAccessKind.EXPORT,
        "audrey",
        "DSAR 2026-118",
        3,
    )
    assert access.what["customer_id"] == "c-me" and access.what["shape"] == "subject answer"
    analyst = Identity("ana", Role.ANALYST, "Ana", "password")
    with pytest.raises(PermissionError):
        subject_access.subject_access_answer(requester_log, analyst, "c-me", "DSAR 1", SHANGHAI, retention_days=180)
    with pytest.raises(ValueError, match="reason"):
        subject_access.subject_access_answer(requester_log, AUDITOR, "c-me", " ", SHANGHAI, retention_days=180)
    with pytest.raises(ValueError, match="one customer"):
        subject_access.subject_access_answer(requester_log, AUDITOR, "  ", "DSAR 1", SHANGHAI, retention_days=180)


def test_the_answer_pages_through_the_history_and_says_when_its_cap_cut_it(sqlite_store, settings, monkeypatch):
    monkeypatch.setattr(queries, "EXPORT_PAGE", 2)
    sqlite_store.write([f.incoming(settings, at=f.at(days=d), customer_ids=["c-me"]) for d in range(7)])
    whole = subject_access.subject_access_answer(sqlite_store, AUDITOR, "c-me", "DSAR 9", SHANGHAI, retention_days=180)
    assert (whole.events, whole.complete) == (7, True)
    times = [row["time"] for row in _rows(whole)]
    assert times == sorted(times) and len(set(times)) == 7
    cut = subject_access.subject_access_answer(
        sqlite_store, AUDITOR, "c-me", "DSAR 9", SHANGHAI, cap=5, retention_days=180
    )
    assert (cut.events, cut.complete) == (5, False)
    assert [row["time"] for row in _rows(cut)] == times[:5]  # the oldest: the answer reads from the start


def test_the_answer_keeps_a_spreadsheet_from_running_the_log_s_text(sqlite_store, settings):
    sqlite_store.write([f.incoming(settings, customer_ids=["c-me"], purpose='=HYPERLINK("http://x","y")')])
    [row] = _rows(
        subject_access.subject_access_answer(sqlite_store, AUDITOR, "c-me", "DSAR 3", SHANGHAI, retention_days=180)
    )
    assert row["purpose"].startswith("'=")


def test_the_answer_names_a_team_once_and_fields_of_no_class_as_other_data(sqlite_store, settings):
    sqlite_store.write(
        [
            f.incoming(
                settings,
                actor={"id": "emp-7", "role": "sales", "department": "sales"},
                customer_ids=["c-me"],
                fields=["name", "membership_tier"],
            )
        ]
    )
    [row] = _rows(
        subject_access.subject_access_answer(
            sqlite_store,
            AUDITOR,
            "c-me",
            "DSAR 4",
            SHANGHAI,
            retention_days=180,
            labels=subject_access.Labels.of(settings.classification),
        )
    )
    assert row["who"] == "our staff (sales)"
    # the field is listed, in words; its category too, where a raw "unclassified" would say nothing to the requester
    assert (row["data"], row["categories"]) == ("name, membership tier", "identity, other data")


def test_the_answer_names_the_data_as_the_classification_labels_them_else_in_words(settings, tmp_path):
    default = subject_access.Labels.of(settings.classification)
    assert [default.field(name) for name in ("wechat_id", "bank_account", "id_number", "passport_number")] == [
        "WeChat ID",  # labelled in configs/default.toml: its name in words would be "wechat ID"
        "bank account",
        "identity card number",
        "passport number",
    ]
    assert [default.data_class(name) for name in ("government_id", "special", "financial")] == [
        "identity documents",
        "health, diet and religion",
        "financial details",
    ]
    # an operator's own class and field, with no label: their names in words, "id" as "ID"
    config = tmp_path / "classes.toml"
    config.write_text('[classification.classes.travel_docs]\nsensitivity = "high"\nfields = ["visa_id"]\n')
    own = load_settings(config, env={}, overrides={"data_dir": str(tmp_path / "data")})
    labels = subject_access.Labels.of(own.classification)
    assert (labels.data_class("travel_docs"), labels.field("visa_id")) == ("travel docs", "visa ID")
    # and a label set by a variable, as every value can be
    env = {"ACCESSWATCH_CLASSIFICATION__CLASSES__TRAVEL_DOCS__LABEL": "travel documents"}
    relabelled = load_settings(config, env=env, overrides={"data_dir": str(tmp_path / "data")})
    assert subject_access.Labels.of(relabelled.classification).data_class("travel_docs") == "travel documents"


def _notes(export: subject_access.SubjectAnswer) -> list[str]:
    """The cover note's lines, the last (which names the table's file) left out."""
    return export.cover_note("answer.csv").split("\n\n")[:-2]


KEPT_180_DAYS = "we keep the record of accesses for 180 days (our retention policy), then delete it"


def test_the_answer_opens_with_the_period_it_covers_from_the_oldest_access_kept(requester_log):
    export = subject_access.subject_access_answer(
        requester_log, AUDITOR, "c-me", "DSAR 5", SHANGHAI, retention_days=180, now=f.at(days=1)
    )
    # the record starts with its oldest access, whoever's: before it, nothing of anyone was kept
    assert _notes(export) == [
        "Accesses to your data recorded from 2026-11-02 09:00 +08:00 to 2026-11-03 09:00 +08:00:"
        " 3, listed in the table.",
        f"Our record of accesses begins at 2026-11-02 09:00 +08:00: {KEPT_180_DAYS}.",
        "Times are Asia/Shanghai time, with their offset from UTC.",
    ]
    [access] = requester_log.data_accesses(DataAccessQuery())
    assert access.what["period"] == [f.at().isoformat(), f.at(days=1).isoformat()]


@pytest.fixture
def purged_log(sqlite_store, settings):
    """c-gone read on day 0 only, c-me on days 0 (cited by an open alert: kept as evidence) and 40; purged on day 61
    with 30 days' retention."""
    cited = f.incoming(settings, at=f.at(days=0), customer_ids=["c-me"])
    sqlite_store.write(
        [
            cited,
            f.incoming(settings, at=f.at(days=0, hours=1), customer_ids=["c-gone", "c-me"]),
            f.incoming(settings, at=f.at(days=40), customer_ids=["c-me"], purpose="ticket 7"),
            f.incoming(settings, at=f.at(days=50), customer_ids=["c-other"]),
        ]
    )
    sqlite_store.upsert_alerts([f.alert(evidence={"records": 1, "event_ids": [cited.event.event_id]})])
    assert sqlite_store.purge(RetentionPolicy.of(events_days=30, alerts_days=30, now=f.at(days=61))).events == 1
    return sqlite_store


def _ran(store) -> list[str]:
    """When each purge ran, as the answer gives it, oldest first: at the wall clock's time, which the store recorded."""
    return [queries.local_time(purge.at, SHANGHAI) for purge in store.purges()]


def _deleted(store) -> list[str]:
    """The deletion sentences of ``purged_log``'s one purge."""
    [ran] = _ran(store)
    return [
        "Accesses before 2026-12-03 09:00 +08:00 are no longer recorded: we keep the record of accesses for 30 days"
        " (our retention policy), then delete it.",
        f"On {ran}, the accesses recorded before 2026-12-03 09:00 +08:00 were deleted under our retention policy.",
        "How many of the accesses this deletion removed were to your data is not recorded.",
    ]


def test_after_a_purge_an_empty_answer_is_an_answer_for_the_period_kept(purged_log):
    export = subject_access.subject_access_answer(
        purged_log, AUDITOR, "c-gone", "DSAR 6", SHANGHAI, retention_days=30, now=f.at(days=61)
    )
    assert (export.events, export.complete, _rows(export)) == (0, True, [])
    assert export.csv == ",".join(subject_access.SUBJECT_COLUMNS) + "\r\n"  # the header alone
    assert export.cover_note("answer.csv").endswith("answer.csv holds the table's header only: no access to list.\n\n")
    assert _notes(export) == [
        "No access to your data was recorded from 2026-12-03 09:00 +08:00 to 2027-01-02 09:00 +08:00.",
        *_deleted(purged_log),
        "Times are Asia/Shanghai time, with their offset from UTC.",
    ]


def test_after_a_purge_the_answer_covers_from_its_horizon_and_names_the_evidence_kept_from_before(purged_log):
    export = subject_access.subject_access_answer(
        purged_log, AUDITOR, "c-me", "DSAR 7", SHANGHAI, retention_days=30, now=f.at(days=61)
    )
    assert [row["time"] for row in _rows(export)] == [
        "2026-11-02 09:00:00.000 +08:00",
        "2026-12-12 09:00:00.000 +08:00",
    ]
    assert _notes(export) == [
        "Accesses to your data recorded from 2026-12-03 09:00 +08:00 to 2027-01-02 09:00 +08:00:"
        " 1, listed in the table.",
        *_deleted(purged_log),
        "Listed first: 1 earlier access to your data, kept past the retention period as evidence for a security alert.",
        "Times are Asia/Shanghai time, with their offset from UTC.",
    ]


def test_after_several_purges_the_answer_gives_each_deletion_most_recent_first(sqlite_store, settings):
    sqlite_store.write([f.incoming(settings, at=f.at(days=d), customer_ids=["c-me"]) for d in (0, 20, 40, 50)])
    # 30 days' retention, purged on day 45 (day 0 goes), then on day 61 (day 20 goes): two horizons, two deletions
    for day in (45, 61):
        assert sqlite_store.purge(RetentionPolicy.of(events_days=30, alerts_days=30, now=f.at(days=day))).events == 1
    export = subject_access.subject_access_answer(
        sqlite_store, AUDITOR, "c-me", "DSAR 10", SHANGHAI, retention_days=30, now=f.at(days=61)
    )
    first, latest = _ran(sqlite_store)
    # the latest alone would read as the only deletion: the earlier one, which deleted day 0's access, went unsaid
    assert _notes(export) == [
        "Accesses to your data recorded from 2026-12-03 09:00 +08:00 to 2027-01-02 09:00 +08:00:"
        " 2, listed in the table.",
        "Accesses before 2026-12-03 09:00 +08:00 are no longer recorded: we keep the record of accesses for 30 days"
        " (our retention policy), then delete it.",
        f"On {latest}, the accesses recorded before 2026-12-03 09:00 +08:00 were deleted under our retention policy.",
        f"On {first}, the accesses recorded before 2026-11-17 09:00 +08:00 were deleted under our retention policy.",
        # a purge counts the events it deleted, everyone's: no figure of this customer's to give
        "How many of the accesses these deletions removed were to your data is not recorded.",
        "Times are Asia/Shanghai time, with their offset from UTC.",
    ]
    assert [row["time"] for row in _rows(export)] == [
        "2026-12-12 09:00:00.000 +08:00",
        "2026-12-22 09:00:00.000 +08:00",
    ]


def test_a_daily_purge_does_not_open_the_answer_with_a_sentence_a_day(sqlite_store, settings):
    sqlite_store.write([f.incoming(settings, at=f.at(days=d), customer_ids=["c-me"]) for d in range(60)])
    # purged every day for six days, as ``purge_every = "1d"`` does: the three latest named, the three before counted
    for day in range(40, 46):
        sqlite_store.purge(RetentionPolicy.of(events_days=30, alerts_days=30, now=f.at(days=day)))
    assert len(sqlite_store.purges()) == 6
    export = subject_access.subject_access_answer(
        sqlite_store, AUDITOR, "c-me", "DSAR 11", SHANGHAI, retention_days=30, now=f.at(days=45)
    )
    ran = _ran(sqlite_store)
    notes = _notes(export)
    named = [note for note in notes if note.startswith("On ")]
    assert [note.split(",")[0] for note in named] == [f"On {when}" for when in ran[:2:-1]]  # the 6th, 5th, 4th
    assert f"Before that, 3 earlier deletions under the same policy ran from {ran[0]} to {ran[2]}." in notes
    assert notes[-2] == "How many of the accesses these deletions removed were to your data is not recorded."


def test_a_cut_answer_says_up_to_when_it_lists(sqlite_store, settings):
    sqlite_store.write([f.incoming(settings, at=f.at(days=d), customer_ids=["c-me"]) for d in range(3)])
    cut = subject_access.subject_access_answer(
        sqlite_store, AUDITOR, "c-me", "DSAR 8", SHANGHAI, cap=2, retention_days=180, now=f.at(days=3)
    )
    assert _notes(cut)[-2] == (
        "The table lists the first 2 accesses, up to 2026-11-03 09:00 +08:00: the later ones did not fit in one file."
    )


def test_a_partner_under_a_declared_contract_is_named_as_the_contract_names_it(sqlite_store, settings, tmp_path):
    config = tmp_path / "contracts.toml"
    config.write_text('[detectors.partner_contract.contracts."Blue Sky Travel"]\ndata_classes = ["identity"]\n')
    declared = load_settings(config, env={}, overrides={"data_dir": str(tmp_path / "data")})
    partners = subject_access.partner_names(declared.detectors)
    assert partners == {"blue sky travel": "Blue Sky Travel"}
    sqlite_store.write(
        [
            f.incoming(
                settings,
                at=f.at(hours=h),
                actor={"id": f"ptn-{h}", "kind": "partner", "organization": company, "role": "booking_agent"},
                customer_ids=["c-me"],
            )
            for h, company in enumerate(["blue-sky-travel", "Red Sun Tours"])
        ]
    )
    export = subject_access.subject_access_answer(
        sqlite_store, AUDITOR, "c-me", "DSAR 9", SHANGHAI, retention_days=180, partners=partners
    )
    assert [row["who"] for row in _rows(export)] == [
        "Blue Sky Travel (partner company), booking agent",  # the log's "blue-sky-travel", matched as the detector does
        "Red Sun Tours (partner company), booking agent",  # no contract: the log's name
    ]
    # a contract named by an environment variable alone ("_" for spaces, lower case) reads worse than the log
    read = f.event(actor={"id": "ptn-1", "kind": "partner", "organization": "Red Sun Tours"})
    assert subject_access.recipient(read, {"red sun tours": "red_sun_tours"}).startswith("Red Sun Tours (partner")


def test_download_names_carry_the_customer_as_shown_and_the_local_date():
    moment = f.at(hours=17)  # 2026-11-03 02:00 in Shanghai: the organisation's date, not UTC's
    assert queries.download_name("access-request-answer", "cust#3fa9c2e1", moment, SHANGHAI) == (
        "access-request-answer-cust-3fa9c2e1-2026-11-03.csv"
    )
    assert queries.download_name("accesswatch-events", "c-079537", moment, SHANGHAI) == (
        "accesswatch-events-c-079537-2026-11-03.csv"
    )
    assert queries.download_name("accesswatch-events", None, moment, SHANGHAI) == "accesswatch-events-2026-11-03.csv"
    assert queries.download_name("access-request-answer-note", "cust#3fa9c2e1", moment, SHANGHAI, "txt") == (
        "access-request-answer-note-cust-3fa9c2e1-2026-11-03.txt"
    )


def test_an_answer_says_the_accesses_that_logged_a_sample_of_their_customers_may_hide_the_person(
    sqlite_store, settings
):
    sqlite_store.write(
        [
            f.incoming(settings, at=f.at(hours=1), customer_ids=["c-me"]),
            # a report of 500 records that logged two of its customers: c-else may be any of the other 498
            f.incoming(settings, at=f.at(hours=2), record_count=500, customer_ids=["c-1", "c-2"]),
            # refused: it served nothing, sampled or not
            f.incoming(settings, at=f.at(hours=3), record_count=90, customer_ids=["c-1"], outcome="denied"),
        ]
    )
    caveat = (
        "1 access in this period recorded fewer customers than the records they served (only a sample of them):"
        " your data may have been among those records without being recorded as yours, so this answer may not list"
        " every access that served it."
    )
    outside = subject_access.subject_access_answer(
        sqlite_store, AUDITOR, "c-else", "DSAR 12", SHANGHAI, retention_days=180, now=f.at(days=1)
    )
    # "No access ... was recorded" stays true; alone, it read as though none had served their data (T19)
    assert _notes(outside)[0].startswith("No access to your data was recorded from")
    assert caveat in _notes(outside)
    assert caveat in _notes(
        subject_access.subject_access_answer(
            sqlite_store, AUDITOR, "c-me", "DSAR 13", SHANGHAI, retention_days=180, now=f.at(days=1)
        )
    )
    assert sqlite_store.sampled_events(f.at(hours=2, days=0) + timedelta(minutes=1), f.at(days=1), 10) == EventTotal(0)
    assert sqlite_store.sampled_events(None, f.at(days=1), 10) == EventTotal(1)


def test_a_store_that_does_not_count_sampled_accesses_gets_the_caveat_in_general_terms():
    assert subject_access._sampled_lines(None) == [
        "Some systems record only a sample of the customers when one access serves many records: an access that"
        " served your data among many others may not be listed here."
    ]
    assert subject_access._sampled_lines(EventTotal(0)) == []
    assert subject_access._sampled_lines(EventTotal(1000, more=True))[0].startswith("More than 1,000 accesses in")


def test_accesses_in_an_incident_s_flagged_activity_are_listed_for_review_not_marked_in_the_file(
    sqlite_store, settings
):
    attacker = {"id": "svc-sync", "kind": "service", "role": "sync", "department": "it"}
    sqlite_store.write(
        [
            f.incoming(settings, at=f.at(hours=1), actor=attacker, customer_ids=["c-me"], action="export"),
            f.incoming(settings, at=f.at(hours=5), actor=attacker, customer_ids=["c-me"]),  # the routine, later
            f.incoming(settings, at=f.at(hours=1.5), customer_ids=["c-me"]),  # another actor, at the same hour
        ]
    )
    alert = f.alert(
        actor_id="svc-sync",
        actor_kind="service",
        window_start=f.at(),
        window_end=f.at(hours=24),  # a day's window; only its first two hours flagged
        evidence={
            "records": 1,
            "event_ids": [],
            "spans": [[f.at().isoformat(), f.at(hours=2).isoformat(), 5.0, "high"]],
        },
    )
    sqlite_store.upsert_alerts([alert], [f.incident_of(alert, "inc-exfil", 80.0)])
    answer = subject_access.subject_access_answer(
        sqlite_store, AUDITOR, "c-me", "DSAR 14", SHANGHAI, retention_days=180, now=f.at(days=1)
    )
    # the file words it as any other access: no "incident" for the person to read before the privacy officer decides
    assert "inc-exfil" not in answer.csv and "incident" not in answer.csv
    assert answer.review == (
        "For your review before sending (not in the file): 1 access listed falls in the flagged activity of an"
        " incident (inc-exfil). The file lists them as it lists the others, in the same words: telling the person"
        " of a breach (GDPR art. 34, PIPL art. 57) is the privacy officer's decision, made apart.",
        "- 2026-11-02 10:00 +08:00: an automated process of the crm system, export (inc-exfil)",
    )
    [access] = sqlite_store.data_accesses(DataAccessQuery())
    assert access.what["incidents"] == ["inc-exfil"]
    # marked a false positive, it is no incident: nothing to review
    no_breach = TriageAction(
        incident_id="inc-exfil", kind=TriageActionKind.FALSE_POSITIVE, by="dpo", at=f.at(days=1), note="a test export"
    )
    sqlite_store.record_action(no_breach)
    again = subject_access.subject_access_answer(
        sqlite_store, AUDITOR, "c-me", "DSAR 15", SHANGHAI, retention_days=180, now=f.at(days=1)
    )
    assert again.review == ()
