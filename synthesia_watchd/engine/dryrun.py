"""``--dry-run``: what would be sent and billed, with no API call and no ledger write.

Discovers files with the watcher's own walk (``folderwalk.py``), checks each one's content
(magic bytes) and settling state, hashes it, and asks the engine's own decision
(``engine/decide.py``, read-only) whether the work is already done or paid for: identical
earlier outputs of the same kinds, or every output already on disk (adopted).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from synthesia_watchd.config.load import Config, WatchConfig
from synthesia_watchd.domain import media, outputs
from synthesia_watchd.domain.errors import ContentError, LedgerError
from synthesia_watchd.domain.names import printable
from synthesia_watchd.domain.states import JobState
from synthesia_watchd.files import atomic, completeness
from synthesia_watchd.files.folderwalk import FolderWalk
from synthesia_watchd.stores.ledger import LedgerStore, open_ledger

from . import decide
from .jobspec import job_settings, output_kinds


@dataclass(frozen=True)
class PlanItem:
    """One file and what a real run would do with it."""

    watch: str
    path: Path
    size: int
    action: str  # "dub" | "done" | "reuse" | "settling" | "incomplete" | "reject" | "in_progress"
    detail: str
    targets: tuple[str, ...]
    duration_s: float | None = None  # parsed from the file: the video minutes billed


class _Base(TypedDict):
    """The PlanItem fields that depend only on the file, not on the decision."""

    watch: str
    path: Path
    size: int
    targets: tuple[str, ...]


def discover(watch: WatchConfig) -> Iterable[Path]:
    """Every file under a watch's input that the watcher would consider (its very walk)."""
    try:
        found = FolderWalk(watch).walk()
    except OSError:
        return []
    return sorted(found)


def plan_file(
    watch: WatchConfig, path: Path, ledger: LedgerStore | None, now: float, *, settled: bool = False
) -> PlanItem:
    """Decide what a run would do with one file (``settled``: named by the operator, as `dub`)."""
    st = path.stat()
    targets = tuple(watch.targets)
    base: _Base = {"watch": watch.name, "path": path, "size": st.st_size, "targets": targets}
    if not settled and now - st.st_mtime < watch.stable_seconds:
        return PlanItem(action="settling", detail="still being written", **base)
    try:
        media.content_type_for(path)
        structure = completeness.inspect(path)
    except ContentError as exc:
        return PlanItem(action="reject", detail=str(exc), **base)
    except OSError as exc:
        return PlanItem(action="reject", detail=f"cannot read: {exc.strerror or exc}", **base)
    if not structure.complete:
        return PlanItem(action="incomplete", detail=completeness.describe(structure), **base)
    minutes = structure.duration_s
    if ledger is not None:
        job = ledger.find_job(watch.name, str(path), st.st_size, st.st_mtime_ns)
        if job is not None:
            busy = job.state not in (
                JobState.DONE,
                JobState.FAILED,
                JobState.CANCELLED,
                JobState.PARTIAL,
                JobState.NEEDS_ATTENTION,
            )
            return PlanItem(
                action="in_progress" if busy else "done",
                detail=f"job #{job.id} is {job.state.value}",
                **base,
            )
    free = _paid_already(watch, path, st.st_mtime_ns, ledger)
    if free is not None:
        return PlanItem(action="reuse", detail=free, **base)
    video = f", {minutes / 60:.1f} video min" if minutes is not None else ""
    return PlanItem(
        action="dub", detail=f"{len(targets)} language(s){video}", duration_s=minutes, **base
    )


def _paid_already(
    watch: WatchConfig, path: Path, mtime_ns: int, ledger: LedgerStore | None
) -> str | None:
    """Why the run would settle this file with no charge (the engine's own decision: identical
    earlier outputs with the same kinds, or every output already on disk), else None."""
    kinds = output_kinds(job_settings(watch))
    if ledger is not None:
        sha, _, _ = atomic.file_digests(path)
        twin = decide.reusable_twin(ledger, sha, watch.source_language, watch.targets, kinds)
        if twin is not None:
            return f"identical to job #{twin[0].id}: no charge"
    folder = outputs.output_dir(watch, path)
    wanted = {
        (t, k): folder / outputs.output_name(path.stem, t, k) for t in watch.targets for k in kinds
    }
    if decide.adoptable(ledger, wanted, mtime_ns) is not None:
        return "its outputs are already on disk: adopted, no charge"
    return None


def dry_run(config: Config, paths: Sequence[tuple[WatchConfig, Path]] | None) -> int:
    """Print the plan for every watch (or the given files); returns an exit code."""
    now = time.time()
    ledger = None
    if config.ledger_url is not None or config.ledger.exists():
        try:
            ledger = open_ledger(config.ledger_location, password=config.ledger_password_text())
        except LedgerError as exc:
            sys.stderr.write(f"ledger not consulted: {exc}\n")
    items: list[PlanItem] = []
    pairs = paths if paths is not None else [(w, p) for w in config.watches for p in discover(w)]
    try:
        for watch, path in pairs:
            # `dub` takes its files as complete without waiting; so does its dry run.
            items.append(plan_file(watch, path, ledger, now, settled=paths is not None))
    finally:
        if ledger is not None:
            ledger.close()
    out = sys.stdout
    out.write("dry run: nothing is sent to Synthesia\n")
    for it in items:
        line = f"  {it.action:<11} {it.watch}: {it.path}  ({it.size} bytes; {it.detail})"
        out.write(printable(line) + "\n")
    dubs = [i for i in items if i.action == "dub"]
    langs = sum(len(i.targets) for i in dubs)
    nbytes = sum(i.size for i in dubs)
    timed = [i for i in dubs if i.duration_s is not None]
    video = sum(i.duration_s or 0.0 for i in timed) / 60
    dubbed = sum((i.duration_s or 0.0) * len(i.targets) for i in timed) / 60
    unknown = len(dubs) - len(timed)
    billed = f"{video:.1f} video minute(s) ({dubbed:.1f} dubbed minute(s) over all languages)"
    if unknown:
        billed += f", plus {unknown} file(s) of unknown duration"
    out.write(
        f"would create {len(dubs)} dubbing project(s), {langs} dubbed language(s), "
        f"upload {nbytes} bytes, {billed}; {sum(i.action == 'reuse' for i in items)} reused "
        f"free, {sum(i.action == 'reject' for i in items)} rejected, "
        f"{sum(i.action == 'incomplete' for i in items)} incomplete, "
        f"{sum(i.action == 'settling' for i in items)} still settling\n"
    )
    return 0
