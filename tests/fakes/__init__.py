"""In-process fakes of external services (Kafka, Elasticsearch) used by the test-suite."""
