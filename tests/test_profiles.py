"""Learned baselines: the busiest hour of an actor's days, as the volume rules compare with it."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import orjson
import pytest

from detectors.profiles import (
    DAY_FLOOR_SDS,
    METRICS,
    SLOT_METRICS,
    SPARSE_METRICS,
    DecayedQuantiles,
    EwStat,
    ProfileBook,
    Rhythm,
    _add_all,
    metric_values,
    window_logs,
)
from detectors.state_codec import decode_state, encode_state
from detectors.windows import ActorRef, WindowStats
from models.event import ActorKind

HOUR, DAY = 3600.0, 86400.0


def test_quantiles_are_read_to_within_a_factor_of_the_square_root_of_two():
    days = DecayedQuantiles()
    for value in [3] * 2 + [150] * 8:  # quiet on two days in ten, a burst of 150 on the others
        days.add(value, 1.0)
    assert 150 <= days.quantile(0.5) <= 150 * math.sqrt(2) + 1
    assert 3 <= days.quantile(0.1) <= 3 * math.sqrt(2) + 1
    assert days.weight(1.0) == 10


def test_what_was_seen_long_ago_weighs_less_than_what_was_seen_lately():
    days = DecayedQuantiles()
    for _ in range(5):
        days.add(1000, 1.0)  # five old days of large bursts
    for _ in range(4):
        days.add(10, 8.0)  # four recent quiet days, three half-lives later
    assert days.quantile(0.5) < 20


def test_the_state_survives_the_checkpoint_encoding():
    days = DecayedQuantiles()
    for value in (0, 1, 7, 7, 500):
        days.add(value, 2.0)
    restored = DecayedQuantiles.from_state(decode_state(encode_state({"q": days.to_state()}))["q"])
    assert restored.weights == days.weights and restored.quantile(0.5) == days.quantile(0.5)


def _hour(actor: ActorRef, start: float, high: int) -> WindowStats:
    window = WindowStats(actor, start, start + HOUR)
    window.events, window.records, window.high_records = 1, high, high
    window.first_ts, window.last_ts = start, start + 60
    return window


def _day(actor: ActorRef, start: float, hours: list[WindowStats]) -> WindowStats:
    day = WindowStats(actor, start, start + DAY)
    for hour in hours:
        day.merge(hour)
    return day


@pytest.mark.parametrize("busiest", [40, 400])
def test_an_actors_usual_peak_is_its_days_busiest_hour_and_a_peer_groups_is_its_members(busiest):
    book = ProfileBook(["kind", "role"], half_life=14 * DAY, max_known_items=64, actor_warmup_days=1)
    quiet = ActorRef("a-1", ActorKind.PARTNER, role="agent")
    bursty = ActorRef("a-2", ActorKind.PARTNER, role="agent")
    for day in range(6):
        start = day * DAY
        for actor, peak in ((quiet, 5), (bursty, busiest)):
            hours = [_hour(actor, start + 9 * HOUR, 2), _hour(actor, start + 10 * HOUR, peak)]
            for hour in hours:
                book.learn_window(hour, slot=0)
            book.learn_day(_day(actor, start, hours), weekday=day % 7)
    own = book.actors["a-2"].peak_hour["high"].quantile(0.5)
    assert busiest <= own <= busiest * math.sqrt(2) + 1
    assert book.actors["a-1"].peak_hour["high"].quantile(0.5) < 10
    # the group has one quiet and one bursty member: its usual peak is one of theirs, not the busiest of all
    group = book.peers["kind=partner|role=agent"].peak_hour["high"].weights
    members = [book.actors[name].peak_hour["high"].weights for name in ("a-1", "a-2")]
    assert set(group) == set(members[0]) | set(members[1])
    for bucket, weight in group.items():
        assert weight == pytest.approx(sum(m.get(bucket, 0.0) for m in members))


_LEARN_MANY_ADDRESSES = """
import orjson
from detectors.profiles import ProfileBook
from detectors.windows import ActorRef, WindowStats
from models.event import ActorKind

