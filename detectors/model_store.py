"""Trained behaviour models on disk, each with what it takes to trust it later.

An artefact is two files in the model directory (``<data dir>/models`` by
default): ``<version>.json``, the description a person or ``accesswatch
models`` reads (training span in event time, feature list, parameters,
thresholds, library versions), and ``<version>.pkl``, the fitted model.  The
description is read and checked first: a model trained on another feature
list is refused before its pickle is opened, and the pickle's SHA-256 must
match the one recorded beside it.

Pickles run code when loaded: only files this program wrote into its own
data dir are ever loaded, and a model directory must not be writable by
anyone the product does not trust.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from models.alert import UtcTime

ARTEFACT_FORMAT = 1
DEFAULT_DIR = "models"


class FeatureMismatch(ValueError):
    """A model was trained on other features than the ones this build computes."""


class ArtefactError(ValueError):
    """A model file is missing, unreadable or not what its description says."""


class ModelArtefact(BaseModel):
    """What a trained model is: enough to audit an alert it raised months later."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: int = ARTEFACT_FORMAT
    detector: str
    scale: Literal["short", "long"]
    version: str
    trained_from: UtcTime  # event time of the first training window
    trained_to: UtcTime  # event time the training history ends (the refit moment)
    windows: int
    actor_days: int
    features: list[str]
    params: dict[str, Any]
    budgets: dict[str, float]  # alerts per 1,000 actor-days at each severity, as configured
    thresholds: dict[str, float]  # the anomaly score each severity starts at, from the training scores
    library: dict[str, str]  # versions of what fitted it
    sha256: str = ""  # of the pickle


def version_name(detector: str, scale: str, trained_to: float, training_data: bytes) -> str:
    """From event time and the training data: a replay writes the same name, another stream another name.

    (Kafka runs an engine per partition, each with a model of its own, in one data dir.)
    """
    digest = hashlib.sha256(training_data).hexdigest()[:8]
    return f"{detector}-{scale}-{datetime.fromtimestamp(trained_to, UTC):%Y%m%dT%H%M%SZ}-{digest}"


def resolve_dir(data_dir: Path, configured: Path | None) -> Path:
    """The model directory: as configured (relative to the data dir), else ``<data dir>/models``."""
    if configured is None:
        return Path(data_dir) / DEFAULT_DIR
    return configured if configured.is_absolute() else Path(data_dir) / configured


def describe_mismatch(version: str, trained: Sequence[str], current: Sequence[str]) -> str:
    missing = [name for name in trained if name not in current]
    added = [name for name in current if name not in trained]
    detail = []
    if added:
        detail.append(f"new: {', '.join(added[:6])}{' ...' if len(added) > 6 else ''}")
    if missing:
        detail.append(f"gone: {', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''}")
    if not detail:
        detail.append("the same names in another order")
    return (
        f"model {version} was trained on {len(trained)} features and this configuration computes"
        f" {len(current)} ({'; '.join(detail)}): it cannot score these windows; it will be retrained"
        " from new history (the data classes or the accesswatch version changed)"
    )


class ModelStore:
    """A directory of artefacts."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def save(self, artefact: ModelArtefact, model: Any) -> ModelArtefact:
        """Write the model and its description (atomically, each); returns the description as saved."""
        self.directory.mkdir(parents=True, exist_ok=True)
        payload = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
        artefact = artefact.model_copy(update={"sha256": hashlib.sha256(payload).hexdigest()})
        _write_atomically(self.directory / f"{artefact.version}.pkl", payload)
        _write_atomically(self.directory / f"{artefact.version}.json", artefact.model_dump_json(indent=2).encode())
        return artefact

    def describe(self, version: str) -> ModelArtefact:
        path = self.directory / f"{version}.json"
        try:
            return ModelArtefact.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            raise ArtefactError(f"model {version}: no description at {path}") from None
        except ValidationError as exc:
            reason = exc.errors()[0]["msg"]
            raise ArtefactError(f"model {version}: {path} is not a model description: {reason}") from None

    def load(self, version: str, features: Sequence[str]) -> tuple[ModelArtefact, Any]:
        """The model and its description; ``FeatureMismatch`` when it was trained on other features."""
        artefact = self.describe(version)
        if list(artefact.features) != list(features):
            raise FeatureMismatch(describe_mismatch(version, artefact.features, features))
        path = self.directory / f"{version}.pkl"
        try:
            payload = path.read_bytes()
        except FileNotFoundError:
            raise ArtefactError(f"model {version}: the model file {path} is missing") from None
        if hashlib.sha256(payload).hexdigest() != artefact.sha256:
            raise ArtefactError(f"model {version}: {path} does not match the checksum in its description")
        return artefact, pickle.loads(payload)  # our own file, checksummed: see the module's note

    def artefacts(self, detector: str | None = None) -> list[ModelArtefact]:
        """Every readable description, oldest training end first."""
        if not self.directory.is_dir():
            return []
        found = []
        for path in self.directory.glob("*.json"):
            try:
                artefact = ModelArtefact.model_validate_json(path.read_bytes())
            except (ValidationError, OSError):
                continue  # not ours, or half-written by a crash: never fatal for a listing
            if detector is None or artefact.detector == detector:
                found.append(artefact)
        return sorted(found, key=lambda a: (a.trained_to, a.scale, a.version))

    def prune(self, detector: str, scale: str, keep: int, protect: Sequence[str] = ()) -> list[str]:
        """Delete all but the newest ``keep`` models of a detector and scale (never one in ``protect``)."""
        mine = [a for a in self.artefacts(detector) if a.scale == scale]
        doomed = [a.version for a in mine[: max(0, len(mine) - keep)] if a.version not in protect]
        for version in doomed:
            for suffix in (".pkl", ".json"):
                (self.directory / f"{version}{suffix}").unlink(missing_ok=True)
        return doomed


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
