"""Paging through the product: ``replay --page``, ``run``, ``pages``, ``ack`` and ``resolve``, and crashes.

A two-week story (``tests.detector_harness``) in which two agents each try
dozens of passport lookups and are refused: two incidents.  PagerDuty is a
local server; the configuration is a TOML file, as an operator writes it.
"""

from __future__ import annotations

import itertools
import shlex
import signal
from collections import Counter
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest

from accesswatch import app, cli
from configs.loader import load_settings
from ingest.sources import FileSource
from models.local_time import local_time
from models.page import NotificationStatus, PageKind
from notify.base import commands
from store.base import IncidentQuery
from store.outbox import OutboxQuery
from store.sqlite import SqliteStore
from tests.closed_pipe import into_a_closed_pipe
from tests.detector_harness import PASSPORT_FIELDS, burst, history, local, team
from tests.fakes.paging_receivers import FakeReceiver
from tests.paging_factories import ROUTING_KEY

TEAM = team(5)


def story() -> list[bytes]:
    parts = [history(agent, days=14, per_hour=3, records=2) for agent in TEAM]
    for agent, day, refusals in ((TEAM[0], 14, 25), (TEAM[1], 15, 40)):
        probe = burst(
            agent, local(day, 10), refusals, within=timedelta(minutes=10), outcome="denied", fields=PASSPORT_FIELDS
        )
        parts.append(probe)
    merged = sorted(itertools.chain.from_iterable(parts), key=lambda data: data["timestamp"])
    return [orjson.dumps({**data, "event_id": f"e{n:07d}"}) for n, data in enumerate(merged)]


