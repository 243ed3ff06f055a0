"""Load the configuration: defaults, then ``--config FILE``, then ``ACCESSWATCH_*`` variables.

Validation errors become one line that names the key, the value, where the
value came from and what was expected, so that an operator fixes the right
place at the first try.  Every such line is made here (``config_line``), for
the sections the product validates and for those its adapters, detectors and
receivers validate with models of their own.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time
from importlib import import_module
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from models.config import CROSS_FIELD, ConfigError, Settings

DEFAULT_CONFIG = Path(__file__).with_name("default.toml")
ENV_PREFIX = "ACCESSWATCH_"
# Variables under the prefix that are not configuration keys.
_NOT_KEYS = ("ACCESSWATCH_TEST_", "ACCESSWATCH_CONFIG", "ACCESSWATCH_CONTRACT_DIR")

KeyPath = tuple[str, ...]
# where each value came from ("ACCESSWATCH_X", a file, "the command line"), by key path; the
# root's entry is the defaults file, the origin of every value nothing overrode
Origins = Mapping[KeyPath, str]
_DEFAULTS_ORIGIN = "configs/default.toml"

# sections validated by the adapter that owns them, as "module:model"; checked at load only when present
_ADAPTER_SECTIONS: dict[KeyPath, str] = {
    ("source", "kafka"): "ingest.kafka_settings:KafkaSettings",
    ("store", "elasticsearch"): "store.elasticsearch.settings:ElasticsearchSettings",
}
_MAX_SHOWN = 80  # characters of a value in an error line: a whole section would bury the key at fault
_UTF8_BOM = b"\xef\xbb\xbf"
ABSENT = object()  # the value of a key that is not there

ModelT = TypeVar("ModelT", bound=BaseModel)


def load_settings(
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build the validated settings; raise ``ConfigError`` with a one-line reason."""
    env = os.environ if env is None else env
    origins: dict[KeyPath, str] = {(): _DEFAULTS_ORIGIN}
    merged = _read_toml(DEFAULT_CONFIG)
    config_file = config_file or (Path(env["ACCESSWATCH_CONFIG"]) if env.get("ACCESSWATCH_CONFIG") else None)
    if config_file is not None:
        _merge(merged, _read_toml(config_file), origins, str(config_file))
    _apply_environment(merged, origins, env)
    for dotted, value in (overrides or {}).items():
        path = tuple(dotted.split("."))
        _set(merged, path, value)
        origins[path] = "the command line"
    _refuse_non_finite(merged, origins)
    _default_detector_sections(merged)
    settings = validate_section(Settings, merged, merged, origins)
    _check_detector_sections(merged, origins, settings)
    _check_adapter_sections(merged, origins)
    _check_kafka_outlasts_store_retries(settings, merged, origins)
    _check_receivers(settings, origins)
    _check_detector_names(settings, origins)
    settings._config_file = config_file.resolve() if config_file is not None else None
    return settings


def setting_variables(env: Mapping[str, str] | None = None) -> list[str]:
    """The names of the ``ACCESSWATCH_*`` variables that set configuration keys, sorted."""
    env = os.environ if env is None else env
    # as for ACCESSWATCH_CONFIG: an empty variable is unset (write '""' for an empty string)
    return sorted(
        name
        for name, raw in env.items()
        if name.startswith(ENV_PREFIX) and not name.startswith(_NOT_KEYS) and raw != ""
    )


def _apply_environment(merged: dict[str, Any], origins: dict[KeyPath, str], env: Mapping[str, str]) -> None:
    for name in setting_variables(env):
        raw = env[name]
        spelled = tuple(part.lower() for part in name[len(ENV_PREFIX) :].split("__"))
        if not all(spelled):
            raise ConfigError(f"configuration error: {name}: empty key part (use double underscores between levels)")
        path = _key_path(merged, spelled, name)
        _set(merged, path, _env_value(raw))
        origins[path] = name


