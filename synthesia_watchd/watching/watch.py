"""One configured watch: its observer, its root's health and its candidate files kept in step.

A root that goes missing, is unmounted or empties all at once pauses its watch: the observer
stops and nothing is tracked, so no file is reported as deleted (a NAS reboot must not cancel
the queue). The root is re-checked every scan interval; once healthy (and, after emptying,
holding files again) the watch resumes with its observer and a catch-up scan.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from .candidates import Candidates, Report
from .model import FsEvent, LogLike, WatchLike, WatchStatus
from .observers import ObserverLike, Observers, Watching, stop_observers
from .roothealth import RootDevice


@dataclass(frozen=True)
class Shared:
    """What every watch of a WatchSet uses alike."""

    now: Callable[[], float]
    stat: Callable[[Path], os.stat_result]
    log: LogLike
    observers: Observers
    #: Asked at each root check whether this daemon may work in a root (claims.py).
    claim: Callable[[Path], str | None] | None
    #: Where stable and vanished files go (the WatchSet's outbox).
    report: Report
    #: Called from observer threads with each event (the WatchSet queues it, wakes the loop).
    record: Callable[[Watch, FsEvent], None]


class Watch:
    """One configured watch; only touched under WatchSet's lock."""

    def __init__(self, cfg: WatchLike, shared: Shared) -> None:
        self.cfg = cfg
        self._shared = shared
        self._log = shared.log
        self.candidates = Candidates(
            cfg, shared.stat, shared.now, log=shared.log, report=shared.report
        )
        self.root = self.candidates.root
        self.device = RootDevice(self.root, shared.stat)
        self.observer: ObserverLike | None = None
        self.mode = "polling" if cfg.mode == "polling" else "native"
        self.reason: str | None = None
        self.paused = False
        self.pause_reason: str | None = None
        self.paused_empty = False
        self.next_health = 0.0

    def activate(self, t: float) -> None:
        """Start watching: check the root, start its observer, catch-up scan."""
        problem = self.root_problem()
        if problem is not None:
            self.pause(problem)
            return
        self._start_observer()
        if not self.paused:
            self.full_scan(t)

    def detach(self) -> ObserverLike | None:
        """Hand over the observer for the caller to stop (outside the lock)."""
        observer, self.observer = self.observer, None
        return observer

    def _start_observer(self) -> None:
        started = self._shared.observers.start(
            self.cfg, self.root, partial(self._shared.record, self)
        )
        if not isinstance(started, Watching):
            self.pause(started)
            return
        self.observer, self.mode, self.reason = started.observer, started.mode, started.reason

    def apply_event(self, event: FsEvent, t: float) -> None:
        if self.candidates.apply_event(event, t, native=self.mode == "native"):
            self.next_health = t  # the root itself went: check it now

    def poll(self, t: float) -> None:
        """Check the root when due, scan, and report what settled."""
        c = self.candidates
        ripe = c.ripe(t)
        if t >= self.next_health or ripe:
            self.check_health(t)
        if self.paused:
            return
        if c.needs_full_scan or ripe or t >= c.next_safety:
            self.full_scan(t)
            # mypy keeps the `self.paused` narrowing from above across the call, but a scan
            # that finds the root gone pauses the watch: this return is reachable.
            if self.paused:
                return  # type: ignore[unreachable]
        else:
            c.scan_dirty(t)
        c.settle(t)

    def full_scan(self, t: float) -> None:
        """Reconcile with the disk; a scan that cannot trust the root pauses the watch."""
        pause = self.candidates.full_scan(t)
        if pause is not None:
            self.pause(pause.reason, empty=pause.empty)

    # --- root health ---------------------------------------------------------------------------

    def root_problem(self) -> str | None:
        """Why the root cannot be trusted right now (missing, unmounted, claimed), or None."""
        check = self.device.check()
        if check.problem is not None:
            return check.problem
        if check.remounted:
            # A full scan, and a new observer: inotify watches do not follow a new mount.
            self._log.info("input folder remounted", watch=self.cfg.name, root=str(self.root))
            self.candidates.needs_full_scan = True
            if self.observer is not None and not self.paused:
                stop_observers([self.observer])
                self.observer = None
                self._start_observer()
        claim = self._shared.claim
        return claim(self.root) if claim is not None else None

    def check_health(self, t: float) -> None:
        """Pause on a root problem; resume a paused watch whose root is back."""
        self.next_health = t + max(self.cfg.scan_interval, 0.01)
        problem = self.root_problem()
        if problem is not None:
            self.pause(problem)
            return
        if not self.paused:
            return
        if self.paused_empty:
            try:
                if not self.candidates.walk():
                    return  # still empty: stay paused
            except OSError:
                return
        self._resume(t)

    def pause(self, reason: str, *, empty: bool = False) -> None:
        """Stop watching and tracking until the root is trusted again (files stay unreported)."""
        if not self.paused or self.pause_reason != reason:
            self._log.warning(
                "watch paused", watch=self.cfg.name, root=str(self.root), reason=reason
            )
        self.paused, self.pause_reason, self.paused_empty = True, reason, empty
        if self.observer is not None:
            stop_observers([self.observer])
            self.observer = None
        self.candidates.clear()

    def _resume(self, t: float) -> None:
        self._log.info(
            "watch resumed", watch=self.cfg.name, root=str(self.root), was=self.pause_reason
        )
        self.paused, self.pause_reason, self.paused_empty = False, None, False
        self._start_observer()
        if not self.paused:
            self.full_scan(t)

    # --- what the main loop asks ---------------------------------------------------------------

    def deadlines(self) -> list[float]:
        """When ``poll`` may next have something to do (a paused watch: its root check only)."""
        if self.paused:
            return [self.next_health]
        return [self.next_health, *self.candidates.deadlines()]

    def status(self) -> WatchStatus:
        return WatchStatus(
            name=self.cfg.name,
            mode=self.mode,
            reason=self.reason,
            paused=self.paused,
            pause_reason=self.pause_reason,
            pending=self.candidates.tracker.pending(),
            incomplete=tuple(self.candidates.incomplete.held()),
        )
