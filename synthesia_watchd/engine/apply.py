"""The one place an outcome becomes ledger writes (through lifecycle operations)."""

from __future__ import annotations

from pathlib import Path

from synthesia_watchd.domain.states import JobState
from synthesia_watchd.engine import lifecycle
from synthesia_watchd.stores.ledger import Job
from synthesia_watchd.telemetry.logsetup import get_logger

from . import outcome as o
from .context import StageContext
from .postactions import after_done, on_failure

log = get_logger(component="pipeline")


def write_outputs(ctx: StageContext, job_id: int, rows: tuple[o.OutputRow, ...]) -> None:
    """Output rows, each written as its own durable fact."""
    for row in rows:
        ctx.ledger.set_output(job_id, row.language, row.kind, state=row.state, **row.fields)


def apply(ctx: StageContext, job: Job, outcome: o.Outcome) -> bool:
    """Write ``outcome`` for ``job``; returns whether the job's next stage may run at once."""
    led = ctx.ledger
    match outcome:
        case None:
            return False
        case o.Move():
            write_outputs(ctx, job.id, outcome.outputs)
            lifecycle.move(
                led, job.id, job.state, outcome.to, why=outcome.why, code=outcome.code,
                **outcome.fields,
            )  # fmt: skip
            if outcome.after is not None:
                outcome.after()
            return outcome.run_next
        case o.Wait():
            lifecycle.wait(led, job, outcome.until)
        case o.Hold():
            lifecycle.hold(led, job, outcome.until, outcome.code, outcome.message)
        case o.Retry():
            lifecycle.retry_later(led, job, outcome.until, outcome.code, outcome.message)
        case o.InternalError():
            if lifecycle.internal_error(led, job, outcome.until, outcome.message):
                _failed(ctx, job.id, None)
        case o.FreshAsset():
            ctx.credentials.pop(job.id, None)
            if lifecycle.fresh_asset(led, job, outcome.message, ctx.now()) is None:
                _failed(ctx, job.id, None)
        case o.Vanished():
            ctx.credentials.pop(job.id, None)
            lifecycle.vanished(led, job, during=outcome.during)
            # The watcher must not count it as reported: if it comes back, it is new work.
            ctx.release_source(Path(job.source_path))
        case o.Fail():
            lifecycle.fail(led, job, outcome.code, outcome.message, outcome.context)
            _failed(ctx, job.id, outcome.context)
        case o.NeedsAttention():
            lifecycle.needs_attention(led, job, outcome.code, outcome.message, outcome.context)
        case o.AutoResubmit():
            lifecycle.resubmit_automatically(led, job, ctx.now())
        case o.Settled():
            write_outputs(ctx, job.id, outcome.outputs)
            after_done(ctx, lifecycle.settled(led, job, outcome.code, outcome.why))
        case o.Finished():
            done = lifecycle.move(
                led, job.id, JobState.DOWNLOADING, JobState.DONE, why=outcome.why,
                last_error=None, last_error_context=None,
            )  # fmt: skip
            after_done(ctx, done)
    return False


def _failed(ctx: StageContext, job_id: int, context: str | None) -> None:
    """The job just failed: say so once and run the on_failure post-action."""
    job = ctx.ledger.get(job_id)
    log.error("job failed", reason=job.last_error, context=context)
    on_failure(ctx, job, job.last_error or "", context)
