"""When a dropped file is finished being written (pure: injected ``stat`` and ``now``, no threads).

The first complaint about every watch-folder tool is a video processed while it was still
being copied. Events alone cannot settle it: an SMB or NFS writer may emit none at all, and a
copy can pause. So a file is *stable* only when two snapshots of (size, mtime_ns) taken
``stable_seconds`` apart agree, the file is not empty and it can be opened for reading. Every
event for a file restarts its quiet period (debounce); a changed snapshot restarts it too.

Where the kernel reports closes (inotify in native mode), a file that was written to and not
closed since is still held by a local writer: it is not stable however long it stays quiet.
Should that close never be reported, ``open_grace`` seconds without any change end the wait.
"""

from __future__ import annotations

import os
import stat as stat_mod
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .sourcefile import can_read


@dataclass(frozen=True)
class Candidate:
    """A file that stayed unchanged for the quiet period: its identity when it was judged."""

    path: Path
    size: int
    mtime_ns: int


@dataclass
class _Entry:
    """What the tracker knows of one pending file."""

    due: float
    snapshot: tuple[int, int] | None  # (size, mtime_ns) at the start of the quiet period
    writing: bool = False  # written to and not closed since (close events are reported)
    open_since: float | None = None  # when the quiet period of an open file first ended


class StabilityTracker:
    """Debounced per-file stability over snapshots of size and mtime_ns."""

    def __init__(
        self,
        stable_seconds: float,
        *,
        stat: Callable[[Path], os.stat_result] = os.stat,
        now: Callable[[], float] = time.monotonic,
        readable: Callable[[Path], bool] = can_read,
        open_grace: float = 3600.0,
    ) -> None:
        if stable_seconds < 0:
            raise ValueError("stable_seconds must not be negative")
        self.stable_seconds = stable_seconds
        self._stat = stat
        self._now = now
        self._readable = readable
        self.open_grace = open_grace
        self._entries: dict[Path, _Entry] = {}
        #: Files found still open for writing since the last call to ``take_open_notices``.
        self._open_notices: list[Path] = []

    def _snapshot(self, path: Path) -> tuple[int, int] | None:
        try:
            st = self._stat(path)
        except OSError:
            return None
        return st.st_size, st.st_mtime_ns

    def touch(self, path: Path, now: float | None = None, *, writing: bool | None = None) -> None:
        """An event was seen for ``path``: (re)start its quiet period from a fresh snapshot.

        ``writing``: True after a write event, False after a close-write event, None to keep
        what was known (events that say nothing about an open writer).
        """
        t = self._now() if now is None else now
        old = self._entries.get(path)
        if writing is None:
            writing = old.writing if old is not None else False
        entry = _Entry(due=t + self.stable_seconds, snapshot=self._snapshot(path), writing=writing)
        if old is not None and writing and old.open_since is not None:
            entry.open_since = old.open_since
        self._entries[path] = entry

    def forget(self, path: Path) -> bool:
        """Drop ``path`` (deleted or moved away before it was stable); True if it was pending."""
        return self._entries.pop(path, None) is not None

    def is_pending(self, path: Path) -> bool:
        """Whether ``path`` is waiting for its quiet period to end."""
        return path in self._entries

    def paths(self) -> list[Path]:
        """Every pending path (a copy)."""
        return list(self._entries)

    def pop_stable(self, now: float | None = None) -> list[Candidate]:
        """Files whose quiet period ended unchanged, non-empty and readable (now untracked).

        A file whose snapshot changed starts a new quiet period; one that vanished is
        forgotten; an empty, unreadable or unstat-able one keeps waiting for another period.
        """
        t = self._now() if now is None else now
        stable: list[Candidate] = []
        for path, entry in list(self._entries.items()):
            if entry.due > t:
                continue
            try:
                st = self._stat(path)
            except (FileNotFoundError, NotADirectoryError):
                del self._entries[path]
                continue
            except OSError:
                entry.due = t + self.stable_seconds  # a share hiccup: look again later
                continue
            if not stat_mod.S_ISREG(st.st_mode):
                del self._entries[path]
                continue
            snap = (st.st_size, st.st_mtime_ns)
            if snap != entry.snapshot or st.st_size == 0 or not self._readable(path):
                entry.snapshot = snap
                entry.due = t + self.stable_seconds
                entry.open_since = None
                continue
            if entry.writing:
                if entry.open_since is None:
                    entry.open_since = t
                    self._open_notices.append(path)
                if t - entry.open_since < self.open_grace:
                    entry.due = t + self.stable_seconds
                    continue
            del self._entries[path]
            stable.append(Candidate(path, st.st_size, st.st_mtime_ns))
        return stable

    def take_open_notices(self) -> list[Path]:
        """Files found quiet but still open for writing since the last call (to log once)."""
        out, self._open_notices = self._open_notices, []
        return out

    def next_due(self) -> float | None:
        """The earliest time ``pop_stable`` may have something, or None when nothing is pending."""
        return min((e.due for e in self._entries.values()), default=None)

    def pending(self) -> int:
        """How many files are waiting to become stable."""
        return len(self._entries)
