"""The SQLite job ledger, on real SQLite files in tmp_path."""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from ledgerbackends import Clock, add, walk

from synthesia_watchd.domain.errors import LedgerError, NetworkFilesystemError
from synthesia_watchd.domain.states import JobState
from synthesia_watchd.files.fsinfo import Mount
from synthesia_watchd.stores.ledger import MIGRATIONS, SCHEMA_VERSION, Ledger

S = JobState
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state" / "ledger.db"


@pytest.fixture
def ledger(db: Path, clock: Clock) -> Iterator[Ledger]:
    with Ledger(db, now=clock) as led:
        yield led


# --- opening, pragmas, files ---------------------------------------------------------------------


def test_pragmas_in_effect(ledger: Ledger) -> None:
    """WAL, synchronous FULL, foreign keys, busy timeout and the schema version are set."""
    c = ledger._conn
    assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert c.execute("PRAGMA synchronous").fetchone()[0] == 2
    assert c.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert c.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000
    assert ledger.schema_version == SCHEMA_VERSION == len(MIGRATIONS)


def test_files_are_private_even_with_a_lax_umask(tmp_path: Path) -> None:
    """The ledger and its -wal are 0600 and a created parent folder 0700, whatever the umask."""
    db = tmp_path / "new" / "ledger.db"
    old = os.umask(0o002)
    try:
        with Ledger(db) as led:
            add(led)
            wal = Path(f"{db}-wal")
            assert wal.exists()
            assert stat.S_IMODE(wal.stat().st_mode) == 0o600
            assert stat.S_IMODE(db.stat().st_mode) == 0o600
    finally:
        os.umask(old)
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700


def test_reopen_is_idempotent(db: Path) -> None:
    """Opening an up-to-date ledger again changes nothing and keeps the data."""
    with Ledger(db) as led:
        job = add(led)
    with Ledger(db) as led:
        assert led.schema_version == SCHEMA_VERSION
        assert led.get(job.id) == job


def test_version_one_ledger_migrates_forward(db: Path) -> None:
    """A ledger built at schema 1 by hand gains the later steps and keeps its rows."""
    db.parent.mkdir()
    raw = sqlite3.connect(db)
    for statement in MIGRATIONS[0]:
        raw.execute(statement)
    raw.execute("PRAGMA user_version = 1")
    raw.execute(
        "INSERT INTO jobs (watch, source_path, size, mtime_ns, source_language, targets, state,"
        " next_attempt_at, output_dir, created_at, updated_at, state_changed_at)"
        " VALUES ('inbox', 'old.mp4', 5, 1, 'en', '[\"de\"]', 'queued', 0, 'out', 1, 1, 1)"
    )
    raw.execute("INSERT INTO events (job_id, at, to_state, why) VALUES (1, 1, 'queued', 'old')")
    raw.commit()
    raw.close()

    with Ledger(db) as led:
        assert led.schema_version == SCHEMA_VERSION
        assert led.get(1).source_path == "old.mp4"
        assert [e.why for e in led.events(1)] == ["old"]
    raw = sqlite3.connect(db)
    try:
        assert raw.execute("SELECT why FROM history").fetchall() == [("old",)]
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            raw.execute("DELETE FROM events")
    finally:
        raw.close()


def test_newer_schema_is_refused(db: Path) -> None:
    """A ledger written by a newer release is refused with both versions named."""
    with Ledger(db):
        pass
    raw = sqlite3.connect(db)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 7}")
    raw.close()
    with pytest.raises(LedgerError, match=rf"schema version {SCHEMA_VERSION + 7}.*upgrade"):
        Ledger(db)


def test_not_a_database_is_refused(db: Path) -> None:
    """A file that is not SQLite gives a LedgerError naming the file, not a raw sqlite error."""
    db.parent.mkdir()
    db.write_bytes(b"this is not a database, just some bytes" * 100)
    with pytest.raises(LedgerError, match="cannot open the ledger"):
        Ledger(db)


@pytest.mark.parametrize("fstype", ["nfs4", "cifs"])
def test_network_filesystem_is_refused(tmp_path: Path, fstype: str) -> None:
    """A ledger on NFS/SMB is refused, naming the type and a local alternative; nothing made."""
    mounts = [Mount("/dev/sda1", "/", "ext4"), Mount("nas:/share", str(tmp_path), fstype)]
    db = tmp_path / "state" / "ledger.db"
    with pytest.raises(NetworkFilesystemError, match=f"{fstype}.*local disk") as info:
        Ledger(db, mounts=mounts)
    assert "state_dir" in str(info.value)
    assert not db.parent.exists()
    with Ledger(db, mounts=mounts, allow_network_fs=True) as led:
        assert led.schema_version == SCHEMA_VERSION


def test_local_filesystem_is_accepted(tmp_path: Path) -> None:
    """An ext4 mount table lets the ledger open."""
    mounts = [Mount("/dev/sda1", "/", "ext4"), Mount("/dev/sdb1", str(tmp_path), "ext4")]
    with Ledger(tmp_path / "ledger.db", mounts=mounts) as led:
        assert add(led).state is S.QUEUED