book = ProfileBook(["kind", "role", "organization"], 14 * 86400.0, 4, 5)
window = WindowStats(ActorRef("svc-1", ActorKind.SERVICE, "etl"), 0.0, 3600.0)
window.events, window.first_ts, window.last_ts = 12, 60.0, 120.0
window.ips = {f"203.0.113.{n}" for n in range(12)}
window.resource_kinds = {f"crm/kind-{n}" for n in range(12)}
book.learn_window(window, slot=0)
own = book.actors["svc-1"]
print(orjson.dumps([list(own.resources.items), list(own.ips.items)]).decode())
"""


def test_which_items_an_actor_keeps_knowing_does_not_depend_on_the_process():
    # A window's addresses and resource kinds are sets, iterated in an order seeded per process:
    # learned in that order, a profile over its limit kept different ones in a replay and in the
    # live run (or the detection worker) that saw the same events.
    kept = set()
    for seed in ("0", "1", "2", "3"):
        done = subprocess.run(
            [sys.executable, "-c", _LEARN_MANY_ADDRESSES],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        kept.add(done.stdout.strip())
    assert len(kept) == 1
    resources, ips = orjson.loads(kept.pop())
    assert ips == [f"203.0.113.{n}" for n in sorted(range(12), key=str)][-4:]
    assert resources == sorted(f"crm/kind-{n}" for n in range(12))[-4:]


def _bits(stats: dict[str, EwStat]) -> dict[str, list[str]]:
    """Each stat's sums, to the last bit (``float.hex`` tells 0.0 from -0.0)."""
    return {metric: [value.hex() for value in stat.to_state()] for metric, stat in stats.items()}


@pytest.mark.parametrize("records,egress", [(3, 0), (0, 5), (250, 12)])
def test_a_windows_logs_are_each_metrics_log1p_and_none_for_a_sparse_zero(records, egress):
    window = _hour(ActorRef("a1", ActorKind.EMPLOYEE, "finance", None, None), 0.0, high=0)
    window.records, window.egress_records, window.events = records, egress, 4
    window.customers.update({"c1", "c2"})
    assert window_logs(window) == _logs(metric_values(window))


def _logs(values: dict[str, float]) -> dict[str, float | None]:
    """What ``window_logs`` gives for these figures: each one's log1p, None for a sparse metric's zero."""
    return {
        metric: math.log1p(value) if value > 0 else (None if metric in SPARSE_METRICS else 0.0)
        for metric, value in values.items()
    }


@pytest.mark.parametrize("egress", [None, 0.0, 2.5])
def test_a_weekly_slots_first_window_is_learned_as_if_added_to_empty_stats(egress):
    logs = {"records": 4.25, "customers": 0.0, "egress": egress, "high": None, "denied": None, "events": 1.5}
    rhythm = Rhythm()
    rhythm.add(17, logs, 3.7)
    added = {metric: EwStat() for metric in SLOT_METRICS}
    _add_all(added, logs, 3.7)
    assert _bits(rhythm.volume[17]) == _bits(added)
    rhythm.add(17, logs, 5.1)  # and the next, into them
    _add_all(added, logs, 5.1)
    assert _bits(rhythm.volume[17]) == _bits(added)


def test_a_baseline_is_checkpointed_as_its_three_sums_and_an_unknown_object_is_refused():
    stat = EwStat(2.0, 3.5, -0.0)
    assert decode_state(encode_state({"stat": stat})) == {"stat": [2.0, 3.5, -0.0]}
    with pytest.raises(TypeError, match="a detector state holds no object"):
        encode_state({"stat": object()})


@pytest.mark.parametrize("floor_sds", [0.0, DAY_FLOOR_SDS])
def test_a_days_stats_learn_its_values_as_ewstat_add_does_each(floor_sds):
    # established baselines, values far above and below them (clipped), sparse zeros (skipped), a plain zero
    days = [
        {"records": 40, "customers": 12, "egress": 0, "high": 3, "denied": 0, "events": 9},
        {"records": 60, "customers": 20, "egress": 7, "high": 0, "denied": 1, "events": 14},
        {"records": 5000, "customers": 900, "egress": 4000, "high": 2500, "denied": 300, "events": 800},
        {"records": 0, "customers": 1, "egress": 0, "high": 0, "denied": 0, "events": 1},
    ] * 3
    inline = {metric: EwStat() for metric in METRICS}
    one_by_one = {metric: EwStat() for metric in METRICS}
    for number, values in enumerate(days):
        g = 1.0 + number / 7.0
        _add_all(inline, _logs(values), g, floor_sds)
        for metric, stat in one_by_one.items():
            if values[metric] > 0 or metric not in SPARSE_METRICS:
                stat.add(values[metric], g, floor_sds=floor_sds)
    assert _bits(inline) == _bits(one_by_one)


