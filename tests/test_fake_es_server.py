"""Tests of the fake Elasticsearch server, driven through the real ``elasticsearch`` 8.x client over
loopback HTTP. Expected values are computed by hand from the small ECS-shaped corpus below."""

from __future__ import annotations

import threading
import urllib.request

import elasticsearch
import pytest
from elasticsearch import Elasticsearch, helpers

from tests.fakes.es_server import FakeElasticsearch

DAY = 86_400_000
MAR_1 = 1_709_251_200_000  # 2024-03-01T00:00:00Z in epoch millis


@pytest.fixture(scope="module")
def server():
    with FakeElasticsearch() as es:
        yield es


@pytest.fixture
def es(server):
    server.reset()
    return server


@pytest.fixture
def client(es):
    c = Elasticsearch(es.url, request_timeout=10)
    yield c
    c.close()


# --------------------------------------------------------------------------- corpus
MAPPINGS = {
    "properties": {
        "@timestamp": {"type": "date"},
        "event": {
            "properties": {"id": {"type": "keyword"}, "action": {"type": "keyword"}, "outcome": {"type": "keyword"}}
        },
        "user": {"properties": {"id": {"type": "keyword"}, "name": {"type": "keyword"}}},
        "customer": {"properties": {"id": {"type": "keyword"}}},
        "source": {"properties": {"ip": {"type": "ip"}}},
        "records": {"type": "long"},
        "bytes": {"type": "long"},
        "risk_score": {"type": "float"},
        "tags": {"type": "keyword"},
        "message": {"type": "text"},
    }
}


def _doc(ts, user, action, outcome, customer, records, nbytes, risk, tags, ip, message):
    d = {
        "@timestamp": ts,
        "event": {"action": action, "outcome": outcome},
        "customer": {"id": customer},
        "records": records,
        "bytes": nbytes,
        "message": message,
    }
    if user is not None:
        d["user"] = {"id": user}
    if risk is not None:
        d["risk_score"] = risk
    if tags is not None:
        d["tags"] = tags
    if ip is not None:
        d["source"] = {"ip": ip}
    return d


CORPUS = {
    "e1": _doc(
        "2024-03-01T08:15:00Z",
        "alice",
        "read",
        "success",
        "c1",
        10,
        1000,
        0.1,
        ["pii"],
        "10.0.0.1",
        "Alice read customer profile",
    ),
    "e2": _doc(
        "2024-03-01T09:30:00Z",
        "alice",
        "export",
        "success",
        "c2",
        500,
        50000,
        0.7,
        ["pii", "bulk"],
        "10.0.0.1",
        "Alice exported the customer list",
    ),
    "e3": _doc(
        "2024-03-01T23:59:59.999Z",
        "bob",
        "read",
        "success",
        "c1",
        5,
        400,
        0.05,
        [],
        "10.0.0.2",
        "Bob read customer profile",
    ),
    "e4": _doc(
        "2024-03-02T00:00:00Z",
        "bob",
        "delete",
        "failure",
        "c3",
        1,
        100,
        0.9,
        ["admin"],
        "10.0.0.2",
        "Bob failed to delete a customer",
    ),
    "e5": _doc(
        "2024-03-02T10:00:00+02:00",
        "carol",
        "read",
        "success",
        "c2",
        20,
        2000,
        0.2,
        ["pii"],
        "192.168.1.5",
        "Carol viewed billing history",
    ),
    "e6": _doc(
        "2024-03-03T12:00:00Z",
        "alice",
        "read",
        "success",
        "c3",
        7,
        700,
        0.15,
        None,
        "10.0.0.1",
        "Alice read ticket notes",
    ),
    "e7": _doc(
        1709467200000,
        "dave",
        "export",
        "failure",
        "c1",
        1000,
        99999,
        0.95,
        ["bulk"],
        None,
        "Dave attempted a bulk export",
    ),
    "e8": _doc(
        "2024-03-04T00:00:00Z",
        "carol",
        "update",
        "success",
        "c1",
        3,
        300,
        None,
        ["pii", "admin"],
        "192.168.1.5",
        "Carol updated customer address",
    ),
    # dotted keys in the source must index exactly like nested objects
    "e9": {
        "@timestamp": "2024-03-04T06:00:00Z",
        "event.action": "read",
        "event.outcome": "success",
        "customer.id": "c2",
        "records": 0,
        "bytes": 0,
        "risk_score": 0.0,
        "tags": ["system"],
        "source": {"ip": "10.0.0.9"},
        "message": "Nightly job read customer index",
    },
}


@pytest.fixture
def corpus(client):
    client.indices.create(index="access-events", mappings=MAPPINGS)
    ok, errors = helpers.bulk(client, ({"_index": "access-events", "_id": i, "_source": d} for i, d in CORPUS.items()))
    assert ok == len(CORPUS) and errors == []
    return "access-events"


def ids(resp):
    return {h["_id"] for h in resp["hits"]["hits"]}


def search_ids(client, query, index="access-events"):
    return ids(client.search(index=index, query=query, size=100))


# --------------------------------------------------------------------------- basics
def test_info_ping_and_product_header(es, client):
    info = client.info()
    assert info["version"]["number"] == "8.15.0"
    assert info["tagline"] == "You Know, for Search"
    assert client.ping() is True
    with urllib.request.urlopen(es.url + "/") as r:  # the client's product check relies on this header
        assert r.headers["X-Elastic-Product"] == "Elasticsearch"
    meta = client.options(ignore_status=404).indices.get(index="nope").meta
    assert meta.headers["x-elastic-product"] == "Elasticsearch"
    assert meta.headers["content-type"].startswith("application/vnd.elasticsearch+json")


def test_index_create_head_mapping_delete(client):
    client.indices.create(
        index="idx", mappings={"properties": {"n": {"type": "long"}}}, settings={"number_of_shards": 1}
    )
    assert client.indices.exists(index="idx")
    assert not client.indices.exists(index="other")
    with pytest.raises(elasticsearch.BadRequestError) as e:
        client.indices.create(index="idx")
    assert e.value.error == "resource_already_exists_exception"
    with pytest.raises(elasticsearch.BadRequestError) as e:
        client.indices.create(index="Bad")
    assert e.value.error == "invalid_index_name_exception"
    client.index(index="idx", id="1", document={"n": 1, "s": "text", "when": "2024-01-01T00:00:00Z", "f": 1.5})
    props = client.indices.get_mapping(index="idx")["idx"]["mappings"]["properties"]
    assert props == {"n": {"type": "long"}, "s": {"type": "keyword"}, "when": {"type": "date"}, "f": {"type": "float"}}
    assert client.indices.get_settings(index="idx")["idx"]["settings"]["index"]["number_of_shards"] == "1"
    client.indices.delete(index="idx")
    with pytest.raises(elasticsearch.NotFoundError) as e:
        client.indices.delete(index="idx")
    assert e.value.error == "index_not_found_exception"
    with pytest.raises(elasticsearch.NotFoundError) as e:
        client.search(index="idx")
    assert e.value.body["error"]["root_cause"][0]["type"] == "index_not_found_exception"
    assert e.value.body["status"] == 404


