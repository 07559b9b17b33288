"""The SQLite ledger backend: the embedded default, one file on a local disk.

Every job and every transition is written here, durably, *before* the side effect it records
could be repeated, so that after a crash every job resumes from its last durable step and no
dub is paid for twice. The file is plain SQLite with readable table names and a ``history``
view, so ``sqlite3 ledger.db 'select * from history'`` answers "what happened to my file?".

Concurrency the huey way: one connection (autocommit) behind a lock, each write an explicit
``BEGIN IMMEDIATE ... COMMIT``; WAL plus a busy timeout lets a CLI in another process read and
write alongside the daemon. Migrations the sqlite-utils way: each step runs in the same
transaction as its ``PRAGMA user_version`` bump.

No secret has a column here: the API key and the temporary S3 credentials live only in memory.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from synthesia_watchd.domain.errors import LedgerError, NetworkFilesystemError
from synthesia_watchd.files import fsinfo

from .base import FIRST_TABLES_AND_INDEXES
from .sqlshared import SqlLedgerStore

BUSY_TIMEOUT_MS = 10_000

#: Forward migrations; step ``i`` takes the schema from version ``i`` to ``i + 1``. Each is a
#: tuple of single statements (not a script: ``executescript`` would commit the transaction).
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: the tables and their indexes.
    (
        """CREATE TABLE jobs (
            id INTEGER PRIMARY KEY,
            watch TEXT NOT NULL,
            source_path TEXT NOT NULL,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            sha256 TEXT,
            source_language TEXT NOT NULL,
            detected_language TEXT,
            targets TEXT NOT NULL DEFAULT '[]',
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL,
            asset_id TEXT,
            project_id TEXT,
            submit_started_at REAL,
            last_error TEXT,
            last_error_context TEXT,
            output_dir TEXT NOT NULL,
            settings TEXT NOT NULL DEFAULT '{}',
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            state_changed_at REAL NOT NULL
        )""",
        """CREATE TABLE outputs (
            job_id INTEGER NOT NULL REFERENCES jobs(id),
            language TEXT NOT NULL,
            kind TEXT NOT NULL DEFAULT 'video',
            state TEXT NOT NULL,
            path TEXT,
            bytes INTEGER,
            sha256 TEXT,
            error_code TEXT,
            dubbed_asset_id TEXT,
            updated_at REAL NOT NULL,
            PRIMARY KEY (job_id, language, kind)
        )""",
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            job_id INTEGER NOT NULL REFERENCES jobs(id),
            at REAL NOT NULL,
            from_state TEXT,
            to_state TEXT,
            why TEXT NOT NULL
        )""",
        *FIRST_TABLES_AND_INDEXES,
    ),
    # 2: what operators rely on: history cannot be rewritten, and reads well from sqlite3.
    (
        """CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
        BEGIN SELECT RAISE(ABORT, 'events are append-only'); END""",
        """CREATE TRIGGER events_append_only_delete BEFORE DELETE ON events
        BEGIN SELECT RAISE(ABORT, 'events are append-only'); END""",
        """CREATE VIEW history AS
        SELECT e.id AS event_id,
               e.job_id,
               strftime('%Y-%m-%dT%H:%M:%fZ', e.at, 'unixepoch') AS at_utc,
               j.watch,
               j.source_path,
               e.from_state,
               e.to_state,
               e.why,
               j.state AS current_state,
               j.project_id,
               e.at
        FROM events e JOIN jobs j ON j.id = e.job_id
        ORDER BY e.id""",
    ),
    # 3: the video's duration as parsed from the file (billing minutes, dub-time estimates).
    ("ALTER TABLE jobs ADD COLUMN duration_s REAL",),
    # 4: the ledger's identity, recorded beside it too, so a lost ledger is noticed at start.
    ("INSERT OR IGNORE INTO meta (key, value) VALUES ('ledger_id', lower(hex(randomblob(16))))",),
    # 5: API reads per ten minutes, so the day's read budget survives a restart (readbudget.py).
    # One row per node and period (replaced by the request log in step 9).
    (
        """CREATE TABLE api_reads (
            node TEXT NOT NULL,
            endpoint TEXT NOT NULL,
            bucket INTEGER NOT NULL,
            count INTEGER NOT NULL,
            PRIMARY KEY (endpoint, bucket, node)
        )""",
    ),
    # 6: why a job is where it is, as a typed code (reasons.Reason) beside the message for
    # people: lifecycle rules and caps count codes, never message text.
    (
        "ALTER TABLE jobs ADD COLUMN reason_code TEXT",
        "ALTER TABLE events ADD COLUMN reason_code TEXT",
        "CREATE INDEX events_job_reason ON events (job_id, reason_code)",
        # What older versions said in words only, coded once so rules and caps carry over.
        "UPDATE jobs SET reason_code = 'vanished'"
        " WHERE state = 'cancelled' AND last_error = 'source file vanished'",
        "UPDATE jobs SET reason_code = 'project_failed'"
        " WHERE last_error LIKE 'Synthesia failed the dubbing project%'",
        "DROP TRIGGER events_append_only_update",
        "UPDATE events SET reason_code = 'fresh_asset'"
        " WHERE why LIKE 'upload credentials expired; creating a fresh asset%'",
        "UPDATE events SET reason_code = 'internal_error'"
        " WHERE why LIKE 'retry: internal error: %'",
        """CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
        BEGIN SELECT RAISE(ABORT, 'events are append-only'); END""",
    ),
    # 7: several nodes on one ledger: which node works on a job until when (its lease), and
    # the nodes themselves with their heartbeats.
    (
        "ALTER TABLE jobs ADD COLUMN lease_node TEXT",
        "ALTER TABLE jobs ADD COLUMN lease_until REAL",
        """CREATE TABLE nodes (
            name TEXT PRIMARY KEY,
            started_at REAL NOT NULL,
            heartbeat_at REAL NOT NULL,
            pid INTEGER,
            version TEXT
        )""",
    ),
    # 8: the API requests of every node inside the longest rate window, so the hour and day
    # windows survive a restart and nodes sharing a ledger pace together.
    (
        """CREATE TABLE api_requests (
            id INTEGER PRIMARY KEY,
            limit_class TEXT NOT NULL,
            endpoint TEXT NOT NULL,
            at REAL NOT NULL,
            node TEXT
        )""",
        "CREATE INDEX api_requests_window ON api_requests (limit_class, endpoint, at)",
    ),
    # 9: work one node at a time does (runner leases), a status record per node, and the
    # request log as the one count of reads: the day's reads still inside the window move
    # from the per-period counts into it (those before its first read; the rest it holds),
    # each as of its period's last second (never later than now).
    (
        "CREATE TABLE runners (name TEXT PRIMARY KEY, node TEXT NOT NULL, until REAL NOT NULL)",
        "ALTER TABLE nodes ADD COLUMN status TEXT",
        "UPDATE nodes SET status = (SELECT value FROM meta WHERE key = 'daemon')"
        " WHERE (SELECT COUNT(*) FROM nodes) = 1",
        "DELETE FROM meta WHERE key = 'daemon'",
        "INSERT INTO api_requests (limit_class, endpoint, at, node)"
        " WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
        "  WHERE i < (SELECT COALESCE(MAX(count), 0) FROM api_reads))"
        " SELECT 'read', r.endpoint, MIN(r.bucket + 599, CAST(strftime('%s', 'now') AS REAL)),"
        " r.node"
        " FROM api_reads r JOIN n ON n.i <= r.count"
        " WHERE r.bucket >= CAST(strftime('%s', 'now') AS INTEGER) - 87000"
        " AND r.bucket + 600 <= COALESCE((SELECT MIN(q.at) FROM api_requests q"
        "  WHERE q.limit_class = 'read' AND q.endpoint = r.endpoint), 1e18)",
        "DROP TABLE api_reads",
    ),
)

