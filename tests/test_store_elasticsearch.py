"""The Elasticsearch store against the shared store contract, plus what only it has.

The contract runs on the in-process test server (``tests/fakes/es_server``,
near-real-time like a real cluster: searches see writes only after a
refresh) and, when ``ACCESSWATCH_TEST_ES_URL`` is set, on a real cluster::

    ACCESSWATCH_TEST_ES_URL=http://localhost:9200 .venv/bin/python -m pytest tests/test_store_elasticsearch.py

Each test gets indices under a prefix of its own, deleted afterwards.
"""

from __future__ import annotations

import copy
import itertools
import os
import sys
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from models.alert import AlertStatus
from models.config import ConfigError
from store.base import (
    CheckpointConflict,
    EventQuery,
    IncidentQuery,
    StoreNeedsUpgrade,
    StoreTooNew,
    StoreUnavailable,
)
from store.elasticsearch import ElasticsearchSettings, ElasticsearchStore, schema
from store.elasticsearch import mappings as m
from store.elasticsearch.bulk import BulkRejected
from store.elasticsearch.settings import load as load_settings
from tests import factories as f
from tests.fakes.es_server import FakeElasticsearch
from tests.store_contract import StoreContract, _incident

REAL_ES = os.environ.get("ACCESSWATCH_TEST_ES_URL")
_prefixes = itertools.count(1)


@pytest.fixture(scope="module")
def es_server():
    # near-real-time, and no refresh unless asked: a search sees only what a refresh made visible
    with FakeElasticsearch(realtime=False, refresh_interval=None) as server:
        yield server


def _settings(url: str, **overrides) -> ElasticsearchSettings:
    prefix = f"awtest{next(_prefixes)}-{uuid.uuid4().hex[:6]}"
    fast = {"retry_for": 2.0, "retry_initial": 0.01, "retry_max": 0.05, "replicas": 0}
    return ElasticsearchSettings(hosts=[url], prefix=prefix, **{**fast, **overrides})


def _drop(store: ElasticsearchStore) -> None:
    prefix = store.settings.prefix
    client = store.client
    # by name: a real 8.x cluster refuses wildcard deletes (action.destructive_requires_name)
    names = list(client.indices.get(index=f"{prefix}-*", expand_wildcards="all", allow_no_indices=True))
    if names:
        client.indices.delete(index=",".join(names))
    for name in m.templates(store.settings):
        client.options(ignore_status=404).indices.delete_index_template(name=name)
    for name in m.policies(store.settings):
        client.options(ignore_status=404).ilm.delete_lifecycle(name=name)


class TestElasticsearchStoreOnTestServer(StoreContract):
    @pytest.fixture
    def store(self, es_server):
        store = ElasticsearchStore(_settings(es_server.url))
        yield store
        store.close()


@pytest.mark.skipif(not REAL_ES, reason="set ACCESSWATCH_TEST_ES_URL to run the contract on a real cluster")
class TestElasticsearchStoreOnRealCluster(StoreContract):
    @pytest.fixture
    def store(self):
        store = ElasticsearchStore(_settings(REAL_ES))
        yield store
        _drop(store)
        store.close()


@pytest.fixture
def store(es_server):
    store = ElasticsearchStore(_settings(es_server.url))
    yield store
    store.close()


# -- what the cluster is given ------------------------------------------------------------------
def test_templates_and_policies_are_installed_once_and_again(es_server, store):
    prefix = store.settings.prefix
    templates = store.client.indices.get_index_template(name=f"{prefix}-*")["index_templates"]
    assert {t["name"] for t in templates} == {f"{prefix}-{family}" for family in m.MAPPINGS}
    events = next(t for t in templates if t["name"] == f"{prefix}-events")["index_template"]
    lifecycle = events["template"]["settings"]["index"]["lifecycle"]
    assert lifecycle["name"] == f"{prefix}-events" and lifecycle["parse_origination_date"] in (True, "true")
    policy = store.client.ilm.get_lifecycle(name=f"{prefix}-events")[f"{prefix}-events"]["policy"]
    assert policy["phases"]["delete"]["min_age"] == f"{180 * 86400}s"
    ElasticsearchStore(store.settings).close()  # a second instance starting installs again: no error


