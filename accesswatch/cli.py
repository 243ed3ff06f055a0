"""The ``accesswatch`` command.

``replay`` and ``alerts`` are part of the outside contract
(``shared/contract/README.md``): their arguments and output do not change
without the contract.
"""

from __future__ import annotations

import argparse
import base64
import gc
import os
import shutil
import signal
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from datetime import UTC, date, datetime, tzinfo
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO

import orjson

from accesswatch import __version__, app, arguments, config_check, incidents_cli, integrity_cli, paging_cli
from accesswatch.arguments import WrongArgument
from accesswatch.logging import configure as configure_logging
from accesswatch.words import plural
from ingest import kafka_send
from ingest.kafka_settings import KafkaUnreachable
from ingest.simulator.settings import MAX_DAYS, MAX_EMPLOYEES, MIN_EMPLOYEES, SimulationSettings
from models.alert import Alert, Severity
from models.config import ConfigError, Settings, blocking_ancestor
from models.deadletter import DeadLetter
from models.event import format_utc
from models.json_lines import json_line
from models.local_time import local_time
from models.visible import visible
from store.base import AlertQuery, StoreNeedsUpgrade, StoreStats, StoreTooNew

if TYPE_CHECKING:
    from ingest.pipeline import IngestReport

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
# Beside a store the demo made, in its data dir: that store's creation stamp (``_creation_stamp``).
DEMO_MARKER = ".accesswatch-demo"


class Unreadable(Exception):
    """A file the command must read and cannot (missing, not readable): one line, and EXIT_FAILED."""


def main(argv: Sequence[str] | None = None) -> int:
    """The command: its exit status.  A reader that goes away (``accesswatch alerts | head -1``) ends it quietly,
    as Python advises (https://docs.python.org/3/library/signal.html#note-on-sigpipe): stdout is flushed here,
    where a closed pipe is caught, not at exit, where Python would print "Exception ignored" and exit 120; and
    SIGPIPE is left ignored, so that a receiver's socket closed by its server is an error to retry, not death."""
    try:
        try:
            return _command(argv)
        finally:
            sys.stdout.flush()  # --help and --version too: argparse prints them, then exits (SystemExit)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # stop quietly, with the status of a tool killed by SIGPIPE, and point stdout at /dev/null so that
        # flushing what is left of it at exit cannot raise again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE


