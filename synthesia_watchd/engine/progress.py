"""What a job is doing right now, for the log and for `status`.

Uploads and downloads report byte deltas from worker threads (s3transfer's own threads for an
upload, which carry no logging context), so every line binds the job and file itself. Lines
are throttled per job: at most one every ``PROGRESS_SECONDS`` (a 3 MiB upload is one line, not
nine). While dubbing, each poll of a still-running project logs the time so far and an
estimate from earlier dubs of similar length (estimate.py). The same figures go to a small
in-memory board that the daemon copies into its status record, so `status` shows each
active job's progress.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from synthesia_watchd.domain.estimate import expected_dub_seconds
from synthesia_watchd.domain.states import JobState
from synthesia_watchd.stores.ledger import Job, LedgerStore
from synthesia_watchd.telemetry.logsetup import get_logger

log = get_logger(component="progress")

#: At most one progress line per job and stage this often.
PROGRESS_SECONDS = 5.0
#: Board entries not refreshed for this long are dropped (the job moved on).
STALE_SECONDS = 600.0


def _name(job: Job) -> str:
    return job.source_path.rsplit("/", 1)[-1]


def rate_text(done: int, elapsed: float) -> str:
    """``12.3 MB/s`` for ``done`` bytes over ``elapsed`` seconds."""
    return f"{done / max(elapsed, 1e-6) / 1e6:.1f} MB/s"


def duration_text(seconds: float) -> str:
    """``45s``, ``15m``, ``3h05m``, ``4d``: short, for a log line or a status column."""
    s = max(0, int(seconds))
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    if s < 172800:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d"


class Board:
    """Latest progress per job, written by workers, read by the daemon's status record."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._jobs: dict[int, tuple[float, dict[str, Any]]] = {}

    def set(self, job_id: int, **fields: Any) -> None:
        with self._lock:
            self._jobs[job_id] = (self._clock(), fields)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """job id (as text, for JSON) -> its latest fields; stale entries are dropped."""
        now = self._clock()
        with self._lock:
            for job_id in [j for j, (t, _) in self._jobs.items() if now - t > STALE_SECONDS]:
                del self._jobs[job_id]
            return {str(j): dict(f) for j, (_, f) in self._jobs.items()}

    def uploads(self) -> dict[int, float]:
        """Uploads under way (job id -> share sent), for the console's jobs page."""
        return {
            int(job_id): fields["percent"] / 100
            for job_id, fields in self.snapshot().items()
            if fields.get("step") == "uploading" and "percent" in fields
        }


