"""Every receiver type the product knows, and building the configured receivers.

A receiver is a name used in ``notify.receivers`` or a route; its section
``notify.settings.<name>`` says its ``kind`` (default: the name itself, so
``[notify.settings.pagerduty]`` is a PagerDuty receiver) and the rest is
validated by that kind's settings model.  Adding a receiver type: its
module, and one line here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import ValidationError

from models.config import ConfigError, Notify, Settings
from notify.alertmanager import AlertmanagerNotifier
from notify.base import Notifier, ReceiverSettings
from notify.console import ConsoleNotifier
from notify.email_smtp import EmailNotifier
from notify.jsonl_file import JsonlFileNotifier
from notify.pagerduty import PagerDutyNotifier
from notify.slack import SlackNotifier
from notify.webhook import WebhookNotifier

if TYPE_CHECKING:
    from configs.loader import Origins

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
    return {name: cls(name, settings) for name, (cls, settings) in receiver_settings(config).items()}


def receiver_settings(
    config: Settings, origins: Origins | None = None
) -> dict[str, tuple[type[Notifier], ReceiverSettings]]:
    """Each configured receiver's type and validated settings, without building it (the loader checks these).

    ``ConfigError`` names the first wrong value, with its origin when ``origins`` (``configs.loader``) is given.
    """
    from configs.loader import describe_validation_error, hide_secrets

    checked: dict[str, tuple[type[Notifier], ReceiverSettings]] = {}
    for name in receiver_names(config.notify):
        section = dict(config.notify.settings.get(name, {}))
        kind = section.pop("kind", name)
        cls = RECEIVERS.get(kind)
        if cls is None:
            raise ConfigError(_unknown_receiver(config.notify, name, kind, origins))
        try:
            settings = cls.Settings.model_validate(cls.complete(section, config))
        except ValidationError as exc:
            shown = {"notify": {"settings": {name: hide_secrets(cls.Settings, section)}}}
            at = ("notify", "settings", name)
            raise ConfigError(describe_validation_error(exc, shown, origins, prefix=at)) from None
        checked[name] = (cls, settings)
    return checked


def _unknown_receiver(notify: Notify, name: str, kind: str, origins: Origins | None) -> str:
    """The line for a receiver with no known kind: at its ``kind`` key, else at the list that names it."""
    from configs.loader import ABSENT, config_line

    known = ", ".join(sorted(RECEIVERS))
    if name in notify.settings:
        key_path = ("notify", "settings", name, "kind")
        if "kind" in notify.settings[name]:
            return config_line(key_path, kind, f"expected a receiver kind ({known})", origins)
        expectation = f"expected a receiver kind ({known}): without one, the name {name!r} is taken as the kind"
        return config_line(key_path, ABSENT, expectation, origins, origin_of=key_path[:-1])
    where, names = _where_named(notify, name)
    return config_line(
        where,
        names,
        f"expected receiver names that are kinds ({known}) or have a [notify.settings.<name>] table;"
        f" receiver {name!r} has neither",
        origins,
    )


def _where_named(notify: Notify, name: str) -> tuple[tuple[str, ...], list[str]]:
    """The first list of receivers that names ``name``, and that list."""
    if name in notify.receivers:
        return ("notify", "receivers"), notify.receivers
    for r, route in enumerate(notify.routes):
        if name in route.receivers:
            return ("notify", "routes", str(r), "receivers"), route.receivers
        for e, step in enumerate(route.escalate):
            if name in step.receivers:
                return ("notify", "routes", str(r), "escalate", str(e), "receivers"), step.receivers
    return ("notify", "receivers"), notify.receivers  # receiver_names found it in one of these
