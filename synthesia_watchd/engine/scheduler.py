"""Bounded pools and due-job dispatch.

The ledger is the queue: a job is due when its ``next_attempt_at`` has passed. Each dispatch
hands due jobs to the pool of their stage (uploads, short API calls, downloads) up to that
pool's bound, and never hands out a job that is already running. A job waiting on Synthesia
is only a row with a time in it, so a thousand dubbing projects hold no thread.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, Protocol, TypeVar

from synthesia_watchd.domain.control import Gate
from synthesia_watchd.domain.errors import ShutdownRequested, WatchdError
from synthesia_watchd.domain.states import ACTIVE, JobState
from synthesia_watchd.stores.ledger import LedgerStore
from synthesia_watchd.telemetry.logsetup import get_logger

from .pipeline import SLOT_STATES, Pipeline

log = get_logger(component="scheduler")

T = TypeVar("T")


class Executor(Protocol):
    """What the scheduler needs of a pool (``concurrent.futures.Executor`` fits)."""

    def submit(self, fn: Callable[..., T], /, *args: Any) -> Future[T]: ...

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None: ...


class InlineExecutor:
    """Runs each task at once in the caller's thread and hands back its finished future.

    With it, ``Daemon.loop_once(now)`` carries every due job through its stage before it
    returns: tests step the engine on their own clock, with no threads and no waiting.
    """

    def submit(self, fn: Callable[..., T], /, *args: Any) -> Future[T]:
        fut: Future[T] = Future()
        try:
            fut.set_result(fn(*args))
        except BaseException as exc:  # noqa: BLE001 - handed to the future, as a pool would
            fut.set_exception(exc)
        return fut

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Nothing runs in the background: nothing to stop."""


#: Makes the pool named ``name`` with ``threads`` workers.
ExecutorFactory = Callable[[str, int], Executor]


def threaded(name: str, threads: int) -> Executor:
    """A real thread pool (the daemon's)."""
    return ThreadPoolExecutor(threads, thread_name_prefix=name)


def inline(name: str, threads: int) -> Executor:
    """An inline executor whatever the pool (deterministic tests)."""
    return InlineExecutor()


#: Short API calls run on their own pools, each holding a thread for one request only. Submits
#: (writes) and polls (reads) are paced by different limits, so they get separate pools: a
#: burst of polls waiting for read budget never holds up a submit.
SUBMIT_THREADS = 2
POLL_THREADS = 4
INTAKE_THREADS = 2

_POOL_OF: dict[JobState, str] = {
    JobState.QUEUED: "upload",
    JobState.ASSET_CREATED: "upload",
    JobState.UPLOADED: "submit",
    JobState.DUBBING: "poll",
    JobState.DOWNLOADING: "download",
}