class Transfer:
    """Byte progress of one upload or download, as a callable taking byte deltas."""

    def __init__(
        self,
        job: Job,
        step: str,
        board: Board,
        *,
        total: int | None,
        on_bytes: Callable[[int], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        interval: float = PROGRESS_SECONDS,
        **fields: Any,
    ) -> None:
        self.job_id, self.file, self.step = job.id, _name(job), step
        self.board = board
        self.total = total if total and total > 0 else None
        self.on_bytes = on_bytes
        self.clock = clock
        self.interval = interval
        self.fields = fields
        self.done = 0
        self.started = clock()
        self.last_line = self.started
        self.lock = threading.Lock()

    def __call__(self, n: int) -> None:
        if self.on_bytes is not None:
            self.on_bytes(n)
        with self.lock:
            self.done += n
            now = self.clock()
            figures = self.figures(now)
            self.board.set(self.job_id, step=self.step, **self.fields, **figures)
            if now - self.last_line < self.interval:
                return
            self.last_line = now
        log.info(self.step, job_id=str(self.job_id), file=self.file, **self.fields, **figures)

    def figures(self, now: float | None = None) -> dict[str, Any]:
        """percent (when the size is known), MB done and the rate so far."""
        elapsed = (self.clock() if now is None else now) - self.started
        out: dict[str, Any] = {}
        if self.total is not None:
            out["percent"] = min(100, int(self.done * 100 / self.total))
        out["mb"] = round(self.done / 1e6, 1)
        out["rate"] = rate_text(self.done, elapsed)
        return out

    def rate_text(self) -> str:
        return rate_text(self.done, self.clock() - self.started)


History = Callable[[], Sequence[tuple[float | None, float]]]


def dubbing_figures(
    ledger: LedgerStore, job: Job, now: float, history: History | None = None
) -> dict[str, Any]:
    """Time dubbing so far and the expected total from earlier dubs of similar length
    (``history``: where the daemon keeps the ledger's dub history; None: read it now)."""
    elapsed = max(0.0, now - job.state_changed_at)
    past = ledger.dub_history() if history is None else history()
    expected = expected_dub_seconds(past, job.duration_s)
    left = expected - elapsed
    return {
        "elapsed": duration_text(elapsed),
        "estimate": duration_text(expected),
        "left": f"about {duration_text(left)} left" if left > 0 else "due any time now",
    }


class Progress:
    """The pipeline's one handle on progress: transfers, dubbing lines and the board."""

    def __init__(
        self,
        ledger: LedgerStore,
        metrics: Any = None,
        now: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
        history: History | None = None,
    ) -> None:
        self.ledger = ledger
        #: The dub history, cached by the poll plan (one query a minute, not one per poll).
        self.history = history
        self.metrics = metrics
        self.now = now
        self.clock = clock
        self.board = Board(clock)
        self._last_dub_line: dict[int, float] = {}
        self._lock = threading.Lock()

    def upload(self, job: Job) -> Transfer:
        counter = self.metrics.bytes_uploaded.inc if self.metrics is not None else None
        return Transfer(
            job, "uploading", self.board, total=job.size, on_bytes=counter, clock=self.clock
        )

    def download(self, job: Job, language: str, kind: str) -> Transfer:
        counter = self.metrics.bytes_downloaded.inc if self.metrics is not None else None
        return Transfer(
            job,
            "downloading",
            self.board,
            total=None,
            on_bytes=counter,
            clock=self.clock,
            language=language,
            kind=kind,
        )

    def dubbing(self, job: Job) -> None:
        """A poll found the project still running: board always, a log line when due."""
        figures = dubbing_figures(self.ledger, job, self.now(), self.history)
        self.board.set(job.id, step="dubbing", **figures)
        mono = self.clock()
        with self._lock:
            if mono - self._last_dub_line.get(job.id, -PROGRESS_SECONDS) < PROGRESS_SECONDS:
                return
            self._last_dub_line[job.id] = mono
            if len(self._last_dub_line) > 10_000:  # bounded: forget the oldest
                self._last_dub_line.pop(next(iter(self._last_dub_line)))
        log.info("dubbing", job_id=str(job.id), file=_name(job), **figures)


# --- what `status` shows ----------------------------------------------------------------------


def error_is_current(ledger: LedgerStore, job: Job) -> bool:
    """Whether the job's last error still holds: it is retrying (attempts) and nothing moved
    it on since (its newest event is the in-state retry, not a transition). An old 403 from
    before the job got past that step would only mislead."""
    if not job.last_error or not job.attempts:
        return False
    events = ledger.events(job.id)
    return bool(events) and events[-1].from_state == events[-1].to_state == job.state.value


def job_progress(
    ledger: LedgerStore,
    job: Job,
    live: dict[str, Any] | None,
    now: float,
    history: History | None = None,
) -> dict[str, Any] | None:
    """What an active job is doing: the daemon's latest figures for its current step, or
    for a dub (no daemon needed) the time so far and the estimate from earlier dubs
    (``history``: the dub history read once for every job shown)."""
    if job.state is JobState.DUBBING:
        return dubbing_figures(ledger, job, now, history)
    if live and live.get("step") == {
        JobState.ASSET_CREATED: "uploading",
        JobState.DOWNLOADING: "downloading",
    }.get(job.state):
        return live
    return None


def progress_text(progress: dict[str, Any] | None) -> str:
    """A job's progress as a short `status` column ("" when there is none)."""
    if not progress:
        return ""
    if "elapsed" in progress:
        return f"  {progress['elapsed']} (usually ~{progress['estimate']}), {progress['left']}"
    bits = [f"{progress['percent']}%"] if "percent" in progress else []
    if "language" in progress:
        bits.insert(0, str(progress["language"]))
    bits += [f"{progress.get('mb', 0)} MB", str(progress.get("rate", ""))]
    return "  " + " ".join(b for b in bits if b)
