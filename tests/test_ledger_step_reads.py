"""The schema step to one count of reads and a status record per node, on both backends:
a ledger one step behind, with per-period read counts and the one daemon record, upgraded."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from pgcluster import PASSWORD

from synthesia_watchd.stores import pgschema, sqlite
from synthesia_watchd.stores.ledger import Ledger, LedgerStore
from synthesia_watchd.stores.postgres import PostgresLedger

EP = "GET /v2/dubbing/{id}"
OTHER = "GET /v2/assets/{id}"


def _old_rows(run: Callable[[str, tuple[Any, ...]], object]) -> tuple[int, int]:
    """Counts of the old table (one period early in the day's window, one after the log's
    first read, one two days old), a read in the log, one node and its daemon record."""
    first = int(time.time() // 600 * 600) - 3600
    later = first + 1200
    for bucket, count in ((first, 3), (later, 4), (first - 2 * 86_400, 5)):
        run(
            "INSERT INTO api_reads (node, endpoint, bucket, count) VALUES (?, ?, ?, ?)",
            ("nas", EP, bucket, count),
        )
    run(  # the current period of an endpoint the log has no read of yet
        "INSERT INTO api_reads (node, endpoint, bucket, count) VALUES (?, ?, ?, ?)",
        ("nas", OTHER, int(time.time() // 600 * 600), 2),
    )
    run(
        "INSERT INTO api_requests (limit_class, endpoint, at, node) VALUES (?, ?, ?, ?)",
        ("read", EP, later + 5.0, "nas"),
    )
    run(
        "INSERT INTO nodes (name, started_at, heartbeat_at) VALUES (?, ?, ?)",
        ("nas", 1.0, 1.0),
    )
    run("INSERT INTO meta (key, value) VALUES (?, ?)", ("daemon", '{"pid": 7}'))
    return first, later


def _check(ledger: LedgerStore, first: int, later: int) -> None:
    # Periods before the log's first read are carried (as of their last second); the
    # period the log already holds is not counted twice; two days ago is gone.
    assert ledger.api_reads_since(EP, 0) == {first: 3, later: 1}
    assert sum(ledger.api_reads_since(OTHER, 0).values()) == 2
    assert ledger.api_reads_since(OTHER, time.time() + 1) == {}  # none dated in the future
    assert ledger.node_statuses() == {"nas": '{"pid": 7}'}
    assert ledger.get_meta("daemon") is None


def test_sqlite_step_carries_reads_and_the_daemon_record(tmp_path: Path) -> None:
    """SQLite one step behind: its reads and daemon record carried, api_reads dropped."""
    db = tmp_path / "state" / "ledger.sqlite3"
    db.parent.mkdir()
    raw = sqlite3.connect(db)
    for step in sqlite.MIGRATIONS[:-1]:
        for statement in step:
            raw.execute(statement)
    raw.execute(f"PRAGMA user_version = {sqlite.SCHEMA_VERSION - 1}")
    first, later = _old_rows(lambda sql, params: raw.execute(sql, params))
    raw.commit()
    raw.close()
    with Ledger(db) as ledger:
        _check(ledger, first, later)
    raw = sqlite3.connect(db)
    try:
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        raw.close()
    assert "api_reads" not in tables


def test_postgres_step_carries_reads_and_the_daemon_record(pg_database: str) -> None:
    """PostgreSQL one step behind: the same rows carried, api_reads dropped."""
    with psycopg.connect(pg_database, password=PASSWORD, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE schema_migrations"
            " (version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
        )
        for version, step in enumerate(pgschema.MIGRATIONS[:-1], start=1):
            for statement in step:
                conn.execute(statement)  # type: ignore[call-overload]
            conn.execute("INSERT INTO schema_migrations VALUES (%s, 0)", (version,))
        first, later = _old_rows(
            lambda sql, params: conn.execute(sql.replace("?", "%s"), params)  # type: ignore[call-overload]
        )
    with PostgresLedger(pg_database, password=PASSWORD) as ledger:
        _check(ledger, first, later)
    with psycopg.connect(pg_database, password=PASSWORD) as conn:
        [(found,)] = conn.execute("SELECT to_regclass('api_reads') IS NULL").fetchall()
    assert found