def _key_path(merged: Mapping[str, Any], spelled: KeyPath, name: str) -> KeyPath:
    """The keys a variable's name spells, each as the configuration already names it.

    A shell cannot export a name with a dash or in lower case, so ``_`` in a variable stands for ``_``
    or ``-`` and the case is ignored: ``ON_CALL`` reaches the receiver ``on-call`` (or ``On-Call``).  A name
    that matches no key is taken as spelled (lower case), as before; a dash written in the name means a
    dash.  One that matches two keys (receivers ``on-call`` and ``on_call``) is refused: either may be meant.
    """
    path: list[str] = []
    for part in spelled:
        known = _names_at(merged, tuple(path))
        if "-" in part:
            found = [key for key in known if key.lower() == part]
        else:
            found = [key for key in known if key.lower().replace("-", "_") == part]
        if len(found) > 1:
            keys = " and ".join(".".join((*path, key)) for key in sorted(found))
            raise ConfigError(
                f"configuration error: {name} names both {keys} (a variable spells '-' as '_' and ignores case):"
                " rename one of them, or set it in the --config file"
            )
        path.append(found[0] if found else part)
    return tuple(path)


def _names_at(merged: Mapping[str, Any], path: KeyPath) -> list[str]:
    """The keys the configuration has at ``path``; for the receivers' settings, every receiver it names too."""
    table = _lookup(merged, path)
    names = list(table) if isinstance(table, Mapping) else []
    if path == ("notify", "settings") and isinstance(merged.get("notify"), Mapping):
        names += _receivers_named(merged["notify"])
    return list(dict.fromkeys(names))


def _receivers_named(notify: Mapping[str, Any]) -> list[str]:
    """The receiver names in ``notify.receivers`` and the routes' lists, as written (before validation)."""
    lists: list[Any] = [notify.get("receivers")]
    for route in _tables(notify.get("routes")):
        lists.append(route.get("receivers"))
        lists += [step.get("receivers") for step in _tables(route.get("escalate"))]
    return [name for names in lists if isinstance(names, list) for name in names if isinstance(name, str)]


def _tables(items: Any) -> list[Mapping[str, Any]]:
    """The tables of an array of tables (anything else is refused later, by validation, naming the key)."""
    return [item for item in items if isinstance(item, Mapping)] if isinstance(items, list) else []


def _refuse_non_finite(node: Any, origins: Origins, path: KeyPath = ()) -> None:
    """inf and nan are no setting anywhere, whichever model validates the section (TOML can write both)."""
    if isinstance(node, float) and not math.isfinite(node):
        raise ConfigError(config_line(path, node, "expected a finite number", origins))
    children = node.items() if isinstance(node, Mapping) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        _refuse_non_finite(child, origins, (*path, str(key)))


def validate_section(
    model: type[ModelT],
    section: Any,
    merged: Mapping[str, Any],
    origins: Origins | None = None,
    at: KeyPath = (),
    context: dict[str, Any] | None = None,
) -> ModelT:
    """``section`` (found at ``at`` in ``merged``) validated by ``model``; ``ConfigError`` names the first mistake.

    ``context`` is pydantic's validation context: what a section's validators may check it against.
    """
    try:
        return model.model_validate(section, context=context)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, merged, origins, prefix=at)) from None


def _default_detector_sections(merged: dict[str, Any]) -> None:
    """A registered detector with no section runs with its defaults: adding one is its file and a registry line,
    and its section in ``configs/default.toml`` documents and tunes it (it was silently not built)."""
    from detectors.registry import DETECTORS

    sections = merged.setdefault("detectors", {})
    if isinstance(sections, dict):  # anything else is refused by Settings, naming the key
        for name in DETECTORS:
            sections.setdefault(name, {})


