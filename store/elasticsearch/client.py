"""The Elasticsearch client, and calls retried with backoff while the cluster is busy or away.

The client's own retries are switched off: they retry at once, with no
backoff, which is what a cluster answering 429 (its write queues are full)
must not get.  Here a refused or failed call waits 0.2 s, 0.4 s, ... up to
``retry_max`` (with jitter, so that several instances do not come back in
step) for at most ``retry_for`` in all, then raises ``StoreUnavailable``.

Servers: the 8.x client sends ``compatible-with=8`` media types, which
Elasticsearch 8.x and 9.x both accept, so one code path serves both.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport import ConnectionTimeout, TransportError

from elasticsearch import ApiError, Elasticsearch
from elasticsearch.serializer import OrjsonSerializer
from store.base import StoreUnavailable
from store.elasticsearch.settings import ElasticsearchSettings

log = logging.getLogger(__name__)

T = TypeVar("T")

# 429: queues full; 502/503/504: a node or shard away; 500 is not retried (a bug, not a blip)
RETRY_STATUSES = frozenset({429, 502, 503, 504})


class _CompatibleOrjson(OrjsonSerializer):
    mimetype = "application/vnd.elasticsearch+json"


def build_client(settings: ElasticsearchSettings) -> Elasticsearch:
    options: dict[str, Any] = {
        "request_timeout": settings.request_timeout,
        "max_retries": 0,
        "retry_on_status": (),
        "retry_on_timeout": False,
        "verify_certs": settings.verify_certs,
        "http_compress": False,
        # responses (bulk results, search hits) parsed by orjson: several times faster than json
        "serializers": {"application/json": OrjsonSerializer(), _CompatibleOrjson.mimetype: _CompatibleOrjson()},
    }
    if settings.ca_certs is not None:
        options["ca_certs"] = str(settings.ca_certs)
    if settings.client_cert is not None:
        options["client_cert"] = str(settings.client_cert)
        options["client_key"] = str(settings.client_key)
    api_key = settings.resolved_api_key()
    password = settings.resolved_password()
    if api_key is not None:
        options["api_key"] = tuple(api_key.split(":", 1)) if ":" in api_key else api_key
    elif settings.username is not None:
        options["basic_auth"] = (settings.username, password or "")
    return Elasticsearch(settings.hosts, **options)


def retriable(exc: BaseException) -> bool:
    if isinstance(exc, TransportConnectionError | ConnectionTimeout):
        return True
    if isinstance(exc, ApiError):
        return exc.meta.status in RETRY_STATUSES
    return isinstance(exc, TransportError) and not isinstance(exc, ApiError)


class Backoff:
    """Exponential backoff with jitter, bounded in total time: ``retry_for`` is spent whole, the last wait cut short.

    (Giving up when the next wait would pass it stopped at about 12 s of a 20 s ``retry_for``.)
    """

    def __init__(
        self,
        settings: ElasticsearchSettings,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.sleep = sleep
        self.clock = clock
        self.started = clock()
        self.delay = settings.retry_initial
        self.attempts = 0

    def wait(self, what: str, reason: object) -> None:
        """Sleep before the next attempt, or raise ``StoreUnavailable`` when the time is up."""
        self.attempts += 1
        elapsed = self.clock() - self.started
        left = self.settings.retry_for - elapsed
        if left <= 0:
            raise StoreUnavailable(
                f"elasticsearch: {what} failed for {elapsed:.1f} s ({self.attempts} attempts): {reason}"
            )
        if self.attempts in (1, 5) or self.attempts % 20 == 0:
            log.warning("elasticsearch: %s failed (%s); retrying (attempt %d)", what, reason, self.attempts)
        self.sleep(min(self.delay * random.uniform(0.75, 1.25), left))
        self.delay = min(self.delay * 2, self.settings.retry_max)


def call(settings: ElasticsearchSettings, what: str, fn: Callable[[], T]) -> T:
    """``fn()``, retried while it fails in a way worth retrying."""
    backoff = Backoff(settings)
    while True:
        try:
            return fn()
        except Exception as exc:
            if not retriable(exc):
                raise
            backoff.wait(what, describe_error(exc))


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, ApiError):
        return f"HTTP {exc.meta.status} {exc.message}"
    return type(exc).__name__


def ensure_index(
    client: Elasticsearch, settings: ElasticsearchSettings, index: str, mappings: dict[str, Any], what: str
) -> None:
    """Make a small single-shard index of the store's (the outbox, the receivers' rests) unless it is there.

    Another instance making it meanwhile is fine: its "already exists" is the index this one wanted.
    """
    if call(settings, f"check {what} index", lambda: client.indices.exists(index=index)):
        return
    index_settings = {"index": {"number_of_shards": 1, "number_of_replicas": settings.replicas}}
    try:
        call(
            settings,
            f"create {what} index",
            lambda: client.indices.create(index=index, settings=index_settings, mappings=mappings),
        )
    except ApiError as exc:
        if exc.meta.status != 400 or "resource_already_exists" not in str(exc.message):
            raise
