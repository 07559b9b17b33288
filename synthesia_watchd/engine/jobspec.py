"""What a job is made of: settings frozen from its watch, output names, titles, matching.

Pure functions over a job's ledger row and the API's answers. Frozen settings are why a job
keeps the options it started with across a config reload; output names are where untrusted
language codes meet the filesystem, so they are sanitised and checked to stay in the folder.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from synthesia_watchd.config.load import PostAction, WatchConfig
from synthesia_watchd.domain import outputs
from synthesia_watchd.domain.apitypes import DubbedAsset, Project
from synthesia_watchd.domain.contract import MAX_TITLE_LENGTH
from synthesia_watchd.domain.names import clean
from synthesia_watchd.stores.ledger import Job


def job_settings(watch: WatchConfig) -> dict[str, Any]:
    """The per-watch options frozen into a job when it is created.

    In-flight jobs keep the settings they started with across a SIGHUP reload.
    """

    def action(a: PostAction) -> dict[str, Any]:
        return {"kind": a.kind, "path": str(a.path) if a.path else None}

    return {
        "input_root": str(watch.input),
        "output_root": str(watch.output_root),
        "outputs": list(watch.outputs),
        "lipsync": watch.lipsync,
        "video_duration": watch.video_duration,
        "visibility": watch.visibility,
        "title": watch.title,
        "poll_interval": watch.poll_interval,
        "on_success": action(watch.on_success),
        "on_failure": action(watch.on_failure),
    }


def output_kinds(settings: Mapping[str, Any]) -> list[str]:
    """Ledger output kinds for a job's frozen ``outputs:`` option (see outputs.output_kinds)."""
    return outputs.output_kinds(settings.get("outputs", ["video"]))


def job_title(job: Job) -> str:
    """The job's title template filled in, capped at the contract's 256 characters."""
    src = Path(job.source_path)
    template = job.settings.get("title", "{stem}")
    try:
        title = template.format(
            stem=src.stem, name=src.name, watch=job.watch, lang_list=", ".join(job.targets)
        )
    except (KeyError, IndexError, ValueError):
        title = src.stem
    # A name that is not UTF-8 cannot go into a JSON body as is: its odd bytes become U+FFFD.
    return clean(title or src.stem or "Untitled")[:MAX_TITLE_LENGTH]


def output_file(job: Job, language: str, kind: str) -> Path:
    """Where one output of a job goes: outputs.output_name in the job's output folder.

    Writes to it go through ``output_root(job)`` without following symlinks.
    """
    return Path(job.output_dir) / outputs.output_name(Path(job.source_path).stem, language, kind)


def output_root(job: Job) -> Path:
    """The output root a job's files must stay inside (frozen at intake)."""
    return Path(job.settings.get("output_root") or job.output_dir)


#: Longest file name (bytes) common filesystems take; an output also needs its temp name,
#: ``.<name>.<8 hex>.part``, 15 bytes longer.
NAME_MAX, _TEMP_NAME_EXTRA = 255, 15


def output_name_problem(stem: str, targets: Sequence[str], kinds: Sequence[str]) -> str | None:
    """Why the outputs of a source named ``stem`` could not be written, checked before paying."""
    longest = max(len(os.fsencode(outputs.output_name(stem, t, k))) for t in targets for k in kinds)
    if longest + _TEMP_NAME_EXTRA <= NAME_MAX:
        return None
    return (
        f"file name too long: its dubbed outputs would need names of {longest} bytes "
        f"(at most {NAME_MAX - _TEMP_NAME_EXTRA} fit); rename the file, it is not sent"
    )


#: The error code of an output the API answered only under a bare code ("es") that another
#: target shares (es-ES and es-MX): it cannot be told which dub is which, so none is written.
AMBIGUOUS_LANGUAGE_CODE = "ambiguous_language"


def shared_locales(targets: Sequence[str]) -> list[str]:
    """The targets that share their base language with another (es-ES and es-MX)."""
    bases = [t.split("-")[0].lower() for t in targets]
    return [t for t, base in zip(targets, bases, strict=True) if bases.count(base) > 1]


def missing_code(project: Project, language: str, targets: Sequence[str]) -> str:
    """Why ``match_assets`` found nothing for ``language``: an item under its bare base code
    that another of ``targets`` shares (ambiguous), or no item at all."""
    base = language.split("-")[0].lower()
    bare = any(a.language.lower() == base for a in project.assets if a.language)
    shared = language in shared_locales(targets)
    return AMBIGUOUS_LANGUAGE_CODE if bare and shared else "missing_from_project"


def match_assets(
    project: Project, targets: Sequence[str], among: Sequence[str] = ()
) -> dict[str, DubbedAsset]:
    """Map each language we asked for to the dubbed asset the API returned for it.

    Anything else the API returns is ignored: only languages we asked for are written. An
    exact (case-insensitive) match wins; otherwise a unique base-language match (``fr`` for
    ``fr-FR``) is accepted, since the contract leaves the item language format open, unless
    another of ``targets`` or ``among`` (the job's other languages) shares the base.
    """
    by_lang: dict[str, DubbedAsset] = {}
    lowered = {a.language.lower(): a for a in project.assets if a.language}
    rivals = {*targets, *among}
    for t in targets:
        hit = lowered.get(t.lower())
        base = t.split("-")[0].lower()
        shared = sum(1 for u in rivals if u.split("-")[0].lower() == base)
        if hit is None and shared == 1:
            # Only when no other target shares the base: one "fr" item is never written
            # as both fr-FR and fr-CA.
            cands = [a for k, a in lowered.items() if k.split("-")[0] == base]
            hit = cands[0] if len(cands) == 1 else None
        if hit is not None:
            by_lang[t] = hit
    return by_lang


def local_midnight(now: float) -> float:
    """Start of the operator's local day, for daily limits."""
    dt = datetime.fromtimestamp(now).replace(hour=0, minute=0, second=0, microsecond=0)
    return dt.timestamp()


def asset_url(asset: DubbedAsset | None, kind: str) -> str | None:
    """The signed URL of one output kind of a dubbed asset (video, captions, thumbnail)."""
    if asset is None:
        return None
    if kind == "video":
        return asset.download
    if kind in ("vtt", "srt"):
        return (asset.captions or {}).get(kind)
    if kind == "thumbnail":
        return (asset.thumbnail or {}).get("image")
    return None


def post_action(data: Any) -> PostAction:
    """A post-action back from a job's frozen settings."""
    if isinstance(data, Mapping):
        path = data.get("path")
        return PostAction(kind=data.get("kind", "keep"), path=Path(path) if path else None)
    return PostAction(kind="keep", path=None)


class FrozenWatch:
    """The parts of a watch a post-action needs, rebuilt from a job's frozen settings.

    Used when the watch was removed by a reload while the job was in flight.
    """

    def __init__(self, job: Job) -> None:
        self.name = job.watch
        self.input = Path(job.settings.get("input_root", Path(job.source_path).parent))
        self.output = output_root(job)

    @property
    def output_root(self) -> Path:
        return self.output
