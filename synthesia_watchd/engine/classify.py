"""The one table that turns any error from a stage into the job's next outcome."""

from __future__ import annotations

from pathlib import Path

from synthesia_watchd.domain.errors import (
    AmbiguousSubmit,
    ApiError,
    AuthError,
    ContentError,
    LedgerUnreachable,
    NoSpaceLeft,
    OutputConflict,
    PermanentError,
    ProjectFailed,
    RateLimited,
    TransientError,
    UnsafePathError,
    UploadCredentialsExpired,
)
from synthesia_watchd.domain.reasons import Reason
from synthesia_watchd.domain.retry import backoff_delay
from synthesia_watchd.engine.jobspec import output_root
from synthesia_watchd.files import diskspace
from synthesia_watchd.stores.ledger import Job
from synthesia_watchd.telemetry.logsetup import get_logger

from . import outcome as o
from .context import StageContext

log = get_logger(component="pipeline")

#: Retries of transient failures back off up to this cap; they never give up on their own.
RETRY_BASE, RETRY_CAP = 5.0, 600.0
#: How long every job waits while the API key is refused.
AUTH_WAIT_SECONDS = 30.0


def classify(ctx: StageContext, job: Job, exc: BaseException) -> o.Outcome:
    """Turn any error from a stage into the job's next outcome (see ARCHITECTURE.md)."""
    now = ctx.now()
    msg = str(exc)
    delay = backoff_delay(job.attempts, base=RETRY_BASE, cap=RETRY_CAP)
    if isinstance(exc, LedgerUnreachable):
        # The step stopped because the ledger did; the job is fine. Nothing may be sent
        # without a durable record, so it just runs again once the ledger is back.
        log.warning("ledger unreachable; the step runs again later", reason=msg)
        return o.Wait(now + RETRY_BASE)
    if isinstance(exc, AuthError):
        return _auth_refused(ctx, exc, now)
    if isinstance(exc, RateLimited):
        return o.Hold(now + exc.retry_after, Reason.RATE_LIMITED, msg)
    if isinstance(exc, UploadCredentialsExpired):
        return o.FreshAsset(msg)
    if isinstance(exc, AmbiguousSubmit):
        return _ambiguous(ctx, job, msg)
    if isinstance(exc, NoSpaceLeft) or diskspace.is_no_space(exc):
        assert isinstance(exc, (NoSpaceLeft, OSError))
        return hold_for_space(ctx, job, exc)
    if isinstance(exc, OutputConflict):
        log.error("output name taken by a different file", reason=msg)
        return o.NeedsAttention(Reason.OUTPUT_CONFLICT, msg)
    if isinstance(exc, (PermanentError, ContentError, UnsafePathError)):
        code = Reason.PROJECT_FAILED if isinstance(exc, ProjectFailed) else Reason.PERMANENT
        return o.Fail(code, msg, getattr(exc, "context", None))
    if isinstance(exc, (TransientError, ApiError)):
        log.warning("retrying later", reason=msg, in_seconds=round(delay, 1))
        return o.Retry(now + delay, Reason.TRANSIENT, msg)
    if isinstance(exc, OSError):
        log.warning("file error, retrying later", reason=msg)
        return o.Retry(now + delay, Reason.FILE_ERROR, f"{type(exc).__name__}: {exc}")
    log.exception("unexpected error in job", exc_info=exc)
    return o.InternalError(now + delay, f"{type(exc).__name__}: {msg}")


def _auth_refused(ctx: StageContext, exc: AuthError, now: float) -> o.Outcome:
    """Only the API's own error body blames the key (a proxy's page says so itself)."""
    why = f"Synthesia rejected the API key ({exc})" if exc.error else str(exc)
    if ctx.pauses.set("auth", why):
        log.error(
            "API key rejected: all API work paused; fix the key and send SIGHUP",
            status=getattr(exc, "status", None),
        )
    return o.Hold(now + AUTH_WAIT_SECONDS, Reason.AUTH_REJECTED, str(exc))


def _ambiguous(ctx: StageContext, job: Job, msg: str) -> o.Outcome:
    if ctx.config.on_ambiguous_submit == "retry":
        return o.AutoResubmit()
    context = (
        "POST /v2/dubbing was sent but no answer came back: Synthesia may have started (and "
        "billed) a project. Check your Synthesia workspace; then `synthesia-watchd retry "
        f"{job.id} --resubmit` to submit again, or `cancel {job.id}`"
    )
    log.error("ambiguous submit: needs attention", reason=msg)
    return o.NeedsAttention(Reason.AMBIGUOUS_SUBMIT, msg, context)


def hold_for_space(ctx: StageContext, job: Job, exc: OSError | NoSpaceLeft) -> o.Hold:
    """A write found no space: hold the output root and wait, without using a retry."""
    root = output_root(job)
    if isinstance(exc, NoSpaceLeft):
        folder, needed = Path(exc.folder), exc.needed
    else:
        folder = Path(exc.filename).parent if isinstance(exc.filename, str) else root
        needed = None
    reason, new = ctx.space.hold(root, folder, needed)
    ctx.pauses.set(f"space:{root}", reason)
    if new:  # once per episode: a quota refusing every re-try is not news each time
        log.error(
            "no space left on device: downloads held until space returns",
            folder=str(folder),
            free=diskspace.describe(diskspace.free_bytes(folder)),
            needed=diskspace.describe(needed),
        )
    return o.Hold(ctx.now() + diskspace.RECHECK_SECONDS, Reason.NO_SPACE, reason)
