"""One stage of one job at a time: the engine's front door for the scheduler and the daemon.

Every stage (``engine.asset``, ``transfer``, ``submit``, ``poll``, ``download``) reads the job
and its typed ``JobSettings``, does one side effect against Synthesia or the disk, and returns
an outcome; ``engine.apply`` records it as one compare-and-set transition *before* anything
could repeat that side effect, and ``engine.classify`` is the one table from errors to
outcomes. The scheduler decides when a stage runs; this module decides which one. Nothing here
sleeps or holds a thread while Synthesia works: a stage that has to wait records
``next_attempt_at`` and returns.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from synthesia_watchd.config.load import Config, WatchConfig
from synthesia_watchd.domain.errors import DuplicateJob, ShutdownRequested, StaleTransition
from synthesia_watchd.domain.pathmap import PathMap
from synthesia_watchd.domain.states import JobState
from synthesia_watchd.stores.ledger import Job, LedgerStore
from synthesia_watchd.synthesia.api import SynthesiaClient
from synthesia_watchd.telemetry.logsetup import get_logger, job_context

from . import asset, backfill, download, intake, lifecycle, poll, submit, transfer
from .apply import apply
from .asset import WAIT_SECONDS
from .classify import RETRY_BASE, RETRY_CAP, classify
from .context import SLOT_STATES, Pauses, StageContext, Uploader
from .outcome import Outcome
from .poll import PROJECT_FAILED
from .pollplan import Poller
from .postactions import after_done
from .progress import Progress
from .settings import JobSettings

log = get_logger(component="pipeline")

#: The words for people beside Reason.VANISHED (a job comes back by its code, not these).
VANISHED = "source file vanished"
UNSAFE_URL_CODE = lifecycle.UNSAFE_URL_CODE

__all__ = [
    "PROJECT_FAILED",
    "RETRY_BASE",
    "RETRY_CAP",
    "SLOT_STATES",
    "UNSAFE_URL_CODE",
    "VANISHED",
    "WAIT_SECONDS",
    "Pauses",
    "Pipeline",
    "Uploader",
]

Stage = Callable[[StageContext, Job, JobSettings], Outcome]

#: Which module runs each active state's stage.
STAGES: dict[JobState, Stage] = {
    JobState.QUEUED: asset.run,
    JobState.ASSET_CREATED: transfer.run,
    JobState.UPLOADED: submit.run,
    JobState.DUBBING: poll.run,
    JobState.DOWNLOADING: download.run,
}


class Pipeline:
    """Runs stages of jobs; safe to call from several worker threads at once."""

    def __init__(
        self,
        *,
        ledger: LedgerStore,
        config: Config,
        client: SynthesiaClient | None,
        uploader: Uploader | None,
        stop: threading.Event,
        pauses: Pauses | None = None,
        metrics: Any = None,
        now: Callable[[], float] = time.time,
        poller: Poller | None = None,
    ) -> None:
        self.ledger = ledger
        # Jobs resolve to this node's folders of their watch (nodes may mount a share
        # at different paths).
        ledger.use_paths(PathMap.of(config.watches))
        self.config = config
        self.stop = stop
        self.metrics = metrics
        self.now = now
        polls = poller or Poller(ledger, now=now)
        self.progress = Progress(ledger, metrics, now, history=polls.past)
        self.ctx = StageContext(
            ledger=ledger,
            config=config,
            client=client,
            uploader=uploader,
            stop=stop,
            pauses=pauses or Pauses(),
            progress=self.progress,
            now=now,
            polls=polls,
            metrics=metrics,
            watches={w.name: w for w in config.watches},
        )
        self.pauses = self.ctx.pauses
        self.polls = self.ctx.polls
        self.space = self.ctx.space

    # The parts the daemon (and tests) set after construction live in the stage context.
    @property
    def client(self) -> SynthesiaClient | None:
        return self.ctx.client

    @client.setter
    def client(self, value: SynthesiaClient | None) -> None:
        self.ctx.client = value

    @property
    def uploader(self) -> Uploader | None:
        return self.ctx.uploader

    @uploader.setter
    def uploader(self, value: Uploader | None) -> None:
        self.ctx.uploader = value

    @property
    def release_source(self) -> Callable[[Path], None]:
        return self.ctx.release_source

    @release_source.setter
    def release_source(self, value: Callable[[Path], None]) -> None:
        self.ctx.release_source = value

    @property
    def root_available(self) -> Callable[[str], bool]:
        return self.ctx.root_available

    @root_available.setter
    def root_available(self, value: Callable[[str], bool]) -> None:
        self.ctx.root_available = value

    # --- configuration -----------------------------------------------------------------------

    def reconfigure(self, config: Config, client: SynthesiaClient | None) -> None:
        """Take a reloaded config; jobs already created keep their frozen settings."""
        self.config = self.ctx.config = config
        self.ctx.watches = {w.name: w for w in config.watches}
        self.ledger.use_paths(PathMap.of(config.watches))
        self.ctx.client = client

    def watch(self, name: str) -> WatchConfig | None:
        return self.ctx.watches.get(name)

    # --- intake, vanished sources, backfill ---------------------------------------------------

    def intake(
        self,
        watch: WatchConfig,
        path: Path,
        size: int,
        mtime_ns: int,
        *,
        incomplete: str | None = None,
    ) -> Job | None:
        """Record a stable file as a job, or recognise it as already known (engine.intake).
        ``incomplete``: the watcher gave up waiting for this file to become whole."""
        try:
            return intake.intake(self.ctx, watch, path, size, mtime_ns, incomplete=incomplete)
        except DuplicateJob:
            return None  # another node (or worker) recorded this very file first

    def source_vanished(self, watch: str, path: Path) -> list[int]:
        """Cancel jobs that have not uploaded yet whose source file disappeared."""
        return intake.source_vanished(self.ctx, watch, path)

    def backfill_candidates(self, watch: WatchConfig) -> list[tuple[Job, list[str]]]:
        """Done jobs of a watch that lack some of its current targets (engine.backfill)."""
        return backfill.candidates(self.ctx, watch)

    def backfill(self, job: Job, missing: Sequence[str]) -> str:
        """Add languages to a done job's existing project (engine.backfill)."""
        return backfill.backfill(self.ctx, job, missing)

    # --- stages ------------------------------------------------------------------------------

    def step(self, job_id: int) -> None:
        """Run the stage the job is in, and the next one while an outcome allows it at once;
        every error ends in ``classify``."""
        job = self.ledger.get(job_id)
        if self.pauses.get("auth"):
            # Another worker just found the key rejected: send nothing more until it is fixed.
            with contextlib.suppress(StaleTransition):
                lifecycle.wait(self.ledger, job, self.now() + WAIT_SECONDS)
            return
        again = True
        while again:
            again = self._run_stage(job)
            if again:
                job = self.ledger.get(job_id)

    def _run_stage(self, job: Job) -> bool:
        """One stage of ``job`` and its outcome applied; whether the next may run at once."""
        stage = STAGES.get(job.state)
        if stage is None:
            return False
        with job_context(job.id, Path(job.source_path).name, job.state.value):
            try:
                return apply(self.ctx, job, stage(self.ctx, job, JobSettings.of(job)))
            except ShutdownRequested:
                raise
            except StaleTransition as exc:
                log.info("job moved on under us", detail=str(exc))
            except Exception as exc:  # noqa: BLE001 - the one boundary: every error gets an outcome
                self.classify(self.ledger.get(job.id), exc)
        return False

    def classify(self, job: Job, exc: BaseException) -> None:
        """Turn any error from a stage into the job's next state (engine.classify)."""
        apply(self.ctx, job, classify(self.ctx, job, exc))

    def _after_done(self, job: Job) -> None:
        after_done(self.ctx, job)
