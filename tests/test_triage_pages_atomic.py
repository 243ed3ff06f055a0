"""A person's action and the pages telling the receivers of it are one write to the store.

Reviewer: the pager recorded the action, then planned its pages in a second call: a Ctrl-C in between left
the incident acknowledged or closed and the receivers paged for it never told (PagerDuty escalating on).
The interruption is a hook raising KeyboardInterrupt as the pages are planned, on each store.
"""

from __future__ import annotations

import itertools
import uuid

import pytest

from models.alert import AlertStatus
from models.incident import TriageAction, TriageActionKind
from models.page import PageKind
from notify.outbox import Pager
from notify.registry import build_receivers
from store.elasticsearch import ElasticsearchSettings
from store.elasticsearch.store import ElasticsearchStore
from store.outbox import OutboxQuery
from tests.fakes.es_server import FakeElasticsearch
from tests.paging_factories import NOW, Clock, finding, settings_with

_prefixes = itertools.count(1)


@pytest.fixture(scope="module")
def es_server():
    with FakeElasticsearch(realtime=False, refresh_interval=None) as server:
        yield server


@pytest.fixture(params=["sqlite", "elasticsearch"])
def store(request, tmp_path):
    if request.param == "sqlite":
        yield request.getfixturevalue("sqlite_store")
        return
    url = request.getfixturevalue("es_server").url
    prefix = f"awatomic{next(_prefixes)}-{uuid.uuid4().hex[:6]}"
    fast = {"retry_for": 2.0, "retry_initial": 0.01, "retry_max": 0.05, "replicas": 0}
    store = ElasticsearchStore(ElasticsearchSettings(hosts=[url], prefix=prefix, **fast))
    yield store
    store.close()


def _interrupted(*args, **kwargs):
    raise KeyboardInterrupt


def test_an_interruption_as_an_actions_pages_are_planned_records_neither(tmp_path, store, monkeypatch):
    settings = settings_with(tmp_path, receivers=["soc"], settings={"soc": {"kind": "file", "path": "soc.jsonl"}})
    pager = Pager(store, settings.notify, build_receivers(settings), clock=Clock())
    alert, incident = finding()
    pager.page([(alert, incident)])
    store.upsert_alerts([alert], [incident])
    ack = TriageAction(incident_id=incident.incident_id, kind=TriageActionKind.ACKNOWLEDGE, by="sam", at=NOW)

    monkeypatch.setattr(store, "notifications", _interrupted)  # the pages' planning reads what was paged first
    with pytest.raises(KeyboardInterrupt):
        pager.record_action(ack)
    monkeypatch.undo()
    assert store.actions(incident.incident_id) == []
    assert store.get_incident(incident.incident_id).status is AlertStatus.OPEN
    assert store.get_alert(alert.alert_id).status is AlertStatus.OPEN
    kinds = [row.kind for row in store.notifications(OutboxQuery(incident_id=incident.incident_id))]
    assert kinds == [PageKind.TRIGGER]

    # done again, the action is recorded with its page
    acknowledged, planned = pager.record_action(ack)
    assert acknowledged.status is AlertStatus.ACKNOWLEDGED
    assert [action.kind for action in store.actions(incident.incident_id)] == [TriageActionKind.ACKNOWLEDGE]
    assert [(row.receiver, row.kind) for row in planned] == [("soc", PageKind.ACKNOWLEDGE)]
    rows = store.notifications(OutboxQuery(incident_id=incident.incident_id, newest_first=False))
    assert [row.kind for row in rows] == [PageKind.TRIGGER, PageKind.ACKNOWLEDGE]


def test_an_interruption_as_the_pages_are_written_takes_the_action_back_too(tmp_path, sqlite_store, monkeypatch):
    # SQLite: the action's rows are written, in the transaction the pages are then added in
    settings = settings_with(tmp_path, receivers=["soc"], settings={"soc": {"kind": "file", "path": "soc.jsonl"}})
    pager = Pager(sqlite_store, settings.notify, build_receivers(settings), clock=Clock())
    alert, incident = finding()
    pager.page([(alert, incident)])
    sqlite_store.upsert_alerts([alert], [incident])
    resolve = TriageAction(incident_id=incident.incident_id, kind=TriageActionKind.RESOLVE, by="sam", at=NOW)
    monkeypatch.setattr(sqlite_store, "_add_notifications", _interrupted)
    with pytest.raises(KeyboardInterrupt):
        pager.record_action(resolve)
    monkeypatch.undo()
    assert sqlite_store.actions(incident.incident_id) == []
    assert sqlite_store.get_incident(incident.incident_id).status is AlertStatus.OPEN
    assert sqlite_store.get_alert(alert.alert_id).status is AlertStatus.OPEN
    assert sqlite_store.verify_chain().intact  # the triage log's chain rolled back with it
