"""What `status`, `jobs --json` and `show` report, as plain data over the ledger.

The CLI prints it and the web console renders it; neither builds its own view, so the two
never disagree about a job or the daemon.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from synthesia_watchd.domain.states import ACTIVE, JobState
from synthesia_watchd.engine import lifecycle
from synthesia_watchd.engine.progress import error_is_current, job_progress
from synthesia_watchd.stores import noderecords
from synthesia_watchd.stores.ledger import Event, Job, LedgerStore, Output


def job_dict(job: Job) -> dict[str, Any]:
    """A job's ledger row as plain data (`jobs --json`, and the base of `show`)."""
    return {
        "id": job.id,
        "watch": job.watch,
        "source": job.source_path,
        "state": job.state.value,
        "size": job.size,
        "sha256": job.sha256,
        "source_language": job.source_language,
        "detected_language": job.detected_language,
        "targets": list(job.targets),
        "attempts": job.attempts,
        "next_attempt_at": job.next_attempt_at,
        "asset_id": job.asset_id,
        "project_id": job.project_id,
        "last_error": job.last_error,
        "last_error_context": job.last_error_context,
        "created_at": job.created_at,
        "state_changed_at": job.state_changed_at,
    }


def _minutes(duration_s: float | None) -> float | None:
    """Video minutes, as billed, from a parsed duration (None when it is not known)."""
    return None if duration_s is None else round(duration_s / 60, 1)


def status_data(ledger: LedgerStore, now: float | None = None) -> dict[str, Any]:
    """Everything `status` shows, as plain data (also the `--json` output)."""
    now = time.time() if now is None else now
    found = noderecords.records(ledger)
    record = noderecords.freshest(found)
    running = noderecords.is_running(record, now)
    live = record.get("progress", {}) if running else {}
    active = _active_jobs(ledger, live, now)
    unhappy = _unhappy_jobs(ledger, now)
    attention = _attention_jobs(ledger)
    oldest = ledger.oldest_queued_at()
    return {
        "daemon": noderecords.summary(record, now, paused=False),
        "paused": noderecords.pauses(found, now),
        "reads": record.get("reads") if running else None,
        "holds": lifecycle.holds_data(ledger),
        "watches": record.get("watches", []) if running else [],
        "fs_stuck_seconds": record.get("fs_stuck_seconds") if running else None,
        "counts": ledger.counts(),
        "oldest_queued_age_seconds": round(now - oldest, 1) if oldest else None,
        "active": active,
        "needs_attention": attention,
        "failed": unhappy,
        **noderecords.nodes_data(ledger, now, found),
    }


def _active_jobs(ledger: LedgerStore, live: dict[str, Any], now: float) -> list[dict[str, Any]]:
    """The jobs in progress: step, age, current error, progress (live from the daemon's record)."""
    history = functools.cache(ledger.dub_history)  # one read for every dub shown, if any
    return [
        {
            "id": j.id,
            "file": Path(j.source_path).name,
            "step": j.state.value,
            "age_seconds": round(now - j.state_changed_at, 1),
            "attempts": j.attempts,
            "last_error": j.last_error if error_is_current(ledger, j) else None,
            "detected_language": j.detected_language,
            "video_minutes": _minutes(j.duration_s),
            "progress": job_progress(ledger, j, live.get(str(j.id)), now, history),
        }
        for j in ledger.list_jobs(states=ACTIVE, limit=50)
    ]


def _unhappy_jobs(ledger: LedgerStore, now: float) -> list[dict[str, Any]]:
    """The newest failed or partial jobs with their reason."""
    return [
        {
            "id": j.id,
            "file": Path(j.source_path).name,
            "state": j.state.value,
            "age_seconds": round(now - j.state_changed_at, 1),
            "reason": j.last_error or j.last_error_context,
        }
        for j in ledger.list_jobs(states=(JobState.FAILED, JobState.PARTIAL), limit=20)
    ]


def _attention_jobs(ledger: LedgerStore) -> list[dict[str, Any]]:
    """The jobs waiting for a person's decision, with what they wait for."""
    return [
        {
            "id": j.id,
            "file": Path(j.source_path).name,
            "state": j.state.value,
            "reason": j.last_error_context or j.last_error,
        }
        for j in ledger.list_jobs(states=(JobState.NEEDS_ATTENTION,), limit=50)
    ]


def show_data(job: Job, outs: Sequence[Output], events: Sequence[Event]) -> dict[str, Any]:
    """One job with its outputs and history as plain data (also the `show --json` output)."""
    data = job_dict(job)
    data["outputs"] = [
        {
            "language": o.language,
            "kind": o.kind,
            "state": o.state.value,
            "path": o.path,
            "bytes": o.bytes,
            "sha256": o.sha256,
            "error_code": o.error_code,
        }
        for o in outs
    ]
    data["events"] = [
        {"at": e.at, "from": e.from_state, "to": e.to_state, "why": e.why} for e in events
    ]
    return data
