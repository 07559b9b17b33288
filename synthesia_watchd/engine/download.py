"""Stage ``downloading``: fetch every pending output, verify them, and end the job."""

from __future__ import annotations

import functools
from pathlib import Path

from synthesia_watchd.domain import outputs
from synthesia_watchd.domain.apitypes import DubbedAsset
from synthesia_watchd.domain.errors import (
    DownloadUrlExpired,
    ShutdownRequested,
    TransientError,
    UnsafeUrlError,
)
from synthesia_watchd.domain.reasons import Reason
from synthesia_watchd.domain.states import JobState, OutputState
from synthesia_watchd.engine.jobspec import (
    AMBIGUOUS_LANGUAGE_CODE,
    asset_url,
    match_assets,
    missing_code,
    output_file,
    output_root,
)
from synthesia_watchd.engine.lifecycle import UNSAFE_URL_CODE
from synthesia_watchd.files import atomic, diskspace
from synthesia_watchd.stores.ledger import Job, Output
from synthesia_watchd.telemetry.logsetup import get_logger

from . import outcome as o
from .apply import write_outputs
from .context import StageContext
from .settings import JobSettings

log = get_logger(component="pipeline")


def run(ctx: StageContext, job: Job, settings: JobSettings) -> o.Outcome:
    held = space_held(ctx, job)
    if held is not None:
        return held
    client = ctx.require_client()
    todo = [out for out in ctx.ledger.outputs(job.id) if out.state is OutputState.PENDING]
    languages = sorted({out.language for out in todo})
    # Fresh signed URLs: the ones seen while polling may have expired meanwhile.
    project = client.get_project(job.project_id or "", languages) if todo else None
    refreshed = False
    for out in todo:
        if ctx.stop.is_set():
            raise ShutdownRequested
        assert project is not None
        asset = match_assets(project, [out.language], job.targets).get(out.language)
        url = asset_url(asset, out.kind) if asset else None
        if asset is None or asset.status != "complete" or url is None:
            missing = missing_code(project, out.language, job.targets)
            write_outputs(ctx, job.id, (_unavailable(out, asset, missing),))
            continue
        try:
            try:
                row = _fetch(ctx, job, out, asset, url)
            except DownloadUrlExpired:
                if refreshed:
                    raise
                # Signed URLs are time-limited: fetch fresh ones once per stage and retry.
                refreshed = True
                project = client.get_project(job.project_id or "", languages)
                asset = match_assets(project, [out.language], job.targets).get(out.language)
                url = asset_url(asset, out.kind) if asset else None
                if asset is None or url is None:
                    raise
                row = _fetch(ctx, job, out, asset, url)
        except UnsafeUrlError as exc:
            # The answer is untrusted: this output fails, the others are still written.
            _refuse(ctx, job, out, str(exc))
            continue
        write_outputs(ctx, job.id, (row,))
        space_back(ctx, job)
    return finish(ctx, ctx.ledger.get(job.id))


def _unavailable(out: Output, asset: DubbedAsset | None, missing: str) -> o.OutputRow:
    """The failed row of an output Synthesia did not deliver (or gave no URL for);
    ``missing``: the code when the answer holds no item for it (``jobspec.missing_code``)."""
    if asset is None or asset.status != "complete":
        code = (asset.error_code if asset else None) or missing
        return o.OutputRow(out.language, out.kind, OutputState.FAILED, {"error_code": code})
    fields = {"error_code": f"no_{out.kind}_url", "dubbed_asset_id": asset.id}
    return o.OutputRow(out.language, out.kind, OutputState.FAILED, fields)


def _fetch(ctx: StageContext, job: Job, out: Output, asset: DubbedAsset, url: str) -> o.OutputRow:
    """Download one output into its place; the done row to record."""
    dest = output_file(job, out.language, out.kind)
    sink = outputs.OutputSink(dest, output_root(job), functools.partial(_ours_to_replace, ctx, job))
    result = ctx.require_client().download(
        url, sink, progress=ctx.progress.download(job, out.language, out.kind)
    )
    log.info(
        "output written", language=out.language, kind=out.kind, bytes=result.bytes, path=str(dest)
    )
    fields = {
        "path": str(dest),
        "bytes": result.bytes,
        "sha256": result.sha256,
        "dubbed_asset_id": asset.id,
    }
    return o.OutputRow(out.language, out.kind, OutputState.DONE, fields)


def _refuse(ctx: StageContext, job: Job, out: Output, reason: str) -> None:
    """Fail one output whose download URL is unsafe (never contacted), with the reason."""
    row = o.OutputRow(out.language, out.kind, OutputState.FAILED, {"error_code": UNSAFE_URL_CODE})
    write_outputs(ctx, job.id, (row,))
    ctx.ledger.note(job.id, f"{out.language}/{out.kind} not downloaded: {reason}")
    log.error("unsafe download URL refused", language=out.language, kind=out.kind, reason=reason)


