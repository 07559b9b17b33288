"""The job ledger: the daemon's memory and the operators' dubbing history.

Every job and every transition is written, durably, *before* the side effect it records could
be repeated, so that after a crash every job resumes from its last durable step and no dub is
paid for twice. The engine and the commands program against `LedgerStore` (stores/base.py);
`Ledger` is the embedded SQLite backend, the default.
"""

from __future__ import annotations

from .stores.base import KINDS, UPDATABLE, Event, Job, JobFields, LedgerStore, Output
from .stores.sqlite import MIGRATIONS, SCHEMA_VERSION
from .stores.sqlite import SqliteLedger as Ledger

__all__ = [
    "KINDS",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "UPDATABLE",
    "Event",
    "Job",
    "JobFields",
    "Ledger",
    "LedgerStore",
    "Output",
]