def _command(argv: Sequence[str] | None) -> int:
    tune_garbage_collector()
    parser = _parser()
    args = parser.parse_command(argv)  # a mistake in the arguments: one line, exit 2
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_CONFIG
    try:
        return args.handler(args)
    except (ConfigError, WrongArgument) as exc:
        print(str(exc).splitlines()[0], file=sys.stderr)
        return EXIT_CONFIG
    except (
        FileNotFoundError,
        PermissionError,
        StoreNeedsUpgrade,
        StoreTooNew,
        app.StoreUnreadable,
        KafkaUnreachable,
    ) as exc:
        print(f"accesswatch: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except Unreadable as exc:
        print(exc, file=sys.stderr)
        return EXIT_FAILED


def tune_garbage_collector() -> None:
    """Collect cycles rarely: ingestion makes millions of short-lived, acyclic objects.

    With the default thresholds the collector runs every 700 allocations and
    rescans the detectors' long-lived state each time; measured here, that
    doubled the cost of parsing.  At 100,000 it still ran within every batch
    in flight (10,000 events are ~300,000 objects, alive until stored and
    judged) and traversed them all: 3.2 s of a 200,000-event replay.  At
    a million, the young objects it finds are few.  Reference counting frees
    the events themselves; the rare cycles are still collected.
    """
    gc.collect()
    gc.freeze()  # what was imported at start-up is never garbage
    gc.set_threshold(1_000_000, 50, 100)


def _parser() -> arguments.Parser:
    parser = arguments.Parser(
        prog="accesswatch",
        description="Watch who reads customer data, and raise the alarm on unusual reads.",
    )
    parser.add_argument("--version", action="version", version=f"accesswatch {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    def command(
        name: str, handler: Callable[[argparse.Namespace], int], help_text: str, configured: bool = True
    ) -> argparse.ArgumentParser:
        """A subcommand; ``configured``: it reads the configuration and the store (``--config``, ``--data-dir``)."""
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler, command=name)
        if configured:
            sub.add_argument("--config", type=Path, metavar="FILE", help="TOML merged over configs/default.toml")
            sub.add_argument(
                "--data-dir",
                type=Path,
                metavar="DIR",
                help="where the embedded store lives (default: $ACCESSWATCH_DATA_DIR, else ./data)",
            )
        return sub

    replay = command(
        "replay",
        _replay,
        "Read events from JSON Lines files through the pipeline, in event time, then close all windows.",
    )
    replay.add_argument("files", nargs="+", metavar="FILE", help="JSON Lines files; - for standard input")
    replay.add_argument(
        "--page", action="store_true", help="page the configured receivers (a replay pages nobody by default)"
    )

    alerts = command("alerts", _alerts, "Print the stored alerts, oldest first.")
    alerts.add_argument("--format", choices=["jsonl", "table"], default="table", help="(default: table)")
    arguments.add_min_severity(alerts)

    dead = command("deadletters", _deadletters, "List the lines that could not become events, with the reason.")
    dead.add_argument(
        "--format",
        choices=["jsonl", "table"],
        default="table",
        help="(default: table); jsonl: one object a line, the exact bytes in raw_base64, readable ones in raw",
    )
    dead.add_argument(
        "--limit",
        type=arguments.count,
        default=100,
        metavar="N",
        help="list the first N, oldest first (default: 100); the table's last line counts them all",
    )

    # simulate reads neither the configuration nor a store: its options are all it takes
    simulate = command(
        "simulate", _simulate, "Write a simulated organisation's access log and its labels.", configured=False
    )
    simulate.add_argument(
        "--days", type=int, default=30, metavar="N", help=f"simulated days, 1 to {MAX_DAYS} (default: 30)"
    )
    simulate.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="where events.jsonl and labels.json are written"
    )
    simulate.add_argument("--seed", type=int, default=7, help="the same seed gives the same log (default: 7)")
    simulate.add_argument(
        "--employees",
        type=int,
        default=240,
        metavar="N",
        help=f"employees, {MIN_EMPLOYEES} to {MAX_EMPLOYEES:,} (default: 240); partners and services come with them",
    )
    simulate.add_argument("--no-scenarios", action="store_true", help="leave out the injected insider scenarios")
    simulate.add_argument(
        "--start",
        type=_utc_midnight,
        default=SimulationSettings.start,
        metavar="DATE",
        help="the first simulated day, YYYY-MM-DD, from 00:00 UTC (default: 2026-10-05). A log that runs past"
        " tomorrow is dead-lettered by a replay as too far in the future (ingest.max_future_skew)",
    )

    evaluate = command("evaluate", _evaluate, "Score the stored alerts against a simulation's labels.")
    evaluate.add_argument(
        "--labels", type=Path, required=True, metavar="FILE", help="the labels.json that simulate wrote"
    )
    evaluate.add_argument("--format", choices=["text", "json"], default="text")
    evaluate.add_argument(
        "--compare",
        action="store_true",
        help="also set side by side: the rules' alerts alone, all of them (rules + behaviour model), and a naive"
        " per-actor z-score rule run over the stored events (the model's findings also slow what the baselines"
        " learn, so a run without the model can differ a little from 'rules only')",
    )

    models = command("models", _models, "List the trained behaviour models: span, features, parameters, thresholds.")
    models.add_argument("--format", choices=["table", "json"], default="table")

    run = command("run", _run, "Ingest from the configured source until stopped (SIGINT/SIGTERM stop it cleanly).")
    run.add_argument("--source", choices=["file", "simulator", "kafka"], help="override source.kind")
    run.add_argument(
        "files", nargs="*", metavar="FILE", help="with --source file (or source.kind = 'file'): the files to follow"
    )

    demo = command(
        "demo",
        _demo,
        "Play a simulated month through the live pipeline; pages print as they are raised, after a week's warm-up.",
    )
    demo.add_argument("--speed", type=float, default=None, help="event-seconds per second (default from config: 3600)")
    demo.add_argument("--days", type=int, default=None)
    demo.add_argument(
        "--keep",
        action="store_true",
        help="add to the data dir's earlier demo store (by default the demo replaces it; it never touches a store"
        " it did not make)",
    )

    dashboard = command("dashboard", _dashboard, "Serve the web dashboard (Streamlit) over the store.")
    dashboard.add_argument("--port", type=int, default=None, help="default from config: 8501")
    dashboard.add_argument("--address", default=None, help="listen address (default from config: 127.0.0.1)")
    dashboard.add_argument("--demo", action="store_true", help="let the demo users of the default config sign in")
    dashboard.add_argument("--hash-password", action="store_true", help="print a salted hash of a password, and exit")
    incidents_cli.add_commands(command, _settings)  # incidents
    paging_cli.add_commands(command, _settings)  # pages, ack, resolve, reopen, assign, note
    kafka_send.add_commands(command, _settings)  # send
    integrity_cli.add_commands(command, _settings)  # verify, export-digest, verify-digest, purge
    config_check.add_commands(command, _settings)  # check-config
    return parser


