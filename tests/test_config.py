"""Configuration: defaults, overrides by file and environment, and one-line errors with exit code 2."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import orjson
import pytest
from pydantic import ValidationError

from accesswatch import cli
from configs.loader import DEFAULT_CONFIG, load_settings, shown_url
from detectors.new_access import is_external
from detectors.registry import DETECTORS, build_detectors
from ingest.simulator import SimulationSettings
from ingest.simulator.settings import MAX_EMPLOYEES, MIN_EMPLOYEES
from models.config import ConfigError, Organisation, SimulatorSource
from tests.fakes.paging_receivers import self_signed_certificate


def test_defaults_load_and_every_detector_builds():
    settings = load_settings(env={})
    names = [d.name for d in build_detectors(settings.detectors)]
    assert sorted(names) == sorted(DETECTORS) and len(names) == len(set(names))
    assert settings.windows.short == 3600 and settings.store.kind == "sqlite"


def test_the_models_own_defaults_are_the_validated_values():
    """pydantic does not validate a default: one written as text would stay text, and ``ip in "10.0.0.0/8"``
    fails in the new-access detector for settings built in code rather than loaded from the TOML."""
    built = Organisation()
    assert built.internal_networks == load_settings(env={}).organisation.internal_networks
    assert not is_external("10.1.2.3", built.internal_networks)
    assert is_external("203.0.113.9", built.internal_networks)


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
    assert settings.ingest.max_line_bytes == 20 * 1_048_576  # untouched defaults stay


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
        (
            {"ACCESSWATCH_WINDOWS__LONG": "90m"},
            "windows.long = '90m' (from ACCESSWATCH_WINDOWS__LONG): expected windows.long a whole multiple of",
        ),
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


def test_the_deploy_config_is_valid_and_serves_metrics_to_its_network():
    # deploy/docker-compose.yml runs with it; no container runtime here, so this is what can be checked of it
    settings = load_settings(Path(__file__).parent.parent / "deploy" / "accesswatch.toml", env={})
    assert settings.source.kind == "kafka" and settings.store.kind == "elasticsearch"
    assert settings.metrics.address == "0.0.0.0" and settings.metrics.port == 9464


def test_the_lock_meets_the_requirements():
    # the image installs the lock (deploy/Dockerfile): a kafka-python other than the one tested would run there,
    # whose 3.0.12 internals ingest/kafka_join_guard.py works around
    from packaging.requirements import Requirement

    root = Path(__file__).parent.parent
    locked = {}
    for line in (root / "requirements.lock").read_text().splitlines():
        name, _, version = line.partition("==")
        locked[name.lower().replace("_", "-")] = version
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    wanted = [Requirement(spec) for spec in pyproject["dependencies"] + pyproject["optional-dependencies"]["test"]]
    assert [str(r) for r in wanted if not r.specifier.contains(locked[r.name.lower()])] == []
    kafka = next(r for r in wanted if r.name == "kafka-python")
    assert not kafka.specifier.contains("3.1.0")  # a minor version later is not the library the guard was made for


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """A Dockerfile's instructions, (KEYWORD, arguments), continuation lines joined and comments left out."""
    lines = [line for line in dockerfile.read_text().splitlines() if not line.lstrip().startswith("#")]
    joined = "\n".join(lines).replace("\\\n", " ")
    out = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            out.append((keyword.upper(), " ".join(rest.split())))
    return out


