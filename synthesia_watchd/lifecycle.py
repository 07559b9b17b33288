"""Named operator operations on jobs and on the daemon's holds; each owns its ledger writes.

The CLI, the web console and the push API call these and nothing else to change state, so
"retry" means the same thing (and resets the same fields) wherever it is clicked. Each
operation decides from what the ledger knows, so no button can pay for work already paid for
without the operator confirming it (``resubmit``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from .control import CONTROL_KEY, DRAIN, PAUSE, Control, Hold
from .errors import WatchdError
from .ledger import Job, Ledger, Output
from .pipeline import PROJECT_FAILED, UNSAFE_URL_CODE
from .restore import bring_back
from .states import ACTIVE, TERMINAL, JobState, OutputState

Clock = Callable[[], float]


class NotAllowed(WatchdError):
    """Raised when an operation does not apply to the job as it stands (the message says why)."""


class NeedsConfirmation(NotAllowed):
    """Raised when an operation may pay Synthesia twice and the operator has not confirmed."""


# --- jobs ----------------------------------------------------------------------------------------


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
        return _poll_again(
            ledger,
            job,
            refused,
            "retry by operator: fetching the refused downloads again (no new charge)",
            t,
        )
    if job.state is JobState.PARTIAL:
        return _retry_failed_languages(ledger, job)
    if job.state in (JobState.NEEDS_ATTENTION, JobState.FAILED, JobState.CANCELLED):
        project_failed = (job.last_error or "").startswith(PROJECT_FAILED)
        if job.project_id and not project_failed and not fresh:
            return _poll_again(
                ledger,
                job,
                refused,
                "retry by operator: polling the existing project (no new charge)",
                t,
            )
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
            next_attempt_at=t,
            attempts=0,
            asset_id=None,
            project_id=None,
            submit_started_at=None,
        )
        return f"job #{job.id}: queued again{moved_back}"
    if job.state in ACTIVE:
        ledger.update(job.id, expected=job.state, next_attempt_at=t, why="retry now")
        return f"job #{job.id}: {job.state.value}, retrying now"
    raise NotAllowed(f"job #{job.id} is {job.state.value}: nothing to retry")


def _poll_again(ledger: Ledger, job: Job, reopen: list[Output], why: str, t: float) -> str:
    """Back to polling the job's existing project (no new charge); ``reopen`` outputs are
    fetched again."""
    for o in reopen:
        ledger.set_output(job.id, o.language, o.kind, state=OutputState.PENDING)
    ledger.transition(job.id, job.state, JobState.DUBBING, why=why, next_attempt_at=t, attempts=0)
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
    )
    ledger.note(job.id, f"failed languages {failed} retried as job {new.id}")
    return f"job #{job.id}: failed languages {', '.join(failed)} queued as job #{new.id}"


def can_cancel(job: Job) -> bool:
    """Whether ``cancel`` applies: active jobs and jobs waiting for a human."""
    return job.state not in TERMINAL or job.state is JobState.NEEDS_ATTENTION


def cancel(ledger: Ledger, job: Job) -> str:
    """Stop a job for good; Synthesia keeps any project it already started."""
    if not can_cancel(job):
        raise NotAllowed(f"job #{job.id} is already {job.state.value}")
    note = " (Synthesia keeps the project it already started)" if job.project_id else ""
    ledger.transition(job.id, job.state, JobState.CANCELLED, why="cancelled by operator")
    return f"job #{job.id}: cancelled{note}"


# --- holds ---------------------------------------------------------------------------------------


def read_control(ledger: Ledger) -> Control:
    """The operator holds as stored in the ledger."""
    return Control.from_json(ledger.get_meta(CONTROL_KEY))


def _write(ledger: Ledger, control: Control) -> None:
    ledger.set_meta(CONTROL_KEY, control.to_json())


def pause(
    ledger: Ledger,
    *,
    watch: str | None = None,
    drain: bool = False,
    reason: str = "",
    known: Sequence[str] | None = None,
    now: Clock = time.time,
) -> str:
    """Hold new work, globally or for one watch; ``drain`` lets started jobs finish.

    With ``known`` (the configured watch names), a misspelt watch is refused instead of
    holding nothing.
    """
    if watch is not None and known is not None and watch not in known:
        raise NotAllowed(f"no watch named {watch!r} (watches: {', '.join(known) or 'none'})")
    mode = DRAIN if drain else PAUSE
    hold = Hold(mode, now(), reason or f"{'drain' if drain else 'pause'} by operator")
    control = read_control(ledger)
    if watch is None:
        control = Control(hold, control.watches)
    else:
        control = Control(control.global_hold, {**control.watches, watch: hold})
    _write(ledger, control)
    what = "draining (started jobs finish, nothing new starts)" if drain else "paused"
    return f"{'all watches' if watch is None else f'watch {watch}'}: {what}"


def resume(ledger: Ledger, *, watch: str | None = None) -> str:
    """Lift the hold (globally: the global one; for a watch: that watch's own)."""
    control = read_control(ledger)
    if watch is None:
        if control.global_hold is None:
            return "all watches: not paused"
        control = Control(None, control.watches)
        _write(ledger, control)
        return "all watches: resumed"
    if watch not in control.watches:
        return f"watch {watch}: not paused"
    _write(
        ledger,
        Control(control.global_hold, {n: h for n, h in control.watches.items() if n != watch}),
    )
    return f"watch {watch}: resumed"


def drain(ledger: Ledger, *, watch: str | None = None, now: Clock = time.time) -> str:
    """``pause(drain=True)``: finish what was started, start nothing new."""
    return pause(ledger, watch=watch, drain=True, now=now)


def holds_data(ledger: Ledger) -> dict[str, Any]:
    """The holds as plain data (``status --json``, the page, the API)."""
    control = read_control(ledger)
    return {
        "all": control.global_hold.to_data() if control.global_hold else None,
        "watches": {n: h.to_data() for n, h in sorted(control.watches.items())},
    }
