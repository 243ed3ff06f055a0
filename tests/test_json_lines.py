"""JSON Lines output that no reader splits: ``models.json_lines``, and the commands that print it."""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest

from models.json_lines import json_line
from store.sqlite import SqliteStore
from tests import factories as f

ODD = "emp-\u2028odd\u0085one\u2029"  # valid in an event: the schema limits only the length


@pytest.mark.parametrize("value", [{"actor_id": ODD}, ["\u2028"], "plain", {"nested": {"x": "a\u0085b"}}, 7])
def test_a_json_line_is_one_line_to_every_splitter_and_reads_back_the_same(value):
    line = json_line(value)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    text = line.decode()
    assert len(text.splitlines()) == 1
    assert orjson.loads(line) == value


def test_alerts_as_json_lines_survive_an_actor_id_with_unicode_line_breaks(tmp_path, settings):
    data = tmp_path / "data"
    alert = f.alert(actor_id=ODD)
    with SqliteStore(data / settings.store.sqlite.filename) as store:
        store.upsert_alerts([alert, f.alert(window_start=f.at(hours=3), window_end=f.at(hours=4))])
    done = subprocess.run(
        [sys.executable, "-m", "accesswatch.cli", "alerts", "--format", "jsonl", "--data-dir", str(data)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    records = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert len(records) == 2 and records[0]["actor_id"] == ODD
