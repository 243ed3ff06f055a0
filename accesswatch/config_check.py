"""``accesswatch check-config``: what ``run`` checks at start, without connecting anywhere or making a store.

For CI and init containers: the configuration is loaded and validated (every section, the detectors built,
the receivers' settings), the secret files read and the TLS files loaded as the clients will load them, and a
short summary printed, with exit 0; a mistake is the one configuration line ``run`` would print, with exit 2.
Secrets are never printed: only where each comes from.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

from models.config import ConfigError, Settings

if TYPE_CHECKING:
    from ingest.kafka_settings import KafkaSettings
    from store.elasticsearch.settings import ElasticsearchSettings

_NAME = "check-config"


def add_commands(
    command: Callable[..., argparse.ArgumentParser], settings_of: Callable[[argparse.Namespace], Settings]
) -> None:
    """Add ``check-config``; ``settings_of`` loads the configuration (and builds the detectors) as ``run`` does."""
    command(
        _NAME,
        lambda args: _check(args, settings_of),
        "Validate the configuration as run does at start (sections, detectors, secret and TLS files) without"
        " connecting anywhere or making a store; print a summary, exit 0, or the one-line error, exit 2.",
    )


def _check(args: argparse.Namespace, settings_of: Callable[[argparse.Namespace], Settings]) -> int:
    from configs.loader import setting_variables
    from detectors.registry import build_detectors
    from notify.registry import receiver_settings

    settings = settings_of(args)  # every section validated, the detectors built: a mistake is one line, exit 2
    lines = [_read_from(settings, setting_variables())]
    lines.append(f"source: {_source(settings)}")
    lines.append(f"store: {_store(settings)}")
    receivers = receiver_settings(settings)  # checked at load already: named here with their kinds
    named = ", ".join(name if cls.kind == name else f"{name} ({cls.kind})" for name, (cls, _) in receivers.items())
    lines.append(f"receivers: {named}; pages at {settings.notify.min_severity.value} or above")
    enabled = [detector.name for detector in build_detectors(settings.detectors)]
    off = sorted(set(settings.detectors) - set(enabled))
    lines.append(f"detectors: {', '.join(enabled)}" + (f" (off: {', '.join(off)})" if off else ""))
    print(f"accesswatch {_NAME}: the configuration is valid; nothing was connected to")
    print("\n".join(f"  {line}" for line in lines))
    return 0


def _read_from(settings: Settings, variables: list[str]) -> str:
    parts = ["configs/default.toml"]
    if settings.config_file is not None:
        parts.append(str(settings.config_file))
    if variables:
        parts.append(", ".join(variables))
    return f"read from: {', then '.join(parts)}"


def _source(settings: Settings) -> str:
    source = settings.source
    if source.kind == "kafka":
        from ingest.kafka_settings import load

        return _kafka(load(source.kafka))
    if source.kind == "simulator":
        simulator = source.simulator
        return f"simulator, {simulator.days} days of {simulator.employees} employees at {simulator.speed:g}x"
    return _files(source.file.paths, source.file.follow)


def _kafka(kafka: KafkaSettings) -> str:
    kafka.consumer_options()  # the secret files read, the TLS files loaded: what the consumer is given at start
    security: str = kafka.security_protocol
    if security.startswith("SASL"):
        secret = "from a file" if kafka.sasl_password_file else "set" if kafka.sasl_password else "not set"
        security += f" as {kafka.sasl_username} ({kafka.sasl_mechanism}, password {secret})"
    return (
        f"kafka, topics {', '.join(kafka.topics)} at {', '.join(kafka.bootstrap_servers)}, group {kafka.group_id},"
        f" {security}"
    )


def _files(paths: list[str], follow: bool) -> str:
    from ingest.sources import unreadable_reason

    if not paths:
        return "file, the FILEs given to run (source.file.paths is empty)"
    for path in paths:
        problem = unreadable_reason(path)  # run refuses it at start, as replay does
        if problem:
            raise ConfigError(f"configuration error: source.file.paths = {paths!r}: expected files to read: {problem}")
    return f"file, {', '.join(paths)}" + (" (followed as it grows)" if follow else "")


def _store(settings: Settings) -> str:
    if settings.store.kind == "elasticsearch":
        from store.elasticsearch.settings import load

        return _elasticsearch(load(settings.store.elasticsearch))
    from pathlib import Path

    path = Path(settings.data_dir) / settings.store.sqlite.filename
    return f"sqlite, {path}" + ("" if path.exists() else " (not there yet: run makes it)")


def _elasticsearch(elasticsearch: ElasticsearchSettings) -> str:
    from store.elasticsearch.client import build_client

    build_client(elasticsearch).close()  # the secret files read, the TLS options taken: no request is sent
    if elasticsearch.api_key is not None or elasticsearch.api_key_file is not None:
        auth = f"an API key{' from a file' if elasticsearch.api_key_file else ''}"
    elif elasticsearch.username:
        secret = "from a file" if elasticsearch.password_file else "set" if elasticsearch.password else "not set"
        auth = f"user {elasticsearch.username}, password {secret}"
    else:
        auth = "no authentication"
    tls = ", CA " + str(elasticsearch.ca_certs) if elasticsearch.ca_certs else ""
    return f"elasticsearch at {', '.join(elasticsearch.hosts)}, prefix {elasticsearch.prefix}, {auth}{tls}"