def test_document_crud_versions_and_404_shapes(client):
    r = client.index(index="docs", id="a", document={"x": 1})
    assert (r["result"], r["_version"], r["_seq_no"]) == ("created", 1, 0)
    r = client.index(index="docs", id="a", document={"x": 2})
    assert (r["result"], r["_version"], r["_seq_no"]) == ("updated", 2, 1)
    got = client.get(index="docs", id="a")
    assert got["found"] and got["_source"] == {"x": 2} and got["_version"] == 2
    with pytest.raises(elasticsearch.NotFoundError) as e:
        client.get(index="docs", id="missing")
    assert e.value.body == {"_index": "docs", "_id": "missing", "found": False}
    with pytest.raises(elasticsearch.ConflictError) as e:
        client.create(index="docs", id="a", document={"x": 3})
    assert e.value.error == "version_conflict_engine_exception"
    with pytest.raises(elasticsearch.ConflictError):
        client.index(index="docs", id="a", document={"x": 3}, if_seq_no=0, if_primary_term=1)
    client.index(index="docs", id="a", document={"x": 3}, if_seq_no=1, if_primary_term=1)
    assert client.exists(index="docs", id="a")
    assert client.delete(index="docs", id="a")["result"] == "deleted"
    assert not client.exists(index="docs", id="a")
    with pytest.raises(elasticsearch.NotFoundError) as e:
        client.delete(index="docs", id="a")
    assert e.value.body["result"] == "not_found"
    auto = client.index(index="docs", document={"x": 9})
    assert auto["result"] == "created" and len(auto["_id"]) == 20


def test_mapping_conflicts_are_rejected_like_es(client):
    client.indices.create(
        index="typed", mappings={"dynamic": "strict", "properties": {"n": {"type": "long"}, "when": {"type": "date"}}}
    )
    with pytest.raises(elasticsearch.BadRequestError) as e:
        client.index(index="typed", id="1", document={"n": "abc"})
    assert e.value.error == "document_parsing_exception"
    with pytest.raises(elasticsearch.BadRequestError) as e:
        client.index(index="typed", id="1", document={"when": "yesterday"})
    assert e.value.error == "document_parsing_exception"
    with pytest.raises(elasticsearch.BadRequestError) as e:
        client.index(index="typed", id="1", document={"other": 1})
    assert e.value.error == "strict_dynamic_mapping_exception"
    assert client.index(index="typed", id="1", document={"n": "42"})["result"] == "created"  # coerced
    assert search_ids(client, {"term": {"n": 42}}, "typed") == {"1"}
    # ES 8 mapping validation: no type wrapper, known field types, no type changes
    with pytest.raises(elasticsearch.BadRequestError) as e:
        client.indices.create(index="typed7", mappings={"_doc": {"properties": {"n": {"type": "long"}}}})
    assert e.value.error == "mapper_parsing_exception"
    with pytest.raises(elasticsearch.BadRequestError) as e:
        client.indices.create(index="typed8", mappings={"properties": {"n": {"type": "string"}}})
    assert e.value.error == "mapper_parsing_exception"
    with pytest.raises(elasticsearch.BadRequestError) as e:
        client.indices.put_mapping(index="typed", properties={"n": {"type": "keyword"}})
    assert "cannot be changed from type [long] to [keyword]" in e.value.body["error"]["reason"]
    client.indices.put_mapping(index="typed", properties={"label": {"type": "keyword"}})
    assert client.index(index="typed", id="2", document={"label": "x"})["result"] == "created"
    assert not client.indices.exists(index="typed-*")


def test_dynamic_strings_as_text_like_default_es():
    with FakeElasticsearch(dynamic_strings="text") as es:
        c = Elasticsearch(es.url)
        c.index(index="dyn", id="1", document={"name": "Alice Smith"})
        props = c.indices.get_mapping(index="dyn")["dyn"]["mappings"]["properties"]
        assert props["name"] == {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}
        assert search_ids(c, {"term": {"name": "Alice Smith"}}, "dyn") == set()  # analyzed: tokens are lowercase
        assert search_ids(c, {"term": {"name": "alice"}}, "dyn") == {"1"}
        assert search_ids(c, {"term": {"name.keyword": "Alice Smith"}}, "dyn") == {"1"}
        aggs = c.search(index="dyn", size=0, aggs={"n": {"terms": {"field": "name.keyword"}}})["aggregations"]
        assert aggs["n"]["buckets"] == [{"key": "Alice Smith", "doc_count": 1}]
        c.close()


# --------------------------------------------------------------------------- templates / data streams
def test_index_template_data_stream_autocreate_and_create_only(client):
    client.ilm.put_lifecycle(
        name="access-policy", policy={"phases": {"hot": {"actions": {"rollover": {"max_age": "1d"}}}}}
    )
    client.indices.put_index_template(
        name="access-logs",
        index_patterns=["logs-access-*"],
        priority=200,
        data_stream={},
        template={"settings": {"index.lifecycle.name": "access-policy"}, "mappings": MAPPINGS},
    )
    tpl = client.indices.get_index_template(name="access-logs")["index_templates"][0]["index_template"]
    assert tpl["index_patterns"] == ["logs-access-*"] and tpl["priority"] == 200
    assert tpl["template"]["settings"] == {"index": {"lifecycle": {"name": "access-policy"}}}
    assert "data_stream" in tpl

    r = client.index(index="logs-access-default", id="e1", document=CORPUS["e1"], op_type="create")
    backing = r["_index"]
    assert backing.startswith(".ds-logs-access-default-") and backing.endswith("-000001")
    ds = client.indices.get_data_stream(name="logs-access-default")["data_streams"][0]
    assert ds["name"] == "logs-access-default" and ds["template"] == "access-logs"
    assert ds["timestamp_field"] == {"name": "@timestamp"}
    assert [i["index_name"] for i in ds["indices"]] == [backing]
    assert ds["ilm_policy"] == "access-policy"

    # data streams accept only op_type=create
    with pytest.raises(elasticsearch.BadRequestError) as e:
        client.index(index="logs-access-default", id="x", document=CORPUS["e2"])
    assert "only write ops with an op_type of create are allowed in data streams" in str(e.value.body)
    with pytest.raises(elasticsearch.ConflictError):
        client.create(index="logs-access-default", id="e1", document=CORPUS["e1"])
    with pytest.raises(elasticsearch.BadRequestError) as e:
        client.create(index="logs-access-default", id="nots", document={"user": {"id": "x"}})
    assert e.value.error == "document_parsing_exception"
    assert "@timestamp" in e.value.body["error"]["reason"]
    res = helpers.bulk(
        client,
        [
            {"_op_type": "create", "_index": "logs-access-default", "_id": i, "_source": d}
            for i, d in CORPUS.items()
            if i != "e1"
        ],
    )
    assert res == (8, [])
    assert client.count(index="logs-access-default")["count"] == 9
    assert search_ids(client, {"term": {"user.id": "alice"}}, "logs-access-*") == {"e1", "e2", "e6"}
    mapping = client.indices.get_mapping(index="logs-access-default")[backing]["mappings"]
    assert mapping["_data_stream_timestamp"] == {"enabled": True}
    assert mapping["properties"]["records"] == {"type": "long"}
    assert (
        client.indices.get_settings(index=backing)[backing]["settings"]["index"]["lifecycle"]["name"] == "access-policy"
    )

    # a plain index may not be created under a data-stream template
    with pytest.raises(elasticsearch.BadRequestError):
        client.indices.create(index="logs-access-plain")
    # explicit data stream API, rollover, delete
    client.indices.create_data_stream(name="logs-access-explicit")
    with pytest.raises(elasticsearch.BadRequestError) as e:
        client.indices.create_data_stream(name="logs-access-explicit")
    assert e.value.error == "resource_already_exists_exception"
    roll = client.indices.rollover(alias="logs-access-explicit")
    assert roll["new_index"].endswith("-000002")
    names = {d["name"] for d in client.indices.get_data_stream(name="logs-access-*")["data_streams"]}
    assert names == {"logs-access-default", "logs-access-explicit"}
    with pytest.raises(elasticsearch.BadRequestError):
        client.indices.delete_index_template(name="access-logs")  # in use
    client.indices.delete_data_stream(name="logs-access-explicit")
    with pytest.raises(elasticsearch.NotFoundError):
        client.indices.get_data_stream(name="logs-access-explicit")
    with pytest.raises(elasticsearch.BadRequestError):
        client.indices.create_data_stream(name="no-template-here")