def test_the_image_installs_the_locked_versions_once_as_a_user_and_runs_the_console_script():
    # the compose file ran `pip install -e /app` at every container start: PyPI needed then, and waited for
    root = Path(__file__).parent.parent
    steps = _instructions(root / "deploy" / "Dockerfile")
    assert steps[0] == ("FROM", "python:3.11-slim")
    installs = [rest for keyword, rest in steps if keyword == "RUN" and "pip install" in rest]
    assert len(installs) == 2
    assert all(part.count("-c requirements.lock") == 1 for rest in installs for part in rest.split("pip install")[1:])
    assert installs[-1].startswith("pip install -c requirements.lock . ")  # the package itself, not editable
    copied = {source for keyword, rest in steps if keyword == "COPY" for source in rest.split()[:-1]}
    assert {"pyproject.toml", "requirements.lock", "README.md"} <= copied  # README.md: the package's readme
    packages = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    assert sorted({package.split(".")[0] for package in packages} - copied) == []
    users = [rest for keyword, rest in steps if keyword == "USER"]
    assert users and users[-1] not in ("root", "0")
    entrypoint = [orjson.loads(rest) for keyword, rest in steps if keyword == "ENTRYPOINT"]
    assert entrypoint == [["accesswatch"]]
    scripts = tomllib.loads((root / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, function = scripts["accesswatch"].partition(":")
    assert callable(getattr(importlib.import_module(module), function))
    default = [orjson.loads(rest) for keyword, rest in steps if keyword == "CMD"]
    assert [cli._parser().parse_command(command).command for command in default] == ["run"]


def test_the_compose_services_run_the_built_image_and_install_nothing_at_start():
    root = Path(__file__).parent.parent
    compose = (root / "deploy" / "docker-compose.yml").read_text()
    assert "pip install" not in compose
    assert "    context: ..\n    dockerfile: deploy/Dockerfile\n  image: accesswatch:local\n" in compose
    assert "image: python:" not in compose  # no service runs the bare interpreter's image any more
    assert compose.count("<<: *accesswatch") == 2  # the run and dashboard services: both the built image
    # each command a subcommand of the entrypoint, as the CLI parses it; the header's one-offs too
    commands = [orjson.loads(line.split("command:", 1)[1]) for line in compose.splitlines() if "command: [" in line]
    one_offs = [
        line.split("run --rm accesswatch ", 1)[1].split() for line in compose.splitlines() if "--rm accesswatch" in line
    ]
    parsed = [cli._parser().parse_command(command).command for command in commands + one_offs]
    assert parsed == ["run", "dashboard", "simulate", "send"]
    config = root / "deploy" / "accesswatch.toml"
    assert "./accesswatch.toml:/etc/accesswatch/accesswatch.toml:ro" in compose and config.is_file()
    assert "ACCESSWATCH_CONFIG: /etc/accesswatch/accesswatch.toml" in compose


def test_every_registered_detector_has_its_own_test_file_exercising_the_shared_interface():
    # one missing goes unseen: each detector's test file subclasses the shared contract (tests/detector_contract.py)
    from tests.detector_contract import DetectorContract

    here = Path(__file__).parent
    assert [name for name in DETECTORS if not (here / f"test_detector_{name}.py").is_file()] == []
    without = []
    for name, detector in DETECTORS.items():
        module = importlib.import_module(f"tests.test_detector_{name}")
        contracts = [
            item
            for item in vars(module).values()
            if isinstance(item, type) and issubclass(item, DetectorContract) and item.__name__.startswith("Test")
        ]
        if not any(contract.detector is detector for contract in contracts):
            without.append(name)
    assert without == [], "add a Test... subclass of tests.detector_contract.DetectorContract to their test files"


def test_every_detectors_settings_defaults_are_its_section_in_the_default_config():
    # a deployment runs the TOML, and a detector with no section its code defaults: the two must say the same
    sections = tomllib.loads(DEFAULT_CONFIG.read_text()).get("detectors", {})
    for name, detector in DETECTORS.items():
        in_code = detector.Settings().model_dump()
        in_toml = detector.Settings.model_validate(sections.get(name, {})).model_dump()
        assert in_code == in_toml, f"detectors.{name}: {[k for k in in_code if in_code[k] != in_toml[k]]} differ"


def test_a_registered_detector_with_no_section_runs_with_its_defaults(tmp_path, monkeypatch):
    # adding a detector is its file and a registry line: without its section it was silently not built
    from configs import loader

    text = loader.DEFAULT_CONFIG.read_text()
    start = text.index("[detectors.dormant]")
    defaults = tmp_path / "default.toml"
    defaults.write_text(text[:start] + text[text.index("\n[", start) :])
    monkeypatch.setattr(loader, "DEFAULT_CONFIG", defaults)
    settings = load_settings(env={})
    assert settings.detectors["dormant"] == {}
    assert "dormant" in [detector.name for detector in build_detectors(settings.detectors)]
    # and switched off as any other, by its own key
    switched_off = load_settings(env={"ACCESSWATCH_DETECTORS__DORMANT__ENABLED": "false"})
    assert "dormant" not in [detector.name for detector in build_detectors(switched_off.detectors)]


def test_a_classification_field_in_two_classes_is_refused(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[classification.classes.contact]\nsensitivity = "medium"\nfields = ["phone", "name"]\n')
    expected = r"classes\.contact\.fields = \['phone', 'name'\] .*'name' is also in 'identity'"
    with pytest.raises(ConfigError, match=expected):
        load_settings(path, env={})


def test_a_classification_clash_says_how_to_move_a_field_and_counts_the_others(tmp_path):
    # T12: a bank's own credit class took fields the default 'financial' class lists
    path = tmp_path / "bank.toml"
    path.write_text(
        '[classification.classes.credit]\nsensitivity = "high"\nfields = ["credit_score", "income", "bank_account"]\n'
    )
    with pytest.raises(ConfigError) as raised:
        load_settings(path, env={})
    told = str(raised.value)
    assert "'credit_score' is also in 'financial'; list it in one of them" in told
    assert "fields = [] empties it" in told and "(and 2 more such fields: 'income', 'bank_account')" in told
    path.write_text('[classification.classes.card]\nsensitivity = "high"\nfields = ["card", "card"]\n')
    with pytest.raises(ConfigError, match=r"expected each field listed once: 'card' is listed twice in 'card'$"):
        load_settings(path, env={})


def test_a_misspelt_required_key_is_named_as_unknown_with_its_near_miss(tmp_path):
    # not "fields is missing": the table holds `field`, the required key misspelt
    path = tmp_path / "bank.toml"
    path.write_text('[classification.classes.card]\nsensitivity = "high"\nfield = ["card_number"]\n')
    with pytest.raises(ConfigError) as raised:
        load_settings(path, env={})
    assert str(raised.value) == (
        f"configuration error: unknown key classification.classes.card.field (from {path}): did you mean 'fields'?"
    )


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


def test_a_boolean_in_an_error_line_is_written_as_toml_writes_it(tmp_path):
    """``false``, as the operator wrote it in the file or the variable, not Python's ``False``."""
    config = tmp_path / "wrong.toml"
    config.write_text("[organisation]\ntimezone = false\n")
    done = run_cli("alerts", "--config", str(config), "--data-dir", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"configuration error: organisation.timezone = false (from {config}): expected a string, not a boolean"
    ]
    # in an array, and in a table set whole, alike
    assert error_line({"ACCESSWATCH_NOTIFY__RECEIVERS": '["console", true]'}) == (
        "configuration error: notify.receivers.1 = true (from ACCESSWATCH_NOTIFY__RECEIVERS): expected a string,"
        " not a boolean"
    )
    assert error_line({"ACCESSWATCH_RETENTION": "{events_days = 30, purge_every = true}"}).startswith(
        "configuration error: retention.purge_every = true (from ACCESSWATCH_RETENTION): "
    )
    assert error_line({"ACCESSWATCH_ORGANISATION": "[true, false]"}) == (
        "configuration error: organisation = [true, false] (from ACCESSWATCH_ORGANISATION): expected a table,"
        " not an array"
    )


@pytest.mark.parametrize(
    ("variable", "key", "expected"),
    [
        # one day of events kept, the rest purged: the flag's value on the wrong line was taken as 1
        ("ACCESSWATCH_RETENTION__EVENTS_DAYS", "retention.events_days", "a valid integer"),
        ("ACCESSWATCH_INGEST__MAX_FUTURE_SKEW", "ingest.max_future_skew", "a valid number"),
        # settings declared beside their detector, their receiver, their adapter: the same rule
        ("ACCESSWATCH_DETECTORS__BULK_READ__MIN_RECORDS", "detectors.bulk_read.min_records", "a valid integer"),
        ("ACCESSWATCH_STORE__ELASTICSEARCH__REQUEST_TIMEOUT", "store.elasticsearch.request_timeout", "a valid number"),
    ],
)
def test_a_number_given_as_true_or_false_is_refused_not_taken_as_one_or_zero(variable, key, expected):
    for flag in ("true", "false"):
        assert error_line({variable: flag}) == (
            f"configuration error: {key} = {flag} (from {variable}): expected {expected}, not a boolean"
        )


def error_line(env: dict[str, str] | None = None, config: Path | None = None) -> str:
    """The one line a wrong configuration gives."""
    with pytest.raises(ConfigError) as caught:
        load_settings(config, env=env or {})
    message = str(caught.value)
    assert "\n" not in message
    return message


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "accesswatch.cli", *args],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


# -- values that were accepted and meant something else ------------------------------------------------------------


@pytest.mark.parametrize(("start", "end"), [("21", "20"), ("8", "8")])
def test_business_hours_must_start_before_they_end(start, end):
    """The detectors test start <= hour < end: there is no wrap-around, so every hour would be off-hours."""
    line = error_line(
        {"ACCESSWATCH_ORGANISATION__BUSINESS_HOURS_START": start, "ACCESSWATCH_ORGANISATION__BUSINESS_HOURS_END": end}
    )
    assert line.startswith(
        f"configuration error: organisation.business_hours_start = {start}"
        " (from ACCESSWATCH_ORGANISATION__BUSINESS_HOURS_START):"
    )
    assert f"expected business_hours_start before business_hours_end, here {start} and {end}" in line


def test_the_key_at_fault_in_a_cross_field_rule_is_the_one_the_operator_set():
    line = error_line({"ACCESSWATCH_ORGANISATION__BUSINESS_HOURS_END": "7"})
    assert line.startswith(
        "configuration error: organisation.business_hours_end = 7 (from ACCESSWATCH_ORGANISATION__BUSINESS_HOURS_END):"
    )


def test_ip_networks_must_be_written_as_strings(tmp_path):
    """pydantic's network type reads the integer 12 as 0.0.0.12/32."""
    path = tmp_path / "site.toml"
    path.write_text('[organisation]\ninternal_networks = ["10.0.0.0/8", 12]\n')
    assert error_line(config=path) == (
        f"configuration error: organisation.internal_networks.1 = 12 (from {path}):"
        " expected an IP network written as a string, such as '10.0.0.0/8' or 'fc00::/7'"
    )
    assert "internal_networks.0 = 12" in error_line({"ACCESSWATCH_ORGANISATION__INTERNAL_NETWORKS": "[12]"})
    assert "internal_networks.0 = '10.0.0.1/8'" in error_line(
        {"ACCESSWATCH_ORGANISATION__INTERNAL_NETWORKS": '["10.0.0.1/8"]'}  # host bits set: a typo
    )


@pytest.mark.parametrize(
    "address",
    [
        "not an address",  # not a host name at all
        "::1",  # the metrics server (http.server) listens on IPv4 only
        "metrics.invalid",  # a host name that cannot resolve (RFC 6761)
        "",
    ],
)
def test_the_metrics_address_is_checked_at_load(tmp_path, address):
    """Before, ``run`` logged that it could not serve the metrics and went on: exit 0 with no metrics."""
    path = tmp_path / "site.toml"
    path.write_text(f'[metrics]\naddress = "{address}"\n')
    line = error_line(config=path)
    assert line.startswith(f"configuration error: metrics.address = {address!r} (from {path}):")
    assert ": expected an IPv4 address such as '127.0.0.1'" in line


def test_listen_addresses_that_bind_are_accepted():
    settings = load_settings(
        env={"ACCESSWATCH_METRICS__ADDRESS": "localhost", "ACCESSWATCH_DASHBOARD__ADDRESS": "'::'"}
    )
    assert settings.metrics.address == "localhost" and settings.dashboard.address == "::"
    assert load_settings(env={"ACCESSWATCH_METRICS__ADDRESS": "0.0.0.0"}).metrics.address == "0.0.0.0"
    assert "dashboard.address = 'bad host'" in error_line({"ACCESSWATCH_DASHBOARD__ADDRESS": "bad host"})


def test_simulator_employees_have_the_simulators_own_bounds():
    """Below 20 the simulator has no cast for every role: the config allowed 5, and run ended in a traceback."""
    assert error_line({"ACCESSWATCH_SOURCE__SIMULATOR__EMPLOYEES": "5"}) == (
        "configuration error: source.simulator.employees = 5 (from ACCESSWATCH_SOURCE__SIMULATOR__EMPLOYEES):"
        " expected greater than or equal to 20"
    )
    bounds = {type(rule).__name__: rule for rule in SimulatorSource.model_fields["employees"].metadata}
    assert (bounds["Ge"].ge, bounds["Le"].le) == (MIN_EMPLOYEES, MAX_EMPLOYEES)
    for employees in (MIN_EMPLOYEES, MAX_EMPLOYEES):
        simulator = load_settings(env={"ACCESSWATCH_SOURCE__SIMULATOR__EMPLOYEES": str(employees)}).source.simulator
        SimulationSettings(seed=simulator.seed, days=simulator.days, employees=simulator.employees)


# -- config files that cannot be read ---------------------------------------------------------------------------------


def test_a_config_file_that_cannot_be_read_is_one_line(tmp_path):
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe bad")
    assert error_line(config=binary) == (
        f"configuration error: config file {binary} is not UTF-8 text (byte 0xff at offset 0):"
        " expected a TOML file, which is UTF-8"
    )
    assert error_line(config=tmp_path) == (
        f"configuration error: config file {tmp_path} is a directory: expected a TOML file"
    )
    if os.geteuid() != 0:  # root reads any file
        locked = tmp_path / "locked.toml"
        locked.write_text("[ingest]\n")
        locked.chmod(0)
        assert error_line(config=locked).endswith(f"config file {locked} cannot be read: Permission denied")


def test_a_config_file_with_a_byte_order_mark_is_read(tmp_path):
    """Editors on Windows write one; tomllib refuses it as an invalid statement at line 1."""
    path = tmp_path / "site.toml"
    path.write_bytes(b"\xef\xbb\xbf[ingest]\nbatch_lines = 7\n")
    assert load_settings(path, env={}).ingest.batch_lines == 7


@pytest.mark.parametrize("name", ["bin.toml", "adir"])
def test_the_command_exits_2_on_an_unreadable_config_file(tmp_path, name):
    path = tmp_path / name
    if name == "adir":
        path.mkdir()
    else:
        path.write_bytes(b"\xff\xfe bad")
    done = run_cli("alerts", "--config", str(path), "--data-dir", str(tmp_path / "data"))
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and str(path) in done.stderr


# -- the form of every error line -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        # the origin of a list element is the list's
        (
            {"ACCESSWATCH_ORGANISATION__BUSINESS_DAYS": "[0, 9]"},
            "organisation.business_days.1 = 9 (from ACCESSWATCH_ORGANISATION__BUSINESS_DAYS): expected less than",
        ),
        # a table where a value was expected: the keys set inside it
        (
            {"ACCESSWATCH_ORGANISATION__TIMEZONE__X": "1"},
            "organisation.timezone = {'x': 1} (from ACCESSWATCH_ORGANISATION__TIMEZONE__X): expected a string,"
            " not a table",
        ),
        ({"ACCESSWATCH_FOO__BAR": "1"}, "unknown key foo (from ACCESSWATCH_FOO__BAR): check its spelling"),
        # a near miss names the key meant: the US spelling, a misspelt detector (with where it was set)
        (
            {"ACCESSWATCH_ORGANIZATION__TIMEZONE": '"UTC"'},
            "unknown key organization (from ACCESSWATCH_ORGANIZATION__TIMEZONE): did you mean 'organisation'?",
        ),
        (
            {"ACCESSWATCH_DETECTORS__BULK_READS__ENABLED": "true"},
            "unknown detector detectors.bulk_reads (from ACCESSWATCH_DETECTORS__BULK_READS__ENABLED): did you mean"
            " 'bulk_read'? expected one of",
        ),
        # cross-field rules name the key and its own value, not the section
        (
            {"ACCESSWATCH_WINDOWS__SHORT": "7m"},
            "windows.short = '7m' (from ACCESSWATCH_WINDOWS__SHORT): expected a window that divides a day",
        ),
        (
            {"ACCESSWATCH_RETENTION__ALERTS_DAYS": "30"},
            "retention.alerts_days = 30 (from ACCESSWATCH_RETENTION__ALERTS_DAYS): expected alerts_days at least"
            " events_days, here 30 and 180",
        ),
        (
            {"ACCESSWATCH_DETECTORS__BULK_READ__ABSOLUTE_LIMITS__EMPLOYEE": "-5"},
            "detectors.bulk_read.absolute_limits.employee = -5 (from"
            " ACCESSWATCH_DETECTORS__BULK_READ__ABSOLUTE_LIMITS__EMPLOYEE): expected greater than or equal to 0",
        ),
        # a rule stated by its validator is not prefixed with "expected"
        (
            {"ACCESSWATCH_DETECTORS__ISOLATION_FOREST__BUDGET__HIGH": "9"},
            "(from ACCESSWATCH_DETECTORS__ISOLATION_FOREST__BUDGET__HIGH): budgets must not grow with severity",
        ),
        # the adapters' sections, checked at load with the origin
        (
            {"ACCESSWATCH_SOURCE__KAFKA__AUTO_OFFSET_RESET": "oldest"},
            "source.kafka.auto_offset_reset = 'oldest' (from ACCESSWATCH_SOURCE__KAFKA__AUTO_OFFSET_RESET):"
            " expected 'earliest' or 'latest'",
        ),
        (
            {"ACCESSWATCH_SOURCE__KAFKA__SECURITY_PROTOCOL": "SASL_SSL"},
            "source.kafka.security_protocol = 'SASL_SSL' (from ACCESSWATCH_SOURCE__KAFKA__SECURITY_PROTOCOL):"
            " expected sasl_username set too: security_protocol SASL_SSL needs sasl_username",
        ),
        (
            {"ACCESSWATCH_STORE__ELASTICSEARCH__REPLICAS": "-1"},
            "store.elasticsearch.replicas = -1 (from ACCESSWATCH_STORE__ELASTICSEARCH__REPLICAS): expected greater",
        ),
        # pydantic's wording, said as what to write
        ({"ACCESSWATCH_INGEST": "5"}, "ingest = 5 (from ACCESSWATCH_INGEST): expected a table, not an integer"),
        (
            {"ACCESSWATCH_DATA_DIR": "5"},
            "data_dir = 5 (from ACCESSWATCH_DATA_DIR): expected a path (a string), not an integer",
        ),
        (
            {"ACCESSWATCH_INGEST__BATCH_LINES": "abc"},
            "ingest.batch_lines = 'abc' (from ACCESSWATCH_INGEST__BATCH_LINES): expected a valid integer, not a string",
        ),
        # a rule with its reason: the old default limit would dead-letter schema-valid events
        (
            {"ACCESSWATCH_INGEST__MAX_LINE_BYTES": "1048576"},
            "ingest.max_line_bytes = 1048576 (from ACCESSWATCH_INGEST__MAX_LINE_BYTES): expected at least 16,224,561"
            " bytes, the longest line of a schema-valid event without extra: a smaller limit would dead-letter"
            " valid events",
        ),
        (
            {"ACCESSWATCH_NOTIFY__ROUTES": "[{receivers = []}]"},
            "notify.routes.0.receivers = [] (from ACCESSWATCH_NOTIFY__ROUTES): expected at least 1 item, not 0",
        ),
    ],
)
def test_error_lines_name_key_value_origin_and_expectation(env, expected):
    assert expected in error_line(env)


