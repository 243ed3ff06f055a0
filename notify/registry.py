"""Every receiver type the product knows, and building the configured receivers.

A receiver is a name used in ``notify.receivers`` or a route; its section
``notify.settings.<name>`` says its ``kind`` (default: the name itself, so
``[notify.settings.pagerduty]`` is a PagerDuty receiver) and the rest is
validated by that kind's settings model.  Adding a receiver type: its
module, and one line here.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from models.config import ConfigError, Notify, Settings
from notify.alertmanager import AlertmanagerNotifier
from notify.base import Notifier
from notify.console import ConsoleNotifier
from notify.email_smtp import EmailNotifier
from notify.jsonl_file import JsonlFileNotifier
from notify.pagerduty import PagerDutyNotifier
from notify.slack import SlackNotifier
from notify.webhook import WebhookNotifier

RECEIVERS: dict[str, type[Notifier]] = {
    ConsoleNotifier.kind: ConsoleNotifier,
    JsonlFileNotifier.kind: JsonlFileNotifier,
    WebhookNotifier.kind: WebhookNotifier,
    SlackNotifier.kind: SlackNotifier,
    PagerDutyNotifier.kind: PagerDutyNotifier,
    AlertmanagerNotifier.kind: AlertmanagerNotifier,
    EmailNotifier.kind: EmailNotifier,
}


def receiver_names(notify: Notify) -> list[str]:
    """Every receiver the configuration names (routes, escalations, the default route, settings), once each."""
    names = list(notify.receivers)
    for route in notify.routes:
        names += route.receivers
        for step in route.escalate:
            names += step.receivers
    names += list(notify.settings)
    return list(dict.fromkeys(names))


def build_receivers(config: Settings) -> dict[str, Notifier]:
    """The configured receivers by name; ``ConfigError`` names the first wrong value (secrets not shown)."""
    from configs.loader import describe_validation_error

    receivers: dict[str, Notifier] = {}
    for name in receiver_names(config.notify):
        section = dict(config.notify.settings.get(name, {}))
        kind = section.pop("kind", name)
        cls = RECEIVERS.get(kind)
        if cls is None:
            known = ", ".join(sorted(RECEIVERS))
            where = (
                f"notify.settings.{name}.kind = {kind!r}" if name in config.notify.settings else f"receiver {name!r}"
            )
            raise ConfigError(
                f"configuration error: {where}: expected a receiver kind ({known});"
                f" a receiver named otherwise needs a [notify.settings.{name}] table with kind = ..."
            )
        try:
            settings = cls.Settings.model_validate(cls.complete(section, config))
        except ValidationError as exc:
            shown = {"notify": {"settings": {name: _masked(cls, section)}}}
            raise ConfigError(describe_validation_error(exc, shown, prefix=("notify", "settings", name))) from None
        receivers[name] = cls(name, settings)
    return receivers


def _masked(cls: type[Notifier], section: dict[str, Any]) -> dict[str, Any]:
    """The section with secret values replaced, for error messages."""
    secret = {key for key, field in cls.Settings.model_fields.items() if "SecretStr" in str(field.annotation)}
    aliases = {field.alias: key for key, field in cls.Settings.model_fields.items() if field.alias}
    return {key: ("<secret>" if aliases.get(key, key) in secret else value) for key, value in section.items()}