def _settings(args: argparse.Namespace, **overrides: Any) -> Settings:
    from configs.loader import load_settings

    if getattr(args, "data_dir", None) is not None:
        overrides["data_dir"] = str(args.data_dir)
    settings = load_settings(args.config, overrides=overrides)
    problem = _not_a_directory(Path(settings.data_dir))
    if problem:
        data_dir = str(settings.data_dir)
        raise ConfigError(f"configuration error: data_dir = {data_dir!r}: expected a directory, {problem}")
    from detectors.registry import build_detectors

    build_detectors(settings.detectors)  # a wrong detector value stops here, before any work
    configure_logging(settings.logging)  # JSON lines on stderr, ids only (accesswatch.logging)
    return settings


def _not_a_directory(path: Path) -> str | None:
    """Why ``path`` cannot be (or become, by ``mkdir -p``) a directory, or None."""
    ancestor = blocking_ancestor(path)
    if ancestor is None:
        return None
    return "and it is a file" if ancestor == path else f"and {ancestor} is a file"


# -- replay ----------------------------------------------------------------------------
def _replay(args: argparse.Namespace) -> int:
    settings = _settings(args)
    from ingest.sources import FileSource, unreadable_reason

    for path in args.files:
        problem = unreadable_reason(path)
        if problem:  # before anything is stored: a command given one wrong path does nothing
            print(f"accesswatch: {problem}", file=sys.stderr)
            return EXIT_FAILED
    source = FileSource(list(args.files), settings.ingest.max_line_bytes)
    paging = args.page or settings.notify.page_on_replay  # a replay of history pages nobody unless asked
    receivers = app.open_receivers(settings) if paging else {}
    progress = _Progress() if sys.stderr.isatty() else None
    with app.open_store(settings) as store:
        pager = app.open_pager(settings, store, receivers) if paging else None
        # files, whatever source ``run`` is configured for (a Kafka deployment replays files too)
        pipeline = app.build_pipeline(settings, store, pager, progress, source_kind="file")
        try:
            report = pipeline.run(source, close_windows=True)
            if progress:
                progress.done()
            _print_replay(report, settings)  # what was read first, then what became of the pages
            if paging:
                paging_cli.deliver_after_replay(settings, store, receivers)
        # Ctrl-C, or the reader of its summary gone (``replay --page | head -1``) before the pages went out: which
        # pages it leaves undelivered, and how to deliver them
        except (KeyboardInterrupt, BrokenPipeError):
            if paging:
                if progress:
                    progress.done()
                for line in paging_cli.undelivered(settings, store, "replay"):
                    print(line, file=sys.stderr)
            raise
    # late events are stored, so every line is accounted for: the contract's exit 0 stands
    return EXIT_OK if report.balanced else EXIT_FAILED


