"""Local paging services over real sockets, for the notifier tests.

``FakeReceiver`` is an HTTP server speaking one webhook flavour: it checks
each request against that service's documented format (PagerDuty Events API
v2, Alertmanager API v2 ``postableAlerts``, Slack incoming webhooks with
Block Kit, accesswatch's own signed webhook), answers as the service does,
and keeps what a person would see (PagerDuty's alerts by ``dedup_key`` and
how many times on-call was paged; Alertmanager's alerts by label set).
Faults are scripted: the next requests fail with a status (and
Retry-After), hang past the client's timeout, or lose the connection.

``FakeSmtpServer`` is ``aiosmtpd`` with STARTTLS required before AUTH, on a
self-signed certificate the client is told to trust (``ca_file``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import socket
import ssl
import threading
from collections import deque
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema

# -- documented formats ------------------------------------------------------------------------

# PagerDuty Events API v2, POST /v2/enqueue (developer.pagerduty.com, "Send an Alert Event")
PAGERDUTY_EVENT = {
    "type": "object",
    "required": ["routing_key", "event_action"],
    "additionalProperties": False,
    "properties": {
        "routing_key": {"type": "string", "minLength": 32, "maxLength": 32},
        "event_action": {"enum": ["trigger", "acknowledge", "resolve"]},
        "dedup_key": {"type": "string", "minLength": 1, "maxLength": 255},
        "payload": {
            "type": "object",
            "required": ["summary", "source", "severity"],
            "additionalProperties": False,
            "properties": {
                "summary": {"type": "string", "minLength": 1, "maxLength": 1024},
                "source": {"type": "string", "minLength": 1},
                "severity": {"enum": ["critical", "error", "warning", "info"]},
                "timestamp": {"type": "string", "format": "date-time"},
                "component": {"type": "string"},
                "group": {"type": "string"},
                "class": {"type": "string"},
                "custom_details": {"type": "object"},
            },
        },
        "images": {"type": "array"},
        "links": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["href"],
                "properties": {"href": {"type": "string", "format": "uri"}, "text": {"type": "string"}},
            },
        },
        "client": {"type": "string"},
        "client_url": {"type": "string", "format": "uri"},
    },
    "allOf": [
        {"if": {"properties": {"event_action": {"const": "trigger"}}}, "then": {"required": ["payload"]}},
        {
            "if": {"properties": {"event_action": {"enum": ["acknowledge", "resolve"]}}},
            "then": {"required": ["dedup_key"]},
        },
    ],
}

# Alertmanager API v2, POST /api/v2/alerts: postableAlerts (alertmanager's api/v2/openapi.yaml)
_LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
ALERTMANAGER_ALERTS = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["labels"],
        "additionalProperties": False,
        "properties": {
            "labels": {**_LABELS, "minProperties": 1, "propertyNames": {"pattern": "^[a-zA-Z_][a-zA-Z0-9_]*$"}},
            "annotations": _LABELS,
            "startsAt": {"type": "string", "format": "date-time"},
            "endsAt": {"type": "string", "format": "date-time"},
            "generatorURL": {"type": "string", "format": "uri"},
        },
    },
}

_TEXT = {
    "type": "object",
    "required": ["type", "text"],
    "properties": {"type": {"enum": ["plain_text", "mrkdwn"]}, "text": {"type": "string", "minLength": 1}},
}
# Slack incoming webhook with Block Kit (docs.slack.dev: header, section, context, actions blocks)
SLACK_MESSAGE = {
    "type": "object",
    "anyOf": [{"required": ["text"]}, {"required": ["blocks"]}],
    "properties": {
        "text": {"type": "string", "maxLength": 40000},
        "blocks": {
            "type": "array",
            "maxItems": 50,
            "items": {
                "type": "object",
                "required": ["type"],
                "properties": {"type": {"enum": ["header", "section", "context", "actions", "divider"]}},
                "allOf": [
                    {
                        "if": {"properties": {"type": {"const": "header"}}},
                        "then": {
                            "required": ["text"],
                            "properties": {
                                "text": {
                                    "type": "object",
                                    "required": ["type", "text"],
                                    "properties": {
                                        "type": {"const": "plain_text"},
                                        "text": {"type": "string", "minLength": 1, "maxLength": 150},
                                    },
                                }
                            },
                        },
                    },
                    {
                        "if": {"properties": {"type": {"const": "section"}}},
                        "then": {
                            "anyOf": [{"required": ["text"]}, {"required": ["fields"]}],
                            "properties": {
                                "text": {**_TEXT, "properties": {**_TEXT["properties"], "text": {"maxLength": 3000}}},
                                "fields": {
                                    "type": "array",
                                    "maxItems": 10,
                                    "items": {
                                        **_TEXT,
                                        "properties": {**_TEXT["properties"], "text": {"maxLength": 2000}},
                                    },
                                },
                            },
                        },
                    },
                    {
                        "if": {"properties": {"type": {"const": "context"}}},
                        "then": {
                            "required": ["elements"],
                            "properties": {"elements": {"type": "array", "minItems": 1, "maxItems": 10}},
                        },
                    },
                    {
                        "if": {"properties": {"type": {"const": "actions"}}},
                        "then": {
                            "required": ["elements"],
                            "properties": {
                                "elements": {
                                    "type": "array",
                                    "maxItems": 25,
                                    "items": {
                                        "type": "object",
                                        "required": ["type", "text"],
                                        "properties": {
                                            "type": {"const": "button"},
                                            "text": {
                                                "type": "object",
                                                "properties": {
                                                    "type": {"const": "plain_text"},
                                                    "text": {"type": "string", "maxLength": 75},
                                                },
                                            },
                                            "url": {"type": "string", "maxLength": 3000, "format": "uri"},
                                            "action_id": {"type": "string", "maxLength": 255},
                                        },
                                    },
                                }
                            },
                        },
                    },
                ],
            },
        },
    },
}

# the contract's alert record (shared/contract/README.md): key -> JSON type
CONTRACT_ALERT_KEYS = {
    "alert_id": str,
    "detector": str,
    "severity": str,
    "actor_id": str,
    "actor_kind": str,
    "window_start": str,
    "window_end": str,
    "score": (int, float),
    "summary": str,
    "evidence": dict,
}

_FORMATS = jsonschema.Draft202012Validator.FORMAT_CHECKER


def problems(schema: dict, data: Any) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema, format_checker=_FORMATS)
    return [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in validator.iter_errors(data)]


# -- the HTTP receiver ------------------------------------------------------------------------------
@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int | None = None  # the status sent back (None: the connection was dropped)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class PagerDutyAlert:
    dedup_key: str
    status: str  # triggered | acknowledged | resolved
    events: list[dict] = field(default_factory=list)


@dataclass
class _Fault:
    kind: str  # status | hang | drop
    status: int = 500
    retry_after: str | None = None
    seconds: float = 0.0
    then_accept: bool = False  # a slow receiver that took the page although the client gave up


class FakeReceiver:
    """One webhook flavour: ``pagerduty``, ``alertmanager``, ``slack`` or ``webhook`` (needs ``secret``)."""

    def __init__(self, flavour: str, secret: bytes | None = None) -> None:
        assert flavour in ("pagerduty", "alertmanager", "slack", "webhook")
        self.flavour = flavour
        self.secret = secret
        self.received: list[Received] = []  # every request, in order
        self.accepted: list[Any] = []  # the payloads taken, in order
        self.rejected: list[tuple[Any, list[str]]] = []  # payloads refused as malformed, with why
        self.pagerduty: dict[str, PagerDutyAlert] = {}
        self.pages = 0  # PagerDuty: times on-call was paged (a new alert, not one added to an open alert)
        self.alertmanager: dict[frozenset, dict] = {}  # label set -> the latest postable alert
        self._faults: deque[_Fault] = deque()
        self.pagerduty_status = 202  # what PagerDuty answers an accepted event (a compatible proxy may say 200)
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})

    # -- lifecycle
    def __enter__(self) -> FakeReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        path = {"pagerduty": "/v2/enqueue", "alertmanager": "", "slack": "/services/T000/B000/XXXX"}.get(
            self.flavour, "/hooks/accesswatch"
        )
        return f"http://{host}:{port}{path}"

    # -- faults
    def fail_next(self, count: int, status: int = 500, retry_after: str | None = None) -> None:
        with self._lock:
            self._faults.extend(_Fault("status", status, retry_after) for _ in range(count))

    def hang_next(self, count: int, seconds: float = 5.0, then_accept: bool = False) -> None:
        with self._lock:
            self._faults.extend(_Fault("hang", seconds=seconds, then_accept=then_accept) for _ in range(count))

    def drop_next(self, count: int) -> None:
        with self._lock:
            self._faults.extend(_Fault("drop") for _ in range(count))

    def heal(self) -> None:
        """The scripted faults not yet played are dropped: the service is back."""
        with self._lock:
            self._faults.clear()

    # -- what a person sees
    def events(self, action: str | None = None) -> list[dict]:
        """PagerDuty: the accepted events, optionally of one ``event_action``."""
        return [e for e in self.accepted if action is None or e["event_action"] == action]

    def firing(self, now: dt.datetime) -> list[dict]:
        """Alertmanager: the alerts still firing at ``now``."""
        return [a for a in self.alertmanager.values() if _time(a["endsAt"]) > now]

    # -- handling
    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                request = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with fake._lock:
                    fake.received.append(request)
                    fault = fake._faults.popleft() if fake._faults else None
                if fault is not None and fault.kind == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if fault is not None and fault.kind == "hang":
                    fake._closing.wait(fault.seconds)
                    if not fault.then_accept:
                        self._answer(request, 504, b"gateway timeout")
                        return
                elif fault is not None:
                    headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                    self._answer(request, fault.status, b'{"status":"error"}', headers)
                    return
                self._answer(request, *fake._take(request))

            def _answer(self, request: Received, status: int, body: bytes, headers: dict | None = None) -> None:
                request.answered = status
                try:
                    self.send_response(status)
                    for name, value in (headers or {}).items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    self.close_connection = True  # the client gave up waiting (after a hang)

        return Handler

    def _take(self, request: Received) -> tuple[int, bytes]:
        try:
            payload = json.loads(request.body)
        except ValueError:
            return 400, b"invalid_payload"
        take = getattr(self, f"_take_{self.flavour}")
        with self._lock:
            return take(request, payload)

    def _refuse(self, payload: Any, found: list[str], status: int, body: bytes) -> tuple[int, bytes]:
        self.rejected.append((payload, found))
        return status, body

    def _take_pagerduty(self, request: Received, event: Any) -> tuple[int, bytes]:
        if request.path != "/v2/enqueue":
            return 404, b"not found"
        found = problems(PAGERDUTY_EVENT, event)
        if found:
            answer = {"status": "invalid event", "message": "Event object is invalid", "errors": found}
            return self._refuse(event, found, 400, json.dumps(answer).encode())
        self.accepted.append(event)
        key = event.get("dedup_key") or hashlib.sha256(request.body).hexdigest()
        alert = self.pagerduty.get(key)
        action = event["event_action"]
        if action == "trigger":
            if alert is None or alert.status == "resolved":
                alert = self.pagerduty[key] = PagerDutyAlert(key, "triggered")
                self.pages += 1
            alert.events.append(event)
        elif alert is not None and alert.status != "resolved":
            alert.status = "acknowledged" if action == "acknowledge" else "resolved"
            alert.events.append(event)
        answer = {"status": "success", "message": "Event processed", "dedup_key": key}
        return self.pagerduty_status, json.dumps(answer).encode()

    def _take_alertmanager(self, request: Received, alerts: Any) -> tuple[int, bytes]:
        if request.path != "/api/v2/alerts":
            return 404, b"not found"
        found = problems(ALERTMANAGER_ALERTS, alerts)
        for alert in alerts if not found else []:
            if "startsAt" in alert and "endsAt" in alert and _time(alert["startsAt"]) > _time(alert["endsAt"]):
                found.append("start time must be before end time")
        if found:
            return self._refuse(alerts, found, 400, json.dumps({"code": 400, "message": found[0]}).encode())
        self.accepted.append(alerts)
        for alert in alerts:
            self.alertmanager[frozenset(alert["labels"].items())] = alert
        return 200, b""

    def _take_slack(self, request: Received, message: Any) -> tuple[int, bytes]:
        found = problems(SLACK_MESSAGE, message)
        if found:
            return self._refuse(message, found, 400, b"invalid_blocks")
        self.accepted.append(message)
        return 200, b"ok"

    def _take_webhook(self, request: Received, record: Any) -> tuple[int, bytes]:
        assert self.secret is not None
        timestamp = request.headers.get("x-accesswatch-timestamp", "")
        expected = "sha256=" + hmac.new(self.secret, timestamp.encode() + b"." + request.body, "sha256").hexdigest()
        if not hmac.compare_digest(expected, request.headers.get("x-accesswatch-signature", "")):
            return self._refuse(record, ["bad signature"], 401, b"bad signature")
        found = [
            f"{key}: missing or not {kind}"
            for key, kind in CONTRACT_ALERT_KEYS.items()
            if not isinstance(record.get(key) if isinstance(record, dict) else None, kind)
        ]
        for header in ("x-accesswatch-event", "x-accesswatch-dedup-key", "x-accesswatch-delivery"):
            if not request.headers.get(header):
                found.append(f"header {header} missing")
        if found:
            return self._refuse(record, found, 400, b"bad record")
        self.accepted.append(record)
        return 200, b""


def _time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def free_port() -> int:
    """A port nobody listens on (for "connection refused")."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# -- the SMTP server --------------------------------------------------------------------------------
