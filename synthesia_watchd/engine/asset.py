"""Stage ``queued``: settle free if possible, else create the asset the upload goes to."""

from __future__ import annotations

from pathlib import Path

from synthesia_watchd.domain import media
from synthesia_watchd.domain.reasons import Reason
from synthesia_watchd.domain.states import TERMINAL, JobState
from synthesia_watchd.engine.jobspec import job_title
from synthesia_watchd.stores.ledger import Job

from . import outcome as o
from .context import StageContext
from .intake import settle_without_api
from .settings import JobSettings

#: How long a job waits before re-checking when it is blocked (slots full, budget, auth).
WAIT_SECONDS = 5.0
#: How long a job whose watch folder is unreachable waits before looking again.
ROOT_WAIT_SECONDS = 60.0


def run(ctx: StageContext, job: Job, settings: JobSettings) -> o.Outcome:
    settled = settle_without_api(ctx, job, settings)
    if settled is not None:
        return settled
    if not ctx.source_unchanged(job):
        return _source_gone(ctx, job)
    twin = active_twin(ctx, job)
    if twin is not None and twin.state is JobState.NEEDS_ATTENTION:
        why = (
            f"identical content to job #{twin.id}, which needs attention and may already be "
            f"paid for: resolve job #{twin.id} first, then retry this one (it reuses that "
            "job's outputs once it is done, at no charge)"
        )
        return o.NeedsAttention(Reason.TWIN_NEEDS_ATTENTION, why)
    if twin is not None:
        return o.Wait(ctx.now() + WAIT_SECONDS)
    asset = ctx.require_client().create_asset(
        content_type=settings.content_type or media.content_type_for(Path(job.source_path)),
        content_length=job.size,
        title=job_title(job),
        detect_language=job.source_language == "auto",
        content_md5=settings.content_md5,
    )
    ctx.credentials[job.id] = asset
    return o.Move(
        JobState.ASSET_CREATED,
        f"asset {asset.id} created",
        fields={"asset_id": asset.id, "next_attempt_at": ctx.now()},
        run_next=True,
    )


def _source_gone(ctx: StageContext, job: Job) -> o.Outcome:
    """The source is not the version queued: wait for its folder, or cancel the job."""
    if not ctx.root_available(job.watch):
        # An unmounted or unreachable drop folder is not "every file was deleted".
        return o.Hold(
            ctx.now() + ROOT_WAIT_SECONDS,
            Reason.ROOT_UNAVAILABLE,
            "waiting for the watch folder to come back",
        )
    if Path(job.source_path).is_file():  # a FIFO under the name is no new version
        why = "source changed before upload; the new version is a new job"
        return o.Move(JobState.CANCELLED, why, Reason.SOURCE_CHANGED, {"last_error": why})
    return o.Vanished()


def active_twin(ctx: StageContext, job: Job) -> Job | None:
    """An older job for the same content that is unfinished, or waits for a human after its
    dub may have been paid (a submit marker or a project): wait for it, never pay twice."""
    if job.sha256 is None:
        return None
    for other in ctx.ledger.jobs_with_hash(job.sha256):
        if (
            other.id < job.id
            and _unsettled(other)
            and other.source_language == job.source_language
            and sorted(other.targets) == sorted(job.targets)
        ):
            return other
    return None


def _unsettled(job: Job) -> bool:
    if job.state is JobState.NEEDS_ATTENTION:
        return job.project_id is not None or job.submit_started_at is not None
    return job.state not in TERMINAL
