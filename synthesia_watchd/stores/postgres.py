"""The PostgreSQL ledger backend: one database shared by every node.

psycopg 3 with a connection pool (psycopg_pool): each write is one transaction on a pooled
connection, each read one autocommit statement or a short read. The URL is libpq's, so
``sslmode``, ``~/.pgpass`` and ``PGPASSWORD`` work as they do for psql; a password read from
a file is passed beside the URL, never written into it, and the location shown to people
has none. Migrations are applied by whichever node gets the advisory lock first.

Driver errors never leave this module: they become LedgerError (connection lost, server
gone, refused) so the engine treats a PostgreSQL outage like a busy SQLite file.
"""

from __future__ import annotations

import base64
import contextlib
import re
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import psycopg
from psycopg import conninfo
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from synthesia_watchd.domain.errors import DuplicateKey, LedgerError, LedgerUnreachable

from .pgschema import MIGRATION_LOCK, MIGRATIONS, SCHEMA_VERSION
from .sqlbase import SqlConn
from .sqlshared import SqlLedgerStore

#: Seconds to wait for a connection (at open, and from the pool) before giving up.
CONNECT_TIMEOUT = 10.0

_PLACEHOLDER = re.compile(r"\?")


def is_postgres_url(spec: str) -> bool:
    """Whether a ``ledger:`` value names a PostgreSQL database rather than a file."""
    return spec.startswith(("postgresql://", "postgres://"))


def redacted(url: str) -> str:
    """The URL without its password, for logs, errors and ``status``."""
    try:
        params = conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://(unparsable URL)"
    user = params.get("user")
    host = params.get("host") or "localhost"
    port = params.get("port")
    db = params.get("dbname") or ""
    auth = f"{user}@" if user else ""
    return f"postgresql://{auth}{host}{f':{port}' if port else ''}/{db}"


def _error(where: str, exc: BaseException) -> LedgerError:
    # The first line only: server messages may carry a DETAIL with row values.
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return (LedgerUnreachable if _lost(exc) else LedgerError)(f"ledger {where}: {first}")


def _lost(exc: BaseException) -> bool:
    """A connection that broke or a server going away (no SQLSTATE: the client saw the
    connection die; 08: connection exception; 57P: shutdown, crash, not accepting yet)."""
    if not isinstance(exc, psycopg.OperationalError):
        return False
    return exc.sqlstate is None or exc.sqlstate.startswith(("08", "57P"))


#: How a path that is not UTF-8 (bytes from ``names.to_db``) is kept in a TEXT column:
#: this prefix, which no real path starts with, then its bytes in base64.
_BYTES_PREFIX = "\x7fb64:"
_PATH_COLUMNS = frozenset({"source_path", "output_dir", "path"})


def _param(value: Any) -> Any:
    if isinstance(value, bytes):
        return _BYTES_PREFIX + base64.b64encode(value).decode("ascii")
    return value


def _row(row: dict[str, Any]) -> dict[str, Any]:
    for key in _PATH_COLUMNS & row.keys():
        value = row[key]
        if isinstance(value, str) and value.startswith(_BYTES_PREFIX):
            row[key] = base64.b64decode(value[len(_BYTES_PREFIX) :])
    return row


class _Conn:
    """The shared SQL's view of a psycopg connection: ``?`` marks become ``%s``; paths that
    are not UTF-8 are stored as prefixed base64 text and given back as bytes."""

    __slots__ = ("_c", "_where")

    def __init__(self, conn: psycopg.Connection[dict[str, Any]], where: str) -> None:
        self._c, self._where = conn, where

    def _execute(self, sql: str, params: Sequence[Any]) -> psycopg.Cursor[dict[str, Any]]:
        try:
            args = [_param(p) for p in params] if params else None
            return self._c.execute(_PLACEHOLDER.sub("%s", sql), args)
        except psycopg.errors.UniqueViolation as exc:
            raise DuplicateKey(f"ledger {self._where}: a unique key exists already") from exc
        except psycopg.Error as exc:
            raise _error(self._where, exc) from exc

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Execute; the number of rows changed."""
        return self._execute(sql, params).rowcount

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Execute a query; rows as dicts."""
        return [_row(r) for r in self._execute(sql, params).fetchall()]