def test_events_go_to_the_index_of_their_own_day_with_ecs_fields(es_server, store, settings):
    incoming = f.incoming(
        settings,
        timestamp="2026-11-03T07:59:59.999999+08:00",
        actor={"organization": "blue-sky", "role": "booking_agent"},
        outcome="denied",
        purpose="ticket-7",
        fields=["passport_number"],
    )
    store.write([incoming])
    index = f"{store.settings.prefix}-events-2026.11.02"
    doc = es_server.document(index, incoming.event.event_id)
    assert doc["@timestamp"] == "2026-11-02T23:59:59.999Z"
    assert doc["event"]["id"] == incoming.event.event_id and doc["event"]["action"] == "read"
    assert doc["event"]["outcome"] == "failure" and doc["accesswatch"]["outcome"] == "denied"
    assert doc["event"]["reason"] == "ticket-7"
    assert doc["user"] == {"id": "emp-0001", "roles": ["booking_agent"]}
    assert doc["organization"] == {"name": "blue-sky"} and doc["source"] == {"ip": "10.0.0.1"}
    assert doc["accesswatch"]["time_us"] % 1_000_000 == 999_999  # microseconds kept where dates keep ms
    assert doc["accesswatch"]["data_classes"] == ["government_id"]
    assert orjson.loads(doc["event"]["original"]) == orjson.loads(incoming.raw)


def test_a_malformed_address_is_kept_not_refused(store, settings):
    incoming = f.incoming(settings, source_ip="not-an-ip")
    assert len(store.write([incoming]).stored) == 1


# -- duplicates, redeliveries and conflicts ----------------------------------------------------------
def test_the_same_message_again_is_a_redelivery_another_copy_is_a_duplicate(store, settings):
    original = f.incoming(settings)._replace(origin="kafka:access/0@41")
    store.write([original])
    again = store.write([original])
    assert again.stored == [] and again.duplicates == 1
    assert [i.event.event_id for i in again.redelivered] == [original.event.event_id]
    elsewhere = store.write([original._replace(origin="kafka:access/0@99")])  # sent twice by a producer
    assert elsewhere.redelivered == [] and elsewhere.duplicates == 1 and elsewhere.conflicts == []
    unknown = store.write([original._replace(origin=None)])
    assert unknown.redelivered == []


def test_a_dead_letter_replayed_on_another_day_is_kept_once(store):
    from tests.store_contract import _deadletter

    first = _deadletter("line 3")
    assert store.write([], [first]).dead_letters_stored == 1
    later = first.model_copy(update={"received_at": first.received_at + timedelta(days=3)})
    assert store.write([], [later]).dead_letters_stored == 0
    assert store.stats().dead_letters == 1


def test_store_positions_are_unique_across_instances(es_server, store, settings):
    other = ElasticsearchStore(store.settings)
    a = store.write([f.incoming(settings) for _ in range(3)])
    b = other.write([f.incoming(settings) for _ in range(3)])
    c = store.write([f.incoming(settings) for _ in range(3)])
    assert a.last_seq < b.last_seq < c.last_seq
    seqs = [item.seq for item in store.query_events(EventQuery(limit=100)).items]
    assert len(seqs) == len(set(seqs)) == 9
    other.close()


# -- checkpoints are fenced --------------------------------------------------------------------------
def test_a_checkpoint_taken_over_cannot_be_overwritten_by_its_old_owner(es_server, store):
    old_owner = store
    old_owner.save_checkpoint("detectors@kafka:access/3", 10, b"old")
    new_owner = ElasticsearchStore(store.settings)
    assert new_owner.load_checkpoint("detectors@kafka:access/3").state == b"old"
    new_owner.save_checkpoint("detectors@kafka:access/3", 10, b"claimed")  # the takeover claims it
    with pytest.raises(CheckpointConflict):
        old_owner.save_checkpoint("detectors@kafka:access/3", 20, b"stale")
    new_owner.save_checkpoint("detectors@kafka:access/3", 30, b"new")
    assert old_owner.load_checkpoint("detectors@kafka:access/3").state == b"new"
    new_owner.close()


