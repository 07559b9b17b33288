"""Opening a shared (PostgreSQL) ledger for a daemon.

Until jobs carry per-node leases, one daemon at a time works on a shared ledger: it holds a
session advisory lock for its whole run, the PostgreSQL counterpart of the ``flock`` beside a
SQLite file, released by the server when the daemon's connection ends (even by SIGKILL).
A second daemon is refused with the name of the node that holds the ledger.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from .config import Config
from .errors import LedgerError
from .ledger import LedgerStore

#: Advisory lock key: "the daemon working on this ledger".
DAEMON_LOCK = 0x5377_6174_6368_02


class SharedLedgerLock(Protocol):
    """What the daemon does with its lock: give it up at the end."""

    def release(self) -> None: ...


def open_shared(config: Config, now: Callable[[], float]) -> tuple[LedgerStore, SharedLedgerLock]:
    """The PostgreSQL ledger and the daemon lock on it, or LedgerError saying who holds it."""
    from .stores.postgres import PostgresLedger  # the postgres extra, only when configured

    assert config.ledger_url is not None
    ledger = PostgresLedger(config.ledger_url, password=config.ledger_password_text(), now=now)
    try:
        lock = ledger.try_lock(DAEMON_LOCK, f"synthesia-watchd {config.node_name}")
        if lock is None:
            holder = ledger.lock_holder(DAEMON_LOCK) or "another node"
            raise LedgerError(
                f"{holder} is already running on the shared ledger {ledger.location}; "
                "stop it first (several nodes on one ledger at once is not supported yet)"
            )
    except BaseException:
        ledger.close()
        raise
    return ledger, lock