def _check_detector_sections(merged: dict[str, Any], origins: Origins, settings: Settings) -> None:
    """Each detector validates its own section, given the product's settings as context (a contract's data classes
    are the classification's); report its errors like any other key's."""
    from detectors.registry import DETECTORS

    for name, section in merged.get("detectors", {}).items():
        detector = DETECTORS.get(name)
        if detector is None:
            known = ", ".join(sorted(DETECTORS))
            where = _origin(("detectors", name), origins)
            raise ConfigError(
                f"configuration error: unknown detector detectors.{name}{where}:{_meant(name, DETECTORS)}"
                f" expected one of {known}"
            )
        validate_section(detector.Settings, section, merged, origins, ("detectors", name), {"settings": settings})


def _check_adapter_sections(merged: dict[str, Any], origins: Origins) -> None:
    """The Kafka and Elasticsearch sections, checked now rather than when the adapter starts (secrets hidden)."""
    for path, model_name in _ADAPTER_SECTIONS.items():
        section = _lookup(merged, path)
        if not section or not isinstance(section, Mapping):  # a non-table was refused by Settings already
            continue
        module, _, name = model_name.partition(":")
        model: type[BaseModel] = getattr(import_module(module), name)
        shown = _replaced(merged, path, hide_secrets(model, section))
        validate_section(model, section, shown, origins, path)


def _check_kafka_outlasts_store_retries(settings: Settings, merged: Mapping[str, Any], origins: Origins) -> None:
    """A turn of the Kafka loop waits for one store call that fails: its retries (``retry_for``), and its last
    attempt, started just before they end (``request_timeout``).  Then the store is asked off the loop's thread,
    so that is all, whatever the partitions held; but past ``max_poll_interval`` the group counts the consumer
    dead and moves its partitions, so the interval must outlast that one call."""
    if settings.source.kind != "kafka" or settings.store.kind != "elasticsearch":
        return
    from ingest.kafka_settings import KafkaSettings
    from store.elasticsearch.settings import ElasticsearchSettings

    # both sections were validated above
    poll = KafkaSettings.model_validate(settings.source.kafka).max_poll_interval
    store = ElasticsearchSettings.model_validate(settings.store.elasticsearch)
    call = store.retry_for + store.request_timeout
    if poll > call:
        return
    poll_key, retry_key = ("source", "kafka", "max_poll_interval"), ("store", "elasticsearch", "retry_for")
    if _explicit_origins(retry_key, origins) and not _explicit_origins(poll_key, origins):
        key, value = retry_key, store.retry_for
        expected = (
            f"less than source.kafka.max_poll_interval ({poll:g} s) minus store.elasticsearch.request_timeout"
            f" ({store.request_timeout:g} s)"
        )
    else:
        key, value = poll_key, poll
        expected = (
            f"more than store.elasticsearch.retry_for + request_timeout ({store.retry_for:g} + "
            f"{store.request_timeout:g} s, one store call that fails)"
        )
    shown = _lookup(merged, key)
    reason = "a consumer waiting for the store that long is put out of its group"
    raise ConfigError(config_line(key, value if shown is ABSENT else shown, f"expected {expected}: {reason}", origins))


def _check_detector_names(settings: Settings, origins: Origins) -> None:
    """Routes and silences name detectors that exist: a typo ("bulk-read") would match no incident, silently."""
    from detectors.registry import DETECTORS

    notify = settings.notify
    named = [("routes", index, item.detectors) for index, item in enumerate(notify.routes)]
    named += [("silences", index, item.detectors) for index, item in enumerate(notify.silences)]
    for table, index, detectors in named:
        unknown = [name for name in detectors if name not in DETECTORS]
        if unknown:
            key_path = ("notify", table, str(index), "detectors")
            expected = f"detector names, {unknown[0]!r} is none of {', '.join(sorted(DETECTORS))}"
            raise ConfigError(config_line(key_path, detectors, expected, origins))


def _check_receivers(settings: Settings, origins: Origins) -> None:
    """Receiver names and settings are checked now, not at the first page (``replay --page``, ``run``)."""
    from notify.registry import receiver_settings

    receiver_settings(settings, origins)