@pytest.fixture(scope="module")
def events(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("story") / "events.jsonl"
    path.write_bytes(b"\n".join(story()) + b"\n")
    return path


@pytest.fixture
def pagerduty():
    with FakeReceiver("pagerduty") as fake:
        yield fake


@pytest.fixture
def config(tmp_path, pagerduty) -> Path:
    path = tmp_path / "paging.toml"
    path.write_text(
        f"""
[notify]
receivers = ["pagerduty", "file"]
min_severity = "medium"
dashboard_url = "https://accesswatch.example.com"

[notify.delivery]
timeout = "15s"
retry_initial = "1s"
drain_on_exit = "10s"

[notify.settings.pagerduty]
routing_key = "{ROUTING_KEY}"
url = "{pagerduty.url}"
"""
    )
    return path


def accesswatch(*args: str) -> int:
    return cli.main(list(args))


def outbox(data: Path, **query):
    with SqliteStore(data / "accesswatch.db") as store:
        return store.notifications(OutboxQuery(newest_first=False, **query))


def incidents(data: Path):
    with SqliteStore(data / "accesswatch.db") as store:
        return store.query_incidents(IncidentQuery(limit=100, order="oldest"))


def test_a_replay_pages_nobody_unless_asked(tmp_path, events, config, pagerduty, capsys):
    data = tmp_path / "data"
    assert accesswatch("replay", str(events), "--data-dir", str(data), "--config", str(config)) == 0
    assert len(incidents(data)) >= 2
    assert outbox(data) == [] and pagerduty.received == []
    assert not (data / "pages.jsonl").exists()


def test_replay_with_page_pages_each_incident_once_and_a_second_replay_pages_nobody(
    tmp_path, events, config, pagerduty, capsys
):
    data = tmp_path / "data"
    assert accesswatch("replay", str(events), "--data-dir", str(data), "--config", str(config), "--page") == 0
    paged = [i for i in incidents(data) if i.severity.rank >= 1]
    assert len(paged) >= 2 and pagerduty.rejected == []
    assert sorted(e["dedup_key"] for e in pagerduty.events("trigger")) == sorted(i.incident_id for i in paged)
    assert pagerduty.pages == len(paged)
    file_lines = (data / "pages.jsonl").read_bytes().splitlines()
    assert len(file_lines) == len(paged)
    said = capsys.readouterr().out
    assert said.index("read ") < said.index("pages: ")  # what was read first, then what became of the pages
    # each receiver's pages, not their sum (which counted each page twice), and where the file receiver wrote them
    n = len(paged)
    assert said.splitlines()[-1] == (
        f"pages: {n} sent to pagerduty, {n} to file ({data / 'pages.jsonl'}), 0 failed, 0 waiting to be retried"
    )
    assert accesswatch("replay", str(events), "--data-dir", str(data), "--config", str(config), "--page") == 0
    assert len(pagerduty.received) == len(paged)
    assert {row.status for row in outbox(data)} == {NotificationStatus.SENT}


def test_a_crash_between_planning_pages_and_storing_alerts_pages_once(tmp_path, events, config, pagerduty, monkeypatch):
    data = tmp_path / "data"
    settings = load_settings(config, env={}, overrides={"data_dir": str(data)})

    def replay() -> None:
        with app.open_store(settings) as store:
            pager = app.open_pager(settings, store, app.open_receivers(settings))
            app.build_pipeline(settings, store, pager).run(FileSource([str(events)], 1 << 20), close_windows=True)
            app.open_dispatcher(settings, store, pager.receivers).deliver_due()

    def crash(self, alerts, incidents=()):
        raise RuntimeError("killed after the pages were planned, before the alerts were stored")

    with monkeypatch.context() as patch:
        patch.setattr(SqliteStore, "upsert_alerts", crash)
        with pytest.raises(RuntimeError, match="killed"):
            replay()
    planned = outbox(data)
    assert planned and incidents(data) == []  # the pages are in the outbox; the alerts never got stored
    replay()  # the restart: recovery judges the stored events again and raises the same alerts
    stored = [i for i in incidents(data) if i.severity.rank >= 1]
    # each page planned before the crash is planned again under its id, not twice (and the run, stopped
    # at the crash, plans what it had not reached on the restart)
    paged = [row.notification_id for row in outbox(data)]
    assert len(paged) == len(set(paged)) and {row.notification_id for row in planned} <= set(paged)
    assert sorted(e["dedup_key"] for e in pagerduty.events("trigger")) == sorted(i.incident_id for i in stored)
    assert pagerduty.pages == len(stored)


def test_pages_lists_failures_with_the_last_error(tmp_path, events, config, pagerduty, capsys, monkeypatch):
    monkeypatch.setenv("ACCESSWATCH_NOTIFY__DELIVERY__DRAIN_ON_EXIT", "0s")  # no waiting for retries
    data = tmp_path / "data"
    pagerduty.fail_next(1, 400)
    pagerduty.fail_next(100, 503)
    accesswatch("replay", str(events), "--data-dir", str(data), "--config", str(config), "--page")
    capsys.readouterr()
    assert accesswatch("pages", "--data-dir", str(data), "--config", str(config)) == 0
    table = capsys.readouterr().out
    assert "failed" in table and "HTTP 400" in table and "pending" in table and "HTTP 503" in table
    assert accesswatch("pages", "--data-dir", str(data), "--status", "failed", "--format", "jsonl") == 0
    (failed,) = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert failed["receiver"] == "pagerduty" and failed["last_error"].startswith("HTTP 400")
    # PagerDuty is back: pages --deliver sends what waits
    pagerduty.heal()
    assert accesswatch("pages", "--data-dir", str(data), "--config", str(config), "--deliver") == 0
    # each receiver's count, as replay --page says them
    to_file = f"0 to file ({data / 'pages.jsonl'})"
    assert f"delivered: 1 sent to pagerduty, {to_file}, 0 to retry, 0 failed\n" in capsys.readouterr().out
    statuses = sorted(row.status.value for row in outbox(data, receiver="pagerduty"))
    assert statuses == ["failed", "sent"]
    # and once the cause of the refusal is fixed, the failed page too
    assert accesswatch("pages", "--data-dir", str(data), "--config", str(config), "--retry-failed") == 0
    assert f"delivered: 1 sent to pagerduty, {to_file}, 0 to retry, 0 failed\n" in capsys.readouterr().out
    assert {row.status for row in outbox(data)} == {NotificationStatus.SENT}
    assert pagerduty.pages == len([i for i in incidents(data) if i.severity.rank >= 1])


def test_pages_shows_when_a_page_behind_a_resting_receiver_is_really_tried(
    tmp_path, events, config, pagerduty, capsys, monkeypatch
):
    monkeypatch.setenv("ACCESSWATCH_NOTIFY__DELIVERY__DRAIN_ON_EXIT", "0s")
    data = tmp_path / "data"
    pagerduty.fail_next(1, 429, retry_after="3600")  # the first page: PagerDuty asks for an hour's rest
    accesswatch("replay", str(events), "--data-dir", str(data), "--config", str(config), "--page")
    waiting = outbox(data, receiver="pagerduty", statuses=[NotificationStatus.PENDING])
    assert len(waiting) == 2 and sorted(row.attempts for row in waiting) == [0, 1]  # the other one is not tried
    rest_ends = max(row.due_at for row in waiting)
    capsys.readouterr()
    assert accesswatch("pages", "--data-dir", str(data), "--status", "pending") == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if " pagerduty " in line]
    shown = local_time(rest_ends, ZoneInfo("Asia/Shanghai"), seconds=True)  # the organisation's (default) zone
    assert len(lines) == 2 and all(f"  {shown} " in line for line in lines), lines


def _pages(count: int) -> str:
    return f"{count} page{'s' if count != 1 else ''}"


def _deliver_command(err: str, command: str = "replay") -> list[str]:
    """The command the one line on stderr gives for the pages left waiting, as a person would copy it."""
    (line,) = [line for line in err.splitlines() if line.startswith(f"accesswatch {command}: stopped with")]
    return shlex.split(line.split("'")[1])


