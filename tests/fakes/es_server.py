"""Fake Elasticsearch 8.x REST server for tests: ``FakeElasticsearch`` (implementation in ``tests/fakes/es``).

es = FakeElasticsearch().start()
client = elasticsearch.Elasticsearch(es.url)
...
es.stop()
"""

from .es import FakeElasticsearch

__all__ = ["FakeElasticsearch"]
