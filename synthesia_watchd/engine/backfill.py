"""New targets for done jobs: languages added to their existing projects (no re-upload)."""

from __future__ import annotations

from collections.abc import Sequence

from synthesia_watchd.config.load import WatchConfig
from synthesia_watchd.domain.reasons import Reason
from synthesia_watchd.domain.states import JobState, OutputState
from synthesia_watchd.stores.ledger import Job

from . import outcome as o
from .apply import apply
from .context import StageContext
from .settings import JobSettings


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
