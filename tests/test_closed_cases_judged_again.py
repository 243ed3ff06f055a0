"""A closed case's alerts judged again: by a restart from an earlier checkpoint, a replay, or growth past the close.

The story (``tests.detector_harness``): an agent refused passport lookups twice in a day, two alerts of
one incident, after two weeks of everyone's routine work.  The detector checkpoint is saved between the
two bursts, so a restart judges the second burst again from the stored events.  Pages go
to the file receiver, through the store's outbox, as ``accesswatch run`` plans them.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from accesswatch import app
from configs.loader import load_settings
from dashboard.queries import OPEN_STATUSES
from ingest.pipeline import Pipeline
from ingest.sources import RawRecord
from models.alert import Alert, AlertStatus
from models.incident import Incident, TriageAction, TriageActionKind
from models.page import PageKind
from store.base import IncidentQuery
from store.outbox import OutboxQuery
from store.retention import RetentionPolicy
from store.sqlite import SqliteStore
from tests import factories
from tests.detector_harness import PASSPORT_FIELDS, burst, history, local, team
from tests.factories import T0

TEAM = team(5)
SECOND_BURST = local(14, 14)  # the first agent's second burst: the checkpoint is saved just before it
NOW = datetime(2026, 11, 20, 10, tzinfo=UTC)  # when the analyst closes the case (wall clock)


def _story() -> list[bytes]:
    parts = [history(agent, days=14, per_hour=3, records=2) for agent in TEAM]
    parts += [_refused(local(14, 10), 25), _refused(SECOND_BURST, 40), _routine(15)]
    return _lines(parts, "e")


def _routine(hour: int) -> list[dict]:
    """The others' work in that hour of the burst's day: event time moves on, and the hour before is judged."""
    return [access for agent in TEAM[1:] for access in history(agent, days=1, start_day=14, hours=[hour])]


def _lines(parts: list[list[dict]], prefix: str) -> list[bytes]:
    merged = sorted(itertools.chain.from_iterable(parts), key=lambda data: data["timestamp"])
    return [orjson.dumps({**data, "event_id": f"{prefix}{n:07d}"}) for n, data in enumerate(merged)]


def _refused(at: datetime, lookups: int) -> list[dict]:
    return burst(TEAM[0], at, lookups, within=timedelta(minutes=10), outcome="denied", fields=PASSPORT_FIELDS)


def _settings(tmp_path: Path):
    # no checkpoint but the one the test saves: a restart judges everything stored after it again
    overrides = {"ingest.checkpoint_events": 10_000_000, "notify.receivers": ["file"], "notify.min_severity": "low"}
    return load_settings(env={}, overrides={"data_dir": str(tmp_path / "data"), **overrides})


def _pipeline(settings, store: SqliteStore) -> Pipeline:
    """A new process' pipeline, paging as ``run`` does, its detector state recovered from the store."""
    pipeline = app.build_pipeline(settings, store, app.open_pager(settings, store, app.open_receivers(settings)))
    pipeline.recover()
    return pipeline


def _records(lines: list[bytes], first: int = 0) -> list[RawRecord]:
    return [RawRecord(line, "file:story.jsonl", f"line {first + n + 1}", len(line)) for n, line in enumerate(lines)]


def _pages(store: SqliteStore) -> list[tuple[str, str, str]]:
    rows = store.notifications(OutboxQuery(newest_first=False, limit=1000))
    return [(row.incident_id, row.kind.value, row.receiver) for row in rows]


def _queue(store: SqliteStore) -> list[Incident]:
    return store.query_incidents(IncidentQuery(statuses=OPEN_STATUSES))


def _resolve(store: SqliteStore, incident_id: str) -> Incident:
    return store.record_action(TriageAction(incident_id=incident_id, kind=TriageActionKind.RESOLVE, by="bob", at=NOW))


