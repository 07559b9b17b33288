"""What the SQL both backends speak is built on: connections as the shared code sees them
(``?`` placeholders, rows as mappings, row counts), IN lists, the due-work filter, and the
core every store has (transactions, a job by id, jobs by a WHERE clause)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Iterable, Sequence
from types import TracebackType
from typing import Any, Protocol, Self

from synthesia_watchd.domain.pathmap import PathMap
from synthesia_watchd.domain.states import JobState

from .base import (
    JOB_COLUMNS,
    Job,
    job_from_row,
    states_of,
)
from .nodepaths import localize

JOB_SELECT = f"SELECT {', '.join(JOB_COLUMNS)} FROM jobs"  # noqa: S608 - fixed column names
OUTPUT_COLUMNS = (
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


#: One statement of a schema step, or a data step run on the same transaction's connection.
MigrationStep = str | Callable[[SqlConn], None]


def run_step(c: SqlConn, statement: MigrationStep) -> None:
    """Run one statement of a schema step (SQL, or a data step given the connection)."""
    if isinstance(statement, str):
        c.run(statement)
    else:
        statement(c)


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
    only_watches: Collection[str] | None = None,
) -> tuple[str, list[Any]]:
    """WHERE clause and parameters of due work: in ``states``, due by ``now``, not excluded
    (and, with ``only_watches``, of those watches only)."""
    values = [s.value for s in states_of(states)]
    where = f"state IN ({marks(values)}) AND next_attempt_at <= ?"
    params: list[Any] = [*values, now]
    if exclude_ids:
        where += f" AND id NOT IN ({marks(list(exclude_ids))})"
        params += list(exclude_ids)
    if exclude_watches:
        where += f" AND watch NOT IN ({marks(sorted(exclude_watches))})"
        params += sorted(exclude_watches)
    if only_watches is not None:
        where += f" AND watch IN ({marks(sorted(only_watches))})"
        params += sorted(only_watches)
    return where, params


class SqlCore:
    """A backend's connections and transactions, and the reads every operation needs."""

    location: str
    _now: Callable[[], float]
    #: This node's watch folders: what relative paths resolve against (none: as recorded).
    _paths: PathMap = PathMap()

    def use_paths(self, paths: PathMap) -> None:
        """Resolve jobs and outputs through these watch folders (this node's config) from
        now on; a reload passes the new ones."""
        self._paths = paths

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

    def _job(self, row: dict[str, Any]) -> Job:
        """A job from its row, its paths as this node sees them."""
        return localize(job_from_row(row), self._paths)

    def _fetch(self, c: SqlConn, job_id: int) -> Job:
        row = one(c, f"{JOB_SELECT} WHERE id = ?", (job_id,))
        if row is None:
            raise KeyError(f"no job {job_id} in the ledger")
        return self._job(row)

    def _jobs(self, where: str, params: Sequence[Any], tail: str = "") -> list[Job]:
        with self._read() as c:
            rows = c.rows(f"{JOB_SELECT} WHERE {where} {tail}", params)
        return [self._job(r) for r in rows]