def _ours_to_replace(ctx: StageContext, job: Job, dest: Path) -> bool:
    """An existing output may be replaced only if we wrote it for an earlier version of
    this same source; another source's output (``talk.mp4`` vs ``talk.m4v``) never."""
    owner_id = ctx.ledger.output_written_by(str(dest), atomic.file_sha256(dest))
    if owner_id is None or owner_id == job.id:
        return False
    owner = ctx.ledger.get(owner_id)
    if (owner.watch, owner.source_path) != (job.watch, job.source_path):
        return False
    log.info("replacing the output of an earlier version", path=str(dest), job=owner_id)
    return True


def finish(ctx: StageContext, job: Job) -> o.Outcome:
    """Every output settled: done, partial or failed; a lost output is fetched again."""
    outs = ctx.ledger.outputs(job.id)
    if any(out.state is OutputState.PENDING for out in outs):
        return None
    failed = [out for out in outs if out.state is OutputState.FAILED]
    done = [out for out in outs if out.state is OutputState.DONE and out.path]
    problems = {out: outputs.verify_outputs([Path(out.path)]) for out in done if out.path}
    lost = [out for out, found in problems.items() if found]
    if lost:
        # An output vanished or was emptied before the job finished: fetch it again.
        pending = tuple(o.OutputRow(out.language, out.kind, OutputState.PENDING) for out in lost)
        write_outputs(ctx, job.id, pending)
        raise TransientError(
            "outputs failed verification: " + "; ".join(p for out in lost for p in problems[out])
        )
    if not failed:
        log.info("job done", outputs=len(done))
        return o.Finished(f"{len(done)} output(s) written and verified")
    reasons = ", ".join(f"{out.language}/{out.kind}: {out.error_code}" for out in failed)
    if any(out.error_code == AMBIGUOUS_LANGUAGE_CODE for out in failed):
        return ambiguous(job, failed, done)
    if not done and all(out.error_code == UNSAFE_URL_CODE for out in failed):
        # Nothing usable came back, through no fault of the dub: `retry` re-polls the
        # project (no new charge) once allowed_download_hosts or the API is fixed.
        why = f"every download URL was refused as unsafe ({reasons})"
        return o.Fail(Reason.UNSAFE_URLS, why)
    log.warning("job partial", failed=reasons, written=len(done))
    return o.Move(
        JobState.PARTIAL,
        f"some languages failed at Synthesia ({reasons}); `retry` dubs them again as a new job",
        Reason.LANGUAGES_FAILED,
        {"last_error": f"languages failed: {reasons}"},
    )


def ambiguous(job: Job, failed: list[Output], done: list[Output]) -> o.NeedsAttention:
    """Some dubs came back under a bare code two targets share: which is which is unknown, so
    none of them was written; the job waits for a person (no new dub is paid for by itself)."""
    langs = sorted({out.language for out in failed if out.error_code == AMBIGUOUS_LANGUAGE_CODE})
    bases = ", ".join(sorted({f"'{lang.split('-')[0].lower()}'" for lang in langs}))
    others = sorted(
        {f"{out.language}: {out.error_code}" for out in failed if out.language not in langs}
    )
    message = (
        f"the API answered bare language codes ({bases}) that cannot tell "
        f"{' from '.join(langs)}: nothing was written for them"
        + (f" ({len(done)} other output(s) written)" if done else "")
        + (f"; also failed: {', '.join(others)}" if others else "")
    )
    context = (
        f"they are dubbed and paid for in project {job.project_id}. To get each locale, give "
        "every locale of one language its own watch (one dub each, paid for again), or ask "
        f"Synthesia to answer full locales; `retry {job.id}` polls this project again at no "
        "new charge and writes them once the API names the locales"
    )
    log.warning("ambiguous language codes", languages=langs, codes=bases)
    return o.NeedsAttention(Reason.AMBIGUOUS_LANGUAGE, message, context)


def space_held(ctx: StageContext, job: Job) -> o.Hold | None:
    """Whether the job's output root is still full (then the job waits, spending nothing)."""
    reason = ctx.space.blocked(output_root(job))
    if reason is None:
        return None
    return o.Hold(ctx.now() + diskspace.RECHECK_SECONDS, Reason.NO_SPACE, reason)


def space_back(ctx: StageContext, job: Job) -> None:
    """An output was written: a hold on its root ends (logged once, gone from `status`)."""
    root = output_root(job)
    if ctx.space.written(root):
        ctx.pauses.clear(f"space:{root}")
        log.info("space is back: downloads resume", output_root=str(root))
