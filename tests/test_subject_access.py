"""The answer to a customer's access request: their accesses, in words, naming nobody else."""

from __future__ import annotations

import csv
import io
from zoneinfo import ZoneInfo

import pytest

from dashboard import queries, subject_access
from dashboard.auth import Identity, Role
from models.dashboard import DataAccessKind, DataAccessQuery
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


def test_the_answer_lists_the_served_accesses_oldest_first_in_words(requester_log):
    export = subject_access.subject_access_answer(requester_log, AUDITOR, "c-me", "DSAR 2026-118", SHANGHAI)
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
    assert rows[0]["data"] == "name, passport_number" and rows[0]["categories"] == "government_id, identity"
    assert rows[1]["purpose"] == "delivery 5531"


def test_the_answer_names_no_other_customer_person_address_or_record(requester_log):
    export = subject_access.subject_access_answer(requester_log, AUDITOR, "c-me", "DSAR 2026-118", SHANGHAI)
    for leak in ("c-other", "cust#", "emp-0001", "ptn-0042", "svc-backup", "203.0.113.9", "10.0.0.1", "evt-", "c-me"):
        assert leak not in export.csv
    assert list(_rows(export)[0]) == list(subject_access.SUBJECT_COLUMNS)


def test_the_answer_is_recorded_and_only_auditors_give_it_with_a_reason(requester_log):
    subject_access.subject_access_answer(requester_log, AUDITOR, " c-me ", "DSAR 2026-118", SHANGHAI)
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
        subject_access.subject_access_answer(requester_log, analyst, "c-me", "DSAR 1", SHANGHAI)
    with pytest.raises(ValueError, match="reason"):
        subject_access.subject_access_answer(requester_log, AUDITOR, "c-me", " ", SHANGHAI)
    with pytest.raises(ValueError, match="one customer"):
        subject_access.subject_access_answer(requester_log, AUDITOR, "  ", "DSAR 1", SHANGHAI)


def test_the_answer_pages_through_the_history_and_says_when_its_cap_cut_it(sqlite_store, settings, monkeypatch):
    monkeypatch.setattr(queries, "EXPORT_PAGE", 2)
    sqlite_store.write([f.incoming(settings, at=f.at(days=d), customer_ids=["c-me"]) for d in range(7)])
    whole = subject_access.subject_access_answer(sqlite_store, AUDITOR, "c-me", "DSAR 9", SHANGHAI)
    assert (whole.events, whole.complete) == (7, True)
    times = [row["time"] for row in _rows(whole)]
    assert times == sorted(times) and len(set(times)) == 7
    cut = subject_access.subject_access_answer(sqlite_store, AUDITOR, "c-me", "DSAR 9", SHANGHAI, cap=5)
    assert (cut.events, cut.complete) == (5, False)
    assert [row["time"] for row in _rows(cut)] == times[:5]  # the oldest: the answer reads from the start


def test_the_answer_keeps_a_spreadsheet_from_running_the_log_s_text(sqlite_store, settings):
    sqlite_store.write([f.incoming(settings, customer_ids=["c-me"], purpose='=HYPERLINK("http://x","y")')])
    [row] = _rows(subject_access.subject_access_answer(sqlite_store, AUDITOR, "c-me", "DSAR 3", SHANGHAI))
    assert row["purpose"].startswith("'=")


def test_the_answer_names_a_team_once_and_no_class_for_unclassified_fields(sqlite_store, settings):
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
    [row] = _rows(subject_access.subject_access_answer(sqlite_store, AUDITOR, "c-me", "DSAR 4", SHANGHAI))
    assert row["who"] == "our staff (sales)"
    assert (row["data"], row["categories"]) == ("name, membership_tier", "identity")