def test_template_priority_conflict_and_component_templates(client):
    client.cluster.put_component_template(
        name="ecs-base", template={"mappings": {"properties": {"user": {"properties": {"id": {"type": "keyword"}}}}}}
    )
    client.indices.put_index_template(
        name="a",
        index_patterns=["app-*"],
        composed_of=["ecs-base"],
        template={"mappings": {"properties": {"n": {"type": "integer"}}}},
    )
    with pytest.raises(elasticsearch.BadRequestError) as e:
        client.indices.put_index_template(name="b", index_patterns=["app-*"])
    assert "same priority" in e.value.body["error"]["reason"]
    client.indices.put_index_template(
        name="b", index_patterns=["app-x*"], priority=5, template={"settings": {"number_of_replicas": 0}}
    )
    client.index(index="app-1", id="1", document={"user": {"id": 7}, "n": "5"})
    props = client.indices.get_mapping(index="app-1")["app-1"]["mappings"]["properties"]
    assert props["user"]["properties"]["id"] == {"type": "keyword"} and props["n"] == {"type": "integer"}
    assert search_ids(client, {"term": {"user.id": "7"}}, "app-1") == {"1"}
    client.index(index="app-x1", id="1", document={"n": "5"})  # template b wins: no mapping for n -> keyword
    assert client.indices.get_mapping(index="app-x1")["app-x1"]["mappings"]["properties"]["n"] == {"type": "keyword"}
    with pytest.raises(elasticsearch.NotFoundError):
        client.indices.get_index_template(name="nope")


def test_ilm_policy_round_trip(client):
    policy = {
        "phases": {
            "hot": {"actions": {"rollover": {"max_age": "1d", "max_primary_shard_size": "50gb"}}},
            "delete": {"min_age": "30d", "actions": {"delete": {}}},
        }
    }
    assert client.ilm.put_lifecycle(name="p1", policy=policy)["acknowledged"] is True
    got = client.ilm.get_lifecycle(name="p1")["p1"]
    assert got["version"] == 1
    assert got["policy"]["phases"]["hot"] == {
        "min_age": "0ms",
        "actions": {"rollover": {"max_age": "1d", "max_primary_shard_size": "50gb"}},
    }
    assert got["policy"]["phases"]["delete"] == policy["phases"]["delete"]
    client.ilm.put_lifecycle(name="p1", policy=policy)
    assert client.ilm.get_lifecycle(name="p1")["p1"]["version"] == 2
    client.indices.put_index_template(
        name="t", index_patterns=["x-*"], template={"settings": {"index.lifecycle.name": "p1"}}
    )
    assert client.ilm.get_lifecycle(name="p1")["p1"]["in_use_by"]["composable_templates"] == ["t"]
    assert set(client.ilm.get_lifecycle()) == {"p1"}
    with pytest.raises(elasticsearch.NotFoundError):
        client.ilm.get_lifecycle(name="nope")
    client.ilm.delete_lifecycle(name="p1")
    with pytest.raises(elasticsearch.NotFoundError):
        client.ilm.get_lifecycle(name="p1")


# --------------------------------------------------------------------------- bulk / update
def test_bulk_create_duplicates_give_per_item_409(client):
    ops = [
        {"create": {"_index": "b", "_id": "1"}},
        {"v": 1},
        {"create": {"_index": "b", "_id": "2"}},
        {"v": 2},
        {"create": {"_index": "b", "_id": "1"}},
        {"v": 3},
        {"index": {"_index": "b", "_id": "3"}},
        {"v": 4},
        {"delete": {"_index": "b", "_id": "404"}},
    ]
    r = client.bulk(operations=ops)
    assert r["errors"] is True
    statuses = [next(iter(it.values()))["status"] for it in r["items"]]
    assert statuses == [201, 201, 409, 201, 404]
    dup = r["items"][2]["create"]
    assert dup["error"]["type"] == "version_conflict_engine_exception"
    assert dup["error"]["reason"] == "[1]: version conflict, document already exists (current version [1])"
    assert "error" not in r["items"][4]["delete"] and r["items"][4]["delete"]["result"] == "not_found"
    assert client.get(index="b", id="1")["_source"] == {"v": 1}
    r2 = client.bulk(operations=[{"index": {"_id": "4"}}, {"v": 5}], index="b", refresh=True)
    assert r2["errors"] is False and r2["items"][0]["index"]["forced_refresh"] is True
    ok, errs = helpers.bulk(client, [{"_op_type": "create", "_index": "b", "_id": "2", "v": 0}], raise_on_error=False)
    assert ok == 0 and errs[0]["create"]["status"] == 409
    with pytest.raises(elasticsearch.BadRequestError):
        client.bulk(operations=[{"explode": {"_index": "b"}}, {"v": 1}])


