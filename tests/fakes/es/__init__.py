"""FakeElasticsearch: an in-process Elasticsearch 8.x look-alike for tests (see server.py)."""

from .server import FakeElasticsearch

__all__ = ["FakeElasticsearch"]
