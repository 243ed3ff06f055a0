"""The ``[source.kafka]`` section, validated by the Kafka adapter that owns it.

Secrets (the SASL password, the private key's password) come from the
environment (``ACCESSWATCH_SOURCE__KAFKA__SASL_PASSWORD``) or from files
(``sasl_password_file``, a mounted secret), never from a checked-in config.
They are ``SecretStr``: no log line or error message shows them.
"""

from __future__ import annotations

import re
import ssl
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    SecretStr,
    StrictBool,
    ValidationError,
    field_validator,
    model_validator,
)

from models.config import CaCertificates, ConfigError, ReadableFile, Seconds, cross_field_error
from models.settings_base import SettingsModel

_PREFIX = ("source", "kafka")
_TOPIC_CHARACTERS = re.compile(r"[a-zA-Z0-9._-]{1,249}")
_TLS_KEYS = ("ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_password", "ssl_password_file", "ssl_check_hostname")


def _topic_name(name: str) -> str:
    """Kafka's rule for a topic name: a broker refuses any other, and a consumer or producer then waits for it."""
    if not _TOPIC_CHARACTERS.fullmatch(name) or name in (".", ".."):
        raise ValueError(
            "a Kafka topic name: 1 to 249 characters of letters, digits, '.', '_' and '-', other than '.' and '..'"
        )
    return name


TopicName = Annotated[str, AfterValidator(_topic_name)]


class KafkaUnreachable(Exception):
    """No broker of ``bootstrap_servers`` answered within ``bootstrap_timeout``: the command stops, exit 1."""

    @classmethod
    def of(cls, settings: KafkaSettings) -> KafkaUnreachable:
        return cls(
            f"cannot reach Kafka at {', '.join(settings.bootstrap_servers)}: no broker answered within"
            f" {settings.bootstrap_timeout:g} s (source.kafka.bootstrap_servers, source.kafka.bootstrap_timeout)"
        )


