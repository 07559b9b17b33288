"""Stage ``dubbing``: poll the project until every requested language is settled."""

from __future__ import annotations

from synthesia_watchd.errors import ProjectFailed
from synthesia_watchd.jobspec import match_assets
from synthesia_watchd.ledger import Job
from synthesia_watchd.states import JobState, OutputState

from . import outcome as o
from .context import StageContext
from .settings import JobSettings

#: How the message of a job failed by Synthesia itself begins (for people; the rule keys on
#: Reason.PROJECT_FAILED).
PROJECT_FAILED = "Synthesia failed the dubbing project"


def run(ctx: StageContext, job: Job, settings: JobSettings) -> o.Outcome:
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
    found = match_assets(project, targets)
    settled = all(t in found and found[t].status in ("complete", "error") for t in targets)
    if project.status != "complete" and not settled:
        ctx.progress.dubbing(job)
        return o.Wait(ctx.now() + poll_delay(ctx, job, settings))
    failed = []
    for t in targets:
        asset = found.get(t)
        if asset is None or asset.status == "error":
            fields = {
                "error_code": asset.error_code if asset else "missing_from_project",
                "dubbed_asset_id": asset.id if asset else None,
            }
            failed += [
                o.OutputRow(t, out.kind, OutputState.FAILED, fields)
                for out in outputs
                if out.language == t and out.state is OutputState.PENDING
            ]
    # Downloads run on their own pool (workers.max_downloads), not on this poll thread.
    return o.Move(
        JobState.DOWNLOADING,
        "dubbing complete",
        fields={"next_attempt_at": ctx.now(), "attempts": 0},
        outputs=tuple(failed),
    )


def poll_delay(ctx: StageContext, job: Job, settings: JobSettings) -> float:
    """Poll cadence: poll_interval at first, then a quarter of the time waited, capped.

    Never faster than the read budget allows for every project being polled: all polls
    go to one endpoint, so 40 projects at 60 reads a minute get one poll each per 40 s,
    spread out, instead of queueing at the limiter and holding poll threads.
    """
    waited = max(0.0, ctx.now() - job.state_changed_at)
    delay = max(settings.poll_interval, waited / 4)
    reads = ctx.config.rate_limits.get("reads")
    per_minute = reads.per_minute if reads is not None else None
    if per_minute:
        delay = max(delay, ctx.ledger.count_in((JobState.DUBBING,)) * 60.0 / per_minute)
    return min(ctx.config.poll_interval_max, delay)
