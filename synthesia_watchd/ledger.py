"""The SQLite job ledger: the daemon's memory and the operators' dubbing history.

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
import json
import math
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any

from . import fsinfo
from .errors import LedgerError, NetworkFilesystemError, StaleTransition
from .names import from_db, printable, to_db
from .outputs import KIND_EXTENSIONS
from .states import JobState, OutputState, can_transition

#: Output kinds a job can produce per target language.
KINDS: frozenset[str] = frozenset(KIND_EXTENSIONS)

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
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "CREATE INDEX jobs_state_due ON jobs (state, next_attempt_at)",
        "CREATE INDEX jobs_sha256 ON jobs (sha256)",
        "CREATE INDEX jobs_watch_path ON jobs (watch, source_path)",
        "CREATE INDEX events_job ON events (job_id, id)",
        "CREATE INDEX events_to_state_at ON events (to_state, at)",
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
    # One row per node and period: daemons sharing a ledger each add theirs, plan with the sum.
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
)

SCHEMA_VERSION = len(MIGRATIONS)

_JOB_COLUMNS = (
    "id",
    "watch",
    "source_path",
    "size",
    "mtime_ns",
    "sha256",
    "source_language",
    "detected_language",
    "targets",
    "state",
    "attempts",
    "next_attempt_at",
    "asset_id",
    "project_id",
    "submit_started_at",
    "last_error",
    "last_error_context",
    "output_dir",
    "settings",
    "created_at",
    "updated_at",
    "state_changed_at",
    "duration_s",
    "reason_code",
)
_JOB_SELECT = f"SELECT {', '.join(_JOB_COLUMNS)} FROM jobs"  # noqa: S608 - fixed column names

#: Columns ``transition``/``update`` may write. Identity (id, watch, source_path), state and
#: the bookkeeping timestamps are the ledger's own.
UPDATABLE: frozenset[str] = frozenset(_JOB_COLUMNS) - {
    "id",
    "watch",
    "source_path",
    "state",
    "created_at",
    "updated_at",
    "state_changed_at",
}

#: Setting names that would smuggle a secret into the ledger; refused outright.
_SECRET_KEYS = frozenset(
    {
        "api_key",
        "apikey",
        "authorization",
        "password",
        "secret_access_key",
        "aws_secret_access_key",
        "session_token",
        "aws_session_token",
    }
)


@dataclass(frozen=True)
class Job:
    """One source file version and where its dub stands."""

    id: int
    watch: str
    source_path: str
    size: int
    mtime_ns: int
    sha256: str | None
    source_language: str
    detected_language: str | None
    targets: tuple[str, ...]
    state: JobState
    attempts: int
    next_attempt_at: float
    asset_id: str | None
    project_id: str | None
    submit_started_at: float | None
    last_error: str | None
    last_error_context: str | None
    output_dir: str
    #: Options frozen at job creation, so in-flight jobs keep what they started with.
    settings: Mapping[str, Any] = field(hash=False)
    created_at: float
    updated_at: float
    state_changed_at: float
    #: Seconds of video, parsed from the file's container (None: not parsed or unknown).
    duration_s: float | None = None
    #: The typed code (``reasons.Reason`` value) of the last transition that gave a reason.
    reason_code: str | None = None


@dataclass(frozen=True)
class Output:
    """One (language, kind) output of a job."""

    job_id: int
    language: str
    kind: str
    state: OutputState
    path: str | None
    bytes: int | None
    sha256: str | None
    error_code: str | None
    dubbed_asset_id: str | None
    updated_at: float = 0.0


@dataclass(frozen=True)
class Event:
    """One line of a job's history; ``from_state == to_state`` for notes and retries."""

    id: int
    job_id: int
    at: float
    from_state: str | None
    to_state: str | None
    why: str
    reason_code: str | None = None


def _states(states: JobState | str | Iterable[JobState | str]) -> tuple[JobState, ...]:
    # A JobState is a str and so iterable: a single state must be caught first.
    if isinstance(states, str):
        return (JobState(states),)
    return tuple(JobState(s) for s in states)


def _check_no_secrets(value: Any, where: str = "settings") -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            if str(k).lower().replace("-", "_") in _SECRET_KEYS:
                raise ValueError(f"{where}.{k}: secrets are never stored in the ledger")
            _check_no_secrets(v, f"{where}.{k}")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _check_no_secrets(v, f"{where}[{i}]")