class Scheduler:
    """Runs pipeline stages on bounded thread pools; one instance per daemon."""

    def __init__(
        self,
        pipeline: Pipeline,
        ledger: LedgerStore,
        *,
        max_uploads: int,
        max_downloads: int,
        max_active_jobs: int,
        wake: threading.Event | None = None,
        executor: ExecutorFactory = threaded,
        node: str = "local",
        lease_seconds: float = 60.0,
    ) -> None:
        self.pipeline = pipeline
        self.ledger = ledger
        #: Jobs are claimed for this node with a lease (a shared ledger's other nodes skip
        #: them until it expires); a finished step gives its job's lease back.
        self.node = node
        self.lease_seconds = lease_seconds
        self.limits = {
            "upload": max_uploads,
            "submit": SUBMIT_THREADS,
            "poll": POLL_THREADS,
            "download": max_downloads,
        }
        self.max_active_jobs = max_active_jobs
        self.pools = {
            name: executor(name, n)
            for name, n in (*self.limits.items(), ("intake", INTAKE_THREADS))
        }
        self.wake = wake or threading.Event()
        self._lock = threading.Lock()
        self._running: dict[int, tuple[str, Future[None]]] = {}
        self._intake: set[Future[Any]] = set()
        self._extra: set[Future[Any]] = set()
        #: Operator holds and schedule windows; the daemon refreshes it every loop pass.
        self.gate = Gate()

    def set_limits(self, *, max_active_jobs: int) -> None:
        """Reload-time change of the project bound (pool sizes need a restart)."""
        self.max_active_jobs = max_active_jobs

    # --- bookkeeping -------------------------------------------------------------------------

    def running_ids(self) -> set[int]:
        with self._lock:
            return set(self._running)

    def running_in(self, pool: str) -> int:
        with self._lock:
            return sum(1 for p, _ in self._running.values() if p == pool)

    def busy(self) -> bool:
        """Whether any stage, intake or side task is still running."""
        with self._lock:
            return bool(self._running or self._intake or self._extra)

    def _done(self, job_id: int, fut: Future[None]) -> None:
        with self._lock:
            self._running.pop(job_id, None)
        with contextlib.suppress(WatchdError):  # unreachable ledger: the lease just expires
            self.ledger.release(self.node, [job_id])
        exc = fut.exception() if not fut.cancelled() else None
        if exc is not None and not isinstance(exc, ShutdownRequested):
            log.error("stage crashed", job_id=job_id, error=repr(exc))
        self.wake.set()

    # --- dispatch ----------------------------------------------------------------------------

    def submit_intake(self, fn: Callable[..., Any], *args: Any) -> None:
        """Hash and record a stable file off the main loop."""
        fut = self.pools["intake"].submit(fn, *args)
        with self._lock:
            self._intake.add(fut)

        def done(f: Future[Any]) -> None:
            with self._lock:
                self._intake.discard(f)
            exc = f.exception() if not f.cancelled() else None
            if exc is not None:
                log.error("intake failed", error=repr(exc))
            self.wake.set()

        fut.add_done_callback(done)

    def submit_task(self, pool: str, fn: Callable[..., Any], *args: Any) -> None:
        """A side task (an auth re-check) on a pool, tracked so shutdown waits for it."""
        fut = self.pools[pool].submit(fn, *args)
        with self._lock:
            self._extra.add(fut)

        def done(f: Future[Any]) -> None:
            with self._lock:
                self._extra.discard(f)
            self.wake.set()

        fut.add_done_callback(done)

    def dispatch(self, now: float) -> int:
        """Hand every due job to its pool, within the bounds; returns how many started."""
        started = 0
        running = self.running_ids()
        # Uploads run ahead of the project slots by one slot set (at least one upload per
        # upload worker): when a wave of dubs finishes, the next wave is uploaded and starts
        # at once, yet a burst of drops never creates hundreds of assets ahead of time.
        pipeline_depth = self.ledger.count_in(
            (JobState.ASSET_CREATED, JobState.UPLOADED, *SLOT_STATES)
        )
        free_upload = self.limits["upload"] - self.running_in("upload")
        ahead = max(self.limits["upload"], self.max_active_jobs)
        lookahead = self.max_active_jobs + ahead - pipeline_depth
        n = min(free_upload, max(lookahead, 0))
        gate = self.gate
        if free_upload > 0:
            # Resumed uploads first (their asset exists), then new work.
            jobs = self._due((JobState.ASSET_CREATED,), now, free_upload, running, claim=True)
            jobs += self._due((JobState.QUEUED,), now, max(n - len(jobs), 0), running, claim=True)
            for job in jobs[:free_upload]:
                started += self._start("upload", job.id)
            self.ledger.release(self.node, [j.id for j in jobs[free_upload:]])
        for pool in ("submit", "poll", "download"):
            free = self.limits[pool] - self.running_in(pool)
            if pool == "submit":
                # Only as many submits as there are free project slots: a job handed out
                # with every slot taken would be parked, and jobs uploaded after it would
                # take the next free slot first. Left due, it keeps its place in line.
                slots = self.max_active_jobs - self.ledger.count_in(SLOT_STATES)
                free = min(free, slots - self.running_in(pool))
            if free > 0:
                states = tuple(s for s, p in _POOL_OF.items() if p == pool)
                for job in self._due(states, now, free, running, gate, claim=True):
                    started += self._start(pool, job.id)
        return started

    def _due(
        self,
        states: tuple[JobState, ...],
        now: float,
        limit: int,
        running: set[int],
        gate: Gate | None = None,
        *,
        claim: bool = False,
    ) -> list[Any]:
        """Due jobs of ``states`` that the gate lets take their next step; with ``claim``,
        leased to this node (a shared ledger's other nodes skip them)."""
        gate = gate or self.gate
        if JobState.QUEUED in states:
            held_all, held = gate.all_new, gate.new
        elif JobState.ASSET_CREATED in states or JobState.UPLOADED in states:
            held_all, held = gate.all_started, gate.started
        else:
            held_all, held = False, frozenset()
        if held_all or limit <= 0:
            return []
        if claim:
            until = now + self.lease_seconds
            return self.ledger.claim(
                states, now, self.node, until, limit, running, exclude_watches=held
            )
        return self.ledger.due(states, now, limit, running, exclude_watches=held)

    def runnable(self) -> bool:
        """Whether any active job is not held (due or not): --once waits only for those."""
        running = self.running_ids()
        return any(
            self._due(states, float("inf"), 1, running)
            for states in (
                (JobState.QUEUED,),
                (JobState.ASSET_CREATED, JobState.UPLOADED),
                (JobState.DUBBING, JobState.DOWNLOADING),
            )
        ) or bool(running)

    def _start(self, pool: str, job_id: int) -> int:
        with self._lock:
            if job_id in self._running:
                return 0
            # Reserved before the stage starts: an inline executor runs it right here.
            self._running[job_id] = (pool, Future())
        fut = self.pools[pool].submit(self.pipeline.step, job_id)
        with self._lock:
            if job_id in self._running:
                self._running[job_id] = (pool, fut)
        fut.add_done_callback(functools.partial(self._done, job_id))
        return 1

    def next_due(self, after: float | None = None) -> float | None:
        """When the next job becomes due (the main loop sleeps until then); with ``after``,
        the next one due later than that (jobs due already wait for a worker or a slot, and
        a finishing worker wakes the loop)."""
        return self.ledger.next_due_at(ACTIVE, after)

    # --- shutdown ----------------------------------------------------------------------------

    def shutdown(self, timeout: float) -> bool:
        """Stop taking work and wait up to ``timeout`` for running stages; True if all ended."""
        with self._lock:
            futures = (
                [f for _, f in self._running.values()] + list(self._intake) + list(self._extra)
            )
        _, not_done = wait(futures, timeout=timeout)
        for pool in self.pools.values():
            pool.shutdown(wait=not not_done, cancel_futures=True)
        return not not_done
