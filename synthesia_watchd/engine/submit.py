"""Stage ``uploaded``: wait for a detected language if asked, then start the dubbing project.

POST /v2/dubbing is the one request that costs money and is not idempotent: a durable marker
is written right before it goes out, so an answer lost to a crash is known to be ambiguous.
"""

from __future__ import annotations

import contextlib
import functools

from synthesia_watchd.domain.errors import AmbiguousSubmit, PermanentError, StaleTransition
from synthesia_watchd.domain.reasons import Reason
from synthesia_watchd.domain.states import JobState
from synthesia_watchd.engine import lifecycle
from synthesia_watchd.engine.jobspec import job_title, shared_locales
from synthesia_watchd.stores.ledger import Job, until_recorded
from synthesia_watchd.telemetry.logsetup import get_logger

from . import outcome as o
from .asset import WAIT_SECONDS
from .context import StageContext
from .poll import poll_args
from .settings import JobSettings
from .singlerun import Runners

log = get_logger(component="pipeline")

#: How long a job held by the daily limits waits before looking again.
BUDGET_WAIT_SECONDS = 60.0


def run(ctx: StageContext, job: Job, settings: JobSettings) -> o.Outcome:
    if job.submit_started_at is not None:
        # We died (or lost the answer) after sending POST /v2/dubbing: never repeat blindly.
        raise AmbiguousSubmit(
            "POST /v2/dubbing was sent but its answer was never recorded",
            operation="POST /v2/dubbing",
        )
    if job.source_language == "auto" and not job.detected_language:
        if not _detected(ctx, job):
            return o.Wait(ctx.now() + WAIT_SECONDS)
        job = ctx.ledger.get(job.id)
    client = ctx.require_client()
    clash = shared_locales(job.targets)
    if clash and client.answers_bare_codes:
        return _indistinct(job, clash)
    blocked = _reserve(ctx, job)
    if blocked is not None:
        return blocked
    try:
        project_id = client.start_dubbing(
            asset_id=job.asset_id or "",
            title=job_title(job),
            source_language=job.detected_language or job.source_language,
            target_languages=list(job.targets),
            **settings.dub_options(),
            on_send=lambda: lifecycle.submit_sending(
                ctx.ledger, job, ctx.now(), node=ctx.config.node_name
            ),
            on_refused=lambda: lifecycle.submit_refused(ctx.ledger, job),
        )
        try:
            # The project exists (and is paid for) from here: its id must reach the ledger
            # even across a lost database connection.
            until_recorded(
                functools.partial(
                    lifecycle.move,
                    ctx.ledger,
                    job.id,
                    JobState.UPLOADED,
                    JobState.DUBBING,
                    why=f"dubbing project {project_id} started",
                    project_id=project_id,
                    submit_started_at=None,
                    attempts=0,
                    next_attempt_at=ctx.polls.first_poll_at(
                        job, ctx.now(), **poll_args(ctx, settings)
                    ),
                ),
                ctx.stop,
            )
        except StaleTransition:
            _keep_orphan_project(ctx, job.id, project_id)
            raise
    finally:
        with ctx.slots.lock:
            ctx.slots.submitting.pop(job.id, None)
            _leave_turn(ctx, job.id)
    log.info("dubbing started", project_id=project_id, targets=list(job.targets))
    return None


def _reserve(ctx: StageContext, job: Job) -> o.Outcome:
    """Check the daily limits and take a project slot, as one step for all workers (two
    never both take the last slot); returns why the job must wait, or None once reserved.

    With daily limits set, the check and the submits it lets through are one node's at a
    time (a runner lease): another node's submits, not yet recorded, would be invisible to
    its count. The lease is held until this node's last submit under way is recorded.
    """
    config = ctx.config
    with ctx.slots.lock:
        if config.max_jobs_per_day is not None or config.max_bytes_per_day is not None:
            holder = ctx.runners.get(Runners.SPENDING).enter(
                ctx.ledger, config.node_name, ctx.now(), config.lease_duration
            )
            if holder is not None:
                return o.Hold(
                    ctx.now() + WAIT_SECONDS,
                    Reason.DAILY_LIMIT,
                    f"waiting for node {holder}'s submits: the daily limits are checked "
                    "one node at a time",
                )
            ctx.slots.in_turn.add(job.id)
        try:
            block = ctx.slots.budget_block(ctx.ledger, config, job, ctx.now())
            if block is not None:
                if ctx.pauses.set("budget", block):
                    log.warning("daily limit reached: jobs wait", reason=block)
                outcome: o.Outcome = o.Hold(
                    ctx.now() + BUDGET_WAIT_SECONDS, Reason.DAILY_LIMIT, block
                )
            elif not ctx.slots.allowed(ctx.ledger, config):
                ctx.pauses.clear("budget")
                outcome = o.Wait(ctx.now() + WAIT_SECONDS)
            else:
                ctx.pauses.clear("budget")
                ctx.slots.submitting[job.id] = job.size
                return None
        except BaseException:
            _leave_turn(ctx, job.id)
            raise
        _leave_turn(ctx, job.id)
    return outcome


def _leave_turn(ctx: StageContext, job_id: int) -> None:
    """The job is out of the spending check's lease (call with the slots' lock held)."""
    if job_id in ctx.slots.in_turn:
        ctx.slots.in_turn.discard(job_id)
        ctx.runners.get(Runners.SPENDING).leave(ctx.ledger, ctx.config.node_name)


def _indistinct(job: Job, clash: list[str]) -> o.NeedsAttention:
    """The API answers bare codes: dubs of ``clash`` (es-ES, es-MX) could not be told apart,
    so the job is not submitted (not paid for) and waits for a person."""
    message = (
        f"not sent: the API answers bare language codes, so {' and '.join(clash)} could not "
        "be told apart in its answer; nothing was paid for this file"
    )
    context = (
        "give each locale of one language its own watch (one target per language in a "
        f"watch), then `retry {job.id}`; the daemon learns this anew after a restart or reload"
    )
    log.warning("not submitted: ambiguous language codes", languages=clash)
    return o.NeedsAttention(Reason.AMBIGUOUS_LANGUAGE, message, context)


def _keep_orphan_project(ctx: StageContext, job_id: int, project_id: str) -> None:
    """A project was started but the job moved meanwhile (an operator's cancel): never
    lose the id of something paid for; `retry` then polls it instead of paying again."""
    current = ctx.ledger.get(job_id)
    with contextlib.suppress(StaleTransition):
        lifecycle.orphan_project(ctx.ledger, current, project_id)
    log.error(
        "project started for a job that moved on",
        project_id=project_id,
        state=current.state.value,
    )


def _detected(ctx: StageContext, job: Job) -> bool:
    """For ``source_language: auto``: whether the asset's detected language is known (and
    recorded); raises when Synthesia could not process or detect it."""
    info = ctx.require_client().get_asset(job.asset_id or "")
    if info.status == "error":
        raise PermanentError(
            f"Synthesia could not process the asset: {info.error_code or 'unknown'}",
            error=info.error_code or "asset_error",
            context="GET /v2/assets/{id}",
        )
    if info.status != "ready" or info.detected_language is None:
        return False
    if info.detected_language == "und":
        raise PermanentError(
            "Synthesia could not detect the spoken language (und); set source_language",
            error="language_detect",
            context=info.detected_language,
        )
    lifecycle.detected(ctx.ledger, job, info.detected_language)
    return True