SCHEMA_VERSION = len(MIGRATIONS)


class _Conn:
    """The shared SQL's view of a sqlite3 connection; driver errors become LedgerError."""

    __slots__ = ("_c", "_name")

    def __init__(self, conn: sqlite3.Connection, name: str) -> None:
        self._c, self._name = conn, name

    def _execute(self, sql: str, params: Sequence[Any]) -> sqlite3.Cursor:
        try:
            return self._c.execute(sql, params)
        except sqlite3.Error as exc:
            raise LedgerError(f"ledger {self._name}: {exc}") from exc

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Execute; the number of rows changed."""
        return self._execute(sql, params).rowcount

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Execute a query; rows as dicts."""
        return [dict(r) for r in self._execute(sql, params).fetchall()]


def _create_private(path: Path) -> None:
    """Create the ledger file 0600 (and its folder 0700) before SQLite opens it."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


class SqliteLedger(SqlLedgerStore):
    """The job ledger over one SQLite file; safe to share between worker threads."""

    def __init__(
        self,
        path: Path,
        *,
        now: Callable[[], float] = time.time,
        mounts: list[fsinfo.Mount] | None = None,
        allow_network_fs: bool = False,
    ) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self._now = now
        self._lock = threading.Lock()
        if not allow_network_fs:
            remote = fsinfo.network_fs_of(self.path.parent, mounts)
            if remote is not None:
                raise NetworkFilesystemError(
                    f"the ledger {self.path.name} would live on a {remote.fstype} network "
                    f"filesystem ({remote.mountpoint}), where SQLite locking is unsafe and "
                    "jobs could be lost or paid for twice; put it on a local disk, e.g. the "
                    "state directory (/var/lib/synthesia-watchd): set `ledger:` or `state_dir:` "
                    "in the config"
                )
        _create_private(self.path)
        self._conn = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False, isolation_level=None
        )
        self._conn.row_factory = sqlite3.Row
        try:
            self._configure()
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise LedgerError(f"cannot open the ledger {self.path}: {exc}") from exc
        except BaseException:
            self._conn.close()
            raise
        self._secure_sidecars()

    # --- lifecycle -----------------------------------------------------------------------------

    def _configure(self) -> None:
        c = self._conn
        c.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        mode = c.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise LedgerError(f"the ledger {self.path} cannot use WAL mode (got {mode!r})")
        c.execute("PRAGMA synchronous = FULL")
        c.execute("PRAGMA foreign_keys = ON")

    def _migrate(self) -> None:
        found = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if found > SCHEMA_VERSION:
            raise LedgerError(
                f"the ledger {self.path} has schema version {found}, newer than this "
                f"synthesia-watchd understands ({SCHEMA_VERSION}); upgrade synthesia-watchd "
                "or point it at another ledger file"
            )
        c = self._conn
        for version in range(found + 1, SCHEMA_VERSION + 1):
            c.execute("BEGIN IMMEDIATE")
            try:
                # Re-read under the write lock: another process may have migrated meanwhile.
                if c.execute("PRAGMA user_version").fetchone()[0] < version:
                    for statement in MIGRATIONS[version - 1]:
                        c.execute(statement)
                    c.execute(f"PRAGMA user_version = {version}")
            except BaseException:
                c.execute("ROLLBACK")
                raise
            c.execute("COMMIT")

    def _secure_sidecars(self) -> None:
        """Give -wal/-shm the main file's permissions (0600 for a ledger we created)."""
        try:
            mode = stat.S_IMODE(os.stat(self.path).st_mode)
        except OSError:
            return
        for suffix in ("-wal", "-shm"):
            with contextlib.suppress(OSError):
                os.chmod(f"{self.path}{suffix}", mode)

    def close(self) -> None:
        """Close the connection (idempotent); the last closer folds the WAL into the file."""
        with self._lock:
            self._conn.close()

    def __repr__(self) -> str:
        return f"SqliteLedger({str(self.path)!r})"

    @property
    def schema_version(self) -> int:
        with self._lock:
            return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    # --- transactions --------------------------------------------------------------------------

    @contextlib.contextmanager
    def _tx(self) -> Iterator[_Conn]:
        """One write transaction under the lock: IMMEDIATE, so no upgrade deadlocks."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise LedgerError(f"ledger {self.path.name} is unavailable: {exc}") from exc
            try:
                yield _Conn(self._conn, self.path.name)
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                raise
            try:
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                raise LedgerError(f"ledger {self.path.name}: commit failed: {exc}") from exc

    @contextlib.contextmanager
    def _read(self) -> Iterator[_Conn]:
        """The connection under the lock, for reads (each statement sees one snapshot)."""
        with self._lock:
            yield _Conn(self._conn, self.path.name)

    # --- maintenance ---------------------------------------------------------------------------

    def integrity_check(self) -> str:
        """Return "ok", or the problems SQLite's integrity and foreign-key checks found."""
        with self._lock:
            problems = [
                str(r[0]) for r in self._conn.execute("PRAGMA integrity_check") if r[0] != "ok"
            ]
            problems += [
                f"{r[0]} row {r[1]} refers to a missing {r[2]} row"
                for r in self._conn.execute("PRAGMA foreign_key_check")
            ]
        return "\n".join(problems) if problems else "ok"

    def quick_check(self) -> str:
        """Return "ok", or what ``PRAGMA quick_check`` found (damaged pages, broken indexes)."""
        with self._lock:
            problems = [
                str(r[0]) for r in self._conn.execute("PRAGMA quick_check(20)") if r[0] != "ok"
            ]
        return "\n".join(problems) if problems else "ok"

    def backup(self, dest: Path) -> None:
        """Copy the whole ledger into ``dest`` while it stays in use: SQLite's online backup
        API in one step, so the copy is one consistent snapshot and (WAL) writers go on."""
        target = sqlite3.connect(dest)
        try:
            with self._lock:
                self._conn.backup(target)
            target.execute("PRAGMA journal_mode = DELETE")
        finally:
            target.close()

    def checkpoint(self) -> None:
        """Fold the WAL into the main file and truncate it (clean shutdown, backups)."""
        with self._lock:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        self._secure_sidecars()