def test_the_origin_of_a_list_element_from_a_file_is_the_file(tmp_path):
    path = tmp_path / "site.toml"
    path.write_text('[[notify.silences]]\nname = "x"\nends_at = 2026-01-01T00:00:00\n')
    assert error_line(config=path) == (
        f"configuration error: notify.silences.0.ends_at = 2026-01-01T00:00:00 (from {path}):"
        " expected a time with a UTC offset, e.g. 2026-11-02T22:00:00+08:00"
    )


def test_a_long_value_is_cut_in_the_line():
    line = error_line({"ACCESSWATCH_INGEST": '"' + "x" * 500 + '"'})
    assert f"ingest = '{'x' * 76}... (from ACCESSWATCH_INGEST): expected a table, not a string" in line
    assert len(line) < 200


def test_a_secret_in_an_adapter_section_is_never_shown():
    line = error_line({"ACCESSWATCH_SOURCE__KAFKA__SASL_PASSWORD": "12345"})
    assert line == (
        "configuration error: source.kafka.sasl_password = '<secret>' (from ACCESSWATCH_SOURCE__KAFKA__SASL_PASSWORD):"
        " expected a string, not an integer"
    )


def test_a_password_in_an_elasticsearch_host_is_refused_and_never_shown():
    hosts = '["https://elastic:ESURLPASS@es.internal:9200"]'
    line = error_line({"ACCESSWATCH_STORE__KIND": "elasticsearch", "ACCESSWATCH_STORE__ELASTICSEARCH__HOSTS": hosts})
    assert line == (
        "configuration error: store.elasticsearch.hosts = ['https://<secret>@es.internal:9200']"
        " (from ACCESSWATCH_STORE__ELASTICSEARCH__HOSTS): expected a URL without user:password@ in it:"
        " set store.elasticsearch.username and ACCESSWATCH_STORE__ELASTICSEARCH__PASSWORD (or password_file) instead"
    )


