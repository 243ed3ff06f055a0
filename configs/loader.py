"""Load the configuration: defaults, then ``--config FILE``, then ``ACCESSWATCH_*`` variables.

Validation errors become one line that names the key, the value, where the
value came from and what was expected, so that an operator fixes the right
place at the first try.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from models.config import ConfigError, Settings

DEFAULT_CONFIG = Path(__file__).with_name("default.toml")
ENV_PREFIX = "ACCESSWATCH_"
# Variables under the prefix that are not configuration keys.
_NOT_KEYS = ("ACCESSWATCH_TEST_", "ACCESSWATCH_CONFIG", "ACCESSWATCH_CONTRACT_DIR")


def load_settings(
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build the validated settings; raise ``ConfigError`` with a one-line reason."""
    env = os.environ if env is None else env
    origins: dict[tuple[str, ...], str] = {}
    merged = _read_toml(DEFAULT_CONFIG)
    config_file = config_file or (Path(env["ACCESSWATCH_CONFIG"]) if env.get("ACCESSWATCH_CONFIG") else None)
    if config_file is not None:
        _merge(merged, _read_toml(config_file), origins, f"from {config_file}")
    for name, raw in sorted(env.items()):
        if not name.startswith(ENV_PREFIX) or name.startswith(_NOT_KEYS):
            continue
        path = tuple(part.lower() for part in name[len(ENV_PREFIX) :].split("__"))
        if not all(path):
            raise ConfigError(f"configuration error: {name}: empty key part (use double underscores between levels)")
        _set(merged, path, _env_value(raw))
        origins[path] = f"from {name}"
    for dotted, value in (overrides or {}).items():
        path = tuple(dotted.split("."))
        _set(merged, path, value)
        origins[path] = "from the command line"
    try:
        settings = Settings.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, merged, origins)) from None
    _check_detector_sections(merged, origins)
    return settings


def _check_detector_sections(merged: dict[str, Any], origins: Mapping[tuple[str, ...], str]) -> None:
    """Each detector validates its own section; report its errors like any other key's."""
    from detectors.registry import DETECTORS

    for name, section in merged.get("detectors", {}).items():
        detector = DETECTORS.get(name)
        if detector is None:
            known = ", ".join(sorted(DETECTORS))
            raise ConfigError(f"configuration error: unknown detector detectors.{name}: expected one of {known}")
        try:
            detector.Settings.model_validate(section)
        except ValidationError as exc:
            raise ConfigError(describe_validation_error(exc, merged, origins, prefix=("detectors", name))) from None


def describe_validation_error(
    exc: ValidationError,
    data: Mapping[str, Any],
    origins: Mapping[tuple[str, ...], str] | None = None,
    prefix: tuple[str, ...] = (),
) -> str:
    """The first error of a pydantic validation, as one line for a person."""
    error = exc.errors()[0]
    loc = prefix + tuple(str(part) for part in error["loc"])
    # pydantic puts union members and validator names in the location; drop
    # the parts that are not keys of the data
    key_path = _existing_prefix(data, loc, len(prefix))
    key = ".".join(key_path) or "(top level)"
    value = _lookup(data, key_path)
    origin = (origins or {}).get(key_path, "")
    expected = error["msg"]
    for noise in ("Value error, ", "Input should be "):
        if expected.startswith(noise):
            expected = expected[len(noise) :]
    if error["type"] == "extra_forbidden":
        return f"configuration error: unknown key {key} {origin}".rstrip() + ": check its spelling and section"
    if error["type"] == "missing":
        return f"configuration error: {key} is missing: it is required"
    shown = repr(value) if value is not _MISSING else "(absent)"
    where = f" ({origin})" if origin else ""
    return f"configuration error: {key} = {shown}{where}: expected {expected[0].lower()}{expected[1:]}"


_MISSING = object()


def _existing_prefix(data: Any, loc: tuple[str, ...], skip: int) -> tuple[str, ...]:
    node, path = data, list(loc[:skip])
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


def _lookup(data: Any, path: tuple[str, ...]) -> Any:
    node = data
    for part in path:
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"configuration error: config file {path} does not exist") from None
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
    origins: dict[tuple[str, ...], str],
    origin: str,
    path: tuple[str, ...] = (),
) -> None:
    for key, value in extra.items():
        here = (*path, key)
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value, origins, origin, here)
        else:
            base[key] = value
            origins[here] = origin


def _set(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = data
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[path[-1]] = value