def hide_secrets(model: type[BaseModel], section: Mapping[str, Any]) -> dict[str, Any]:
    """``section`` with the values of ``model``'s secret fields replaced, for error lines.

    The user and password written into a URL (``https://elastic:pw@es:9200``) are hidden too, in any value.
    """
    secret = {key for key, field in model.model_fields.items() if "SecretStr" in str(field.annotation)}
    aliases = {field.alias: key for key, field in model.model_fields.items() if field.alias}
    return {
        key: ("<secret>" if aliases.get(key, key) in secret else _without_userinfo(value))
        for key, value in section.items()
    }


# a URL's user (and password) before its host: "scheme://user:password@", or "user:password@host" (no scheme)
_USERINFO = re.compile(r"^(?:(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/?#@\s]*|[^/?#@:\s]*:[^/?#@\s]*)@")


def shown_url(url: str) -> str:
    """``url`` fit for a log or error line: ``https://<secret>@es:9200`` for ``https://elastic:pw@es:9200``."""
    return _USERINFO.sub(lambda found: f"{found['scheme'] or ''}<secret>@", url, count=1)


def _without_userinfo(value: Any) -> Any:
    if isinstance(value, str):
        return shown_url(value)
    if isinstance(value, list):
        return [_without_userinfo(item) for item in value]
    return value


def _replaced(data: Mapping[str, Any], path: KeyPath, value: Any) -> dict[str, Any]:
    """A copy of ``data`` with the value at ``path`` replaced (the tables on the way copied, not changed)."""
    copy = dict(data)
    if len(path) == 1:
        copy[path[0]] = value
    else:
        copy[path[0]] = _replaced(copy.get(path[0], {}), path[1:], value)
    return copy


# -- one line per mistake ----------------------------------------------------------------------------------------


def describe_validation_error(
    exc: ValidationError,
    data: Mapping[str, Any],
    origins: Origins | None = None,
    prefix: KeyPath = (),
) -> str:
    """The first error of a pydantic validation, as one line for a person."""
    errors = exc.errors()
    error = _first_to_tell(errors)
    loc = prefix + tuple(str(part) for part in error["loc"])
    # pydantic puts union members and validator names in the location; drop
    # the parts that are not keys of the data
    key_path = _existing_prefix(data, loc, len(prefix))
    origins = origins or {}
    if error["type"] == CROSS_FIELD:
        key_path = _culprit(key_path, error.get("ctx", {}).get("keys", ()), origins, data)
    key = ".".join(key_path) or "(top level)"
    if error["type"] == "extra_forbidden":
        where = _origin(key_path, origins)
        siblings = _lookup(data, key_path[:-1]) if key_path else None
        known = [k for k in siblings if k != key_path[-1]] if isinstance(siblings, Mapping) else []
        # and the keys its table misses: ``field = [...]`` where ``fields`` is required
        known += [str(e["loc"][-1]) for e in errors if e["type"] == "missing" and e["loc"][:-1] == error["loc"][:-1]]
        meant = _meant(key_path[-1], known) if key_path else ""
        return f"configuration error: unknown key {key}{where}:{meant or ' check its spelling and section'}"
    if error["type"] == "missing":  # the origin is its table's
        return f"configuration error: {key} is missing{_origin(key_path[:-1], origins)}: it is required"
    return config_line(key_path, _lookup(data, key_path), _expectation(error), origins)


def _first_to_tell(errors: list[ErrorDetails]) -> ErrorDetails:
    """The error to tell: the first, unless a key is missing from a table that holds an unknown key (then that
    key, most likely the missing one misspelt: ``field`` for ``fields``)."""
    first = errors[0]
    if first["type"] == "missing":
        for error in errors[1:]:
            if error["type"] == "extra_forbidden" and error["loc"][:-1] == first["loc"][:-1]:
                return error
    return first