def test_a_first_save_does_not_overwrite_a_checkpoint_it_never_read(store):
    store.save_checkpoint("detectors", 1, b"a")
    stranger = ElasticsearchStore(store.settings)
    with pytest.raises(CheckpointConflict):
        stranger.save_checkpoint("detectors", 2, b"b")
    stranger.close()


def test_large_state_round_trips_compressed(store):
    state = orjson.dumps({"profiles": [{"actor": f"emp-{i}", "mean": i / 7} for i in range(20_000)]})
    store.save_checkpoint("detectors", 5, state)
    assert store.load_checkpoint("detectors").state == state


# -- faults: retried, never silent --------------------------------------------------------------------
def test_bulk_429_and_503_are_retried_until_they_pass(es_server, store, settings):
    es_server.fail_next(2, status=429, path_prefix="/_bulk")
    es_server.fail_next(1, status=503, path_prefix="/_bulk")
    batch = [f.incoming(settings) for _ in range(5)]
    assert len(store.write(batch).stored) == 5
    assert store.stats().events == 5


def test_items_refused_for_a_while_are_sent_again_alone(es_server, store, settings):
    es_server.reject_bulk_items(3, status=429)
    batch = [f.incoming(settings) for _ in range(10)]
    result = store.write(batch)
    assert len(result.stored) == 10 and result.duplicates == 0
    assert store.stats().events == 10


def test_a_cluster_away_longer_than_the_retries_raises_store_unavailable(es_server, settings):
    store = ElasticsearchStore(_settings(es_server.url, retry_for=0.3))
    es_server.fail_next(1000, status=503, path_prefix="/_bulk")
    try:
        with pytest.raises(StoreUnavailable, match="503"):
            store.write([f.incoming(settings)])
    finally:
        es_server.clear_failures()
        store.close()


def test_the_retries_spend_retry_for_whole_the_last_wait_cut_short(monkeypatch):
    # they gave up when the next wait would pass retry_for: 12.6 s of a 20 s retry_for were spent
    from store.elasticsearch import client
    from store.elasticsearch.client import Backoff

    monkeypatch.setattr(client.random, "uniform", lambda low, high: 1.0)  # no jitter
    now, waits = [0.0], []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    backoff = Backoff(
        ElasticsearchSettings(retry_for=20.0, retry_initial=0.2, retry_max=10.0), sleep, clock=lambda: now[0]
    )
    with pytest.raises(StoreUnavailable, match=r"failed for 20\.0 s"):
        while True:
            backoff.wait("bulk", "HTTP 503")
    assert waits == pytest.approx([0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 7.4])  # the last one 7.4 s, not retry_max's 10


def test_an_item_refused_for_good_stops_the_batch_with_its_reason(es_server, store, settings):
    es_server.reject_bulk_items(1, status=400)
    with pytest.raises(BulkRejected, match="400"):
        store.write([f.incoming(settings)])


def test_a_person_status_survives_the_pipeline_growing_the_alert(store):
    alert = f.alert()
    store.upsert_alerts([alert])
    store.set_alert_status(alert.alert_id, AlertStatus.FALSE_POSITIVE)
    store.upsert_alerts([alert.model_copy(update={"revision": 3, "evidence": {"records": 1}})])
    stored = store.get_alert(alert.alert_id)
    assert stored.status is AlertStatus.FALSE_POSITIVE and stored.revision == 3
    assert stored.evidence == {"records": 1}  # replaced whole, not merged with the old figures