def _closed_case(settings) -> tuple[Incident, list[bytes]]:
    """The first agent's incident, raised by its two bursts with a checkpoint between them, then resolved."""
    lines = _story()
    # just past the second burst's first event: the first burst's hour is judged, and its alert stored, before
    cut = 1 + next(n for n, line in enumerate(lines) if orjson.loads(line)["timestamp"] >= _utc(SECOND_BURST))
    with app.open_store(settings) as store:
        pipeline = _pipeline(settings, store)
        pipeline.ingest(_records(lines[:cut]))
        pipeline.checkpoint()
        pipeline.ingest(_records(lines[cut:], cut))  # the checkpoint is behind: a crash, or a stop, now
        [case] = store.query_incidents(IncidentQuery())
        assert len(case.alert_ids) == 2 and store.load_checkpoint("detectors").seq == cut
        assert [kind for _, kind, _ in _pages(store)] == ["trigger"]
        return _resolve(store, case.incident_id), lines


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def test_a_restart_that_judges_a_closed_case_again_puts_nothing_back_in_the_queue_and_pages_nobody(tmp_path):
    settings = _settings(tmp_path)
    closed, _ = _closed_case(settings)
    with app.open_store(settings) as store:
        pages = _pages(store)
        pipeline = _pipeline(settings, store)  # the restart: the second burst is judged again
        assert pipeline.report.recovered > 0
        assert pipeline.report.alerts_raised == pipeline.report.alerts_updated == 0
        assert _queue(store) == []
        assert store.query_incidents(IncidentQuery()) == [closed]  # the case as the analyst left it
        alerts = store.get_alerts(closed.alert_ids)
        assert [(a.incident_id, a.status) for a in alerts] == [(closed.incident_id, AlertStatus.RESOLVED)] * 2
        assert _pages(store) == pages
        report = store.verify_chain()
        assert report.intact, report.problems


def test_retention_purges_a_closed_case_judged_again_whole_and_only_when_it_is_due(tmp_path):
    # each alert judged by the incident that holds it: the closed case, closed on NOW
    settings = _settings(tmp_path)
    closed, _ = _closed_case(settings)
    with app.open_store(settings) as store:
        _pipeline(settings, store)
        before_the_close = store.purge(RetentionPolicy(events_before=T0, alerts_before=NOW))
        assert (before_the_close.incidents, before_the_close.alerts) == (0, 0)
        assert len(store.get_alerts(closed.alert_ids)) == 2
        after = store.purge(RetentionPolicy(events_before=T0, alerts_before=NOW + timedelta(days=1)))
        assert (after.incidents, after.alerts) == (1, 2)
        assert store.query_incidents(IncidentQuery()) == [] and store.get_alerts(closed.alert_ids) == []
        report = store.verify_chain()
        assert report.intact, report.problems


def test_a_closed_cases_alert_that_grows_after_the_close_opens_a_new_case_paged_and_the_closed_one_stands(
    tmp_path,
):
    settings = _settings(tmp_path)
    closed, lines = _closed_case(settings)
    first, second = closed.alert_ids
    # the next hour: refused again, within the merge gap of the second burst's alert, which grows
    later = _lines([_refused(SECOND_BURST + timedelta(hours=1, minutes=20), 40), _routine(16)], "later")
    with app.open_store(settings) as store:
        stored = store.get_alert(second)
        pipeline = _pipeline(settings, store)
        pipeline.ingest(_records(later, len(lines)))
        grown = store.get_alert(second)
        assert grown.revision > stored.revision  # more refusals in the same hour: the same alert, grown
        [follow_up] = _queue(store)
        assert follow_up.incident_id != closed.incident_id and follow_up.alert_ids == [second]
        assert (grown.incident_id, grown.status) == (follow_up.incident_id, AlertStatus.OPEN)
        assert store.get_incident(closed.incident_id) == closed  # its figures as the analyst saw them
        assert store.get_alert(first).status is AlertStatus.RESOLVED
        # paged as any new incident is, under its own id: the closed case's receivers were told it was closed
        assert _pages(store)[-1] == (follow_up.incident_id, PageKind.TRIGGER.value, "file")
        report = store.verify_chain()
        assert report.intact, report.problems
        # while the new case is open, retention keeps its alert, though the closed case (listing it too) goes
        purged = store.purge(RetentionPolicy(events_before=T0, alerts_before=NOW + timedelta(days=1)))
        assert (purged.incidents, purged.alerts) == (1, 1)
        assert store.get_alert(second) == grown and store.get_incident(follow_up.incident_id) is not None


