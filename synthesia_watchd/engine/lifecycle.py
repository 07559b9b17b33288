"""Named operations on a job's lifecycle; each owns its ledger write and its field resets.

The engine, the CLI (and anything else that changes a job's state) call these and nothing
else, so "retry" or "fresh asset" means the same thing, resets the same fields and records the
same typed ``Reason`` wherever it happens. Rules and caps read those codes, never the words.
Each operator operation decides from what the ledger knows, so none can pay Synthesia for work
already paid for without the operator confirming it (``resubmit``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from synthesia_watchd.domain.errors import StaleTransition
from synthesia_watchd.domain.reasons import Reason
from synthesia_watchd.domain.states import JobState
from synthesia_watchd.stores.ledger import Job, Lease, LedgerStore
from synthesia_watchd.telemetry.logsetup import get_logger

from . import operatorops
from .holds import NotAllowed, drain, holds_data, pause, read_control, resume
from .operatorops import NeedsConfirmation, can_cancel, cancel, poll_again, resubmit, retry

log = get_logger(component="pipeline")

__all__ = [
    "NeedsConfirmation",
    "NotAllowed",
    "can_cancel",
    "cancel",
    "drain",
    "holds_data",
    "pause",
    "poll_again",
    "read_control",
    "resubmit",
    "resume",
    "retry",
]

Clock = Callable[[], float]

#: A fresh asset is created at most this many times in a row before the job fails.
MAX_FRESH_ASSETS = 5
#: Unexpected exceptions (bugs, odd OS errors) are retried this many times, then fail the job.
MAX_INTERNAL_ERRORS = 5
#: The error code of an output whose download URL was refused as unsafe.
UNSAFE_URL_CODE = operatorops.UNSAFE_URL_CODE

_WARN = (JobState.FAILED, JobState.NEEDS_ATTENTION, JobState.PARTIAL)


# --- the engine's operations ---------------------------------------------------------------------


def move(
    ledger: LedgerStore,
    job_id: int,
    expected: JobState,
    new: JobState,
    *,
    why: str,
    code: Reason | None = None,
    **fields: Any,
) -> Job:
    """A compare-and-set transition, its reason code and its one canonical log line."""
    if code is not None:
        fields["reason_code"] = code.value
    job = ledger.transition(job_id, expected, new, why=why, **fields)
    level = log.warning if new in _WARN else log.info
    level("job state", job_id=str(job_id), from_state=expected.value, to_state=new.value, why=why)
    return job


def count(ledger: LedgerStore, job: Job, code: Reason) -> int:
    """How often the job's history holds a step of one kind (each cap counts its own)."""
    return ledger.count_reasons(job.id, [code.value])


def hold(ledger: LedgerStore, job: Job, until: float, code: Reason, message: str) -> None:
    """Wait until ``until`` without using a retry (rate limit, key, space, budget, mount)."""
    with contextlib.suppress(StaleTransition):
        ledger.update(
            job.id,
            expected=job.state,
            next_attempt_at=until,
            last_error=message,
            reason_code=code.value,
        )


def wait(ledger: LedgerStore, job: Job, until: float) -> None:
    """Come back at ``until``, nothing wrong (a slot, a twin, Synthesia still working)."""
    ledger.update(job.id, expected=job.state, next_attempt_at=until)


def retry_later(ledger: LedgerStore, job: Job, until: float, code: Reason, message: str) -> None:
    """Try the step again at ``until``, counting one attempt (and a ``code`` event)."""
    with contextlib.suppress(StaleTransition):
        ledger.update(
            job.id,
            expected=job.state,
            why=f"retry: {message}",
            next_attempt_at=until,
            last_error=message,
            attempts=job.attempts + 1,
            reason_code=code.value,
        )


def fail(
    ledger: LedgerStore, job: Job, code: Reason, message: str, context: str | None = None
) -> Job:
    """The job ends failed with its reason (the on_failure post-action is the engine's)."""
    return move(
        ledger,
        job.id,
        job.state,
        JobState.FAILED,
        why=message,
        code=code,
        last_error=message,
        last_error_context=context,
    )


def needs_attention(
    ledger: LedgerStore, job: Job, code: Reason, message: str, context: str | None = None
) -> Job:
    """The job waits for a person; ``context`` tells them what to do."""
    return move(
        ledger,
        job.id,
        job.state,
        JobState.NEEDS_ATTENTION,
        why=context or message,
        code=code,
        last_error=message,
        last_error_context=context,
    )


