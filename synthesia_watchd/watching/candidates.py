"""One watch's candidate files: what is settling, what was reported, what may have vanished.

Events are a speed-up, never the only source of truth: the catch-up scan finds files present
at start, a periodic stat-only safety rescan catches what inotify missed, and a folder copied
in at once is scanned on its own. Settled files are judged whole (files/incomplete) before they
are reported. A scan that cannot trust what it sees (the folder cannot be listed, or every
reported file is gone at once) asks for a pause instead of reporting the files gone: a NAS
reboot must not cancel the queue.
"""

from __future__ import annotations

import os
import stat as stat_mod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from synthesia_watchd.files.folderwalk import FolderWalk
from synthesia_watchd.files.incomplete import Decision, IncompleteFiles
from synthesia_watchd.files.stability import StabilityTracker

from .model import FsEvent, LogLike, StableFile, Vanished, WatchLike

#: A safety rescan (stat only) runs every this many scan intervals, even in native mode.
SAFETY_RESCAN_FACTOR = 10
_TOUCH_EVENTS = frozenset({"created", "modified", "closed", "attrib"})

Report = Callable[[StableFile | Vanished], None]


@dataclass(frozen=True)
class Pause:
    """Why a scan cannot trust the root: the watch pauses rather than report files gone."""

    reason: str
    #: The root emptied at once: the watch resumes only once files appear again.
    empty: bool = False


def emptied(reported: int) -> Pause:
    """A watch whose reported files all vanished at once."""
    return Pause(
        f"input folder emptied at once ({reported} reported file(s) gone): "
        "unmounted or wiped share? resuming when files appear",
        empty=True,
    )


def cannot_list(exc: OSError) -> Pause:
    """A watch whose input folder cannot be listed."""
    return Pause(f"cannot list the input folder: {exc.strerror or exc}")