# -- configuration -----------------------------------------------------------------------------------
def test_settings_errors_name_the_key_and_never_show_a_secret(tmp_path):
    with pytest.raises(ConfigError, match=r"store\.elasticsearch\.replicas = -1"):
        load_settings({"replicas": -1})
    with pytest.raises(ConfigError) as caught:
        load_settings({"password": 12345678})
    assert "12345678" not in str(caught.value)
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    loaded = load_settings({"username": "aw", "password_file": str(secret)})
    assert loaded.resolved_password() == "s3cret" and "s3cret" not in repr(loaded)
    assert "s3cret" not in repr(load_settings({"username": "aw", "password": "s3cret"}))
    with pytest.raises(ConfigError, match="goes with a username") as caught:  # it was dropped without a word
        load_settings({"password": "s3cret"})
    assert "s3cret" not in str(caught.value)
    with pytest.raises(ConfigError, match="keep one") as caught:  # the section shown, its secret not
        load_settings({"username": "aw", "password": "s3cret", "password_file": str(secret)})
    assert "s3cret" not in str(caught.value)


def test_the_latest_incidents_of_many_actors_come_in_one_search(es_server, store):
    # publishing a batch's alerts asks this of every actor in it: a search each was a round trip each
    actors = [f"emp-{n:04d}" for n in range(60)]
    incidents = [
        _incident(
            incident_id=f"inc-{actor}-{hour}",
            actor_id=actor,
            window_start=f.at(hours=hour),
            window_end=f.at(hours=hour + 1),
        )
        for actor in actors[::3]
        for hour in (1, 5, 3)
    ]
    store.upsert_alerts([], incidents)
    store.latest_incident(actors[0])  # any refresh the store makes before searching, made now
    es_server.request_log.clear()
    found = store.latest_incidents(actors)
    searches = [target for method, target in es_server.request_log if "_search" in target]
    assert len(searches) == 1, list(es_server.request_log)
    assert {actor: found[actor].incident_id for actor in found} == {a: f"inc-{a}-5" for a in actors[::3]}


# -- retention: ILM's, and what purge --dry-run tells of it ---------------------------------------------------------
def _aged(store, settings) -> None:
    """Events of two days, 200 and 10 days before T0; an alert and its incident of 800 days before, one recent."""
    store.write([f.incoming(settings, at=f.T0 - timedelta(days=200, hours=-h)) for h in range(3)])
    store.write([f.incoming(settings, at=f.T0 - timedelta(days=10))])
    for days in (800, 10):
        start = f.T0 - timedelta(days=days)
        alert = f.alert(window_start=start, window_end=start + timedelta(hours=1), incident_id=f"inc-{days}")
        incident = _incident(
            incident_id=f"inc-{days}", alert_ids=[alert.alert_id], window_start=start, created_at=start
        )
        store.upsert_alerts([alert], [incident])


def test_the_indices_past_retention_are_those_ilm_deletes_counted(es_server, settings):
    store = ElasticsearchStore(_settings(es_server.url, events_retention=180 * 86400.0, alerts_retention=730 * 86400.0))
    try:
        _aged(store, settings)
        old_day, old_month = (f.T0 - timedelta(days=200)).date(), (f.T0 - timedelta(days=800)).date()
        due = store.indices_past_retention(f.T0)
        prefix = store.settings.prefix
        assert [(i.name, i.documents) for i in due] == [
            (f"{prefix}-alerts-{old_month:%Y.%m}.01", 1),
            (f"{prefix}-incidents-{old_month:%Y.%m}.01", 1),
            (f"{prefix}-events-{old_day:%Y.%m.%d}", 3),
        ]
        # ILM's own test: the day's 00:00 UTC plus the retention; not a second before
        midnight = datetime(old_day.year, old_day.month, old_day.day, tzinfo=UTC) + timedelta(days=180)
        assert f"{prefix}-events-{old_day:%Y.%m.%d}" in [i.name for i in store.indices_past_retention(midnight)]
        assert not [i for i in store.indices_past_retention(midnight - timedelta(seconds=1)) if i.family == "events"]
    finally:
        store.close()


