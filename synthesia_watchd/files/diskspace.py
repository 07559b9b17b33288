"""A full disk: recognise ENOSPC/EDQUOT, measure free space, hold an output root until it frees.

A download that finds its filesystem full is not the job's fault, and retrying at once only
downloads into the same full disk again and spends the job's retries. The output root is
held instead: every job that would write there re-checks the free space (one ``statvfs``,
cheap) at its next attempt, and once there is room enough its writes are tried again.

A hold is one episode from the first refused write to the first write that succeeds there:
``statvfs`` cannot see a quota (EDQUOT with plenty "free"), so room by its count only lets the
writes try; a refusal again stays in the same episode (logged once, still shown by `status`).
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

#: errno values that mean "no room here": the filesystem is full, or the user's quota is.
NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})
#: How often a held job re-checks the free space of its output root.
RECHECK_SECONDS = 10.0
#: Room wanted on top of the failed write's size before a held root resumes.
MARGIN = 1024 * 1024


def is_no_space(exc: BaseException) -> bool:
    """Whether ``exc`` is an OSError saying the filesystem or the quota is full."""
    return isinstance(exc, OSError) and exc.errno in NO_SPACE_ERRNOS


def free_bytes(folder: Path) -> int | None:
    """Bytes an unprivileged writer may still use on ``folder``'s filesystem (None: unknown).

    A folder not created yet is measured at its nearest existing parent.
    """
    here = Path(os.path.abspath(folder))
    while True:
        try:
            st = os.statvfs(here)
        except FileNotFoundError:
            if here.parent == here:
                return None
            here = here.parent
            continue
        except OSError:
            return None
        return st.f_bavail * st.f_frsize


def describe(n: int | None) -> str:
    """``n`` bytes for people: ``512.0 KiB``, ``3.2 GiB``; ``unknown`` for None."""
    if n is None:
        return "unknown"
    size = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"  # pragma: no cover - the loop returns at GiB


@dataclass
class _Hold:
    folder: Path
    needed: int
    reason: str
    #: statvfs counted room enough: writes may try again (the episode ends when one succeeds).
    trying: bool = False


class SpaceHolds:
    """Output roots held for lack of space, shared by every worker thread."""

    def __init__(self, free: Callable[[Path], int | None] = free_bytes) -> None:
        self._free = free
        self._holds: dict[str, _Hold] = {}
        self._lock = threading.Lock()

    def hold(self, root: Path, folder: Path, needed: int | None) -> tuple[str, bool]:
        """Hold ``root`` after a write into ``folder`` found no space; returns (reason, new).

        ``needed`` is the size of the write that failed, when known; the root resumes once
        that much (plus a margin) is free.
        """
        free = self._free(folder)
        want = (needed or 0) + MARGIN
        if needed is None and free is not None:
            want = max(want, free + MARGIN)  # unknown size: at least some room must appear
        unseen = free is not None and needed is not None and free >= want
        reason = (
            f"no space left on {folder} ({describe(free)} free"
            + (f", {describe(needed)} needed" if needed is not None else "")
            + ("; the free space suffices, so a quota is likely the limit" if unseen else "")
            + f"); downloads to {root} are held until space returns"
        )
        key = os.path.abspath(root)
        with self._lock:
            new = key not in self._holds
            self._holds[key] = _Hold(Path(folder), want, reason)
        return reason, new

    def blocked(self, root: Path) -> str | None:
        """Why ``root``'s writes must wait (None: they may try).

        Re-checks the free space of a held root; with enough room its writes try again, but
        the hold (and its episode) lasts until one succeeds (``written``).
        """
        key = os.path.abspath(root)
        with self._lock:
            held = self._holds.get(key)
        if held is None or held.trying:
            return None
        free = self._free(held.folder)
        if free is not None and free < held.needed:
            return held.reason
        with self._lock:
            held.trying = True
        return None

    def written(self, root: Path) -> bool:
        """A write into ``root`` succeeded: its hold ends; returns whether there was one."""
        key = os.path.abspath(root)
        with self._lock:
            return self._holds.pop(key, None) is not None

    def held(self) -> list[str]:
        """The output roots on hold now."""
        with self._lock:
            return sorted(self._holds)