def _print_replay(report: IngestReport, settings: Settings) -> None:
    rate = report.lines_read / report.elapsed if report.elapsed > 0 else 0.0
    print(
        f"read {plural(report.lines_read, 'line')}: stored {report.stored}, duplicates {report.duplicates},"
        f" dead letters {report.dead_letters}"
    )
    print(
        f"late events {report.late_events}, conflicting duplicates {report.conflicts},"
        f" alerts raised {report.alerts_raised}, alerts updated {report.alerts_updated}"
    )
    print(f"{report.elapsed:.1f} s, {rate:,.0f} lines/s", flush=True)
    if report.late_events:
        print(_late_warning(report.late_events, settings.windows.allowed_lateness), file=sys.stderr)
    if report.duplicates and not (report.stored or report.recovered or report.redelivered):
        print(_nothing_judged(report.duplicates), file=sys.stderr)


def _nothing_judged(duplicates: int) -> str:
    """One line on a replay that stored nothing new: its "alerts raised 0" reads as a verdict on the history
    under the configuration given, and is none (the store keeps each event once, judged when it was stored)."""
    were = "the 1 event read was" if duplicates == 1 else f"all {duplicates} events read were"
    return (
        f"accesswatch replay: no event was judged: {were} stored before, and a stored event is not judged"
        " again; to judge history under a new configuration, replay into a fresh --data-dir"
    )


def _late_warning(late: int, lateness: float) -> str:
    """One line on events stored but never judged: a replay of them again finds them stored, and judges none."""
    its, it = ("its window", "it") if late == 1 else ("their windows", "them")
    return (
        f"accesswatch replay: warning: {plural(late, 'event')} stored but not judged: {its} had closed"
        f" (more than windows.allowed_lateness, {lateness:,.10g} s, behind the newest event read); to judge {it},"
        " replay all the files in one replay, each in time order, into a fresh data dir, or raise"
        " windows.allowed_lateness"
    )


class _Progress:
    """A one-line progress bar with rate, for a terminal."""

    def __init__(self) -> None:
        self._last = 0.0
        self._ended = False

    def __call__(self, report: IngestReport) -> None:
        now = time.monotonic()
        if now - self._last < 0.2:
            return
        self._last = now
        rate = report.lines_read / max(report.elapsed, 1e-9)
        width = shutil.get_terminal_size((80, 20)).columns
        line = (
            f"\r{report.lines_read:>12,} lines  {rate:>10,.0f}/s  stored {report.stored:,}"
            f"  dup {report.duplicates:,}  dead {report.dead_letters:,}  alerts {report.alerts_raised:,}"
        )
        sys.stderr.write(line[:width].ljust(min(width, 100)))
        sys.stderr.flush()

    def done(self) -> None:
        """End the bar's line (once: a Ctrl-C after the replay's summary finds it ended)."""
        if not self._ended:
            sys.stderr.write("\n")
            self._ended = True


# -- alerts and dead letters ---------------------------------------------------------------
def _alerts(args: argparse.Namespace) -> int:
    settings = _settings(args)
    with app.open_store(settings, readonly=True) as store:
        alerts = store.query_alerts(AlertQuery(min_severity=Severity(args.min_severity), limit=1_000_000))
    out = sys.stdout
    if args.format == "jsonl":
        for alert in alerts:
            out.write(json_line(alert.to_record()).decode())
    else:
        _alert_table(alerts, out, settings.organisation.tz)
    return EXIT_OK


def _alert_table(alerts: list[Alert], out: TextIO, zone: tzinfo) -> None:
    """The alerts, one a line; their window's start in the organisation's zone, named in the header, with its
    UTC offset, as ``incidents`` and ``pages`` give their times (``jsonl``: the contract's RFC 3339 UTC)."""
    if not alerts:
        out.write("no alerts\n")
        return
    # the log's words escaped (``models.visible``) before the columns are measured: an id's ESC or CR is shown
    rows = [[visible(alert.detector), visible(alert.actor_id), visible(alert.summary)] for alert in alerts]
    # the columns as wide as their longest value: a long actor id (a partner's) must not push the rest out of line;
    # the alert id first, then its incident's id and status: what ``ack``, ``resolve`` and ``pages --incident`` take
    ident = max(len("alert id"), *(len(alert.alert_id) for alert in alerts))
    incident = max(len("incident id"), *(len(alert.incident_id or "-") for alert in alerts))
    status = max(len("status"), *(len(alert.status.value) for alert in alerts))
    detector = max(len("detector"), *(len(shown) for shown, _, _ in rows))
    actor = max(len("actor"), *(len(shown) for _, shown, _ in rows))
    started = [local_time(alert.window_start, zone) for alert in alerts]
    start_header = f"window start ({zone})"
    start = max(len(start_header), *(len(shown) for shown in started))
    out.write(
        f"{'alert id':<{ident}} {'incident id':<{incident}} {'status':<{status}} {start_header:<{start}}"
        f" {'severity':<8} {'detector':<{detector}} {'actor':<{actor}} {'score':>6}  summary\n"
    )
    for alert, start_shown, (detector_shown, actor_shown, summary) in zip(alerts, started, rows, strict=True):
        out.write(
            f"{alert.alert_id:<{ident}} {alert.incident_id or '-':<{incident}} {alert.status.value:<{status}}"
            f" {start_shown:<{start}} {alert.severity.value:<8} {detector_shown:<{detector}}"
            f" {actor_shown:<{actor}} {alert.score:>6.2f}  {summary}\n"
        )


