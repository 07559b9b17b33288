"""A stable file becomes a job; identical content or outputs already on disk settle it free."""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from pathlib import Path

from synthesia_watchd.config.load import WatchConfig
from synthesia_watchd.domain import media, outputs
from synthesia_watchd.domain.errors import ContentError, StaleTransition, UnsafePathError
from synthesia_watchd.domain.reasons import Reason
from synthesia_watchd.domain.states import JobState, OutputState
from synthesia_watchd.engine import lifecycle
from synthesia_watchd.engine.jobspec import (
    job_settings,
    output_file,
    output_kinds,
    output_name_problem,
    output_root,
)
from synthesia_watchd.files import adopt, atomic, completeness
from synthesia_watchd.files.sourcefile import NotRegularFile
from synthesia_watchd.stores.ledger import Job
from synthesia_watchd.telemetry.logsetup import get_logger, job_context

from . import decide
from . import outcome as o
from .apply import apply
from .context import StageContext
from .postactions import on_failure
from .settings import JobSettings

log = get_logger(component="pipeline")


def intake(
    ctx: StageContext,
    watch: WatchConfig,
    path: Path,
    size: int,
    mtime_ns: int,
    *,
    incomplete: str | None = None,
) -> Job | None:
    """Record a stable file as a job, or recognise it as already known.

    Checks the content (magic bytes) and the container's structure before anything is
    spent, hashes it, and satisfies identical content from an earlier done job without an
    API call. ``incomplete``: the watcher gave up waiting for this file to become whole.
    """
    src = str(path)
    known = ctx.ledger.find_job(watch.name, src, size, mtime_ns)
    if known is not None:
        if lifecycle.came_back(known):
            return lifecycle.source_back(ctx.ledger, known, ctx.now())
        return None
    settings = job_settings(watch)
    add_job = functools.partial(
        ctx.ledger.add_job,
        watch=watch.name,
        source_path=src,
        size=size,
        mtime_ns=mtime_ns,
        source_language=watch.source_language,
        targets=list(watch.targets),
        output_dir=str(outputs.output_dir(watch, path)),
        kinds=output_kinds(settings),
    )
    refused = output_name_problem(path.stem, watch.targets, output_kinds(settings))
    if refused is None and incomplete is not None:
        refused = f"{path.name}: {incomplete}"
    facts = refused if refused is not None else _examine(ctx, path, size)
    if facts is None:
        return None
    if isinstance(facts, str):
        # Born failed in one transaction: the scheduler never sees it queued.
        job = add_job(
            sha256=None, settings=settings, state=JobState.FAILED, why=facts, last_error=facts,
            reason_code=Reason.CONTENT_REFUSED.value,
        )  # fmt: skip
        with job_context(job.id, path.name, "intake"):
            log.error("job failed", reason=facts)
            on_failure(ctx, job, facts, None)
        return ctx.ledger.get(job.id)
    settings["content_type"] = facts.content_type
    settings["content_md5"] = facts.md5
    job = add_job(sha256=facts.sha256, settings=settings, duration_s=facts.duration_s)
    with job_context(job.id, path.name, "intake"):
        log.info("job queued", size=size, targets=list(watch.targets), sha256=facts.sha256[:12],
                 duration_s=facts.duration_s)  # fmt: skip
        settle = settle_without_api(ctx, job, JobSettings.of(job))
        if settle is not None:
            apply(ctx, job, settle)
    return ctx.ledger.get(job.id)


@dataclass(frozen=True)
class _Facts:
    """What intake learns from the file itself."""

    content_type: str
    sha256: str
    md5: str
    duration_s: float | None


def _examine(ctx: StageContext, path: Path, size: int) -> _Facts | str | None:
    """The file's facts (content type, container structure, digests), why it is refused
    (a str), or None when it is to be offered again later (still changing, gone, not a
    regular file for now)."""
    try:
        content_type = media.content_type_for(path)
        structure = completeness.inspect(path)
        if structure.size != size:
            return None  # still changing: the watcher reports the new version
        if not structure.complete:
            raise ContentError(f"{path.name}: {completeness.describe(structure)}")
        sha256, md5, read = atomic.file_digests(path)
    except ContentError as exc:
        return str(exc)
    except FileNotFoundError:
        return None  # deleted between stable and intake: forgotten
    except NotRegularFile:
        # Something else took the name for now (a FIFO swapped in): the watcher
        # forgets the file, so the video is offered again once it is back.
        ctx.release_source(path)
        return None
    if read != size:
        return None  # still changing after all; the watcher reports the new version
    return _Facts(content_type, sha256, md5, structure.duration_s)


def settle_without_api(ctx: StageContext, job: Job, settings: JobSettings) -> o.Settled | None:
    """Done with no API call: identical content dubbed before, or outputs already on disk."""
    return reuse(ctx, job, settings) or adopt_existing(ctx, job)


def adopt_existing(ctx: StageContext, job: Job) -> o.Settled | None:
    """Every output already on disk, newer than the source (a ledger started afresh, a
    folder dubbed by a script before): recorded as this job's, nothing is sent."""
    try:
        wanted = {
            (out.language, out.kind): output_file(job, out.language, out.kind)
            for out in ctx.ledger.outputs(job.id)
        }
    except UnsafePathError:
        return None
    found = decide.adoptable(ctx.ledger, wanted, job.mtime_ns, job_id=job.id)
    if found is None:
        return None
    rows = tuple(
        o.OutputRow(f.language, f.kind, OutputState.DONE,
                    {"path": str(f.path), "bytes": f.size, "sha256": f.sha256})
        for f in found
    )  # fmt: skip
    why = f"{adopt.ADOPTED}: {len(found)} file(s) newer than the source; no API call"
    return o.Settled(Reason.ADOPTED, why, rows)


def reuse(ctx: StageContext, job: Job, settings: JobSettings) -> o.Settled | None:
    """Satisfy a job from identical earlier work: same bytes, language and targets."""
    if job.sha256 is None:
        return None
    found = decide.reusable_twin(
        ctx.ledger, job.sha256, job.source_language, job.targets, settings.kinds, not_job=job.id
    )
    if found is None:
        return None
    twin, sources = found
    wanted = ctx.ledger.outputs(job.id)
    rows = []
    for out in wanted:
        prev_path = sources[(out.language, out.kind)].path
        assert prev_path is not None
        dest = output_file(job, out.language, out.kind)
        digest = atomic.link_or_copy(Path(prev_path), dest, root=output_root(job))
        fields = {"path": str(dest), "bytes": dest.stat().st_size, "sha256": digest}
        rows.append(o.OutputRow(out.language, out.kind, OutputState.DONE, fields))
    log.info("job done from earlier outputs", twin=twin.id)
    why = f"identical content already dubbed by job {twin.id}; outputs reused, no API call"
    return o.Settled(Reason.REUSED, why, tuple(rows))


def source_vanished(ctx: StageContext, watch: str, path: Path) -> list[int]:
    """Cancel jobs that have not uploaded yet whose source file disappeared."""
    cancelled = []
    for job in ctx.ledger.jobs_for_path(
        watch, str(path), states=(JobState.QUEUED, JobState.ASSET_CREATED)
    ):
        with contextlib.suppress(StaleTransition):
            lifecycle.vanished(ctx.ledger, job)
            ctx.credentials.pop(job.id, None)
            cancelled.append(job.id)
    return cancelled