def test_a_replay_stopped_by_ctrl_c_while_delivering_says_what_waits_and_gives_the_page_back(
    tmp_path, events, config, pagerduty, capsys, monkeypatch
):
    from notify.jsonl_file import JsonlFileNotifier

    data = tmp_path / "data"
    real = JsonlFileNotifier.send

    def written_then_interrupted(self, page, delivery_id=""):
        real(self, page, delivery_id)  # on disk, and Ctrl-C before it is recorded as sent
        monkeypatch.setattr(JsonlFileNotifier, "send", real)
        raise KeyboardInterrupt

    monkeypatch.setattr(JsonlFileNotifier, "send", written_then_interrupted)
    assert accesswatch("replay", str(events), "--data-dir", str(data), "--config", str(config), "--page") == 130
    err = capsys.readouterr().err
    waiting = outbox(data, statuses=[NotificationStatus.PENDING])
    assert len(waiting) >= 2  # the page written, and those behind it
    assert f"accesswatch replay: stopped with {_pages(len(waiting))} not delivered: " in err
    command = _deliver_command(err)
    assert command == ["accesswatch", "pages", "--deliver", "--config", str(config), "--data-dir", str(data)]
    assert accesswatch("pages", *command[3:], "--status", "pending") == 0
    assert "taken for delivery" not in capsys.readouterr().out  # given back: due at once, no lease to wait out
    assert accesswatch("pages", *command[2:]) == 0
    sent = Counter(row.receiver for row in waiting)
    said = f"delivered: {sent['pagerduty']} sent to pagerduty, {sent['file']} to file ({data / 'pages.jsonl'}),"
    assert said in capsys.readouterr().out
    assert {row.status for row in outbox(data)} == {NotificationStatus.SENT}
    ids = [orjson.loads(line)["page"]["delivery_id"] for line in (data / "pages.jsonl").read_bytes().splitlines()]
    assert sorted(ids) == sorted(row.notification_id for row in outbox(data, receiver="file"))  # each once


def test_a_replay_stopped_by_ctrl_c_before_it_delivers_says_what_waits(
    tmp_path, events, config, pagerduty, capsys, monkeypatch
):
    def interrupted(*args):
        raise KeyboardInterrupt  # Ctrl-C at the end of reading: the pages are planned, none delivered

    monkeypatch.setattr(cli, "_print_replay", interrupted)
    data = tmp_path / "data"
    assert accesswatch("replay", str(events), "--data-dir", str(data), "--config", str(config), "--page") == 130
    planned = outbox(data)
    assert planned and all(row.status is NotificationStatus.PENDING for row in planned)
    err = capsys.readouterr().err
    assert f"accesswatch replay: stopped with {_pages(len(planned))} not delivered: " in err
    assert pagerduty.received == []


def test_pages_deliver_and_ack_stopped_by_ctrl_c_say_what_waits(
    tmp_path, events, config, pagerduty, capsys, monkeypatch
):
    # they stopped saying nothing: exit 130, an empty stderr, and the pages given back left pending unseen
    from notify.jsonl_file import JsonlFileNotifier

    def interrupted(self, page, delivery_id=""):
        raise KeyboardInterrupt

    data = tmp_path / "data"
    store = ["--data-dir", str(data), "--config", str(config)]
    real = JsonlFileNotifier.send
    monkeypatch.setattr(JsonlFileNotifier, "send", interrupted)
    assert accesswatch("replay", str(events), *store, "--page") == 130
    capsys.readouterr()
    assert accesswatch("pages", "--deliver", *store) == 130
    waiting = outbox(data, statuses=[NotificationStatus.PENDING])
    err = capsys.readouterr().err
    assert f"accesswatch pages: stopped with {_pages(len(waiting))} not delivered: " in err
    assert _deliver_command(err, "pages")[:3] == ["accesswatch", "pages", "--deliver"]
    monkeypatch.setattr(JsonlFileNotifier, "send", real)
    assert accesswatch("pages", "--deliver", *store) == 0
    incident = next(i for i in incidents(data) if i.severity.rank >= 1)
    monkeypatch.setattr(JsonlFileNotifier, "send", interrupted)
    capsys.readouterr()
    assert accesswatch("ack", incident.incident_id, *store, "--by", "ana") == 130
    waiting = outbox(data, statuses=[NotificationStatus.PENDING])
    assert waiting
    assert f"accesswatch ack: stopped with {_pages(len(waiting))} not delivered: " in capsys.readouterr().err
    (acknowledged,) = [i for i in incidents(data) if i.incident_id == incident.incident_id]
    assert acknowledged.status.value == "acknowledged"  # recorded before its pages were tried