def _encode_targets(targets: Sequence[str]) -> str:
    if isinstance(targets, str):
        raise ValueError("targets must be a sequence of language codes, not one string")
    clean = list(dict.fromkeys(str(t) for t in targets))  # de-duplicated, order kept
    if not clean or any(not t for t in clean):
        raise ValueError("targets must name at least one language, none of them empty")
    return json.dumps(clean)


def _encode_settings(settings: Mapping[str, Any] | None) -> str:
    settings = {} if settings is None else settings
    if not isinstance(settings, Mapping):
        raise ValueError("settings must be a mapping")
    _check_no_secrets(settings)
    return json.dumps(dict(settings), sort_keys=True)


def _text(value: str | None) -> str | None:
    """Free text for a TEXT column: a name in it that is not UTF-8 is shown escaped."""
    return None if value is None else printable(value)


def _job(row: sqlite3.Row) -> Job:
    d = dict(row)
    d["source_path"] = from_db(d["source_path"])
    d["output_dir"] = from_db(d["output_dir"])
    d["targets"] = tuple(json.loads(d["targets"]))
    d["settings"] = MappingProxyType(json.loads(d["settings"]))
    d["state"] = JobState(d["state"])
    return Job(**d)


def _output(row: sqlite3.Row) -> Output:
    d = dict(row)
    if d["path"] is not None:
        d["path"] = from_db(d["path"])
    d["state"] = OutputState(d["state"])
    return Output(**d)