class KafkaSettings(SettingsModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    bootstrap_servers: list[str] = Field(default=["localhost:9092"], min_length=1)
    topics: list[TopicName] = Field(default=["access-events"], min_length=1)
    group_id: str = Field(default="accesswatch", min_length=1)
    client_id: str = "accesswatch"
    # where a group with no committed offset (and no checkpoint) starts: all that is kept, by default
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    # poison messages go here with the reason in headers; "" keeps them in the dead-letter store only
    dead_letter_topic: TopicName | Literal[""] = "access-events.deadletter"
    # dead letters waiting for that topic (missing, or Kafka not taking them for now) are held in memory: once this
    # many, or this many bytes of them, are held, the partitions they came from are paused until they are in
    max_held_dead_letters: Annotated[int, Field(ge=1)] = 10_000
    max_held_dead_letter_bytes: Annotated[int, Field(ge=1)] = 64 * 1_048_576
    # detector state is checkpointed per partition (and the offsets it covers committed) after this
    # many events or this much time, whichever first, and whenever a partition is given up
    checkpoint_events: Annotated[int, Field(ge=1)] = 50_000
    checkpoint_interval: Seconds = 10.0
    # group membership
    session_timeout: Seconds = 45.0
    heartbeat_interval: Seconds = 3.0
    # must exceed one store call's longest wait (store.elasticsearch retry_for + request_timeout): a turn of the
    # loop waits for at most one call that fails (the store then asked off the loop's thread), not one a partition
    max_poll_interval: Seconds = 300.0
    # the group coordinator silent this long (no heartbeat, no join answered): not ready (/readyz), one warning
    unreachable_after: Annotated[Seconds, Field(gt=0)] = 60.0
    fetch_max_wait: Seconds = 0.5
    # how much a fetch asks of each partition, not a message limit: a larger message still comes whole (brokers
    # answer Fetch v3+, Kafka 0.10.1 on, with at least one batch however large, KIP-74; kafka-python asks v12),
    # and is judged against ingest.max_line_bytes as a file's line is
    max_partition_fetch_bytes: Annotated[int, Field(ge=1024)] = 1_048_576
    request_timeout: Seconds = 30.0
    # how long a client waits at start for a broker to answer; then the command stops, one line, exit 1
    bootstrap_timeout: Seconds = 30.0
    # how long a stop (SIGTERM) waits for Kafka: the dead letters' flush, the last commit, leaving the group.
    # What is left undone is logged and loses nothing (the partitions resume from their checkpoints); keep it
    # below the orchestrator's grace period (Kubernetes: 30 s), which also covers the store's last checkpoints
    shutdown_timeout: Annotated[Seconds, Field(gt=0)] = 15.0
    # security
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    # the files are checked at load (there, and readable; the CA loaded): they are read only when a client connects
    ssl_cafile: CaCertificates | None = None
    ssl_certfile: ReadableFile | None = None  # the client certificate, for mutual TLS
    ssl_keyfile: ReadableFile | None = None
    ssl_password: SecretStr | None = None  # of the private key
    ssl_password_file: ReadableFile | None = None
    ssl_check_hostname: StrictBool = True
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    sasl_password_file: ReadableFile | None = None

    @field_validator("bootstrap_servers")
    @classmethod
    def _no_credentials(cls, servers: list[str]) -> list[str]:
        # a broker is host:port; user:password@ before it is no Kafka syntax and would be shown in every
        # "cannot reach Kafka" line (hidden in this one by ``hide_secrets``)
        if any("@" in server for server in servers):
            raise ValueError(
                "host:port for each broker, e.g. 'kafka-1:9092', without user:password@: set"
                " source.kafka.sasl_username and ACCESSWATCH_SOURCE__KAFKA__SASL_PASSWORD (or sasl_password_file)"
            )
        return servers

    @model_validator(mode="after")
    def _consistent(self) -> KafkaSettings:
        if self.dead_letter_topic in self.topics:  # each dead letter would come back, fail again, and go there again
            raise cross_field_error(
                ["dead_letter_topic", "topics"],
                "a topic other than those of source.kafka.topics: a dead letter sent to a topic consumed here"
                ' comes back as a poison message again, for good ("" keeps dead letters in the dead-letter store only)',
            )
        # each rule across keys names the key the operator set, with its own value (``cross_field_error``)
        if self.heartbeat_interval * 3 > self.session_timeout:
            raise cross_field_error(
                ["heartbeat_interval", "session_timeout"],
                "heartbeat_interval at most a third of session_timeout, here"
                f" {self.heartbeat_interval:g} s and {self.session_timeout:g} s",
            )
        if self.unreachable_after <= self.heartbeat_interval:  # each wait for the next heartbeat would count
            raise cross_field_error(["unreachable_after", "heartbeat_interval"], "more than heartbeat_interval")
        for secret in ("sasl_password", "ssl_password"):
            if getattr(self, secret) is not None and getattr(self, f"{secret}_file") is not None:
                raise cross_field_error(
                    [secret, f"{secret}_file"], f"{secret} or {secret}_file, not both set: keep one"
                )
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            given, missing = (
                ("ssl_certfile", "ssl_keyfile") if self.ssl_keyfile is None else ("ssl_keyfile", "ssl_certfile")
            )
            raise cross_field_error([given, missing], f"{missing} set too: ssl_certfile and ssl_keyfile go together")
        if self.security_protocol.startswith("SASL") and not self.sasl_username:
            raise cross_field_error(
                ["security_protocol", "sasl_username"],
                f"sasl_username set too: security_protocol {self.security_protocol} needs sasl_username",
            )
        if not self.security_protocol.startswith("SASL"):  # SASL settings were dropped without a word
            for key in ("sasl_username", "sasl_password", "sasl_password_file", "sasl_mechanism"):
                if key in self.model_fields_set:
                    raise cross_field_error(
                        [key, "security_protocol"],
                        f"security_protocol SASL_SSL or SASL_PLAINTEXT beside it, not {self.security_protocol}:"
                        " SASL settings are used with those only",
                    )
        tls = [key for key in _TLS_KEYS if key in self.model_fields_set]
        if tls and not self.security_protocol.endswith("SSL"):  # TLS settings were dropped without a word too
            raise cross_field_error(
                [*tls, "security_protocol"],
                f"security_protocol SSL or SASL_SSL beside it, not {self.security_protocol}: TLS settings"
                f" ({', '.join(tls)}) are used with those only",
            )
        return self

    def client_options(self) -> dict[str, Any]:
        """What every kafka-python client (consumer, producer) of this cluster is given."""
        options: dict[str, Any] = {
            "bootstrap_servers": list(self.bootstrap_servers),
            "client_id": self.client_id,
            "security_protocol": self.security_protocol,
            "request_timeout_ms": int(self.request_timeout * 1000),
            "bootstrap_timeout_ms": int(self.bootstrap_timeout * 1000),
        }
        if self.security_protocol in ("SSL", "SASL_SSL"):
            options["ssl_context"] = self.ssl_context()
        if self.security_protocol.startswith("SASL"):
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_username
            options["sasl_plain_password"] = _secret(self.sasl_password, self.sasl_password_file, "sasl_password_file")
        return options

    def consumer_options(self) -> dict[str, Any]:
        return {
            **self.client_options(),
            "group_id": self.group_id,
            "enable_auto_commit": False,  # offsets move only after what they cover is stored
            "auto_offset_reset": self.auto_offset_reset,
            "session_timeout_ms": int(self.session_timeout * 1000),
            "heartbeat_interval_ms": int(self.heartbeat_interval * 1000),
            "max_poll_interval_ms": int(self.max_poll_interval * 1000),
            "fetch_max_wait_ms": int(self.fetch_max_wait * 1000),
            "max_partition_fetch_bytes": self.max_partition_fetch_bytes,
        }

    def ssl_context(self) -> ssl.SSLContext:
        """TLS with the configured CA (else the system's) and, for mutual TLS, the client certificate.

        A file that is not what its key says (not PEM, a key that does not match, a wrong password) is one
        configuration line naming the key, not an ``ssl.SSLError`` traceback.
        """
        try:
            context = ssl.create_default_context(cafile=str(self.ssl_cafile) if self.ssl_cafile else None)
        except ssl.SSLError as exc:
            raise _tls_error("ssl_cafile", self.ssl_cafile, "CA certificates in PEM", exc) from None
        context.check_hostname = self.ssl_check_hostname
        if self.ssl_certfile is not None:
            password = _secret(self.ssl_password, self.ssl_password_file, "ssl_password_file")
            try:
                context.load_cert_chain(str(self.ssl_certfile), str(self.ssl_keyfile), password)
            except ssl.SSLError as exc:
                expected = "a certificate in PEM whose key is ssl_keyfile (opened with ssl_password, if encrypted)"
                raise _tls_error("ssl_certfile", self.ssl_certfile, expected, exc) from None
        return context


def _tls_error(key: str, path: Path | None, expected: str, exc: ssl.SSLError) -> ConfigError:
    said = exc.reason or exc.strerror or "refused"  # OpenSSL's reason, "NO_CERTIFICATE_OR_CRL_FOUND"; else its line
    return ConfigError(f"configuration error: source.kafka.{key} = {str(path)!r}: expected {expected} ({said})")


def _secret(value: SecretStr | None, path: Path | None, key: str) -> str | None:
    if value is not None:
        return value.get_secret_value()
    if path is None:
        return None
    try:
        return path.read_text().strip()
    except OSError as exc:  # the message names the file, never its content
        raise ConfigError(f"configuration error: source.kafka.{key} = {str(path)!r}: {exc.strerror}") from None


def load(section: dict[str, Any]) -> KafkaSettings:
    """Validate ``source.kafka``; a mistake is one line naming key, value and expectation."""
    from configs.loader import describe_validation_error, hide_secrets

    try:
        return KafkaSettings.model_validate(section)
    except ValidationError as exc:
        shown = {"source": {"kafka": hide_secrets(KafkaSettings, section)}}  # a wrong secret is named, never shown
        raise ConfigError(describe_validation_error(exc, shown, prefix=_PREFIX)) from None
