"""The domain operations in SQL both backends speak (SQLite 3.35+ and PostgreSQL).

Standard SQL only: ``IN (?, ...)`` lists instead of ``json_each``, ``INSERT ... RETURNING``,
``ON CONFLICT ... DO UPDATE``. A backend supplies connections (`SqlConn`: ``?`` placeholders,
rows as mappings, row counts) and transactions; every compare-and-set is an
``UPDATE ... WHERE id = ? AND state = ?`` whose row count says whether it applied, so it
holds on a shared database where another node may move the job between read and write.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Protocol, Self, Unpack

from synthesia_watchd.errors import DuplicateJob, DuplicateKey, LedgerError, StaleTransition
from synthesia_watchd.names import printable, to_db
from synthesia_watchd.states import ACTIVE, JobState, OutputState, can_transition

from .base import (
    JOB_COLUMNS,
    KINDS,
    Event,
    Job,
    JobFields,
    Lease,
    Output,
    encode_fields,
    encode_settings,
    encode_targets,
    job_from_row,
    output_from_row,
    stale,
    states_of,
    text,
)

JOB_SELECT = f"SELECT {', '.join(JOB_COLUMNS)} FROM jobs"  # noqa: S608 - fixed column names
_OUTPUT_COLUMNS = (
    "job_id, language, kind, state, path, bytes, sha256, error_code, dubbed_asset_id, updated_at"
)


class SqlConn(Protocol):
    """One connection inside a transaction, as the shared SQL uses it."""

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Execute; the number of rows changed."""
        ...

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Execute a query; every row as a mapping of column name to value."""
        ...


def marks(values: Sequence[Any]) -> str:
    """``?, ?, ?`` for an IN list (``NULL`` for an empty one: matches nothing)."""
    return ", ".join("?" for _ in values) or "NULL"


def one(c: SqlConn, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
    rows = c.rows(sql, params)
    return rows[0] if rows else None


def due_filter(
    states: Iterable[JobState],
    now: float,
    exclude_ids: Collection[int] = (),
    exclude_watches: Collection[str] = (),
) -> tuple[str, list[Any]]:
    """WHERE clause and parameters of due work: in ``states``, due by ``now``, not excluded."""
    values = [s.value for s in states_of(states)]
    where = f"state IN ({marks(values)}) AND next_attempt_at <= ?"
    params: list[Any] = [*values, now]
    if exclude_ids:
        where += f" AND id NOT IN ({marks(list(exclude_ids))})"
        params += list(exclude_ids)
    if exclude_watches:
        where += f" AND watch NOT IN ({marks(sorted(exclude_watches))})"
        params += sorted(exclude_watches)
    return where, params


def _duplicate(source_path: str, existing: int) -> DuplicateJob:
    return DuplicateJob(
        f"{source_path} with this content already has an active job (#{existing})", existing
    )


class SqlStore:
    """`LedgerStore` on top of a backend's connections and transactions."""

    location: str
    _now: Callable[[], float]

    def close(self) -> None:
        """Release the connections (idempotent)."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _tx(self) -> contextlib.AbstractContextManager[SqlConn]:
        """A write transaction: committed when the block ends, rolled back on an exception."""
        raise NotImplementedError

    def _read(self) -> contextlib.AbstractContextManager[SqlConn]:
        """A connection for reads (one consistent snapshot per call)."""
        raise NotImplementedError

    # --- helpers ---------------------------------------------------------------------------

    @staticmethod
    def _state_of(c: SqlConn, job_id: int) -> JobState:
        row = one(c, "SELECT state FROM jobs WHERE id = ?", (job_id,))
        if row is None:
            raise KeyError(f"no job {job_id} in the ledger")
        return JobState(row["state"])

    @staticmethod
    def _fetch(c: SqlConn, job_id: int) -> Job:
        row = one(c, f"{JOB_SELECT} WHERE id = ?", (job_id,))
        if row is None:
            raise KeyError(f"no job {job_id} in the ledger")
        return job_from_row(row)

    def _event(
        self,
        c: SqlConn,
        job_id: int,
        src: str | None,
        dst: str | None,
        why: str,
        at: float,
        code: str | None = None,
    ) -> None:
        c.run(
            "INSERT INTO events (job_id, at, from_state, to_state, why, reason_code)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (job_id, at, src, dst, printable(why), code),
        )

    def _jobs(self, where: str, params: Sequence[Any], tail: str = "") -> list[Job]:
        with self._read() as c:
            rows = c.rows(f"{JOB_SELECT} WHERE {where} {tail}", params)
        return [job_from_row(r) for r in rows]

    def _compare_and_set(
        self,
        c: SqlConn,
        job_id: int,
        expected: JobState | Iterable[JobState],
        new: JobState | None,
        fields: Mapping[str, Any],
        lease: Lease | None = None,
    ) -> tuple[JobState, float]:
        """Write ``fields`` (and ``new``) only if the job is still in an expected state.

        The UPDATE names the state it read; zero rows changed means someone moved the job
        in between (or it is in none of ``expected``): StaleTransition, nothing written.
        With ``lease``, the job must also still be leased to that node, unexpired: a node
        that stalled past its lease cannot act on a job another node has claimed since.
        """
        allowed = states_of(expected)
        pairs = encode_fields(fields)
        old = self._state_of(c, job_id)
        if old not in allowed or (new is not None and not can_transition(old, new)):
            stale(job_id, old, allowed, new)
        now = self._now()
        pairs.append(("updated_at", now))
        if new is not None:
            pairs += [("state", new.value), ("state_changed_at", now)]
        sets = ", ".join(f"{name} = ?" for name, _ in pairs)
        where = "id = ? AND state = ?"
        params: list[Any] = [job_id, old.value]
        if lease is not None:
            where += " AND lease_node = ? AND lease_until >= ?"
            params += [lease.node, now]
        changed = c.run(
            f"UPDATE jobs SET {sets} WHERE {where}",  # noqa: S608 - checked names
            (*(v for _, v in pairs), *params),
        )
        if changed != 1:
            found = self._state_of(c, job_id)
            if lease is not None and found is old:
                raise StaleTransition(
                    f"job {job_id} is no longer leased to {lease.node}; another node may "
                    "have claimed it"
                )
            stale(job_id, found, (old,), new)
        return old, now

    # --- writes ----------------------------------------------------------------------------

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
        the scheduler can never see it queued and spend on it. DuplicateJob when the same
        content at the same path already has an active job: two nodes (or two versions of a
        file with identical bytes) make one job.
        """
        targets_json = encode_targets(targets)
        settings_json = encode_settings(settings)
        kinds = list(dict.fromkeys(kinds))
        bad = sorted(set(kinds) - KINDS)
        if bad or not kinds:
            raise ValueError(f"unknown output kinds {bad}; choose from {sorted(KINDS)}")
        state = JobState(state)
        try:
            return self._insert_job(
                watch, source_path, size, mtime_ns, sha256, source_language, targets_json,
                output_dir, settings_json, kinds, state, why, last_error, duration_s, reason_code,
            )  # fmt: skip
        except DuplicateKey:
            pass  # another node inserted the same content first (PostgreSQL's unique index)
        assert sha256 is not None
        existing = self._active_with_content(watch, source_path, sha256)
        if existing is None:
            raise LedgerError(f"job for {source_path} refused as a duplicate, but none is active")
        raise _duplicate(source_path, existing)

    def _active_with_content(
        self, watch: str, source_path: str, sha256: str, c: SqlConn | None = None
    ) -> int | None:
        """The active job of this watch, path and content, if any."""
        values = sorted(s.value for s in ACTIVE)
        sql = (
            "SELECT id FROM jobs WHERE watch = ? AND source_path = ? AND sha256 = ?"  # noqa: S608
            f" AND state IN ({marks(values)}) ORDER BY id LIMIT 1"
        )
        params = (watch, to_db(source_path), sha256, *values)
        if c is not None:
            row = one(c, sql, params)
        else:
            with self._read() as r:
                row = one(r, sql, params)
        return None if row is None else int(row["id"])

    def _insert_job(
        self,
        watch: str,
        source_path: str,
        size: int,
        mtime_ns: int,
        sha256: str | None,
        source_language: str,
        targets_json: str,
        output_dir: str,
        settings_json: str,
        kinds: Sequence[str],
        state: JobState,
        why: str,
        last_error: str | None,
        duration_s: float | None,
        reason_code: str | None,
    ) -> Job:
        with self._tx() as c:
            if sha256 is not None and state in ACTIVE:
                existing = self._active_with_content(watch, source_path, sha256, c)
                if existing is not None:
                    raise _duplicate(source_path, existing)
            now = self._now()
            [row] = c.rows(
                "INSERT INTO jobs (watch, source_path, size, mtime_ns, sha256, source_language,"
                " targets, state, next_attempt_at, output_dir, settings, created_at, updated_at,"
                " state_changed_at, last_error, duration_s, reason_code)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
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
                    text(last_error),
                    duration_s,
                    reason_code,
                ),
            )
            job_id = int(row["id"])
            for lang in json.loads(targets_json):
                for kind in kinds:
                    c.run(
                        "INSERT INTO outputs (job_id, language, kind, state, updated_at)"
                        " VALUES (?, ?, ?, ?, ?)",
                        (job_id, lang, kind, OutputState.PENDING.value, now),
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
        lease: Lease | None = None,
        **fields: Unpack[JobFields],
    ) -> Job:
        """Compare-and-set the job's state, write ``fields`` and append the event, atomically.

        Raises StaleTransition when the job is not in ``expected`` (another worker or the
        operator moved it), the state machine does not allow the move, or (``lease``) the
        job is no longer leased to that node.
        """
        new = JobState(new)
        with self._tx() as c:
            old, now = self._compare_and_set(c, job_id, expected, new, fields, lease)
            self._event(c, job_id, old.value, new.value, why, now, fields.get("reason_code"))
            return self._fetch(c, job_id)

    def update(
        self,
        job_id: int,
        *,
        expected: JobState | Iterable[JobState],
        why: str | None = None,
        lease: Lease | None = None,
        **fields: Unpack[JobFields],
    ) -> Job:
        """Write job fields without a state change, compare-and-set on the current state
        (and, with ``lease``, on the node still holding the job).

        With ``why``, also append an event whose from and to states are the current one.
        """
        with self._tx() as c:
            old, now = self._compare_and_set(c, job_id, expected, None, fields, lease)
            if why is not None:
                self._event(c, job_id, old.value, old.value, why, now, fields.get("reason_code"))
            return self._fetch(c, job_id)

    def note(self, job_id: int, why: str, code: str | None = None) -> None:
        """Append an event without a state change (from and to are the current state)."""
        with self._tx() as c:
            state = self._state_of(c, job_id)
            self._event(c, job_id, state.value, state.value, why, self._now(), code)

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
            c.run(
                f"INSERT INTO outputs ({_OUTPUT_COLUMNS})"  # noqa: S608 - fixed column names
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (job_id, language, kind) DO UPDATE SET"
                " state = excluded.state,"
                " path = COALESCE(excluded.path, outputs.path),"
                " bytes = COALESCE(excluded.bytes, outputs.bytes),"
                " sha256 = COALESCE(excluded.sha256, outputs.sha256),"
                " error_code = CASE WHEN excluded.state = 'failed'"
                "   THEN COALESCE(excluded.error_code, outputs.error_code) END,"
                " dubbed_asset_id = COALESCE(excluded.dubbed_asset_id, outputs.dubbed_asset_id),"
                " updated_at = excluded.updated_at",
                (
                    job_id,
                    language,
                    kind,
                    state.value,
                    None if path is None else to_db(path),
                    bytes,
                    sha256,
                    text(error_code) if state is OutputState.FAILED else None,
                    dubbed_asset_id,
                    self._now(),
                ),
            )

    def set_meta(self, key: str, value: str | None) -> None:
        """Set a daemon status value (heartbeat, pause reasons); None deletes it."""
        with self._tx() as c:
            if value is None:
                c.run("DELETE FROM meta WHERE key = ?", (key,))
            else:
                c.run(
                    "INSERT INTO meta (key, value) VALUES (?, ?)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (key, value),
                )

    # --- reads -----------------------------------------------------------------------------

    def get(self, job_id: int) -> Job:
        """The job with this id; KeyError if there is none."""
        with self._read() as c:
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
        where = "watch = ? AND source_path = ?"
        params: list[Any] = [watch, to_db(source_path)]
        if states is not None:
            values = [s.value for s in states_of(states)]
            where += f" AND state IN ({marks(values)})"
            params += values
        return self._jobs(where, params, "ORDER BY id DESC")

    def jobs_with_hash(self, sha256: str, states: Iterable[JobState] | None = None) -> list[Job]:
        """Every job for this content hash, oldest first (twins of a file waiting their turn)."""
        where, params = "sha256 = ?", [sha256]
        if states is not None:
            values = [s.value for s in states_of(states)]
            where += f" AND state IN ({marks(values)})"
            params += values
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
        with self._read() as c:
            rows = c.rows(
                f"{JOB_SELECT} WHERE sha256 = ? AND source_language = ? AND state = ?"
                " ORDER BY id DESC",
                (sha256, source_language, JobState.DONE.value),
            )
            for row in rows:
                job = job_from_row(row)
                if set(job.targets) != wanted:
                    continue
                done = {
                    (r["language"], r["kind"])
                    for r in c.rows(
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
        where, params = due_filter(states, now, exclude_ids, exclude_watches)
        return self._jobs(where, params, f"ORDER BY next_attempt_at, id LIMIT {int(limit)}")

    def next_due_at(self, states: Iterable[JobState]) -> float | None:
        """The earliest next_attempt_at among jobs in ``states`` (None when there are none)."""
        values = [s.value for s in states_of(states)]
        with self._read() as c:
            row = one(
                c,
                f"SELECT MIN(next_attempt_at) AS t FROM jobs WHERE state IN ({marks(values)})",  # noqa: S608
                values,
            )
        return None if row is None or row["t"] is None else float(row["t"])

    def count_in(self, states: Iterable[JobState]) -> int:
        """How many jobs are in any of ``states``."""
        values = [s.value for s in states_of(states)]
        with self._read() as c:
            row = one(
                c,
                f"SELECT COUNT(*) AS n FROM jobs WHERE state IN ({marks(values)})",  # noqa: S608
                values,
            )
        return 0 if row is None else int(row["n"])

    def counts(self) -> dict[str, int]:
        """Jobs per state, every JobState present (0 when none)."""
        result = {s.value: 0 for s in JobState}
        with self._read() as c:
            for row in c.rows("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state"):
                result[row["state"]] = int(row["n"])
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
        where: list[str] = ["1 = 1"]
        params: list[Any] = []
        if states is not None:
            values = [s.value for s in states_of(states)]
            where.append(f"state IN ({marks(values)})")
            params += values
        if watch is not None:
            where.append("watch = ?")
            params.append(watch)
        return self._jobs(
            " AND ".join(where), params, f"ORDER BY id DESC LIMIT {int(limit)} OFFSET {int(offset)}"
        )

    def outputs(self, job_id: int) -> list[Output]:
        """The job's output rows, by language then kind."""
        with self._read() as c:
            rows = c.rows(
                f"SELECT {_OUTPUT_COLUMNS} FROM outputs"  # noqa: S608 - fixed column names
                " WHERE job_id = ? ORDER BY language, kind",
                (job_id,),
            )
        return [output_from_row(r) for r in rows]

    def output_written_by(self, path: str, sha256: str) -> int | None:
        """The job that wrote exactly this file (same path and content), if any.

        Lets a new version of a source replace the outputs of its previous version, while
        a file we never wrote at an output name is never overwritten.
        """
        with self._read() as c:
            row = one(
                c,
                "SELECT job_id FROM outputs WHERE path = ? AND sha256 = ? AND state = 'done'"
                " ORDER BY job_id DESC LIMIT 1",
                (to_db(path), sha256),
            )
        return None if row is None else int(row["job_id"])

    def events(self, job_id: int) -> list[Event]:
        """The job's history in the order it happened."""
        with self._read() as c:
            rows = c.rows(
                "SELECT id, job_id, at, from_state, to_state, why, reason_code FROM events"
                " WHERE job_id = ? ORDER BY id",
                (job_id,),
            )
        return [Event(**r) for r in rows]

    def state_changes_after(
        self, event_id: int, to_states: Iterable[JobState], limit: int = 100
    ) -> list[Event]:
        """State changes (not notes) into ``to_states`` with an event id above ``event_id``,
        oldest first: the notifier's feed, resumable from the last id it handled."""
        values = [s.value for s in states_of(to_states)]
        with self._read() as c:
            rows = c.rows(
                "SELECT id, job_id, at, from_state, to_state, why, reason_code FROM events"  # noqa: S608
                f" WHERE id > ? AND to_state IN ({marks(values)})"
                " AND (from_state IS NULL OR from_state != to_state)"
                f" ORDER BY id LIMIT {int(limit)}",
                (event_id, *values),
            )
        return [Event(**r) for r in rows]

    def last_event_id(self) -> int:
        """The newest event's id (0 when there is none)."""
        with self._read() as c:
            row = one(c, "SELECT COALESCE(MAX(id), 0) AS n FROM events")
        return 0 if row is None else int(row["n"])

    def count_reasons(self, job_id: int, codes: Collection[str]) -> int:
        """How many of the job's events carry one of ``codes`` (the lifecycle caps)."""
        values = list(codes)
        with self._read() as c:
            row = one(
                c,
                "SELECT COUNT(*) AS n FROM events"  # noqa: S608 - placeholders only
                f" WHERE job_id = ? AND reason_code IN ({marks(values)})",
                (job_id, *values),
            )
        return 0 if row is None else int(row["n"])

    def usage_since(self, since: float) -> tuple[int, int]:
        """(jobs submitted to Synthesia since ``since``, their total source bytes).

        A submission is an ``uploaded -> dubbing`` event; a job submitted twice counts twice,
        as it was paid twice. Feeds limits.max_jobs_per_day / max_bytes_per_day.
        """
        with self._read() as c:
            row = one(
                c,
                "SELECT COUNT(*) AS n, COALESCE(SUM(j.size), 0) AS b FROM events e"
                " JOIN jobs j ON j.id = e.job_id"
                " WHERE e.to_state = ? AND e.from_state = ? AND e.at >= ?",
                (JobState.DUBBING.value, JobState.UPLOADED.value, since),
            )
        return (0, 0) if row is None else (int(row["n"]), int(row["b"]))

    def dub_history(self, limit: int = 200) -> list[tuple[float | None, float]]:
        """(video seconds, seconds spent dubbing) of the newest finished dubs, newest first.

        A dub's time runs from its ``uploaded -> dubbing`` event to the next event that left
        ``dubbing``; it feeds the estimate of how long a new dub will take (estimate.py).
        """
        dubbing = JobState.DUBBING.value
        with self._read() as c:
            rows = c.rows(
                "SELECT j.duration_s AS d, MIN(o.at) - s.at AS t FROM events s"
                " JOIN jobs j ON j.id = s.job_id"
                " JOIN events o ON o.job_id = s.job_id AND o.id > s.id"
                "  AND o.from_state = ? AND o.to_state != ?"
                " WHERE s.to_state = ? AND s.from_state = ?"
                " GROUP BY s.id, s.at, j.duration_s ORDER BY s.id DESC LIMIT ?",
                (dubbing, dubbing, dubbing, JobState.UPLOADED.value, limit),
            )
        return [(None if r["d"] is None else float(r["d"]), float(r["t"])) for r in rows]

    def oldest_queued_at(self) -> float | None:
        """Since when the longest-waiting queued job has been queued (None when none are)."""
        with self._read() as c:
            row = one(
                c,
                "SELECT MIN(state_changed_at) AS t FROM jobs WHERE state = ?",
                (JobState.QUEUED.value,),
            )
        return None if row is None or row["t"] is None else float(row["t"])

    def get_meta(self, key: str) -> str | None:
        """A daemon status value, or None."""
        with self._read() as c:
            row = one(c, "SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else str(row["value"])
