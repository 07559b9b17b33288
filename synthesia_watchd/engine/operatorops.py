"""The operator's named operations on jobs: retry, resubmit, cancel (``lifecycle`` re-exports
them). Each decides from what the ledger knows, so none can pay Synthesia for work already paid
for without the operator confirming it (``resubmit``), and each records its typed Reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from synthesia_watchd.domain.reasons import Reason
from synthesia_watchd.domain.states import ACTIVE, TERMINAL, JobState, OutputState
from synthesia_watchd.stores.ledger import Job, LedgerStore, Output

from .holds import NotAllowed
from .jobspec import AMBIGUOUS_LANGUAGE_CODE
from .restore import bring_back

Clock = Callable[[], float]

#: The error code of an output whose download URL was refused as unsafe.
UNSAFE_URL_CODE = "unsafe_download_url"
#: Output errors a retry fetches again from the paid project (no new charge).
REFETCHABLE = frozenset({UNSAFE_URL_CODE, AMBIGUOUS_LANGUAGE_CODE})


class NeedsConfirmation(NotAllowed):
    """Raised when an operation may pay Synthesia twice and the operator has not confirmed."""


def project_failed(job: Job) -> bool:
    """Whether Synthesia itself failed the job's project (a retry then starts over)."""
    return job.reason_code == Reason.PROJECT_FAILED.value


def retry(
    ledger: LedgerStore,
    job: Job,
    *,
    resubmit: bool = False,
    fresh: bool = False,
    now: Clock = time.time,
) -> str:
    """Put a finished-but-unhappy job back to work; returns what was done, for people.

    partial: refused downloads are fetched again from the paid project; otherwise the
    languages Synthesia failed become a new job. needs_attention/failed/cancelled: poll the
    existing project when there is one (no new charge), else start over; an ambiguous submit
    needs ``resubmit`` (may pay twice). An active job is simply made due now.
    """
    t = now()
    failed_outputs = [o for o in ledger.outputs(job.id) if o.state is OutputState.FAILED]
    # Outputs in the paid project that were not written: refused URLs, ambiguous languages.
    refused = [o for o in failed_outputs if o.error_code in REFETCHABLE]
    if job.state is JobState.PARTIAL and job.project_id and refused:
        # Refused downloads (unsafe URLs) are in the project, already paid for: fetch them
        # again first. Languages Synthesia failed wait until this job settles (one active job
        # per file and content); a later retry dubs only those.
        why = "retry by operator: fetching the refused downloads again (no new charge)"
        said = poll_again(ledger, job, refused, why, t)
        failed = sorted({o.language for o in failed_outputs if o not in refused})
        if failed:
            said += (
                f"; {', '.join(failed)} failed at Synthesia: run retry again once this job "
                "settles to dub them anew"
            )
        return said
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
    ledger: LedgerStore, job: Job, refused: list[Output], *, resubmit: bool, fresh: bool, t: float
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


def poll_again(ledger: LedgerStore, job: Job, reopen: list[Output], why: str, t: float) -> str:
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


def resubmit(ledger: LedgerStore, job: Job, *, now: Clock = time.time) -> str:
    """Retry a job whose submit was ambiguous, accepting that Synthesia may charge twice."""
    return retry(ledger, job, resubmit=True, now=now)


def _retry_failed_languages(ledger: LedgerStore, job: Job) -> str:
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


def cancel(ledger: LedgerStore, job: Job) -> str:
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
