"""The facts stages share: the ledger, the client, pauses, submit slots, credentials."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from synthesia_watchd.config.load import Config, WatchConfig
from synthesia_watchd.domain.apitypes import CreatedAsset, UploadCredentials
from synthesia_watchd.domain.errors import AuthError
from synthesia_watchd.domain.states import JobState
from synthesia_watchd.engine.jobspec import local_midnight
from synthesia_watchd.engine.pollplan import Poller
from synthesia_watchd.engine.progress import Progress
from synthesia_watchd.engine.singlerun import Runners
from synthesia_watchd.files import diskspace
from synthesia_watchd.stores.ledger import Job, LedgerStore
from synthesia_watchd.synthesia.api import SynthesiaClient


class Uploader(Protocol):
    """What the pipeline needs from upload.upload_file (a seam for the dry run)."""

    def __call__(
        self,
        path: Path,
        credentials: UploadCredentials,
        *,
        progress: Callable[[int], None] | None = None,
        stop: threading.Event | None = None,
        content_type: str | None = None,
    ) -> None: ...


@dataclass
class Pauses:
    """Reasons work is on hold: all API work (auth, budget), or one output root's downloads
    (``space:<root>``, a full disk); shared by every worker and shown by ``status``."""

    reasons: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def set(self, kind: str, reason: str) -> bool:
        with self.lock:
            new = self.reasons.get(kind) != reason
            self.reasons[kind] = reason
            return new

    def clear(self, kind: str) -> bool:
        with self.lock:
            return self.reasons.pop(kind, None) is not None

    def get(self, kind: str) -> str | None:
        with self.lock:
            return self.reasons.get(kind)

    def snapshot(self) -> dict[str, str]:
        with self.lock:
            return dict(self.reasons)


#: States that hold one of workers.max_active_jobs' slots: a project dubbing at Synthesia. A job
#: that is downloading its results frees its slot for the next submit.
SLOT_STATES = (JobState.DUBBING,)


class SubmitSlots:
    """Project slots at Synthesia (workers.max_active_jobs) and the daily limits; submits under
    way count against both. ``lock`` makes check-and-reserve one step for all workers."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        #: Jobs whose submit is under way (job id -> source bytes), guarded by ``lock``.
        self.submitting: dict[int, int] = {}
        #: Of those, the ones inside the spending runner lease (daily limits set), which
        #: keeps other nodes' checks out until they are recorded; guarded by ``lock``.
        self.in_turn: set[int] = set()

    def allowed(self, ledger: LedgerStore, config: Config) -> bool:
        """Whether a slot is free. Call with ``lock`` held."""
        return ledger.count_in(SLOT_STATES) + len(self.submitting) < config.max_active_jobs

    def budget_block(self, ledger: LedgerStore, config: Config, job: Job, now: float) -> str | None:
        """Why the daily limits hold this job back, or None. Call with ``lock`` held."""
        if config.max_jobs_per_day is None and config.max_bytes_per_day is None:
            return None
        jobs, nbytes = ledger.usage_since(local_midnight(now))
        jobs += len(self.submitting)  # submits under way count against today's budget
        nbytes += sum(self.submitting.values())
        # So do other submits sent today whose answer is not recorded (it may have been paid).
        more_jobs, more_bytes = ledger.unrecorded_submits_since(
            local_midnight(now), self.submitting
        )
        jobs, nbytes = jobs + more_jobs, nbytes + more_bytes
        if config.max_jobs_per_day is not None and jobs >= config.max_jobs_per_day:
            return (
                f"daily job limit reached ({jobs}/{config.max_jobs_per_day}); resumes at midnight"
            )
        if config.max_bytes_per_day is not None and nbytes + job.size > config.max_bytes_per_day:
            return (
                f"daily byte limit reached ({nbytes}/{config.max_bytes_per_day} bytes); "
                "resumes at midnight"
            )
        return None


@dataclass
class StageContext:
    """Everything a stage may read or hold; the pipeline owns one, shared by its workers."""

    ledger: LedgerStore
    config: Config
    client: SynthesiaClient | None
    uploader: Uploader | None
    stop: threading.Event
    pauses: Pauses
    progress: Progress
    now: Callable[[], float]
    #: When each dubbing job is polled (history-based plan within the read budget).
    polls: Poller
    metrics: Any = None
    slots: SubmitSlots = field(default_factory=SubmitSlots)
    #: Output roots whose filesystem is full: their downloads wait for space.
    space: diskspace.SpaceHolds = field(default_factory=diskspace.SpaceHolds)
    #: Temporary S3 credentials live only in memory: never in the ledger or logs.
    credentials: dict[int, CreatedAsset] = field(default_factory=dict)
    #: Told before a post-action moves or deletes a source, and when a job is cancelled
    #: because its source vanished, so the watcher forgets it quietly and sees it as new if it
    #: comes back.
    release_source: Callable[[Path], None] = lambda path: None
    #: Whether a watch's input root is confirmed healthy; until it is, a job whose source is
    #: missing waits instead of being cancelled.
    root_available: Callable[[str], bool] = lambda watch: True
    watches: dict[str, WatchConfig] = field(default_factory=dict)
    #: Work one node at a time does on a shared ledger (the spending check, the backfill).
    runners: Runners = field(default_factory=Runners)

    def require_client(self) -> SynthesiaClient:
        if self.client is None:
            raise AuthError("no API key configured: set SYNTHESIA_API_KEY or api_key_file")
        return self.client

    def source_unchanged(self, job: Job) -> bool:
        """Whether the source still is the very version the job was made for."""
        try:
            st = Path(job.source_path).stat()
        except FileNotFoundError:
            return False
        return st.st_size == job.size and st.st_mtime_ns == job.mtime_ns