def test_update_partial_doc_as_upsert_and_upsert(client):
    client.index(index="u", id="1", document={"user": {"id": "a", "name": "A"}, "n": 1, "tags": ["x"]})
    r = client.update(index="u", id="1", doc={"user": {"name": "B"}, "tags": ["y"]})
    assert r["result"] == "updated" and r["_version"] == 2
    assert client.get(index="u", id="1")["_source"] == {"user": {"id": "a", "name": "B"}, "n": 1, "tags": ["y"]}
    assert client.update(index="u", id="1", doc={"n": 1})["result"] == "noop"
    with pytest.raises(elasticsearch.NotFoundError) as e:
        client.update(index="u", id="2", doc={"n": 2})
    assert e.value.error == "document_missing_exception"
    r = client.update(index="u", id="2", doc={"n": 2}, doc_as_upsert=True)
    assert r["result"] == "created" and r.meta.status == 201
    r = client.update(index="u", id="3", doc={"n": 99}, upsert={"n": 3})
    assert client.get(index="u", id="3")["_source"] == {"n": 3}
    client.update(index="u", id="3", doc={"n": 99}, upsert={"n": 3})
    assert client.get(index="u", id="3")["_source"] == {"n": 99}
    r = client.bulk(
        operations=[
            {"update": {"_index": "u", "_id": "4"}},
            {"doc": {"n": 4}, "doc_as_upsert": True},
            {"update": {"_index": "u", "_id": "5"}},
            {"doc": {"n": 5}},
            {"update": {"_index": "u", "_id": "1"}},
            {"doc": {"n": 10}},
        ]
    )
    assert [it["update"]["status"] for it in r["items"]] == [201, 404, 200]
    assert r["errors"] is True and r["items"][1]["update"]["error"]["type"] == "document_missing_exception"
    assert search_ids(client, {"range": {"n": {"gte": 4}}}, "u") == {"1", "3", "4"}
    assert [h["_source"]["n"] for h in client.search(index="u", sort=[{"n": "asc"}])["hits"]["hits"]] == [2, 4, 10, 99]


# --------------------------------------------------------------------------- queries
QUERY_CASES = [
    ({"match_all": {}}, set(CORPUS)),
    ({"match_none": {}}, set()),
    ({"term": {"user.id": "alice"}}, {"e1", "e2", "e6"}),
    ({"term": {"user.id": {"value": "ALICE", "case_insensitive": True}}}, {"e1", "e2", "e6"}),
    ({"term": {"event.action": "read"}}, {"e1", "e3", "e5", "e6", "e9"}),  # e9 uses dotted keys
    ({"terms": {"event.action": ["export", "delete"]}}, {"e2", "e4", "e7"}),
    ({"terms": {"tags": ["bulk"]}}, {"e2", "e7"}),
    ({"term": {"records": "10"}}, {"e1"}),
    ({"term": {"source.ip": "10.0.0.2"}}, {"e3", "e4"}),
    ({"term": {"risk_score": 0.9}}, {"e4"}),
    ({"range": {"@timestamp": {"gte": "2024-03-02T00:00:00Z", "lt": "2024-03-03T12:00:00Z"}}}, {"e4", "e5"}),
    ({"range": {"@timestamp": {"gte": 1709467200000}}}, {"e6", "e7", "e8", "e9"}),
    ({"range": {"@timestamp": {"gt": "2024-03-03T12:00:00.000+00:00"}}}, {"e8", "e9"}),
    ({"range": {"@timestamp": {"lte": "2024-03-01"}}}, {"e1", "e2", "e3"}),  # missing time rounds up on lte
    ({"range": {"@timestamp": {"gte": "2024-03-03T12:00:00Z||-1d/d"}}}, {"e4", "e5", "e6", "e7", "e8", "e9"}),
    ({"range": {"@timestamp": {"gte": "01/03/2024", "lt": "02/03/2024", "format": "dd/MM/yyyy"}}}, {"e1", "e2", "e3"}),
    (
        {"range": {"@timestamp": {"gte": "2024-03-02T00:00:00", "time_zone": "+02:00", "lt": "2024-03-03"}}},
        {"e3", "e4", "e5"},
    ),
    ({"range": {"@timestamp": {"lt": "now-1d/d"}}}, set(CORPUS)),
    ({"range": {"@timestamp": {"gte": "now-15m"}}}, set()),
    ({"range": {"records": {"gt": 5, "lte": 500}}}, {"e1", "e2", "e5", "e6"}),
    ({"range": {"risk_score": {"gte": 0.9}}}, {"e4", "e7"}),
    ({"range": {"customer.id": {"gte": "c2"}}}, {"e2", "e4", "e5", "e6", "e9"}),
    (
        {
            "bool": {
                "must": [{"term": {"event.outcome": "success"}}],
                "filter": [{"range": {"records": {"gte": 5}}}],
                "should": [{"term": {"user.id": "alice"}}, {"term": {"tags": "pii"}}],
                "minimum_should_match": 1,
                "must_not": [{"term": {"customer.id": "c3"}}],
            }
        },
        {"e1", "e2", "e5"},
    ),
    ({"bool": {"should": [{"term": {"user.id": "dave"}}, {"term": {"event.action": "delete"}}]}}, {"e4", "e7"}),
    (
        {
            "bool": {
                "should": [{"term": {"tags": "pii"}}, {"term": {"tags": "admin"}}, {"term": {"user.id": "carol"}}],
                "minimum_should_match": 2,
            }
        },
        {"e5", "e8"},
    ),
    ({"bool": {"filter": {"term": {"user.id": "bob"}}, "should": [{"term": {"tags": "nothing"}}]}}, {"e3", "e4"}),
    ({"bool": {"must_not": [{"exists": {"field": "risk_score"}}]}}, {"e8"}),
    ({"exists": {"field": "tags"}}, {"e1", "e2", "e4", "e5", "e7", "e8", "e9"}),
    ({"exists": {"field": "user"}}, set(CORPUS) - {"e9"}),
    ({"ids": {"values": ["e1", "e9", "nope"]}}, {"e1", "e9"}),
    ({"prefix": {"user.id": "ca"}}, {"e5", "e8"}),
    ({"prefix": {"message": {"value": "cust"}}}, {"e1", "e2", "e3", "e4", "e8", "e9"}),
    ({"wildcard": {"event.action": {"value": "*port"}}}, {"e2", "e7"}),
    ({"wildcard": {"user.id": "?o?"}}, {"e3", "e4"}),
    ({"regexp": {"user.id": "a.*|d.*"}}, {"e1", "e2", "e6", "e7"}),
    ({"match": {"message": "customer profile"}}, {"e1", "e2", "e3", "e4", "e8", "e9"}),
    ({"match": {"message": {"query": "Customer PROFILE", "operator": "and"}}}, {"e1", "e3"}),
    ({"match": {"user.id": "alice"}}, {"e1", "e2", "e6"}),
    ({"match": {"user.id": "Alice"}}, set()),  # keyword: exact
    ({"match_phrase": {"message": "read customer"}}, {"e1", "e3", "e9"}),
    ({"term": {"no.such.field": "x"}}, set()),
    ({"constant_score": {"filter": {"term": {"user.id": "dave"}}, "boost": 2}}, {"e7"}),
]


