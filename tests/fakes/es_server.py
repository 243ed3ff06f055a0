"""FakeElasticsearch: an in-process Elasticsearch 8.x look-alike served over real loopback HTTP/1.1, for
tests that drive the real ``elasticsearch`` client. Implementation: ``tests/fakes/es/`` (server.py is the
entry point; routes.py lists the endpoints).

    es = FakeElasticsearch().start()            # or: with FakeElasticsearch() as es: ...
    client = elasticsearch.Elasticsearch(es.url)  # "http://127.0.0.1:PORT"
    es.fail_next(2, status=429)                 # next 2 requests answer 429 es_rejected_execution_exception
    es.fail_next(1, status=503, path_prefix="/_bulk")   # only requests whose path starts with /_bulk
    es.reject_bulk_items(3, status=429)         # next 3 bulk *items* fail individually
    es.set_unavailable(True)                    # listener closed + connections dropped -> ConnectionError
    es.documents("logs-*")                      # current _source dicts (with_meta=True adds _index/_id)
    es.request_log                              # deque of (method, path?query) seen
    es.reset(); es.stop()

Refresh semantics: by default writes are searchable immediately (``realtime=True``); ``refresh`` params are
accepted (``refresh=true`` adds ``forced_refresh`` like ES). ``FakeElasticsearch(realtime=False,
refresh_interval=None)`` gives near-real-time behaviour: searches/counts see writes only after a refresh
(``refresh=true|wait_for``, ``_refresh``), while GET by id stays real-time, as in ES.

The client retries 429/502/503/504 by default (``retry_on_status``, ``max_retries=3``): use
``Elasticsearch(url, max_retries=0)`` or ``client.options(retry_on_status=())`` to see injected errors.
"""

from .es import FakeElasticsearch

__all__ = ["FakeElasticsearch"]