def _into_a_closed_pipe(*args: str) -> tuple[int, str]:
    """The command with its stdout a pipe whose reader went before the first line (``| head -1``, the reader
    quick): every write to stdout fails.  Its exit status, and its stderr less the log's JSON lines."""
    done = into_a_closed_pipe(*args)
    return done.returncode, "".join(line for line in done.stderr.decode().splitlines(True) if line[:6] != '{"ts":')


def test_a_replay_and_pages_deliver_into_a_closed_pipe_end_quietly_and_leave_the_consoles_pages_waiting(
    tmp_path, events, capsys
):
    """Tester: ``accesswatch pages --deliver | head -1``: the console failed with BrokenPipe, its pages waited out a
    backoff and were sent again later as retries.  Writing to a closed pipe, the console delivered nothing: its
    pages wait, untried, for the next process; the file receiver's are delivered; the command ends as a reader
    gone ends it (SIGPIPE's status, no traceback) and says on stderr what waits."""
    config = tmp_path / "console.toml"
    config.write_text('[notify]\nreceivers = ["console", "file"]\nmin_severity = "medium"\n')
    data = tmp_path / "data"
    store = ["--data-dir", str(data), "--config", str(config)]
    deliver = f"'accesswatch pages --deliver --config {config} --data-dir {data}' delivers them\n"
    # a replay whose summary finds no reader stops before its pages go out, and says so, as after a Ctrl-C
    status, err = _into_a_closed_pipe("replay", str(events), *store, "--page")
    planned = outbox(data)
    assert {row.receiver for row in planned} == {"console", "file"}
    assert {row.status for row in planned} == {NotificationStatus.PENDING}
    assert (status, err) == (
        128 + signal.SIGPIPE,
        f"accesswatch replay: stopped with {_pages(len(planned))} not delivered: {deliver}",
    )
    status, err = _into_a_closed_pipe("pages", "--deliver", *store)
    console = outbox(data, receiver="console")
    assert len(console) == len(planned) // 2
    assert (status, err) == (
        128 + signal.SIGPIPE,
        f"accesswatch pages: the output of console was closed (its reader stopped reading): {_pages(len(console))}"
        f" to it not delivered: {deliver}",
    )
    assert {row.status for row in outbox(data, receiver="file")} == {NotificationStatus.SENT}
    # not tried: no attempt, no error, no rest to wait out
    assert all(row.status is NotificationStatus.PENDING and row.attempts == 0 for row in console)
    assert all(row.last_error is None for row in console)
    with SqliteStore(data / "accesswatch.db") as opened:
        assert opened.receiver_rests() == {}
    written = (data / "pages.jsonl").read_bytes()
    capsys.readouterr()
    assert accesswatch("pages", "--deliver", *store) == 0
    delivered = f"delivered: {len(console)} sent to console, 0 to file ({data / 'pages.jsonl'}), 0 to retry, 0 failed"
    assert delivered in capsys.readouterr().out.splitlines()
    assert (data / "pages.jsonl").read_bytes() == written  # the file's pages not sent again


def test_a_run_stopped_with_pages_waiting_says_so(tmp_path, events, config, pagerduty, capsys, monkeypatch):
    monkeypatch.setenv("ACCESSWATCH_NOTIFY__DELIVERY__DRAIN_ON_EXIT", "0s")
    pagerduty.fail_next(100, 503)
    data = tmp_path / "data"
    assert accesswatch("run", str(events), "--source", "file", "--data-dir", str(data), "--config", str(config)) == 0
    waiting = outbox(data, statuses=[NotificationStatus.PENDING])
    assert waiting and {row.receiver for row in waiting} == {"pagerduty"}
    err = capsys.readouterr().err
    assert f"accesswatch run: stopped with {_pages(len(waiting))} not delivered: " in err
    assert _deliver_command(err, "run")[:3] == ["accesswatch", "pages", "--deliver"]


def test_the_commands_a_page_gives_act_on_the_incident_as_printed(tmp_path, events, config, pagerduty, capsys):
    # a store outside ./data (the demo's is data/demo): the page's "accesswatch ack inc-..." must reach it
    data = tmp_path / "data"
    accesswatch("replay", str(events), "--data-dir", str(data), "--config", str(config), "--page")
    row = next(row for row in outbox(data) if row.page.kind is PageKind.TRIGGER)
    ack, _ = commands(row.page)
    assert ack.endswith(f" --config {config.resolve()} --data-dir {data.resolve()}")
    capsys.readouterr()
    assert accesswatch(*shlex.split(ack)[1:]) == 0, capsys.readouterr().err
    (incident,) = [i for i in incidents(data) if i.incident_id == row.incident_id]
    assert incident.status.value == "acknowledged"