def test_a_host_of_another_scheme_is_shown_without_its_password_and_with_a_plain_example():
    hosts = '["ftp://elastic:ESURLPASS@127.0.0.1:1"]'
    line = error_line({"ACCESSWATCH_STORE__ELASTICSEARCH__HOSTS": hosts})
    assert line == (
        "configuration error: store.elasticsearch.hosts = ['ftp://<secret>@127.0.0.1:1']"
        " (from ACCESSWATCH_STORE__ELASTICSEARCH__HOSTS): expected a URL starting http:// or https:// for each host,"
        " e.g. 'https://127.0.0.1:1'"
    )


def test_the_adapter_check_hides_a_password_in_a_host_too():
    from store.elasticsearch import settings as elasticsearch

    with pytest.raises(ConfigError) as caught:  # a password without its username, and one in the host
        elasticsearch.load({"hosts": ["https://elastic:ESURLPASS@es:9200"], "password": "pw-in-env"})
    assert "ESURLPASS" not in str(caught.value) and "'https://<secret>@es:9200'" in str(caught.value)


@pytest.mark.parametrize(
    "key",
    [
        "source.kafka.ssl_cafile",
        "source.kafka.ssl_certfile",
        "source.kafka.ssl_keyfile",
        "source.kafka.ssl_password_file",
        "source.kafka.sasl_password_file",
        "store.elasticsearch.ca_certs",
        "store.elasticsearch.client_cert",
        "store.elasticsearch.client_key",
        "store.elasticsearch.password_file",
        "store.elasticsearch.api_key_file",
        "notify.settings.mail.ca_file",
    ],
)
def test_a_tls_or_secret_file_not_there_is_refused_at_load_naming_its_key(key, tmp_path, monkeypatch):
    # read only when a client connects, they failed after the metrics server started, as "[Errno 2] No such file
    # or directory" naming no key, or (a CA for Elasticsearch) as "cannot reach Elasticsearch" after retry_for,
    # or (the SMTP CA) as a FileNotFoundError at each page, retried until the page was given up
    variable = "ACCESSWATCH_" + key.upper().replace(".", "__")
    beside = _MAIL if key.startswith("notify.") else {}
    # relative: an error line shows at most 80 characters of a value, and tmp_path's length grows with pytest's
    # run counter (pytest-999 against pytest-1000), which cut this path's end off on a machine that had run many
    monkeypatch.chdir(tmp_path)
    missing = Path("mounted") / "secret"
    assert error_line({**beside, variable: str(missing)}) == (
        f"configuration error: {key} = {str(missing)!r} (from {variable}): expected a readable file: there is none"
        " at that path"
    )
    assert error_line({**beside, variable: str(tmp_path)}).endswith(": expected a readable file, not a directory")