def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for localhost/127.0.0.1 and its key, as PEM files."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


class FakeSmtpServer:
    """An SMTP server that requires STARTTLS before AUTH and keeps the messages it accepted."""

    def __init__(self, directory: Path, username: str = "pager", password: str = "s3cret-pass") -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        self.cert, key = self_signed_certificate(directory)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, key)
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.logins: list[str] = []
        self._replies: deque[str] = deque()  # scripted answers to DATA, e.g. "451 4.3.0 try later"
        fake = self

        def authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
            ok = (
                isinstance(auth_data, LoginPassword)
                and auth_data.login.decode() == username
                and auth_data.password.decode() == password
            )
            if ok:
                fake.logins.append(username)
            return AuthResult(success=ok, handled=False)

        class Handler:
            async def handle_DATA(self, server, session, envelope) -> str:
                if fake._replies:
                    return fake._replies.popleft()
                if not session.authenticated:
                    return "530 5.7.0 authentication required"
                fake.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
                fake.messages.append(message_from_bytes(envelope.content, policy=policy.default))
                return "250 2.0.0 queued"

        self.port = free_port()
        self._controller = Controller(
            Handler(),
            hostname="127.0.0.1",
            port=self.port,
            tls_context=context,
            require_starttls=True,
            auth_require_tls=True,
            authenticator=authenticate,
        )

    def reply_next(self, *replies: str) -> None:
        self._replies.extend(replies)

    def __enter__(self) -> FakeSmtpServer:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()