def test_pages_of_an_incident_found_by_one_of_its_alerts_with_the_actor_and_an_unknown_id_refused(
    tmp_path, events, config, pagerduty, capsys
):
    data = tmp_path / "data"
    accesswatch("replay", str(events), "--data-dir", str(data), "--config", str(config), "--page")
    incident = next(i for i in incidents(data) if i.severity.rank >= 1)
    capsys.readouterr()
    by_incident = accesswatch("pages", "--data-dir", str(data), "--incident", incident.incident_id)
    listed = capsys.readouterr().out
    assert by_incident == 0 and incident.incident_id in listed and f" {incident.actor_id} " in listed
    # the summary counts that incident's pages, not the whole outbox's (two incidents were paged)
    own = len([line for line in listed.splitlines()[1:-1] if incident.incident_id in line])
    summary = f"in all for {incident.incident_id}: 0 pending, {own} sent, 0 failed, 0 suppressed, 0 cancelled"
    assert own and listed.splitlines()[-1] == summary, listed
    # ack and resolve take an alert id too: so does the listing, with the same pages
    assert accesswatch("pages", "--data-dir", str(data), "--incident", incident.alert_ids[0]) == 0
    assert capsys.readouterr().out == listed
    assert accesswatch("pages", "--data-dir", str(data), "--incident", "inc-nope") == 1
    assert capsys.readouterr().err.strip() == "accesswatch: no incident or alert 'inc-nope'"


def test_ack_and_resolve_reach_pagerduty(tmp_path, events, config, pagerduty, capsys):
    data = tmp_path / "data"
    accesswatch("replay", str(events), "--data-dir", str(data), "--config", str(config), "--page")
    incident = next(i for i in incidents(data) if i.severity.rank >= 1)
    capsys.readouterr()
    assert (
        accesswatch(
            "ack",
            incident.incident_id,
            "--data-dir",
            str(data),
            "--config",
            str(config),
            "--by",
            "alice",
            "--note",
            "on it",
        )
        == 0
    )
    out = capsys.readouterr().out
    assert f"{incident.incident_id}" in out and "is now acknowledged" in out and "pagerduty: acknowledge sent" in out
    assert pagerduty.pagerduty[incident.incident_id].status == "acknowledged"
    # resolving by the id of one of its alerts
    assert (
        accesswatch("resolve", incident.alert_ids[0], "--data-dir", str(data), "--config", str(config), "--by", "alice")
        == 0
    )
    assert "is now resolved" in capsys.readouterr().out
    assert pagerduty.pagerduty[incident.incident_id].status == "resolved"
    kinds = [row.kind for row in outbox(data, incident_id=incident.incident_id, receiver="pagerduty")]
    assert kinds == [PageKind.TRIGGER, PageKind.ACKNOWLEDGE, PageKind.RESOLVE]
    with SqliteStore(data / "accesswatch.db") as store:
        assert [a.by for a in store.actions(incident.incident_id)] == ["alice", "alice"]


def test_failed_pages_sent_again_leave_pagerduty_as_the_incidents_are_now(
    tmp_path, events, config, pagerduty, capsys, monkeypatch
):
    """Before, ``pages --retry-failed`` sent the first trigger alone: PagerDuty kept an acknowledged incident
    triggered (and escalating), and paged on-call staff for a resolved one."""
    monkeypatch.setenv("ACCESSWATCH_NOTIFY__DELIVERY__DRAIN_ON_EXIT", "0s")
    data = tmp_path / "data"
    where = ("--data-dir", str(data), "--config", str(config))
    pagerduty.fail_next(100, 400)  # refused: every trigger fails for good
    accesswatch("replay", str(events), *where, "--page")
    acknowledged, resolved = [i for i in incidents(data) if i.severity.rank >= 1]
    assert accesswatch("ack", acknowledged.incident_id, *where, "--by", "carol") == 0
    assert accesswatch("resolve", resolved.incident_id, *where, "--by", "bob") == 0
    pagerduty.heal()
    capsys.readouterr()
    # --retry-failed alone delivers, as its help says
    assert accesswatch("pages", *where, "--retry-failed", "--incident", resolved.incident_id) == 0
    out = capsys.readouterr().out
    assert "failed pages: 1 sent again, 1 superseded" in out and "delivered: 2 sent" in out
    assert [(e["event_action"], e["dedup_key"]) for e in pagerduty.accepted] == [
        ("trigger", acknowledged.incident_id),
        ("acknowledge", acknowledged.incident_id),
    ]
    assert pagerduty.pagerduty[acknowledged.incident_id].status == "acknowledged"
    assert resolved.incident_id not in pagerduty.pagerduty  # nobody paged for a closed incident
    assert "cancelled" in out and "superseded: the incident is resolved now (bob, " in out


def test_retry_failed_says_it_delivers(capsys):
    with pytest.raises(SystemExit):
        accesswatch("pages", "--help")
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--retry-failed deliver as --deliver does" in help_text