_MAIL = {  # an e-mail receiver that the default route pages
    "ACCESSWATCH_NOTIFY__RECEIVERS": '["mail"]',
    "ACCESSWATCH_NOTIFY__SETTINGS__MAIL__KIND": "email",
    "ACCESSWATCH_NOTIFY__SETTINGS__MAIL__HOST": "smtp.internal",
    "ACCESSWATCH_NOTIFY__SETTINGS__MAIL__FROM": "accesswatch@example.com",
    "ACCESSWATCH_NOTIFY__SETTINGS__MAIL__TO": '["soc@example.com"]',
}


@pytest.mark.parametrize(
    ("key", "beside"),
    [  # each CA setting, beside what has it used: a TLS protocol, https:// hosts, a receiver
        ("source.kafka.ssl_cafile", {"ACCESSWATCH_SOURCE__KAFKA__SECURITY_PROTOCOL": "SSL"}),
        ("store.elasticsearch.ca_certs", {"ACCESSWATCH_STORE__ELASTICSEARCH__HOSTS": '["https://es:9200"]'}),
        ("notify.settings.mail.ca_file", _MAIL),
    ],
    ids=["kafka", "elasticsearch", "smtp"],
)
@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("not a certificate\n", "NO_CERTIFICATE_OR_CRL_FOUND"),
        ("", "NO_CERTIFICATE_OR_CRL_FOUND"),
        (
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "a PEM block that does not read as a certificate",
        ),
    ],
    ids=["text", "empty", "garbled"],
)
def test_a_ca_file_that_holds_no_pem_certificate_is_refused_at_load_naming_its_key(
    key, beside, content, reason, tmp_path
):
    # the clients load it only when they connect: Elasticsearch's then failed as "cannot reach Elasticsearch"
    # after retry_for, the SMTP receiver's each page as an SSLError retried until the page was given up, and
    # Kafka's only when the consumer was made
    variable = "ACCESSWATCH_" + key.upper().replace(".", "__")
    ca = tmp_path / "ca.pem"
    ca.write_text(content)
    assert error_line({**beside, variable: str(ca)}) == (
        f"configuration error: {key} = {str(ca)!r} (from {variable}): expected a file of CA certificates in PEM"
        f" ({reason})"
    )
    certificate, private_key = self_signed_certificate(tmp_path)
    assert error_line({**beside, variable: str(private_key)}).endswith(" in PEM (NO_CERTIFICATE_OR_CRL_FOUND)")
    load_settings(env={**beside, variable: str(certificate)})


