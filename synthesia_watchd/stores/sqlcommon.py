"""The domain operations in SQL both backends speak (SQLite 3.35+ and PostgreSQL).

Standard SQL only: ``IN (?, ...)`` lists instead of ``json_each``, ``INSERT ... RETURNING``,
``ON CONFLICT ... DO UPDATE``. A backend supplies connections (`SqlConn`: ``?`` placeholders,
rows as mappings, row counts) and transactions; every compare-and-set is an
``UPDATE ... WHERE id = ? AND state = ?`` whose row count says whether it applied, so it
holds on a shared database where another node may move the job between read and write.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Unpack

from synthesia_watchd.domain.errors import DuplicateJob, DuplicateKey, LedgerError, StaleTransition
from synthesia_watchd.domain.names import printable, to_db
from synthesia_watchd.domain.states import ACTIVE, JobState, OutputState, can_transition

from .base import (
    KINDS,
    Job,
    JobFields,
    Lease,
    encode_fields,
    encode_settings,
    encode_targets,
    stale,
    states_of,
    text,
)
from .nodepaths import output_key, source_key, source_where
from .sqlbase import OUTPUT_COLUMNS, SqlConn, marks, one
from .sqlreads import SqlReads


def _duplicate(source_path: str, existing: int) -> DuplicateJob:
    return DuplicateJob(
        f"{source_path} with this content already has an active job (#{existing})", existing
    )


class SqlStore(SqlReads):
    """`LedgerStore` on top of a backend's connections and transactions: the writes."""

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
        key = source_key(self._paths, watch, source_path, settings)
        row = {
            "watch": watch, "source_path": to_db(source_path),
            "rel_path": None if key is None else to_db(key), "size": size, "mtime_ns": mtime_ns,
            "sha256": sha256, "source_language": source_language, "targets": targets_json,
            "state": state.value, "output_dir": to_db(output_dir), "settings": settings_json,
            "last_error": text(last_error), "duration_s": duration_s, "reason_code": reason_code,
        }  # fmt: skip
        try:
            return self._insert_job(row, source_path, key, kinds, why)
        except DuplicateKey:
            pass  # another node inserted the same content first (PostgreSQL's unique index)
        assert sha256 is not None
        existing = self._active_with_content(watch, source_path, key, sha256)
        if existing is None:
            raise LedgerError(f"job for {source_path} refused as a duplicate, but none is active")
        raise _duplicate(source_path, existing)

    def _active_with_content(
        self,
        watch: str,
        source_path: str,
        key: str | None,
        sha256: str,
        c: SqlConn | None = None,
    ) -> int | None:
        """The active job of this watch, file (its relative path) and content, if any."""
        values = sorted(s.value for s in ACTIVE)
        where, params = source_where(
            watch,
            source_path,
            key,
            f" AND sha256 = ? AND state IN ({marks(values)})",
            (sha256, *values),
        )
        sql = f"SELECT id FROM jobs WHERE {where} ORDER BY id LIMIT 1"  # noqa: S608
        if c is not None:
            row = one(c, sql, params)
        else:
            with self._read() as r:
                row = one(r, sql, params)
        return None if row is None else int(row["id"])

    def _insert_job(
        self, row: dict[str, Any], source_path: str, key: str | None, kinds: list[str], why: str
    ) -> Job:
        """Insert the job's row (columns as stored), its pending outputs and first event."""
        with self._tx() as c:
            sha256, state = row["sha256"], JobState(row["state"])
            if sha256 is not None and state in ACTIVE:
                existing = self._active_with_content(row["watch"], source_path, key, sha256, c)
                if existing is not None:
                    raise _duplicate(source_path, existing)
            now = self._now()
            for column in ("next_attempt_at", "created_at", "updated_at", "state_changed_at"):
                row[column] = now
            [made] = c.rows(
                f"INSERT INTO jobs ({', '.join(row)})"  # noqa: S608 - fixed column names
                f" VALUES ({marks(list(row))}) RETURNING id",
                list(row.values()),
            )
            job_id = int(made["id"])
            for lang in json.loads(row["targets"]):
                for kind in kinds:
                    c.run(
                        "INSERT INTO outputs (job_id, language, kind, state, updated_at)"
                        " VALUES (?, ?, ?, ?, ?)",
                        (job_id, lang, kind, OutputState.PENDING.value, now),
                    )
            self._event(c, job_id, None, state.value, why, now, row["reason_code"])
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
        ``path`` is this node's; it is also recorded relative to the watch's output root, so
        every node finds the file under its own.
        """
        if kind not in KINDS:
            raise ValueError(f"unknown output kind {kind!r}; choose from {sorted(KINDS)}")
        state = OutputState(state)
        with self._tx() as c:
            job = one(c, "SELECT watch, settings FROM jobs WHERE id = ?", (job_id,))
            if job is None:
                raise KeyError(f"no job {job_id} in the ledger")
            key = None
            if path is not None:
                key = output_key(self._paths, job["watch"], job["settings"], path)
            c.run(
                f"INSERT INTO outputs ({OUTPUT_COLUMNS}, rel_path)"  # noqa: S608 - fixed names
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (job_id, language, kind) DO UPDATE SET"
                " state = excluded.state,"
                " rel_path = CASE WHEN excluded.path IS NULL THEN outputs.rel_path"
                "   ELSE excluded.rel_path END,"
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
                    None if key is None else to_db(key),
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