class AdvisoryLock:
    """A held session advisory lock; ``release`` ends the session (and so the lock)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def release(self) -> None:
        """Give the lock up (idempotent)."""
        with contextlib.suppress(psycopg.Error):
            self._conn.close()


class PostgresLedger(SqlLedgerStore):
    """The job ledger in a PostgreSQL database; safe to share between threads and nodes."""

    _CLAIM_LOCK = " FOR UPDATE SKIP LOCKED"
    _BUCKET_OF = "CAST(FLOOR(at / 600) * 600 AS BIGINT)"

    def __init__(
        self,
        url: str,
        *,
        password: str | None = None,
        now: Callable[[], float] = time.time,
        max_connections: int = 8,
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        self.location = redacted(url)
        self._now = now
        extra: dict[str, Any] = {"connect_timeout": max(1, int(connect_timeout))}
        if password is not None:
            extra["password"] = password
        try:
            info = conninfo.make_conninfo(url, **extra)
        except psycopg.ProgrammingError as exc:
            raise LedgerError(f"the ledger URL {self.location} is not valid: {exc}") from None
        self._timeout = connect_timeout
        self._info = info
        self._pool: ConnectionPool[psycopg.Connection[dict[str, Any]]] = ConnectionPool(
            info,
            min_size=1,
            max_size=max_connections,
            kwargs={"autocommit": True, "row_factory": dict_row},
            check=ConnectionPool.check_connection,
            open=False,
            name="ledger",
        )
        try:
            self._pool.open(wait=True, timeout=connect_timeout)
        except PoolTimeout as exc:
            self._pool.close()
            raise LedgerError(
                f"cannot reach the ledger {self.location} within {connect_timeout:g} s "
                "(is PostgreSQL running, are host, port, user and password right?)"
            ) from exc
        try:
            self._migrate()
        except BaseException:
            self._pool.close()
            raise

    # --- lifecycle -----------------------------------------------------------------------------

    def _migrate(self) -> None:
        """Apply missing migrations, one node at a time (transaction-scoped advisory lock)."""
        with self._tx() as c:
            c.run("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
            c.run(
                "CREATE TABLE IF NOT EXISTS schema_migrations"
                " (version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
            )
            found = self._version(c)
            if found > SCHEMA_VERSION:
                raise LedgerError(
                    f"the ledger {self.location} has schema version {found}, newer than this "
                    f"synthesia-watchd understands ({SCHEMA_VERSION}); upgrade synthesia-watchd "
                    "or point it at another database"
                )
            for version in range(found + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[version - 1]:
                    c.run(statement)
                c.run(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                    (version, time.time()),
                )

    @staticmethod
    def _version(c: _Conn) -> int:
        [row] = c.rows("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations")
        return int(row["v"])

    def close(self) -> None:
        """Close every pooled connection (idempotent)."""
        self._pool.close()

    def __repr__(self) -> str:
        return f"PostgresLedger({self.location!r})"

    @property
    def schema_version(self) -> int:
        with self._read() as c:
            return self._version(c)

    # --- transactions --------------------------------------------------------------------------

    @contextlib.contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        try:
            with self._pool.connection(timeout=self._timeout) as conn:
                yield conn
        except PoolTimeout as exc:
            raise LedgerUnreachable(f"ledger {self.location} is unreachable: {exc}") from exc
        except psycopg.Error as exc:
            raise _error(self.location, exc) from exc

    @contextlib.contextmanager
    def _tx(self) -> Iterator[_Conn]:
        """One write transaction: committed when the block ends, rolled back on an error."""
        with self._connection() as conn, conn.transaction():
            yield _Conn(conn, self.location)

    @contextlib.contextmanager
    def _read(self) -> Iterator[_Conn]:
        """A pooled autocommit connection for reads."""
        with self._connection() as conn:
            yield _Conn(conn, self.location)

    def _serialize(self, c: SqlConn, key: str) -> None:
        """A transaction-scoped advisory lock on ``key``: nodes take turns on one window."""
        c.run("SELECT pg_advisory_xact_lock(hashtext(?))", (key,))

    # --- coordination --------------------------------------------------------------------------

    def try_lock(self, key: int, holder: str) -> AdvisoryLock | None:
        """A session advisory lock on its own connection (held until released or the
        connection drops); None when another session holds it. ``holder`` is recorded in
        ``application_name`` (seen in pg_stat_activity)."""
        try:
            conn = psycopg.connect(self._info, autocommit=True, application_name=holder[:63])
            [(got,)] = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchall()
        except psycopg.Error as exc:
            raise _error(self.location, exc) from exc
        if not got:
            conn.close()
            return None
        return AdvisoryLock(conn)

    # --- maintenance ---------------------------------------------------------------------------

    def integrity_check(self) -> str:
        """ "ok", or outputs and events whose job is missing (constraints make this rare)."""
        with self._read() as c:
            rows = c.rows(
                "SELECT 'outputs' AS t, COUNT(*) AS n FROM outputs o"
                " WHERE NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = o.job_id)"
                " UNION ALL SELECT 'events', COUNT(*) FROM events e"
                " WHERE NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = e.job_id)"
            )
        problems = [f"{r['n']} {r['t']} rows refer to a missing job" for r in rows if r["n"]]
        return "\n".join(problems) if problems else "ok"

    def checkpoint(self) -> None:
        """Nothing to fold: the server owns its write-ahead log."""
