"""The ledger's queries in the SQL both backends speak: jobs by id, path, content, due time
and state; outputs, events and the figures `status`, budgets and estimates need."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from synthesia_watchd.domain.names import from_db
from synthesia_watchd.domain.states import JobState, OutputState

from .base import (
    Event,
    Job,
    Output,
    output_from_row,
    states_of,
)
from .nodepaths import output_path, output_where, source_where
from .sqlbase import JOB_SELECT, SqlCore, due_filter, marks, one


class SqlReads(SqlCore):
    """The read operations of `LedgerStore`."""

    # --- reads -----------------------------------------------------------------------------

    def get(self, job_id: int) -> Job:
        """The job with this id; KeyError if there is none."""
        with self._read() as c:
            return self._fetch(c, job_id)

    def find_job(self, watch: str, source_path: str, size: int, mtime_ns: int) -> Job | None:
        """The newest job for exactly this file version (path, size and mtime_ns); the path
        is this node's, matched through its watch folder's relative path."""
        key = self._paths.source_key(watch, source_path)
        where, params = source_where(
            watch, source_path, key, " AND size = ? AND mtime_ns = ?", (size, mtime_ns)
        )
        jobs = self._jobs(where, params, "ORDER BY id DESC LIMIT 1")
        return jobs[0] if jobs else None

    def jobs_for_path(
        self, watch: str, source_path: str, states: Iterable[JobState] | None = None
    ) -> list[Job]:
        """Every job for this path (any file version), newest first, optionally by state."""
        key = self._paths.source_key(watch, source_path)
        values = [] if states is None else [s.value for s in states_of(states)]
        also = f" AND state IN ({marks(values)})" if states is not None else ""
        where, params = source_where(watch, source_path, key, also, values)
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
                job = self._job(row)
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
        only_watches: Collection[str] | None = None,
    ) -> list[Job]:
        """Jobs in ``states`` whose next attempt is due, oldest due first, minus those running
        and those of held watches (with ``only_watches``, of those watches only)."""
        where, params = due_filter(states, now, exclude_ids, exclude_watches, only_watches)
        return self._jobs(where, params, f"ORDER BY next_attempt_at, id LIMIT {int(limit)}")

    def next_due_at(self, states: Iterable[JobState], after: float | None = None) -> float | None:
        """The earliest next_attempt_at among jobs in ``states`` (None when there are none);
        with ``after``, the earliest one later than that."""
        values = [s.value for s in states_of(states)]
        where = f"state IN ({marks(values)})"
        params: list[Any] = list(values)
        if after is not None:
            where += " AND next_attempt_at > ?"
            params.append(after)
        with self._read() as c:
            row = one(
                c,
                f"SELECT MIN(next_attempt_at) AS t FROM jobs WHERE {where}",  # noqa: S608
                params,
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
        """The job's output rows, by language then kind, their paths as this node sees them."""
        with self._read() as c:
            rows = c.rows(
                "SELECT o.job_id, o.language, o.kind, o.state, o.path, o.bytes, o.sha256,"
                " o.error_code, o.dubbed_asset_id, o.updated_at, o.rel_path, j.watch"
                " FROM outputs o JOIN jobs j ON j.id = o.job_id"
                " WHERE o.job_id = ? ORDER BY o.language, o.kind",
                (job_id,),
            )
        outs = []
        for r in rows:
            rel, watch = r.pop("rel_path"), r.pop("watch")
            out = output_from_row(r)
            if out.path is not None and rel is not None:
                local = output_path(self._paths, watch, from_db(rel), out.path)
                out = dataclasses.replace(out, path=local)
            outs.append(out)
        return outs

    def output_written_by(self, path: str, sha256: str) -> int | None:
        """The job that wrote exactly this file (same path and content), if any.

        Lets a new version of a source replace the outputs of its previous version, while
        a file we never wrote at an output name is never overwritten. ``path`` is this
        node's: an output another node wrote is matched by its relative path.
        """
        where, params = output_where(self._paths, path)
        with self._read() as c:
            row = one(
                c,
                "SELECT o.job_id FROM outputs o JOIN jobs j ON j.id = o.job_id"  # noqa: S608
                f" WHERE {where} AND o.sha256 = ? AND o.state = 'done'"
                " ORDER BY o.job_id DESC LIMIT 1",
                (*params, sha256),
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

    def unrecorded_submits_since(
        self, since: float, exclude_ids: Collection[int] = ()
    ) -> tuple[int, int]:
        """(jobs whose submit marker is set since ``since`` with no project recorded, their
        source bytes): POST /v2/dubbing may have gone out (a submit under way on some node,
        or one whose answer a crash lost) and is not among ``usage_since``'s submits."""
        where = "submit_started_at IS NOT NULL AND submit_started_at >= ? AND project_id IS NULL"
        params: list[Any] = [since]
        if exclude_ids:
            where += f" AND id NOT IN ({marks(list(exclude_ids))})"
            params += list(exclude_ids)
        with self._read() as c:
            row = one(
                c,
                f"SELECT COUNT(*) AS n, COALESCE(SUM(size), 0) AS b FROM jobs WHERE {where}",  # noqa: S608
                params,
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