def test_ack_of_an_unknown_id_fails(tmp_path, events, config, capsys):
    data = tmp_path / "data"
    accesswatch("replay", str(events), "--data-dir", str(data), "--config", str(config))
    assert accesswatch("ack", "inc-unknown", "--data-dir", str(data), "--config", str(config)) == 1
    assert "no incident or alert 'inc-unknown'" in capsys.readouterr().err


def test_a_resolve_pagerduty_does_not_take_now_waits_in_the_outbox(
    tmp_path, events, config, pagerduty, capsys, monkeypatch
):
    monkeypatch.setenv("ACCESSWATCH_NOTIFY__DELIVERY__DRAIN_ON_EXIT", "0s")
    data = tmp_path / "data"
    accesswatch("replay", str(events), "--data-dir", str(data), "--config", str(config), "--page")
    incident = next(i for i in incidents(data) if i.severity.rank >= 1)
    pagerduty.fail_next(100, 502)
    capsys.readouterr()
    assert accesswatch("resolve", incident.incident_id, "--data-dir", str(data), "--config", str(config)) == 0
    assert "pagerduty: resolve pending, next try" in capsys.readouterr().out
    assert pagerduty.pagerduty[incident.incident_id].status == "triggered"
    pagerduty.heal()
    assert accesswatch("pages", "--data-dir", str(data), "--config", str(config), "--deliver") == 0
    assert pagerduty.pagerduty[incident.incident_id].status == "resolved"


def test_the_live_pipeline_delivers_from_its_own_thread(tmp_path, events, config, pagerduty):
    data = tmp_path / "data"
    assert accesswatch("run", str(events), "--source", "file", "--data-dir", str(data), "--config", str(config)) == 0
    # a live run closes no window at the end, so whatever it raised was paged by the delivery thread
    raised = [i for i in incidents(data) if i.severity.rank >= 1]
    assert raised and pagerduty.pages == len(raised)
    assert {row.status for row in outbox(data)} == {NotificationStatus.SENT}


def test_a_page_sent_in_the_end_shows_its_error_as_an_earlier_attempts(
    tmp_path, events, config, pagerduty, capsys, monkeypatch
):
    monkeypatch.setenv("ACCESSWATCH_NOTIFY__DELIVERY__DRAIN_ON_EXIT", "0s")
    data = tmp_path / "data"
    pagerduty.fail_next(100, 503)
    accesswatch("replay", str(events), "--data-dir", str(data), "--config", str(config), "--page")
    pagerduty.heal()
    assert accesswatch("pages", "--data-dir", str(data), "--config", str(config), "--deliver") == 0
    capsys.readouterr()
    assert accesswatch("pages", "--data-dir", str(data), "--status", "sent") == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if " pagerduty " in line]
    retried = [line for line in lines if "HTTP 503" in line]
    assert retried and all(" sent " in line for line in lines)
    # the outbox keeps why it took another try; the table says it was an earlier attempt's
    assert all("  earlier attempt: HTTP 503 from " in line for line in retried), retried


def test_after_a_replay_escalations_not_yet_due_are_not_counted_as_retries(tmp_path, events, pagerduty, capsys):
    config = tmp_path / "escalating.toml"
    config.write_text(
        f"""
[notify]
receivers = []
[[notify.routes]]
name = "soc"
receivers = ["file"]
escalate = [{{ after = "15m", receivers = ["pagerduty"] }}]

[notify.delivery]
drain_on_exit = "0s"

[notify.settings.pagerduty]
routing_key = "{ROUTING_KEY}"
url = "{pagerduty.url}"
"""
    )
    data = tmp_path / "data"
    assert accesswatch("replay", str(events), "--data-dir", str(data), "--config", str(config), "--page") == 0
    out = capsys.readouterr().out
    escalations = outbox(data, receiver="pagerduty")
    assert escalations and all(row.status is NotificationStatus.PENDING for row in escalations)
    assert "0 waiting to be retried" in out and "retries them" not in out
    assert f"; {len(escalations)} escalations due later if nobody acknowledges" in out


