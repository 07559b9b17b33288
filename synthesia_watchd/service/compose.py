"""The composition root: the one place that names the concrete parts and wires them.

``build(config)`` makes everything a run needs (ledger, client, pipeline, watchers,
scheduler, metrics) and hands it to ``Daemon`` as ``Parts``; ``run``, ``dub``, ``demo`` and
the commands that work on a ledger (``backfill``) all build through here, so a part is chosen
in one place. Tests pass their own clock and executor (``scheduler.inline``) to step
``Daemon.loop_once(now)`` by hand.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthesia_watchd.config.load import Config
from synthesia_watchd.domain.apitypes import UploadCredentials
from synthesia_watchd.domain.errors import LedgerError
from synthesia_watchd.domain.ratelimit import RateLimiter
from synthesia_watchd.domain.readbudget import ReadBudget
from synthesia_watchd.domain.retry import RetryPolicy
from synthesia_watchd.engine.pipeline import Pauses, Pipeline, Uploader
from synthesia_watchd.engine.pollplan import Poller
from synthesia_watchd.engine.scheduler import ExecutorFactory, Scheduler, threaded
from synthesia_watchd.stores.claims import Claims
from synthesia_watchd.stores.ledger import LedgerStore
from synthesia_watchd.stores.ledgerguard import ID_KEY, open_checked
from synthesia_watchd.stores.sharedledger import SharedLedgerLock, open_shared
from synthesia_watchd.synthesia.api import SynthesiaClient
from synthesia_watchd.synthesia.upload import upload_file
from synthesia_watchd.telemetry.logsetup import add_secret, get_logger
from synthesia_watchd.telemetry.metrics import Heartbeat, Metrics
from synthesia_watchd.telemetry.sdnotify import Notifier
from synthesia_watchd.watching.runner import WatchRunner
from synthesia_watchd.watching.watcher import WatchSet

log = get_logger(component="daemon")

Clock = Callable[[], float]


def build_client(
    config: Config,
    limiter: RateLimiter,
    stop: threading.Event,
    metrics: Metrics | None,
    reads: ReadBudget | None = None,
) -> SynthesiaClient | None:
    """The API client for a config, or None when no key is configured.

    ``reads``: every request is counted there too (the status endpoint's day budget).
    """
    if config.api_key is None or not config.api_key.reveal():
        return None
    add_secret(config.api_key.reveal())
    on_response: Callable[[str, int | None], None] | None = None
    if metrics is not None or reads is not None:

        def on_response(operation: str, status: int | None) -> None:
            if metrics is not None:
                metrics.observe_api(operation, status)
            if reads is not None:
                reads.record(operation)

    return SynthesiaClient(
        config.api_key.reveal(),
        api_url=config.api_url,
        limiter=limiter,
        retry=RetryPolicy(),
        timeout=(config.connect_timeout, config.read_timeout),
        allowed_download_hosts=config.allowed_download_hosts,
        stop=stop,
        on_response=on_response,
        send_content_md5=config.send_content_md5,
    )


def read_budget(config: Config, ledger: LedgerStore, now: Clock) -> ReadBudget:
    """The status endpoint's read budget from ``api.rate_limits.reads``, kept in the ledger."""
    spec = config.rate_limits.get("reads")
    return ReadBudget(
        per_minute=spec.per_minute if spec is not None else None,
        per_day=spec.per_day if spec is not None else None,
        store=ledger,
        clock=now,
    )


def upload_with_redaction(path: Path, credentials: UploadCredentials, **kw: Any) -> None:
    """upload_file, after registering the temporary secrets with the log redactor."""
    add_secret(credentials.secret_access_key)
    add_secret(credentials.session_token)
    upload_file(path, credentials, **kw)


def node_uploader(config: Config) -> Uploader:
    """The uploader at this node's share of ``upload.max_bandwidth``: boto3's transfer
    manager throttles one upload, so the node's cap is split evenly among its
    ``workers.max_uploads`` slots and all uploads together stay under it."""
    cap = config.upload_max_bandwidth
    share = None if cap is None else max(1, cap // config.max_uploads)
    return functools.partial(upload_with_redaction, max_bandwidth=share)


class InstanceLock:
    """One daemon per ledger: an exclusive ``flock`` beside the ledger file.

    Compare-and-set on job state alone would let two daemons on one ledger both submit the
    same uploaded job, and pay twice. The kernel drops the lock when the process dies, even
    by SIGKILL, so a crash never leaves a stale lock behind.
    """

    def __init__(self, ledger_path: Path) -> None:
        self.path = ledger_path.with_name(ledger_path.name + ".lock")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            other = os.pread(self._fd, 32, 0).decode(errors="replace").strip()
            os.close(self._fd)
            raise LedgerError(
                f"another synthesia-watchd (pid {other or '?'}) is already running on "
                f"{ledger_path}; stop it first, or give this one its own `ledger`"
            ) from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, str(os.getpid()).encode(), 0)

    def release(self) -> None:
        with contextlib.suppress(OSError):
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)


