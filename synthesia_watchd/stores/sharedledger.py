"""Opening a shared (PostgreSQL) ledger for a daemon.

Several nodes work on one shared ledger at once: jobs are leased per node (stores), so what
must be unique is the node's name. Each daemon holds a session advisory lock keyed by its
``node_name`` for its whole run, released by the server when the daemon's connection ends
(even by SIGKILL); a second daemon with the same name is refused, since it would treat the
first one's leases as its own.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Protocol

from synthesia_watchd.config.load import Config
from synthesia_watchd.domain.errors import LedgerError

from .ledger import LedgerStore

#: Advisory lock keys of node names: this prefix in the high bits, a CRC of the name below.
NODE_LOCK_BASE = 0x5377_6174 << 32


class SharedLedgerLock(Protocol):
    """What the daemon does with its lock: give it up at the end."""

    def release(self) -> None: ...


def node_lock_key(node: str) -> int:
    """The advisory lock key of one node name."""
    return NODE_LOCK_BASE | zlib.crc32(node.encode("utf-8"))


def open_shared(config: Config, now: Callable[[], float]) -> tuple[LedgerStore, SharedLedgerLock]:
    """The PostgreSQL ledger and this node's lock on it, or LedgerError saying why not."""
    from .postgres import PostgresLedger  # the postgres extra, only when configured

    assert config.ledger_url is not None
    ledger = PostgresLedger(config.ledger_url, password=config.ledger_password_text(), now=now)
    try:
        lock = ledger.try_lock(
            node_lock_key(config.node_name), f"synthesia-watchd {config.node_name}"
        )
        if lock is None:
            raise LedgerError(
                f"a daemon named {config.node_name!r} is already running on the shared ledger "
                f"{ledger.location}; give each host its own node_name"
            )
    except BaseException:
        ledger.close()
        raise
    return ledger, lock
