"""The job ledger: the daemon's memory and the operators' dubbing history.

Every job and every transition is written, durably, *before* the side effect it records could
be repeated, so that after a crash every job resumes from its last durable step and no dub is
paid for twice. The engine and the commands program against `LedgerStore` (stores/base.py);
`Ledger` is the embedded SQLite backend, the default.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from synthesia_watchd.domain.errors import (
    DuplicateJob,
    LedgerError,
    ShutdownRequested,
    StaleTransition,
)

from .base import KINDS, UPDATABLE, Event, Job, JobFields, Lease, Node, Output
from .protocol import LedgerStore
from .sqlite import MIGRATIONS, SCHEMA_VERSION
from .sqlite import SqliteLedger as Ledger

T = TypeVar("T")

#: Longest pause between two attempts of a write the ledger could not take.
UNREACHABLE_RETRY_MAX = 10.0


def until_recorded(write: Callable[[], T], stop: threading.Event) -> T:
    """Run ``write`` until the ledger takes it: for facts that exist only in memory until
    then (a project id Synthesia just returned). A lost connection or a busy file is waited
    out with backoff; a compare-and-set refusal is an answer and is raised at once; a stop
    request ends the wait with ShutdownRequested (the job's submit marker then makes it
    ambiguous, never paid twice)."""
    pause = 0.25
    while True:
        try:
            return write()
        except (StaleTransition, DuplicateJob):
            raise
        except LedgerError:
            if stop.wait(pause):
                raise ShutdownRequested("stopping while the ledger was unreachable") from None
            pause = min(pause * 2, UNREACHABLE_RETRY_MAX)


def is_shared(location: Path | str) -> bool:
    """Whether a ledger location names a PostgreSQL database (shared by several hosts)."""
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def open_ledger(
    location: Path | str,
    *,
    password: str | None = None,
    now: Callable[[], float] = time.time,
) -> LedgerStore:
    """The store a ``ledger:`` value names: a PostgreSQL URL, else a SQLite file path."""
    if is_shared(location):
        from .postgres import PostgresLedger  # the postgres extra, only when used

        return PostgresLedger(str(location), password=password, now=now)
    return Ledger(Path(location), now=now)


__all__ = [
    "KINDS",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "UPDATABLE",
    "Event",
    "Job",
    "JobFields",
    "Lease",
    "Ledger",
    "LedgerStore",
    "Node",
    "Output",
    "is_shared",
    "open_ledger",
    "until_recorded",
]