def _meant(name: str, known: Iterable[str]) -> str:
    """`` did you mean 'organisation'?`` for a near miss among the keys there (a US spelling, a plural), else ''."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.8)
    return f" did you mean {close[0]!r}?" if close else ""


def config_line(
    key_path: KeyPath, value: Any, expectation: str, origins: Origins | None = None, origin_of: KeyPath | None = None
) -> str:
    """``configuration error: <key> = <value> (from <origin>): <expectation>``, the value cut to a readable length.

    ``value`` is ``ABSENT`` for a key that is not there; ``origin_of`` is where to look for the origin
    when not at ``key_path`` (the table of an absent key).
    """
    key = ".".join(key_path) or "(top level)"
    where = _origin(key_path if origin_of is None else origin_of, origins or {})
    return f"configuration error: {key} = {_shown(value)}{where}: {expectation}"


def _shown(value: Any) -> str:
    if value is ABSENT:
        return "(absent)"
    text = _as_written(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def _as_written(value: Any) -> str:
    """A value as TOML (or a variable, read as TOML) writes it where Python's ``repr`` differs: ``true``, not
    ``True``, and a date-time in RFC 3339; inside an array or a table too."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, list):
        return f"[{', '.join(map(_as_written, value))}]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{key!r}: {_as_written(item)}" for key, item in value.items()) + "}"
    return repr(value)


def _origin(key_path: KeyPath, origins: Origins) -> str:
    """`` (from X)``: the value's own origin, else those of the keys inside it, else the table it is part of."""
    if not origins:
        return ""
    found = _explicit_origins(key_path, origins) or [origins.get((), "")]
    return f" (from {', '.join(found)})" if found[0] else ""


def _explicit_origins(key_path: KeyPath, origins: Origins) -> list[str]:
    """Where an operator set this value: the key itself, keys under it (a table), or a list or table above it."""
    if key_path in origins and key_path:
        return [origins[key_path]]
    depth = len(key_path)
    inside = [origin for path, origin in origins.items() if len(path) > depth and path[:depth] == key_path]
    if inside:
        return sorted(set(inside))
    for length in range(len(key_path) - 1, 0, -1):  # an element of a list set whole, a key of a table set whole
        if key_path[:length] in origins:
            return [origins[key_path[:length]]]
    return []


def _culprit(section: KeyPath, keys: tuple[str, ...], origins: Origins, data: Mapping[str, Any]) -> KeyPath:
    """Of the keys a cross-field rule names, the first one the operator set; else the first one there; else the first.

    A key not in ``data`` was set by nobody, even in a table a file set whole (its origin is the file's): the
    defaulted ``heartbeat_interval`` is not at fault when ``session_timeout`` was set too short.
    """
    candidates = [(*section, *key.split(".")) for key in keys]
    present = [candidate for candidate in candidates if _lookup(data, candidate) is not ABSENT]
    for candidate in present:
        if _explicit_origins(candidate, origins):
            return candidate
    return (present or candidates or [section])[0]


# pydantic's error types, as what a person was expected to write
_WANTED = {
    "int_type": "a valid integer",
    "int_parsing": "a valid integer",
    "int_from_float": "a whole number",
    "float_type": "a valid number",
    "float_parsing": "a valid number",
    "bool_type": "a boolean (true or false)",
    "bool_parsing": "a boolean (true or false)",
    "string_type": "a string",
    "list_type": "an array",
    "tuple_type": "an array",
    "set_type": "an array",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
    "dataclass_type": "a table",
    "path_type": "a path (a string)",
    "datetime_type": "a date-time such as 2026-11-02T22:00:00+08:00",
    "datetime_parsing": "a date-time such as 2026-11-02T22:00:00+08:00",
    "datetime_from_date_parsing": "a date-time such as 2026-11-02T22:00:00+08:00",
    "finite_number": "a finite number",
}
# a validator's message that states a rule rather than what to write is shown as it is
_STATEMENTS = (" must ", " needs ", " go together", " both set")


