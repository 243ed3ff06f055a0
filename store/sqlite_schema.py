"""The SQLite schema, as named migrations applied in order.

A database records the names of the migrations applied to it; opening it
applies the missing ones, each in its own transaction.  Never edit a
migration that has shipped: add another.  Names, not numbers, so that
features developed side by side each add their own without colliding.

Why the events table looks like this: the idempotency key is a 64-bit hash
of the event id (an integer index is far cheaper to maintain than one on
random text ids; since migration 0007 the keys are kept in two levels of
their own, ``store.event_keys``, and since 0011 a key outlives its event's
purge), the body is the event exactly as it arrived, and the columns beside
it are what the auditors' queries filter on.  Data classes,
which an event has a few of, have postings of their own (``store.class_postings``,
since migration 0009; a (class, ts, seq) table before).

An actor's events are indexed by (day, actor, time) since migration 0008
(``store.actor_days``): keyed by actor first, every batch wrote into the
index once per active actor.

Customer ids are indexed in an inverted index of our own, written in
segments (``store.customer_postings``, since migration 0006; a contentless
FTS5 table before): an event touches several customers, with random ids, and
B-tree rows per id would cost several times more (about 145,000 ids/s here).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from store.chain_audit import chain_existing_rows
from store.chain_incidents import chain_existing_incidents
from store.dash_served import count_served_records_only

# a migration is SQL, or (one that needs Python) a function run in its transaction on the store's connection
Migration = tuple[str, str | Callable[[sqlite3.Connection], None]]

MIGRATIONS: list[Migration] = [
    (
        "0001-foundation",
        """
    CREATE TABLE events (
        seq            INTEGER PRIMARY KEY,
        id_key         INTEGER,          -- 64-bit hash of event_id; NULL for the rare hash collision
        event_id       TEXT    NOT NULL,
        ts             INTEGER NOT NULL, -- event time, microseconds since the epoch, UTC
        actor_id       TEXT    NOT NULL,
        actor_kind     TEXT    NOT NULL,
        action         TEXT    NOT NULL,
        outcome        TEXT    NOT NULL,
        system         TEXT    NOT NULL,
        resource_type  TEXT    NOT NULL,
        resource_id    TEXT,
        record_count   INTEGER NOT NULL,
        classes        TEXT    NOT NULL, -- comma-separated data classes, as classified at ingest
        source_ip      TEXT,
        body           TEXT    NOT NULL  -- the event as it arrived (validated JSON, so UTF-8)
    );
    CREATE UNIQUE INDEX events_id_key ON events(id_key);
    CREATE INDEX events_collided ON events(event_id) WHERE id_key IS NULL;
    CREATE INDEX events_actor_ts ON events(actor_id, ts);
    CREATE INDEX events_ts ON events(ts);

    -- rowid = events.seq; one token per customer id (see customer_token)
    CREATE VIRTUAL TABLE event_customers USING fts5(tokens, content='', detail=none);

    CREATE TABLE event_classes (
        class TEXT    NOT NULL,
        ts    INTEGER NOT NULL,
        seq   INTEGER NOT NULL,
        PRIMARY KEY (class, ts, seq)
    ) WITHOUT ROWID;

    CREATE TABLE dead_letters (
        id          INTEGER PRIMARY KEY,
        digest      BLOB    NOT NULL UNIQUE, -- of source, position and bytes: a replayed bad line is kept once
        received_at TEXT    NOT NULL,
        source      TEXT    NOT NULL,
        position    TEXT    NOT NULL,
        reason      TEXT    NOT NULL,
        raw         BLOB    NOT NULL,
        raw_size    INTEGER NOT NULL
    );

    CREATE TABLE alerts (
        alert_id      TEXT PRIMARY KEY,
        detector      TEXT    NOT NULL,
        severity_rank INTEGER NOT NULL,
        actor_id      TEXT    NOT NULL,
        status        TEXT    NOT NULL,
        window_start  TEXT    NOT NULL, -- RFC 3339 UTC: sorts as time
        window_end    TEXT    NOT NULL,
        body          TEXT    NOT NULL  -- the alert record (JSON)
    );
    CREATE INDEX alerts_start ON alerts(window_start, alert_id);
    CREATE INDEX alerts_status ON alerts(status, severity_rank, window_start);
    CREATE INDEX alerts_actor ON alerts(actor_id, window_start);

    CREATE TABLE checkpoints (
        name     TEXT PRIMARY KEY,
        seq      INTEGER NOT NULL,
        state    BLOB    NOT NULL,
        saved_at TEXT    NOT NULL
    );

    CREATE TABLE incidents (
        incident_id   TEXT PRIMARY KEY,
        actor_id      TEXT    NOT NULL,
        status        TEXT    NOT NULL,
        severity_rank INTEGER NOT NULL,
        risk_score    REAL    NOT NULL,
        window_start  TEXT    NOT NULL,
        window_end    TEXT    NOT NULL,
        body          TEXT    NOT NULL  -- the incident (JSON)
    );
    CREATE INDEX incidents_actor ON incidents(actor_id, window_end);
    CREATE INDEX incidents_queue ON incidents(status, severity_rank, window_start);
    CREATE INDEX incidents_start ON incidents(window_start);

    CREATE TABLE triage_actions (
        id          INTEGER PRIMARY KEY,
        incident_id TEXT NOT NULL,
        at          TEXT NOT NULL,
        body        TEXT NOT NULL  -- the action (JSON); rows are only ever added
    );
    CREATE INDEX triage_actions_incident ON triage_actions(incident_id, id);
    """,
    ),
    (
        # The dashboard (issue 6; store.sqlite_dashboard): roll-ups folded
        # from the events past a remembered position, so the pages read a few
        # thousand rows where the events are millions; and the audit of the
        # people who read customer data through the dashboard.
        "0002-dashboard",
        """
    CREATE TABLE dash_fold (
        name TEXT PRIMARY KEY,
        seq  INTEGER NOT NULL        -- events up to this seq are in the roll-ups
    );
    CREATE TABLE dash_actor_hours (
        actor_id TEXT    NOT NULL,
        hour     INTEGER NOT NULL,   -- UTC hours since the epoch
        events   INTEGER NOT NULL,
        records  INTEGER NOT NULL,
        egress   INTEGER NOT NULL,
        denied   INTEGER NOT NULL,
        PRIMARY KEY (actor_id, hour)
    ) WITHOUT ROWID;
    CREATE TABLE dash_hours (
        hour    INTEGER PRIMARY KEY,
        events  INTEGER NOT NULL,
        records INTEGER NOT NULL,
        egress  INTEGER NOT NULL,
        denied  INTEGER NOT NULL
    );
    CREATE TABLE dash_class_hours (
        hour    INTEGER NOT NULL,
        class   TEXT    NOT NULL,
        events  INTEGER NOT NULL,
        records INTEGER NOT NULL,
        PRIMARY KEY (hour, class)
    ) WITHOUT ROWID;
    -- per actor and UTC day: data classes, resources (system/type) and actions touched
    CREATE TABLE dash_usage (
        actor_id TEXT    NOT NULL,
        facet    TEXT    NOT NULL,   -- class | resource | action
        value    TEXT    NOT NULL,
        day      INTEGER NOT NULL,   -- UTC days since the epoch
        events   INTEGER NOT NULL,
        records  INTEGER NOT NULL,
        PRIMARY KEY (actor_id, facet, value, day)
    ) WITHOUT ROWID;
    CREATE TABLE dash_actors (
        actor_id     TEXT PRIMARY KEY,
        kind         TEXT NOT NULL,
        name         TEXT,
        role         TEXT,
        department   TEXT,
        organization TEXT,
        first_ts     INTEGER NOT NULL,
        last_ts      INTEGER NOT NULL
    );
    CREATE INDEX dash_actors_peers ON dash_actors(kind, role, organization);
    -- wall-clock samples of the event count: the ingestion rate
    CREATE TABLE dash_ingest_marks (
        at     TEXT PRIMARY KEY,
        events INTEGER NOT NULL
    );

    -- when the product first knew of an incident: the 48-hour deadline runs from here
    CREATE TABLE dash_incident_raised (
        incident_id TEXT PRIMARY KEY,
        raised_at   TEXT NOT NULL
    );
    CREATE INDEX dash_incident_raised_at ON dash_incident_raised(raised_at);
    INSERT INTO dash_incident_raised SELECT incident_id, strftime('%Y-%m-%dT%H:%M:%fZ', 'now') FROM incidents;
    CREATE TRIGGER dash_incident_raised_on_insert AFTER INSERT ON incidents BEGIN
        INSERT OR IGNORE INTO dash_incident_raised VALUES (new.incident_id, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
    END;
    -- the queue sorts every open incident by severity, then time
    CREATE INDEX incidents_severity ON incidents(severity_rank, window_start);
    CREATE INDEX triage_actions_at ON triage_actions(at);

    CREATE TABLE data_accesses (
        id          INTEGER PRIMARY KEY,
        at          TEXT NOT NULL,
        by_user     TEXT NOT NULL,
        kind        TEXT NOT NULL,
        incident_id TEXT,
        body        TEXT NOT NULL   -- the access (JSON); rows are only ever added
    );
    CREATE INDEX data_accesses_at ON data_accesses(at);
    CREATE INDEX data_accesses_by ON data_accesses(by_user, at);
    """,
    ),
    (
        # Paging (issue 5; store.sqlite_outbox): every page waits here until a
        # receiver has it.  ``id`` is the planning order: one receiver's pages
        # about one incident go out in it.
        "0003-paging-outbox",
        """
    CREATE TABLE outbox (
        id              INTEGER PRIMARY KEY,
        notification_id TEXT    NOT NULL UNIQUE, -- derived from the page: planning it again adds nothing
        receiver        TEXT    NOT NULL,
        dedup_key       TEXT    NOT NULL,        -- the incident id
        kind            TEXT    NOT NULL,        -- trigger | update | acknowledge | resolve
        incident_id     TEXT    NOT NULL,
        actor_id        TEXT    NOT NULL,
        conditional     INTEGER NOT NULL,        -- 1: an escalation, sent only if still unacknowledged
        status          TEXT    NOT NULL,        -- pending | sent | failed | suppressed | cancelled
        attempts        INTEGER NOT NULL,
        created_at      TEXT    NOT NULL,        -- RFC 3339 UTC, wall-clock: sorts as time
        due_at          TEXT    NOT NULL,
        leased_until    TEXT,                    -- taken for delivery until then
        settled_at      TEXT,
        last_error      TEXT,
        body            TEXT    NOT NULL         -- the notification as planned (JSON)
    );
    CREATE INDEX outbox_due ON outbox(due_at, id) WHERE status = 'pending';
    CREATE INDEX outbox_line ON outbox(receiver, dedup_key, id);
    CREATE INDEX outbox_incident ON outbox(incident_id, id);
    CREATE INDEX outbox_actor ON outbox(actor_id, created_at);
    CREATE INDEX outbox_created ON outbox(created_at, id);
    """,
    ),
    (
        # Tamper evidence (issue 7; store.chain): one entry per write transaction that stored
        # events, each digest covering the one before.  ``leaves`` lists the entry's events
        # (event time, SHA-256 of the stored row, event id), dropped once retention purged them all.
        "0004-event-chain",
        """
    CREATE TABLE chain (
        n             INTEGER PRIMARY KEY,  -- entry number, from 1, no gaps
        kind          TEXT    NOT NULL,     -- events | purge
        first_seq     INTEGER NOT NULL,     -- events: the seqs it stored; purge: the seqs it deleted
        last_seq      INTEGER NOT NULL,
        events        INTEGER NOT NULL,     -- how many it stored (or deleted)
        min_ts        INTEGER,              -- event time span of its events, µs
        max_ts        INTEGER,              -- purge: the horizon (events stamped before it were deleted)
        written_at    TEXT    NOT NULL,     -- wall-clock, RFC 3339 UTC
        leaves        BLOB,                 -- per event: ts, leaf hash, event id; NULL once all are purged
        leaves_digest BLOB    NOT NULL,     -- SHA-256 of leaves as written
        prev          BLOB    NOT NULL,     -- the digest of entry n - 1 (32 zero bytes for the first)
        digest        BLOB    NOT NULL      -- SHA-256 of prev, the header and leaves_digest
    );
    CREATE INDEX chain_written ON chain(written_at);
    """,
    ),
    (
        # Customer tokens become the id's UTF-8 in hex (store.sqlite.customer_token), cheaper to make
        # than the two checksums before.  A contentless index cannot be told which old tokens a row
        # had without them: empty it and index every stored body again (customer_tokens_of_body is
        # registered on the store's connections; its JSON reading is retention's, which deletes rows).
        "0005-customer-tokens-hex",
        """
    INSERT INTO event_customers (event_customers) VALUES ('delete-all');
    INSERT INTO event_customers (rowid, tokens)
        SELECT seq, tokens FROM (SELECT seq, customer_tokens_of_body(body) AS tokens FROM events) WHERE tokens != '';
    """,
    ),
    (
        # Customer ids move from FTS5 to postings written in segments (store.customer_postings): a
        # third of the store writer's time per event went into the FTS5 table.  Built from the stored
        # bodies, a segment per 10,000 seqs (the ids the query re-checks: JSON text in customer_ids).
        "0006-customer-postings",
        """
    CREATE TABLE customer_postings (
        id        INTEGER PRIMARY KEY,
        bucket    INTEGER NOT NULL,  -- customer_hash(id) % BUCKETS
        first_seq INTEGER NOT NULL,  -- the events it covers (offsets in postings count from first_seq)
        last_seq  INTEGER NOT NULL,
        merged    INTEGER NOT NULL,  -- 0: a small write's, merged with the next ones once they span enough
        postings  BLOB    NOT NULL   -- (hash u32, offset u32) little-endian pairs, sorted
    );
    CREATE INDEX customer_postings_bucket ON customer_postings(bucket, first_seq);
    CREATE INDEX customer_postings_pending ON customer_postings(first_seq) WHERE merged = 0;
    INSERT INTO customer_postings (bucket, first_seq, last_seq, merged, postings)
        SELECT customer_bucket(j.value), min(e.seq), max(e.seq), 1, customer_postings_of(j.value, e.seq)
        FROM events e, json_each(e.body, '$.customer_ids') j
        WHERE j.type = 'text'
        GROUP BY e.seq / 10000, customer_bucket(j.value);
    DROP TABLE event_customers;
    """,
    ),
    (
        # Idempotency keys move out of the unique index on events into two levels of their own
        # (store.event_keys): random keys made each batch write into every page of that index, a cost
        # that grew with the store.  Each key keeps the seq of its event.
        "0007-event-keys",
        """
    CREATE TABLE event_keys (id_key INTEGER PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;
    CREATE TABLE event_keys_recent (id_key INTEGER PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;
    INSERT INTO event_keys (id_key, seq) SELECT id_key, seq FROM events WHERE id_key IS NOT NULL ORDER BY id_key;
    DROP INDEX events_id_key;
    """,
    ),
    (
        # The actor index gets a leading day (UTC days since the epoch, the expression ``store.actor_days``
        # queries by).  Keyed (actor, time), each batch wrote a leaf of it per active actor: about 1,400
        # pages of 16 KiB a 10,000-event batch with 1,400 employees, a third of all the log a replay
        # writes, and more with every actor.  Keyed (day, actor, time), a batch writes into its day's
        # part only.  An actor's events are found day by day, in time order (``actor_days``).
        "0008-actor-day-index",
        """
    CREATE INDEX events_actor_day ON events(ts / 86400000000, actor_id, ts);
    DROP INDEX events_actor_ts;
    """,
    ),
    (
        # Data classes move from a B-tree row per (event, class) to postings written in segments
        # (store.class_postings): 2.57 rows an event cost about a seventh of the store's write.  Built
        # from the rows of event_classes, a row per class and 10,000 seqs.
        "0009-class-postings",
        """
    CREATE TABLE class_postings (
        id        INTEGER PRIMARY KEY,
        class     TEXT    NOT NULL,
        first_seq INTEGER NOT NULL,  -- the events it covers (offsets in postings count from first_seq)
        last_seq  INTEGER NOT NULL,
        min_ts    INTEGER NOT NULL,  -- the event times it holds: a search by time reads only the rows it meets
        max_ts    INTEGER NOT NULL,
        merged    INTEGER NOT NULL,  -- 0: a small write's, merged with the next ones once they span enough
        postings  BLOB    NOT NULL   -- the times (i64), then the offsets (u32), little-endian, by time then seq
    );
    CREATE INDEX class_postings_class ON class_postings(class, max_ts);
    CREATE INDEX class_postings_pending ON class_postings(first_seq) WHERE merged = 0;
    INSERT INTO class_postings (class, first_seq, last_seq, min_ts, max_ts, merged, postings)
        SELECT class, min(seq), max(seq), min(ts), max(ts), 1, class_postings_of(ts, seq)
        FROM event_classes
        GROUP BY class, seq / 10000;
    DROP TABLE event_classes;
    """,
    ),
    (
        # The alerts' upsert kept the first revision's window_start: an alert grown to an earlier start (an
        # hour's finding merged into its day) was listed, and searched by time, at its first hour.  The
        # column is made again from the body, which always had the latest revision's start ("...SS.mmmZ";
        # the column is written with microseconds, ``sqlite._utc_text``).
        "0010-alerts-window-start",
        """
    UPDATE alerts SET window_start = strftime('%Y-%m-%dT%H:%M:%f000Z', json_extract(body, '$.window_start'))
        WHERE window_start != strftime('%Y-%m-%dT%H:%M:%f000Z', json_extract(body, '$.window_start'));
    """,
    ),
    (
        # Retention keeps the idempotency keys of the events it deletes, marked with a second hash of the id
        # (store.event_keys): a replay of the original log stored the purged events again.  Keys deleted by
        # purges before this migration are gone: those events are still stored again by a replay.
        "0011-purged-keys",
        """
    ALTER TABLE event_keys ADD COLUMN purged_check INTEGER;         -- NULL while the event is stored
    ALTER TABLE event_keys_recent ADD COLUMN purged_check INTEGER;
    """,
    ),
    (
        # A receiver's rest after a failure (store.sqlite_outbox): it was kept by the delivering process
        # alone, so another one (pages --deliver, ack, while run was running) sent inside a Retry-After.
        "0012-receiver-rests",
        """
    CREATE TABLE receiver_rests (
        receiver    TEXT PRIMARY KEY,
        until       TEXT    NOT NULL,   -- RFC 3339 UTC, wall-clock: no page of it is taken before
        asked_until TEXT,               -- what it asked itself (Retry-After)
        failures    INTEGER NOT NULL,   -- in a row
        error       TEXT    NOT NULL,
        at          TEXT    NOT NULL
    );
    """,
    ),
    (
        # The queue's "newest" is when an incident's flagged activity ended (``Incident.newest_flagged``), not its
        # window's start: a day's finding widens the window to the whole local day, and an incident flagged at
        # 16:00 listed below one flagged at 09:00.  The stored incidents get theirs from their stored alerts'
        # spans, as the pages show them (``with_flagged_end`` and ``newest_flagged``, registered by ``SqliteStore``).
        "0013-incidents-flagged-end",
        """
    ALTER TABLE incidents ADD COLUMN flagged_end TEXT;
    UPDATE incidents SET body = with_flagged_end(body, (
        SELECT json_group_array(json(alerts.body)) FROM alerts
        WHERE alerts.alert_id IN (SELECT value FROM json_each(incidents.body, '$.alert_ids'))
    ));
    UPDATE incidents SET flagged_end = newest_flagged(body);
    DROP INDEX incidents_severity;
    CREATE INDEX incidents_severity_flagged ON incidents(severity_rank, flagged_end);
    CREATE INDEX incidents_flagged ON incidents(flagged_end);
    """,
    ),
    (
        # The sensitive-data trend split by actor kind (employees, partners' agents, service accounts): "how much
        # did partners read this month" was not in the class roll-up.  It is made again from the events folded so
        # far, a group per hour, kind and set of classes, each set split at its commas; what events retention
        # purged (180 days by default, past the Compliance page's 90) leave with the old table.
        "0014-dash-class-kind-hours",
        """
    CREATE TABLE dash_class_kind_hours (
        hour       INTEGER NOT NULL,   -- UTC hours since the epoch
        class      TEXT    NOT NULL,
        actor_kind TEXT    NOT NULL,
        events     INTEGER NOT NULL,
        records    INTEGER NOT NULL,
        PRIMARY KEY (hour, class, actor_kind)
    ) WITHOUT ROWID;
    INSERT INTO dash_class_kind_hours
    WITH RECURSIVE split(hour, actor_kind, events, records, rest, class) AS (
        SELECT ts / 3600000000, actor_kind, count(*), sum(record_count), classes || ',', '' FROM events
            WHERE seq <= coalesce((SELECT seq FROM dash_fold WHERE name = 'events'), 0) GROUP BY 1, 2, classes
        UNION ALL
        SELECT hour, actor_kind, events, records,
            substr(rest, instr(rest, ',') + 1), substr(rest, 1, instr(rest, ',') - 1) FROM split WHERE rest != ''
    )
    SELECT hour, class, actor_kind, sum(events), sum(records) FROM split WHERE class != '' GROUP BY 1, 2, 3;
    DROP TABLE dash_class_hours;
    """,
    ),
    (
        # The dashboard's audit log joins the chain (store.chain_audit): data_accesses and triage_actions rows
        # were not chained, so a row deleted there went unseen by verify.  The chain table is as it was (its
        # kind takes the tables' names); the rows stored before are chained once, one entry a table, as they
        # are now: a change made before this runs is not seen.
        "0015-audit-chain",
        chain_existing_rows,
    ),
    (
        # Each incident's creation and each rise of its severity join the chain (store.chain_incidents): an incident
        # no one had triaged yet could be deleted, or lowered in severity, unseen by verify.  The incidents stored
        # before are recorded once, in one entry, as created at their severity now: a change made before is not seen.
        "0016-incident-chain",
        chain_existing_incidents,
    ),
    (
        # The dashboard's roll-ups count the records of served accesses only, as the detectors do: a refused or
        # failed access's records were counted as read (and a refused export's as exported), in the charts and the
        # breach report's hourly figures.  The stored events' are taken out of what was folded; the purged ones'
        # cannot be, and the hours before the latest purge's horizon are marked (store.dash_served).
        "0017-dash-served-records",
        count_served_records_only,
    ),
]