def test_driver_errors_surface_as_ledger_errors(db: Path) -> None:
    """A sqlite3 error inside an operation reaches callers as LedgerError, not sqlite3.Error."""
    led = Ledger(db)
    job = add(led)
    led.close()
    with pytest.raises(LedgerError) as caught:
        led.get(job.id)
    assert isinstance(caught.value.__cause__, sqlite3.Error)


def test_events_are_append_only(ledger: Ledger, db: Path) -> None:
    """UPDATE and DELETE on events abort, even through a plain sqlite3 connection."""
    add(ledger)
    raw = sqlite3.connect(db)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            raw.execute("UPDATE events SET why = 'rewritten'")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            raw.execute("DELETE FROM events")
        raw.rollback()
    finally:
        raw.close()
    assert [e.why for e in ledger.events(1)] == ["discovered"]


def test_integrity_check_and_checkpoint(ledger: Ledger, db: Path) -> None:
    """A healthy ledger checks ok; checkpoint empties the WAL into the main file."""
    add(ledger)
    assert Path(f"{db}-wal").stat().st_size > 0
    assert ledger.integrity_check() == "ok"
    ledger.checkpoint()
    assert Path(f"{db}-wal").stat().st_size == 0


def test_plain_sqlite3_reads_history(ledger: Ledger, db: Path) -> None:
    """Operators can read jobs and the history view with the plain sqlite3 module."""
    job = walk(ledger, add(ledger).id, S.ASSET_CREATED)
    raw = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = raw.execute(
            "SELECT job_id, source_path, from_state, to_state, why, at_utc, current_state"
            " FROM history ORDER BY event_id"
        ).fetchall()
        targets = raw.execute("SELECT targets FROM jobs").fetchone()[0]
    finally:
        raw.close()
    assert rows == [
        (
            job.id,
            "a.mp4",
            None,
            "queued",
            "discovered",
            "2025-06-15T15:06:40.000Z",
            "asset_created",
        ),
        (
            job.id,
            "a.mp4",
            "queued",
            "asset_created",
            "to asset_created",
            "2025-06-15T15:06:40.000Z",
            "asset_created",
        ),
    ]
    assert targets == '["de", "fr"]'


# --- concurrency and durability ------------------------------------------------------------------


CHILD = """
import os, signal, sys
from pathlib import Path
from synthesia_watchd.stores.ledger import Ledger
led = Ledger(Path(sys.argv[1]))
led.transition(int(sys.argv[2]), "queued", "asset_created", why="child", asset_id="as-9")
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_transition_survives_sigkill_right_after(db: Path) -> None:
    """A transition returned in a process killed with SIGKILL right after is there on reopen."""
    with Ledger(db) as led:
        job = add(led)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(db), str(job.id)],
        cwd=REPO,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert Path(f"{db}-wal").stat().st_size > 0  # the commit lives in the WAL, not yet folded
    with Ledger(db) as led:
        after = led.get(job.id)
        assert (after.state, after.asset_id) == (S.ASSET_CREATED, "as-9")
        assert led.events(job.id)[-1].why == "child"
        assert led.integrity_check() == "ok"


def test_version_four_ledger_gets_codes_for_what_it_said_in_words(db: Path) -> None:
    """Migration 6 codes old vanished/project-failed jobs and fresh-asset/internal-error
    events, so the rules and caps carry over; events stay append-only."""
    db.parent.mkdir()
    raw = sqlite3.connect(db)
    for step in MIGRATIONS[:4]:
        for statement in step:
            raw.execute(statement)
    raw.execute("PRAGMA user_version = 4")
    for name, state, err in (
        ("gone.mp4", "cancelled", "source file vanished"),
        ("bad.mp4", "failed", "Synthesia failed the dubbing project: tts_error"),
    ):
        raw.execute(
            "INSERT INTO jobs (watch, source_path, size, mtime_ns, source_language, targets,"
            " state, next_attempt_at, output_dir, created_at, updated_at, state_changed_at,"
            " last_error) VALUES ('inbox', ?, 5, 1, 'en', '[\"de\"]', ?, 0, 'out', 1, 1, 1, ?)",
            (name, state, err),
        )
    for why in (
        "upload credentials expired; creating a fresh asset (403)",
        "retry: internal error: KeyError: 'x'",
        "retry: 503",
    ):
        raw.execute("INSERT INTO events (job_id, at, why) VALUES (1, 1, ?)", (why,))
    raw.commit()
    raw.close()
    with Ledger(db) as led:
        assert (led.get(1).reason_code, led.get(2).reason_code) == ("vanished", "project_failed")
        assert [e.reason_code for e in led.events(1)] == ["fresh_asset", "internal_error", None]
    raw = sqlite3.connect(db)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            raw.execute("UPDATE events SET why = 'x'")
    finally:
        raw.close()
