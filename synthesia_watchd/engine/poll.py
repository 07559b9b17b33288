"""Stage ``dubbing``: poll the project until every requested language is settled."""

from __future__ import annotations

import contextlib

from synthesia_watchd.domain.errors import ProjectFailed, WatchdError
from synthesia_watchd.domain.states import JobState, OutputState
from synthesia_watchd.engine.jobspec import match_assets, missing_code
from synthesia_watchd.stores.ledger import Job
from synthesia_watchd.telemetry.logsetup import get_logger

from . import outcome as o
from .context import StageContext
from .settings import JobSettings

log = get_logger(component="pipeline")

#: How the message of a job failed by Synthesia itself begins (for people; the rule keys on
#: Reason.PROJECT_FAILED).
PROJECT_FAILED = "Synthesia failed the dubbing project"


#: Why status polls wait (a pause of kind "reads"): the day's read budget is nearly spent.
POLLS_HELD = (
    "the day's read budget for status polls is spent; polls wait until reads free up "
    "(downloads go on)"
)


def run(ctx: StageContext, job: Job, settings: JobSettings) -> o.Outcome:
    held = ctx.polls.hold(ctx.now())
    if held > 0:
        # Only the reads kept for downloads are left today: polls wait, downloads do not.
        if ctx.pauses.set("reads", POLLS_HELD):
            log.warning("daily read budget nearly spent: status polls wait", seconds=held)
        return o.Wait(ctx.now() + held)
    if ctx.pauses.clear("reads"):
        log.info("read budget available again: status polls resume")
    outputs = ctx.ledger.outputs(job.id)
    pending = [out.language for out in outputs if out.state is OutputState.PENDING]
    targets = sorted(set(pending)) or list(job.targets)
    project = ctx.require_client().get_project(job.project_id or "", targets)
    if project.status == "error":
        raise ProjectFailed(
            f"{PROJECT_FAILED}: {project.error_code or 'unknown'}",
            error=project.error_code or "error",
            context=f"project {project.id}",
        )
    found = match_assets(project, targets, job.targets)
    settled = all(t in found and found[t].status in ("complete", "error") for t in targets)
    if project.status != "complete" and not settled:
        ctx.progress.dubbing(job)
        return o.Wait(ctx.polls.next_poll_at(job, ctx.now(), **poll_args(ctx, settings)))
    failed = []
    for t in targets:
        asset = found.get(t)
        if asset is None or asset.status == "error":
            fields = {
                "error_code": asset.error_code if asset else missing_code(project, t, job.targets),
                "dubbed_asset_id": asset.id if asset else None,
            }
            failed += [
                o.OutputRow(t, out.kind, OutputState.FAILED, fields)
                for out in outputs
                if out.language == t and out.state is OutputState.PENDING
            ]

    def replan() -> None:
        with contextlib.suppress(WatchdError):  # re-planning the others is only a speed-up
            ctx.polls.finished(job.id, ctx.now(), poll_max=ctx.config.poll_interval_max)

    # Downloads run on their own pool (workers.max_downloads), not on this poll thread.
    return o.Move(
        JobState.DOWNLOADING,
        "dubbing complete",
        fields={"next_attempt_at": ctx.now(), "attempts": 0},
        outputs=tuple(failed),
        after=replan,
    )


def poll_args(ctx: StageContext, settings: JobSettings) -> dict[str, float]:
    """The job's own poll interval and the config's cap, for the poll plan."""
    return {"poll_interval": settings.poll_interval, "poll_max": ctx.config.poll_interval_max}