def _create_private(path: Path) -> None:
    """Create the ledger file 0600 (and its folder 0700) before SQLite opens it."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


class Ledger:
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
        for version in range(found + 1, SCHEMA_VERSION + 1):
            with self._tx() as c:
                # Re-read under the write lock: another process may have migrated meanwhile.
                if c.execute("PRAGMA user_version").fetchone()[0] >= version:
                    continue
                for statement in MIGRATIONS[version - 1]:
                    c.execute(statement)
                c.execute(f"PRAGMA user_version = {version}")

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

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Ledger({str(self.path)!r})"

    @property
    def schema_version(self) -> int:
        with self._lock:
            return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    # --- transactions --------------------------------------------------------------------------

    @contextlib.contextmanager
    def _tx(self, *, write: bool = True) -> Iterator[sqlite3.Connection]:
        """One transaction under the lock: IMMEDIATE for writes (no upgrade deadlocks)."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            except sqlite3.OperationalError as exc:
                raise LedgerError(f"ledger {self.path.name} is unavailable: {exc}") from exc
            try:
                yield self._conn
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                raise
            try:
                self._conn.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                raise LedgerError(f"ledger {self.path.name}: commit failed: {exc}") from exc

    @staticmethod
    def _state_of(c: sqlite3.Connection, job_id: int) -> JobState:
        row = c.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise KeyError(f"no job {job_id} in the ledger")
        return JobState(row[0])

    @staticmethod
    def _fetch(c: sqlite3.Connection, job_id: int) -> Job:
        row = c.execute(f"{_JOB_SELECT} WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise KeyError(f"no job {job_id} in the ledger")
        return _job(row)

    def _event(
        self,
        c: sqlite3.Connection,
        job_id: int,
        src: str | None,
        dst: str | None,
        why: str,
        at: float | None = None,
        code: str | None = None,
    ) -> None:
        c.execute(
            "INSERT INTO events (job_id, at, from_state, to_state, why, reason_code)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (job_id, self._now() if at is None else at, src, dst, printable(why), code),
        )

    @staticmethod
    def _assignments(fields: Mapping[str, Any]) -> tuple[list[str], list[Any]]:
        unknown = sorted(set(fields) - UPDATABLE)
        if unknown:
            raise ValueError(
                f"not updatable job fields: {', '.join(unknown)} "
                f"(allowed: {', '.join(sorted(UPDATABLE))})"
            )
        cols, values = [], []
        for name, value in fields.items():
            if name == "targets":
                value = _encode_targets(value)
            elif name == "settings":
                value = _encode_settings(value)
            elif name == "output_dir":
                value = to_db(value)
            elif isinstance(value, str):
                value = printable(value)  # an error text may quote a name that is not UTF-8
            cols.append(f"{name} = ?")
            values.append(value)
        return cols, values

    # --- writes --------------------------------------------------------------------------------

    def add_job(
        self,
        *,
        watch: str,
        source_path: str,
        size: int,
        mtime_ns: int,
        sha256: str | None,
        source_language: str,
        targets: Sequence[str],
        output_dir: str,
        settings: Mapping[str, Any] | None = None,
        kinds: Sequence[str] = ("video",),
        state: JobState = JobState.QUEUED,
        why: str = "discovered",
        last_error: str | None = None,
        duration_s: float | None = None,
        reason_code: str | None = None,
    ) -> Job:
        """Record a new job with a pending output per (target, kind) and its first event.

        A job refused at intake is born ``failed`` with its reason, in one transaction, so
        the scheduler can never see it queued and spend on it.
        """
        targets_json = _encode_targets(targets)
        settings_json = _encode_settings(settings)
        kinds = list(dict.fromkeys(kinds))
        bad = sorted(set(kinds) - KINDS)
        if bad or not kinds:
            raise ValueError(f"unknown output kinds {bad}; choose from {sorted(KINDS)}")
        state = JobState(state)
        with self._tx() as c:
            now = self._now()
            cur = c.execute(
                "INSERT INTO jobs (watch, source_path, size, mtime_ns, sha256, source_language,"
                " targets, state, next_attempt_at, output_dir, settings, created_at, updated_at,"
                " state_changed_at, last_error, duration_s, reason_code)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    watch,
                    to_db(source_path),
                    size,
                    mtime_ns,
                    sha256,
                    source_language,
                    targets_json,
                    state.value,
                    now,
                    to_db(output_dir),
                    settings_json,
                    now,
                    now,
                    now,
                    _text(last_error),
                    duration_s,
                    reason_code,
                ),
            )
            job_id = int(cur.lastrowid or 0)
            c.executemany(
                "INSERT INTO outputs (job_id, language, kind, state, updated_at)"
                " VALUES (?, ?, ?, ?, ?)",
                [
                    (job_id, lang, kind, OutputState.PENDING.value, now)
                    for lang in json.loads(targets_json)
                    for kind in kinds
                ],
            )
            self._event(c, job_id, None, state.value, why, now, reason_code)
            return self._fetch(c, job_id)

    def transition(
        self,
        job_id: int,
        expected: JobState | Iterable[JobState],
        new: JobState,
        *,
        why: str,
        **fields: Any,
    ) -> Job:
        """Compare-and-set the job's state, write ``fields`` and append the event, atomically.

        Raises StaleTransition when the job is not in ``expected`` (another worker or the
        operator moved it) or the state machine does not allow the move.
        """
        allowed = _states(expected)
        new = JobState(new)
        cols, values = self._assignments(fields)
        with self._tx() as c:
            old = self._state_of(c, job_id)
            if old not in allowed:
                raise StaleTransition(
                    f"job {job_id} is {old.value}, not {'/'.join(s.value for s in allowed)}; "
                    f"refusing to move it to {new.value}"
                )
            if not can_transition(old, new):
                raise StaleTransition(
                    f"job {job_id}: {old.value} -> {new.value} is not an allowed transition"
                )
            now = self._now()
            cols += ["state = ?", "updated_at = ?", "state_changed_at = ?"]
            c.execute(
                f"UPDATE jobs SET {', '.join(cols)} WHERE id = ?",  # noqa: S608 - names checked against UPDATABLE
                (*values, new.value, now, now, job_id),
            )
            self._event(c, job_id, old.value, new.value, why, now, fields.get("reason_code"))
            return self._fetch(c, job_id)

    def update(
        self,
        job_id: int,
        *,
        expected: JobState | Iterable[JobState],
        why: str | None = None,
        **fields: Any,
    ) -> Job:
        """Write job fields without a state change, compare-and-set on the current state.

        With ``why``, also append an event whose from and to states are the current one.
        """
        allowed = _states(expected)
        cols, values = self._assignments(fields)
        with self._tx() as c:
            old = self._state_of(c, job_id)
            if old not in allowed:
                raise StaleTransition(
                    f"job {job_id} is {old.value}, not {'/'.join(s.value for s in allowed)}; "
                    "update refused"
                )
            now = self._now()
            c.execute(
                f"UPDATE jobs SET {', '.join([*cols, 'updated_at = ?'])} WHERE id = ?",  # noqa: S608 - names checked against UPDATABLE
                (*values, now, job_id),
            )
            if why is not None:
                self._event(c, job_id, old.value, old.value, why, now, fields.get("reason_code"))
            return self._fetch(c, job_id)

    def note(self, job_id: int, why: str, code: str | None = None) -> None:
        """Append an event without a state change (from and to are the current state)."""
        with self._tx() as c:
            state = self._state_of(c, job_id)
            self._event(c, job_id, state.value, state.value, why, code=code)

    def set_output(
        self,
        job_id: int,
        language: str,
        kind: str = "video",
        *,
        state: OutputState,
        path: str | None = None,
        bytes: int | None = None,
        sha256: str | None = None,
        error_code: str | None = None,
        dubbed_asset_id: str | None = None,
    ) -> None:
        """Insert or update one output row.

        A None argument leaves that column as it was (a download can record the dubbed asset
        id first and the file later); ``error_code`` is cleared unless the state is failed.
        """
        if kind not in KINDS:
            raise ValueError(f"unknown output kind {kind!r}; choose from {sorted(KINDS)}")
        state = OutputState(state)
        with self._tx() as c:
            self._state_of(c, job_id)
            c.execute(
                "INSERT INTO outputs (job_id, language, kind, state, path, bytes, sha256,"
                " error_code, dubbed_asset_id, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (job_id, language, kind) DO UPDATE SET"
                " state = excluded.state,"
                " path = COALESCE(excluded.path, path),"
                " bytes = COALESCE(excluded.bytes, bytes),"
                " sha256 = COALESCE(excluded.sha256, sha256),"
                " error_code = CASE WHEN excluded.state = 'failed'"
                "   THEN COALESCE(excluded.error_code, error_code) END,"
                " dubbed_asset_id = COALESCE(excluded.dubbed_asset_id, dubbed_asset_id),"
                " updated_at = excluded.updated_at",
                (
                    job_id,
                    language,
                    kind,
                    state.value,
                    None if path is None else to_db(path),
                    bytes,
                    sha256,
                    _text(error_code) if state is OutputState.FAILED else None,
                    dubbed_asset_id,
                    self._now(),
                ),
            )

    def set_meta(self, key: str, value: str | None) -> None:
        """Set a daemon status value (heartbeat, pause reasons); None deletes it."""
        with self._tx() as c:
            if value is None:
                c.execute("DELETE FROM meta WHERE key = ?", (key,))
            else:
                c.execute(
                    "INSERT INTO meta (key, value) VALUES (?, ?)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (key, value),
                )

    # --- reads ---------------------------------------------------------------------------------

    def _jobs(self, where: str, params: Sequence[Any], tail: str = "") -> list[Job]:
        with self._lock:
            rows = self._conn.execute(f"{_JOB_SELECT} WHERE {where} {tail}", params).fetchall()
        return [_job(r) for r in rows]

    def get(self, job_id: int) -> Job:
        """The job with this id; KeyError if there is none."""
        with self._tx(write=False) as c:
            return self._fetch(c, job_id)

    def find_job(self, watch: str, source_path: str, size: int, mtime_ns: int) -> Job | None:
        """The newest job for exactly this file version (path, size and mtime_ns)."""
        jobs = self._jobs(
            "watch = ? AND source_path = ? AND size = ? AND mtime_ns = ?",
            (watch, to_db(source_path), size, mtime_ns),
            "ORDER BY id DESC LIMIT 1",
        )
        return jobs[0] if jobs else None

    def jobs_for_path(
        self, watch: str, source_path: str, states: Iterable[JobState] | None = None
    ) -> list[Job]:
        """Every job for this path (any file version), newest first, optionally by state."""
        where, params = "watch = ? AND source_path = ?", [watch, to_db(source_path)]
        if states is not None:
            where += " AND state IN (SELECT value FROM json_each(?))"
            params.append(json.dumps([s.value for s in _states(states)]))
        return self._jobs(where, params, "ORDER BY id DESC")

    def jobs_with_hash(self, sha256: str, states: Iterable[JobState] | None = None) -> list[Job]:
        """Every job for this content hash, oldest first (twins of a file waiting their turn)."""
        where, params = "sha256 = ?", [sha256]
        if states is not None:
            where += " AND state IN (SELECT value FROM json_each(?))"
            params.append(json.dumps([s.value for s in _states(states)]))
        return self._jobs(where, params, "ORDER BY id")

    def find_reusable(
        self,
        sha256: str,
        source_language: str,
        targets: Sequence[str],
        kinds: Sequence[str] = ("video",),
    ) -> Job | None:
        """The newest done job that dubbed identical content into the same set of targets.

        Every output of ``kinds`` for those targets must be done; the caller still checks the
        files exist before linking them instead of paying for the dub again.
        """
        wanted = set(targets)
        needed = {(lang, kind) for lang in wanted for kind in kinds}
        with self._tx(write=False) as c:
            rows = c.execute(
                f"{_JOB_SELECT} WHERE sha256 = ? AND source_language = ? AND state = ?"
                " ORDER BY id DESC",
                (sha256, source_language, JobState.DONE.value),
            ).fetchall()
            for row in rows:
                job = _job(row)
                if set(job.targets) != wanted:
                    continue
                done = {
                    (r["language"], r["kind"])
                    for r in c.execute(
                        "SELECT language, kind FROM outputs WHERE job_id = ? AND state = ?",
                        (job.id, OutputState.DONE.value),
                    )
                }
                if needed <= done:
                    return job
        return None

    def due(
        self,
        states: Iterable[JobState],
        now: float,
        limit: int = 100,
        exclude_ids: Collection[int] = (),
        exclude_watches: Collection[str] = (),
    ) -> list[Job]:
        """Jobs in ``states`` whose next attempt is due, oldest due first, minus those running
        and those of held watches."""
        return self._jobs(
            "state IN (SELECT value FROM json_each(?)) AND next_attempt_at <= ?"
            " AND id NOT IN (SELECT value FROM json_each(?))"
            " AND watch NOT IN (SELECT value FROM json_each(?))",
            (
                json.dumps([s.value for s in _states(states)]),
                now,
                json.dumps(list(exclude_ids)),
                json.dumps(sorted(exclude_watches)),
            ),
            f"ORDER BY next_attempt_at, id LIMIT {int(limit)}",
        )

    def next_due_at(self, states: Iterable[JobState], after: float | None = None) -> float | None:
        """The earliest next_attempt_at among jobs in ``states`` (None when there are none);
        with ``after``, the earliest one later than that."""
        with self._lock:
            row = self._conn.execute(
                "SELECT MIN(next_attempt_at) FROM jobs"
                " WHERE state IN (SELECT value FROM json_each(?)) AND next_attempt_at > ?",
                (
                    json.dumps([s.value for s in _states(states)]),
                    -math.inf if after is None else after,
                ),
            ).fetchone()
        return None if row[0] is None else float(row[0])

    def count_in(self, states: Iterable[JobState]) -> int:
        """How many jobs are in any of ``states``."""
        with self._lock:
            row = self._conn.execute(
                "SELECT COUNT(*) FROM jobs WHERE state IN (SELECT value FROM json_each(?))",
                (json.dumps([s.value for s in _states(states)]),),
            ).fetchone()
        return int(row[0])

    def counts(self) -> dict[str, int]:
        """Jobs per state, every JobState present (0 when none)."""
        result = {s.value: 0 for s in JobState}
        with self._lock:
            for state, n in self._conn.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state"):
                result[state] = int(n)
        return result

    def list_jobs(
        self,
        *,
        states: Iterable[JobState] | None = None,
        watch: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Job]:
        """Jobs newest first, optionally filtered by state and watch."""
        where, params = ["1"], []
        if states is not None:
            where.append("state IN (SELECT value FROM json_each(?))")
            params.append(json.dumps([s.value for s in _states(states)]))
        if watch is not None:
            where.append("watch = ?")
            params.append(watch)
        return self._jobs(
            " AND ".join(where), params, f"ORDER BY id DESC LIMIT {int(limit)} OFFSET {int(offset)}"
        )

    def outputs(self, job_id: int) -> list[Output]:
        """The job's output rows, by language then kind."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT job_id, language, kind, state, path, bytes, sha256, error_code,"
                " dubbed_asset_id, updated_at FROM outputs WHERE job_id = ?"
                " ORDER BY language, kind",
                (job_id,),
            ).fetchall()
        return [_output(r) for r in rows]

    def output_written_by(self, path: str, sha256: str) -> int | None:
        """The job that wrote exactly this file (same path and content), if any.

        Lets a new version of a source replace the outputs of its previous version, while
        a file we never wrote at an output name is never overwritten.
        """
        with self._lock:
            row = self._conn.execute(
                "SELECT job_id FROM outputs WHERE path = ? AND sha256 = ? AND state = 'done'"
                " ORDER BY job_id DESC LIMIT 1",
                (to_db(path), sha256),
            ).fetchone()
        return int(row[0]) if row else None

    def events(self, job_id: int) -> list[Event]:
        """The job's history in the order it happened."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, job_id, at, from_state, to_state, why, reason_code FROM events"
                " WHERE job_id = ? ORDER BY id",
                (job_id,),
            ).fetchall()
        return [Event(**dict(r)) for r in rows]

    def count_reasons(self, job_id: int, codes: Collection[str]) -> int:
        """How many of the job's events carry one of ``codes`` (the lifecycle caps)."""
        marks = ", ".join("?" * len(codes))
        with self._lock:
            row = self._conn.execute(
                f"SELECT count(*) FROM events WHERE job_id = ? AND reason_code IN ({marks})",  # noqa: S608 - placeholders only
                (job_id, *codes),
            ).fetchone()
        return int(row[0])

    def state_changes_after(
        self, event_id: int, to_states: Iterable[JobState], limit: int = 100
    ) -> list[Event]:
        """State changes (not notes) into ``to_states`` with an event id above ``event_id``,
        oldest first: the notifier's feed, resumable from the last id it handled."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, job_id, at, from_state, to_state, why, reason_code FROM events"
                " WHERE id > ? AND to_state IN (SELECT value FROM json_each(?))"
                " AND (from_state IS NULL OR from_state != to_state)"
                " ORDER BY id LIMIT ?",
                (event_id, json.dumps([s.value for s in _states(to_states)]), int(limit)),
            ).fetchall()
        return [Event(**dict(r)) for r in rows]

    def last_event_id(self) -> int:
        """The newest event's id (0 when there is none)."""
        with self._lock:
            row = self._conn.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()
        return int(row[0])

    def usage_since(self, since: float) -> tuple[int, int]:
        """(jobs submitted to Synthesia since ``since``, their total source bytes).

        A submission is an ``uploaded -> dubbing`` event; a job submitted twice counts twice,
        as it was paid twice. Feeds limits.max_jobs_per_day / max_bytes_per_day.
        """
        with self._lock:
            row = self._conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(j.size), 0) FROM events e"
                " JOIN jobs j ON j.id = e.job_id"
                " WHERE e.to_state = ? AND e.from_state = ? AND e.at >= ?",
                (JobState.DUBBING.value, JobState.UPLOADED.value, since),
            ).fetchone()
        return int(row[0]), int(row[1])

    def dub_history(self, limit: int = 200) -> list[tuple[float | None, float]]:
        """(video seconds, seconds spent dubbing) of the newest finished dubs, newest first.

        A dub's time runs from its ``uploaded -> dubbing`` event to the next event that left
        ``dubbing``; it feeds the estimate of how long a new dub will take (estimate.py).
        """
        with self._lock:
            rows = self._conn.execute(
                "SELECT j.duration_s, MIN(o.at) - s.at FROM events s"
                " JOIN jobs j ON j.id = s.job_id"
                " JOIN events o ON o.job_id = s.job_id AND o.id > s.id"
                "  AND o.from_state = ? AND o.to_state != ?"
                " WHERE s.to_state = ? AND s.from_state = ?"
                " GROUP BY s.id ORDER BY s.id DESC LIMIT ?",
                (
                    JobState.DUBBING.value,
                    JobState.DUBBING.value,
                    JobState.DUBBING.value,
                    JobState.UPLOADED.value,
                    limit,
                ),
            ).fetchall()
        return [(None if r[0] is None else float(r[0]), float(r[1])) for r in rows]

    def oldest_queued_at(self) -> float | None:
        """Since when the longest-waiting queued job has been queued (None when none are)."""
        with self._lock:
            row = self._conn.execute(
                "SELECT MIN(state_changed_at) FROM jobs WHERE state = ?",
                (JobState.QUEUED.value,),
            ).fetchone()
        return None if row[0] is None else float(row[0])

    def add_api_reads(self, node: str, endpoint: str, bucket: int, count: int) -> None:
        """Add ``count`` reads of ``endpoint`` by ``node`` in the period starting at ``bucket``
        (unix seconds); rows older than two days go (only the last 24 hours are ever read)."""
        with self._tx() as c:
            c.execute(
                "INSERT INTO api_reads (node, endpoint, bucket, count) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (endpoint, bucket, node)"
                " DO UPDATE SET count = count + excluded.count",
                (node, endpoint, bucket, count),
            )
            c.execute("DELETE FROM api_reads WHERE bucket < ?", (bucket - 2 * 86_400,))

    def api_reads_since(self, endpoint: str, since: float) -> dict[int, int]:
        """Reads of ``endpoint`` per period (start, unix seconds) from ``since`` on, all nodes."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT bucket, SUM(count) FROM api_reads WHERE endpoint = ? AND bucket >= ?"
                " GROUP BY bucket",
                (endpoint, since),
            ).fetchall()
        return {int(r[0]): int(r[1]) for r in rows}

    def get_meta(self, key: str) -> str | None:
        """A daemon status value, or None."""
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

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
