"""Interrupted work made resumable: after a crash, and when a pause lifts.

Running jobs hold no lease to reclaim: the ledger says where each stands. What is left to do
is to remove the temp files of interrupted downloads (they never sit under a final name) and
to make waiting jobs due at once. Jobs another node of a shared ledger holds a live lease on
are that node's, and are left alone.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from synthesia_watchd.domain import outputs
from synthesia_watchd.domain.errors import WatchdError
from synthesia_watchd.domain.states import ACTIVE, JobState, OutputState
from synthesia_watchd.engine import lifecycle
from synthesia_watchd.engine.jobspec import output_root
from synthesia_watchd.stores.ledger import Job, LedgerStore


def recover(ledger: LedgerStore, node: str, now: float) -> None:
    """Make every interrupted job resumable from its last durable step (after a crash).

    Leftover temp files of interrupted downloads are removed; due times are reset so resumed
    work starts at once.
    """
    for job in ledger.list_jobs(states=(JobState.DOWNLOADING,), limit=1_000_000):
        if held_elsewhere(job, node, now):
            continue  # another node of a shared ledger is downloading it right now
        if any(o.state is OutputState.PENDING for o in ledger.outputs(job.id)):
            outputs.remove_temp_files(
                output_root(job), Path(job.output_dir), Path(job.source_path).stem
            )
    resume_now(ledger, node, now)


def resume_now(ledger: LedgerStore, node: str, now: float) -> None:
    """Make every active job due at once (after a restart, or when a pause lifts).

    Jobs polling a project keep their cadence: polling early gains nothing.
    """
    for job in ledger.list_jobs(states=ACTIVE, limit=1_000_000):
        if held_elsewhere(job, node, now):
            continue
        if job.next_attempt_at > now and job.state is not JobState.DUBBING:
            with contextlib.suppress(WatchdError):
                lifecycle.wait(ledger, job, now)


def held_elsewhere(job: Job, node: str, now: float) -> bool:
    """Whether another node holds a live lease on the job (a shared ledger)."""
    return job.lease_node is not None and job.lease_node != node and (job.lease_until or 0.0) >= now