def test_purge_dry_run_on_elasticsearch_says_what_ilm_deletes(
    es_server, store, settings, tmp_path, monkeypatch, capsys
):
    """It said "this store kind has no retention yet"; the embedded store's says what would go."""
    from accesswatch import cli

    _aged(store, settings)
    for key, value in {
        "STORE__KIND": "elasticsearch",
        "STORE__ELASTICSEARCH__HOSTS": f'["{es_server.url}"]',
        "STORE__ELASTICSEARCH__PREFIX": store.settings.prefix,
        "RETENTION__EVENTS_DAYS": "180",
        "RETENTION__ALERTS_DAYS": "730",
    }.items():
        monkeypatch.setenv(f"ACCESSWATCH_{key}", value)

    def purge(*options: str) -> int:
        args = cli._parser().parse_args(["purge", *options, "--as-of", f.T0.isoformat(), "--data-dir", str(tmp_path)])
        try:
            return args.handler(args)
        except SystemExit as exit:  # a one-line refusal
            print(exit.code, file=sys.stderr)
            return 1

    assert purge("--dry-run") == 0
    out = capsys.readouterr().out.splitlines()
    old_day, old_month = (f.T0 - timedelta(days=200)).date(), (f.T0 - timedelta(days=800)).date()
    prefix = store.settings.prefix
    assert out[:2] == [
        "would purge 3 events and 0 dead letters in 1 daily index dated 2026-05-06 or earlier"
        " (180 days before 2026-11-02 09:00:00 +08:00)",  # the index dates are UTC days; the time, local
        "would purge 1 alert, 1 incident, 0 triage actions and 0 recorded data accesses in 2 monthly indices dated"
        " 2024-11-02 or earlier (730 days before 2026-11-02 09:00:00 +08:00)",
    ]
    assert out[2:5] == [
        f"  {prefix}-alerts-{old_month:%Y.%m}.01: 1 alert",
        f"  {prefix}-incidents-{old_month:%Y.%m}.01: 1 incident",
        f"  {prefix}-events-{old_day:%Y.%m.%d}: 3 events",
    ]
    assert out[5].startswith("ILM deletes these whole indices itself") and len(out) == 6
    assert store.stats().events == 4  # nothing deleted
    assert purge() == 1
    assert "retention is ILM's" in capsys.readouterr().err


# -- the schema version: recorded, read at open, a newer one refused, an older one upgraded --------------------
@pytest.fixture(params=["test server", "real cluster"])
def cluster(request, es_server):
    """The URL of the test server, and of the real cluster when ``ACCESSWATCH_TEST_ES_URL`` names one."""
    if request.param == "test server":
        return es_server.url
    if not REAL_ES:
        pytest.skip("set ACCESSWATCH_TEST_ES_URL to run the schema tests on a real cluster")
    return REAL_ES


@pytest.fixture
def versioned(cluster, settings):
    """A store of this version holding three events; dropped afterwards."""
    store = ElasticsearchStore(_settings(cluster))
    store.write([f.incoming(settings, at=f.at(hours=h)) for h in range(3)])
    yield store
    _drop(store)
    store.close()


def _record(store) -> dict | None:
    doc = store.client.options(ignore_status=404).get(index=m.state_index(store.settings), id=schema.SCHEMA_ID)
    return doc["_source"] if doc.body.get("found") else None


def _as_if_made_before_the_record(store) -> None:
    state = m.state_index(store.settings)
    store.client.options(ignore_status=404).delete(index=state, id=schema.SCHEMA_ID, refresh=True)


def _as_if_upgraded_by_a_newer_version(store) -> None:
    record = _record(store) or {"name": schema.SCHEMA_ID, "migrations": []}
    record["migrations"].append({"name": "0099-from-the-future", "applied_at": "2027-01-01T00:00:00.000Z"})
    store.client.index(index=m.state_index(store.settings), id=schema.SCHEMA_ID, document=record, refresh=True)


