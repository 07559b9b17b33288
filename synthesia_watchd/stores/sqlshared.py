"""The SQL of nodes working together on one ledger, shared by both backends.

Leases: due work is claimed for a node until a time, renewed by its heartbeat, given back
when a step ends; a dead node's jobs are free again once its leases expire. Runner leases do
the same for work one node at a time may do (the start-up backfill, the daily spending check),
and each node keeps its own status record. Request windows:
every node's API requests are recorded, so all of them together stay inside the account's
per-minute, hour and day limits, and a restart no longer forgets the hour and day; a 429
seen by one node holds every node's requests. The same log is the one count of reads the
day's read budget plans with.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

from synthesia_watchd.domain.states import JobState

from .base import Job, Node, job_from_row
from .sqlbase import JOB_SELECT, SqlConn, due_filter, marks, one
from .sqlcommon import SqlStore

#: The meta key of the shared 429 gate (unix time until which no request goes).
_GATE_KEY = "api_hold_until"
#: Requests stay in the log at least this long (the day's read budget counts them).
DAY = 86_400.0


class SqlLedgerStore(SqlStore):
    """Every `LedgerStore` operation: the jobs (SqlStore) plus nodes working together."""

    #: How a claim's SELECT locks the rows it picks (PostgreSQL: skip rows another node is
    #: claiming); empty where a write transaction already excludes every other writer.
    _CLAIM_LOCK = ""
    #: The start of a request's ten-minute period (whole unix seconds), in the backend's SQL.
    _BUCKET_OF = "CAST(at / 600 AS INTEGER) * 600"

    # --- several nodes -------------------------------------------------------------------------

    def claim(
        self,
        states: Iterable[JobState],
        now: float,
        node: str,
        until: float,
        limit: int = 100,
        exclude_ids: Collection[int] = (),
        exclude_watches: Collection[str] = (),
    ) -> list[Job]:
        """Lease due jobs in ``states`` to ``node`` until ``until``, oldest due first.

        A job is free when it has no lease, its lease expired (its node died or stalled), or
        ``node`` holds it already. Two nodes claiming at once get disjoint jobs: on
        PostgreSQL the SELECT skips rows another claim has locked; SQLite runs one write
        transaction at a time.
        """
        free = "(lease_until IS NULL OR lease_until < ? OR lease_node = ?)"
        where, params = due_filter(states, now, exclude_ids, exclude_watches)
        where += f" AND {free}"
        params += [now, node]
        with self._tx() as c:
            picked = [
                int(r["id"])
                for r in c.rows(
                    f"SELECT id FROM jobs WHERE {where}"  # noqa: S608 - marks only
                    f" ORDER BY next_attempt_at, id LIMIT {int(limit)}{self._CLAIM_LOCK}",
                    params,
                )
            ]
            if not picked:
                return []
            # The UPDATE checks freeness again, so a row another claim took in between
            # (a backend without row locks) is left alone rather than shared.
            ids = [
                int(r["id"])
                for r in c.rows(
                    "UPDATE jobs SET lease_node = ?, lease_until = ?"  # noqa: S608 - marks only
                    f" WHERE id IN ({marks(picked)}) AND {free} RETURNING id",
                    (node, until, *picked, now, node),
                )
            ]
            if not ids:
                return []
            rows = c.rows(
                f"{JOB_SELECT} WHERE id IN ({marks(ids)}) ORDER BY next_attempt_at, id", ids
            )
        return [job_from_row(r) for r in rows]

    def renew(self, node: str, job_ids: Collection[int], until: float) -> int:
        """Extend ``node``'s leases on ``job_ids`` to ``until``; how many it still held."""
        ids = list(job_ids)
        if not ids:
            return 0
        with self._tx() as c:
            return c.run(
                f"UPDATE jobs SET lease_until = ?"  # noqa: S608 - marks only
                f" WHERE lease_node = ? AND id IN ({marks(ids)})",
                (until, node, *ids),
            )

    def release(self, node: str, job_ids: Collection[int]) -> None:
        """Give up ``node``'s leases on ``job_ids`` (finished work, a clean stop)."""
        ids = list(job_ids)
        if not ids:
            return
        with self._tx() as c:
            c.run(
                "UPDATE jobs SET lease_node = NULL, lease_until = NULL"  # noqa: S608
                f" WHERE lease_node = ? AND id IN ({marks(ids)})",
                (node, *ids),
            )

    def beat(self, node: str, now: float, *, pid: int | None, version: str | None) -> None:
        """Record that ``node`` is alive (first beat: it started now)."""
        with self._tx() as c:
            c.run(
                "INSERT INTO nodes (name, started_at, heartbeat_at, pid, version)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET"
                " heartbeat_at = excluded.heartbeat_at, pid = excluded.pid,"
                " version = excluded.version",
                (node, now, now, pid, version),
            )

    def nodes(self, now: float) -> list[Node]:
        """Every node that ever beat, with the jobs it holds unexpired leases on, by name."""
        with self._read() as c:
            rows = c.rows(
                "SELECT n.name, n.started_at, n.heartbeat_at, n.pid, n.version,"
                " (SELECT COUNT(*) FROM jobs j WHERE j.lease_node = n.name"
                "  AND j.lease_until >= ?) AS claimed"
                " FROM nodes n ORDER BY n.name",
                (now,),
            )
        return [Node(**{**r, "claimed": int(r["claimed"])}) for r in rows]

    # --- shared request windows ----------------------------------------------------------------

    def _serialize(self, c: SqlConn, key: str) -> None:
        """Make concurrent transactions on ``key`` take turns (SQLite: one writer anyway)."""

    def reserve_request(
        self,
        limit_class: str,
        endpoint: str,
        now: float,
        windows: Sequence[tuple[int, float]],
        *,
        node: str | None = None,
        margin: float = 0.0,
    ) -> float:
        """0.0 and the request recorded if it may go now; else the seconds to wait.

        Every node's requests count: ``windows`` are (limit, seconds) sliding windows over
        the requests recorded for this class and endpoint, and the shared 429 gate
        (``hold_requests_until``) holds everything. Requests older than the longest window
        are pruned as they leave it.
        """
        with self._tx() as c:
            self._serialize(c, f"api_requests {limit_class} {endpoint}")
            row = one(c, "SELECT value FROM meta WHERE key = ?", (_GATE_KEY,))
            wait = max(0.0, float(row["value"]) - now) if row else 0.0
            # Kept a day at least: the day's read budget counts reads from here too.
            longest = max([DAY, *(seconds for _, seconds in windows)])
            c.run(
                "DELETE FROM api_requests WHERE limit_class = ? AND endpoint = ? AND at <= ?",
                (limit_class, endpoint, now - longest),
            )
            for limit, seconds in windows:
                inside = one(
                    c,
                    "SELECT COUNT(*) AS n FROM api_requests"
                    " WHERE limit_class = ? AND endpoint = ? AND at > ?",
                    (limit_class, endpoint, now - seconds),
                )
                n = 0 if inside is None else int(inside["n"])
                if n >= limit:
                    # The request that must leave the window before one more may enter.
                    leaving = one(
                        c,
                        "SELECT at FROM api_requests"  # noqa: S608 - an int offset only
                        " WHERE limit_class = ? AND endpoint = ? AND at > ?"
                        f" ORDER BY at LIMIT 1 OFFSET {int(n - limit)}",
                        (limit_class, endpoint, now - seconds),
                    )
                    if leaving is not None:
                        wait = max(wait, float(leaving["at"]) + seconds - now + margin)
            if wait > 0:
                return wait
            c.run(
                "INSERT INTO api_requests (limit_class, endpoint, at, node) VALUES (?, ?, ?, ?)",
                (limit_class, endpoint, now, node),
            )
            return 0.0

    def hold_requests_until(self, until: float) -> None:
        """Hold every node's requests until ``until`` (a 429); never shortens a hold."""
        with self._tx() as c:
            self._serialize(c, _GATE_KEY)
            row = one(c, "SELECT value FROM meta WHERE key = ?", (_GATE_KEY,))
            if row is None or float(row["value"]) < until:
                c.run(
                    "INSERT INTO meta (key, value) VALUES (?, ?)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (_GATE_KEY, repr(until)),
                )

    def requests_held_until(self) -> float:
        """Until when a 429 holds every node's requests (0.0: no hold recorded)."""
        with self._read() as c:
            row = one(c, "SELECT value FROM meta WHERE key = ?", (_GATE_KEY,))
        return float(row["value"]) if row else 0.0

    # --- the day's read budget ----------------------------------------------------------------

    def api_reads_since(self, endpoint: str, since: float) -> dict[int, int]:
        """Reads of ``endpoint`` recorded in the request log from ``since`` on, all nodes, per
        ten-minute period (its start, unix seconds): the day's read budget counts these."""
        with self._read() as c:
            rows = c.rows(
                f"SELECT {self._BUCKET_OF} AS bucket, COUNT(*) AS n FROM api_requests"  # noqa: S608
                " WHERE limit_class = 'read' AND endpoint = ? AND at >= ? GROUP BY 1",
                (endpoint, since),
            )
        return {int(r["bucket"]): int(r["n"]) for r in rows}

    # --- work one node at a time does ---------------------------------------------------------

    def take_runner(self, name: str, node: str, now: float, until: float) -> str | None:
        """Hold the runner lease ``name`` for ``node`` until ``until`` when it is free,
        expired or ``node``'s already; None when held now, else the node that holds it."""
        with self._tx() as c:
            got = c.rows(
                "INSERT INTO runners (name, node, until) VALUES (?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET node = excluded.node, until = excluded.until"
                " WHERE runners.until < ? OR runners.node = excluded.node RETURNING node",
                (name, node, until, now),
            )
            if got:
                return None
            row = one(c, "SELECT node FROM runners WHERE name = ?", (name,))
        return "?" if row is None else str(row["node"])

    def renew_runners(self, node: str, until: float) -> None:
        """Extend every runner lease ``node`` holds to ``until`` (its heartbeat)."""
        with self._tx() as c:
            c.run("UPDATE runners SET until = ? WHERE node = ?", (until, node))

    def drop_runner(self, name: str, node: str) -> None:
        """Give up the runner lease ``name`` if ``node`` holds it."""
        with self._tx() as c:
            c.run("DELETE FROM runners WHERE name = ? AND node = ?", (name, node))

    # --- each node's status record ------------------------------------------------------------

    def set_node_status(self, node: str, now: float, status: str) -> None:
        """Write ``node``'s status record (the daemon's JSON), beside its heartbeat."""
        with self._tx() as c:
            c.run(
                "INSERT INTO nodes (name, started_at, heartbeat_at, status) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET status = excluded.status",
                (node, now, now, status),
            )

    def node_statuses(self) -> dict[str, str]:
        """Every node's status record by node name (nodes that never wrote one: left out)."""
        with self._read() as c:
            rows = c.rows("SELECT name, status FROM nodes WHERE status IS NOT NULL ORDER BY name")
        return {str(r["name"]): str(r["status"]) for r in rows}