def _alert(hour: float, hours: float = 1, **overrides) -> Alert:
    start = T0 + timedelta(hours=hour)
    return factories.alert(
        actor_id="emp-0001", window_start=start, window_end=start + timedelta(hours=hours), **overrides
    )


def test_the_alert_that_opened_a_closed_case_growing_opens_a_case_of_its_own_not_the_closed_one(tmp_path):
    # the new case's id, from the actor and the start of the alert's first finding, was the closed case's: the
    # store kept the person's close, took the grown figures into it, and nobody saw the new activity
    settings = _settings(tmp_path)
    with app.open_store(settings) as store:
        only = _alert(0)
        _pipeline(settings, store)._publish([only])
        [closed] = store.query_incidents(IncidentQuery())
        closed = _resolve(store, closed.incident_id)
        grown = only.model_copy(update={"window_end": only.window_end + timedelta(hours=1), "revision": 2})
        _pipeline(settings, store)._publish([grown])
        [follow_up] = _queue(store)
        assert follow_up.incident_id != closed.incident_id and follow_up.window_end == grown.window_end
        assert store.get_incident(closed.incident_id) == closed
        assert store.get_alert(only.alert_id).incident_id == follow_up.incident_id
        assert [(incident_id, kind) for incident_id, kind, _ in _pages(store)] == [
            (closed.incident_id, "trigger"),
            (follow_up.incident_id, "trigger"),
        ]
        # judged again, as a replay does: the same, and nothing paged again
        _pipeline(settings, store)._publish([grown.model_copy(update={"incident_id": None})])
        assert _queue(store) == [follow_up] and len(_pages(store)) == 2
        assert store.verify_chain().intact


def test_retention_keeps_a_closed_alert_whose_incident_is_open(tmp_path):
    # as an earlier version stored an alert of a closed case judged again: closed, naming an open incident
    settings = _settings(tmp_path)
    with SqliteStore(Path(settings.data_dir) / "accesswatch.db") as store:
        alert = _alert(0)
        _pipeline(settings, store)._publish([alert])
        [closed] = store.query_incidents(IncidentQuery())
        _resolve(store, closed.incident_id)
        carried = closed.model_copy(update={"incident_id": "inc-carried", "status": AlertStatus.OPEN})
        moved = alert.model_copy(update={"incident_id": carried.incident_id, "status": AlertStatus.RESOLVED})
        store.upsert_alerts([moved], [carried])
        purged = store.purge(RetentionPolicy(events_before=T0, alerts_before=NOW + timedelta(days=1)))
        assert (purged.incidents, purged.alerts) == (1, 0)
        assert store.get_alert(alert.alert_id) is not None and _queue(store) == [store.get_incident("inc-carried")]


def test_alerts_of_a_closed_case_growing_one_after_another_make_one_new_case_and_a_case_closed_again_another(
    tmp_path,
):
    settings = _settings(tmp_path)
    with app.open_store(settings) as store:
        first, second = _alert(0), _alert(1)
        _pipeline(settings, store)._publish([first, second])
        [closed] = store.query_incidents(IncidentQuery())
        closed = _resolve(store, closed.incident_id)

        def grow(alert: Alert, revision: int) -> Alert:
            grown = alert.model_copy(update={"window_end": alert.window_end + timedelta(hours=1), "revision": revision})
            _pipeline(settings, store)._publish([grown.model_copy(update={"incident_id": None})])
            return grown

        # the first grows, then the second, a batch each: the second joins the case the first opened
        grow(first, 2)
        grow(second, 2)
        [follow_up] = _queue(store)
        assert sorted(follow_up.alert_ids) == sorted([first.alert_id, second.alert_id])
        assert store.get_incident(closed.incident_id) == closed
        # that case closed too, the first grows again: a third case, neither closed one taken over
        follow_up = _resolve(store, follow_up.incident_id)
        grow(first, 3)
        [third] = _queue(store)
        assert third.incident_id not in (closed.incident_id, follow_up.incident_id)
        assert third.alert_ids == [first.alert_id]
        assert store.get_incident(closed.incident_id) == closed
        assert store.get_incident(follow_up.incident_id) == follow_up
        assert [kind for _, kind, _ in _pages(store)] == ["trigger"] * 3
        report = store.verify_chain()
        assert report.intact, report.problems