@pytest.mark.parametrize("query,expected", QUERY_CASES, ids=[str(i) for i in range(len(QUERY_CASES))])
def test_query_dsl(client, corpus, query, expected):
    assert search_ids(client, query) == expected
    assert client.count(index=corpus, query=query)["count"] == len(expected)


def test_scores_sizes_and_source_filtering(client, corpus):
    r = client.search(index=corpus, query={"bool": {"filter": [{"term": {"user.id": "alice"}}]}})
    assert r["hits"]["max_score"] == 0.0 and {h["_score"] for h in r["hits"]["hits"]} == {0.0}
    r = client.search(index=corpus, query={"constant_score": {"filter": {"term": {"user.id": "dave"}}, "boost": 2}})
    assert r["hits"]["hits"][0]["_score"] == 2.0
    r = client.search(index=corpus, query={"match": {"message": "customer profile"}}, size=2)
    assert [h["_id"] for h in r["hits"]["hits"]] == ["e1", "e3"]  # two matching terms outrank one
    assert r["hits"]["total"] == {"value": 6, "relation": "eq"}
    r = client.search(index=corpus, size=2, from_=8, sort=["_doc"])
    assert [h["_id"] for h in r["hits"]["hits"]] == ["e9"]
    r = client.search(
        index=corpus,
        query={"ids": {"values": ["e1"]}},
        source_includes=["user.*", "event.action"],
        source_excludes=["user.name"],
    )
    assert r["hits"]["hits"][0]["_source"] == {"user": {"id": "alice"}, "event": {"action": "read"}}
    r = client.search(index=corpus, query={"ids": {"values": ["e9"]}}, source=["event.*", "customer"])
    assert r["hits"]["hits"][0]["_source"] == {"event.action": "read", "event.outcome": "success", "customer.id": "c2"}
    r = client.search(index=corpus, query={"ids": {"values": ["e1"]}}, source=False)
    assert "_source" not in r["hits"]["hits"][0]
    r = client.search(index=corpus, query={"ids": {"values": ["e5"]}}, fields=["@timestamp", "user.*"], source=False)
    assert r["hits"]["hits"][0]["fields"] == {"@timestamp": ["2024-03-02T08:00:00.000Z"], "user.id": ["carol"]}
    r = client.options(opaque_id="trace-1").search(index=corpus, size=0)
    assert r.meta.headers["x-opaque-id"] == "trace-1"
    r = client.search(index=corpus, track_total_hits=False)
    assert "total" not in r["hits"]
    r = client.search(index=corpus, track_total_hits=3, size=0)
    assert r["hits"]["total"] == {"value": 3, "relation": "gte"} and r["hits"]["hits"] == []
    with pytest.raises(elasticsearch.BadRequestError) as e:
        client.search(index=corpus, from_=9990, size=20)
    assert "Result window is too large" in str(e.value.body)
    with pytest.raises(elasticsearch.BadRequestError) as e:
        client.search(index=corpus, query={"bogus": {}})
    assert e.value.error == "parsing_exception"
    with pytest.raises(elasticsearch.BadRequestError):
        client.search(index=corpus, query={"term": {"records": "not-a-number"}})
    with pytest.raises(elasticsearch.BadRequestError) as e:
        client.search(index=corpus, sort=["message"])
    assert "Fielddata is disabled" in str(e.value.body)
    with pytest.raises(elasticsearch.BadRequestError) as e:
        client.search(index=corpus, sort=["unmapped_field"])
    assert "No mapping found for [unmapped_field]" in str(e.value.body)
    r = client.search(index=corpus, sort=[{"unmapped_field": {"order": "asc", "unmapped_type": "long"}}], size=1)
    assert r["hits"]["hits"][0]["sort"] == [9223372036854775807]


def test_multi_index_wildcards_and_aliases(client, corpus):
    client.index(index="access-events-old", id="old1", document={"user": {"id": "alice"}}, refresh=True)
    assert search_ids(client, {"term": {"user.id": "alice"}}, "access-*") == {"e1", "e2", "e6", "old1"}
    assert search_ids(client, {"term": {"user.id": "alice"}}, "access-events,access-events-old") == {
        "e1",
        "e2",
        "e6",
        "old1",
    }
    assert search_ids(client, {"term": {"user.id": "alice"}}, "access-*,-access-events-old") == {"e1", "e2", "e6"}
    assert search_ids(client, {"match_all": {}}, "nothing-*") == set()
    assert search_ids(client, {"terms": {"_id": ["old1", "e2"]}}, "access-*") == {"old1", "e2"}
    assert search_ids(client, {"term": {"_index": "access-events-old"}}, "access-*") == {"old1"}
    per_index = client.search(index="access-*", size=0, aggs={"i": {"terms": {"field": "_index"}}})["aggregations"]
    assert per_index["i"]["buckets"] == [
        {"key": "access-events", "doc_count": 9},
        {"key": "access-events-old", "doc_count": 1},
    ]
    client.indices.put_alias(index="access-events-old", name="archive")
    assert search_ids(client, {"match_all": {}}, "archive") == {"old1"}
    hits = client.search(index="access-*", query={"ids": {"values": ["old1", "e1"]}})["hits"]["hits"]
    assert {(h["_index"], h["_id"]) for h in hits} == {("access-events-old", "old1"), ("access-events", "e1")}
    with pytest.raises(elasticsearch.BadRequestError):
        client.indices.delete(index="access-*")  # action.destructive_requires_name


# --------------------------------------------------------------------------- sorting / paging
def test_sort_values_missing_and_modes(client, corpus):
    r = client.search(index=corpus, sort=[{"@timestamp": "desc"}, {"event.action": "asc"}], size=3)
    assert [h["_id"] for h in r["hits"]["hits"]] == ["e9", "e8", "e7"]
    assert r["hits"]["hits"][0]["sort"] == [1709532000000, "read"]
    assert r["hits"]["hits"][0]["_score"] is None and r["hits"]["max_score"] is None
    r = client.search(index=corpus, sort=[{"risk_score": {"order": "asc"}}], size=100)
    assert r["hits"]["hits"][-1]["_id"] == "e8" and r["hits"]["hits"][-1]["sort"] == ["Infinity"]
    r = client.search(index=corpus, sort=[{"risk_score": {"order": "desc", "missing": "_first"}}], size=2)
    assert [h["_id"] for h in r["hits"]["hits"]] == ["e8", "e7"]
    r = client.search(index=corpus, sort=[{"user.id": "asc"}], size=100)
    assert r["hits"]["hits"][-1]["_id"] == "e9" and r["hits"]["hits"][-1]["sort"] == [None]
    r = client.search(index=corpus, sort=[{"tags": {"order": "desc"}}], size=2)  # desc uses the max value
    assert [h["_id"] for h in r["hits"]["hits"]] == ["e9", "e1"] and r["hits"]["hits"][0]["sort"] == ["system"]
    r = client.search(index=corpus, sort="records:desc", size=1)
    assert r["hits"]["hits"][0]["_id"] == "e7"
    r = client.search(
        index=corpus, sort=[{"@timestamp": {"order": "asc", "format": "strict_date_optional_time"}}], size=1
    )
    assert r["hits"]["hits"][0]["sort"] == ["2024-03-01T08:15:00.000Z"]