@dataclass
class Parts:
    """Everything a daemon runs with, built by ``build`` (or by a test, part by part).

    A reload replaces ``config`` and ``client`` here, so every part of the daemon that reads
    them from ``Parts`` sees the running ones.
    """

    config: Config
    now: Clock
    stop: threading.Event
    lock: InstanceLock | SharedLedgerLock
    ledger: LedgerStore
    metrics: Metrics
    notifier: Notifier
    limiter: RateLimiter
    #: The day's read budget, shared by the client (counts) and the poll plan (spends).
    reads: ReadBudget
    pauses: Pauses
    client: SynthesiaClient | None
    pipeline: Pipeline
    claims: Claims
    watchset: WatchSet
    watchers: WatchRunner
    scheduler: Scheduler
    heartbeat: Heartbeat
    #: How a reload makes the client for a new config (the limiter is kept on purpose).
    make_client: Callable[[Config], SynthesiaClient | None]
    #: Whether the watchers run (``dub`` hands its files in directly).
    watching: bool = True


def build(
    config: Config,
    *,
    watch: bool = True,
    client: SynthesiaClient | None = None,
    now: Clock = time.time,
    notifier: Notifier | None = None,
    new_ledger: bool = False,
    executor: ExecutorFactory = threaded,
) -> Parts:
    """Every part of one run over ``config``; holds the ledger's instance lock."""
    stop = threading.Event()
    metrics = Metrics(node=config.node_name)
    lock, ledger = locked_ledger(config, new_ledger=new_ledger, now=now)
    limiter = shared_limiter(config, ledger)
    reads = read_budget(config, ledger, now)

    def make_client(cfg: Config) -> SynthesiaClient | None:
        return build_client(cfg, limiter, stop, metrics, reads)

    pauses = Pauses()
    client = client or make_client(config)
    pipeline = engine(
        config, ledger, client, stop=stop, pauses=pauses, metrics=metrics, now=now,
        poller=Poller(ledger, reads, now=now),
    )  # fmt: skip
    claims = Claims(ledger.get_meta(ID_KEY) or "", log=log)
    watchset = WatchSet(config.watches if watch else (), log=log, claim=claims.problem)
    watchers = WatchRunner(watchset, enabled=watch, log=log, chores=claims.refresh)
    pipeline.release_source = watchset.release
    pipeline.root_available = watchset.check_root
    scheduler = Scheduler(
        pipeline, ledger, max_uploads=config.max_uploads, max_downloads=config.max_downloads,
        max_active_jobs=config.max_active_jobs, wake=watchset.wakeup, executor=executor,
        node=config.node_name, lease_seconds=config.lease_duration,
    )  # fmt: skip
    return Parts(
        config=config,
        now=now,
        stop=stop,
        lock=lock,
        ledger=ledger,
        metrics=metrics,
        notifier=notifier or Notifier(),
        limiter=limiter,
        reads=reads,
        pauses=pauses,
        client=client,
        pipeline=pipeline,
        claims=claims,
        watchset=watchset,
        watchers=watchers,
        scheduler=scheduler,
        heartbeat=Heartbeat(config.state_dir / "heartbeat"),
        make_client=make_client,
        watching=watch,
    )


def shared_limiter(config: Config, ledger: LedgerStore) -> RateLimiter:
    """Rate windows kept in the ledger (wall clock): every node together, across restarts."""
    return RateLimiter.from_rate_limits(
        config.rate_limits, clock=time.time, shared=ledger, node=config.node_name
    )


def locked_ledger(
    config: Config, *, new_ledger: bool = False, now: Clock = time.time
) -> tuple[InstanceLock | SharedLedgerLock, LedgerStore]:
    """The run's ledger, checked at start, with this process's instance lock on it (a
    shared ledger: this node name's lock, see sharedledger)."""
    config.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if config.ledger_url is not None:
        shared, node_lock = open_shared(config, now)
        return node_lock, shared
    lock = InstanceLock(config.ledger)
    try:
        return lock, open_checked(config.ledger, new_ledger=new_ledger, now=now)
    except BaseException:
        lock.release()
        raise


def engine(
    config: Config,
    ledger: LedgerStore,
    client: SynthesiaClient | None,
    *,
    stop: threading.Event | None = None,
    pauses: Pauses | None = None,
    metrics: Metrics | None = None,
    now: Clock = time.time,
    poller: Poller | None = None,
) -> Pipeline:
    """The pipeline over a ledger: a daemon's, or a command's working on jobs (backfill)."""
    return Pipeline(
        ledger=ledger,
        config=config,
        client=client,
        uploader=node_uploader(config),
        stop=stop or threading.Event(),
        pauses=pauses,
        metrics=metrics,
        now=now,
        poller=poller,
    )


def command_client(config: Config) -> SynthesiaClient | None:
    """A client for a one-off command (its own limiter; no metrics)."""
    return build_client(
        config, RateLimiter.from_rate_limits(config.rate_limits), threading.Event(), None
    )