def _writes(store_settings, requests) -> list[tuple[str, str]]:
    """The requests that changed the store's templates, policies or indices (searches and reads left out)."""
    return [
        (method, target)
        for method, target in requests
        if method in ("PUT", "POST", "DELETE")
        and store_settings.prefix in target
        and not any(read in target for read in ("/_search", "/_count", "/_refresh", "/_mget"))
    ]


def test_a_new_store_records_every_migration_at_its_making_without_an_upgrade_line(cluster, caplog):
    with caplog.at_level("INFO", logger="store.elasticsearch.schema"):
        store = ElasticsearchStore(_settings(cluster))
    try:
        assert store.migrations == [migration.name for migration in schema.MIGRATIONS]
        assert all(entry["applied_at"] for entry in _record(store)["migrations"])
        assert "upgrading" not in caplog.text
        ElasticsearchStore(store.settings).close()  # a second start: nothing to apply, nothing written again
        assert store.migrations == [migration.name for migration in schema.MIGRATIONS]
    finally:
        _drop(store)
        store.close()


def test_a_store_a_newer_version_upgraded_is_refused_before_anything_is_put(es_server, versioned):
    _as_if_upgraded_by_a_newer_version(versioned)
    es_server.request_log.clear()
    for install in (True, False):
        with pytest.raises(StoreTooNew) as refused:
            other = ElasticsearchStore(versioned.settings, install=install)
            other.refuse_if_not_migrated()  # what a reader and ``ack`` check when opened
        assert str(refused.value) == (
            f"the store at {versioned.settings.hosts[0]} with prefix {versioned.settings.prefix!r} was upgraded by a"
            " newer accesswatch (0099-from-the-future): this version cannot use it; run that version, or restore"
            " the snapshot of its indices taken before the upgrade"
        )
    if versioned.settings.hosts[0] == es_server.url:  # no template, policy or record put back over the newer ones
        assert _writes(versioned.settings, es_server.request_log) == []
    assert _record(versioned)["migrations"][-1]["name"] == "0099-from-the-future"


def test_a_store_made_before_the_record_is_read_as_it_is_and_upgraded_once_by_a_writer(versioned, caplog):
    _as_if_made_before_the_record(versioned)
    assert versioned.migrations == ["0001-foundation"]  # adopted as the version before this one
    versioned.refuse_if_not_migrated()  # readers are not refused: nothing since reads differently
    assert _record(versioned) is None  # and looking wrote nothing
    with caplog.at_level("INFO", logger="store.elasticsearch.schema"):
        ElasticsearchStore(versioned.settings).close()
    where = f"the store at {versioned.settings.hosts[0]} with prefix {versioned.settings.prefix!r}"
    due = ["0002-schema-record", "0003-incidents-flagged-end", "0004-accesses-customer-ids"]
    assert [r.getMessage() for r in caplog.records] == [f"upgrading {where}: {', '.join(due)}"]
    entries = _record(versioned)["migrations"]
    assert [e["name"] for e in entries] == ["0001-foundation", *due]
    assert entries[0]["applied_at"] is None and all(e["applied_at"] for e in entries[1:])  # the adopted one: not known
    assert versioned.stats().events == 3
    caplog.clear()
    with caplog.at_level("INFO", logger="store.elasticsearch.schema"):
        ElasticsearchStore(versioned.settings).close()
    assert caplog.records == []  # once


def test_a_migration_readers_need_is_applied_by_a_writer_and_awaited_by_readers(versioned, monkeypatch, caplog):
    applied = []

    def add_a_field(client, settings):  # as a migration that changes the events' mapping would
        applied.append(settings.prefix)
        client.indices.put_mapping(
            index=m.pattern(settings, m.EVENTS),
            properties={"accesswatch": {"properties": {"added": {"type": "keyword"}}}},
            allow_no_indices=True,
        )

    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, schema.Migration("0003-added-field", add_a_field)])
    with pytest.raises(StoreNeedsUpgrade, match=r"needs upgrading \(0003-added-field\): .*accesswatch run or replay"):
        ElasticsearchStore(versioned.settings, install=False).refuse_if_not_migrated()
    assert applied == [] and "0003-added-field" not in versioned.migrations
    with caplog.at_level("INFO", logger="store.elasticsearch.schema"):
        ElasticsearchStore(versioned.settings).close()
    assert applied == [versioned.settings.prefix]
    assert caplog.records[0].getMessage().endswith(": 0003-added-field")
    assert versioned.migrations[-1] == "0003-added-field"
    mapping = versioned.client.indices.get_mapping(index=m.pattern(versioned.settings, m.EVENTS))
    assert all("added" in index["mappings"]["properties"]["accesswatch"]["properties"] for index in mapping.values())
    ElasticsearchStore(versioned.settings, install=False).refuse_if_not_migrated()  # read now


