"""Stage ``asset_created``: upload the source with the asset's temporary credentials."""

from __future__ import annotations

from pathlib import Path

from synthesia_watchd.domain.errors import AuthError, ContentError
from synthesia_watchd.domain.reasons import Reason
from synthesia_watchd.domain.states import JobState
from synthesia_watchd.files import completeness
from synthesia_watchd.stores.ledger import Job

from . import outcome as o
from .asset import ROOT_WAIT_SECONDS
from .context import StageContext
from .settings import JobSettings


def run(ctx: StageContext, job: Job, settings: JobSettings) -> o.Outcome:
    asset = ctx.credentials.get(job.id)
    if asset is None or asset.id != job.asset_id:
        return o.Move(
            JobState.QUEUED,
            "upload credentials lost in a restart; creating a fresh asset",
            Reason.CREDENTIALS_LOST,
            {"next_attempt_at": ctx.now()},
        )
    if ctx.uploader is None:
        raise AuthError("no uploader configured")
    if ctx.source_unchanged(job):
        # The last look before bytes go out: the same file must still be whole.
        structure = completeness.inspect(Path(job.source_path))
        if not structure.complete:
            name = Path(job.source_path).name
            raise ContentError(f"{name}: {completeness.describe(structure)}")
    progress = ctx.progress.upload(job)
    try:
        ctx.uploader(
            Path(job.source_path),
            asset.credentials,
            progress=progress,
            stop=ctx.stop,
            content_type=settings.content_type,
        )
    except FileNotFoundError:
        ctx.credentials.pop(job.id, None)
        if not ctx.root_available(job.watch):
            # A NAS hiccup or an unmounted share: start over once the folder is back.
            return o.Move(
                JobState.QUEUED,
                "watch folder unreachable during upload; waiting for it",
                Reason.ROOT_UNAVAILABLE,
                {"next_attempt_at": ctx.now() + ROOT_WAIT_SECONDS},
            )
        return o.Vanished(during="during upload")
    ctx.credentials.pop(job.id, None)
    return o.Move(
        JobState.UPLOADED,
        f"uploaded {job.size} bytes ({progress.rate_text()})",
        fields={"next_attempt_at": ctx.now()},
    )
