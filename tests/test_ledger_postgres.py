"""The PostgreSQL backend beyond the contract: migrations, secrets, outages, operators' view."""

from __future__ import annotations

import threading

import psycopg
import pytest
from ledgerbackends import add, walk
from pgcluster import PASSWORD, Cluster

from synthesia_watchd.domain.errors import LedgerError
from synthesia_watchd.domain.states import JobState
from synthesia_watchd.stores.pgschema import SCHEMA_VERSION
from synthesia_watchd.stores.postgres import PostgresLedger, redacted

S = JobState


def test_nodes_starting_together_migrate_once(pg_database: str) -> None:
    """Four stores opening one empty database at once: one applies, all see the same schema."""
    barrier = threading.Barrier(4)
    stores: list[PostgresLedger] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            barrier.wait()
            stores.append(PostgresLedger(pg_database, password=PASSWORD))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    try:
        assert errors == []
        assert {s.schema_version for s in stores} == {SCHEMA_VERSION}
        with psycopg.connect(pg_database, password=PASSWORD) as conn:
            versions = conn.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()
            ids = conn.execute("SELECT value FROM meta WHERE key = 'ledger_id'").fetchall()
        assert [v for (v,) in versions] == list(range(1, SCHEMA_VERSION + 1))
        assert len(ids) == 1
    finally:
        for s in stores:
            s.close()


def test_newer_schema_is_refused(pg_database: str) -> None:
    """A database migrated by a newer release is refused with what to do."""
    PostgresLedger(pg_database, password=PASSWORD).close()
    with psycopg.connect(pg_database, password=PASSWORD) as conn:
        conn.execute("INSERT INTO schema_migrations VALUES (999, 0)")
    with pytest.raises(LedgerError, match="schema version 999, newer"):
        PostgresLedger(pg_database, password=PASSWORD)


def test_wrong_password_or_no_server_is_a_clear_error_without_the_password(
    pg_database: str,
) -> None:
    """A refused login or an unreachable server is LedgerError naming the place, no secret."""
    with pytest.raises(LedgerError) as wrong:
        PostgresLedger(pg_database, password="not-the-password", connect_timeout=3)
    assert "not-the-password" not in str(wrong.value)
    url = pg_database.replace("watchd@", "watchd:hunter2@")
    with pytest.raises(LedgerError, match="cannot reach") as gone:
        PostgresLedger(url.rsplit(":", 1)[0] + ":1/x", connect_timeout=2)
    assert "hunter2" not in str(gone.value)
    assert redacted("postgresql://u:hunter2@db.example:5433/ledger?sslmode=require") == (
        "postgresql://u@db.example:5433/ledger"
    )


def test_password_from_pgpassword(pg_database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """libpq's own sources work: PGPASSWORD in the environment, no password in the config."""
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    with PostgresLedger(pg_database) as led:
        assert add(led).state is S.QUEUED


def test_events_are_append_only_and_history_reads_in_sql(pg_database: str) -> None:
    """UPDATE/DELETE on events abort in the server; the history view gives UTC times."""
    with PostgresLedger(pg_database, password=PASSWORD, now=lambda: 1_750_000_000.0) as led:
        job = walk(led, add(led).id, S.ASSET_CREATED)
    with psycopg.connect(pg_database, password=PASSWORD, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            conn.execute("UPDATE events SET why = 'rewritten'")
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            conn.execute("DELETE FROM events")
        rows = conn.execute(
            "SELECT job_id, from_state, to_state, at_utc, current_state FROM history"
        ).fetchall()
    assert rows == [
        (job.id, None, "queued", "2025-06-15T15:06:40.000Z", "asset_created"),
        (job.id, "queued", "asset_created", "2025-06-15T15:06:40.000Z", "asset_created"),
    ]


def test_server_restart_is_survived(pg_cluster: Cluster, pg_database: str) -> None:
    """While the server is down operations raise LedgerError; after it returns they work again."""
    with PostgresLedger(pg_database, password=PASSWORD, connect_timeout=2) as led:
        job = add(led)
        pg_cluster.stop("immediate")
        try:
            with pytest.raises(LedgerError):
                led.get(job.id)
        finally:
            pg_cluster.start()
        assert walk(led, job.id, S.ASSET_CREATED).state is S.ASSET_CREATED
        assert led.integrity_check() == "ok"
