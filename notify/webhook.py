"""Generic webhook: a JSON POST of the contract's alert record, signed with HMAC-SHA256.

The body is ``notify.base.page_record``: the alert record with a ``page``
object (new incident, update, acknowledgement, resolution, reopening; the
incident's other findings; ``look``, the command that shows the whole
incident; without a dashboard link, the commands to act).  Headers:

- ``X-Accesswatch-Event``: trigger | update | acknowledge | resolve | reopen
- ``X-Accesswatch-Dedup-Key``: the incident id; repeats of one incident share it
- ``X-Accesswatch-Delivery``: the notification id; a repeated delivery (sent at
  least once) has the same one, so a receiver can drop it
- ``X-Accesswatch-Timestamp``: Unix seconds when it was signed
- ``X-Accesswatch-Signature``: ``sha256=`` and the hex HMAC-SHA256, keyed with
  the shared secret, of ``<timestamp>.<body>``

A receiver recomputes the HMAC over the timestamp, a dot and the raw body,
compares in constant time (``verify_signature``), and refuses timestamps
older than a few minutes, so a captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import time

import orjson
from pydantic import Field, SecretStr

from models.page import Page
from notify.base import page_record
from notify.http import HttpNotifier, HttpSettings, HttpUrl, post_json

SIGNATURE_HEADER = "X-Accesswatch-Signature"
TIMESTAMP_HEADER = "X-Accesswatch-Timestamp"


class WebhookSettings(HttpSettings):
    url: HttpUrl
    secret: SecretStr = Field(min_length=16)  # shared with the receiver; set it from an environment variable
    headers: dict[str, str] = {}  # sent as they are (an Authorization header, a tenant id)


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify_signature(secret: bytes, timestamp: str, body: bytes, header: str, max_age: float = 300.0) -> bool:
    """What a receiver checks: the signature matches and the timestamp is recent."""
    try:
        age = abs(time.time() - int(timestamp))
    except ValueError:
        return False
    return age <= max_age and hmac.compare_digest(signature(secret, timestamp, body), header)


class WebhookNotifier(HttpNotifier[WebhookSettings]):
    kind = "webhook"
    Settings = WebhookSettings

    def send(self, page: Page, delivery_id: str = "") -> None:
        settings = self.settings
        body = orjson.dumps(page_record(page, delivery_id))
        timestamp = str(int(time.time()))
        headers = {
            **settings.headers,
            "X-Accesswatch-Event": page.kind.value,
            "X-Accesswatch-Dedup-Key": page.dedup_key,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: signature(settings.secret.get_secret_value().encode(), timestamp, body),
        }
        if delivery_id:
            headers["X-Accesswatch-Delivery"] = delivery_id
        post_json(settings.url, body, settings.timeout, headers)