def _deadletters(args: argparse.Namespace) -> int:
    settings = _settings(args)
    with app.open_store(settings, readonly=True) as store:
        letters = store.dead_letters(limit=args.limit)
        total = store.stats().dead_letters
    for letter in letters:
        if args.format == "jsonl":
            sys.stdout.write(json_line(_dead_letter_record(letter)).decode())
        else:
            sys.stdout.write(f"{letter.source} {letter.position}: {letter.reason}\n    '{_shown(letter.raw)}'\n")
    if args.format == "table":
        sys.stdout.write(f"{plural(total, 'dead letter')} in all\n" if total else "no dead letters\n")
    return EXIT_OK


def _shown(raw: bytes, length: int = 80) -> str:
    """The first ``length`` characters of a dead letter on one line, each invalid byte and each control character
    escaped once and alike (``\\xff``, ``\\x01``, ``\\t``): ``repr`` doubled the backslashes of the escapes
    ``backslashreplace`` had made, and not those of the control characters it escaped itself."""
    # decoded, then cut: a cut in bytes could split a character and show it as invalid bytes
    return visible(raw.decode("utf-8", errors="surrogateescape")[:length])


def _dead_letter_record(letter: DeadLetter) -> dict[str, Any]:
    """The dead letter as JSON: ``raw`` for reading, ``raw_base64`` for the bytes themselves.

    ``raw`` shows invalid UTF-8 as backslash escapes, so a line holding the bytes ``\\xff`` and one holding
    the text ``\\xff`` read the same there; ``raw_base64`` tells them apart, and gives back the exact bytes.
    """
    record = letter.model_dump(mode="json", exclude={"raw"})
    record["raw"] = letter.raw.decode("utf-8", errors="backslashreplace")
    record["raw_base64"] = base64.b64encode(letter.raw).decode("ascii")
    return record


def _evaluate(args: argparse.Namespace) -> int:

    from accesswatch.evaluate import evaluate, format_report, warn_dead_letters

    settings = _settings(args)
    labels = _read_labels(args.labels)
    zone = settings.organisation.tz
    with app.open_store(settings, readonly=True) as store:
        _check_labels_span(args.labels, labels, store.stats())
        warn_dead_letters(store)  # lines never judged: figures that leave them out look clean
        alerts = store.query_alerts(AlertQuery(limit=1_000_000))
        active = store.active_actor_days(zone)
        if args.compare:  # the naive rule runs over the stored events, the store only read
            from detectors.zscore_baseline import replay_alerts

            baseline = replay_alerts(settings, store)
    results = evaluate(labels, alerts, active, zone)
    if args.format == "json":
        from dataclasses import asdict

        print(orjson.dumps([asdict(r) | {"false_per_1000": r.false_per_1000} for r in results]).decode())
    else:
        print(format_report(results))
    if args.compare:
        from accesswatch.evaluate import MODEL_DETECTOR, format_comparison

        rules = [a for a in alerts if a.detector != MODEL_DETECTOR]
        compared = {
            "rules only": evaluate(labels, rules, active, zone),
            "rules + model": results,
            "naive z-score": evaluate(labels, baseline, active, zone),
        }
        print(format_comparison(compared))
    return EXIT_OK


