"""One running daemon over the parts ``compose.build`` made: the main loop, start and stop order.

Startup: recover jobs interrupted by a crash, start the listeners, check the API key, start
the watchers (catch-up scan), tell systemd READY. Then one loop: take what the watchers
found, dispatch due jobs, beat, sleep until something is due. Signal handlers only set flags
(``signals``); this loop acts on them (SIGTERM/SIGINT: warm stop, a second one: cold; SIGHUP:
reload, ``reconfigure``). The loop's other duties have their own modules: crash recovery
(``recovery``), the key gate (``keygate``), the operator's holds (``holdgate``), the status
beat (``statusbeat``), notifications (``notifyfeed``), the HTTP listeners (``listeners``) and
the end of a ``--once`` run (``drain``).
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthesia_watchd import __version__
from synthesia_watchd.config.load import Config
from synthesia_watchd.domain.control import Gate
from synthesia_watchd.domain.errors import WatchdError
from synthesia_watchd.engine import backfill
from synthesia_watchd.engine.notify import Notifications
from synthesia_watchd.engine.spending import spending, spending_text
from synthesia_watchd.stores import runtime
from synthesia_watchd.synthesia.api import SynthesiaClient
from synthesia_watchd.telemetry.logsetup import get_logger
from synthesia_watchd.watching.model import StableFile, Vanished

from . import drain, reconfigure, recovery
from .compose import Parts
from .holdgate import HoldGate
from .keygate import KeyGate
from .listeners import Listeners
from .notifyfeed import NotifyFeed
from .signals import STOPS, SignalFlags
from .statusbeat import StatusBeat

log = get_logger(component="daemon")

#: The longest the loop sleeps: how quickly it notices a signal flag.
MAX_SLEEP = 0.5


@dataclass
class RunResult:
    """What a run ended with, for exit codes and `--once` summaries."""

    exit_code: int
    counts: Mapping[str, int]
    #: False when some worker was still busy at shutdown_timeout (a hung request): the
    #: process should then exit without joining it; the ledger is consistent either way.
    finished: bool = True


class Daemon:
    """One running synthesia-watchd: ``run()`` until stopped, or ``once``: until drained.

    A reload replaces ``parts.config`` and ``parts.client``; the collaborators read both
    from ``parts``, so each sees the running config.
    """

    def __init__(self, parts: Parts, *, once: bool = False) -> None:
        self.parts = parts
        self.once = once
        #: Whether this run watches folders (``dub`` hands its files in directly).
        self.use_watchers = parts.watching
        self.now = parts.now
        self.stop = parts.stop
        self.notifier = parts.notifier
        self.metrics = parts.metrics
        self.lock = parts.lock
        self.ledger = parts.ledger
        self.pauses = parts.pauses
        self.pipeline = parts.pipeline
        self.claims = parts.claims
        self.watchset = parts.watchset
        #: The watchers' folder scans run on a worker: a hung mount must not stop the loop.
        self.watchers = parts.watchers
        self.wake = parts.watchset.wakeup
        self.scheduler = parts.scheduler
        self.signals = SignalFlags()
        self.status = StatusBeat(parts)
        self.keys = KeyGate(parts, on_accepted=self.resume_now)
        self.notify = NotifyFeed(parts)
        self.holds = HoldGate(parts)
        self.listeners = Listeners(parts, health=self.status.health)
        #: Set once the catch-up scan is done and the daemon is ready.
        self.started = threading.Event()
        #: Called once per loop pass (the `dub` progress bar).
        self.on_tick: Callable[[Daemon], None] | None = None
        #: This run's runtime file (commands without -c find the ledger through it).
        self.runtime_file: Path | None = None

    @property
    def config(self) -> Config:
        """The running config (a reload replaces it)."""
        return self.parts.config

    @property
    def client(self) -> SynthesiaClient | None:
        """The running API client (None: no key); a reload replaces it."""
        return self.parts.client

    @property
    def notifications(self) -> Notifications | None:
        return self.notify.notifications

    @property
    def web(self) -> Any:
        """The console's server, when ``web.listen`` is set."""
        return self.listeners.web

    # --- signals -----------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Ask for a warm stop from another thread (the demo, tests): same path as SIGTERM."""
        self.signals.request_stop()
        self.wake.set()

    def install_signals(self) -> None:
        self.signals.install()

    def _handle_signals(self) -> None:
        for sig in self.signals.taken():
            if sig in STOPS and not self.stop.is_set():
                log.info(
                    "stopping: finishing in-flight work",
                    timeout=self.config.shutdown_timeout,
                    signal=signal.Signals(sig).name,
                )
                self.stop.set()
            elif sig == signal.SIGHUP:
                self.reload()

    def reload(self) -> None:
        """SIGHUP: re-read the config and key; watches change, in-flight jobs keep settings."""
        if self.config.source is None:
            log.warning("reload ignored: this run has no config file")
            return
        self.notifier.reloading()
        loaded = reconfigure.read_new(self.parts, self.config.source)
        if loaded is not None:
            new, client = loaded
            old = self.config
            reconfigure.apply(self.parts, new, client)
            self.keys.reloaded()
            self.notify.reload(new)
            self.listeners.reload(old, new)
            log.info("config reloaded", watches=[w.name for w in new.watches])
            self.auto_backfill()
        self.notifier.ready(self.status_line())

    # --- startup -----------------------------------------------------------------------------

    def resume_now(self) -> None:
        """Make every active job due at once (after a restart, or when a pause lifts)."""
        recovery.resume_now(self.ledger, self.config.node_name, self.now())

    def start(self) -> None:
        """Recover, then listeners, key check, watchers (their catch-up scan), READY."""
        for warning in self.config.warnings:
            log.warning("config warning", warning=warning)
        recovery.recover(self.ledger, self.config.node_name, self.now())
        self.notify.start(self.config)
        self.listeners.start()
        self.keys.at_start()
        self.watchers.start()
        self.runtime_file = runtime.register(
            self.config.ledger_location, self.config.state_dir, self.config.source
        )
        log.info(
            "started",
            version=__version__,
            watches=[w.name for w in self.config.watches],
            ledger=self.ledger.location,
            node=self.config.node_name,
            pid=os.getpid(),
        )
        figures = spending(self.config, self.ledger, self.now())
        log.info("spending limits", summary=spending_text(figures), **figures)
        self.auto_backfill()
        self.beat(force=True)
        self.notifier.ready(self.status_line())
        self.started.set()

    def auto_backfill(self) -> None:
        """For watches with ``backfill_new_targets``: add new targets to done projects, one
        node at a time (engine.backfill.start_all)."""
        if self.client is not None:
            backfill.start_all(
                self.pipeline.ctx, functools.partial(self.scheduler.submit_task, "submit")
            )

    # --- the loop ----------------------------------------------------------------------------

    def loop_once(self, now: float | None = None) -> float:
        """One pass of the main loop; returns how long it may sleep."""
        now = self.now() if now is None else now
        self._handle_signals()
        if self.stop.is_set():
            return 0.0
        self._take_found()
        self.keys.maybe_recheck(now)
        self.refresh_gate(now)
        self.notify.feed(self.holds.control)
        if not self.pauses.get("auth"):
            self.scheduler.dispatch(now)
        self.beat()
        # Jobs due already are running or waiting for a free worker, a project slot or a
        # pause: a finishing worker sets ``wake``, so the loop sleeps until the next job that
        # becomes due later (a poll planned a tenth of a second ahead), never spins.
        due = self.scheduler.next_due(after=now)
        deadline = self.watchset.next_deadline()
        sleep = MAX_SLEEP
        if due is not None:
            sleep = min(sleep, due - now)
        if deadline is not None:
            sleep = min(sleep, max(deadline - time.monotonic(), 0.0))
        return sleep

    def _take_found(self) -> None:
        """What the watchers found: stable files go to intake, vanished ones cancel jobs."""
        for item in self.watchers.poll():
            if isinstance(item, StableFile):
                watch = self.pipeline.watch(item.watch)
                if watch is not None:
                    self.scheduler.submit_intake(
                        self._intake, watch, item.path, item.size, item.mtime_ns, item.incomplete
                    )
            elif isinstance(item, Vanished):
                for job_id in self.pipeline.source_vanished(item.watch, item.path):
                    log.info("job cancelled: source vanished", job_id=job_id, file=item.path.name)

    def refresh_gate(self, now: float) -> Gate:
        """The operator's holds and the schedule windows, as the scheduler's gate now."""
        return self.holds.refresh(now)

    def _intake(
        self, watch: Any, path: Path, size: int, mtime_ns: int, incomplete: str | None = None
    ) -> None:
        """Intake on a worker; when it fails (I/O error, busy ledger) the watcher forgets the
        file so that its next scan offers it again instead of ignoring it until a restart."""
        try:
            self.pipeline.intake(watch, path, size, mtime_ns, incomplete=incomplete)
        except Exception:
            self.watchset.release(path)
            raise

    def drained(self) -> bool:
        """For --once: nothing running, nothing pending, no active job that may move now."""
        return drain.drained(self.parts)

    def run(self) -> RunResult:
        """Run until stopped (or drained with ``once``); returns the exit code and counts."""
        self.install_signals()
        try:
            self.start()
            while not self.stop.is_set():
                try:
                    sleep = self.loop_once()
                except (WatchdError, OSError) as exc:
                    # The one loop boundary: a busy ledger or a full disk must not kill the
                    # daemon; the ledger is consistent, so log, wait a moment, carry on.
                    log.exception("main loop error; retrying", error=str(exc))
                    sleep = 1.0
                if self.on_tick is not None:
                    self.on_tick(self)
                if self.once and self.drained():
                    break
                if sleep > 0:
                    self.wake.wait(sleep)
                    self.wake.clear()
        finally:
            finished = self.shutdown()
        counts = self.ledger.counts()
        self.ledger.close()
        self.lock.release()
        code = 0
        if self.once and self.pauses.get("auth"):
            code = 3
        return RunResult(code, counts, finished)

    def shutdown(self) -> bool:
        """Stop taking work, let in-flight calls finish or abort, checkpoint the ledger."""
        self.stop.set()
        self.notifier.stopping()
        if self.use_watchers:
            self.watchset.stop()
            self.claims.release_all()
        finished = self.scheduler.shutdown(self.config.shutdown_timeout)
        if not finished:
            log.warning(
                "some work did not stop within shutdown_timeout; it resumes on restart",
                timeout=self.config.shutdown_timeout,
            )
        self.listeners.stop()
        self.notify.close()
        self.beat(force=True, stopping=True)
        runtime.unregister(self.runtime_file)
        with contextlib.suppress(Exception):
            self.ledger.checkpoint()
        log.info("stopped", counts={k: v for k, v in self.ledger.counts().items() if v})
        return finished

    # --- health and status -------------------------------------------------------------------

    def status_line(self) -> str:
        return self.status.status_line()

    def beat(self, *, force: bool = False, stopping: bool = False) -> None:
        """Heartbeat file, systemd STATUS/WATCHDOG, metrics and the status record."""
        self.status.beat(force=force, stopping=stopping)
