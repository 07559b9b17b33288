"""on_success and on_failure: what happens to a source once its job has ended."""

from __future__ import annotations

from pathlib import Path

from synthesia_watchd.domain import outputs
from synthesia_watchd.domain.errors import WatchdError
from synthesia_watchd.engine.jobspec import FrozenWatch
from synthesia_watchd.stores.ledger import Job
from synthesia_watchd.telemetry.logsetup import get_logger

from .context import StageContext
from .settings import JobSettings

log = get_logger(component="pipeline")


def after_done(ctx: StageContext, job: Job) -> None:
    """on_success, only once every output is verified on disk, and only on the very
    version of the source that was dubbed (a newer one saved meanwhile is left alone)."""
    action = JobSettings.of(job).on_success
    if action.kind == "keep":
        return
    if not ctx.source_unchanged(job):
        ctx.ledger.note(
            job.id,
            f"on_success {action.kind} skipped: the source changed or is gone since it was dubbed",
        )
        return
    watch = ctx.watches.get(job.watch)
    paths = [Path(o.path) for o in ctx.ledger.outputs(job.id) if o.path]
    ctx.release_source(Path(job.source_path))
    try:
        moved = outputs.apply_on_success(
            action, Path(job.source_path), watch or FrozenWatch(job), paths
        )
    except (OSError, WatchdError) as exc:
        ctx.ledger.note(job.id, f"on_success {action.kind} skipped: {exc}")
        log.warning("on_success skipped", reason=str(exc))
        return
    ctx.ledger.note(
        job.id, f"on_success: source {action.kind}d" + (f" to {moved}" if moved else "")
    )


def on_failure(ctx: StageContext, job: Job, reason: str, context: str | None) -> None:
    """The on_failure post-action: move the source aside with a reason file (only the
    version that failed; a newer one saved meanwhile gets its own job)."""
    action = JobSettings.of(job).on_failure
    if action.kind == "keep" or not ctx.source_unchanged(job):
        return
    watch = ctx.watches.get(job.watch)
    ctx.release_source(Path(job.source_path))
    try:
        moved = outputs.apply_on_failure(
            action,
            Path(job.source_path),
            watch or FrozenWatch(job),
            error=reason,
            context=context,
            now=ctx.now(),
        )
    except (OSError, WatchdError) as exc:
        ctx.ledger.note(job.id, f"on_failure move failed: {exc}")
        return
    if moved is not None:
        ctx.ledger.note(job.id, f"on_failure: source moved to {moved}")
