"""Drop-folder watching: observers, catch-up and safety scans, root health (the watchdog adapter).

Observer threads only record events and set ``wakeup``; everything else happens in ``poll()``,
called from the daemon's main loop, so the stability tracker and the bookkeeping stay
single-threaded. Events are a speed-up, never the only source of truth: files present at start
are found by a catch-up scan, a periodic stat-only rescan catches what inotify missed, and the
tracker compares snapshots, so a network writer that emits no events is still seen.

Roots on network/FUSE filesystems get watchdog's polling observer (inotify never sees writes
made by other hosts); so do roots where the inotify limits are exhausted. A root that goes
missing, is unmounted, or empties all at once pauses its watch instead of reporting every file
as deleted: a NAS reboot must not cancel the queue.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat as stat_mod
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserver

from synthesia_watchd.files import fsinfo
from synthesia_watchd.files.folderwalk import FolderWalk, WalkLike
from synthesia_watchd.files.incomplete import Decision, Held, IncompleteFiles
from synthesia_watchd.files.stability import StabilityTracker

#: A safety rescan (stat only) runs every this many scan intervals, even in native mode.
SAFETY_RESCAN_FACTOR = 10
_INOTIFY_LIMIT_ERRNOS = (errno.ENOSPC, errno.EMFILE)
_TOUCH_EVENTS = frozenset({"created", "modified", "closed", "attrib"})
#: How long status() waits for the lock before answering from its last snapshot (a poll may
#: be stuck in a filesystem call on a worker thread: status must not be).
STATUS_LOCK_WAIT = 0.2


# --- what the watcher needs from config (the real frozen dataclasses fit) ---------------------


class WatchLike(WalkLike, Protocol):
    """config.WatchConfig as seen by the watcher (the walk's part comes from folderwalk)."""

    @property
    def name(self) -> str: ...
    @property
    def stable_seconds(self) -> float: ...
    @property
    def mode(self) -> str: ...
    @property
    def scan_interval(self) -> float: ...
    @property
    def incomplete_timeout(self) -> float: ...


class LogLike(Protocol):
    """A structlog-style logger: an event name plus key/value pairs."""

    def debug(self, event: str, **kw: Any) -> Any: ...
    def info(self, event: str, **kw: Any) -> Any: ...
    def warning(self, event: str, **kw: Any) -> Any: ...


class ObserverLike(Protocol):
    """The part of a watchdog observer the watcher drives."""

    def schedule(self, event_handler: Any, path: str, *, recursive: bool = ...) -> Any: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def join(self, timeout: float | None = ...) -> None: ...
    def is_alive(self) -> bool: ...


class _StdlibLog:
    """Fallback when no structlog logger is passed: key=value lines on the stdlib logger."""

    def __init__(self) -> None:
        self._log = logging.getLogger(__name__)

    def _emit(self, level: int, event: str, kw: dict[str, Any]) -> None:
        if self._log.isEnabledFor(level):
            extra = " ".join(f"{k}={v!r}" for k, v in kw.items())
            self._log.log(level, "%s %s", event, extra)

    def debug(self, event: str, **kw: Any) -> None:
        self._emit(logging.DEBUG, event, kw)

    def info(self, event: str, **kw: Any) -> None:
        self._emit(logging.INFO, event, kw)

    def warning(self, event: str, **kw: Any) -> None:
        self._emit(logging.WARNING, event, kw)


# --- what poll() reports -----------------------------------------------------------------------


@dataclass(frozen=True)
class StableFile:
    """A candidate file that finished being written: queue a job for this identity."""

    watch: str
    path: Path
    size: int
    mtime_ns: int
    #: Set when the file stayed structurally incomplete for the watch's whole
    #: ``incomplete_timeout``: intake fails it with this reason instead of dubbing it.
    incomplete: str | None = None


@dataclass(frozen=True)
class Vanished:
    """A file reported stable earlier is gone (root healthy): cancel its queued job."""

    watch: str
    path: Path


@dataclass(frozen=True)
class WatchStatus:
    """One watch as the operator sees it (``status`` command, /healthz)."""

    name: str
    mode: str
    reason: str | None
    paused: bool
    pause_reason: str | None
    pending: int
    incomplete: tuple[Held, ...] = ()


# --- one watch ---------------------------------------------------------------------------------


def _relevant(cfg: WatchLike) -> tuple[Any, ...]:
    """The settings whose change means restarting the watch (others are swapped in place)."""
    return (
        os.path.abspath(cfg.input),
        os.path.abspath(cfg.output_root),
        cfg.recursive,
        cfg.stable_seconds,
        cfg.mode,
        cfg.scan_interval,
        tuple(cfg.include),
        tuple(cfg.exclude),
        cfg.on_success,
        cfg.on_failure,
        cfg.incomplete_timeout,
    )


class _Watch(FolderWalk):
    """Bookkeeping for one configured watch; only touched under WatchSet's lock."""

    def __init__(
        self, cfg: WatchLike, stat: Callable[[Path], os.stat_result], now: Callable[[], float]
    ) -> None:
        super().__init__(cfg)
        self.cfg = cfg
        self.tracker = StabilityTracker(
            cfg.stable_seconds, stat=stat, now=now, open_grace=cfg.incomplete_timeout
        )
        self.incomplete = IncompleteFiles(cfg.incomplete_timeout, now=now)
        self.reported: dict[Path, tuple[int, int]] = {}
        self.suspects: dict[Path, float] = {}  # reported files seen deleted -> when
        self.dirty_dirs: set[Path] = set()
        self.full_scan = True
        self.observer: ObserverLike | None = None
        self.mode = "polling" if cfg.mode == "polling" else "native"
        self.reason: str | None = None
        self.paused = False
        self.pause_reason: str | None = None
        self.paused_empty = False
        self.dev: int | None = None
        self.was_mount = False
        self.next_health = 0.0
        self.next_safety = 0.0

    @property
    def safety_interval(self) -> float:
        return max(self.cfg.scan_interval, 0.01) * SAFETY_RESCAN_FACTOR

    @property
    def suspect_grace(self) -> float:
        # A deletion is acted on only once it is quiet too: a root removed or unmounted file
        # by file must be recognised as such before any Vanished is reported.
        return max(self.cfg.stable_seconds, self.cfg.scan_interval)


class _Handler(FileSystemEventHandler):
    """Runs in observer threads: record the event, wake the main loop, nothing else."""

    def __init__(self, watch: _Watch, sink: deque[tuple[_Watch, FileSystemEvent]], wake: Any):
        self._watch = watch
        self._sink = sink
        self._wake = wake

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        self._sink.append((self._watch, event))
        self._wake.set()


def _fs(path: bytes | str) -> Path:
    return Path(os.fsdecode(path))


def _writing(w: _Watch, etype: str) -> bool | None:
    """What an event says about a local writer: only inotify reports closes, so only in
    native mode does a write mean "open until its close-write event arrives"."""
    if w.mode != "native":
        return None
    if etype == "modified":
        return True
    if etype == "closed":
        return False
    return None


# --- the set of watches ------------------------------------------------------------------------


class WatchSet:
    """Every configured watch: observers, scans, stability and root health.

    ``poll()`` is cheap and returns what became stable or vanished since the last call;
    ``next_deadline()`` says when to call it again, ``wakeup`` is set by observer threads.
    """

    def __init__(
        self,
        watches: Sequence[WatchLike],
        *,
        now: Callable[[], float] = time.monotonic,
        mounts: Callable[[], list[fsinfo.Mount]] | None = None,
        log: LogLike | None = None,
        stat: Callable[[Path], os.stat_result] = os.stat,
        native_observer: Callable[[], ObserverLike] | None = None,
        polling_observer: Callable[[float], ObserverLike] | None = None,
        claim: Callable[[Path], str | None] | None = None,
    ) -> None:
        self._now = now
        #: Asked at each root check whether this daemon may work in a root (claims.py).
        self._claim = claim
        self._mounts = mounts or fsinfo.read_mounts
        self._log: LogLike = log if log is not None else _StdlibLog()
        self._stat = stat
        self._native = native_observer or Observer
        self._polling = polling_observer or (lambda interval: PollingObserver(timeout=interval))
        self._lock = threading.RLock()
        self._events: deque[tuple[_Watch, FileSystemEvent]] = deque()
        self._outbox: list[StableFile | Vanished] = []
        self._started = False
        self._watches: dict[str, _Watch] = {}
        self.wakeup = threading.Event()
        self._status: list[WatchStatus] = []
        for cfg in watches:
            self._watches[cfg.name] = _Watch(cfg, stat, now)

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Start every observer, then a catch-up scan of every root (files dropped while down)."""
        with self._lock:
            self._started = True
            t = self._now()
            for w in self._watches.values():
                self._activate(w, t)

    def stop(self) -> None:
        """Stop and join every observer thread (without the lock if a poll is stuck holding it:
        a hung mount must not turn a warm stop into a hang)."""
        locked = self._lock.acquire(timeout=5)
        try:
            self._started = False
            observers = [w.observer for w in self._watches.values() if w.observer is not None]
            for w in self._watches.values():
                w.observer = None
        finally:
            if locked:
                self._lock.release()
        _stop_observers(observers)

    def reconfigure(self, watches: Sequence[WatchLike]) -> None:
        """Apply a reloaded config: add, remove and change watches without a restart."""
        to_stop: list[ObserverLike] = []
        with self._lock:
            t = self._now()
            wanted = {cfg.name: cfg for cfg in watches}
            for name in list(self._watches):
                if name not in wanted:
                    old = self._watches.pop(name)
                    if old.observer is not None:
                        to_stop.append(old.observer)
                    self._log.info("watch removed", watch=name)
            for name, cfg in wanted.items():
                old_w = self._watches.get(name)
                if old_w is not None and _relevant(old_w.cfg) == _relevant(cfg):
                    old_w.cfg = cfg  # e.g. new targets: nothing to restart
                    continue
                new = _Watch(cfg, self._stat, self._now)
                if old_w is not None:
                    if old_w.observer is not None:
                        to_stop.append(old_w.observer)
                    if old_w.root == new.root:  # same folder: don't report known files again
                        new.reported = {
                            p: ident for p, ident in old_w.reported.items() if new.is_candidate(p)
                        }
                    self._log.info("watch changed", watch=name)
                else:
                    self._log.info("watch added", watch=name)
                self._watches[name] = new
                if self._started:
                    self._activate(new, t)
        _stop_observers(to_stop)

    # --- the main-loop side --------------------------------------------------------------------

    def poll(self, now: float | None = None) -> list[StableFile | Vanished]:
        """What became stable or vanished since the last call (cheap; call from the main loop)."""
        with self._lock:
            t = self._now() if now is None else now
            self.wakeup.clear()
            while self._events:
                w, event = self._events.popleft()
                if self._watches.get(w.cfg.name) is w and not w.paused:
                    self._apply_event(w, event, t)
            if self._started:
                for w in self._watches.values():
                    self._poll_watch(w, t)
            out, self._outbox = self._outbox, []
            return out

    def rescan(self, name: str | None = None) -> None:
        """A full scan now (after a reconnect, or on demand); a paused watch re-checks its root."""
        with self._lock:
            t = self._now()
            for w in self._watches.values():
                if name is not None and w.cfg.name != name:
                    continue
                if self._started:
                    self._check_health(w, t)
                    if not w.paused:
                        self._full_scan(w, t)

    def release(self, path: Path) -> None:
        """The daemon moved or deleted this source itself: forget it quietly.

        No Vanished is reported for it, and it does not count towards "the root emptied at
        once", so an on_success move/delete that empties the folder does not pause the watch.
        """
        p = Path(os.path.abspath(path))
        with self._lock:
            for w in self._watches.values():
                w.reported.pop(p, None)
                w.suspects.pop(p, None)
                w.tracker.forget(p)
                w.incomplete.forget(p)

    def offer(self, name: str, path: Path) -> str | None:
        """A file handed over by name (the push API): the checks a dropped file gets.

        It must lie inside the watch's root and not be ignored; then it joins the stability
        tracker like a file an event announced, so it is taken once stable. Returns None when
        accepted, else why not.
        """
        p = Path(os.path.abspath(path))
        with self._lock:
            w = self._watches.get(name)
            if w is None:
                return f"no watch named {name!r}"
            if w.paused:
                return f"watch {name} is paused: {w.pause_reason}"
            if w.rel(p) is None:
                return "the path is outside the watch's input folder"
            if not w.is_candidate(p):
                return "the file is ignored by this watch (name, include/exclude or folder)"
            try:
                st = p.stat()
            except OSError:
                return "no such file"
            if not stat_mod.S_ISREG(st.st_mode):
                return "not a regular file"
            w.tracker.touch(p, self._now())
        self.wakeup.set()
        return None

    def check_root(self, name: str) -> bool:
        """Whether a watch's root is confirmed healthy now; asked when a job's source is missing.

        Checked at once rather than at the next safety scan: the root must be reachable, still
        on its device, and hold files (a bind mount keeps ``st_dev``, so an emptied root is the
        only sign it was unmounted; after a restart, before anything was reported, an empty
        root may be a share not mounted yet). A root emptied of reported files, or unhealthy,
        pauses its watch; a paused one is re-checked and resumes if it is back. The walk runs
        outside the lock so a large tree does not stall the main loop.
        """
        with self._lock:
            w = self._watches.get(name)
            if w is None or not self._started:
                return True
            if w.paused:
                self._check_health(w, self._now())
                return not w.paused
            problem = self._root_problem(w)
            if problem is not None:
                self._pause(w, problem)
                return False
            reported = len(w.reported)
        try:
            found = w.walk()
        except OSError as exc:
            problem = f"cannot list the input folder: {exc.strerror or exc}"
        else:
            if found:
                return True
            if not reported:
                return False  # an empty folder confirms nothing (a share not mounted yet)
            problem = _emptied(reported)
        with self._lock:
            if self._watches.get(name) is w and not w.paused:
                self._pause(w, problem, empty=problem == _emptied(reported))
        return False

    def next_deadline(self) -> float | None:
        """When ``poll()`` may next have something to report (the main loop sleeps until then).

        None, too, while a poll holds the lock (stuck in a filesystem call on its worker).
        """
        if not self._lock.acquire(timeout=STATUS_LOCK_WAIT):
            return None
        try:
            times: list[float] = []
            for w in self._watches.values():
                times.append(w.next_health)
                if w.paused:
                    continue
                times.append(w.next_safety)
                due = w.tracker.next_due()
                if due is not None:
                    times.append(due)
                times += [s + w.suspect_grace for s in w.suspects.values()]
                held = w.incomplete.next_due()
                if held is not None:
                    times.append(held)
            return min(times, default=None)
        finally:
            self._lock.release()

    def status(self) -> list[WatchStatus]:
        """One WatchStatus per watch, in config order.

        Never waits long: while a poll is stuck in a filesystem call (a hung mount) the last
        snapshot is returned, so the heartbeat and ``status`` keep working.
        """
        if not self._lock.acquire(timeout=STATUS_LOCK_WAIT):
            return list(self._status)
        try:
            self._status = [
                WatchStatus(
                    name=w.cfg.name,
                    mode=w.mode,
                    reason=w.reason,
                    paused=w.paused,
                    pause_reason=w.pause_reason,
                    pending=w.tracker.pending(),
                    incomplete=tuple(w.incomplete.held()),
                )
                for w in self._watches.values()
            ]
            return list(self._status)
        finally:
            self._lock.release()

    # --- internals -----------------------------------------------------------------------------

    def _activate(self, w: _Watch, t: float) -> None:
        """Start watching: check the root, start its observer, catch-up scan."""
        problem = self._root_problem(w)
        if problem is not None:
            self._pause(w, problem)
            return
        self._start_observer(w)
        if not w.paused:
            self._full_scan(w, t)

    def _start_observer(self, w: _Watch) -> None:
        cfg = w.cfg
        mode, reason = "native", None
        if cfg.mode == "polling":
            mode, reason = "polling", "mode: polling in the config"
        elif cfg.mode == "auto":
            net = fsinfo.network_fs_of(w.root, self._mounts())
            if net is not None:
                mode = "polling"
                reason = (
                    f"input is on {net.fstype} ({net.source}): inotify does not see changes "
                    "made by other hosts"
                )
        handler = _Handler(w, self._events, self.wakeup)
        if mode == "native":
            try:
                w.observer = self._run_observer(self._native, handler, w)
            except OSError as exc:
                if exc.errno not in _INOTIFY_LIMIT_ERRNOS:
                    self._pause(w, f"cannot watch the input folder: {exc.strerror or exc}")
                    return
                mode = "polling"
                reason = (
                    f"inotify limit reached ({errno.errorcode.get(exc.errno or 0, exc.errno)}); "
                    "raise fs.inotify.max_user_watches (and fs.inotify.max_user_instances) "
                    "with sysctl to get native events back"
                )
                self._log.warning("inotify limit reached: polling instead", watch=cfg.name,
                                  root=str(w.root), reason=reason)  # fmt: skip
        if mode == "polling":
            try:
                w.observer = self._run_observer(
                    lambda: self._polling(cfg.scan_interval), handler, w
                )
            except OSError as exc:
                self._pause(w, f"cannot watch the input folder: {exc.strerror or exc}")
                return
        w.mode, w.reason = mode, reason
        self._log.info("watching", watch=cfg.name, root=str(w.root), mode=mode, reason=reason)

    @staticmethod
    def _run_observer(
        factory: Callable[[], ObserverLike], handler: _Handler, w: _Watch
    ) -> ObserverLike:
        """Build, schedule and start an observer; on any failure nothing is left running."""
        _quiet_watchdog_rewatch_warning()
        observer = factory()
        try:
            observer.schedule(handler, str(w.root), recursive=w.cfg.recursive)
            observer.start()
        except BaseException:
            _stop_observers([observer])
            raise
        return observer

    def _apply_event(self, w: _Watch, event: FileSystemEvent, t: float) -> None:
        etype = event.event_type
        src = _fs(event.src_path)
        dest = _fs(event.dest_path) if event.dest_path else None
        if event.is_directory:
            target = dest if etype == "moved" else src if etype == "created" else None
            if target is not None:
                rel = w.rel(target)
                if rel is not None and w.dir_wanted(rel):
                    w.dirty_dirs.add(target)
            if etype in ("deleted", "moved"):
                self._gone_under(w, src, t)
            return
        if etype in _TOUCH_EVENTS:
            if w.is_candidate(src):
                w.tracker.touch(src, t, writing=_writing(w, etype))
        elif etype in ("deleted", "moved"):
            w.tracker.forget(src)
            w.incomplete.forget(src)
            if src in w.reported:
                w.suspects[src] = t
            if dest is not None and w.is_candidate(dest):
                w.tracker.touch(dest, t)

    def _gone_under(self, w: _Watch, folder: Path, t: float) -> None:
        """A folder was deleted or moved away: its pending files are dropped, reported suspect."""
        if folder == w.root:
            w.next_health = t
            return
        prefix = str(folder) + os.sep
        for p in w.tracker.paths():
            if str(p).startswith(prefix):
                w.tracker.forget(p)
        for p in w.incomplete.paths():
            if str(p).startswith(prefix):
                w.incomplete.forget(p)
        for p in w.reported:
            if str(p).startswith(prefix):
                w.suspects.setdefault(p, t)

    def _poll_watch(self, w: _Watch, t: float) -> None:
        ripe = any(t >= s + w.suspect_grace for s in w.suspects.values())
        if t >= w.next_health or ripe:
            self._check_health(w, t)
        if w.paused:
            return
        if w.full_scan or ripe or t >= w.next_safety:
            self._full_scan(w, t)
            # mypy keeps the `w.paused` narrowing from above across the call, but a scan that
            # finds the root gone pauses the watch: this return is reachable.
            if w.paused:
                return  # type: ignore[unreachable]
        else:
            while w.dirty_dirs:
                self._scan_dir(w, w.dirty_dirs.pop(), t)
        for path in w.incomplete.due(t):
            if not w.tracker.is_pending(path):
                w.tracker.touch(path, t)  # timed out: one more settle, then give up on it
        for c in w.tracker.pop_stable(t):
            ident = (c.size, c.mtime_ns)
            if w.reported.get(c.path) == ident:
                continue  # the same bytes were reported already
            if not self._complete_enough(w, c.path, ident, t):
                continue
            w.reported[c.path] = ident
            self._log.debug("file stable", watch=w.cfg.name, path=str(c.path), size=c.size)
            self._outbox.append(StableFile(w.cfg.name, c.path, c.size, c.mtime_ns))
        for path in w.tracker.take_open_notices():
            self._log.info("file still open for writing", watch=w.cfg.name, path=str(path))

    def _complete_enough(self, w: _Watch, path: Path, ident: tuple[int, int], t: float) -> bool:
        """Whether a settled file is whole enough to report; an incomplete one is held, and
        reported marked incomplete once it stayed unchanged for ``incomplete_timeout``."""
        v = w.incomplete.judge(path, ident, t)
        name = w.cfg.name
        if v.decision is Decision.GIVE_UP:
            w.reported[path] = ident
            reason = f"still incomplete after {w.cfg.incomplete_timeout:g}s unchanged: {v.detail}"
            self._log.warning("file incomplete: giving up", watch=name, path=str(path),
                              reason=reason)  # fmt: skip
            self._outbox.append(StableFile(name, path, ident[0], ident[1], incomplete=reason))
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

    def _root_problem(self, w: _Watch) -> str | None:
        """Why the root cannot be trusted right now (missing, unmounted), or None."""
        try:
            st = self._stat(w.root)
        except (FileNotFoundError, NotADirectoryError):
            return "input folder is missing"
        except OSError as exc:
            return f"input folder is unreachable: {exc.strerror or exc}"
        if not stat_mod.S_ISDIR(st.st_mode):
            return "input path is not a folder"
        try:
            parent_dev = self._stat(w.root.parent).st_dev
        except OSError:
            parent_dev = None
        if w.dev is None:
            w.dev, w.was_mount = st.st_dev, st.st_dev != parent_dev
        elif st.st_dev != w.dev:
            if w.was_mount and st.st_dev == parent_dev:
                return "input folder is no longer mounted (it is now on its parent's device)"
            # Mounted again with a new device number, or newly a mount point: new baseline,
            # and a full scan, since inotify watches do not follow a new mount.
            self._log.info("input folder remounted", watch=w.cfg.name, root=str(w.root))
            w.dev, w.was_mount = st.st_dev, st.st_dev != parent_dev
            w.full_scan = True
            if w.observer is not None and not w.paused:
                _stop_observers([w.observer])
                w.observer = None
                self._start_observer(w)
        return self._claim(w.root) if self._claim is not None else None

    def _check_health(self, w: _Watch, t: float) -> None:
        w.next_health = t + max(w.cfg.scan_interval, 0.01)
        problem = self._root_problem(w)
        if problem is not None:
            self._pause(w, problem)
            return
        if not w.paused:
            return
        if w.paused_empty:
            try:
                if not w.walk():
                    return  # still empty: stay paused
            except OSError:
                return
        self._resume(w, t)

    def _pause(self, w: _Watch, reason: str, *, empty: bool = False) -> None:
        if not w.paused or w.pause_reason != reason:
            self._log.warning("watch paused", watch=w.cfg.name, root=str(w.root), reason=reason)
        w.paused, w.pause_reason, w.paused_empty = True, reason, empty
        if w.observer is not None:
            _stop_observers([w.observer])
            w.observer = None
        for p in w.tracker.paths():
            w.tracker.forget(p)  # the catch-up scan on resume finds them again
        w.incomplete.clear()
        w.suspects.clear()
        w.dirty_dirs.clear()

    def _resume(self, w: _Watch, t: float) -> None:
        self._log.info("watch resumed", watch=w.cfg.name, root=str(w.root), was=w.pause_reason)
        w.paused, w.pause_reason, w.paused_empty = False, None, False
        self._start_observer(w)
        if not w.paused:
            self._full_scan(w, t)

    def _full_scan(self, w: _Watch, t: float) -> None:
        """Reconcile with the disk: new or changed files start their quiet period; reported
        files that are gone are Vanished, unless the whole root emptied at once."""
        try:
            found = w.walk()
        except OSError as exc:
            self._pause(w, f"cannot list the input folder: {exc.strerror or exc}")
            return
        if w.reported and not found:
            self._pause(w, _emptied(len(w.reported)), empty=True)
            return
        for path, ident in found.items():
            if w.reported.get(path) != ident and not w.tracker.is_pending(path):
                w.tracker.touch(path, t)
        for path in [p for p in w.incomplete.paths() if p not in found]:
            w.incomplete.forget(path)
        for path in [p for p in w.reported if p not in found]:
            del w.reported[path]
            self._log.info("file vanished", watch=w.cfg.name, path=str(path))
            self._outbox.append(Vanished(w.cfg.name, path))
        w.suspects.clear()
        w.dirty_dirs.clear()
        w.full_scan = False
        w.next_safety = t + w.safety_interval

    def _scan_dir(self, w: _Watch, folder: Path, t: float) -> None:
        """A folder appeared (copied in at once): start every new file's quiet period."""
        try:
            found = w.walk(folder)
        except OSError:
            return
        for path, ident in found.items():
            if w.reported.get(path) != ident and not w.tracker.is_pending(path):
                w.tracker.touch(path, t)


def _emptied(reported: int) -> str:
    """Why a watch whose reported files all vanished at once is paused."""
    return (
        f"input folder emptied at once ({reported} reported file(s) gone): "
        "unmounted or wiped share? resuming when files appear"
    )


def _quiet_watchdog_rewatch_warning() -> None:
    """Silence watchdog's RuntimeWarning when a recursive watch re-adds a folder.

    A tree created at once (``mkdir -p a/b``, a folder copied in) makes watchdog's inotify
    backend add the watch for ``a/b`` twice, once while walking ``a`` and once for b's own
    create event; the second add replaces the callback with itself and warns. The warning is
    raised in watchdog's reader thread, where a warnings-as-errors setting would kill the
    thread and stop all events. Installed at each observer start (an identical filter is
    replaced, not duplicated) so it sits ahead of filters configured after import.
    """
    warnings.filterwarnings(
        "ignore", message=r"Callback with id .* already exists for watch", category=RuntimeWarning
    )


def _stop_observers(observers: Sequence[ObserverLike]) -> None:
    """Stop every observer first, then join each (threads end in parallel)."""
    for obs in observers:
        with contextlib.suppress(OSError, RuntimeError):
            obs.stop()
    for obs in observers:
        with contextlib.suppress(RuntimeError):  # never started
            if obs.is_alive():
                obs.join(10)