def test_an_smtp_ca_file_without_tls_is_refused_at_load(tmp_path):
    # security = "none" sends in clear: the CA was dropped without a word
    certificate, _ = self_signed_certificate(tmp_path)
    env = {
        **_MAIL,
        "ACCESSWATCH_NOTIFY__SETTINGS__MAIL__SECURITY": "none",
        "ACCESSWATCH_NOTIFY__SETTINGS__MAIL__CA_FILE": str(certificate),
    }
    assert error_line(env) == (
        f"configuration error: notify.settings.mail.ca_file = {str(certificate)!r}"
        " (from ACCESSWATCH_NOTIFY__SETTINGS__MAIL__CA_FILE): expected security 'starttls' or 'tls' beside it,"
        " not 'none': ca_file is used over TLS only"
    )
    load_settings(env={**env, "ACCESSWATCH_NOTIFY__SETTINGS__MAIL__SECURITY": "tls"})


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SASL_PLAINTEXT"])
def test_kafka_tls_settings_under_a_plaintext_protocol_are_refused_at_load(protocol, tmp_path):
    # the clients were given no TLS context under these: the CA and the client certificate were dropped without
    # a word, and the connection went in clear
    certificate, private_key = self_signed_certificate(tmp_path)
    env = {
        "ACCESSWATCH_SOURCE__KAFKA__SECURITY_PROTOCOL": protocol,
        "ACCESSWATCH_SOURCE__KAFKA__SSL_CAFILE": str(certificate),
        "ACCESSWATCH_SOURCE__KAFKA__SSL_CERTFILE": str(certificate),
        "ACCESSWATCH_SOURCE__KAFKA__SSL_KEYFILE": str(private_key),
    }
    if protocol.startswith("SASL"):
        env["ACCESSWATCH_SOURCE__KAFKA__SASL_USERNAME"] = "aw"
    assert error_line(env) == (
        f"configuration error: source.kafka.ssl_cafile = {str(certificate)!r}"
        f" (from ACCESSWATCH_SOURCE__KAFKA__SSL_CAFILE): expected security_protocol SSL or SASL_SSL beside it, not"
        f" {protocol}: TLS settings (ssl_cafile, ssl_certfile, ssl_keyfile) are used with those only"
    )
    load_settings(env={**env, "ACCESSWATCH_SOURCE__KAFKA__SECURITY_PROTOCOL": protocol.replace("PLAINTEXT", "SSL")})


def test_elasticsearch_tls_settings_beside_an_http_host_are_refused_at_load(tmp_path):
    # the client refused them when the store was opened, in a 30-line traceback ending in a ValueError
    ca, _ = self_signed_certificate(tmp_path)
    env = {
        "ACCESSWATCH_STORE__ELASTICSEARCH__HOSTS": '["http://es:9200"]',
        "ACCESSWATCH_STORE__ELASTICSEARCH__CA_CERTS": str(ca),
    }
    assert error_line(env) == (
        f"configuration error: store.elasticsearch.ca_certs = {str(ca)!r}"
        " (from ACCESSWATCH_STORE__ELASTICSEARCH__CA_CERTS): expected https:// hosts with it:"
        " store.elasticsearch.hosts has an http:// one, and the client uses TLS settings (ca_certs, client_cert,"
        " client_key) over https only"
    )
    env["ACCESSWATCH_STORE__ELASTICSEARCH__HOSTS"] = '["https://es:9200"]'
    load_settings(env=env)


def test_elasticsearch_verification_off_beside_a_ca_is_refused_at_load(tmp_path):
    # accepted silently: the CA was never used and any certificate taken, a misconfiguration that looks like TLS
    ca, _ = self_signed_certificate(tmp_path)
    config = tmp_path / "es.toml"
    config.write_text("[store.elasticsearch]\nverify_certs = false\n")
    env = {
        "ACCESSWATCH_STORE__ELASTICSEARCH__HOSTS": '["https://es:9200"]',
        "ACCESSWATCH_STORE__ELASTICSEARCH__CA_CERTS": str(ca),
    }
    assert error_line(env, config) == (
        f"configuration error: store.elasticsearch.verify_certs = false (from {config}): expected verify_certs ="
        " true beside ca_certs (or no ca_certs): with verification off the CA is never used, and any certificate"
        " is taken"
    )
    load_settings(env=env)  # verified against the CA
    del env["ACCESSWATCH_STORE__ELASTICSEARCH__CA_CERTS"]
    assert not load_settings(config, env=env).store.elasticsearch["verify_certs"]  # off, and no CA said otherwise


def test_a_rule_across_keys_names_the_key_set_with_its_own_value_and_origin(tmp_path):
    # it showed the whole section and blamed the file, though both keys came from the environment
    config = tmp_path / "prod.toml"
    config.write_text(
        '[store.elasticsearch]\nhosts = ["https://es:9200"]\nusername = "aw"\n'
        '[source.kafka]\nbootstrap_servers = ["kafka-1:9092"]\n'
    )
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    both = {
        "ACCESSWATCH_STORE__ELASTICSEARCH__PASSWORD": "s3cret",
        "ACCESSWATCH_STORE__ELASTICSEARCH__PASSWORD_FILE": str(secret),
    }
    assert error_line(both, config) == (
        "configuration error: store.elasticsearch.password = '<secret>' (from"
        " ACCESSWATCH_STORE__ELASTICSEARCH__PASSWORD): expected password or password_file, not both set: keep one"
    )
    # a key the table's file never wrote is not at fault: the one the operator set is named
    short = {"ACCESSWATCH_SOURCE__KAFKA__SESSION_TIMEOUT": "5s"}
    assert error_line(short, config) == (
        "configuration error: source.kafka.session_timeout = '5s' (from ACCESSWATCH_SOURCE__KAFKA__SESSION_TIMEOUT):"
        " expected heartbeat_interval at most a third of session_timeout, here 3 s and 5 s"
    )
    # silence counted from the last heartbeat's answer: a limit within one wait for the next would always trip
    hasty = {"ACCESSWATCH_SOURCE__KAFKA__UNREACHABLE_AFTER": "2s"}
    assert error_line(hasty, config) == (
        "configuration error: source.kafka.unreachable_after = '2s'"
        " (from ACCESSWATCH_SOURCE__KAFKA__UNREACHABLE_AFTER): expected more than heartbeat_interval"
    )
    half = {"ACCESSWATCH_SOURCE__KAFKA__SSL_KEYFILE": str(secret)}
    assert error_line(half, config) == (
        f"configuration error: source.kafka.ssl_keyfile = {str(secret)!r}"
        " (from ACCESSWATCH_SOURCE__KAFKA__SSL_KEYFILE): expected ssl_certfile set too: ssl_certfile and"
        " ssl_keyfile go together"
    )
    alone = {"ACCESSWATCH_STORE__ELASTICSEARCH__USERNAME": '""', "ACCESSWATCH_STORE__ELASTICSEARCH__PASSWORD": "s3cret"}
    assert error_line(alone, config) == (
        "configuration error: store.elasticsearch.password = '<secret>' (from"
        " ACCESSWATCH_STORE__ELASTICSEARCH__PASSWORD): expected username set too: a password (or password_file) goes"
        " with a username"
    )