def fresh_asset(ledger: LedgerStore, job: Job, message: str, now: float) -> Job | None:
    """Start the upload over with a new asset (credentials expired); counted against
    MAX_FRESH_ASSETS, after which the job fails (returns None then)."""
    if count(ledger, job, Reason.FRESH_ASSET) + 1 >= MAX_FRESH_ASSETS:
        fail(
            ledger,
            job,
            Reason.FRESH_ASSET_LIMIT,
            f"upload kept failing with rejected credentials: {message}",
        )
        return None
    return move(
        ledger,
        job.id,
        job.state,
        JobState.QUEUED,
        why=f"upload credentials expired; creating a fresh asset ({message})",
        code=Reason.FRESH_ASSET,
        attempts=job.attempts + 1,
        next_attempt_at=now,
    )


def internal_error(ledger: LedgerStore, job: Job, until: float, message: str) -> bool:
    """Retry after a bug or an odd error, at most MAX_INTERNAL_ERRORS times; returns whether
    the job failed instead."""
    if count(ledger, job, Reason.INTERNAL_ERROR) + 1 >= MAX_INTERNAL_ERRORS:
        fail(ledger, job, Reason.INTERNAL_ERROR_LIMIT, f"internal error: {message}")
        return True
    retry_later(ledger, job, until, Reason.INTERNAL_ERROR, f"internal error: {message}")
    return False


def vanished(ledger: LedgerStore, job: Job, *, during: str = "") -> Job:
    """The source disappeared before it was uploaded: cancelled, and back by itself if the
    same file returns (``source_back``)."""
    return move(
        ledger,
        job.id,
        job.state,
        JobState.CANCELLED,
        why="source file vanished" + (f" {during}" if during else ""),
        code=Reason.VANISHED,
        last_error="source file vanished",
    )


def resubmit_automatically(ledger: LedgerStore, job: Job, now: float) -> None:
    """``on_ambiguous_submit: retry``: send the submit again (Synthesia may charge twice)."""
    ledger.update(
        job.id,
        expected=job.state,
        submit_started_at=None,
        next_attempt_at=now,
        why="submit answer lost; resubmitting (on_ambiguous_submit: retry)",
        reason_code=Reason.AUTO_RESUBMIT.value,
    )


def submit_sending(ledger: LedgerStore, job: Job, now: float, *, node: str | None = None) -> None:
    """The durable marker right before POST /v2/dubbing goes out: if we die before the
    project id is recorded, the submit is known to be ambiguous. Under the job's lease
    (``node``): a node that stalled past it (another node took the job over) gets
    StaleTransition here and sends nothing."""
    lease = Lease(node, 0.0) if node is not None and job.lease_node else None
    ledger.update(job.id, expected=JobState.UPLOADED, lease=lease, submit_started_at=now)


def submit_refused(ledger: LedgerStore, job: Job) -> None:
    """The server answered that it did not act (429, 5xx, 4xx) or was never reached."""
    ledger.update(job.id, expected=JobState.UPLOADED, submit_started_at=None)


def orphan_project(ledger: LedgerStore, job: Job, project_id: str) -> None:
    """Keep the id of a project started for a job that moved on meanwhile (`retry` polls it)."""
    ledger.update(
        job.id,
        expected=job.state,
        project_id=project_id,
        submit_started_at=None,
        reason_code=Reason.ORPHAN_PROJECT.value,
        why=f"dubbing project {project_id} was started at Synthesia while the job "
        f"became {job.state.value}; `retry {job.id}` downloads it without paying again",
    )


def detected(ledger: LedgerStore, job: Job, language: str) -> None:
    """Record the language Synthesia detected for a ``source_language: auto`` job."""
    ledger.update(
        job.id,
        expected=JobState.UPLOADED,
        why=f"detected language {language}",
        detected_language=language,
    )


def came_back(job: Job) -> bool:
    """Whether a known job was cancelled only because its source vanished."""
    return job.state is JobState.CANCELLED and job.reason_code == Reason.VANISHED.value


def source_back(ledger: LedgerStore, job: Job, now: float) -> Job:
    """A vanished source is back unchanged: its job is queued again."""
    return move(
        ledger,
        job.id,
        JobState.CANCELLED,
        JobState.QUEUED,
        why="source is back",
        code=Reason.SOURCE_BACK,
        next_attempt_at=now,
    )


def settled(ledger: LedgerStore, job: Job, code: Reason, why: str) -> Job:
    """Done without an API call (``REUSED`` earlier outputs or ``ADOPTED`` files on disk)."""
    return move(ledger, job.id, JobState.QUEUED, JobState.DONE, why=why, code=code)


project_failed = operatorops.project_failed