# -- everyone of their kind (detectors.kind_baseline) ------------------------------------------------------------
@pytest.mark.parametrize(
    "fields, kind",
    [
        (["kind", "role", "organization"], "service"),
        (["role", "kind"], "service"),
        (["role", "organization"], None),  # kinds are not a peer field: no group has one
    ],
)
def test_a_peer_groups_kind_is_read_from_its_key(fields, kind):
    book = ProfileBook(fields, half_life=14 * DAY, max_known_items=64, actor_warmup_days=1)
    key = book.peer_key(ActorRef("svc-1", ActorKind.SERVICE, role="etl"))
    assert book.group_kind(key) == kind
    odd = book.peer_key(ActorRef("svc-2", ActorKind.SERVICE, role="etl|kind=employee"))
    assert book.group_kind(odd) is None  # a value holding the separator: the key cannot be read back


def _kind_book(per_role: dict[tuple[ActorKind, str], list[float]], days: int = 3) -> ProfileBook:
    """Actors ``<role>-<n>`` each reading its records every hour 9-10 for ``days`` days, then a day closed."""
    book = ProfileBook(["kind", "role"], half_life=14 * DAY, max_known_items=64, actor_warmup_days=2)
    for day in range(days):
        start = day * DAY
        for (kind, role), records in per_role.items():
            for n, value in enumerate(records):
                actor = ActorRef(f"{role}-{n}", kind, role=role)
                hours = []
                for hour in (9, 10):
                    window = _hour(actor, start + hour * HOUR, 0)
                    window.records = int(value)
                    book.learn_window(window, slot=0)
                    hours.append(window)
                book.learn_day(_day(actor, start, hours), weekday=day % 7)
    return book


def test_employees_usual_is_their_mature_groups_sums_pooled():
    from detectors.kind_baseline import kind_baseline

    book = _kind_book({(ActorKind.EMPLOYEE, "teller"): [10, 12, 11], (ActorKind.EMPLOYEE, "analyst"): [500]})
    book.learn_window(_hour(ActorRef("new-0", ActorKind.EMPLOYEE, role="trainee"), 5 * DAY, 0), slot=0)  # immature
    book.learn_window(_hour(ActorRef("svc-0", ActorKind.SERVICE, role="etl"), 5 * DAY, 0), slot=0)  # another kind
    g, g_slow = book.weights_at(3 * DAY)
    found = kind_baseline(book, ActorKind.EMPLOYEE, "short", g, g_slow, 0.75)
    assert found is not None and found.basis == "employees"
    groups = [book.peers["kind=employee|role=teller"], book.peers["kind=employee|role=analyst"]]
    for metric in METRICS:
        stats = [group.hourly[metric] for group in groups]
        pooled = found.stats[metric]
        assert (pooled.sw, pooled.swx, pooled.swx2) == pytest.approx(
            (sum(s.sw for s in stats), sum(s.swx for s in stats), sum(s.swx2 for s in stats))
        )
    # three tellers' days to the analyst's one: the upper quartile of their busiest hours is a teller's
    assert 10 <= found.peaks["records"] <= 12 * math.sqrt(2) + 1
    daily = kind_baseline(book, ActorKind.EMPLOYEE, "long", g_slow, g_slow, 0.75)
    assert (
        daily is not None
        and daily.peaks == {}
        and daily.stats["records"].sw == pytest.approx(sum(group.daily["records"].sw for group in groups))
    )
    assert kind_baseline(book, ActorKind.PARTNER, "short", g, g_slow, 0.75) is None  # no partner group at all


def test_a_service_is_judged_against_the_busiest_service_not_the_pool():
    from detectors.kind_baseline import kind_baseline

    book = _kind_book({(ActorKind.SERVICE, "lookup"): [5], (ActorKind.SERVICE, "batch"): [100_000]})
    g, g_slow = book.weights_at(3 * DAY)
    found = kind_baseline(book, ActorKind.SERVICE, "short", g, g_slow, 0.75)
    assert found is not None and found.basis == "busiest service"
    assert found.stats["records"] is book.peers["kind=service|role=batch"].hourly["records"]
    assert math.expm1(found.stats["records"].mean) == pytest.approx(100_000)
    assert found.peaks["records"] >= 100_000
    assert found.stats["egress"].sw == 0.0  # no service exports: a first export is news