def _check_labels_span(path: Path, labels: dict[str, Any], stats: StoreStats) -> None:
    """Labels of another simulation than the store's are refused (exit 2); of a longer one, a warning."""
    from accesswatch.evaluate import check_span
    from models.event import parse_rfc3339

    if not isinstance(labels.get("start"), str) or not isinstance(labels.get("end"), str):
        return  # checked where the labels say their span (simulate writes it)
    check = check_span(
        parse_rfc3339(labels["start"]), parse_rfc3339(labels["end"]), stats.first_event, stats.last_event
    )
    if check.refused:
        raise WrongArgument(f"accesswatch evaluate: --labels {path}: {check.refused}")
    if check.warning:
        print(f"accesswatch evaluate: warning: {check.warning}", file=sys.stderr)


# what evaluate reads of a labels file (ingest.simulator's labels.json), each item's keys
_LABEL_KEYS = {"scenarios": ("scenario_id", "kind", "actor_id", "start", "end"), "benign": ("kind", "start", "end")}


def _read_labels(path: Path) -> dict[str, Any]:
    """A simulation's labels; ``WrongArgument`` for a file that is not one (an events file, ``{}``)."""
    from ingest.sources import unreadable_reason

    expected = "expected the labels.json that simulate wrote"
    if path.is_dir():
        raise WrongArgument(f"accesswatch evaluate: --labels {path} is a directory: {expected}")
    problem = unreadable_reason(str(path))
    if problem:  # worded as replay words it, not as Python does ("[Errno 2] No such file or directory")
        raise Unreadable(f"accesswatch evaluate: --labels: {problem}")
    try:
        labels = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise WrongArgument(f"accesswatch evaluate: --labels {path} is not JSON ({exc}): {expected}") from None
    problem = _labels_problem(labels)
    if problem:
        raise WrongArgument(f"accesswatch evaluate: --labels {path} is not a labels file ({problem}): {expected}")
    return labels


def _labels_problem(labels: object) -> str | None:
    """What a labels file lacks, or None; without this, ``{}`` scored as "0/0 scenarios detected"."""
    from models.event import parse_rfc3339

    if not isinstance(labels, dict):
        return "expected a JSON object"
    for section, keys in _LABEL_KEYS.items():
        items = labels.get(section)
        if not isinstance(items, list):
            return f"expected a list '{section}'"
        for number, item in enumerate(items):
            missing = [key for key in keys if not isinstance(item, dict) or not isinstance(item.get(key), str)]
            if missing:
                return f"{section}[{number}] lacks {', '.join(missing)}"
            try:
                parse_rfc3339(item["start"]), parse_rfc3339(item["end"])
            except ValueError as exc:
                return f"{section}[{number}]: {exc}"
    for key in ("start", "end"):  # the simulation's span, checked against the store's events
        value = labels.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            return f"{key}: expected an RFC 3339 date-time"
        try:
            parse_rfc3339(value)
        except ValueError as exc:
            return f"{key}: {exc}"
    return None


def _models(args: argparse.Namespace) -> int:
    from detectors.isolation_forest import IsolationForestSettings
    from detectors.model_store import ModelStore, resolve_dir

    settings = _settings(args)
    section = IsolationForestSettings.model_validate(settings.detectors.get("isolation_forest", {}))
    store = ModelStore(resolve_dir(Path(settings.data_dir), section.model_dir))
    artefacts = store.artefacts()
    if args.format == "json":
        for artefact in artefacts:
            sys.stdout.write(artefact.model_dump_json() + "\n")
        return EXIT_OK
    if not artefacts:
        print(f"no models in {store.directory}")
        return EXIT_OK
    print(f"{'version':<58} {'trained on (event time, UTC)':<35} {'windows':>8} {'actor-days':>10}  thresholds")
    for a in artefacts:
        span = f"{format_utc(a.trained_from)[:16]} - {format_utc(a.trained_to)[:16]}"
        thresholds = " ".join(f"{name} {value:.4f}" for name, value in a.thresholds.items())
        print(f"{a.version:<58} {span:<35} {a.windows:>8,} {a.actor_days:>10,}  {thresholds}")
    latest = artefacts[-1]
    params = ", ".join(f"{k}={v}" for k, v in latest.params.items())
    models = plural(len(artefacts), "model")
    print(f"{models} in {store.directory}; latest: {len(latest.features)} features, {params},")
    print(f"  scikit-learn {latest.library.get('scikit-learn')}; features: {', '.join(latest.features)}")
    return EXIT_OK


