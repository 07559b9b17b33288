"""The set of configured watches, as the daemon drives it: start, reload, poll, root checks.

Observer threads only record events and set ``wakeup``; everything else happens in ``poll()``,
called from the daemon's main loop, so the stability tracker and the bookkeeping stay
single-threaded behind one lock. Each watch keeps its observer (watching/observers), its root's
health (watching/roothealth) and its candidate files (watching/candidates) in step
(watching/watch); this module holds them by name, applies reloads and answers the daemon.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from synthesia_watchd.files import fsinfo

from .candidates import cannot_list, emptied
from .model import FsEvent, LogLike, StableFile, Vanished, WatchLike, WatchStatus
from .observers import ObserverLike, Observers, stop_observers
from .watch import Shared, Watch

#: How long status() waits for the lock before answering from its last snapshot (a poll may
#: be stuck in a filesystem call on a worker thread: status must not be).
STATUS_LOCK_WAIT = 0.2


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
        self._stat = stat
        self._log: LogLike = log if log is not None else _StdlibLog()
        self._lock = threading.RLock()
        self._events: deque[tuple[Watch, FsEvent]] = deque()
        self._outbox: list[StableFile | Vanished] = []
        self._started = False
        self._watches: dict[str, Watch] = {}
        self.wakeup = threading.Event()
        self._status: list[WatchStatus] = []
        observers = Observers(
            mounts=mounts or fsinfo.read_mounts,
            log=self._log,
            native=native_observer,
            polling=polling_observer,
        )
        self._shared = Shared(
            now, self._stat_now, self._log, observers, claim, self._outbox_add, self._record
        )
        for cfg in watches:
            self._watches[cfg.name] = Watch(cfg, self._shared)

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Start every observer, then a catch-up scan of every root (files dropped while down)."""
        with self._lock:
            self._started = True
            t = self._now()
            for w in self._watches.values():
                w.activate(t)

    def stop(self) -> None:
        """Stop and join every observer thread (without the lock if a poll is stuck holding it:
        a hung mount must not turn a warm stop into a hang)."""
        locked = self._lock.acquire(timeout=5)
        try:
            self._started = False
            detached = [w.detach() for w in self._watches.values()]
        finally:
            if locked:
                self._lock.release()
        stop_observers([o for o in detached if o is not None])

    def reconfigure(self, watches: Sequence[WatchLike]) -> None:
        """Apply a reloaded config: add, remove and change watches without a restart."""
        to_stop: list[ObserverLike] = []
        with self._lock:
            t = self._now()
            wanted = {cfg.name: cfg for cfg in watches}
            for name in list(self._watches):
                if name not in wanted:
                    old = self._watches.pop(name).detach()
                    if old is not None:
                        to_stop.append(old)
                    self._log.info("watch removed", watch=name)
            for name, cfg in wanted.items():
                old_w = self._watches.get(name)
                if old_w is not None and _relevant(old_w.cfg) == _relevant(cfg):
                    old_w.cfg = cfg  # e.g. new targets: nothing to restart
                    continue
                new = Watch(cfg, self._shared)
                if old_w is not None:
                    old = old_w.detach()
                    if old is not None:
                        to_stop.append(old)
                    if old_w.root == new.root:  # same folder: don't report known files again
                        new.candidates.inherit(old_w.candidates)
                    self._log.info("watch changed", watch=name)
                else:
                    self._log.info("watch added", watch=name)
                self._watches[name] = new
                if self._started:
                    new.activate(t)
        stop_observers(to_stop)

    # --- the main-loop side --------------------------------------------------------------------

    def poll(self, now: float | None = None) -> list[StableFile | Vanished]:
        """What became stable or vanished since the last call (cheap; call from the main loop)."""
        with self._lock:
            t = self._now() if now is None else now
            self.wakeup.clear()
            while self._events:
                w, event = self._events.popleft()
                if self._watches.get(w.cfg.name) is w and not w.paused:
                    w.apply_event(event, t)
            if self._started:
                for w in self._watches.values():
                    w.poll(t)
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
                    w.check_health(t)
                    if not w.paused:
                        w.full_scan(t)

    def release(self, path: Path) -> None:
        """The daemon moved or deleted this source itself: forget it quietly.

        No Vanished is reported for it, and it does not count towards "the root emptied at
        once", so an on_success move/delete that empties the folder does not pause the watch.
        """
        p = Path(os.path.abspath(path))
        with self._lock:
            for w in self._watches.values():
                w.candidates.forget(p)

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
            refused = w.candidates.offer(p, self._now())
            if refused is not None:
                return refused
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
                w.check_health(self._now())
                return not w.paused
            problem = w.root_problem()
            if problem is not None:
                w.pause(problem)
                return False
            reported = len(w.candidates.reported)
        try:
            found = w.candidates.walk()
        except OSError as exc:
            pause = cannot_list(exc)
        else:
            if found:
                return True
            if not reported:
                return False  # an empty folder confirms nothing (a share not mounted yet)
            pause = emptied(reported)
        with self._lock:
            if self._watches.get(name) is w and not w.paused:
                w.pause(pause.reason, empty=pause.empty)
        return False

    def next_deadline(self) -> float | None:
        """When ``poll()`` may next have something to report (the main loop sleeps until then).

        None, too, while a poll holds the lock (stuck in a filesystem call on its worker).
        """
        if not self._lock.acquire(timeout=STATUS_LOCK_WAIT):
            return None
        try:
            times = [due for w in self._watches.values() for due in w.deadlines()]
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
            self._status = [w.status() for w in self._watches.values()]
            return list(self._status)
        finally:
            self._lock.release()

    # --- what the watches hand back ------------------------------------------------------------

    def _stat_now(self, path: Path) -> os.stat_result:
        """Every stat the watches make goes through ``_stat`` (swapped to play a hung mount)."""
        return self._stat(path)

    def _outbox_add(self, found: StableFile | Vanished) -> None:
        self._outbox.append(found)

    def _record(self, w: Watch, event: FsEvent) -> None:
        """In an observer thread: queue the event and wake the main loop."""
        self._events.append((w, event))
        self.wakeup.set()
