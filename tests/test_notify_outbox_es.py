"""The outbox in Elasticsearch (``store.elasticsearch.outbox``) against the shared outbox contract.

On the in-process test server (near-real-time, like a real cluster) and,
when ``ACCESSWATCH_TEST_ES_URL`` is set, on a real cluster.
"""

from __future__ import annotations

import itertools
import os
import uuid
from datetime import timedelta

import pytest

from tests.outbox_contract import LEASE, OutboxContract, rest
from tests.paging_factories import NOW, notification

es_store = pytest.importorskip("store.elasticsearch.store", reason="the Elasticsearch adapter is not in this tree")
from store.elasticsearch import ElasticsearchSettings  # noqa: E402
from store.elasticsearch.outbox import ElasticsearchOutboxMixin  # noqa: E402
from tests.fakes.es_server import FakeElasticsearch  # noqa: E402

REAL_ES = os.environ.get("ACCESSWATCH_TEST_ES_URL")
_prefixes = itertools.count(1)

if issubclass(es_store.ElasticsearchStore, ElasticsearchOutboxMixin):
    Store = es_store.ElasticsearchStore
else:  # the adapter does not list the outbox among its bases yet

    class Store(ElasticsearchOutboxMixin, es_store.ElasticsearchStore):
        pass


def _store(url: str):
    prefix = f"awoutbox{next(_prefixes)}-{uuid.uuid4().hex[:6]}"
    fast = {"retry_for": 2.0, "retry_initial": 0.01, "retry_max": 0.05, "replicas": 0}
    return Store(ElasticsearchSettings(hosts=[url], prefix=prefix, **fast))


@pytest.fixture(scope="module")
def es_server():
    with FakeElasticsearch(realtime=False, refresh_interval=None) as server:
        yield server


class TestOutboxOnTestServer(OutboxContract):
    @pytest.fixture
    def store(self, es_server):
        store = _store(es_server.url)
        yield store
        store.close()


@pytest.mark.skipif(not REAL_ES, reason="set ACCESSWATCH_TEST_ES_URL to run the contract on a real cluster")
class TestOutboxOnRealCluster(OutboxContract):
    @pytest.fixture
    def store(self):
        store = _store(REAL_ES)
        yield store
        store.client.options(ignore_status=404).indices.delete(index=f"{store.settings.prefix}-*")
        store.close()


def test_two_instances_never_take_the_same_row(es_server):
    one = _store(es_server.url)
    two = Store(one.settings)
    rows = [notification(f"r{n}") for n in range(12)]
    one.enqueue(rows)
    taken: list[str] = []
    for turn in range(12):
        taken += [row.notification_id for row in (one if turn % 2 else two).claim_due(NOW, LEASE)]
    assert sorted(taken) == sorted(row.notification_id for row in rows)
    assert one.claim_due(NOW + timedelta(seconds=1), LEASE, limit=100) == []
    one.close()
    two.close()


def test_a_rest_one_instance_recorded_holds_back_the_other(es_server):
    running = _store(es_server.url)
    command = Store(running.settings)
    running.enqueue([notification("pagerduty")])
    running.rest_receiver(rest("pagerduty", seconds=3600, asked=3600))
    assert command.claim_due(NOW + timedelta(minutes=59), LEASE) == []
    assert command.receiver_rests() == running.receiver_rests()
    assert len(command.claim_due(NOW + timedelta(minutes=60), LEASE)) == 1
    running.close()
    command.close()