def _tie_corpus(client, n=30):
    client.indices.create(
        index="ties",
        mappings={"properties": {"@timestamp": {"type": "date"}, "event": {"properties": {"id": {"type": "keyword"}}}}},
    )
    docs = [
        {"_index": "ties", "_id": f"d{i}", "@timestamp": MAR_1 + (i % 5) * 60_000, "event": {"id": f"evt-{i:03d}"}}
        for i in range(n)
    ]
    helpers.bulk(client, docs, refresh=True)
    return docs


def test_search_after_over_ties_returns_every_doc_once(client):
    docs = _tie_corpus(client)
    expected = [d["_id"] for d in sorted(docs, key=lambda d: (-d["@timestamp"], d["event"]["id"]))]
    seen, after = [], None
    while True:
        kw = {"search_after": after} if after else {}
        r = client.search(index="ties", size=7, sort=[{"@timestamp": "desc"}, {"event.id": "asc"}], **kw)
        hits = r["hits"]["hits"]
        if not hits:
            break
        seen += [h["_id"] for h in hits]
        after = hits[-1]["sort"]
        assert isinstance(after[0], int)  # dates sort as epoch millis
    assert seen == expected
    # date strings are accepted as search_after values for date fields, too
    r = client.search(
        index="ties",
        size=100,
        sort=[{"@timestamp": "desc"}, {"event.id": "asc"}],
        search_after=["2024-03-01T00:02:00.000Z", "evt-012"],
    )
    assert [h["_id"] for h in r["hits"]["hits"]] == expected[expected.index("d17") :]
    with pytest.raises(elasticsearch.BadRequestError):
        client.search(index="ties", sort=[{"@timestamp": "desc"}], search_after=[1, "x"])


def test_point_in_time_paging_with_shard_doc_tiebreaker(client):
    docs = _tie_corpus(client)
    pit = client.open_point_in_time(index="ties", keep_alive="1m")["id"]
    client.index(index="ties", id="late", document={"@timestamp": MAR_1, "event": {"id": "late"}}, refresh=True)
    client.delete(index="ties", id="d0", refresh=True)
    seen, after = [], None
    while True:
        kw = {"search_after": after} if after else {}
        r = client.search(pit={"id": pit, "keep_alive": "1m"}, size=4, sort=[{"@timestamp": "asc"}], **kw)
        hits = r["hits"]["hits"]
        if not hits:
            break
        assert len(hits[0]["sort"]) == 2  # implicit _shard_doc tiebreaker
        seen += [h["_id"] for h in hits]
        after = hits[-1]["sort"]
        pit = r["pit_id"]
    assert sorted(seen) == sorted(d["_id"] for d in docs)  # snapshot: "late" absent, deleted d0 present
    assert len(seen) == len(set(seen))
    assert client.close_point_in_time(id=pit)["succeeded"] is True
    with pytest.raises(elasticsearch.BadRequestError):
        client.search(index="ties", sort=["_shard_doc"])  # needs a PIT, like ES


def test_scroll_via_helpers_scan(client):
    docs = _tie_corpus(client, 25)
    got = [h["_id"] for h in helpers.scan(client, index="ties", size=4, query={"query": {"match_all": {}}})]
    assert sorted(got) == sorted(d["_id"] for d in docs)


# --------------------------------------------------------------------------- aggregations
def _aggs(client, aggs, query=None):
    return client.search(index="access-events", size=0, aggs=aggs, query=query or {"match_all": {}})["aggregations"]


def test_terms_aggregations(client, corpus):
    a = _aggs(
        client,
        {
            "users": {"terms": {"field": "user.id", "size": 2}},
            "users_missing": {"terms": {"field": "user.id", "missing": "none", "size": 10}},
            "actions": {"terms": {"field": "event.action", "order": {"_key": "asc"}}},
            "tags": {"terms": {"field": "tags"}},
            "top": {
                "terms": {"field": "user.id", "order": {"total": "desc"}},
                "aggs": {"total": {"sum": {"field": "records"}}},
            },
            "nothing": {"terms": {"field": "unmapped"}},
        },
    )
    assert a["users"] == {
        "doc_count_error_upper_bound": 0,
        "sum_other_doc_count": 3,
        "buckets": [{"key": "alice", "doc_count": 3}, {"key": "bob", "doc_count": 2}],
    }
    assert {"key": "none", "doc_count": 1} in a["users_missing"]["buckets"]
    assert [(b["key"], b["doc_count"]) for b in a["actions"]["buckets"]] == [
        ("delete", 1),
        ("export", 2),
        ("read", 5),
        ("update", 1),
    ]
    assert [(b["key"], b["doc_count"]) for b in a["tags"]["buckets"]] == [
        ("pii", 4),
        ("admin", 2),
        ("bulk", 2),
        ("system", 1),
    ]
    assert [(b["key"], b["total"]["value"]) for b in a["top"]["buckets"]] == [
        ("dave", 1000.0),
        ("alice", 517.0),
        ("carol", 23.0),
        ("bob", 6.0),
    ]
    assert a["nothing"]["buckets"] == []


def test_date_histogram_aggregations(client, corpus):
    a = _aggs(
        client,
        {
            "per_day": {"date_histogram": {"field": "@timestamp", "calendar_interval": "day"}},
            "per_day_tz": {"date_histogram": {"field": "@timestamp", "calendar_interval": "1d", "time_zone": "+02:00"}},
            "per_12h": {"date_histogram": {"field": "@timestamp", "fixed_interval": "12h"}},
            "per_12h_nonempty": {
                "date_histogram": {"field": "@timestamp", "fixed_interval": "12h", "min_doc_count": 1}
            },
            "bounded": {
                "date_histogram": {
                    "field": "@timestamp",
                    "calendar_interval": "day",
                    "extended_bounds": {"min": "2024-02-29", "max": "2024-03-05"},
                }
            },
            "weekly": {"date_histogram": {"field": "@timestamp", "calendar_interval": "week"}},
        },
    )
    assert a["per_day"]["buckets"] == [
        {"key_as_string": "2024-03-01T00:00:00.000Z", "key": MAR_1, "doc_count": 3},
        {"key_as_string": "2024-03-02T00:00:00.000Z", "key": MAR_1 + DAY, "doc_count": 2},
        {"key_as_string": "2024-03-03T00:00:00.000Z", "key": MAR_1 + 2 * DAY, "doc_count": 2},
        {"key_as_string": "2024-03-04T00:00:00.000Z", "key": MAR_1 + 3 * DAY, "doc_count": 2},
    ]
    assert [(b["key_as_string"], b["doc_count"]) for b in a["per_day_tz"]["buckets"]] == [
        ("2024-03-01T00:00:00.000+02:00", 2),
        ("2024-03-02T00:00:00.000+02:00", 3),
        ("2024-03-03T00:00:00.000+02:00", 2),
        ("2024-03-04T00:00:00.000+02:00", 2),
    ]
    assert a["per_day_tz"]["buckets"][0]["key"] == MAR_1 - 7_200_000
    assert [b["doc_count"] for b in a["per_12h"]["buckets"]] == [2, 1, 2, 0, 0, 2, 2]
    assert [b["doc_count"] for b in a["per_12h_nonempty"]["buckets"]] == [2, 1, 2, 2, 2]
    assert [b["doc_count"] for b in a["bounded"]["buckets"]] == [0, 3, 2, 2, 2, 0]
    assert a["bounded"]["buckets"][0]["key_as_string"] == "2024-02-29T00:00:00.000Z"
    # 2024-03-01 is a Friday; ES weeks start on Monday (2024-02-26 and 2024-03-04)
    assert [(b["key_as_string"], b["doc_count"]) for b in a["weekly"]["buckets"]] == [
        ("2024-02-26T00:00:00.000Z", 7),
        ("2024-03-04T00:00:00.000Z", 2),
    ]
    with pytest.raises(elasticsearch.BadRequestError):
        _aggs(client, {"bad": {"date_histogram": {"field": "@timestamp", "interval": "1d"}}})


