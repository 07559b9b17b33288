"""Named operations on a job's lifecycle; each owns its ledger write and its field resets.

The engine, the CLI (and anything else that changes a job's state) call these and nothing
else, so "retry" or "fresh asset" means the same thing, resets the same fields and records the
same typed ``Reason`` wherever it happens. Rules and caps read those codes, never the words.
Each operator operation decides from what the ledger knows, so none can pay Synthesia for work
already paid for without the operator confirming it (``resubmit``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

from .errors import StaleTransition, WatchdError
from .ledger import Job, Ledger, Output
from .logsetup import get_logger
from .reasons import Reason
from .restore import bring_back
from .states import ACTIVE, TERMINAL, JobState, OutputState

log = get_logger(component="pipeline")

Clock = Callable[[], float]

#: A fresh asset is created at most this many times in a row before the job fails.
MAX_FRESH_ASSETS = 5
#: Unexpected exceptions (bugs, odd OS errors) are retried this many times, then fail the job.
MAX_INTERNAL_ERRORS = 5
#: The error code of an output whose download URL was refused as unsafe.
UNSAFE_URL_CODE = "unsafe_download_url"

_WARN = (JobState.FAILED, JobState.NEEDS_ATTENTION, JobState.PARTIAL)


class NotAllowed(WatchdError):
    """Raised when an operation does not apply to the job as it stands (the message says why)."""


class NeedsConfirmation(NotAllowed):
    """Raised when an operation may pay Synthesia twice and the operator has not confirmed."""


# --- the engine's operations ---------------------------------------------------------------------


def move(
    ledger: Ledger,
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


def count(ledger: Ledger, job: Job, code: Reason) -> int:
    """How often the job's history holds a step of one kind (each cap counts its own)."""
    return ledger.count_reasons(job.id, [code.value])


def hold(ledger: Ledger, job: Job, until: float, code: Reason, message: str) -> None:
    """Wait until ``until`` without using a retry (rate limit, key, space, budget, mount)."""
    with contextlib.suppress(StaleTransition):
        ledger.update(
            job.id,
            expected=job.state,
            next_attempt_at=until,
            last_error=message,
            reason_code=code.value,
        )


def wait(ledger: Ledger, job: Job, until: float) -> None:
    """Come back at ``until``, nothing wrong (a slot, a twin, Synthesia still working)."""
    ledger.update(job.id, expected=job.state, next_attempt_at=until)


def retry_later(ledger: Ledger, job: Job, until: float, code: Reason, message: str) -> None:
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


def fail(ledger: Ledger, job: Job, code: Reason, message: str, context: str | None = None) -> Job:
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
    ledger: Ledger, job: Job, code: Reason, message: str, context: str | None = None
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


def fresh_asset(ledger: Ledger, job: Job, message: str, now: float) -> Job | None:
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


def internal_error(ledger: Ledger, job: Job, until: float, message: str) -> bool:
    """Retry after a bug or an odd error, at most MAX_INTERNAL_ERRORS times; returns whether
    the job failed instead."""
    if count(ledger, job, Reason.INTERNAL_ERROR) + 1 >= MAX_INTERNAL_ERRORS:
        fail(ledger, job, Reason.INTERNAL_ERROR_LIMIT, f"internal error: {message}")
        return True
    retry_later(ledger, job, until, Reason.INTERNAL_ERROR, f"internal error: {message}")
    return False


def vanished(ledger: Ledger, job: Job, *, during: str = "") -> Job:
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


def resubmit_automatically(ledger: Ledger, job: Job, now: float) -> None:
    """``on_ambiguous_submit: retry``: send the submit again (Synthesia may charge twice)."""
    ledger.update(
        job.id,
        expected=job.state,
        submit_started_at=None,
        next_attempt_at=now,
        why="submit answer lost; resubmitting (on_ambiguous_submit: retry)",
        reason_code=Reason.AUTO_RESUBMIT.value,
    )


def submit_sending(ledger: Ledger, job: Job, now: float) -> None:
    """The durable marker right before POST /v2/dubbing goes out: if we die before the
    project id is recorded, the submit is known to be ambiguous."""
    ledger.update(job.id, expected=JobState.UPLOADED, submit_started_at=now)


def submit_refused(ledger: Ledger, job: Job) -> None:
    """The server answered that it did not act (429, 5xx, 4xx) or was never reached."""
    ledger.update(job.id, expected=JobState.UPLOADED, submit_started_at=None)


def orphan_project(ledger: Ledger, job: Job, project_id: str) -> None:
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


def detected(ledger: Ledger, job: Job, language: str) -> None:
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


def source_back(ledger: Ledger, job: Job, now: float) -> Job:
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


def settled(ledger: Ledger, job: Job, code: Reason, why: str) -> Job:
    """Done without an API call (``REUSED`` earlier outputs or ``ADOPTED`` files on disk)."""
    return move(ledger, job.id, JobState.QUEUED, JobState.DONE, why=why, code=code)


def project_failed(job: Job) -> bool:
    """Whether Synthesia itself failed the job's project (a retry then starts over)."""
    return job.reason_code == Reason.PROJECT_FAILED.value


# --- the operator's operations -------------------------------------------------------------------


