"""JSON over HTTP for the webhook-flavoured receivers, with the one error policy they share.

Standard library only (``urllib``): a page is a few kilobytes every few
minutes, and the fewer moving parts on the paging path the better.
Redirects are not followed: urllib would turn a redirected POST into a GET
without its body, so a redirect is reported as a configuration error.
"""

from __future__ import annotations

import email.utils
import http.client
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import IO, Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field

from accesswatch import __version__
from models.config import Settings, parse_duration
from notify.base import DeliveryError, Notifier, ReceiverSettings, SettingsT

USER_AGENT = f"accesswatch/{__version__}"
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_MAX_BODY = 64 * 1024  # of an answer: receivers answer with a few bytes of JSON


def check_http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("an http:// or https:// URL")
    return value


HttpUrl = Annotated[str, AfterValidator(check_http_url)]
Timeout = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]


class HttpSettings(ReceiverSettings):
    timeout: Timeout  # default: notify.delivery.timeout


class HttpNotifier(Notifier[SettingsT]):
    """A receiver reached by POSTing JSON: its timeout defaults to ``notify.delivery.timeout``."""

    @classmethod
    def complete(cls, section: dict[str, Any], config: Settings) -> dict[str, Any]:
        return {"timeout": config.notify.delivery.timeout, **section}


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        return None  # urllib then raises HTTPError with the 3xx status


_opener = urllib.request.build_opener(_NoRedirects())


def where(url: str) -> str:
    """The host of a URL, for error messages: paths of webhook URLs are often secrets (Slack's are)."""
    parts = urlsplit(url)
    return parts.netloc.rsplit("@", 1)[-1] or url[:40]


def post_json(url: str, body: bytes, timeout: float, headers: dict[str, str] | None = None) -> Answer:
    """POST ``body``; return a 2xx answer, or raise ``DeliveryError`` saying whether a retry may help."""
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": USER_AGENT, **(headers or {})},
    )
    host = where(url)
    try:
        with _opener.open(request, timeout=timeout) as response:
            return Answer(response.status, response.read(_MAX_BODY))
    except urllib.error.HTTPError as exc:
        detail = _snippet(exc.read(_MAX_BODY) if exc.fp is not None else b"")
        message = f"HTTP {exc.code} from {host}" + (f": {detail}" if detail else "")
        if 300 <= exc.code < 400:
            raise DeliveryError(f"{message} (redirected: configure the final URL)", retryable=False) from None
        raise DeliveryError(
            message, retryable=exc.code in RETRYABLE_STATUS, retry_after=retry_after(exc.headers.get("Retry-After"))
        ) from None
    except TimeoutError:
        raise DeliveryError(f"no answer from {host} within {timeout:g} s") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            raise DeliveryError(f"no answer from {host} within {timeout:g} s") from None
        raise DeliveryError(f"cannot reach {host}: {reason}") from None
    except (http.client.HTTPException, OSError) as exc:
        raise DeliveryError(f"connection to {host} failed: {type(exc).__name__}: {exc}") from None


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: a number of seconds, or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


def _snippet(body: bytes) -> str:
    return " ".join(body[:300].decode("utf-8", errors="replace").split())
