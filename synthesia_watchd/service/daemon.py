"""One running daemon over the parts ``compose.build`` made: signals, startup, shutdown order.

Startup: open the ledger, recover jobs interrupted by a crash, start the watchers (catch-up
scan), tell systemd READY. Then one loop: take what the watchers found, dispatch due jobs,
beat the heartbeat, sleep until something is due. Signal handlers only set flags; this loop
acts on them (SIGTERM/SIGINT: warm stop, a second one: cold; SIGHUP: reload).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

from synthesia_watchd import __version__
from synthesia_watchd.config.load import Config, load_config
from synthesia_watchd.domain import outputs
from synthesia_watchd.domain.control import Control, Gate, gate
from synthesia_watchd.domain.errors import AuthError, ConfigError, WatchdError
from synthesia_watchd.domain.retry import RetryPolicy
from synthesia_watchd.domain.states import ACTIVE, JobState, OutputState
from synthesia_watchd.engine import lifecycle
from synthesia_watchd.engine.jobspec import output_root
from synthesia_watchd.engine.notify import Notifications
from synthesia_watchd.engine.spending import spending, spending_text
from synthesia_watchd.stores import runtime
from synthesia_watchd.stores.ledger import Job
from synthesia_watchd.synthesia.api import SynthesiaClient
from synthesia_watchd.telemetry.logsetup import get_logger
from synthesia_watchd.telemetry.metrics import Heartbeat, MetricsServer
from synthesia_watchd.watching.watcher import StableFile, Vanished

from .compose import Parts

log = get_logger(component="daemon")

HEARTBEAT_SECONDS = 5.0
NO_KEY = (
    "no API key: set SYNTHESIA_API_KEY, api_key_file or $CREDENTIALS_DIRECTORY/synthesia_api_key"
)
AUTH_RECHECK_SECONDS = 30.0
#: Longest wait for the key check's answer at start (systemd waits for READY meanwhile).
START_CHECK_TIMEOUT = 10.0
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
    """One running synthesia-watchd: ``run()`` until stopped, or ``once``: until drained."""

    def __init__(self, parts: Parts, *, once: bool = False) -> None:
        self.parts = parts
        self.config = parts.config
        self.once = once
        #: Whether this run watches folders (``dub`` hands its files in directly).
        self.use_watchers = parts.watching
        self.now = parts.now
        self.stop = parts.stop
        self.notifier = parts.notifier
        self.metrics = parts.metrics
        self.lock = parts.lock
        self.ledger = parts.ledger
        self.limiter = parts.limiter
        self.pauses = parts.pauses
        self.client = parts.client
        self.reads = parts.reads
        self.pipeline = parts.pipeline
        self.claims = parts.claims
        self.watchset = parts.watchset
        #: The watchers' folder scans run on a worker: a hung mount must not stop the loop.
        self.watchers = parts.watchers
        self.wake = parts.watchset.wakeup
        self.scheduler = parts.scheduler
        self.heartbeat = parts.heartbeat
        self.metrics_server: MetricsServer | None = None
        self.web: Any = None
        self.notifications: Notifications | None = None
        self._signals: list[int] = []
        self._last_beat = 0.0
        self._last_auth_check = 0.0
        self._auth_checking = False
        self._stop_requested = 0
        #: Set once the catch-up scan is done and the daemon is ready.
        self.started = threading.Event()
        self._control = Control()
        #: Called once per loop pass (the `dub` progress bar).
        self.on_tick: Callable[[Daemon], None] | None = None
        #: This run's runtime file (commands without -c find the ledger through it).
        self.runtime_file: Path | None = None

    # --- signals -----------------------------------------------------------------------------

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # Only a flag: no locks, no logging, no I/O here (they can deadlock a signal handler).
        self._signals.append(signum)
        if signum in (signal.SIGTERM, signal.SIGINT):
            self._stop_requested += 1
            if self._stop_requested >= 2:
                os._exit(130)  # second signal: cold stop; the ledger is consistent at any point

    def request_stop(self) -> None:
        """Ask for a warm stop from another thread (the demo, tests): same path as SIGTERM."""
        self._signals.append(signal.SIGTERM)
        self.wake.set()

    def install_signals(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)

    def _handle_signals(self) -> None:
        while self._signals:
            sig = self._signals.pop(0)
            if sig in (signal.SIGTERM, signal.SIGINT) and not self.stop.is_set():
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
        try:
            new = load_config(self.config.source)
            # The limiter is kept: pacing state survives a reload on purpose (and the reads
            # counted today, whatever the new limits).
            client = self.parts.make_client(new)
        except ConfigError as exc:
            log.error("reload failed; keeping the running config", errors=str(exc))
            self.notifier.ready(self.status_line())
            return
        except Exception as exc:  # MemoryError, RecursionError, a bug: a reload is never fatal
            log.exception(
                "reload failed; keeping the running config", error=f"{type(exc).__name__}: {exc}"
            )
            self.notifier.ready(self.status_line())
            return
        old, self.config = self.config, new
        reads = new.rate_limits.get("reads")
        self.reads.per_minute = reads.per_minute if reads is not None else None
        self.reads.per_day = reads.per_day if reads is not None else None
        self.client = client
        self.pipeline.reconfigure(new, client)
        if client is None:
            self.pauses.set("auth", NO_KEY)
        self.scheduler.set_limits(max_active_jobs=new.max_active_jobs)
        if self.use_watchers:
            self.watchers.reconfigure(new.watches)
            for gone in {w.input for w in old.watches} - {w.input for w in new.watches}:
                self.claims.release(gone)
        self._reload_notifications(new)
        if new.metrics_listen != old.metrics_listen:
            log.warning("metrics.listen changed: applies at restart", listen=new.metrics_listen)
        if self.web is not None or new.web_listen:
            try:
                from synthesia_watchd.web.server import serve  # the web extra, only when used
            except ImportError as exc:
                log.error("web.listen not applied: the web extra is not installed", error=str(exc))
            else:
                self.web = serve(self.web, new, self.console, reload=True)
        if self.pauses.get("auth"):
            self._last_auth_check = 0.0  # re-check the (maybe new) key right away
        log.info("config reloaded", watches=[w.name for w in new.watches])
        self.auto_backfill()
        self.notifier.ready(self.status_line())

    def _reload_notifications(self, config: Config) -> None:
        """New notify settings take effect on reload; a bad one keeps the running set."""
        try:
            fresh = Notifications.from_config(config)
        except ConfigError as exc:
            log.error("notify settings not applied; keeping the previous ones", errors=str(exc))
            return
        old, self.notifications = self.notifications, fresh
        if old is not None:
            if fresh is not None:
                fresh.carry_over(old)
            old.close(timeout=0.5)

    # --- startup -----------------------------------------------------------------------------

    def recover(self) -> None:
        """Make every interrupted job resumable from its last durable step (after a crash).

        Running jobs hold no lease to reclaim: the ledger says where each stands. Leftover
        temp files of interrupted downloads are removed (they never sit under a final
        name); due times are reset so resumed work starts at once.
        """
        for job in self.ledger.list_jobs(states=(JobState.DOWNLOADING,), limit=1_000_000):
            if self._held_elsewhere(job):
                continue  # another node of a shared ledger is downloading it right now
            if any(o.state is OutputState.PENDING for o in self.ledger.outputs(job.id)):
                outputs.remove_temp_files(
                    output_root(job), Path(job.output_dir), Path(job.source_path).stem
                )
        self.resume_now()

    def _held_elsewhere(self, job: Job) -> bool:
        """Whether another node holds a live lease on the job (a shared ledger)."""
        return (
            job.lease_node is not None
            and job.lease_node != self.config.node_name
            and (job.lease_until or 0.0) >= self.now()
        )

    def resume_now(self) -> None:
        """Make every active job due at once (after a restart, or when a pause lifts).

        Jobs polling a project keep their cadence: polling early gains nothing.
        """
        now = self.now()
        for job in self.ledger.list_jobs(states=ACTIVE, limit=1_000_000):
            if self._held_elsewhere(job):
                continue
            if job.next_attempt_at > now and job.state is not JobState.DUBBING:
                with contextlib.suppress(WatchdError):
                    lifecycle.wait(self.ledger, job, now)

    def console(self) -> Any:
        """What the web console sees of this daemon (imported only when web.listen is set)."""
        from synthesia_watchd.web.data import Console

        return Console(
            ledger=self.ledger,
            config=lambda: self.config,
            watches=lambda: [dataclasses.asdict(w) for w in self.watchset.status()],
            gate=lambda: self.scheduler.gate,
            pauses=self.pauses.snapshot,
            offer=self.watchset.offer,
            wake=self.wake.set,
            now=self.now,
            progress=self.pipeline.progress.board.uploads,
            rate_usage=self.limiter.usage,
        )

    def start(self) -> None:
        for warning in self.config.warnings:
            log.warning("config warning", warning=warning)
        self.recover()
        self.notifications = Notifications.from_config(self.config)
        if self.config.web_listen:
            from synthesia_watchd.web.server import serve

            self.web = serve(None, self.config, self.console)
        if self.config.metrics_listen:
            self.metrics_server = MetricsServer(
                self.metrics, self.config.metrics_listen, health=self.health
            )
            self.metrics_server.start()
        if self.client is None:
            self.pauses.set("auth", NO_KEY)
            log.error("no API key configured: jobs are recorded but nothing is sent")
        else:
            self._check_key_at_start(self.client)
        self.watchers.start()
        self.runtime_file = runtime.register(
            self.config.ledger, self.config.state_dir, self.config.source
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

    def _check_key_at_start(self, client: SynthesiaClient) -> None:
        """One cheap call (one try): a refused key pauses all API work before any file is sent.

        Only a refusal pauses; an unreachable API or an unclear answer is logged and work
        starts as usual (the first real call then decides, as it always did).
        """
        self._last_auth_check = self.now()
        try:
            result = client.check_key(
                retry=RetryPolicy(max_attempts=1), read_timeout=START_CHECK_TIMEOUT
            )
        except WatchdError as exc:
            log.warning("API key check at start: no answer; starting anyway", error=str(exc))
            return
        if result.verdict in ("rejected", "blocked"):
            reason = f"API key check at start failed: {result.summary}"
            self.pauses.set("auth", reason)
            log.error(
                "API key refused at start: all API work paused; fix the key and send SIGHUP",
                reason=result.summary,
            )
        elif result.verdict != "accepted":
            log.warning(
                "API key check at start inconclusive; starting anyway", answer=result.summary
            )
        else:
            log.info("API key accepted", call=result.call, status=result.status)

    def auto_backfill(self) -> None:
        """For watches with ``backfill_new_targets``: add new targets to done projects."""
        if self.client is None:
            return
        for watch in self.config.watches:
            if not watch.backfill_new_targets:
                continue
            todo = self.pipeline.backfill_candidates(watch)
            if todo:
                log.info("backfilling new targets", watch=watch.name, jobs=len(todo))
            for job, missing in todo:
                self.scheduler.submit_task("submit", self._backfill_one, job, missing)

    def _backfill_one(self, job: Job, missing: list[str]) -> None:
        try:
            self.pipeline.backfill(job, missing)
        except WatchdError as exc:
            log.warning(
                "backfill failed; retried at the next start or reload",
                job_id=job.id,
                error=str(exc),
            )

    # --- the loop ----------------------------------------------------------------------------

    def loop_once(self, now: float | None = None) -> float:
        """One pass of the main loop; returns how long it may sleep."""
        now = self.now() if now is None else now
        self._handle_signals()
        if self.stop.is_set():
            return 0.0
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
        self._maybe_recheck_auth(now)
        gate_now = self.refresh_gate(now)
        if self.notifications is not None:
            self._notify(gate_now)
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

    def refresh_gate(self, now: float) -> Gate:
        """Read the operator's holds from the ledger (``pause`` writes them there, from any
        process) and the schedule windows; the scheduler holds back what they say."""
        control = lifecycle.read_control(self.ledger)
        if control != self._control:
            log.info(
                "holds changed",
                all=control.global_hold.mode if control.global_hold else None,
                watches={n: h.mode for n, h in control.watches.items()},
            )
            self._control = control
        new = gate(
            control,
            {w.name: w.schedule for w in self.config.watches},
            datetime.fromtimestamp(now),
        )
        self.scheduler.gate = new
        return new

    def _notify(self, gate_now: Gate) -> None:
        """Feed the notifier: finished jobs from the ledger, pauses that came or went."""
        assert self.notifications is not None
        self.notifications.poll_ledger(self.ledger)
        current = self.pauses.snapshot()
        control = self._control
        if control.global_hold is not None:
            current["operator"] = f"all watches: {control.global_hold.mode}"
        for name, hold in control.watches.items():
            current[f"operator:{name}"] = f"watch {name}: {hold.mode}"
        self.notifications.observe_pauses(current)

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

    def _maybe_recheck_auth(self, now: float) -> None:
        reason = self.pauses.get("auth")
        if not reason or self.client is None or self._auth_checking:
            return
        if now - self._last_auth_check < AUTH_RECHECK_SECONDS:
            return
        self._last_auth_check = now
        self._auth_checking = True
        client = self.client

        def check() -> None:
            try:
                client.check_auth()
            except AuthError:
                pass
            except WatchdError as exc:
                log.warning("auth re-check inconclusive", error=str(exc))
            else:
                if self.pauses.clear("auth"):
                    log.info("API key accepted again: resuming work")
                    self.resume_now()
            finally:
                self._auth_checking = False

        self.scheduler.submit_task("poll", check)

    def drained(self) -> bool:
        """For --once: nothing running, nothing pending at the watchers, no active job.

        Jobs that only wait for a daily limit (uploaded, budget paused; dubbing, polls held
        for the day's reads) count as drained:
        nothing more can happen before midnight, and a cron run must not hang until then.
        """
        if self.scheduler.busy() or not self.watchers.ready:
            return False
        if any(w.pending for w in self.watchset.status()):
            return False
        if not self.scheduler.runnable():
            return True  # what is left is held by a pause, drain or schedule
        active = self.ledger.count_in(ACTIVE)
        if self.pauses.get("budget") and active == self.ledger.count_in((JobState.UPLOADED,)):
            return True
        if self.pauses.get("reads") and active == self.ledger.count_in((JobState.DUBBING,)):
            return True  # polls wait for the day's read budget: the next run polls them
        return active == 0 or bool(self.pauses.get("auth"))

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
        if self.metrics_server is not None:
            self.metrics_server.stop()
        if self.web is not None:
            self.web.stop()
        if self.notifications is not None:
            self.poll_notifications_once()
            self.notifications.close()
        self.beat(force=True, stopping=True)
        runtime.unregister(self.runtime_file)
        with contextlib.suppress(Exception):
            self.ledger.checkpoint()
        log.info("stopped", counts={k: v for k, v in self.ledger.counts().items() if v})
        return finished

    def poll_notifications_once(self) -> None:
        """Queue what finished since the last pass (at shutdown: the last jobs' messages)."""
        if self.notifications is not None:
            with contextlib.suppress(WatchdError):
                self.notifications.poll_ledger(self.ledger)

    # --- health and status -------------------------------------------------------------------

    def status_line(self) -> str:
        counts = self.ledger.counts()
        parts = [
            f"{counts.get(s.value, 0)} {s.value}"
            for s in (JobState.QUEUED, JobState.DUBBING, JobState.DONE, JobState.FAILED)
        ]
        paused = self.pauses.snapshot()
        if paused:
            parts.append("PAUSED: " + "; ".join(paused.values()))
        return ", ".join(parts)

    def renew_leases(self) -> None:
        """Keep the jobs this node works on its own, and say the node is alive."""
        now, node = self.now(), self.config.node_name
        self.ledger.renew(node, self.scheduler.running_ids(), now + self.config.lease_duration)
        self.ledger.beat(node, now, pid=os.getpid(), version=__version__)

    def beat(self, *, force: bool = False, stopping: bool = False) -> None:
        """Heartbeat file, systemd STATUS/WATCHDOG, metrics and the status record."""
        mono = time.monotonic()
        if not force and mono - self._last_beat < HEARTBEAT_SECONDS:
            return
        self._last_beat = mono
        self.renew_leases()
        self.reads.flush()
        counts = self.ledger.counts()
        self.metrics.set_job_counts(counts)
        oldest = self.ledger.oldest_queued_at()
        self.metrics.oldest_queued_age.set(max(self.now() - oldest, 0) if oldest else 0)
        paused = self.pauses.snapshot()
        for kind in ("auth", "budget", "space", "reads"):  # space: one key per held output root
            self.metrics.set_paused(kind, any(k.split(":", 1)[0] == kind for k in paused))
        held = self.scheduler.gate.why
        self.metrics.set_holds([w.name for w in self.config.watches], held)
        record = {
            "pid": os.getpid(),
            "time": self.now(),
            "stopping": stopping,
            "paused": paused,
            "reads": {"last_24h": self.reads.used(), "per_day": self.reads.per_day},
            "progress": self.pipeline.progress.board.snapshot(),
            "watches": [
                {
                    "name": w.name,
                    "mode": w.mode,
                    "reason": w.reason,
                    "paused": w.paused,
                    "pause_reason": w.pause_reason,
                    "pending": w.pending,
                    "incomplete": [
                        {
                            "file": h.path.name,
                            "path": str(h.path),
                            "detail": h.detail,
                            "since": h.since_wall,
                        }
                        for h in w.incomplete
                    ],
                    "held": held.get(w.name),
                }
                for w in self.watchset.status()
            ],
        }
        stuck = self.watchers.stuck_for()
        if stuck:
            record["fs_stuck_seconds"] = round(stuck, 1)
        self.ledger.set_meta("daemon", json.dumps(record))
        self.heartbeat.beat(record)
        self.metrics.heartbeat_timestamp.set(self.now())
        self.notifier.status(self.status_line())
        self.notifier.watchdog()

    def health(self) -> tuple[bool, str]:
        return Heartbeat.check(self.heartbeat.path, max_age=HEARTBEAT_SECONDS * 6)