def retry(
    ledger: Ledger,
    job: Job,
    *,
    resubmit: bool = False,
    fresh: bool = False,
    now: Clock = time.time,
) -> str:
    """Put a finished-but-unhappy job back to work; returns what was done, for people.

    partial: the failed languages become a new job. needs_attention/failed/cancelled: poll the
    existing project when there is one (no new charge), else start over; an ambiguous submit
    needs ``resubmit`` (may pay twice). An active job is simply made due now.
    """
    t = now()
    failed_outputs = [o for o in ledger.outputs(job.id) if o.state is OutputState.FAILED]
    refused = [o for o in failed_outputs if o.error_code == UNSAFE_URL_CODE]
    if job.state is JobState.PARTIAL and job.project_id and refused == failed_outputs:
        # Only downloads were refused (unsafe URLs): the project has them, already paid for.
        why = "retry by operator: fetching the refused downloads again (no new charge)"
        return poll_again(ledger, job, refused, why, t)
    if job.state is JobState.PARTIAL:
        return _retry_failed_languages(ledger, job)
    if job.state in (JobState.NEEDS_ATTENTION, JobState.FAILED, JobState.CANCELLED):
        return _start_again(ledger, job, refused, resubmit=resubmit, fresh=fresh, t=t)
    if job.state in ACTIVE:
        ledger.update(
            job.id,
            expected=job.state,
            next_attempt_at=t,
            why="retry now",
            reason_code=Reason.RETRY.value,
        )
        return f"job #{job.id}: {job.state.value}, retrying now"
    raise NotAllowed(f"job #{job.id} is {job.state.value}: nothing to retry")


def _start_again(
    ledger: Ledger, job: Job, refused: list[Output], *, resubmit: bool, fresh: bool, t: float
) -> str:
    """Retry of a stopped job: poll what was paid for, resubmit if confirmed, else start over."""
    if job.project_id and not project_failed(job) and not fresh:
        why = "retry by operator: polling the existing project (no new charge)"
        return poll_again(ledger, job, refused, why, t)
    if job.submit_started_at is not None and not job.project_id:
        if not resubmit:
            raise NeedsConfirmation(
                f"job #{job.id} may already have a project at Synthesia (its submit was "
                "ambiguous); check your workspace, then run `retry --resubmit` to pay again"
            )
        ledger.transition(
            job.id,
            job.state,
            JobState.UPLOADED,
            why="resubmit confirmed by operator",
            reason_code=Reason.RESUBMIT.value,
            submit_started_at=None,
            next_attempt_at=t,
            attempts=0,
        )
        return f"job #{job.id}: will be submitted again"
    moved_back = bring_back(job)
    ledger.transition(
        job.id,
        job.state,
        JobState.QUEUED,
        why="retry by operator: starting over"
        + (" (a new project is paid for)" if job.project_id else ""),
        reason_code=Reason.RETRY.value,
        next_attempt_at=t,
        attempts=0,
        asset_id=None,
        project_id=None,
        submit_started_at=None,
    )
    return f"job #{job.id}: queued again{moved_back}"


def poll_again(ledger: Ledger, job: Job, reopen: list[Output], why: str, t: float) -> str:
    """Back to polling the job's existing project (no new charge); ``reopen`` outputs are
    fetched again."""
    for o in reopen:
        ledger.set_output(job.id, o.language, o.kind, state=OutputState.PENDING)
    ledger.transition(
        job.id,
        job.state,
        JobState.DUBBING,
        why=why,
        reason_code=Reason.POLL_AGAIN.value,
        next_attempt_at=t,
        attempts=0,
    )
    return f"job #{job.id}: polling project {job.project_id} again (no new charge)"


def resubmit(ledger: Ledger, job: Job, *, now: Clock = time.time) -> str:
    """Retry a job whose submit was ambiguous, accepting that Synthesia may charge twice."""
    return retry(ledger, job, resubmit=True, now=now)


def _retry_failed_languages(ledger: Ledger, job: Job) -> str:
    outputs = ledger.outputs(job.id)
    failed = sorted({o.language for o in outputs if o.state is OutputState.FAILED})
    new = ledger.add_job(
        watch=job.watch,
        source_path=job.source_path,
        size=job.size,
        mtime_ns=job.mtime_ns,
        sha256=job.sha256,
        source_language=job.source_language,
        targets=failed,
        output_dir=job.output_dir,
        settings=job.settings,
        kinds=sorted({o.kind for o in outputs}),
        why=f"retry of the failed languages of job {job.id}",
        reason_code=Reason.RETRY.value,
    )
    ledger.note(job.id, f"failed languages {failed} retried as job {new.id}", Reason.RETRY.value)
    return f"job #{job.id}: failed languages {', '.join(failed)} queued as job #{new.id}"


def can_cancel(job: Job) -> bool:
    """Whether ``cancel`` applies: active jobs and jobs waiting for a human."""
    return job.state not in TERMINAL or job.state is JobState.NEEDS_ATTENTION


def cancel(ledger: Ledger, job: Job) -> str:
    """Stop a job for good; Synthesia keeps any project it already started."""
    if not can_cancel(job):
        raise NotAllowed(f"job #{job.id} is already {job.state.value}")
    note = " (Synthesia keeps the project it already started)" if job.project_id else ""
    ledger.transition(
        job.id,
        job.state,
        JobState.CANCELLED,
        why="cancelled by operator",
        reason_code=Reason.CANCELLED.value,
    )
    return f"job #{job.id}: cancelled{note}"
