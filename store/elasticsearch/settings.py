"""The ``[store.elasticsearch]`` section, validated by the adapter that owns it.

Secrets (a password, an API key) come from the environment or from files,
never from a config file checked into a repository: ``password`` is meant
to be set as ``ACCESSWATCH_STORE__ELASTICSEARCH__PASSWORD``, and each secret
has a ``*_file`` twin (a mounted Kubernetes/Docker secret).  They are kept as
``SecretStr``, so that no log line or error message ever shows them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
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

_PREFIX = ("store", "elasticsearch")


class ElasticsearchSettings(SettingsModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    hosts: list[str] = Field(default=["http://localhost:9200"], min_length=1)
    # names: every index and template starts with the prefix, so that several
    # deployments (or a test run) can share one cluster
    prefix: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,60}$")] = "accesswatch"
    shards: Annotated[int, Field(ge=1, le=64)] = 1
    replicas: Annotated[int, Field(ge=0, le=8)] = 1
    # retention (ILM), set from the [retention] section by the app: events and dead letters hold
    # customer data and go first; alerts, incidents and the triage log are the record of what was done
    events_retention: Seconds = 180 * 86400.0
    alerts_retention: Seconds = 730 * 86400.0
    # writes: bulk requests of at most this many documents, retried with
    # exponential backoff on 429/5xx/connection errors for at most retry_for
    bulk_documents: Annotated[int, Field(ge=1, le=100_000)] = 5000
    retry_for: Seconds = 120.0
    retry_initial: Seconds = 0.2
    retry_max: Seconds = 10.0
    request_timeout: Seconds = 30.0
    # security
    username: str | None = None
    password: SecretStr | None = None
    # the files are checked at load (there, and readable; the CA loaded): the client reads them only when it
    # connects, and a missing CA, or one that is not PEM, then failed as "cannot reach Elasticsearch" after retry_for
    password_file: ReadableFile | None = None
    api_key: SecretStr | None = None  # "id:key" or the base64 form Kibana shows
    api_key_file: ReadableFile | None = None
    ca_certs: CaCertificates | None = None  # these three over https:// hosts only (the client refuses them on http)
    client_cert: ReadableFile | None = None
    client_key: ReadableFile | None = None
    verify_certs: StrictBool = True

    @field_validator("hosts")
    @classmethod
    def _urls(cls, hosts: list[str]) -> list[str]:
        # the client refuses a host without its scheme only when it is built, with a traceback
        for host in hosts:
            if not host.startswith(("http://", "https://")):
                address = re.sub(r"^([^/]*://)?([^/@]*@)?", "", host)  # "es:9200" of "ftp://user:pw@es:9200"
                raise ValueError(f"a URL starting http:// or https:// for each host, e.g. 'https://{address}'")
            # the client would take user:password@ from the URL, a secret then shown wherever the host is:
            # refused, so that a password is only ever the SecretStr below (``hide_secrets`` hides it in this line)
            if "@" in host.partition("://")[2].partition("/")[0]:
                raise ValueError(
                    "a URL without user:password@ in it: set store.elasticsearch.username and"
                    " ACCESSWATCH_STORE__ELASTICSEARCH__PASSWORD (or password_file) instead"
                )
        return hosts

    @field_validator("retry_initial", "retry_max", "request_timeout")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("a duration above zero")
        return value

    @model_validator(mode="after")
    def _one_way_in(self) -> ElasticsearchSettings:
        # each rule across keys names the key the operator set, with its own value (``cross_field_error``)
        for secret in ("password", "api_key"):
            if getattr(self, secret) is not None and getattr(self, f"{secret}_file") is not None:
                raise cross_field_error(
                    [secret, f"{secret}_file"], f"{secret} or {secret}_file, not both set: keep one"
                )
        if (self.client_cert is None) != (self.client_key is None):
            given, missing = ("client_cert", "client_key") if self.client_key is None else ("client_key", "client_cert")
            raise cross_field_error([given, missing], f"{missing} set too: client_cert and client_key go together")
        # basic auth needs both: a password alone was dropped without a word
        if (self.password is not None or self.password_file is not None) and not self.username:
            given = "password" if self.password is not None else "password_file"
            raise cross_field_error(
                [given, "username"], "username set too: a password (or password_file) goes with a username"
            )
        # the client refuses TLS options for an http:// host, with a traceback, when the store is opened
        tls = [key for key in ("ca_certs", "client_cert", "client_key") if getattr(self, key) is not None]
        if tls and any(host.startswith("http://") for host in self.hosts):
            raise cross_field_error(
                [*tls, "hosts"],
                "https:// hosts with it: store.elasticsearch.hosts has an http:// one, and the client uses TLS"
                " settings (ca_certs, client_cert, client_key) over https only",
            )
        # the CA would never be used, and any certificate taken: a misconfiguration that looks like TLS, hidden
        if self.ca_certs is not None and not self.verify_certs:
            raise cross_field_error(
                ["verify_certs", "ca_certs"],
                "verify_certs = true beside ca_certs (or no ca_certs): with verification off the CA is never used,"
                " and any certificate is taken",
            )
        return self

    # -- secrets, read when the client is built ---------------------------------------
    def resolved_password(self) -> str | None:
        return _secret(self.password, self.password_file, "password_file")

    def resolved_api_key(self) -> str | None:
        return _secret(self.api_key, self.api_key_file, "api_key_file")

    def index(self, name: str) -> str:
        return f"{self.prefix}-{name}"


def _secret(value: SecretStr | None, path: Path | None, key: str) -> str | None:
    if value is not None:
        return value.get_secret_value()
    if path is None:
        return None
    try:
        return path.read_text().strip()
    except OSError as exc:  # the message names the file, never its content
        raise ConfigError(f"configuration error: store.elasticsearch.{key} = {str(path)!r}: {exc.strerror}") from None


def load(section: dict[str, Any]) -> ElasticsearchSettings:
    """Validate ``store.elasticsearch``; a mistake is one line naming key, value and expectation."""
    from configs.loader import describe_validation_error, hide_secrets

    try:
        return ElasticsearchSettings.model_validate(section)
    except ValidationError as exc:
        # a mistake of the whole section (two ways in, a password without its user) shows the section: not its secrets
        data = {
            "store": {"elasticsearch": hide_secrets(ElasticsearchSettings, section)}
        }  # a secret is named, not shown
        raise ConfigError(describe_validation_error(exc, data, prefix=_PREFIX)) from None
