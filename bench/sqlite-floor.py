#!/usr/bin/env python3
"""How fast SQLite on this disk can store single events at all, whatever the schema.

Commits N events per transaction (WAL, synchronous=FULL, 64 MiB page cache), sessions rotating
over 1,000 as in the bench's `single` scenario, for a few seconds, in one of two layouts:

  minimal  the least any schema could write per event: one WITHOUT ROWID B-tree keyed by an
           integer session key and seq, a short JSON body, nothing else (no dedup key, no type
           index, no session row, no notification)
  events   the service's events table with its indexes (not the session row nor the
           notification the service writes with each event)
  keyed    the same table and indexes with an integer session key in place of the
           (scope, session_id) text pair: what integer session keys would save on event rows

Usage: python3 bench/sqlite-floor.py [EVENTS_PER_COMMIT] [SECONDS] [DIR]   (256, 6, /tmp)
"""
import json
import os
import sqlite3
import sys
import time

EVENTS_TABLE = """CREATE TABLE events (
    scope TEXT NOT NULL, session_id TEXT NOT NULL, seq BIGINT NOT NULL, event_id TEXT,
    dedup_key TEXT NOT NULL, event_type TEXT NOT NULL, occurred_at_us BIGINT NOT NULL,
    received_at BIGINT NOT NULL, interaction_id TEXT, sequence BIGINT,
    out_of_order BOOLEAN NOT NULL, data TEXT NOT NULL, PRIMARY KEY (scope, session_id, seq))"""
EVENTS_INDEXES = [
    "CREATE UNIQUE INDEX events_dedup ON events (scope, session_id, dedup_key)",
    "CREATE INDEX events_by_type ON events (scope, session_id, event_type, seq)",
]
KEYED_TABLE = """CREATE TABLE events (
    session INTEGER NOT NULL, seq BIGINT NOT NULL, event_id TEXT,
    dedup_key TEXT NOT NULL, event_type TEXT NOT NULL, occurred_at_us BIGINT NOT NULL,
    received_at BIGINT NOT NULL, interaction_id TEXT, sequence BIGINT,
    out_of_order BOOLEAN NOT NULL, data TEXT NOT NULL, PRIMARY KEY (session, seq))"""
KEYED_INDEXES = [
    "CREATE UNIQUE INDEX events_dedup ON events (session, dedup_key)",
    "CREATE INDEX events_by_type ON events (session, event_type, seq)",
]
MINIMAL_TABLE = """CREATE TABLE events (session INTEGER NOT NULL, seq INTEGER NOT NULL,
    data TEXT NOT NULL, PRIMARY KEY (session, seq)) WITHOUT ROWID"""


def remove(path):
    for suffix in ("", "-wal", "-shm"):
        try:
            os.remove(path + suffix)
        except FileNotFoundError:
            pass


def fresh(path):
    remove(path)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA cache_size=-65536")
    return db


def run(layout, per_commit, seconds, directory):
    path = os.path.join(directory, f"sqlite-floor-{layout}.db")
    db = fresh(path)
    if layout == "minimal":
        db.execute(MINIMAL_TABLE)
        insert = "INSERT INTO events VALUES (?, ?, ?)"
    elif layout == "keyed":
        db.execute(KEYED_TABLE)
        for index in KEYED_INDEXES:
            db.execute(index)
        insert = ("INSERT INTO events VALUES "
                  "(?, ?, ?, ?, 'tool_use', 1, 1, NULL, NULL, 0, ?)")
    else:
        db.execute(EVENTS_TABLE)
        for index in EVENTS_INDEXES:
            db.execute(index)
        insert = ("INSERT INTO events VALUES "
                  "('default', ?, ?, ?, ?, 'tool_use', 1, 1, NULL, NULL, 0, ?)")
    data = json.dumps({"tool": "Bash", "n": 12345})
    last_seq = [0] * 1000
    session = 0
    stored = 0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        rows = []
        for _ in range(per_commit):
            session = (session + 1) % 1000
            last_seq[session] += 1
            seq = last_seq[session]
            key = f"t-{session}-{seq}"
            if layout == "minimal":
                rows.append((session, seq, data))
            elif layout == "keyed":
                rows.append((session, seq, key, "e:" + key, data))
            else:
                rows.append((f"bench-{session}", seq, key, "e:" + key, data))
        db.execute("BEGIN")
        db.executemany(insert, rows)
        db.execute("COMMIT")
        stored += per_commit
    rate = stored / (time.monotonic() - start)
    db.close()
    remove(path)
    return rate


def main():
    per_commit = int(sys.argv[1]) if len(sys.argv) > 1 else 256
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 6
    directory = sys.argv[3] if len(sys.argv) > 3 else "/tmp"
    for layout in ("minimal", "events", "keyed"):
        rate = run(layout, per_commit, seconds, directory)
        print(f"{layout:8} {per_commit} events per commit: {rate:,.0f} events/s", flush=True)


if __name__ == "__main__":
    main()
