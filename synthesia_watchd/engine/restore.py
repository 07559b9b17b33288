"""Bring a failed source back for a retry: ``on_failure: {move: ...}`` put it aside.

A retry that starts over reads the source again; if on_failure moved it, the job would be
queued and at once cancelled as "source file vanished". The moved file is found by its
reason file (``<name>.reason.json`` names the original path) and its size, and moved back
without overwriting anything; when it cannot be, the operator is told where it is.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from synthesia_watchd.domain import outputs
from synthesia_watchd.domain.errors import WatchdError
from synthesia_watchd.stores.ledger import Job

from .jobspec import FrozenWatch, post_action

#: Copies the on_failure move may have numbered ``name (1).mp4`` and so on, looked at.
_MAX_NUMBERED = 100


def moved_source(job: Job) -> Path | None:
    """Where on_failure moved this job's source, or None (kept in place, or not found)."""
    action = post_action(job.settings.get("on_failure"))
    if action.kind != "move" or action.path is None:
        return None
    try:
        first = Path(action.path) / outputs.relative_source(FrozenWatch(job), Path(job.source_path))
    except WatchdError:
        return None
    for n in range(_MAX_NUMBERED):
        cand = first.with_name(outputs._numbered(first.name, n))
        if not cand.is_file():
            if n > 0:
                break
            continue
        reason = cand.with_name(cand.name + outputs.REASON_SUFFIX)
        with contextlib.suppress(OSError, ValueError):
            doc = json.loads(reason.read_text(encoding="utf-8"))
            if doc.get("source") == job.source_path and cand.stat().st_size == job.size:
                return cand
    return None


def bring_back(job: Job) -> str:
    """Before a retry starts over: move a source on_failure put aside back to its path.

    Returns a note for the operator ("" when nothing had to move). Raises WatchdError naming
    both paths when the source is missing and cannot be moved back.
    """
    source = Path(job.source_path)
    with contextlib.suppress(OSError):
        if source.stat().st_size == job.size:
            return ""  # back in place already (the operator moved it)
    moved = moved_source(job)
    if moved is None:
        return ""  # not moved by us: the job will say the source vanished
    taken = WatchdError(
        f"job #{job.id}: its source is at {moved}, and another file now sits at "
        f"{source}; move that one away (or the source back yourself), then retry"
    )
    if source.exists() or source.is_symlink():
        raise taken
    placed = outputs.move_file(moved, source)
    if placed != source:  # a file appeared at the name meanwhile: undo, tell
        outputs.move_file(placed, moved)
        raise taken
    with contextlib.suppress(OSError):
        moved.with_name(moved.name + outputs.REASON_SUFFIX).unlink()
    return f" (source moved back from {moved})"
