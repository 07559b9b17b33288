"""New targets for done jobs: languages added to their existing projects (no re-upload).

At a daemon's start (and reload) this runs for watches with ``backfill_new_targets``, one node
at a time on a shared ledger (a runner lease held until the last backfill it started is
recorded): nodes starting together would otherwise add the same languages twice.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

from synthesia_watchd.config.load import WatchConfig
from synthesia_watchd.domain.errors import LedgerError, WatchdError
from synthesia_watchd.domain.reasons import Reason
from synthesia_watchd.domain.states import JobState, OutputState
from synthesia_watchd.stores.ledger import Job
from synthesia_watchd.telemetry.logsetup import get_logger

from . import outcome as o
from .apply import apply
from .context import StageContext
from .settings import JobSettings
from .singlerun import Runners

log = get_logger(component="daemon")

#: How a side task is started (the scheduler's submit pool): the function and its arguments.
Submit = Callable[..., None]


def candidates(ctx: StageContext, watch: WatchConfig) -> list[tuple[Job, list[str]]]:
    """Done jobs of a watch that lack some of its current targets, with what is missing.

    Only the newest done job per source file counts, and only one with a project at
    Synthesia (jobs satisfied by reuse point at no project of their own).
    """
    seen: set[str] = set()
    found = []
    for job in ctx.ledger.list_jobs(states=(JobState.DONE,), watch=watch.name, limit=1_000_000):
        if job.source_path in seen:
            continue
        seen.add(job.source_path)  # only the newest version of a source counts
        if not job.project_id:
            continue
        have = {t.lower() for t in job.targets}
        missing = [t for t in watch.targets if t.lower() not in have]
        if missing:
            found.append((job, missing))
    return found


def backfill(ctx: StageContext, job: Job, missing: Sequence[str]) -> str:
    """Add languages to a done job's existing project (PUT /v2/dubbing/{id}).

    No re-upload and no re-dub of the languages it already has: Synthesia skips locales
    the project holds (204 when nothing was missing). The job goes back to dubbing for
    the new languages only; its finished outputs stay as they are.
    """
    settings = JobSettings.of(job)
    result = ctx.require_client().add_locales(
        job.project_id or "", list(missing), **settings.dub_options()
    )
    rows = [
        o.OutputRow(lang, kind, OutputState.PENDING) for lang in missing for kind in settings.kinds
    ]
    rows += [
        o.OutputRow(lang, kind, OutputState.FAILED, {"error_code": error or "error"})
        for lang, error in result.errors
        if lang
        for kind in settings.kinds
    ]
    answer = (
        "nothing to add (204)"
        if result.nothing_added
        else f"{len(result.created)} language(s) added (202)"
    )
    move = o.Move(
        JobState.DUBBING,
        f"backfill of {', '.join(missing)}: {answer}",
        Reason.BACKFILL,
        {"targets": [*job.targets, *missing], "next_attempt_at": ctx.now(), "attempts": 0},
        outputs=tuple(rows),
    )
    apply(ctx, job, move)
    return answer


def start_all(ctx: StageContext, submit: Submit) -> None:
    """Start a backfill task (``submit``) for every done job of a backfilling watch that
    lacks one of its targets; nothing when another node is doing it now."""
    watches = [w for w in ctx.config.watches if w.backfill_new_targets]
    if not watches:
        return
    node, lease = ctx.config.node_name, ctx.config.lease_duration
    runner = ctx.runners.get(Runners.BACKFILL)
    holder = runner.enter(ctx.ledger, node, ctx.now(), lease)
    if holder is not None:
        log.info("backfill of new targets left to the node doing it", node=holder)
        return
    try:
        for watch in watches:
            todo = candidates(ctx, watch)
            if todo:
                log.info("backfilling new targets", watch=watch.name, jobs=len(todo))
            for job, missing in todo:
                if runner.enter(ctx.ledger, node, ctx.now(), lease):
                    return  # the lease went to another node meanwhile: its work now
                try:
                    submit(_one, ctx, job, missing)
                except BaseException:
                    runner.leave(ctx.ledger, node)
                    raise
    finally:
        runner.leave(ctx.ledger, node)


def _one(ctx: StageContext, job: Job, missing: list[str]) -> None:
    try:
        backfill(ctx, job, missing)
    except WatchdError as exc:
        log.warning(
            "backfill failed; retried at the next start or reload", job_id=job.id, error=str(exc)
        )
    finally:
        ctx.runners.get(Runners.BACKFILL).leave(ctx.ledger, ctx.config.node_name)


class Turn:
    """The backfill lease for a one-off run (the ``backfill`` command), as a context: taken
    under ``who`` beside the node's name, or WatchdError naming the node backfilling now."""

    def __init__(self, ctx: StageContext, who: str) -> None:
        self._ctx, self._node = ctx, f"{ctx.config.node_name} ({who})"

    def __enter__(self) -> Turn:
        holder = self.renew()
        if holder is not None:
            raise WatchdError(
                f"node {holder} is adding new targets now (a daemon's start-up backfill); "
                "run backfill again once it is done"
            )
        return self

    def renew(self) -> str | None:
        """Take the lease again for another lease's length (before each project)."""
        ctx = self._ctx
        return ctx.ledger.take_runner(
            Runners.BACKFILL, self._node, ctx.now(), ctx.now() + ctx.config.lease_duration
        )

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(LedgerError):  # else it goes when it expires
            self._ctx.ledger.drop_runner(Runners.BACKFILL, self._node)
