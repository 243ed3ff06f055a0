"""Configuration: defaults, overrides by file and environment, and one-line errors with exit code 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from configs.loader import load_settings
from detectors.new_access import _is_external
from detectors.registry import build_detectors
from models.config import ConfigError, Organisation


def test_defaults_load_and_every_detector_builds():
    settings = load_settings(env={})
    names = [d.name for d in build_detectors(settings.detectors)]
    assert names == [
        "bulk_read", "sensitive_access", "egress", "off_hours", "new_access", "denied_burst", "dormant",
        "isolation_forest",
    ]
    assert settings.windows.short == 3600 and settings.store.kind == "sqlite"


def test_the_models_own_defaults_are_the_validated_values():
    """pydantic does not validate a default: one written as text would stay text, and ``ip in "10.0.0.0/8"``
    fails in the new-access detector for settings built in code rather than loaded from the TOML."""
    built = Organisation()
    assert built.internal_networks == load_settings(env={}).organisation.internal_networks
    assert not _is_external("10.1.2.3", built.internal_networks)
    assert _is_external("203.0.113.9", built.internal_networks)


def test_environment_overrides_any_value_with_toml_typing():
    settings = load_settings(
        env={
            "ACCESSWATCH_DATA_DIR": "/srv/aw",
            "ACCESSWATCH_WINDOWS__ALLOWED_LATENESS": "30m",
            "ACCESSWATCH_NOTIFY__RECEIVERS": '["console"]',
            "ACCESSWATCH_DETECTORS__BULK_READ__MIN_RECORDS": "500",
            "ACCESSWATCH_ORGANISATION__TIMEZONE": "Europe/Paris",
            "ACCESSWATCH_TEST_ES_URL": "http://ignored",  # test switches are not configuration
        }
    )
    assert str(settings.data_dir) == "/srv/aw"
    assert settings.windows.allowed_lateness == 1800
    assert settings.notify.receivers == ["console"]
    assert settings.detectors["bulk_read"]["min_records"] == 500
    assert settings.organisation.timezone == "Europe/Paris"


def test_a_config_file_merges_over_the_defaults_and_env_wins(tmp_path):
    path = tmp_path / "site.toml"
    path.write_text('[ingest]\nbatch_lines = 123\n[organisation]\ntimezone = "UTC"\n')
    settings = load_settings(path, env={"ACCESSWATCH_INGEST__BATCH_LINES": "456"})
    assert settings.ingest.batch_lines == 456 and settings.organisation.timezone == "UTC"
    assert settings.ingest.max_line_bytes == 1_048_576  # untouched defaults stay


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"ACCESSWATCH_WINDOWS__SHORT": "7x"},
            "windows.short = '7x' (from ACCESSWATCH_WINDOWS__SHORT): expected a duration",
        ),
        (
            {"ACCESSWATCH_STORE__KIND": "mysql"},
            "store.kind = 'mysql' (from ACCESSWATCH_STORE__KIND): expected 'sqlite' or",
        ),
        ({"ACCESSWATCH_INGEST__BATCH_LINES": "0"}, "ingest.batch_lines = 0"),
        ({"ACCESSWATCH_ORGANISATION__TIMEZONE": "Mars/Base"}, "expected an IANA time zone"),
        ({"ACCESSWATCH_NOPE": "1"}, "unknown key nope"),
        ({"ACCESSWATCH_WINDOWS__LONG": "90m"}, "windows.long must be a whole multiple of windows.short"),
    ],
)
def test_wrong_values_name_key_value_and_expectation(env, expected):
    with pytest.raises(ConfigError) as caught:
        load_settings(env=env)
    message = str(caught.value)
    assert expected in message and "\n" not in message


def test_detector_sections_are_validated_by_their_detector():
    with pytest.raises(ConfigError, match=r"detectors.bulk_read.min_ratio = 0.5: expected greater than or equal to 1"):
        build_detectors({"bulk_read": {"min_ratio": 0.5}})
    with pytest.raises(ConfigError, match=r"unknown detector detectors\.bulkread"):
        build_detectors({"bulkread": {}})
    with pytest.raises(ConfigError, match="three ascending scores"):
        build_detectors({"egress": {"severity_scores": [5, 3, 7]}})
    assert build_detectors({"dormant": {"enabled": False}}) == []


def test_a_classification_field_in_two_classes_is_refused(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[classification.classes.contact]\nsensitivity = "medium"\nfields = ["phone", "name"]\n')
    with pytest.raises(ConfigError, match="field 'name' is in both"):
        load_settings(path, env={})


def test_the_command_exits_2_with_one_line(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "accesswatch.cli", "alerts", "--data-dir", str(tmp_path)],
        env={"ACCESSWATCH_DETECTORS__EGRESS__MIN_RATIO": "-1", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines == [
        "configuration error: detectors.egress.min_ratio = -1 (from ACCESSWATCH_DETECTORS__EGRESS__MIN_RATIO):"
        " expected greater than or equal to 1"
    ]
