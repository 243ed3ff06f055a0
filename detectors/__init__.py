"""Detectors: event-time rules and models over per-actor windows (see ``detectors.base``)."""