class Candidates(FolderWalk):
    """The candidate files of one watch; only touched under WatchSet's lock."""

    def __init__(
        self,
        cfg: WatchLike,
        stat: Callable[[Path], os.stat_result],
        now: Callable[[], float],
        *,
        log: LogLike,
        report: Report,
    ) -> None:
        super().__init__(cfg)
        # Only settings whose change restarts the watch are read here (watcher._relevant).
        self.name = cfg.name
        self.incomplete_timeout = cfg.incomplete_timeout
        self.tracker = StabilityTracker(
            cfg.stable_seconds, stat=stat, now=now, open_grace=cfg.incomplete_timeout
        )
        self.incomplete = IncompleteFiles(cfg.incomplete_timeout, now=now)
        self.reported: dict[Path, tuple[int, int]] = {}
        self.suspects: dict[Path, float] = {}  # reported files seen deleted -> when
        self.dirty_dirs: set[Path] = set()
        self.needs_full_scan = True
        self.next_safety = 0.0
        self.safety_interval = max(cfg.scan_interval, 0.01) * SAFETY_RESCAN_FACTOR
        # A deletion is acted on only once it is quiet too: a root removed or unmounted file
        # by file must be recognised as such before any Vanished is reported.
        self.suspect_grace = max(cfg.stable_seconds, cfg.scan_interval)
        self._log = log
        self._report = report

    def inherit(self, old: Candidates) -> None:
        """The watch changed but not its folder: files reported before are not reported again."""
        self.reported = {p: ident for p, ident in old.reported.items() if self.is_candidate(p)}

    # --- events --------------------------------------------------------------------------------

    def apply_event(self, event: FsEvent, t: float, *, native: bool) -> bool:
        """Record one event; True when it says the root itself was deleted or moved away."""
        etype, src, dest = event.event_type, event.src, event.dest
        if event.is_directory:
            target = dest if etype == "moved" else src if etype == "created" else None
            if target is not None:
                rel = self.rel(target)
                if rel is not None and self.dir_wanted(rel):
                    self.dirty_dirs.add(target)
            if etype in ("deleted", "moved"):
                return self._gone_under(src, t)
            return False
        if etype in _TOUCH_EVENTS:
            if self.is_candidate(src):
                self.tracker.touch(src, t, writing=_writing(native, etype))
        elif etype in ("deleted", "moved"):
            self.tracker.forget(src)
            self.incomplete.forget(src)
            if src in self.reported:
                self.suspects[src] = t
            if dest is not None and self.is_candidate(dest):
                self.tracker.touch(dest, t)
        return False

    def _gone_under(self, folder: Path, t: float) -> bool:
        """A folder was deleted or moved away: its pending files are dropped, reported suspect.
        True when it is the root itself (its health is checked at once instead)."""
        if folder == self.root:
            return True
        prefix = str(folder) + os.sep
        for p in self.tracker.paths():
            if str(p).startswith(prefix):
                self.tracker.forget(p)
        for p in self.incomplete.paths():
            if str(p).startswith(prefix):
                self.incomplete.forget(p)
        for p in self.reported:
            if str(p).startswith(prefix):
                self.suspects.setdefault(p, t)
        return False

    def offer(self, path: Path, t: float) -> str | None:
        """A file handed over by name: tracked like an announced one if it is a candidate;
        None when accepted, else why not."""
        if self.rel(path) is None:
            return "the path is outside the watch's input folder"
        if not self.is_candidate(path):
            return "the file is ignored by this watch (name, include/exclude or folder)"
        try:
            st = path.stat()
        except OSError:
            return "no such file"
        if not stat_mod.S_ISREG(st.st_mode):
            return "not a regular file"
        self.tracker.touch(path, t)
        return None

    def forget(self, path: Path) -> None:
        """Drop a file quietly (the daemon moved or deleted it itself)."""
        self.reported.pop(path, None)
        self.suspects.pop(path, None)
        self.tracker.forget(path)
        self.incomplete.forget(path)

    def clear(self) -> None:
        """Drop everything pending (the watch paused): the catch-up scan on resume finds it."""
        for p in self.tracker.paths():
            self.tracker.forget(p)
        self.incomplete.clear()
        self.suspects.clear()
        self.dirty_dirs.clear()

    # --- scans ---------------------------------------------------------------------------------

    def ripe(self, t: float) -> bool:
        """Whether a suspect deletion has been quiet for its grace period."""
        return any(t >= s + self.suspect_grace for s in self.suspects.values())

    def full_scan(self, t: float) -> Pause | None:
        """Reconcile with the disk: new or changed files start their quiet period; reported
        files that are gone are Vanished, unless the whole root emptied at once."""
        try:
            found = self.walk()
        except OSError as exc:
            return cannot_list(exc)
        if self.reported and not found:
            return emptied(len(self.reported))
        self._touch_new(found, t)
        for path in [p for p in self.incomplete.paths() if p not in found]:
            self.incomplete.forget(path)
        for path in [p for p in self.reported if p not in found]:
            del self.reported[path]
            self._log.info("file vanished", watch=self.name, path=str(path))
            self._report(Vanished(self.name, path))
        self.suspects.clear()
        self.dirty_dirs.clear()
        self.needs_full_scan = False
        self.next_safety = t + self.safety_interval
        return None

    def scan_dirty(self, t: float) -> None:
        """Folders that appeared (copied in at once): start every new file's quiet period."""
        while self.dirty_dirs:
            try:
                found = self.walk(self.dirty_dirs.pop())
            except OSError:
                continue
            self._touch_new(found, t)

    def _touch_new(self, found: dict[Path, tuple[int, int]], t: float) -> None:
        for path, ident in found.items():
            if self.reported.get(path) != ident and not self.tracker.is_pending(path):
                self.tracker.touch(path, t)

    # --- settling ------------------------------------------------------------------------------

    def settle(self, t: float) -> None:
        """Report the files that held still long enough and are whole."""
        for path in self.incomplete.due(t):
            if not self.tracker.is_pending(path):
                self.tracker.touch(path, t)  # timed out: one more settle, then give up on it
        for c in self.tracker.pop_stable(t):
            ident = (c.size, c.mtime_ns)
            if self.reported.get(c.path) == ident:
                continue  # the same bytes were reported already
            if not self._complete_enough(c.path, ident, t):
                continue
            self.reported[c.path] = ident
            self._log.debug("file stable", watch=self.name, path=str(c.path), size=c.size)
            self._report(StableFile(self.name, c.path, c.size, c.mtime_ns))
        for path in self.tracker.take_open_notices():
            self._log.info("file still open for writing", watch=self.name, path=str(path))

    def _complete_enough(self, path: Path, ident: tuple[int, int], t: float) -> bool:
        """Whether a settled file is whole enough to report; an incomplete one is held, and
        reported marked incomplete once it stayed unchanged for ``incomplete_timeout``."""
        v = self.incomplete.judge(path, ident, t)
        name = self.name
        if v.decision is Decision.GIVE_UP:
            self.reported[path] = ident
            reason = f"still incomplete after {self.incomplete_timeout:g}s unchanged: {v.detail}"
            self._log.warning("file incomplete: giving up", watch=name, path=str(path),
                              reason=reason)  # fmt: skip
            self._report(StableFile(name, path, ident[0], ident[1], incomplete=reason))
            return False
        if v.decision is Decision.HOLD:
            if v.new:
                self._log.info("file incomplete", watch=name, path=str(path), detail=v.detail)
            return False
        if v.decision is Decision.DROP:
            return False
        if v.detail:  # e.g. a WebM segment of unknown size: stability alone decided
            self._log.info("file taken on stability alone", watch=name, path=str(path),
                           detail=v.detail)  # fmt: skip
        return True

    def deadlines(self) -> list[float]:
        """When something may next be due: the safety scan, a settle, a suspect, a held file."""
        times = [self.next_safety]
        due = self.tracker.next_due()
        if due is not None:
            times.append(due)
        times += [s + self.suspect_grace for s in self.suspects.values()]
        held = self.incomplete.next_due()
        if held is not None:
            times.append(held)
        return times


def _writing(native: bool, etype: str) -> bool | None:
    """What an event says about a local writer: only inotify reports closes, so only in
    native mode does a write mean "open until its close-write event arrives"."""
    if not native:
        return None
    if etype == "modified":
        return True
    if etype == "closed":
        return False
    return None