def _expectation(error: ErrorDetails) -> str:
    """What the operator should have written, in words, without pydantic's phrasing."""
    kind, message = error["type"], error["msg"]
    if kind in _WANTED:
        given = _toml_type(error["input"])
        wanted = _WANTED[kind]
        return f"expected {wanted}, not {given}" if kind.endswith(("_type", "_parsing")) else f"expected {wanted}"
    if kind in ("too_short", "too_long", "string_too_short", "string_too_long"):
        return _length_expectation(error)
    for noise in ("Value error, ", "Assertion failed, ", "Input should be "):
        message = message.removeprefix(noise)
    if kind != CROSS_FIELD and any(word in f" {message} " for word in _STATEMENTS):
        return message
    return f"expected {message[:1].lower()}{message[1:]}"


def _length_expectation(error: ErrorDetails) -> str:
    context = error.get("ctx", {})
    text = isinstance(error["input"], str) or error["type"].startswith("string")
    if error["type"].endswith("too_short"):
        bound, limit = "at least", context.get("min_length")
    else:
        bound, limit = "at most", context.get("max_length")
    unit = ("character" if text else "item") + ("" if limit == 1 else "s")
    # a string's own length is left out: the string may be a secret
    actual = "" if text or "actual_length" not in context else f", not {context['actual_length']}"
    return f"expected {bound} {limit} {unit}{actual}"


def _toml_type(value: Any) -> str:
    """A value's type in the words of TOML, the language the operator wrote it in."""
    for kind, name in (
        (bool, "a boolean"),
        (int, "an integer"),
        (float, "a float"),
        (str, "a string"),
        (list, "an array"),
        (Mapping, "a table"),
        (datetime, "a date-time"),
        (date, "a date"),
        (time, "a time"),
    ):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def _existing_prefix(data: Any, loc: KeyPath, skip: int) -> KeyPath:
    """``loc`` as far as it names keys of ``data``; its first ``skip`` parts (where the section is) are given."""
    node, path = _lookup(data, loc[:skip]), list(loc[:skip])
    for part in loc[skip:]:
        if isinstance(node, Mapping) and part in node:
            node = node[part]
            path.append(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
            path.append(part)
        elif isinstance(node, Mapping) and not path[skip:]:
            path.append(part)  # a missing or unknown key at this level
            break
        else:
            if isinstance(node, Mapping) and part not in node and part.isidentifier():
                path.append(part)
            break
    return tuple(path)


def _lookup(data: Any, path: KeyPath) -> Any:
    node = data
    for part in path:
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return ABSENT
    return node


# -- reading ------------------------------------------------------------------------------------------------------


def _read_toml(path: Path) -> dict[str, Any]:
    """A TOML file as a table; any reason it cannot be read is one line, never a traceback."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"configuration error: config file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"configuration error: config file {path} is a directory: expected a TOML file") from None
    except OSError as exc:
        raise ConfigError(f"configuration error: config file {path} cannot be read: {exc.strerror}") from None
    # editors on Windows save UTF-8 with a byte order mark, which tomllib refuses as an invalid statement
    raw = raw.removeprefix(_UTF8_BOM)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"configuration error: config file {path} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset"
            f" {exc.start}): expected a TOML file, which is UTF-8"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"configuration error: {path} is not valid TOML: {exc}") from None


def _env_value(raw: str) -> Any:
    """An environment value is read as a TOML value when it is one, else as a string."""
    try:
        return tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError:
        return raw


def _merge(
    base: dict[str, Any],
    extra: Mapping[str, Any],
    origins: dict[KeyPath, str],
    origin: str,
    path: KeyPath = (),
) -> None:
    for key, value in extra.items():
        here = (*path, key)
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value, origins, origin, here)
        else:
            base[key] = value
            origins[here] = origin


def _set(data: dict[str, Any], path: KeyPath, value: Any) -> None:
    node = data
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[path[-1]] = value