# -- simulate ----------------------------------------------------------------------------------
def _utc_midnight(text: str) -> datetime:
    """``simulate --start``: a calendar date, as the start of that day in UTC."""
    try:
        return datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date such as 2026-10-05, not {text!r}") from None


def _simulate(args: argparse.Namespace) -> int:
    from ingest.simulator import SimulationSettings, write_simulation

    try:
        simulation = SimulationSettings(
            seed=args.seed, days=args.days, employees=args.employees, scenarios=not args.no_scenarios, start=args.start
        )
    except ValueError as exc:
        print(f"accesswatch simulate: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    problem = _not_a_directory(args.out)
    if problem:
        raise WrongArgument(f"accesswatch simulate: --out {args.out}: expected a directory, {problem}")
    summary = write_simulation(args.out, simulation)
    print(orjson.dumps(summary).decode())
    return EXIT_OK


# -- run and demo -------------------------------------------------------------------------------
def _run(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {}
    if args.source:
        overrides["source.kind"] = args.source
    if args.files:
        overrides["source.file.paths"] = list(args.files)
    settings = _settings(args, **overrides)
    if args.files and settings.source.kind != "file":  # files given to a simulator or Kafka run would be ignored
        raise WrongArgument(
            f"accesswatch run: FILE is read only by the file source, and this run's source.kind is"
            f" {settings.source.kind!r}: drop the files, or add --source file"
        )
    if settings.source.kind == "file":
        from ingest.sources import unreadable_reason

        for path in settings.source.file.paths:  # as replay: before the store is opened, one line, exit 1
            problem = unreadable_reason(path)
            if problem:
                print(f"accesswatch: {problem}", file=sys.stderr)
                return EXIT_FAILED
    return _live(settings, "run")


def _demo(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {"source.kind": "simulator", "notify.receivers": ["console", "file"]}
    if args.speed is not None:
        overrides["source.simulator.speed"] = args.speed
    if args.days is not None:
        overrides["source.simulator.days"] = args.days
    if args.data_dir is None:
        overrides["data_dir"] = "data/demo"
    settings = _settings(args, **overrides)
    store_path = _claim_demo_store(settings, replace=not args.keep)
    simulator = settings.source.simulator
    print(
        f"accesswatch demo: {plural(simulator.days, 'simulated day')} of an organisation with"
        f" {plural(simulator.employees, 'employee')}, played at {simulator.speed:,.0f}x into {store_path};"
        f" {_demo_pages(settings)}. Ctrl-C stops.",
        flush=True,
    )
    return _live(settings, "demo")


def _demo_pages(settings: Settings) -> str:
    """When the demo's first pages can come, and which: the detectors first learn a week, and in silence."""
    warmup = settings.baselines.system_warmup
    days = warmup / 86400
    floor = settings.notify.min_severity.value
    if settings.source.simulator.days * 86400 <= warmup:
        return f"no alerts: the detectors learn for the first {days:g} simulated days, and this demo is no longer"
    wait = warmup / settings.source.simulator.speed
    waited = f"{wait:.0f} s" if wait < 90 else f"{wait / 60:.1f} min"
    return (
        f"the detectors learn for the first {days:g} simulated days (about {waited} at this speed), then pages"
        f" at {floor} or above print below as they are raised"
    )


def _claim_demo_store(settings: Settings, replace: bool) -> Path:
    """The demo's store, made (and marked as the demo's) if need be; ``replace``: the earlier demo store goes first.

    A data dir holding a store the demo did not make is refused, with or without ``--keep``:
    replacing it would lose its data, and adding a simulated organisation to it would spoil it.
    """
    if settings.store.kind != "sqlite":
        raise WrongArgument(
            f"accesswatch demo: plays into the embedded store only, and store.kind is {settings.store.kind!r}:"
            " set ACCESSWATCH_STORE__KIND=sqlite, or leave out the --config that chose it"
        )
    data_dir = Path(settings.data_dir)
    store_path = data_dir / settings.store.sqlite.filename
    marker = data_dir / DEMO_MARKER
    # the store, SQLite's files beside it, and the file receiver's pages: what the demo writes and replaces
    files = [Path(f"{store_path}{suffix}") for suffix in ("", "-wal", "-shm")] + [data_dir / settings.notify.file]
    present = [path for path in files if path.exists()]
    if present and not _made_by_demo(store_path, marker):
        raise WrongArgument(
            f"accesswatch demo: {data_dir} holds a store the demo did not make ({present[0]}): give the demo"
            " a data dir of its own (--data-dir), or move that store away first"
        )
    if replace:
        for path in present:
            path.unlink()
        marker.unlink(missing_ok=True)
    if not store_path.exists():
        with app.open_store(settings):  # made now, so that its stamp can mark it as the demo's
            pass
        marker.write_text(_creation_stamp(store_path) or "")
    return store_path


def _made_by_demo(store_path: Path, marker: Path) -> bool:
    """Whether the demo made the store at ``store_path``: the marker beside it holds that store's stamp."""
    if not marker.is_file():
        return False
    if not store_path.exists():  # the demo's store went, its side files stayed (an interrupted replacement)
        return True
    stamp = _creation_stamp(store_path)
    return stamp is not None and marker.read_text().strip() == stamp


def _creation_stamp(store_path: Path) -> str | None:
    """When the store at ``store_path`` was made (its first migration's time, to the microsecond), or None.

    Another store made in its place, even under the same file name and inode, has another stamp: a marker
    left behind cannot vouch for it.
    """
    try:
        with closing(sqlite3.connect(f"file:{store_path}?mode=ro", uri=True)) as db:
            row = db.execute("SELECT applied_at FROM schema_migrations ORDER BY rowid LIMIT 1").fetchone()
    except sqlite3.Error:  # not a store, or not one of ours
        return None
    return str(row[0]) if row else None


def _live(settings: Settings, command: str) -> int:
    source = app.open_source(settings)

    def stop(signum: int, frame: FrameType | None) -> None:
        source.stop()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with app.open_store(settings) as store:
            # pages are planned into the store's outbox and delivered by a thread of their own
            with (
                app.live_paging(settings, store) as pager,
                app.serving_metrics(settings) as metrics,  # /metrics, /livez, /readyz (ingest.metrics)
                app.purging(settings),  # retention on a connection of its own (store.retention)
                app.logging_chain_heads(settings),  # for `verify --head` (accesswatch.chain_heads)
            ):
                pipeline = app.build_pipeline(settings, store, pager)
                pipeline.metrics = metrics  # a Kafka run hands them to every partition's pipeline
                report = pipeline.run(source, close_windows=False)
            undelivered = paging_cli.undelivered(settings, store, command)  # what the delivery thread left
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        source.close()
    print(
        f"stopped: read {plural(report.lines_read, 'line')}, stored {report.stored}, duplicates {report.duplicates}"
        # a restart's redeliveries are duplicates to the store but judged again: told apart, as README does
        + (f" ({report.redelivered} of them redelivered after a restart, judged again)" if report.redelivered else "")
        + f", dead letters {report.dead_letters}, alerts raised {report.alerts_raised}",
        file=sys.stderr,
    )
    for line in undelivered:
        print(line, file=sys.stderr)
    return EXIT_OK if report.balanced else EXIT_FAILED


# -- dashboard ------------------------------------------------------------------------------------
def _dashboard(args: argparse.Namespace) -> int:
    from dashboard import launch

    if args.hash_password:
        return launch.print_hash()
    overrides: dict[str, Any] = {}  # validated as the configured values are: one line, exit 2
    if args.port is not None:
        overrides["dashboard.port"] = args.port
    if args.address is not None:
        overrides["dashboard.address"] = args.address
    settings = _settings(args, **overrides)
    return launch.run(settings, args.config, args.demo)


if __name__ == "__main__":
    sys.exit(main())