def test_a_password_in_a_kafka_broker_is_refused_and_never_shown():
    line = error_line({"ACCESSWATCH_SOURCE__KAFKA__BOOTSTRAP_SERVERS": '["alice:KAFKAPASS@kafka-1:9092"]'})
    assert line == (
        "configuration error: source.kafka.bootstrap_servers = ['<secret>@kafka-1:9092']"
        " (from ACCESSWATCH_SOURCE__KAFKA__BOOTSTRAP_SERVERS): expected host:port for each broker, e.g. 'kafka-1:9092',"
        " without user:password@: set source.kafka.sasl_username and ACCESSWATCH_SOURCE__KAFKA__SASL_PASSWORD"
        " (or sasl_password_file)"
    )


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://elastic:pw@es:9200/x", "https://<secret>@es:9200/x"),
        ("https://elastic@es:9200", "https://<secret>@es:9200"),
        ("user:pw@kafka-1:9092", "<secret>@kafka-1:9092"),
        ("https://es:9200/a@b", "https://es:9200/a@b"),  # an @ in the path is no user
        ("soc@example.com", "soc@example.com"),  # an e-mail address is no URL's user
    ],
)
def test_shown_url_hides_a_user_and_password_only(url, shown):
    assert shown_url(url) == shown


# -- lenient values -----------------------------------------------------------------------------------------------


def test_an_empty_variable_is_unset():
    """``ACCESSWATCH_DATA_DIR=`` put the store in the current directory: Path("") is "."."""
    settings = load_settings(env={"ACCESSWATCH_DATA_DIR": "", "ACCESSWATCH_INGEST__BATCH_LINES": ""})
    assert settings.data_dir == Path("data") and settings.ingest.batch_lines == 5000


def test_an_empty_data_dir_is_refused(tmp_path):
    path = tmp_path / "site.toml"
    path.write_text('data_dir = ""\n')
    assert error_line(config=path).startswith(f"configuration error: data_dir = '' (from {path}): expected a directory")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("DETECTORS__BULK_READ__MIN_RATIO", "inf"),  # a detector's section
        ("DETECTORS__BULK_READ__SEVERITY_SCORES", "[3.0, 5.0, inf]"),
        ("SOURCE__SIMULATOR__SPEED", "inf"),
        ("SOURCE__SIMULATOR__SPEED", "-nan"),
        ("SOURCE__KAFKA__CHECKPOINT_INTERVAL", "inf"),  # an adapter's
        ("NOTIFY__DELIVERY__TIMEOUT", "inf"),
    ],
)
def test_non_finite_numbers_are_refused_everywhere(key, value):
    line = error_line({f"ACCESSWATCH_{key}": value})
    assert line.endswith(f"(from ACCESSWATCH_{key}): expected a finite number")


def test_non_finite_numbers_are_refused_by_the_models_too():
    """Settings built in code, not loaded, go through the same rule."""
    with pytest.raises(ValidationError, match="finite"):
        SimulatorSource(speed=float("inf"))
    with pytest.raises(ConfigError, match="expected a finite duration"):
        load_settings(env={"ACCESSWATCH_WINDOWS__LONG": "9" * 400 + "d"})  # digits enough to overflow a float


@pytest.mark.parametrize("zone", ["localtime", "Factory", "posixrules", "right/UTC", "posix/Asia/Shanghai"])
def test_time_zones_that_depend_on_the_host_are_refused(zone):
    line = error_line({"ACCESSWATCH_ORGANISATION__TIMEZONE": zone})
    assert line.startswith(f"configuration error: organisation.timezone = {zone!r}")
    assert line.endswith("expected an IANA time zone such as 'Asia/Shanghai' or 'UTC'")


@pytest.mark.parametrize(
    ("zone", "meant", "fixed"), [("EST", "America/New_York", "Etc/GMT+5"), ("MST", "America/Denver", "America/Phoenix")]
)
def test_an_abbreviation_of_a_fixed_offset_is_refused_for_the_zone_it_is_taken_for(zone, meant, fixed):
    # 'EST' is UTC-05:00 all year: every local hour an hour off from March to November in New York
    line = error_line({"ACCESSWATCH_ORGANISATION__TIMEZONE": zone})
    assert line.startswith(f"configuration error: organisation.timezone = {zone!r}")
    assert f"expected an IANA time zone such as {meant!r}" in line and "daylight saving" in line
    assert line.endswith(f"(write {fixed!r} if that is meant)")
    assert load_settings(env={"ACCESSWATCH_ORGANISATION__TIMEZONE": fixed}).organisation.timezone == fixed


@pytest.mark.parametrize("zone", ["UTC", "Asia/Shanghai", "Etc/GMT-8", "US/Eastern", "HST", "EST5EDT"])
def test_iana_zones_and_links_are_accepted(zone):
    assert load_settings(env={"ACCESSWATCH_ORGANISATION__TIMEZONE": zone}).organisation.timezone == zone


@pytest.mark.parametrize(
    "key",
    [
        "INGEST__DETECTION_PROCESS",
        "DETECTORS__BULK_READ__ENABLED",
        "SOURCE__KAFKA__SSL_CHECK_HOSTNAME",
        "STORE__ELASTICSEARCH__VERIFY_CERTS",
    ],
)
@pytest.mark.parametrize("value", ["1", '"yes"'])
def test_a_switch_is_true_or_false_and_nothing_that_looks_like_one(key, value):
    # 1 or "yes" read as true would let a typo switch detection's process or certificate checks
    line = error_line({f"ACCESSWATCH_{key}": value})
    assert line.startswith(f"configuration error: {key.lower().replace('__', '.')} = ")
    assert "expected a boolean (true or false)" in line


