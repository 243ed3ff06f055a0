"""Benchmark: the queue and incident pages over 10 million events and 100,000 alerts.

    .venv/bin/python bench/bench_dashboard.py [--events 10000000] [--alerts 100000] [--dir bench/out/dashboard]

Builds the store once (kept in ``--dir``; ``--rebuild`` starts over) with a
fast synthetic bulk path: event rows written straight into the SQLite tables
the pipeline fills (the customer and data-class index tables the audit search
uses are left empty: the two pages timed here do not read them), and the
alerts and incidents through the store port.  Then it folds the dashboard's
roll-ups, and times what the two pages ask of the store, cold and warm,
printing a table and writing ``dashboard.json`` beside the store.

A benchmark measures speed: run it on a quiet machine, and say how loaded
the machine was when quoting its figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from configs.loader import load_settings
from dashboard import queries
from detectors.incidents import incident_id as make_incident_id
from models.alert import Alert, AlertStatus, Severity
from models.incident import Incident
from store.base import IncidentQuery
from store.sqlite import SqliteStore

START = datetime(2026, 10, 5, tzinfo=UTC)
DAYS = 30
ROLES = ["customer_service", "sales", "store_staff", "data_analyst", "it_support", "marketing", "finance", "hr"]
CLASS_SETS = [
    "identity,contact",
    "identity,transactions",
    "contact,identity,transactions",
    "financial,identity",
    "government_id,identity",
    "identity",
    "contact",
    "",
    "special,identity",
]
RESOURCES = [
    ("crm", "customer_record", "customers"),
    ("booking", "reservation", "reservations"),
    ("billing", "invoice", "invoices"),
    ("pos", "order", "orders"),
    ("data-warehouse", "table", "dw.profile"),
]
ACTIONS = ["read"] * 14 + ["search"] * 4 + ["update", "export", "download"]
DETECTORS = ["bulk_read", "new_access", "off_hours", "sensitive_access", "egress", "denied_burst", "dormant"]
GOLDEN = 0x9E3779B97F4A7C15  # an odd constant: multiplying by it permutes 64-bit keys, so keys stay unique


def actors(employees: int = 1360, partners: int = 40, services: int = 20) -> list[tuple]:
    """(id, kind, role, organization, weight): services read far more than people."""
    found = [(f"emp-{n:04d}", "employee", ROLES[n % len(ROLES)], None, 1.0) for n in range(employees)]
    found += [(f"ptn-{n:03d}", "partner", "booking_agent", f"partner-{n % 5}", 0.8) for n in range(partners)]
    found += [(f"svc-{n:02d}", "service", f"sync-{n % 4}", None, 25.0) for n in range(services)]
    return found


def build_events(store: SqliteStore, total: int, seed: int = 7, after: int = 0, days: float = DAYS) -> None:
    """Event rows in time order, straight into the events table (what ``Store.write`` stores, minus its checks).

    ``after``: the last seq already stored; the new events then follow the month, over ``days``.
    """
    rng = random.Random(seed + after)
    people = actors()
    weights = [a[4] for a in people]
    span = days * 86400
    start_us = int((START + timedelta(days=DAYS if after else 0)).timestamp() * 1_000_000)
    db = store._db
    batch, written, began = [], 0, time.monotonic()
    db.execute("PRAGMA synchronous=OFF")  # a benchmark fixture: durability is not what is measured
    # indexes built once at the end cost a sort, not ten million random inserts
    indexes = (
        []
        if after
        else db.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' AND sql IS NOT NULL"
        ).fetchall()
    )
    for name, _ in indexes:
        db.execute(f"DROP INDEX {name}")
    chunk = 200_000
    while written < total:
        n = min(chunk, total - written)
        picks = rng.choices(people, weights=weights, k=n)
        offsets = sorted(rng.random() * span for _ in range(n))
        first = written * span / total
        batch = []
        for k in range(n):
            seq = after + written + k + 1
            actor_id, kind, role, org, _ = picks[k]
            # time order: each chunk covers its share of the month
            ts = start_us + int((first + offsets[k] * n / total) * 1_000_000)
            system, rtype, rid = RESOURCES[seq % len(RESOURCES)]
            action = ACTIONS[(seq * 7) % len(ACTIONS)]
            records = 1 + (seq * 31) % 40 if action != "export" else 200 + seq % 800
            classes = CLASS_SETS[(seq * 13) % len(CLASS_SETS)]
            outcome = "denied" if seq % 97 == 0 else "success"
            org_json = f',"organization":"{org}"' if org else ""
            body = (
                f'{{"event_id":"b{seq}","timestamp":"{datetime.fromtimestamp(ts / 1e6, UTC).isoformat()}",'
                f'"actor":{{"id":"{actor_id}","kind":"{kind}","role":"{role}"{org_json}}},"action":"{action}",'
                f'"resource":{{"system":"{system}","type":"{rtype}","id":"{rid}"}},"record_count":{records},'
                f'"customer_ids":["c-{seq % 900000:06d}"],"outcome":"{outcome}"}}'
            )
            key = ((seq * GOLDEN) % 2**64) - 2**63
            batch.append(
                (
                    seq,
                    key,
                    f"b{seq}",
                    ts,
                    actor_id,
                    kind,
                    action,
                    outcome,
                    system,
                    rtype,
                    rid,
                    records,
                    classes,
                    "10.0.0.1",
                    body,
                )
            )
        db.execute("BEGIN")
        db.executemany("INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", batch)
        db.execute("COMMIT")
        written += n
        rate = written / (time.monotonic() - began)
        print(f"\r  events {written:>11,} ({rate:,.0f}/s)", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    for _, sql in indexes:
        db.execute(sql)
    db.execute("PRAGMA synchronous=NORMAL")


def build_alerts(store: SqliteStore, total: int, seed: int = 11) -> None:
    """``total`` alerts in incidents of one to four alerts, over the month; a fifth still open."""
    rng = random.Random(seed)
    people = actors()
    made = 0
    while made < total:
        alerts, incidents = [], []
        for _ in range(min(2000, total - made)):
            actor_id, kind, role, org, _ = rng.choice(people)
            start = START + timedelta(hours=rng.randrange(DAYS * 24))
            members = []
            for k in range(min(rng.randint(1, 4), total - made - len(alerts))):
                severity = rng.choices(list(Severity), weights=[60, 25, 11, 4])[0]
                begin = start + timedelta(hours=k)
                members.append(
                    Alert(
                        alert_id=f"aw-{made + len(alerts) + len(members):024d}",
                        detector=rng.choice(DETECTORS),
                        severity=severity,
                        actor_id=actor_id,
                        actor_kind=kind,
                        actor_role=role,
                        actor_organization=org,
                        window_start=begin,
                        window_end=begin + timedelta(hours=1),
                        score=rng.uniform(1, 9),
                        summary=f"{kind.capitalize()} {actor_id} read far more than usual.",
                        evidence={"figure": "records", "value": 900, "baseline": 20.0, "ratio": 45.0, "z": 5.1},
                    )
                )
            if not members:
                break
            iid = make_incident_id(actor_id, members[0])
            strongest = max(members, key=lambda a: a.severity.rank)
            status = (
                AlertStatus.OPEN
                if rng.random() < 0.2
                else rng.choice([AlertStatus.ACKNOWLEDGED, AlertStatus.RESOLVED, AlertStatus.FALSE_POSITIVE])
            )
            for alert in members:
                alert.incident_id = iid
                alert.status = status
            incidents.append(
                Incident(
                    incident_id=iid,
                    actor_id=actor_id,
                    actor_kind=kind,
                    actor_role=role,
                    actor_organization=org,
                    status=status,
                    severity=strongest.severity,
                    risk_score=rng.uniform(10, 100),
                    window_start=members[0].window_start,
                    window_end=members[-1].window_end,
                    alert_ids=[a.alert_id for a in members],
                    detectors=sorted({a.detector for a in members}),
                    summary=strongest.summary,
                    created_at=members[0].window_end,
                    updated_at=members[-1].window_end,
                )
            )
            alerts.extend(members)
            if len(alerts) >= 2000:
                break
        store.upsert_alerts(alerts, incidents)
        made += len(alerts)
        print(f"\r  alerts {made:>9,}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)


def timed(label: str, action, repeat: int) -> dict:
    runs = []
    for _ in range(repeat):
        began = time.perf_counter()
        action()
        runs.append(time.perf_counter() - began)
    return {
        "what": label,
        "first_s": round(runs[0], 4),
        "median_s": round(statistics.median(runs), 4),
        "max_s": round(max(runs), 4),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--alerts", type=int, default=100_000)
    parser.add_argument("--dir", type=Path, default=Path("bench/out/dashboard"))
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    path = args.dir / f"store-{args.events}-{args.alerts}.db"
    settings = load_settings(env={}, overrides={"data_dir": str(args.dir)})
    figures: dict = {"events": args.events, "alerts": args.alerts, "load_before": os.getloadavg()}
    if args.rebuild:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    fresh = not path.exists()
    with SqliteStore(path, cache_mb=settings.store.sqlite.cache_mb) as store:
        if fresh:
            print(f"building {path} ...", file=sys.stderr)
            began = time.monotonic()
            build_events(store, args.events)
            build_alerts(store, args.alerts)
            figures["build_s"] = round(time.monotonic() - began, 1)
            began = time.monotonic()
            store.fold()
            figures["first_fold_s"] = round(time.monotonic() - began, 1)
        # what a dashboard pays to catch up with the next 5,000 events the pipeline stores (a few
        # seconds of live ingestion); each run of the benchmark appends another 5,000
        build_events(store, 5000, after=store._db.execute("SELECT max(seq) FROM events").fetchone()[0], days=0.01)
        began = time.perf_counter()
        store.fold()
        figures["fold_5000_new_events_s"] = round(time.perf_counter() - began, 3)

        stats = store.stats()
        figures["stored_events"], figures["stored_alerts"] = stats.events, stats.alerts
        open_query = IncidentQuery(statuses=queries.OPEN_STATUSES, limit=settings.dashboard.page_size)
        # the heaviest reader with an incident: its timeline and peers are the most work
        heavy = None
        for (busiest,) in store._db.execute(
            "SELECT actor_id FROM dash_actor_hours GROUP BY actor_id ORDER BY sum(events) DESC LIMIT 50"
        ).fetchall():
            found = store.query_incidents(IncidentQuery(actor_id=busiest, limit=1))
            if found:
                heavy = found[0]
                break
        typical = store.query_incidents(open_query)[0]
        crowded = store.query_incidents(IncidentQuery(actor_id="emp-0000", limit=1))  # 170 peers in its role
        results = []

        def queue_page() -> None:
            queries.queue(store, open_query)
            queries.organizations(store)
            store.health()

        def incident_page(incident: Incident):
            def run() -> None:
                view = queries.incident_view(store, settings, incident.incident_id)
                newest = store.health().newest_event
                queries.timeline(store, settings, view.incident, newest)
                queries.incident_events(store, view.incident, settings.dashboard.page_size)
                queries.related_incidents(store, view.incident)

            return run

        results.append(timed("queue page: open incidents, counts per severity, filter values", queue_page, args.repeat))
        results.append(
            timed(
                "queue page filtered: detector=bulk_read, partner",
                lambda: queries.queue(
                    store,
                    IncidentQuery(
                        statuses=queries.OPEN_STATUSES,
                        detector="bulk_read",
                        actor_kind="partner",
                        limit=settings.dashboard.page_size,
                    ),
                ),
                args.repeat,
            )
        )
        results.append(
            timed(
                "queue page 20 (offset 950)",
                lambda: queries.queue(store, open_query.model_copy(update={"offset": 950})),
                args.repeat,
            )
        )
        results.append(timed("incident page: most urgent incident", incident_page(typical), args.repeat))
        results.append(timed(f"incident page: busiest actor ({busiest})", incident_page(heavy), args.repeat))
        if crowded:
            results.append(
                timed("incident page: employee of the largest peer group", incident_page(crowded[0]), args.repeat)
            )
        results.append(
            timed(
                "actor profile: busiest actor",
                lambda: queries.actor_view(store, settings, busiest, store.health().newest_event),
                args.repeat,
            )
        )
        results.append(
            timed(
                "compliance (30 days)",
                lambda: queries.compliance(store, settings, store.health().newest_event, 30, datetime.now(UTC)),
                args.repeat,
            )
        )
    figures["load_after"] = os.getloadavg()
    figures["results"] = results
    width = max(len(r["what"]) for r in results)
    print(f"{'page':<{width}}  first s  median s  max s")
    for r in results:
        print(f"{r['what']:<{width}}  {r['first_s']:>7.3f}  {r['median_s']:>8.3f}  {r['max_s']:>5.3f}")
    for key in ("build_s", "first_fold_s", "fold_5000_new_events_s", "load_before", "load_after"):
        if key in figures:
            print(f"{key}: {figures[key]}")
    (args.dir / "dashboard.json").write_text(json.dumps(figures, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
