"""The behaviour every store adapter must have: one suite, run on each adapter.

A test module subclasses ``StoreContract`` and provides a ``store`` fixture
(a fresh, empty store) and a ``settings`` fixture.  SQLite runs it in
``tests/test_store_sqlite.py``; the Elasticsearch adapter runs the same
class against the test server and, when ``ACCESSWATCH_TEST_ES_URL`` is set,
against a real cluster.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import orjson
import pytest

from detectors.classify import Classifier
from models.alert import AlertStatus, Severity
from models.deadletter import DeadLetter
from models.event import AccessEvent, Action, Outcome
from models.fast_event import from_model
from models.incident import Incident, TransitionRefused, TriageAction, TriageActionKind
from store.base import AlertQuery, EventQuery, EventTotal, IncidentQuery, IncomingEvent, KeptHistory, Store
from tests import factories as f


def _deadletter(position: str, raw: bytes = b"{not json") -> DeadLetter:
    return DeadLetter(
        source="file:/logs/a.jsonl",
        position=position,
        reason="not valid JSON",
        raw=raw,
        received_at=datetime(2026, 11, 2, tzinfo=UTC),
        raw_size=len(raw),
    )


def _incident(**overrides) -> Incident:
    data = {
        "incident_id": "inc-1",
        "actor_id": "emp-0001",
        "actor_kind": "employee",
        "severity": Severity.HIGH,
        "risk_score": 60.0,
        "window_start": f.T0,
        "window_end": f.T0 + timedelta(hours=1),
        "alert_ids": [],
        "detectors": ["bulk_read"],
        "summary": "Employee emp-0001 read 5,000 records.",
        "created_at": f.T0 + timedelta(hours=1),
        "updated_at": f.T0 + timedelta(hours=1),
    }
    data.update(overrides)
    return Incident.model_validate(data)


class StoreContract:
    # -- writing events -------------------------------------------------------------
    def test_new_events_are_stored_and_returned_in_order(self, store: Store, settings):
        batch = [f.incoming(settings, at=f.at(hours=h)) for h in range(5)]
        result = store.write(batch)
        assert [i.event.event_id for i in result.stored] == [i.event.event_id for i in batch]
        assert result.duplicates == 0
        assert store.stats().events == 5

    def test_writing_the_same_events_again_stores_nothing(self, store: Store, settings):
        batch = [f.incoming(settings, at=f.at(hours=h)) for h in range(3)]
        store.write(batch)
        again = store.write(batch)
        assert again.stored == [] and again.duplicates == 3
        assert store.stats().events == 3

    def test_duplicates_within_one_batch_count_once(self, store: Store, settings):
        one = f.incoming(settings)
        result = store.write([one, one, f.incoming(settings)])
        assert len(result.stored) == 2 and result.duplicates == 1

    def test_a_known_id_with_other_content_is_a_conflict(self, store: Store, settings):
        original = f.incoming(settings, event_id="evt-same", record_count=1)
        store.write([original])
        tampered = f.incoming(settings, event_id="evt-same", record_count=9999)
        result = store.write([tampered])
        assert result.stored == [] and result.duplicates == 1
        assert result.conflicts == ["evt-same"]
        same = store.write([original])
        assert same.conflicts == []

    def test_dead_letters_are_kept_once_with_their_bytes(self, store: Store):
        raw = b"\xff\xfe not utf-8"
        assert store.write([], [_deadletter("line 3", raw)]).dead_letters_stored == 1
        assert store.write([], [_deadletter("line 3", raw)]).dead_letters_stored == 0
        [letter] = store.dead_letters()
        assert letter.raw == raw and letter.position == "line 3" and letter.source == "file:/logs/a.jsonl"
        assert store.stats().dead_letters == 1

    def test_events_after_a_position_come_back_in_store_order(self, store: Store, settings):
        first = store.write([f.incoming(settings) for _ in range(3)])
        second = store.write([f.incoming(settings) for _ in range(4)])
        replayed = [i.event.event_id for batch in store.events_after(first.last_seq, batch=2) for i in batch]
        assert replayed == [i.event.event_id for i in second.stored]
        assert list(store.events_after(second.last_seq)) == []

    def test_the_kept_history_starts_at_the_oldest_event_and_no_purge_deleted_any(self, store: Store, settings):
        assert store.kept_history(f.at(days=9)) == KeptHistory(None, None, None)
        store.write([f.incoming(settings, at=f.at(hours=h)) for h in (5, 2, 7)])
        assert store.kept_history(f.at(days=9)) == KeptHistory(f.at(hours=2), None, None)

    def test_checkpoints_round_trip(self, store: Store):
        assert store.load_checkpoint("detectors") is None
        store.save_checkpoint("detectors", 42, b'{"state": 1}')
        store.save_checkpoint("detectors", 43, b'{"state": 2}')
        checkpoint = store.load_checkpoint("detectors")
        assert checkpoint is not None and checkpoint.seq == 43 and checkpoint.state == b'{"state": 2}'

    # -- auditor queries ----------------------------------------------------------------
    @pytest.fixture
    def corpus(self, store: Store, settings):
        events = [
            f.incoming(settings, at=f.at(hours=0), actor={"id": "emp-a"}, customer_ids=["c-1", "c-2"]),
            f.incoming(
                settings, at=f.at(hours=1), actor={"id": "emp-b"}, customer_ids=["c-2"], fields=["passport_number"]
            ),
            f.incoming(
                settings,
                at=f.at(hours=2),
                actor={"id": "emp-a"},
                action="export",
                record_count=500,
                resource={"system": "dw", "type": "table", "id": "contacts"},
                customer_ids=["c-3"],
            ),
            f.incoming(
                settings,
                at=f.at(hours=3),
                actor={"id": "emp-c"},
                outcome="denied",
                fields=["bank_account"],
                customer_ids=["c-1"],
            ),
            f.incoming(settings, at=f.at(days=2), actor={"id": "emp-a"}, customer_ids=["c-10"]),
        ]
        store.write(events)
        return events

    @staticmethod
    def _ids(page) -> list[str]:
        return [item.event.event_id for item in page.items]

    def test_events_by_actor_newest_first(self, store: Store, corpus):
        page = store.query_events(EventQuery(actor_id="emp-a"))
        assert self._ids(page) == [corpus[4].event.event_id, corpus[2].event.event_id, corpus[0].event.event_id]

    def test_events_by_customer_are_exact(self, store: Store, corpus):
        page = store.query_events(EventQuery(customer_id="c-1", newest_first=False))
        assert self._ids(page) == [corpus[0].event.event_id, corpus[3].event.event_id]
        assert self._ids(store.query_events(EventQuery(customer_id="c-"))) == []  # no prefix matching

    def test_events_by_data_class(self, store: Store, corpus):
        page = store.query_events(EventQuery(data_class="government_id"))
        assert self._ids(page) == [corpus[1].event.event_id]
        assert page.items[0].classes == ["government_id"]
        financial = store.query_events(EventQuery(data_class="financial"))
        assert self._ids(financial) == [corpus[3].event.event_id]

    def test_events_by_resource_action_outcome_and_time(self, store: Store, corpus):
        assert self._ids(store.query_events(EventQuery(resource="dw/table"))) == [corpus[2].event.event_id]
        assert self._ids(store.query_events(EventQuery(action=Action.EXPORT))) == [corpus[2].event.event_id]
        assert self._ids(store.query_events(EventQuery(outcome=Outcome.DENIED))) == [corpus[3].event.event_id]
        window = store.query_events(EventQuery(since=f.at(hours=1), until=f.at(hours=3), newest_first=False))
        assert self._ids(window) == [corpus[1].event.event_id, corpus[2].event.event_id]

    def test_filters_combine(self, store: Store, corpus):
        page = store.query_events(EventQuery(customer_id="c-1", actor_id="emp-c"))
        assert self._ids(page) == [corpus[3].event.event_id]
        page = store.query_events(EventQuery(customer_id="c-2", data_class="government_id"))
        assert self._ids(page) == [corpus[1].event.event_id]
        # a class is matched whole, "_" included (no LIKE wildcard)
        assert self._ids(store.query_events(EventQuery(customer_id="c-2", data_class="government_i_"))) == []

    def test_events_by_field_are_exact_whatever_the_class(self, store: Store, settings, corpus):
        tier = f.incoming(settings, at=f.at(hours=4), actor={"id": "emp-d"}, fields=["membership_tier", "name"])
        store.write([tier])
        passport = [corpus[1].event.event_id]
        assert self._ids(store.query_events(EventQuery(field="passport_number"))) == passport
        assert self._ids(store.query_events(EventQuery(field="passport_number", data_class="government_id"))) == (
            passport
        )
        assert self._ids(store.query_events(EventQuery(field="passport_number", data_class="identity"))) == []
        for near_miss in ("passport", "Passport_Number", "passport_number "):  # whole names, case and all
            assert self._ids(store.query_events(EventQuery(field=near_miss))) == []
        # a field no class names: found by name, and under the class "unclassified"
        assert self._ids(store.query_events(EventQuery(field="membership_tier"))) == [tier.event.event_id]
        unclassified = store.query_events(EventQuery(field="membership_tier", data_class="unclassified"))
        assert self._ids(unclassified) == [tier.event.event_id]
        named = store.query_events(EventQuery(field="name", actor_id="emp-a", newest_first=False))
        assert self._ids(named) == [corpus[0].event.event_id, corpus[2].event.event_id, corpus[4].event.event_id]
        with_customer = store.query_events(EventQuery(field="bank_account", customer_id="c-1"))
        assert self._ids(with_customer) == [corpus[3].event.event_id]

    @staticmethod
    def _write_line(store: Store, settings, raw: bytes) -> AccessEvent:
        """Store one line as ingest would (the model's reading of it, the line kept as it came); its event."""
        parsed = AccessEvent.model_validate_json(raw)
        classes = Classifier(settings.classification).touch(parsed.fields).classes
        store.write([IncomingEvent(from_model(parsed), raw, classes)])
        return parsed

    def test_a_field_is_read_from_the_body_as_ingest_read_it(self, store: Store, settings):
        # JSON readers keep the last of a repeated key: the event stored lists "name", not "passport_number"
        data = f.event_dict(fields=["name"])
        raw = orjson.dumps(data).replace(b'"fields":', b'"fields":["passport_number"],"fields":', 1)
        assert self._write_line(store, settings, raw).fields == ["name"]
        assert self._ids(store.query_events(EventQuery(field="passport_number"))) == []
        assert self._ids(store.query_events(EventQuery(field="name"))) == [data["event_id"]]
        # a name written with a JSON escape is the same name
        escaped = f.event_dict(fields=["passport_number"])
        raw = orjson.dumps(escaped).replace(b"passport_number", b"passport\\u005fnumber", 1)
        assert self._write_line(store, settings, raw).fields == ["passport_number"]
        assert self._ids(store.query_events(EventQuery(field="passport_number"))) == [escaped["event_id"]]

    def test_an_event_is_found_by_its_id(self, store: Store, settings, corpus):
        wanted = corpus[2].event.event_id
        assert self._ids(store.query_events(EventQuery(event_id=wanted))) == [wanted]
        assert self._ids(store.query_events(EventQuery(event_id=wanted, actor_id="emp-a", customer_id="c-3"))) == [
            wanted
        ]
        assert self._ids(store.query_events(EventQuery(event_id=wanted, actor_id="emp-b"))) == []
        assert self._ids(store.query_events(EventQuery(event_id=wanted, customer_id="c-1"))) == []
        assert self._ids(store.query_events(EventQuery(event_id=wanted, data_class="government_id"))) == []
        assert self._ids(store.query_events(EventQuery(event_id=wanted.upper()))) == []  # ids are exact
        assert self._ids(store.query_events(EventQuery(event_id="evt-nowhere"))) == []
        cased = f.incoming(settings, event_id=wanted.upper())
        store.write([cased])
        assert self._ids(store.query_events(EventQuery(event_id=wanted.upper()))) == [wanted.upper()]

    def test_paging_returns_every_event_once(self, store: Store, settings):
        # several events share a timestamp: the cursor must break ties
        batch = [f.incoming(settings, at=f.at(hours=h // 3)) for h in range(23)]
        store.write(batch)
        seen, cursor = [], None
        while True:
            page = store.query_events(EventQuery(limit=5, cursor=cursor))
            seen.extend(self._ids(page))
            cursor = page.next_cursor
            if cursor is None:
                break
        assert sorted(seen) == sorted(i.event.event_id for i in batch)
        assert len(seen) == len(set(seen))

    def test_events_are_counted_as_the_pages_find_them(self, store: Store, corpus):
        # the audit search says how many events match: the same filters as its pages, counted to a bound
        queries = [
            EventQuery(),
            EventQuery(actor_id="emp-a"),
            EventQuery(customer_id="c-1"),
            EventQuery(data_class="government_id"),
            EventQuery(data_class="identity", since=f.at(hours=1)),
            EventQuery(field="name", actor_id="emp-a"),
            EventQuery(outcome=Outcome.DENIED),
            EventQuery(since=f.at(hours=1), until=f.at(hours=3)),
            EventQuery(event_id=corpus[2].event.event_id),
            EventQuery(actor_id="nobody"),
        ]
        for query in queries:
            found = len(store.query_events(query.model_copy(update={"limit": 100})).items)
            assert store.count_events(query, at_most=100) == EventTotal(found), query
            if found:  # one fewer allowed: more than that many, counting stopped there
                assert store.count_events(query, at_most=found - 1) == EventTotal(found - 1, more=True), query
        assert found == 0
        cursor = store.query_events(EventQuery(actor_id="emp-a", limit=1)).next_cursor
        assert store.count_events(EventQuery(actor_id="emp-a", cursor=cursor), at_most=100) == EventTotal(3)

    def test_a_searchs_events_are_summed_up_by_reader(self, store: Store, settings):
        # "who read the passport numbers, and why": per actor, the events the search's own filter matches
        clerk = {"id": "emp-a", "kind": "employee", "role": "customer_service", "department": "support"}
        courier = {"id": "ptn-1", "kind": "partner", "role": "courier", "organization": "FastDelivery Ltd"}

        def read(hours: float, actor: dict, records: int, purpose: str | None, fields=("passport_number",)):
            return f.incoming(
                settings, at=f.at(hours=hours), actor=actor, record_count=records, purpose=purpose, fields=list(fields)
            )

        store.write(
            [
                read(1, clerk, 10, "KYC check"),
                read(2, clerk, 20, "KYC check"),
                read(3, {**clerk, "role": "fraud_analyst"}, 5, None),  # their newest event names them
                read(4, clerk, 7, "address change"),
                read(5, courier, 100, "parcel handover"),
                read(6, {"id": "emp-b", "kind": "employee"}, 1, "audit"),
                read(7, {"id": "emp-b", "kind": "employee"}, 1_000, "audit", fields=["name"]),  # no passport read
                read(8, {"id": "emp-c", "kind": "employee"}, 1, None, fields=["passport_number"]),
            ]
        )
        summary = store.readers(EventQuery(field="passport_number"), top=2, at_most=100, top_purposes=1)
        assert (summary.events, summary.complete, summary.more_readers) == (7, True, 2)
        courier_read, clerk_read = summary.readers
        assert (courier_read.actor.id, courier_read.actor.organization, courier_read.records) == (
            "ptn-1",
            "FastDelivery Ltd",
            100,
        )
        assert (clerk_read.actor.id, clerk_read.events, clerk_read.records) == ("emp-a", 4, 42)
        assert clerk_read.actor.role == "customer_service"  # the newest event's
        assert clerk_read.purposes == (("KYC check", 2),)  # the most stated, counted in events
        assert (clerk_read.distinct_purposes, clerk_read.no_purpose) == (2, 1)
        assert (clerk_read.first, clerk_read.last) == (f.at(hours=1), f.at(hours=4))
        # ties on records: the more events, then the id; the filter is the search's (dates too)
        rest = store.readers(EventQuery(field="passport_number", since=f.at(hours=5)), top=50, at_most=100)
        assert [(r.actor.id, r.records) for r in rest.readers] == [("ptn-1", 100), ("emp-b", 1), ("emp-c", 1)]
        assert rest.readers[2].no_purpose == 1 and rest.readers[2].purposes == ()
        # bounded: the newest events only, and said so
        newest = store.readers(EventQuery(field="passport_number"), top=50, at_most=3)
        assert (newest.events, newest.complete) == (3, False)
        assert [r.actor.id for r in newest.readers] == ["ptn-1", "emp-b", "emp-c"]
        # led by the field's class, as the search narrows it: the same answer
        by_class = EventQuery(field="passport_number", data_class="government_id")
        assert store.readers(by_class, top=2, at_most=100, top_purposes=1) == summary
        assert store.readers(by_class, top=50, at_most=3) == newest
        assert store.readers(EventQuery(actor_id="nobody"), top=50, at_most=100).readers == []

    def test_active_actor_days(self, store: Store, corpus):
        # emp-a on two days, emp-b and emp-c on one
        assert store.active_actor_days(ZoneInfo("Asia/Shanghai")) == 4

    def test_active_actor_days_follow_the_zones_calendar(self, store: Store, settings):
        # Berlin put its clocks forward on 29 March 2026. Each actor works 23:30 to 00:30 local, across midnight:
        # two days each. A fixed winter offset would put emp-summer's hour on one day, a summer one emp-winter's.
        def working(actor: str, day: int, first_utc_hour: int) -> list:
            moments = [datetime(2026, 3, day, first_utc_hour + h, 30, tzinfo=UTC) for h in (0, 1)]
            return [f.incoming(settings, at=moment, actor={"id": actor}) for moment in moments]

        store.write(working("emp-winter", 1, 22) + working("emp-summer", 29, 21))
        assert store.active_actor_days(ZoneInfo("Europe/Berlin")) == 4
        assert store.active_actor_days(ZoneInfo("UTC")) == 2  # 22:30 and 23:30, 21:30 and 22:30: one day each

    # -- alerts and incidents ---------------------------------------------------------------
    def test_alerts_upsert_and_keep_a_persons_status(self, store: Store):
        alert = f.alert()
        store.upsert_alerts([alert])
        store.set_alert_status(alert.alert_id, AlertStatus.ACKNOWLEDGED)
        grown = alert.model_copy(update={"window_end": alert.window_end + timedelta(hours=1), "revision": 2})
        store.upsert_alerts([grown])
        stored = store.get_alert(alert.alert_id)
        assert stored is not None and stored.revision == 2 and stored.status is AlertStatus.ACKNOWLEDGED
        assert stored.window_end == grown.window_end
        assert store.stats().alerts == 1

    def test_an_older_revision_written_again_does_not_replace_a_newer_one(self, store: Store):
        # after a restart, the detectors judge again what the last checkpoint did not cover: the
        # revisions they raise on the way were stored before, and the newest must stay
        alert = f.alert(revision=3, window_end=f.at(hours=3))
        incident = _incident(alert_ids=[alert.alert_id], revision=3, risk_score=80.0)
        store.upsert_alerts([alert], [incident])
        older = alert.model_copy(update={"revision": 2, "window_end": f.at(hours=2)})
        store.upsert_alerts([older], [incident.model_copy(update={"revision": 2, "risk_score": 60.0})])
        stored = store.get_alert(alert.alert_id)
        assert stored is not None and (stored.revision, stored.window_end) == (3, alert.window_end)
        (again,) = [i for i in store.query_incidents(IncidentQuery()) if i.incident_id == incident.incident_id]
        assert (again.revision, again.risk_score) == (3, 80.0)

    def test_alerts_come_oldest_first_and_filter_by_severity(self, store: Store):
        late = f.alert(window_start=f.at(hours=5), window_end=f.at(hours=6), severity=Severity.LOW)
        early = f.alert(window_start=f.at(hours=1), window_end=f.at(hours=2), severity=Severity.CRITICAL)
        store.upsert_alerts([late, early])
        assert [a.alert_id for a in store.query_alerts(AlertQuery())] == [early.alert_id, late.alert_id]
        assert [a.alert_id for a in store.query_alerts(AlertQuery(min_severity=Severity.MEDIUM))] == [early.alert_id]
        assert store.get_alerts([late.alert_id, early.alert_id])[0].alert_id == early.alert_id

    def test_an_alert_grown_to_an_earlier_start_is_listed_by_its_new_start(self, store: Store):
        # an hour's finding merged into its day's window starts earlier in its next revision: "oldest first"
        # (the contract's order for ``alerts``) and a search by time must see the start it has now
        grown = f.alert(window_start=f.at(hours=4), window_end=f.at(hours=5))
        other = f.alert(window_start=f.at(hours=2), window_end=f.at(hours=3))
        store.upsert_alerts([grown, other])
        earlier = grown.model_copy(update={"window_start": f.at(hours=1), "revision": 2})
        store.upsert_alerts([earlier])
        assert [a.alert_id for a in store.query_alerts(AlertQuery())] == [grown.alert_id, other.alert_id]
        assert [a.alert_id for a in store.query_alerts(AlertQuery(until=f.at(hours=2)))] == [grown.alert_id]

    def test_incidents_queue_order_and_filters(self, store: Store):
        low = _incident(incident_id="inc-low", severity=Severity.LOW, actor_id="emp-x")
        high = _incident(incident_id="inc-high", severity=Severity.HIGH, window_start=f.at(hours=-5))
        partner = _incident(
            incident_id="inc-ptn",
            severity=Severity.CRITICAL,
            actor_id="ptn-1",
            actor_kind="partner",
            actor_organization="blue-sky",
            detectors=["new_access"],
        )
        store.upsert_alerts([], [low, high, partner])
        queue = store.query_incidents(IncidentQuery())
        assert [i.incident_id for i in queue] == ["inc-ptn", "inc-high", "inc-low"]
        assert [i.incident_id for i in store.query_incidents(IncidentQuery(organization="blue-sky"))] == ["inc-ptn"]
        assert [i.incident_id for i in store.query_incidents(IncidentQuery(detector="new_access"))] == ["inc-ptn"]
        assert [i.incident_id for i in store.query_incidents(IncidentQuery(min_severity=Severity.HIGH))] == [
            "inc-ptn",
            "inc-high",
        ]
        assert store.latest_incident("emp-x").incident_id == "inc-low"

    def test_the_queue_s_newest_is_the_newest_flagged_activity_not_the_window_s_start(self, store: Store):
        # a day's finding widened one incident's window to the whole day (00:00), though it was flagged at 16:00;
        # the other was flagged at 09:00, in a window of that hour.  One stored before the flagged activity was
        # kept (``flagged_end`` None) and one of another severity: by its window's end, and severity first
        day = _incident(incident_id="inc-day", window_start=f.T0, window_end=f.at(hours=24), flagged_end=f.at(hours=17))
        morning = _incident(
            incident_id="inc-morning", window_start=f.at(hours=9), window_end=f.at(hours=10), flagged_end=f.at(hours=10)
        )
        unknown = _incident(incident_id="inc-unknown", window_start=f.at(hours=12), window_end=f.at(hours=13))
        low = _incident(
            incident_id="inc-low",
            severity=Severity.LOW,
            window_start=f.at(hours=20),
            window_end=f.at(hours=21),
            flagged_end=f.at(hours=21),
        )
        store.upsert_alerts([], [morning, low, unknown, day])
        newest = ["inc-day", "inc-unknown", "inc-morning"]
        assert [i.incident_id for i in store.query_incidents(IncidentQuery())] == [*newest, "inc-low"]
        assert [i.incident_id for i in store.query_incidents(IncidentQuery(order="newest"))] == [
            "inc-low",
            *newest,
        ]
        assert [i.incident_id for i in store.query_incidents(IncidentQuery(order="oldest"))] == [
            *reversed(newest),
            "inc-low",
        ]
        assert store.query_incidents(IncidentQuery(limit=1, offset=1))[0].incident_id == "inc-unknown"  # paged so

    def test_latest_incidents_answers_as_latest_incident_does_for_each_actor(self, store: Store):
        incidents = [
            _incident(incident_id="inc-a1", actor_id="emp-a", window_start=f.at(hours=1), window_end=f.at(hours=2)),
            _incident(incident_id="inc-a2", actor_id="emp-a", window_start=f.at(hours=8), window_end=f.at(hours=9)),
            _incident(incident_id="inc-b1", actor_id="emp-b", window_start=f.at(hours=3), window_end=f.at(hours=4)),
        ]
        store.upsert_alerts([], incidents)
        asked = ["emp-b", "emp-none", "emp-a", "emp-b"]
        found = store.latest_incidents(asked)
        assert {actor: found[actor].incident_id for actor in found} == {"emp-a": "inc-a2", "emp-b": "inc-b1"}
        for actor in asked:
            single = store.latest_incident(actor)
            assert (found[actor] if actor in found else None) == single
        assert store.latest_incidents([]) == {}

    def test_triage_actions_are_logged_and_change_the_status(self, store: Store):
        alert = f.alert(incident_id="inc-1")
        store.upsert_alerts([alert], [_incident(alert_ids=[alert.alert_id])])
        now = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)
        store.record_action(
            TriageAction(incident_id="inc-1", kind=TriageActionKind.ASSIGN, by="ana", at=now, assignee="li")
        )
        updated = store.record_action(
            TriageAction(incident_id="inc-1", kind=TriageActionKind.ACKNOWLEDGE, by="ana", at=now, note="looking")
        )
        assert updated.status is AlertStatus.ACKNOWLEDGED and updated.assignee == "li"
        assert store.get_alert(alert.alert_id).status is AlertStatus.ACKNOWLEDGED
        assert [a.kind for a in store.actions("inc-1")] == [TriageActionKind.ASSIGN, TriageActionKind.ACKNOWLEDGE]
        # a detector growing the incident later does not undo the person's triage
        store.upsert_alerts([alert], [_incident(alert_ids=[alert.alert_id], revision=2)])
        assert store.get_incident("inc-1").status is AlertStatus.ACKNOWLEDGED
        with pytest.raises(KeyError):
            store.record_action(TriageAction(incident_id="inc-none", kind=TriageActionKind.NOTE, by="ana", at=now))

    def test_a_closed_incident_refuses_what_only_an_open_one_takes(self, store: Store):
        # the store checks the transition on the status it holds, so a stale screen cannot reopen by acknowledging
        alert = f.alert(incident_id="inc-1")
        store.upsert_alerts([alert], [_incident(alert_ids=[alert.alert_id])])
        now = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)
        store.record_action(TriageAction(incident_id="inc-1", kind=TriageActionKind.RESOLVE, by="ana", at=now))
        with pytest.raises(TransitionRefused, match="reopen it before you acknowledge it"):
            store.record_action(TriageAction(incident_id="inc-1", kind=TriageActionKind.ACKNOWLEDGE, by="li", at=now))
        assert store.get_incident("inc-1").status is AlertStatus.RESOLVED
        assert [a.kind for a in store.actions("inc-1")] == [TriageActionKind.RESOLVE]

    def test_an_alert_keeps_the_persons_triage_in_its_incident_and_takes_a_new_incidents_status(self, store: Store):
        # the pipeline moves an alert that grew after its incident was closed to a new incident, open in it
        kept, moved = f.alert(incident_id="inc-1"), f.alert(incident_id="inc-1")
        store.upsert_alerts([kept, moved], [_incident(alert_ids=[kept.alert_id, moved.alert_id])])
        now = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)
        store.record_action(TriageAction(incident_id="inc-1", kind=TriageActionKind.RESOLVE, by="ana", at=now))
        grown = {"revision": 2, "status": AlertStatus.OPEN}
        store.upsert_alerts(
            [kept.model_copy(update=grown), moved.model_copy(update={**grown, "incident_id": "inc-2"})],
            [_incident(incident_id="inc-2", alert_ids=[moved.alert_id])],
        )
        assert store.get_alert(kept.alert_id).status is AlertStatus.RESOLVED
        assert store.get_alert(moved.alert_id).status is AlertStatus.OPEN
        assert store.get_alert(moved.alert_id).incident_id == "inc-2"

    def test_an_action_on_a_closed_incident_leaves_the_alert_that_moved_to_its_follow_up(self, store: Store):
        # the closed case still lists the alert that grew out of it; the open follow-up holds it now
        kept, moved = f.alert(incident_id="inc-1"), f.alert(incident_id="inc-1")
        store.upsert_alerts([kept, moved], [_incident(alert_ids=[kept.alert_id, moved.alert_id])])
        now = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)
        store.record_action(TriageAction(incident_id="inc-1", kind=TriageActionKind.RESOLVE, by="ana", at=now))
        store.upsert_alerts(
            [moved.model_copy(update={"revision": 2, "status": AlertStatus.OPEN, "incident_id": "inc-2"})],
            [_incident(incident_id="inc-2", alert_ids=[moved.alert_id])],
        )
        store.record_action(
            TriageAction(incident_id="inc-1", kind=TriageActionKind.FALSE_POSITIVE, by="li", at=now, note="a test")
        )
        assert store.get_alert(kept.alert_id).status is AlertStatus.FALSE_POSITIVE
        assert store.get_alert(moved.alert_id).status is AlertStatus.OPEN
        store.record_action(TriageAction(incident_id="inc-2", kind=TriageActionKind.ACKNOWLEDGE, by="li", at=now))
        assert store.get_alert(moved.alert_id).status is AlertStatus.ACKNOWLEDGED
        assert store.get_alert(kept.alert_id).status is AlertStatus.FALSE_POSITIVE

    # == dashboard section (issue 6): aggregations and the audit of auditors =====================
    @pytest.fixture
    def office(self, store: Store, settings):
        """Three sales employees (emp-a, emp-b, emp-c) and one partner, over two hours and a next day."""
        sales = {"kind": "employee", "role": "sales", "department": "sales"}
        events = [
            f.incoming(
                settings,
                at=f.at(hours=0) + timedelta(minutes=5),
                actor={"id": "emp-a", **sales},
                record_count=10,
                fields=["name", "passport_number"],
            ),
            f.incoming(
                settings,
                at=f.at(hours=0) + timedelta(minutes=40),
                actor={"id": "emp-a", **sales},
                record_count=500,
                action="export",
                fields=["phone"],
                resource={"system": "dw", "type": "table", "id": "contacts"},
            ),
            f.incoming(
                settings, at=f.at(hours=0) + timedelta(minutes=10), actor={"id": "emp-b", **sales}, record_count=4
            ),
            f.incoming(
                settings,
                at=f.at(hours=0) + timedelta(minutes=20),
                actor={"id": "emp-c", **sales},
                record_count=8,
                outcome="denied",
            ),
            f.incoming(settings, at=f.at(hours=1), actor={"id": "emp-b", **sales}, record_count=6),
            f.incoming(
                settings,
                at=f.at(hours=1),
                actor={"id": "ptn-1", "kind": "partner", "role": "agency", "organization": "blue-sky"},
                record_count=3,
            ),
            f.incoming(settings, at=f.at(days=1), actor={"id": "emp-a", **sales}, record_count=1),
        ]
        store.write(events)
        return events

    def test_activity_per_hour_for_an_actor_and_for_everyone(self, store: Store, office):
        hours = store.activity(f.at(hours=0), f.at(days=2), actor_id="emp-a")
        assert [(h.hour, h.events, h.records, h.egress_records) for h in hours] == [
            (f.at(hours=0), 2, 510, 500),
            (f.at(days=1), 1, 1, 0),
        ]
        everyone = store.activity(f.at(hours=0), f.at(hours=2))
        assert [(h.hour, h.events, h.records, h.denied) for h in everyone] == [
            (f.at(hours=0), 4, 514, 1),  # emp-c's refused 8 records are not read: its event is counted, as denied
            (f.at(hours=1), 2, 9, 0),
        ]
        assert store.activity(f.at(hours=1), f.at(hours=2), actor_id="emp-a") == []

    def test_activity_counts_later_events_once(self, store: Store, settings, office):
        store.activity(f.at(hours=0), f.at(hours=1))  # figures computed once ...
        store.write([f.incoming(settings, at=f.at(hours=0), actor={"id": "emp-b"}, record_count=100)])
        store.write(office[:2])  # ... replayed events are not new
        [hour] = store.activity(f.at(hours=0), f.at(hours=1))
        assert (hour.events, hour.records) == (5, 614)
        [hour] = store.activity(f.at(hours=0), f.at(hours=1))
        assert (hour.events, hour.records) == (5, 614)

    def test_exact_activity_is_the_actor_s_activity_once_caught_up(self, store: Store, office):
        # an adapter without roll-ups is never behind; SQLite's, folded, answers as ``activity`` does
        progress = store.fold_progress()
        assert progress is None or progress.unfolded == 0
        for actor in ("emp-a", "emp-c", "nobody"):
            expected = store.activity(f.at(hours=0), f.at(days=2), actor_id=actor)
            assert store.exact_activity(actor, f.at(hours=0), f.at(days=2), at_most=10) == expected

    def test_peer_activity_leaves_the_actor_out(self, store: Store, office):
        peers = store.peer_activity("emp-a", f.at(hours=0), f.at(hours=2))
        assert peers.peers == 2  # emp-b and emp-c; the partner is no peer
        assert [(p.hour, p.active_peers, p.records, p.median_records) for p in peers.hours] == [
            (f.at(hours=0), 2, 4, 2.0),  # emp-c was refused its 8 records: active, and read none
            (f.at(hours=1), 1, 6, 6.0),
        ]
        assert store.peer_activity("nobody", f.at(hours=0), f.at(hours=2)).peers == 0

    def test_actor_profile_says_who_and_what_was_touched(self, store: Store, office):
        profile = store.actor_profile("emp-a", f.at(hours=0), f.at(days=2))
        assert profile is not None
        assert (profile.kind, profile.role, profile.department) == ("employee", "sales", "sales")
        assert profile.first_seen == office[0].event.timestamp and profile.last_seen == f.at(days=1)
        assert [(u.name, u.events, u.records) for u in profile.resources] == [
            ("dw/table", 1, 500),
            ("crm/customer_record", 2, 11),
        ]
        assert [(u.name, u.records) for u in profile.actions] == [("export", 500), ("read", 11)]
        classes = {u.name: u.records for u in profile.data_classes}
        assert classes == {"contact": 501, "government_id": 10, "identity": 11}
        first_day = store.actor_profile("emp-a", f.at(hours=0), f.at(hours=2))
        assert sum(u.records for u in first_day.actions) == 510  # only the asked span's days
        assert store.actor_profile("nobody", f.at(hours=0), f.at(days=2)) is None

    def test_class_days_are_local_days(self, store: Store, office):
        # T0 is 09:00 in UTC+8: all of the first day's reads fall on 2 Nov there
        days = store.class_days(f.at(hours=0), f.at(days=2), ZoneInfo("Asia/Shanghai"))
        government = [(d.day.isoformat(), d.records) for d in days if d.data_class == "government_id"]
        assert government == [("2026-11-02", 10)]
        identity = [(d.day.isoformat(), d.records) for d in days if d.data_class == "identity"]
        assert identity == [("2026-11-02", 23), ("2026-11-03", 1)]  # emp-c's refused 8 not among them

    def test_the_records_read_are_the_served_accesses_as_the_detectors_count_them(self, store: Store, settings):
        # a refused or failed access asked for its records and was served none: counted as an event (a refusal as
        # denied), never as records read or exported, in every figure the dashboard and the report draw
        crew = {"kind": "employee", "role": "sales", "department": "sales"}
        a, b = {"id": "emp-a", **crew}, {"id": "emp-b", **crew}
        passports = {"fields": ["passport_number"]}
        store.write(
            [
                f.incoming(settings, at=f.at(hours=0.1), actor=a, record_count=10, **passports),
                f.incoming(
                    settings,
                    at=f.at(hours=0.2),
                    actor=a,
                    action="export",
                    outcome="denied",
                    record_count=500,
                    **passports,
                ),
                f.incoming(
                    settings,
                    at=f.at(hours=0.3),
                    actor=a,
                    action="export",
                    outcome="error",
                    record_count=70,
                    **passports,
                ),
                f.incoming(settings, at=f.at(hours=0.4), actor=b, outcome="error", record_count=9, **passports),
                f.incoming(settings, at=f.at(hours=0.5), actor=b, action="export", record_count=4, **passports),
            ]
        )
        span = (f.at(hours=0), f.at(hours=1))
        [everyone] = store.activity(*span)
        assert (everyone.events, everyone.records, everyone.egress_records, everyone.denied) == (5, 14, 4, 1)
        [mine] = store.activity(*span, actor_id="emp-a")
        assert (mine.events, mine.records, mine.egress_records, mine.denied) == (3, 10, 0, 1)
        assert store.exact_activity("emp-a", *span, at_most=10) == [mine]
        [peers] = store.peer_activity("emp-a", *span).hours
        assert (peers.records, peers.median_records) == (4, 4.0)
        profile = store.actor_profile("emp-a", *span)
        assert profile is not None
        assert {(u.name, u.events, u.records) for u in profile.actions} == {("read", 1, 10), ("export", 2, 0)}
        assert [(u.name, u.events, u.records) for u in profile.data_classes] == [("government_id", 3, 10)]
        zone = ZoneInfo("Asia/Shanghai")
        by_kind = store.class_days(*span, zone, by_kind=True)
        assert [(d.data_class, d.events, d.records) for d in by_kind] == [("government_id", 5, 14)]

    def test_class_days_follow_the_zones_calendar(self, store: Store, settings):
        # 22:30 UTC is 23:30 in Berlin on 1 March (winter) and 00:30 the next day on 29 March (summer)
        store.write(
            [
                f.incoming(settings, at=datetime(2026, 3, day, 22, 30, tzinfo=UTC), fields=["passport_number"])
                for day in (1, 29)
            ]
        )
        days = store.class_days(
            datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC), ZoneInfo("Europe/Berlin")
        )
        assert [d.day.isoformat() for d in days if d.data_class == "government_id"] == ["2026-03-01", "2026-03-30"]

    def test_class_days_split_by_actor_kind(self, store: Store, settings):
        # passports read by an employee, a partner's agent (twice: one local day) and a service account; an event
        # of two classes counts in each
        partner = {"id": "ptn-1", "kind": "partner", "organization": "blue-sky"}
        store.write(
            [
                f.incoming(settings, at=f.at(hours=1), fields=["passport_number"], record_count=5),
                f.incoming(settings, at=f.at(hours=2), actor=partner, fields=["passport_number"], record_count=40),
                f.incoming(
                    settings, at=f.at(hours=5), actor=partner, fields=["passport_number", "name"], record_count=2
                ),
                f.incoming(
                    settings, at=f.at(hours=3), actor={"id": "svc-1", "kind": "service"}, fields=["passport_number"]
                ),
            ]
        )
        zone = ZoneInfo("Asia/Shanghai")
        by_kind = store.class_days(f.at(hours=0), f.at(days=1), zone, by_kind=True)
        government = {d.actor_kind: d.records for d in by_kind if d.data_class == "government_id"}
        assert government == {"employee": 5, "partner": 42, "service": 1}
        assert {(d.actor_kind, d.records) for d in by_kind if d.data_class == "identity"} == {("partner", 2)}
        together = [(d.actor_kind, d.records) for d in store.class_days(f.at(hours=0), f.at(days=1), zone)]
        assert sorted(together) == [(None, 2), (None, 48)]

    def test_incident_counts_follow_the_queue_filters(self, store: Store):
        store.upsert_alerts(
            [],
            [
                _incident(incident_id="i1", severity=Severity.HIGH),
                _incident(
                    incident_id="i2",
                    severity=Severity.HIGH,
                    actor_id="ptn-1",
                    actor_kind="partner",
                    actor_organization="blue-sky",
                    detectors=["new_access", "bulk_read"],
                ),
                _incident(incident_id="i3", severity=Severity.LOW, status=AlertStatus.RESOLVED),
            ],
        )
        assert store.incident_counts(IncidentQuery()) == {"high": 2, "low": 1}
        open_only = IncidentQuery(statuses=[AlertStatus.OPEN])
        assert store.incident_counts(open_only) == {"high": 2}
        assert store.incident_counts(IncidentQuery(), by="status") == {"open": 2, "resolved": 1}
        assert store.incident_counts(IncidentQuery(), by="detector") == {"bulk_read": 3, "new_access": 1}
        assert store.incident_counts(IncidentQuery(), by="organization") == {"blue-sky": 1}
        assert store.incident_counts(IncidentQuery(actor_kind="partner"), by="actor_kind") == {"partner": 1}

    def test_alerts_per_day_by_local_day(self, store: Store):
        store.upsert_alerts(
            [
                f.alert(window_start=f.at(hours=-2), window_end=f.at(hours=-1)),  # 07:00 local, 2 Nov
                f.alert(window_start=f.at(hours=15), window_end=f.at(hours=16), severity=Severity.LOW),  # 00:00, 3 Nov
                f.alert(
                    window_start=f.at(hours=16), window_end=f.at(hours=17), actor_kind="partner", detector="new_access"
                ),
                f.alert(window_start=f.at(days=9), window_end=f.at(days=9, hours=1)),  # outside the span
            ]
        )
        counts = store.alerts_per_day(f.at(hours=-12), f.at(days=2), ZoneInfo("Asia/Shanghai"))
        assert [(c.day.isoformat(), c.severity, c.detector, c.actor_kind, c.alerts) for c in counts] == [
            ("2026-11-02", "high", "bulk_read", "employee", 1),
            ("2026-11-03", "low", "bulk_read", "employee", 1),
            ("2026-11-03", "high", "new_access", "partner", 1),
        ]

    def test_alerts_per_day_follow_the_zones_calendar(self, store: Store):
        # windows starting at 22:00 UTC: 23:00 in Berlin on 1 March, midnight of the 30th on 29 March
        starts = [datetime(2026, 3, day, 22, tzinfo=UTC) for day in (1, 29)]
        store.upsert_alerts(
            [
                f.alert(window_start=start, window_end=start + timedelta(hours=1), actor_id=f"emp-{start.day}")
                for start in starts
            ]
        )
        counts = store.alerts_per_day(
            datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC), ZoneInfo("Europe/Berlin")
        )
        assert [(c.day.isoformat(), c.alerts) for c in counts] == [("2026-03-01", 1), ("2026-03-30", 1)]

    def test_triage_summary_and_the_deadline(self, store: Store):
        store.upsert_alerts([], [_incident(incident_id="i1"), _incident(incident_id="i2")])
        raised = store.raised_at("i1")
        assert raised is not None and abs((raised - datetime.now(UTC)).total_seconds()) < 3600
        store.upsert_alerts([], [_incident(incident_id="i1", revision=2)])
        assert store.raised_at("i1") == raised  # growing does not restart the clock
        assert store.raised_at("nothing") is None
        later = raised + timedelta(minutes=30)
        store.record_action(TriageAction(incident_id="i1", kind=TriageActionKind.NOTE, by="ana", at=later))
        store.record_action(
            TriageAction(
                incident_id="i1", kind=TriageActionKind.ACKNOWLEDGE, by="ana", at=later + timedelta(minutes=30)
            )
        )
        span = (raised - timedelta(days=1), raised + timedelta(days=1))
        summary = store.triage_summary(*span, now=raised + timedelta(hours=1), deadline_seconds=48 * 3600)
        assert (summary.incidents, summary.reviewed, summary.open_past_deadline) == (2, 1, 0)
        assert summary.median_seconds_to_acknowledge == pytest.approx(3600, abs=1)
        # two days on, both are still open (acknowledged is not done): past the deadline
        late = store.triage_summary(*span, now=raised + timedelta(hours=49), deadline_seconds=48 * 3600)
        assert late.open_past_deadline == 2 and sorted(late.overdue_incident_ids) == ["i1", "i2"]
        store.record_action(TriageAction(incident_id="i2", kind=TriageActionKind.RESOLVE, by="ana", at=later))
        late = store.triage_summary(*span, now=raised + timedelta(hours=49), deadline_seconds=48 * 3600)
        assert late.overdue_incident_ids == ["i1"] and late.reviewed == 2
        none = store.triage_summary(raised + timedelta(days=1), raised + timedelta(days=2), raised, 3600)
        assert (none.incidents, none.reviewed, none.median_seconds_to_acknowledge) == (0, 0, None)

    def test_health_counts(self, store: Store, office):
        store.write([], [_deadletter("line 9")])
        health = store.health(marks_since=datetime.now(UTC) - timedelta(hours=1))
        assert health.events == len(office) and health.dead_letters == 1
        assert health.newest_event == f.at(days=1)
        assert health.marks and health.marks[-1][1] == len(office)

    def test_data_accesses_are_kept_newest_first(self, store: Store):
        from models.dashboard import DataAccess, DataAccessKind, DataAccessQuery

        now = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)
        first = DataAccess(
            at=now,
            by="audrey",
            role="auditor",
            kind=DataAccessKind.SEARCH,
            reason="DSAR 2026-118",
            what={"customer_id": "c-1"},
            results=3,
        )
        second = DataAccess(
            at=now + timedelta(minutes=1),
            by="audrey",
            role="auditor",
            kind=DataAccessKind.EXPORT,
            reason="DSAR 2026-118",
            what={"customer_id": "c-1"},
            results=3,
        )
        other = DataAccess(
            at=now + timedelta(minutes=2),
            by="li",
            role="admin",
            kind=DataAccessKind.UNMASK,
            reason="case 7",
            incident_id="inc-1",
        )
        for access in (first, second, other):
            store.record_data_access(access)
        assert store.data_accesses(DataAccessQuery()) == [other, second, first]
        assert store.data_accesses(DataAccessQuery(by="audrey", limit=1)) == [second]
        window = DataAccessQuery(since=now + timedelta(minutes=1), until=now + timedelta(minutes=2))
        assert store.data_accesses(window) == [second]

    def test_data_accesses_of_one_customer_are_those_that_showed_them_in_clear_or_searched_for_them(self, store: Store):
        from models.dashboard import DataAccess, DataAccessKind, DataAccessQuery

        now = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)

        def access(minutes: int, by: str, kind: DataAccessKind, **fields) -> DataAccess:
            return DataAccess(
                at=now + timedelta(minutes=minutes), by=by, role="auditor", kind=kind, reason="curious", **fields
            )

        searched = access(0, "audrey", DataAccessKind.SEARCH, what={"customer_id": "c-1"}, results=2)
        seen = access(
            1,
            "audrey",
            DataAccessKind.VIEW,
            what={"view": "incident events", "incident_id": "inc-1"},
            results=6,
            incident_id="inc-1",
            customer_ids=["c-2", "c-1"],
            customers_in_clear=2,
        )
        # its list whole (one cut is asked of its query: the next test)
        exported = access(
            2, "li", DataAccessKind.EXPORT, what={"actor_id": "emp-1"}, customer_ids=["c-1"], customers_in_clear=1
        )
        others = access(3, "li", DataAccessKind.VIEW, customer_ids=["c-10", "c-3"], customers_in_clear=2, results=1)
        unmasked = access(4, "li", DataAccessKind.UNMASK)
        for one in (searched, seen, exported, others, unmasked):
            store.record_data_access(one)
        assert store.data_accesses(DataAccessQuery(customer_id="c-1")) == [exported, seen, searched]
        assert store.data_accesses(DataAccessQuery(customer_id="c-3")) == [others]
        assert store.data_accesses(DataAccessQuery(customer_id="c-")) == []  # an id whole, not a part of one
        assert store.data_accesses(DataAccessQuery(customer_id="c-1", by="li")) == [exported]
        assert store.data_accesses(DataAccessQuery()) == [unmasked, others, exported, seen, searched]

    def test_an_export_whose_list_was_cut_is_asked_of_its_query_for_the_customers_it_does_not_list(
        self, store: Store, settings
    ):
        # an export of a month lists its first thousand customers: one past them asked who saw them was told nobody
        from models.dashboard import DataAccess, DataAccessKind, DataAccessQuery, UnlistedMatch

        emp_x = {"id": "emp-x"}
        store.write(
            [
                f.incoming(settings, at=f.at(hours=0), actor=emp_x, customer_ids=["c-old"]),
                f.incoming(settings, at=f.at(hours=1), actor=emp_x, customer_ids=["c-mid"]),
                f.incoming(settings, at=f.at(hours=2), actor=emp_x, customer_ids=["c-new", "c-listed"]),
                f.incoming(settings, at=f.at(hours=3), actor={"id": "emp-y"}, customer_ids=["c-other"]),
                f.incoming(settings, at=f.at(hours=5), actor=emp_x, customer_ids=["c-late"]),  # after the exports
            ]
        )

        def export(by: str, hours: float, results: int, listed: list[str], in_clear: int, **asked) -> DataAccess:
            return DataAccess(
                at=f.at(hours=hours),
                by=by,
                role="auditor",
                kind=DataAccessKind.EXPORT,
                reason="case 12",
                what={"actor_id": "emp-x", **asked, "customer_ids": "in clear"},
                results=results,
                customer_ids=listed,
                customers_in_clear=in_clear,
            )

        whole = export("whole", 4, 3, ["c-listed"], 4, cap=50_000)  # all 3 events of emp-x, 3 ids not listed
        uncut = export("uncut", 4.25, 3, ["c-listed"], 1, cap=50_000)  # lists all it held: never read again
        # capped at 2: the newest two of emp-x's events before hour 4 (hours 2 and 1), not hour 0's
        capped = export("capped", 4.5, 2, ["c-new"], 3, until=f.at(hours=4).isoformat(), cap=2)
        # it held 5 events of emp-x: retention has deleted 2 since, whose customers nobody can list now
        purged = export("purged", 4.75, 5, ["c-listed"], 9, cap=50_000)
        page = DataAccess(  # a page's ids cut, no query to read again
            at=f.at(hours=6),
            by="page",
            role="auditor",
            kind=DataAccessKind.VIEW,
            reason="curious",
            what={"view": "incident events", "incident_id": "inc-1"},
            results=400,
            customer_ids=["c-listed"],
            customers_in_clear=2000,
        )
        for access in (whole, uncut, capped, purged, page):
            store.record_data_access(access)

        def who_saw(customer: str, limit: int = 100) -> list[tuple[str, UnlistedMatch | None]]:
            return [
                (a.by, a.unlisted_match)
                for a in store.data_accesses(DataAccessQuery(customer_id=customer, limit=limit))
            ]

        found, deleted, possibly = UnlistedMatch.FOUND, UnlistedMatch.POSSIBLY_DELETED, UnlistedMatch.POSSIBLY
        assert who_saw("c-mid") == [("page", possibly), ("purged", found), ("capped", found), ("whole", found)]
        assert who_saw("c-old") == [("page", possibly), ("purged", found), ("whole", found)]  # past the cap
        assert who_saw("c-listed") == [
            ("page", None),
            ("purged", None),
            ("capped", found),
            ("uncut", None),
            ("whole", None),
        ]
        # not in the events kept: in none of those that still hold all theirs, possibly in the one that does not
        for nowhere in ("c-gone", "c-other", "c-late"):  # never read; another actor's; dated after every export
            assert who_saw(nowhere) == [("page", possibly), ("purged", deleted)]
        assert who_saw("c-mid", limit=2) == [("page", possibly), ("purged", found)]
        # the answer says how it was found; the record itself is kept as it was written
        assert store.data_accesses(DataAccessQuery()) == [page, purged, capped, uncut, whole]

    def test_a_breach_reports_customer_list_cut_short_is_asked_of_the_served_events_it_was_made_of(
        self, store: Store, settings
    ):
        # T19: a report's list of 2,847 customers said "possibly" of one it never held, its events all still kept
        from models.dashboard import DataAccess, DataAccessKind, DataAccessQuery, UnlistedMatch
        from store.unlisted import report_list

        emp_r = {"id": "emp-r"}
        store.write(
            [
                f.incoming(settings, at=f.at(hours=0), actor=emp_r, customer_ids=["c-a"]),
                f.incoming(settings, at=f.at(hours=1), actor=emp_r, customer_ids=["c-b"]),
                # refused: nothing was read, so the report never listed its customer
                f.incoming(settings, at=f.at(hours=2), actor=emp_r, customer_ids=["c-refused"], outcome="denied"),
                f.incoming(settings, at=f.at(hours=4), actor=emp_r, customer_ids=["c-after"]),  # past the window
            ]
        )

        def report(by: str, hours: float, events: int, complete: bool = True, kept: bool = True) -> DataAccess:
            made_of = report_list("emp-r", f.at(), f.at(hours=3), events, complete)
            return DataAccess(
                at=f.at(hours=hours),
                by=by,
                role="admin",
                kind=DataAccessKind.CUSTOMER_LIST,
                reason="breach notification",
                what={"incident_id": "inc-r", "customer_ids": "in clear", **(made_of if kept else {})},
                incident_id="inc-r",
                results=2,
                customer_ids=["c-a"],  # its list cut after the first
                customers_in_clear=2,
            )

        made = report("made", 5, events=3)
        purged = report("purged", 5.25, events=5)  # it read 5: retention has deleted 2 since
        bounded = report("bounded", 5.5, events=3, complete=False)  # it stopped at its bound of events
        older = report("older", 5.75, events=3, kept=False)  # recorded before lists kept what they were made of
        for access in (made, purged, bounded, older):
            store.record_data_access(access)

        def who_saw(customer: str) -> list[tuple[str, UnlistedMatch | None]]:
            return [(a.by, a.unlisted_match) for a in store.data_accesses(DataAccessQuery(customer_id=customer))]

        found, deleted, possibly = UnlistedMatch.FOUND, UnlistedMatch.POSSIBLY_DELETED, UnlistedMatch.POSSIBLY
        assert who_saw("c-b") == [("older", possibly), ("bounded", possibly), ("purged", found), ("made", found)]
        for never in ("c-refused", "c-after", "c-nobody"):
            assert who_saw(never) == [("older", possibly), ("bounded", possibly), ("purged", deleted)]
        assert who_saw("c-a") == [("older", None), ("bounded", None), ("purged", None), ("made", None)]  # listed

    # == end of the dashboard section ==========================================================
