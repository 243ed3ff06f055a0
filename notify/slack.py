"""Slack incoming webhook: a readable message (severity, who, what, the explanation, a link).

Block Kit, within Slack's documented limits: a ``header`` (plain text, at
most 150 characters), a ``section`` with the explanation (mrkdwn, at most
3,000), a ``section`` with what the incident's other detectors found, up to
ten ``fields`` (at most 2,000 each), a ``context`` line for who acknowledged,
closed or reopened it, and an ``actions`` button to the incident in the
dashboard, and a ``context`` line with the command that shows the incident
(``accesswatch incident``) and, without a link, the commands to act.
``text`` is the notification's plain fallback.  Slack answers ``200 ok``; a
429 carries Retry-After.

Slack cannot collapse repeats: a page delivered again after a crash before
it was recorded as sent shows twice (at least once, as the outbox promises).
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from pydantic import AfterValidator, SecretStr

from models.page import Page, PageKind
from notify.base import DeliveryError, commands, done_by, headline, look_step, refreshed_line, traits, when
from notify.http import HttpNotifier, HttpSettings, check_http_url, post_json, where

_EMOJI = {
    "low": ":large_blue_circle:",
    "medium": ":large_yellow_circle:",
    "high": ":red_circle:",
    "critical": ":rotating_light:",
}
_DONE = {
    PageKind.ACKNOWLEDGE: ":eyes:",
    PageKind.RESOLVE: ":white_check_mark:",
    PageKind.REOPEN: ":leftwards_arrow_with_hook:",
}


def _secret_url(value: SecretStr) -> SecretStr:
    check_http_url(value.get_secret_value())
    return value


class SlackSettings(HttpSettings):
    url: Annotated[SecretStr, AfterValidator(_secret_url)]  # the webhook URL is the credential


def escape(text: str) -> str:
    """Slack's three control characters, so that data (a summary, an actor id) cannot format or mention."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def message(page: Page) -> dict[str, Any]:
    """The Block Kit message for a page."""
    incident, alert = page.incident, page.alert
    icon = _DONE.get(page.kind, _EMOJI[incident.severity.value])
    title = escape(headline(page, 150 - 3))  # after the icon and a space, within the header's 150
    who = f"`{escape(incident.actor_id)}` ({escape(traits(incident))})"
    fields = [
        f"*Severity*\n{incident.severity.value}"
        + (f" (was {page.previous_severity.value})" if page.previous_severity else ""),
        f"*Who*\n{who}",
        f"*What*\n{escape(', '.join(incident.detectors))}",
        f"*When*\n{when(page)}",
        f"*Risk*\n{incident.risk_score:g} / 100, {len(incident.alert_ids)} alert(s)",
        f"*Incident*\n`{incident.incident_id}` ({incident.status.value.replace('_', ' ')})",
    ]
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _cut(f"{_plain_icon(page)} {title}", 150), "emoji": True},
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": _cut(f"{icon} {escape(alert.summary)}", 3000)}},
    ]
    if page.findings:
        also = "\n".join(f"• {escape(line)}" for line in page.findings)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _cut(f"*Also found*\n{also}", 3000)}})
    blocks.append({"type": "section", "fields": [{"type": "mrkdwn", "text": _cut(text, 2000)} for text in fields]})
    if page.action is not None:
        note = f": {escape(page.action.note)}" if page.action.note else ""
        blocks.append(
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": _cut(f"{escape(done_by(page))}{note}", 3000)}],
            }
        )
    late = refreshed_line(page)
    if late is not None:  # a trigger sent an hour late says what became of the incident meanwhile
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(escape(late), 3000)}]})
    # where the whole incident is, then what to do: the dashboard's button last, or the commands to act
    look, _, incident_command = look_step(page).partition(": ")
    steps = f"{look}: `{escape(incident_command)}`"
    if not page.link:
        lead = "Act on it:" if incident.open else "Not over?"
        steps += f"  {lead} " + "  ".join(f"`{escape(command)}`" for command in commands(page))
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(steps, 3000)}]})
    if page.link:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Open in accesswatch"},
                        "url": page.link[:3000],
                        "action_id": "open_incident",
                    }
                ],
            }
        )
    # the notification's own text, what a phone shows: the first line alone, the details are the blocks'
    return {"text": escape(headline(page)), "blocks": blocks}


def _plain_icon(page: Page) -> str:
    if page.kind is PageKind.RESOLVE:
        return "✅"
    if page.kind is PageKind.ACKNOWLEDGE:
        return "👀"
    if page.kind is PageKind.REOPEN:
        return "↩️"
    return {"low": "🔵", "medium": "🟡", "high": "🔴", "critical": "🚨"}[page.incident.severity.value]


class SlackNotifier(HttpNotifier[SlackSettings]):
    kind = "slack"
    Settings = SlackSettings

    def send(self, page: Page, delivery_id: str = "") -> None:
        settings = self.settings
        url = settings.url.get_secret_value()
        answer = post_json(url, orjson.dumps(message(page)), settings.timeout)
        if answer.body.strip() not in (b"ok", b""):
            # Slack's webhook says "ok"; anything else is a proxy or a wrong URL answering 200
            raise DeliveryError(f"unexpected answer from {where(url)}: {answer.body[:100]!r}", retryable=False)