def _as_if_written_before_0003(store) -> None:
    """The incidents without ``flagged_end`` (in the record) nor ``flagged_end_us``, and 0003 not recorded."""
    index = m.pattern(store.settings, m.INCIDENTS)
    for hit in store.client.search(index=index, size=100)["hits"]["hits"]:
        own = hit["_source"]["accesswatch"]
        own.pop("flagged_end_us")
        own["record"] = orjson.dumps(
            {k: v for k, v in orjson.loads(own["record"]).items() if k != "flagged_end"}
        ).decode()
        store.client.index(index=hit["_index"], id=hit["_id"], document=hit["_source"], refresh=True)
    record = _record(store)
    record["migrations"] = [e for e in record["migrations"] if e["name"] != "0003-incidents-flagged-end"]
    store.client.index(index=m.state_index(store.settings), id=schema.SCHEMA_ID, document=record, refresh=True)


def test_a_writer_gives_the_incidents_of_an_older_store_when_their_flagged_activity_ended(versioned):
    # a day's incident flagged 16:00-17:00 (its alert's spans), and others flagged 09:00-10:00 and 18:00-19:00
    alerts = f.incidents_flagged_at_three_hours()
    versioned.upsert_alerts(list(alerts.values()), [f.incident_of(a, name, 60.0) for name, a in alerts.items()])
    _as_if_written_before_0003(versioned)
    before = versioned.query_incidents(IncidentQuery())
    assert {i.flagged_end for i in before} == {None}  # the queue reads it before the upgrade
    versioned.refuse_if_not_migrated()  # and readers are not refused
    ElasticsearchStore(versioned.settings).close()  # a writer upgrades it
    queue = versioned.query_incidents(IncidentQuery())
    assert [i.incident_id for i in queue] == ["inc-evening", "inc-day", "inc-morning"]
    assert [i.flagged_end for i in queue] == [f.at(hours=19), f.at(hours=17), f.at(hours=10)]
    assert versioned.migrations[-1] == "0003-incidents-flagged-end"


def test_a_writer_makes_the_accesses_of_an_older_store_searchable_by_customer(versioned):
    # this month's accesses index made before 0004: its mapping without ``customer_ids`` (``dynamic`` false)
    from models.dashboard import DataAccess, DataAccessKind, DataAccessQuery

    at = datetime.now(UTC).replace(microsecond=0)  # this month's index; the store keeps milliseconds
    family = f"{versioned.settings.prefix}-{m.ACCESSES}"
    versioned.client.indices.delete_index_template(name=family)
    older = copy.deepcopy(m.MAPPINGS[m.ACCESSES])
    del older["properties"]["accesswatch"]["properties"]["customer_ids"]
    versioned.client.indices.create(index=m.dated_index(versioned.settings, m.ACCESSES, at), mappings=older)
    record = _record(versioned)
    record["migrations"] = [e for e in record["migrations"] if e["name"] != "0004-accesses-customer-ids"]
    versioned.client.index(index=m.state_index(versioned.settings), id=schema.SCHEMA_ID, document=record, refresh=True)
    # the dashboard, of this version, records before a writer upgrades the store (readers are not refused): a
    # search for the customer, found by the index alone (the kinds that list customers are read whole, their
    # list may be cut: store.unlisted)
    seen = DataAccess(
        at=at, by="audrey", role="auditor", kind=DataAccessKind.SEARCH, reason="curious", what={"customer_id": "c-1"}
    )
    versioned.record_data_access(seen)
    assert versioned.data_accesses(DataAccessQuery(customer_id="c-1")) == []  # the old mapping: not searched
    ElasticsearchStore(versioned.settings).close()  # a writer upgrades it
    assert versioned.data_accesses(DataAccessQuery(customer_id="c-1")) == [seen]
    later = seen.model_copy(update={"at": at + timedelta(seconds=1)})
    versioned.record_data_access(later)
    assert versioned.data_accesses(DataAccessQuery(customer_id="c-1")) == [later, seen]
    assert "0004-accesses-customer-ids" in versioned.migrations