def test_a_closed_incident_is_not_acknowledged_until_it_is_reopened(tmp_path, events, config, pagerduty, capsys):
    data = tmp_path / "data"
    accesswatch("replay", str(events), "--data-dir", str(data), "--config", str(config), "--page")
    incident = next(i for i in incidents(data) if i.severity.rank >= 1)
    where = ("--data-dir", str(data), "--config", str(config), "--by", "bob")
    assert accesswatch("resolve", incident.incident_id, *where) == 0
    capsys.readouterr()
    assert accesswatch("ack", incident.incident_id, *where) == 1
    err = capsys.readouterr().err
    assert err == f"accesswatch: {incident.incident_id} is closed as resolved: reopen it before you acknowledge it\n"
    told = {"receiver": "pagerduty", "incident_id": incident.incident_id}
    assert [row.kind for row in outbox(data, **told)] == [PageKind.TRIGGER, PageKind.RESOLVE]
    assert pagerduty.pagerduty[incident.incident_id].status == "resolved"
    # resolving it again is a repeat: nothing changes, nobody is told
    assert accesswatch("resolve", incident.incident_id, *where) == 0
    assert "is already resolved: nothing changed, nobody told again" in capsys.readouterr().out
    assert len(outbox(data, **told)) == 2
    # reopened, it is in the queue again and may be acknowledged; the receivers told it was closed are told
    assert accesswatch("reopen", incident.incident_id, *where) == 0
    out = capsys.readouterr().out
    assert "is now open" in out and "  pagerduty: reopen sent" in out
    assert pagerduty.pagerduty[incident.incident_id].status == "triggered"
    assert accesswatch("ack", incident.incident_id, *where) == 0
    assert "is now acknowledged" in capsys.readouterr().out
    with SqliteStore(data / "accesswatch.db") as store:
        assert [a.kind.value for a in store.actions(incident.incident_id)] == ["resolve", "reopen", "acknowledge"]
    kinds = [PageKind.TRIGGER, PageKind.RESOLVE, PageKind.REOPEN, PageKind.ACKNOWLEDGE]
    assert [row.kind for row in outbox(data, **told)] == kinds
    assert accesswatch("resolve", incident.incident_id, "--false-positive", "--note", "a drill", *where) == 0
    assert "is now false positive" in capsys.readouterr().out  # not "false_positive"


def exfiltration() -> list[bytes]:
    """The team's routine, then one agent exports 8,000 passport records from an external address in an hour."""
    parts = [history(agent, days=14, per_hour=3, records=2) for agent in TEAM]
    parts.append(
        burst(
            TEAM[0],
            local(14, 10),
            40,
            records=200,
            within=timedelta(minutes=40),
            fields=PASSPORT_FIELDS,
            action="export",
            source_ip="198.51.100.77",
        )
    )
    merged = sorted(itertools.chain.from_iterable(parts), key=lambda data: data["timestamp"])
    return [orjson.dumps({**data, "event_id": f"e{n:07d}"}) for n, data in enumerate(merged)]


def test_the_page_quotes_every_detector_of_the_incident_not_only_the_first_processed(
    tmp_path, config, pagerduty, capsys
):
    """Several detectors find one episode in one batch: only the first pages, so the page must quote the others."""
    events = tmp_path / "exfiltration.jsonl"
    events.write_bytes(b"\n".join(exfiltration()) + b"\n")
    data = tmp_path / "data"
    assert accesswatch("replay", str(events), "--data-dir", str(data), "--config", str(config), "--page") == 0
    (incident,) = [i for i in incidents(data) if len(i.detectors) > 1]
    assert {"egress", "new_access", "sensitive_access"} <= set(incident.detectors)
    (trigger,) = [e for e in pagerduty.events("trigger") if e["dedup_key"] == incident.incident_id]
    about = trigger["payload"]["custom_details"]
    headline, findings = about["detector"], about["page"]["findings"]
    others = [d for d in incident.detectors if d != headline]
    assert sorted(line.split(",")[0] for line in findings) == sorted(others)
    told = [about["summary"], *findings]
    assert "8,000 records" in next(line for line in told if "exported" in line)
    assert any("198.51.100.77" in line for line in told)
    (line,) = [orjson.loads(line) for line in (data / "pages.jsonl").read_bytes().splitlines()]
    assert line["page"]["findings"] == findings


def test_pages_deliver_keeps_the_rest_pagerduty_asked_for(tmp_path, events, config, pagerduty, capsys, monkeypatch):
    """Before, a second process knew nothing of the Retry-After the first was given, and sent inside it."""
    monkeypatch.setenv("ACCESSWATCH_NOTIFY__DELIVERY__DRAIN_ON_EXIT", "0s")
    data = tmp_path / "data"
    where = ("--data-dir", str(data), "--config", str(config))
    pagerduty.fail_next(1, 429, retry_after="3600")
    accesswatch("replay", str(events), *where, "--page")
    capsys.readouterr()
    assert accesswatch("pages", *where, "--deliver", "--status", "pending") == 0
    out = capsys.readouterr().out
    assert "delivered: 0 sent" in out and len(pagerduty.received) == 1
    (rests,) = [line for line in out.splitlines() if line.startswith("pagerduty rests until ")]
    assert " +08:00, as it asked (Retry-After): HTTP 429 from " in rests  # the organisation's zone, as the table
    until = rests.split(" until ")[1][:26]
    lines = [line for line in out.splitlines() if " pagerduty " in line]
    assert len(lines) == 2 and all(f"  {until} " in line for line in lines), lines


