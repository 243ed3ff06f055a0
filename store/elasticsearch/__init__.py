"""The production store: Elasticsearch 8.x and 9.x through the official 8.x client."""

from store.elasticsearch.settings import ElasticsearchSettings
from store.elasticsearch.store import ElasticsearchStore

__all__ = ["ElasticsearchSettings", "ElasticsearchStore"]