@pytest.mark.parametrize("table", ["routes", "silences"])
def test_routes_and_silences_name_detectors_that_exist(tmp_path, table):
    # "bulk-read" for bulk_read would make a route or a silence that never matches, and nobody would know
    config = tmp_path / "paging.toml"
    item = 'receivers = ["console"]' if table == "routes" else 'name = "upgrade"\nends_at = 2026-12-01T06:00:00Z'
    config.write_text(f'[[notify.{table}]]\n{item}\ndetectors = ["egress", "bulk-read"]\n')
    with pytest.raises(ConfigError) as raised:
        load_settings(config, env={})
    message = str(raised.value)
    assert message.startswith(f"configuration error: notify.{table}.0.detectors = ['egress', 'bulk-read']")
    assert "'bulk-read' is none of" in message and "bulk_read" in message and "\n" not in message
    config.write_text(f'[[notify.{table}]]\n{item}\ndetectors = ["egress", "bulk_read"]\n')
    assert getattr(load_settings(config, env={}).notify, table)[0].detectors == ["egress", "bulk_read"]


def test_a_followed_file_source_is_one_file(tmp_path):
    # several followed files: the first would be read for ever and the others never
    env = {"ACCESSWATCH_SOURCE__FILE__PATHS": '["a.jsonl", "b.jsonl"]', "ACCESSWATCH_SOURCE__FILE__FOLLOW": "true"}
    with pytest.raises(ConfigError, match=r"^configuration error: source\.file\.paths = \['a.jsonl', 'b.jsonl'\]"):
        load_settings(env=env)
    assert load_settings(env={**env, "ACCESSWATCH_SOURCE__FILE__FOLLOW": "false"}).source.file.paths == [
        "a.jsonl",
        "b.jsonl",
    ]


# -- variables for keys a shell cannot spell ------------------------------------------------------------------------
_RECEIVERS = """
[[notify.routes]]
receivers = ["on-call", "SOC-Lead"]

[notify.settings.on-call]
kind = "slack"
url = "https://hooks.slack.example/services/T0/B0/old"
"""


def test_a_variable_reaches_a_receiver_whose_name_has_a_dash_or_capitals(tmp_path):
    path = tmp_path / "receivers.toml"
    path.write_text(_RECEIVERS)
    new = "https://hooks.slack.example/services/T0/B0/new"
    env = {"ACCESSWATCH_NOTIFY__SETTINGS__ON_CALL__URL": new, "ACCESSWATCH_NOTIFY__SETTINGS__SOC_LEAD__KIND": "console"}
    settings = load_settings(path, env=env)
    assert settings.notify.settings["on-call"] == {"kind": "slack", "url": new}
    assert settings.notify.settings["SOC-Lead"] == {"kind": "console"}  # named by a route only, set by the variable
    assert set(settings.notify.settings) == {"on-call", "SOC-Lead"}  # no on_call, no soc_lead beside them
    # the spellings that worked before still do: a dash written in the name, and names that match no key
    dashed = load_settings(path, env={"ACCESSWATCH_NOTIFY__SETTINGS__ON-CALL__URL": new, **env})
    assert dashed.notify.settings["on-call"]["url"] == new
    wrong = error_line({"ACCESSWATCH_NOTIFY__SETTINGS__ON_CALL__URL": "ftp://x"}, path)
    assert wrong.startswith("configuration error: notify.settings.on-call.url = ")
    assert "(from ACCESSWATCH_NOTIFY__SETTINGS__ON_CALL__URL)" in wrong


def test_a_variable_that_could_mean_two_receivers_is_refused(tmp_path):
    path = tmp_path / "receivers.toml"
    path.write_text(
        _RECEIVERS + '[notify.settings.SOC-Lead]\nkind = "console"\n[notify.settings.on_call]\nkind = "file"\n'
    )
    assert load_settings(path, env={}).notify.settings["on_call"] == {"kind": "file"}  # without the variable: fine
    assert error_line({"ACCESSWATCH_NOTIFY__SETTINGS__ON_CALL__KIND": "console"}, path) == (
        "configuration error: ACCESSWATCH_NOTIFY__SETTINGS__ON_CALL__KIND names both notify.settings.on-call and"
        " notify.settings.on_call (a variable spells '-' as '_' and ignores case): rename one of them, or set it in"
        " the --config file"
    )
    # a dash written in the name is no ambiguity
    new = "https://hooks.slack.example/services/T0/B0/new"
    dashed = load_settings(path, env={"ACCESSWATCH_NOTIFY__SETTINGS__ON-CALL__URL": new})
    assert dashed.notify.settings["on-call"]["url"] == new and dashed.notify.settings["on_call"] == {"kind": "file"}


def test_a_page_file_under_a_file_is_refused_at_load_naming_its_key(tmp_path):
    # it was accepted by check-config, then the first page was a traceback: FileExistsError from making its directory
    config = tmp_path / "mine.toml"
    config.write_text('[notify]\nfile = "mine.toml/pages.jsonl"\n')  # inside the data dir
    done = run_cli("check-config", "--config", str(config), "--data-dir", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"configuration error: notify.file = 'mine.toml/pages.jsonl' (from {config}): expected a file path whose"
        f" parents are directories: {config} is not a directory"
    ]
    # a receiver's own path alike, however deep under the file; a directory, a FIFO are no file to append to
    variable = "ACCESSWATCH_NOTIFY__SETTINGS__FILE__PATH"
    assert error_line({variable: f"{config}/a/b/pages.jsonl"}).endswith(f": {config} is not a directory")
    assert error_line({variable: str(tmp_path)}).endswith(": expected a file to append pages to, not a directory")
    os.mkfifo(tmp_path / "fifo")
    assert error_line({variable: str(tmp_path / "fifo")}).endswith(": expected a regular file to append pages to")
    # directories not there yet are made at the first page: accepted
    settings = load_settings(None, env={variable: str(tmp_path / "new" / "dirs" / "pages.jsonl")})
    assert settings.notify.settings["file"]["path"].endswith("dirs/pages.jsonl")
    done = run_cli("check-config", "--data-dir", str(tmp_path / "not" / "yet"))
    assert done.returncode == 0, done.stderr
