"""Ingestion: sources of raw lines, parsing into events, and the pipeline that feeds store and detectors."""