def test_two_instances_upgrading_at_once_record_each_migration_once(versioned, monkeypatch):
    _as_if_made_before_the_record(versioned)
    first = ElasticsearchStore(versioned.settings, install=False)
    write = schema.ElasticsearchSchemaMixin._record
    raced = []

    def the_other_instance_first(self, entries, guard):
        if self is first and not raced:  # between the first's read of the record and its write
            raced.append(True)
            ElasticsearchStore(versioned.settings).close()
        return write(self, entries, guard)

    monkeypatch.setattr(schema.ElasticsearchSchemaMixin, "_record", the_other_instance_first)
    first.install()  # its write refused (the record is not as it read it): read again, nothing left to do
    first.close()
    assert raced and versioned.migrations == [migration.name for migration in schema.MIGRATIONS]


def _cli(monkeypatch, store, tmp_path, *args: str) -> int:
    from accesswatch import cli

    for key, value in {
        "STORE__KIND": "elasticsearch",
        "STORE__ELASTICSEARCH__HOSTS": f'["{store.settings.hosts[0]}"]',
        "STORE__ELASTICSEARCH__PREFIX": store.settings.prefix,
        "STORE__ELASTICSEARCH__RETRY_FOR": "2",
    }.items():
        monkeypatch.setenv(f"ACCESSWATCH_{key}", value)
    return cli.main([*args, "--data-dir", str(tmp_path / "data")])


def test_the_commands_refuse_a_newer_store_in_one_line_and_store_nothing(
    versioned, settings, tmp_path, monkeypatch, capsys
):
    _as_if_upgraded_by_a_newer_version(versioned)
    log = tmp_path / "more.jsonl"
    log.write_bytes(f.incoming(settings, at=f.at(hours=9)).raw + b"\n")
    for args in (("alerts",), ("pages",), ("replay", str(log))):
        assert _cli(monkeypatch, versioned, tmp_path, *args) == 1
        [line] = capsys.readouterr().err.splitlines()
        assert "upgraded by a newer accesswatch (0099-from-the-future)" in line and "restore the snapshot" in line
    assert versioned.stats().events == 3


def test_readers_of_a_store_made_before_the_record_read_it_and_never_write_the_record(
    es_server, versioned, tmp_path, monkeypatch, capsys
):
    _as_if_made_before_the_record(versioned)
    es_server.request_log.clear()
    for args in (("alerts",), ("pages",), ("incidents",), ("purge", "--dry-run")):
        assert _cli(monkeypatch, versioned, tmp_path, *args) == 0, capsys.readouterr().err
    assert _record(versioned) is None
    if versioned.settings.hosts[0] == es_server.url:  # no template, policy or state written
        # (``pages`` makes its outbox and receiver-rest indices on first use, as before: not the schema's business)
        made_on_use = {("PUT", f"/{versioned.settings.prefix}-{name}") for name in ("outbox", "receiver-rests")}
        assert [w for w in _writes(versioned.settings, es_server.request_log) if w not in made_on_use] == []
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    assert _cli(monkeypatch, versioned, tmp_path, "replay", str(empty)) == 0  # a writer: it upgrades
    assert "upgrading the store at" in capsys.readouterr().err
    assert versioned.migrations == [migration.name for migration in schema.MIGRATIONS]