def test_histogram_range_filter_filters(client, corpus):
    a = _aggs(
        client,
        {
            "records": {"histogram": {"field": "records", "interval": 100}},
            "records_nonempty": {"histogram": {"field": "records", "interval": 100, "min_doc_count": 1}},
            "sizes": {"range": {"field": "bytes", "ranges": [{"to": 500}, {"from": 500, "to": 5000}, {"from": 5000}]}},
            "failures": {
                "filter": {"term": {"event.outcome": "failure"}},
                "aggs": {"records": {"sum": {"field": "records"}}},
            },
            "kinds": {
                "filters": {
                    "filters": {
                        "reads": {"term": {"event.action": "read"}},
                        "exports": {"term": {"event.action": "export"}},
                    },
                    "other_bucket": True,
                }
            },
        },
    )
    assert len(a["records"]["buckets"]) == 11
    assert a["records"]["buckets"][0] == {"key": 0.0, "doc_count": 7}
    assert [(b["key"], b["doc_count"]) for b in a["records_nonempty"]["buckets"]] == [(0.0, 7), (500.0, 1), (1000.0, 1)]
    assert a["sizes"]["buckets"] == [
        {"key": "*-500.0", "to": 500.0, "doc_count": 4},
        {"key": "500.0-5000.0", "from": 500.0, "to": 5000.0, "doc_count": 3},
        {"key": "5000.0-*", "from": 5000.0, "doc_count": 2},
    ]
    assert a["failures"] == {"doc_count": 2, "records": {"value": 1001.0}}
    assert a["kinds"]["buckets"] == {
        "reads": {"doc_count": 5},
        "exports": {"doc_count": 2},
        "_other_": {"doc_count": 2},
    }


def test_metric_aggregations(client, corpus):
    a = _aggs(
        client,
        {
            "users": {"cardinality": {"field": "user.id"}},
            "tag_values": {"value_count": {"field": "tags"}},
            "records_sum": {"sum": {"field": "records"}},
            "records_avg": {"avg": {"field": "records"}},
            "bytes_min": {"min": {"field": "bytes"}},
            "bytes_max": {"max": {"field": "bytes"}},
            "risk": {"stats": {"field": "risk_score"}},
            "first_seen": {"min": {"field": "@timestamp"}},
            "pct": {"percentiles": {"field": "records", "percents": [25, 50, 95]}},
            "empty_avg": {"avg": {"field": "unmapped"}},
        },
    )
    assert a["users"] == {"value": 4}
    assert a["tag_values"] == {"value": 9}
    assert a["records_sum"] == {"value": 1546.0}
    assert a["records_avg"]["value"] == pytest.approx(1546 / 9)
    assert a["bytes_min"] == {"value": 0.0} and a["bytes_max"] == {"value": 99999.0}
    assert a["risk"]["count"] == 8 and a["risk"]["min"] == 0.0
    assert a["risk"]["max"] == pytest.approx(0.95) and a["risk"]["sum"] == pytest.approx(3.05, abs=1e-6)
    assert a["first_seen"] == {"value": 1709280900000.0, "value_as_string": "2024-03-01T08:15:00.000Z"}
    # sorted records: [0, 1, 3, 5, 7, 10, 20, 500, 1000]; linear interpolation at q*(n-1)
    assert a["pct"]["values"] == {"25.0": 3.0, "50.0": 7.0, "95.0": pytest.approx(800.0)}
    assert a["empty_avg"] == {"value": None}
    with pytest.raises(elasticsearch.BadRequestError):
        _aggs(client, {"bad": {"sum": {"field": "user.id"}}})


def test_nested_aggregations_and_top_hits(client, corpus):
    a = _aggs(
        client,
        {
            "users": {
                "terms": {"field": "user.id"},
                "aggs": {
                    "latest": {
                        "top_hits": {
                            "size": 1,
                            "sort": [{"@timestamp": "desc"}],
                            "_source": {"includes": ["event.action"]},
                        }
                    },
                    "daily": {
                        "date_histogram": {"field": "@timestamp", "calendar_interval": "day"},
                        "aggs": {"max_bytes": {"max": {"field": "bytes"}}},
                    },
                },
            }
        },
    )
    alice = a["users"]["buckets"][0]
    assert alice["key"] == "alice"
    hit = alice["latest"]["hits"]["hits"][0]
    assert hit["_id"] == "e6" and hit["_source"] == {"event": {"action": "read"}} and hit["sort"] == [1709467200000]
    assert alice["latest"]["hits"]["total"] == {"value": 3, "relation": "eq"}
    assert [(b["doc_count"], b["max_bytes"]["value"]) for b in alice["daily"]["buckets"]] == [
        (2, 50000.0),
        (0, None),
        (1, 700.0),
    ]
    filtered = _aggs(client, {"n": {"terms": {"field": "user.id"}}}, query={"term": {"event.outcome": "failure"}})
    assert [(b["key"], b["doc_count"]) for b in filtered["n"]["buckets"]] == [("bob", 1), ("dave", 1)]


def test_composite_aggregation_pages(client, corpus):
    seen, after = {}, None
    while True:
        comp = {
            "sources": [{"user": {"terms": {"field": "user.id"}}}, {"action": {"terms": {"field": "event.action"}}}],
            "size": 2,
        }
        if after:
            comp["after"] = after
        res = _aggs(client, {"c": {"composite": comp}})["c"]
        if not res["buckets"]:
            break
        for b in res["buckets"]:
            seen[(b["key"]["user"], b["key"]["action"])] = b["doc_count"]
        after = res["after_key"]
    assert seen == {
        ("alice", "export"): 1,
        ("alice", "read"): 2,
        ("bob", "delete"): 1,
        ("bob", "read"): 1,
        ("carol", "read"): 1,
        ("carol", "update"): 1,
        ("dave", "export"): 1,
    }