def test_pages_shows_a_failed_page_was_sent_again_as_its_incident_is_now(
    tmp_path, events, config, pagerduty, capsys, monkeypatch
):
    monkeypatch.setenv("ACCESSWATCH_NOTIFY__DELIVERY__DRAIN_ON_EXIT", "0s")
    data = tmp_path / "data"
    where = ("--data-dir", str(data), "--config", str(config))
    pagerduty.fail_next(100, 400)  # refused: every trigger fails for good
    accesswatch("replay", str(events), *where, "--page")
    incident = next(i for i in incidents(data) if i.severity.rank >= 1)
    assert accesswatch("ack", incident.incident_id, *where, "--by", "carol") == 0
    pagerduty.heal()
    assert accesswatch("pages", *where, "--retry-failed", "--incident", incident.incident_id) == 0
    capsys.readouterr()
    assert accesswatch("pages", *where, "--incident", incident.incident_id, "--status", "sent") == 0
    (trigger,) = [
        line for line in capsys.readouterr().out.splitlines() if " pagerduty " in line and " trigger " in line
    ]
    severity = incident.severity.value
    assert f": acknowledged, {severity} by carol (planned: open, {severity}); earlier attempt: HTTP 400" in trigger
    assert accesswatch("pages", *where, "--incident", incident.incident_id, "--format", "jsonl") == 0
    records = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    (sent,) = [record for record in records if (record["receiver"], record["kind"]) == ("pagerduty", "trigger")]
    assert sent["refreshed"]["planned_status"] == "open" and sent["refreshed"]["acknowledged"]["by"] == "carol"
    assert pagerduty.events("trigger")[0]["payload"]["custom_details"]["page"]["incident_status"] == "acknowledged"


MONTH_END = "month-end-close-2026-10"


def month_end_close(undocumented_after: bool = False) -> list[bytes]:
    """The team's routine, then one agent exports 8,000 records in an hour, every access citing the month-end close;
    ``undocumented_after``: in the next hour, 1,200 more without a purpose."""
    parts = [history(agent, days=14, per_hour=3, records=2) for agent in TEAM]
    parts.append(burst(TEAM[0], local(14, 10), 40, records=200, within=timedelta(minutes=40), action="export"))
    for access in parts[-1]:
        access["purpose"] = MONTH_END
    if undocumented_after:
        parts.append(burst(TEAM[0], local(14, 11), 3, records=400, within=timedelta(minutes=40), action="export"))
    merged = sorted(itertools.chain.from_iterable(parts), key=lambda data: data["timestamp"])
    return [orjson.dumps({**data, "event_id": f"e{n:07d}"}) for n, data in enumerate(merged)]


def test_a_documented_month_end_close_waits_in_the_queue_and_pages_nobody(
    tmp_path, config, pagerduty, capsys, monkeypatch
):
    """Tester T17: capped at medium, which is notify.min_severity, a documented month-end close paged on-call."""
    events = tmp_path / "month-end.jsonl"
    events.write_bytes(b"\n".join(month_end_close()) + b"\n")
    data = tmp_path / "data"
    assert accesswatch("replay", str(events), "--data-dir", str(data), "--config", str(config), "--page") == 0
    (incident,) = incidents(data)
    assert (
        incident.documented and incident.severity.value == "medium" and {"bulk_read", "egress"} <= {*incident.detectors}
    )
    assert outbox(data) == [] and pagerduty.received == []
    monkeypatch.setenv("ACCESSWATCH_NOTIFY__PAGE_DOCUMENTED", "true")  # as before: it pages, and says it is documented
    again = tmp_path / "paged"
    assert accesswatch("replay", str(events), "--data-dir", str(again), "--config", str(config), "--page") == 0
    (trigger,) = pagerduty.events("trigger")
    assert f"emp-0001 (customer service; documented: {MONTH_END}) accessed " in trigger["payload"]["summary"]


def test_undocumented_accesses_joining_a_documented_job_page_it_at_the_same_severity(
    tmp_path, config, pagerduty, capsys
):
    """The same job, then 1,200 records exported without a purpose: its alerts grow, still medium, no longer
    documented alone; nothing rose, and it pages all the same."""
    medium_only = "\n".join(  # every finding medium, so that only the lost documentation can page it
        f"[detectors.{name}]\nseverity_scores = [3.0, 1000.0, 2000.0]" for name in ("bulk_read", "egress")
    )
    config.write_text(config.read_text() + medium_only + "\n")
    events = tmp_path / "month-end.jsonl"
    events.write_bytes(b"\n".join(month_end_close(undocumented_after=True)) + b"\n")
    data = tmp_path / "data"
    assert accesswatch("replay", str(events), "--data-dir", str(data), "--config", str(config), "--page") == 0
    (incident,) = incidents(data)
    assert not incident.documented and incident.severity.value == "medium"
    (trigger,) = pagerduty.events("trigger")
    assert trigger["dedup_key"] == incident.incident_id and "documented" not in trigger["payload"]["summary"]
