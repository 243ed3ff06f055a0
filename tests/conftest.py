"""Shared fixtures: the contract files, settings, and a fresh embedded store."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from configs.loader import load_settings
from models.config import Settings

REPO = Path(__file__).resolve().parents[1]


def contract_dir() -> Path:
    """``../shared/contract`` beside the repository (CI puts shared/ there); overridable for other layouts."""
    override = os.environ.get("ACCESSWATCH_CONTRACT_DIR")
    return Path(override) if override else REPO.parent / "shared" / "contract"


@pytest.fixture(scope="session")
def contract() -> Path:
    path = contract_dir()
    if not (path / "access-event.schema.json").is_file():
        pytest.fail(f"the outside contract is missing at {path}: set ACCESSWATCH_CONTRACT_DIR")
    return path


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The default configuration, with a data dir of the test's own and no environment overrides."""
    return load_settings(env={}, overrides={"data_dir": str(tmp_path / "data")})


@pytest.fixture
def sqlite_store(tmp_path: Path):
    from store.sqlite import SqliteStore

    store = SqliteStore(tmp_path / "store" / "accesswatch.db", cache_mb=16)
    yield store
    store.close()