# --------------------------------------------------------------------------- count / by-query / refresh
def test_count_and_delete_by_query(client, corpus):
    assert client.count(index=corpus)["count"] == 9
    assert client.count(index=corpus, query={"term": {"user.id": "alice"}})["count"] == 3
    r = client.delete_by_query(index=corpus, query={"range": {"@timestamp": {"lt": "2024-03-02"}}}, refresh=True)
    assert r["deleted"] == 3 and r["total"] == 3 and r["failures"] == []
    assert client.count(index=corpus)["count"] == 6
    assert search_ids(client, {"term": {"user.id": "alice"}}) == {"e6"}
    r = client.update_by_query(index=corpus, query={"term": {"user.id": "carol"}})
    assert r["updated"] == 2
    assert client.get(index=corpus, id="e5")["_version"] == 2


def test_near_real_time_refresh_semantics():
    with FakeElasticsearch(realtime=False, refresh_interval=None) as es:
        c = Elasticsearch(es.url)
        c.index(index="nrt", id="1", document={"v": 1})
        assert c.count(index="nrt")["count"] == 0  # not yet refreshed
        assert c.get(index="nrt", id="1")["_source"] == {"v": 1}  # GET is real-time
        c.indices.refresh(index="nrt")
        assert c.count(index="nrt")["count"] == 1
        c.index(index="nrt", id="2", document={"v": 2}, refresh="wait_for")
        assert c.count(index="nrt")["count"] == 2
        c.delete(index="nrt", id="1")
        assert c.count(index="nrt")["count"] == 2  # deletes become visible at refresh too
        helpers.bulk(c, [{"_index": "nrt", "_id": "3", "v": 3}], refresh=True)
        assert c.count(index="nrt")["count"] == 2
        assert sorted(d["v"] for d in es.documents("nrt")) == [2, 3]
        c.close()


# --------------------------------------------------------------------------- failures
def test_fail_next_429_is_an_api_error(es, client):
    client.indices.create(index="f")
    no_retry = Elasticsearch(es.url, max_retries=0)
    es.fail_next(1, status=429)
    with pytest.raises(elasticsearch.ApiError) as e:
        no_retry.search(index="f")
    assert e.value.meta.status == 429 and e.value.status_code == 429
    assert e.value.error == "es_rejected_execution_exception"
    assert e.value.body["status"] == 429
    assert no_retry.search(index="f")["hits"]["hits"] == []

    # The client retries 429/502/503/504 by default (retry_on_status) up to max_retries=3 times, so two
    # injected failures are invisible to the caller and four exhaust it.
    es.request_log.clear()
    es.fail_next(2, status=429)
    assert client.search(index="f")["hits"]["total"]["value"] == 0
    assert len(es.request_log) == 3
    es.fail_next(4, status=429)
    with pytest.raises(elasticsearch.ApiError) as e:
        client.search(index="f")
    assert e.value.meta.status == 429
    # retry_on_status=() turns retries off
    es.fail_next(1, status=503)
    with pytest.raises(elasticsearch.ApiError) as e:
        client.options(retry_on_status=()).search(index="f")
    assert e.value.meta.status == 503
    no_retry.close()


def test_fail_next_only_bulk_requests(es, client):
    c = Elasticsearch(es.url, max_retries=0)
    es.fail_next(1, status=503, path_prefix="/_bulk")
    c.index(index="g", id="1", document={"a": 1})  # not a bulk request: unaffected
    with pytest.raises(elasticsearch.ApiError) as e:
        c.bulk(operations=[{"index": {"_index": "g", "_id": "2"}}, {"a": 2}])
    assert e.value.meta.status == 503 and e.value.error == "unavailable_shards_exception"
    assert c.bulk(operations=[{"index": {"_index": "g", "_id": "2"}}, {"a": 2}])["errors"] is False
    es.fail_next(1, status=429, path_prefix="/_bulk")  # also the per-index form /g/_bulk
    with pytest.raises(elasticsearch.ApiError):
        c.bulk(index="g", operations=[{"index": {"_id": "3"}}, {"a": 3}])
    es.fail_next(1, status=500, path_prefix="/g", method="GET")
    c.index(index="g", id="3", document={"a": 3})  # PUT: not matched
    with pytest.raises(elasticsearch.ApiError) as e:
        c.get(index="g", id="3")
    assert e.value.meta.status == 500
    # item-level rejections: streaming_bulk retries 429 items itself (only with raise_on_error=False;
    # otherwise the helper raises BulkIndexError for the first rejected chunk)
    es.reject_bulk_items(2, status=429)
    results = list(
        helpers.streaming_bulk(
            c,
            ({"_index": "g", "_id": str(i), "a": i} for i in range(10, 15)),
            max_retries=3,
            initial_backoff=0.01,
            raise_on_error=False,
        )
    )
    assert all(ok for ok, _ in results) and c.count(index="g")["count"] == 8
    c.close()


def test_unavailable_server_raises_connection_error(es, client):
    client.index(index="h", id="1", document={"a": 1})
    c = Elasticsearch(es.url, max_retries=0, request_timeout=5)
    assert c.info()["version"]["number"] == "8.15.0"  # keep-alive connection now open
    es.set_unavailable(True)
    with pytest.raises(elasticsearch.ConnectionError):
        c.info()
    with pytest.raises(elasticsearch.ConnectionError):
        Elasticsearch(es.url, max_retries=0).search(index="h")
    es.set_unavailable(False)
    assert c.get(index="h", id="1")["_source"] == {"a": 1}
    c.close()


# --------------------------------------------------------------------------- concurrency / helpers
def test_concurrent_bulk_writers(es, client):
    def writer(t):
        c = Elasticsearch(es.url)
        helpers.bulk(c, ({"_index": "conc", "_id": f"{t}-{i}", "t": t, "i": i} for i in range(300)), chunk_size=50)
        c.close()

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert client.count(index="conc")["count"] == 1800
    a = client.search(index="conc", size=0, aggs={"t": {"terms": {"field": "t", "size": 10}}})["aggregations"]
    assert sorted((b["key"], b["doc_count"]) for b in a["t"]["buckets"]) == [(t, 300) for t in range(6)]
    assert len(es.documents("conc")) == 1800
    assert es.documents("conc", with_meta=True)[0]["_index"] == "conc"


def test_mget_and_filter_path(client, corpus):
    r = client.mget(index=corpus, ids=["e1", "missing"])
    assert r["docs"][0]["found"] is True and r["docs"][1]["found"] is False
    r = client.search(index=corpus, query={"ids": {"values": ["e1"]}}, filter_path=["hits.hits._id"])
    assert r.body == {"hits": {"hits": [{"_id": "e1"}]}}
