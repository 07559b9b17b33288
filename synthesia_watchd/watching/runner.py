"""The watchers' filesystem work on one worker thread, so a hung mount never stops the loop.

Starting the watchers (catch-up scan), applying a reloaded watch list and every ``poll()``
stat and list folders; on a dead NFS/SMB mount those calls block in the kernel for good. The
daemon's main loop must keep beating, handling signals and running jobs, so all of it runs
here, one turn at a time on one worker, and the loop waits a bounded time for each turn. A
turn that is late is collected on a later pass; one stuck for ``stuck_after`` seconds is
logged once and shown in ``status``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from synthesia_watchd.files.offload import Offloaded

from .model import LogLike, StableFile, Vanished, WatchLike
from .watcher import WatchSet

#: The longest one pass of the loop waits for a turn of the watchers.
TURN_WAIT = 0.5
#: How long startup waits for the watchers' catch-up scan before going on without it.
START_WAIT = 15.0
#: A turn running longer than this is reported as a hung filesystem call.
STUCK_SECONDS = 10.0

Found = list[StableFile | Vanished]


class WatchRunner:
    """Drives a WatchSet from a worker thread: ``start``, ``reconfigure``, ``poll``."""

    def __init__(
        self,
        watchset: WatchSet,
        *,
        enabled: bool,
        log: LogLike,
        chores: Callable[[], None] = lambda: None,
    ) -> None:
        self.watchset = watchset
        self._log = log
        #: Other writes into the watch folders (claim refreshes), done at each turn too.
        self._chores = chores
        self._worker: Offloaded[Found] = Offloaded("watch-scan")
        self._to_start = enabled
        self._ready = not enabled
        self._to_apply: tuple[WatchLike, ...] | None = None
        self._early: Found = []
        self._stuck_logged = False
        self.stuck_after = STUCK_SECONDS
        self.start_wait = START_WAIT

    @property
    def ready(self) -> bool:
        """Whether the watchers have started (their catch-up scan is done)."""
        return self._ready

    def start(self) -> None:
        """Start the observers and the catch-up scan; wait for it at most ``start_wait``."""
        if not self._to_start:
            return
        finished, found = self._worker.run(self._turn, self.start_wait)
        self._early = found or []
        if not finished:
            self._log.warning(
                "the catch-up scan of the watch folders has not finished (a hung mount?); "
                "starting without it: it goes on in the background",
                seconds=self.start_wait,
            )

    def reconfigure(self, watches: Sequence[WatchLike]) -> None:
        """Apply a reloaded watch list at the next turn (it scans folders too)."""
        self._to_apply = tuple(watches)

    def poll(self) -> Found:
        """What the watchers found since the last call; [] while a turn is late."""
        if self._early:
            early, self._early = self._early, []
            return early
        finished, found = self._worker.run(self._turn, TURN_WAIT)
        if finished:
            if self._stuck_logged:
                self._log.info("filesystem responding again: watching resumed")
                self._stuck_logged = False
            return found or []
        stuck = self.stuck_for()
        if stuck and not self._stuck_logged:
            self._stuck_logged = True
            self._log.warning(
                "a filesystem call has hung: scanning the watch folders waits for it "
                "(a dead NFS/SMB mount?); jobs, heartbeat and signals carry on",
                seconds=round(stuck),
            )
        return []

    def stuck_for(self) -> float:
        """Seconds the current turn has been running, once past ``stuck_after`` (else 0)."""
        stuck = self._worker.stuck_for()
        return stuck if stuck > 0 and stuck >= self.stuck_after else 0.0

    def _turn(self) -> Found:
        """One turn, on the worker: start the first time, apply a reload, then poll."""
        if self._to_start:
            self._to_start = False
            self.watchset.start()
            self._ready = True
        pending, self._to_apply = self._to_apply, None
        if pending is not None:
            self.watchset.reconfigure(pending)
        self._chores()
        return self.watchset.poll()
