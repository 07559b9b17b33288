"""One stage of one job at a time, and the single table that turns errors into outcomes.

Every stage reads the job from the ledger, does one side effect against Synthesia or the
disk, and records the result as one compare-and-set transition *before* anything could repeat
that side effect. The scheduler decides when a stage runs; this module decides what it does.
Nothing here sleeps or holds a thread while Synthesia works: a stage that has to wait records
``next_attempt_at`` and returns.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from . import adopt, atomic, diskspace, lifecycle, media, outputs
from .api import CreatedAsset, Project, SynthesiaClient, UploadCredentials
from .config import Config, WatchConfig
from .errors import (
    AmbiguousSubmit,
    ApiError,
    AuthError,
    ContentError,
    DownloadUrlExpired,
    NoSpaceLeft,
    OutputConflict,
    PermanentError,
    ProjectFailed,
    RateLimited,
    ShutdownRequested,
    StaleTransition,
    TransientError,
    UnsafePathError,
    UnsafeUrlError,
    UploadCredentialsExpired,
    WatchdError,
)
from .jobspec import (
    FrozenWatch,
    asset_url,
    job_settings,
    job_title,
    local_midnight,
    match_assets,
    output_file,
    output_kinds,
    output_name_problem,
    output_root,
    post_action,
)
from .ledger import Job, Ledger
from .logsetup import get_logger, job_context
from .progress import Progress
from .reasons import Reason
from .retry import backoff_delay
from .states import IN_FLIGHT, JobState, OutputState

log = get_logger(component="pipeline")

#: The words for people beside Reason.VANISHED (a job comes back by its code, not these).
VANISHED = "source file vanished"
#: How long a job waits before re-checking when it is blocked (slots full, budget, auth).
WAIT_SECONDS = 5.0
#: Retries of transient failures back off up to this cap; they never give up on their own.
RETRY_BASE, RETRY_CAP = 5.0, 600.0
#: How the message of a job failed by Synthesia itself begins (for people; the rule keys on
#: Reason.PROJECT_FAILED).
PROJECT_FAILED = "Synthesia failed the dubbing project"
UNSAFE_URL_CODE = lifecycle.UNSAFE_URL_CODE


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


class Pipeline:
    """Runs stages of jobs; safe to call from several worker threads at once."""

    def __init__(
        self,
        *,
        ledger: Ledger,
        config: Config,
        client: SynthesiaClient | None,
        uploader: Uploader | None,
        stop: threading.Event,
        pauses: Pauses | None = None,
        metrics: Any = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.ledger = ledger
        self.config = config
        self.client = client
        self.uploader = uploader
        self.stop = stop
        self.pauses = pauses or Pauses()
        self.metrics = metrics
        self.now = now
        self.progress = Progress(ledger, metrics, now)
        # Temporary S3 credentials live only in memory: never in the ledger or logs.
        self._credentials: dict[int, CreatedAsset] = {}
        self._submit_lock = threading.Lock()
        #: Jobs whose submit is under way (job id -> source bytes), guarded by _submit_lock.
        self._submitting: dict[int, int] = {}
        self._watches: dict[str, WatchConfig] = {w.name: w for w in config.watches}
        #: Output roots whose filesystem is full: their downloads wait for space.
        self.space = diskspace.SpaceHolds()
        #: Told before a post-action moves or deletes a source, and when a job is cancelled
        #: because its source vanished, so the watcher forgets it quietly instead of reporting
        #: it vanished (or the folder "suddenly empty"), and sees it as new if it comes back.
        self.release_source: Callable[[Path], None] = lambda path: None
        #: Whether a watch's input root is confirmed healthy, checked at once when a source is
        #: missing (the watcher pauses an unmounted root); until it is, the job waits instead
        #: of being cancelled.
        self.root_available: Callable[[str], bool] = lambda watch: True

    # --- configuration -----------------------------------------------------------------------

    def reconfigure(self, config: Config, client: SynthesiaClient | None) -> None:
        """Take a reloaded config; jobs already created keep their frozen settings."""
        self.config = config
        self._watches = {w.name: w for w in config.watches}
        self.client = client

    def watch(self, name: str) -> WatchConfig | None:
        return self._watches.get(name)

    # --- intake ------------------------------------------------------------------------------

    def intake(self, watch: WatchConfig, path: Path, size: int, mtime_ns: int) -> Job | None:
        """Record a stable file as a job, or recognise it as already known.

        Checks the content (magic bytes) before anything is spent, hashes it, and satisfies
        identical content from an earlier done job without an API call.
        """
        src = str(path)
        known = self.ledger.find_job(watch.name, src, size, mtime_ns)
        if known is not None:
            if lifecycle.came_back(known):
                return lifecycle.source_back(self.ledger, known, self.now())
            return None
        settings = job_settings(watch)
        out_dir = outputs.output_dir(watch, path)
        add_job = functools.partial(
            self.ledger.add_job,
            watch=watch.name,
            source_path=src,
            size=size,
            mtime_ns=mtime_ns,
            source_language=watch.source_language,
            targets=list(watch.targets),
            output_dir=str(out_dir),
            kinds=output_kinds(settings),
        )
        refused = output_name_problem(path.stem, watch.targets, output_kinds(settings))
        if refused is None:
            try:
                content_type = media.content_type_for(path)
                sha256, md5, read = atomic.file_digests(path)
            except ContentError as exc:
                refused = str(exc)
            except FileNotFoundError:
                return None  # deleted between stable and intake: forgotten
        if refused is not None:
            # Born failed in one transaction: the scheduler never sees it queued.
            job = add_job(
                sha256=None,
                settings=settings,
                state=JobState.FAILED,
                why=refused,
                last_error=refused,
                reason_code=Reason.CONTENT_REFUSED.value,
            )
            with job_context(job.id, path.name, "intake"):
                log.error("job failed", reason=refused)
                self._on_failure(job, refused, None)
            return self.ledger.get(job.id)
        if read != size:
            return None  # still changing after all; the watcher reports the new version
        settings["content_type"] = content_type
        settings["content_md5"] = md5
        job = add_job(sha256=sha256, settings=settings)
        with job_context(job.id, path.name, "intake"):
            log.info("job queued", size=size, targets=list(watch.targets), sha256=sha256[:12])
        self._settle_without_api(job)
        return self.ledger.get(job.id)

    def _settle_without_api(self, job: Job) -> bool:
        """Done with no API call: identical content dubbed before, or outputs already on disk."""
        return self._try_reuse(job) or self._try_adopt(job)

    def _try_adopt(self, job: Job) -> bool:
        """Every output already on disk, newer than the source (a ledger started afresh, a
        folder dubbed by a script before): recorded as this job's, nothing is sent."""
        try:
            wanted = {
                (o.language, o.kind): output_file(job, o.language, o.kind)
                for o in self.ledger.outputs(job.id)
            }
        except UnsafePathError:
            return False
        found = adopt.existing_outputs(
            wanted,
            job.mtime_ns,
            # Another worker may be adopting this very job: its own rows do not count.
            lambda path, sha: self.ledger.output_written_by(str(path), sha) not in (None, job.id),
        )
        if found is None:
            return False
        for f in found:
            self.ledger.set_output(
                job.id, f.language, f.kind, state=OutputState.DONE, path=str(f.path),
                bytes=f.size, sha256=f.sha256,
            )  # fmt: skip
        lifecycle.settled(
            self.ledger,
            job,
            Reason.ADOPTED,
            f"{adopt.ADOPTED}: {len(found)} file(s) newer than the source; no API call",
        )
        self._after_done(self.ledger.get(job.id))
        return True

    def _try_reuse(self, job: Job) -> bool:
        """Satisfy a job from identical earlier work: same bytes, language and targets."""
        if job.sha256 is None:
            return False
        kinds = output_kinds(job.settings)
        twin = self.ledger.find_reusable(job.sha256, job.source_language, job.targets, kinds)
        if twin is None or twin.id == job.id:
            return False
        sources = {(o.language, o.kind): o for o in self.ledger.outputs(twin.id)}
        wanted = self.ledger.outputs(job.id)
        # Check every earlier output before placing any: each must still hold exactly the
        # bytes that job recorded (an output edited or replaced since is not reused).
        for out in wanted:
            prev = sources.get((out.language, out.kind))
            if prev is None or not prev.path or not prev.sha256:
                return False
            try:
                if atomic.file_sha256(Path(prev.path)) != prev.sha256:
                    return False
            except OSError:
                return False  # the earlier outputs are gone: dub again
        placed: list[tuple[str, str, Path, str, int]] = []
        for out in wanted:
            prev = sources[(out.language, out.kind)]
            assert prev.path is not None
            dest = output_file(job, out.language, out.kind)
            digest = atomic.link_or_copy(Path(prev.path), dest, root=output_root(job))
            placed.append((out.language, out.kind, dest, digest, dest.stat().st_size))
        for lang, kind, dest, digest, nbytes in placed:
            self.ledger.set_output(
                job.id,
                lang,
                kind,
                state=OutputState.DONE,
                path=str(dest),
                bytes=nbytes,
                sha256=digest,
            )
        lifecycle.settled(
            self.ledger,
            job,
            Reason.REUSED,
            f"identical content already dubbed by job {twin.id}; outputs reused, no API call",
        )
        with job_context(job.id, Path(job.source_path).name, "reuse"):
            log.info("job done from earlier outputs", twin=twin.id)
        self._after_done(self.ledger.get(job.id))
        return True

    def source_vanished(self, watch: str, path: Path) -> list[int]:
        """Cancel jobs that have not uploaded yet whose source file disappeared."""
        cancelled = []
        for job in self.ledger.jobs_for_path(
            watch, str(path), states=(JobState.QUEUED, JobState.ASSET_CREATED)
        ):
            with contextlib.suppress(StaleTransition):
                lifecycle.vanished(self.ledger, job)
                self._credentials.pop(job.id, None)
                cancelled.append(job.id)
        return cancelled

    # --- backfill of new targets -------------------------------------------------------------

    def backfill_candidates(self, watch: WatchConfig) -> list[tuple[Job, list[str]]]:
        """Done jobs of a watch that lack some of its current targets, with what is missing.

        Only the newest done job per source file counts, and only one with a project at
        Synthesia (jobs satisfied by reuse point at no project of their own).
        """
        seen: set[str] = set()
        found = []
        for job in self.ledger.list_jobs(
            states=(JobState.DONE,), watch=watch.name, limit=1_000_000
        ):
            if job.source_path in seen:
                continue
            seen.add(job.source_path)  # only the newest version of a source counts
            if not job.project_id:
                continue
            have = {t.lower() for t in job.targets}
            missing = [t for t in watch.targets if t.lower() not in have]
            if missing:
                found.append((job, missing))
        return found

    def backfill(self, job: Job, missing: Sequence[str]) -> str:
        """Add languages to a done job's existing project (PUT /v2/dubbing/{id}).

        No re-upload and no re-dub of the languages it already has: Synthesia skips locales
        the project holds (204 when nothing was missing). The job goes back to dubbing for
        the new languages only; its finished outputs stay as they are.
        """
        result = self._require_client().add_locales(
            job.project_id or "",
            list(missing),
            lipsync=job.settings.get("lipsync") or None,
            video_duration=job.settings.get("video_duration"),
            visibility=job.settings.get("visibility"),
        )
        for lang in missing:
            for kind in output_kinds(job.settings):
                self.ledger.set_output(job.id, lang, kind, state=OutputState.PENDING)
        for failed_lang, error in result.errors:
            if failed_lang:
                for kind in output_kinds(job.settings):
                    self.ledger.set_output(
                        job.id,
                        failed_lang,
                        kind,
                        state=OutputState.FAILED,
                        error_code=error or "error",
                    )
        answer = (
            "nothing to add (204)"
            if result.nothing_added
            else (f"{len(result.created)} language(s) added (202)")
        )
        self._move(
            job.id,
            JobState.DONE,
            JobState.DUBBING,
            why=f"backfill of {', '.join(missing)}: {answer}",
            code=Reason.BACKFILL,
            targets=[*job.targets, *missing],
            next_attempt_at=self.now(),
            attempts=0,
        )
        return answer

    # --- stages ------------------------------------------------------------------------------

    def step(self, job_id: int) -> None:
        """Run the stage the job is in; every error ends in ``classify``."""
        job = self.ledger.get(job_id)
        name = Path(job.source_path).name
        if self.pauses.get("auth"):
            # Another worker just found the key rejected: send nothing more until it is fixed.
            with contextlib.suppress(StaleTransition):
                lifecycle.wait(self.ledger, job, self.now() + WAIT_SECONDS)
            return
        with job_context(job.id, name, job.state.value):
            try:
                stage = self._STAGES.get(job.state)
                if stage is not None:
                    stage(self, job)
            except ShutdownRequested:
                raise
            except StaleTransition as exc:
                log.info("job moved on under us", detail=str(exc))
            except Exception as exc:  # noqa: BLE001 - the one boundary: every error gets an outcome
                self.classify(self.ledger.get(job_id), exc)

    def _require_client(self) -> SynthesiaClient:
        if self.client is None:
            raise AuthError("no API key configured: set SYNTHESIA_API_KEY or api_key_file")
        return self.client

    def _source_unchanged(self, job: Job) -> bool:
        try:
            st = Path(job.source_path).stat()
        except FileNotFoundError:
            return False
        return st.st_size == job.size and st.st_mtime_ns == job.mtime_ns

    def _budget_block(self, job: Job) -> str | None:
        """Why the daily limits hold this job back, or None when it may be submitted."""
        cfg = self.config
        if cfg.max_jobs_per_day is None and cfg.max_bytes_per_day is None:
            return None
        jobs, nbytes = self.ledger.usage_since(local_midnight(self.now()))
        jobs += len(self._submitting)  # submits under way count against today's budget
        nbytes += sum(self._submitting.values())
        if cfg.max_jobs_per_day is not None and jobs >= cfg.max_jobs_per_day:
            return f"daily job limit reached ({jobs}/{cfg.max_jobs_per_day}); resumes at midnight"
        if cfg.max_bytes_per_day is not None and nbytes + job.size > cfg.max_bytes_per_day:
            return (
                f"daily byte limit reached ({nbytes}/{cfg.max_bytes_per_day} bytes); "
                "resumes at midnight"
            )
        return None

    def _stage_queued(self, job: Job) -> None:
        if self._settle_without_api(job):
            return
        if not self._source_unchanged(job):
            if not self.root_available(job.watch):
                # An unmounted or unreachable drop folder is not "every file was deleted".
                lifecycle.hold(
                    self.ledger,
                    job,
                    self.now() + 60,
                    Reason.ROOT_UNAVAILABLE,
                    "waiting for the watch folder to come back",
                )
                return
            if Path(job.source_path).exists():
                why = "source changed before upload; the new version is a new job"
                self._move(
                    job.id,
                    JobState.QUEUED,
                    JobState.CANCELLED,
                    why=why,
                    code=Reason.SOURCE_CHANGED,
                    last_error=why,
                )
                return
            lifecycle.vanished(self.ledger, job)
            # The watcher must not count it as reported: if it comes back, it is new work.
            self.release_source(Path(job.source_path))
            return
        twin = self._active_twin(job)
        if twin is not None:
            lifecycle.wait(self.ledger, job, self.now() + WAIT_SECONDS)
            return
        client = self._require_client()
        title = job_title(job)
        asset = client.create_asset(
            content_type=job.settings.get("content_type")
            or media.content_type_for(Path(job.source_path)),
            content_length=job.size,
            title=title,
            detect_language=job.source_language == "auto",
            content_md5=job.settings.get("content_md5"),
        )
        self._credentials[job.id] = asset
        job = self._move(
            job.id,
            JobState.QUEUED,
            JobState.ASSET_CREATED,
            why=f"asset {asset.id} created",
            asset_id=asset.id,
            next_attempt_at=self.now(),
        )
        with job_context(job.id, Path(job.source_path).name, job.state.value):
            self._stage_asset_created(job)

    def _active_twin(self, job: Job) -> Job | None:
        """An older unfinished job for the same content: wait for it instead of paying twice."""
        if job.sha256 is None:
            return None
        for other in self.ledger.jobs_with_hash(job.sha256):
            if (
                other.id < job.id
                and other.state
                not in (
                    JobState.DONE,
                    JobState.FAILED,
                    JobState.CANCELLED,
                    JobState.PARTIAL,
                    JobState.NEEDS_ATTENTION,
                )
                and other.source_language == job.source_language
                and sorted(other.targets) == sorted(job.targets)
            ):
                return other
        return None

    def _stage_asset_created(self, job: Job) -> None:
        asset = self._credentials.get(job.id)
        if asset is None or asset.id != job.asset_id:
            self._move(
                job.id,
                JobState.ASSET_CREATED,
                JobState.QUEUED,
                why="upload credentials lost in a restart; creating a fresh asset",
                code=Reason.CREDENTIALS_LOST,
                next_attempt_at=self.now(),
            )
            return
        if self.uploader is None:
            raise AuthError("no uploader configured")
        progress = self.progress.upload(job)
        try:
            self.uploader(
                Path(job.source_path),
                asset.credentials,
                progress=progress,
                stop=self.stop,
                content_type=job.settings.get("content_type"),
            )
        except FileNotFoundError:
            self._credentials.pop(job.id, None)
            if not self.root_available(job.watch):
                # A NAS hiccup or an unmounted share: start over once the folder is back.
                self._move(
                    job.id,
                    JobState.ASSET_CREATED,
                    JobState.QUEUED,
                    why="watch folder unreachable during upload; waiting for it",
                    code=Reason.ROOT_UNAVAILABLE,
                    next_attempt_at=self.now() + 60,
                )
                return
            lifecycle.vanished(self.ledger, job, during="during upload")
            self.release_source(Path(job.source_path))
            return
        self._credentials.pop(job.id, None)
        self._move(
            job.id,
            JobState.ASSET_CREATED,
            JobState.UPLOADED,
            why=f"uploaded {job.size} bytes ({progress.rate_text()})",
            next_attempt_at=self.now(),
        )

    def submit_allowed(self) -> bool:
        """Whether a project slot at Synthesia is free (workers.max_active_jobs).

        Submits under way count as taken slots. Call with ``_submit_lock`` held.
        """
        in_flight = self.ledger.count_in(IN_FLIGHT) + len(self._submitting)
        return in_flight < self.config.max_active_jobs

    def _stage_uploaded(self, job: Job) -> None:
        if job.submit_started_at is not None:
            # We died (or lost the answer) after sending POST /v2/dubbing: never repeat blindly.
            raise AmbiguousSubmit(
                "POST /v2/dubbing was sent but its answer was never recorded",
                operation="POST /v2/dubbing",
            )
        if job.source_language == "auto" and not job.detected_language:
            if not self._await_detection(job):
                return
            job = self.ledger.get(job.id)
        client = self._require_client()
        # The checks and the slot reservation share one lock, so two workers never both take
        # the last free slot (or the day's last job); the request itself runs outside it.
        with self._submit_lock:
            block = self._budget_block(job)
            if block is not None:
                if self.pauses.set("budget", block):
                    log.warning("daily limit reached: jobs wait", reason=block)
                lifecycle.hold(self.ledger, job, self.now() + 60, Reason.DAILY_LIMIT, block)
                return
            self.pauses.clear("budget")
            if not self.submit_allowed():
                lifecycle.wait(self.ledger, job, self.now() + WAIT_SECONDS)
                return
            self._submitting[job.id] = job.size

        def sending() -> None:
            # Durable marker right before the bytes go out: if we die before the project id
            # is recorded, the submit is known to be ambiguous.
            self.ledger.update(job.id, expected=JobState.UPLOADED, submit_started_at=self.now())

        def refused() -> None:
            # The server answered that it did not act (429, 5xx, 4xx) or was never reached.
            self.ledger.update(job.id, expected=JobState.UPLOADED, submit_started_at=None)

        try:
            project_id = client.start_dubbing(
                asset_id=job.asset_id or "",
                title=job_title(job),
                source_language=job.detected_language or job.source_language,
                target_languages=list(job.targets),
                lipsync=job.settings.get("lipsync") or None,
                video_duration=job.settings.get("video_duration"),
                visibility=job.settings.get("visibility"),
                on_send=sending,
                on_refused=refused,
            )
            try:
                self._move(
                    job.id,
                    JobState.UPLOADED,
                    JobState.DUBBING,
                    why=f"dubbing project {project_id} started",
                    project_id=project_id,
                    submit_started_at=None,
                    attempts=0,
                    next_attempt_at=self.now() + float(job.settings.get("poll_interval", 10)),
                )
            except StaleTransition:
                self._keep_orphan_project(job.id, project_id)
                raise
        finally:
            with self._submit_lock:
                self._submitting.pop(job.id, None)
        log.info("dubbing started", project_id=project_id, targets=list(job.targets))

    def _keep_orphan_project(self, job_id: int, project_id: str) -> None:
        """A project was started but the job moved meanwhile (an operator's cancel): never
        lose the id of something paid for; `retry` then polls it instead of paying again."""
        current = self.ledger.get(job_id)
        with contextlib.suppress(StaleTransition):
            self.ledger.update(
                job_id,
                expected=current.state,
                project_id=project_id,
                submit_started_at=None,
                reason_code=Reason.ORPHAN_PROJECT.value,
                why=f"dubbing project {project_id} was started at Synthesia while the job "
                f"became {current.state.value}; `retry {job_id}` downloads it without paying again",
            )
        log.error(
            "project started for a job that moved on",
            project_id=project_id,
            state=current.state.value,
        )

    def _await_detection(self, job: Job) -> bool:
        """For ``source_language: auto``: wait for the asset's detected language."""
        info = self._require_client().get_asset(job.asset_id or "")
        if info.status == "error":
            raise PermanentError(
                f"Synthesia could not process the asset: {info.error_code or 'unknown'}",
                error=info.error_code or "asset_error",
                context="GET /v2/assets/{id}",
            )
        if info.status != "ready" or info.detected_language is None:
            lifecycle.wait(self.ledger, job, self.now() + WAIT_SECONDS)
            return False
        if info.detected_language == "und":
            raise PermanentError(
                "Synthesia could not detect the spoken language (und); set source_language",
                error="language_detect",
                context=info.detected_language,
            )
        self.ledger.update(
            job.id,
            expected=JobState.UPLOADED,
            why=f"detected language {info.detected_language}",
            detected_language=info.detected_language,
        )
        return True

    def _poll_delay(self, job: Job) -> float:
        """Poll cadence: poll_interval at first, then a quarter of the time waited, capped.

        Never faster than the read budget allows for every project being polled: all polls
        go to one endpoint, so 40 projects at 60 reads a minute get one poll each per 40 s,
        spread out, instead of queueing at the limiter and holding poll threads.
        """
        base = float(job.settings.get("poll_interval", 10))
        waited = max(0.0, self.now() - job.state_changed_at)
        delay = max(base, waited / 4)
        reads = self.config.rate_limits.get("reads")
        per_minute = reads.per_minute if reads is not None else None
        if per_minute:
            delay = max(delay, self.ledger.count_in((JobState.DUBBING,)) * 60.0 / per_minute)
        return min(self.config.poll_interval_max, delay)

    def _stage_dubbing(self, job: Job) -> None:
        pending = [
            o.language for o in self.ledger.outputs(job.id) if o.state is OutputState.PENDING
        ]
        targets = sorted(set(pending)) or list(job.targets)
        project = self._require_client().get_project(job.project_id or "", targets)
        if project.status == "error":
            raise ProjectFailed(
                f"{PROJECT_FAILED}: {project.error_code or 'unknown'}",
                error=project.error_code or "error",
                context=f"project {project.id}",
            )
        found = match_assets(project, targets)
        settled = all(t in found and found[t].status in ("complete", "error") for t in targets)
        if project.status != "complete" and not settled:
            self.progress.dubbing(job)
            lifecycle.wait(self.ledger, job, self.now() + self._poll_delay(job))
            return
        for t in targets:
            asset = found.get(t)
            if asset is None or asset.status == "error":
                code = asset.error_code if asset else "missing_from_project"
                for o in self.ledger.outputs(job.id):
                    if o.language == t and o.state is OutputState.PENDING:
                        self.ledger.set_output(
                            job.id,
                            t,
                            o.kind,
                            state=OutputState.FAILED,
                            error_code=code,
                            dubbed_asset_id=asset.id if asset else None,
                        )
        self._move(
            job.id,
            JobState.DUBBING,
            JobState.DOWNLOADING,
            why="dubbing complete",
            next_attempt_at=self.now(),
            attempts=0,
        )
        # Downloads run on their own pool (workers.max_downloads), not on this poll thread.

    def _stage_downloading(self, job: Job) -> None:
        if self._held_for_space(job):
            return
        client = self._require_client()
        ours = functools.partial(self._ours_to_replace, job)
        todo = [o for o in self.ledger.outputs(job.id) if o.state is OutputState.PENDING]
        project: Project | None = None
        if todo:
            # Fresh signed URLs: the ones seen while polling may have expired meanwhile.
            project = client.get_project(job.project_id or "", sorted({o.language for o in todo}))
        refreshed = False
        for out in todo:
            if self.stop.is_set():
                raise ShutdownRequested
            assert project is not None
            asset = match_assets(project, [out.language]).get(out.language)
            url = asset_url(asset, out.kind) if asset else None
            if asset is None or asset.status != "complete":
                self.ledger.set_output(
                    job.id,
                    out.language,
                    out.kind,
                    state=OutputState.FAILED,
                    error_code=(asset.error_code if asset else None) or "missing_from_project",
                )
                continue
            if url is None:
                self.ledger.set_output(
                    job.id,
                    out.language,
                    out.kind,
                    state=OutputState.FAILED,
                    error_code=f"no_{out.kind}_url",
                    dubbed_asset_id=asset.id,
                )
                continue
            dest = output_file(job, out.language, out.kind)
            fetch = functools.partial(
                client.download,
                dest=dest,
                root=output_root(job),
                progress=self.progress.download(job, out.language, out.kind),
                replace_if=ours,
            )
            try:
                try:
                    result = fetch(url)
                except DownloadUrlExpired:
                    if refreshed:
                        raise
                    # Signed URLs are time-limited: fetch fresh ones once per stage and retry.
                    refreshed = True
                    project = client.get_project(
                        job.project_id or "", sorted({o.language for o in todo})
                    )
                    asset = match_assets(project, [out.language]).get(out.language)
                    url = asset_url(asset, out.kind) if asset else None
                    if asset is None or url is None:
                        raise
                    result = fetch(url)
            except UnsafeUrlError as exc:
                # The answer is untrusted: this output fails, the others are still written.
                self._refuse_output(job, out.language, out.kind, str(exc))
                continue
            self.ledger.set_output(
                job.id,
                out.language,
                out.kind,
                state=OutputState.DONE,
                path=str(dest),
                bytes=result.bytes,
                sha256=result.sha256,
                dubbed_asset_id=asset.id,
            )
            log.info(
                "output written",
                language=out.language,
                kind=out.kind,
                bytes=result.bytes,
                path=str(dest),
            )
        self._finish(self.ledger.get(job.id))

    def _held_for_space(self, job: Job) -> bool:
        """Whether the job's output root is still full (then the job waits, spending nothing)."""
        root = output_root(job)
        reason, resumed = self.space.blocked(root)
        if resumed:
            self.pauses.clear(f"space:{root}")
            log.info("space is back: downloads resume", output_root=str(root))
        if reason is None:
            return False
        lifecycle.hold(
            self.ledger, job, self.now() + diskspace.RECHECK_SECONDS, Reason.NO_SPACE, reason
        )
        return True

    def _hold_for_space(self, job: Job, exc: OSError | NoSpaceLeft) -> None:
        """A write found no space: hold the output root and wait, without using a retry."""
        root = output_root(job)
        if isinstance(exc, NoSpaceLeft):
            folder, needed = Path(exc.folder), exc.needed
        else:
            folder = Path(exc.filename).parent if isinstance(exc.filename, str) else root
            needed = None
        reason, new = self.space.hold(root, folder, needed)
        if self.pauses.set(f"space:{root}", reason) or new:
            log.error(
                "no space left on device: downloads held until space returns",
                folder=str(folder),
                free=diskspace.describe(diskspace.free_bytes(folder)),
                needed=diskspace.describe(needed),
            )
        lifecycle.hold(
            self.ledger, job, self.now() + diskspace.RECHECK_SECONDS, Reason.NO_SPACE, reason
        )

    def _refuse_output(self, job: Job, language: str, kind: str, reason: str) -> None:
        """Fail one output whose download URL is unsafe (never contacted), with the reason."""
        self.ledger.set_output(
            job.id, language, kind, state=OutputState.FAILED, error_code=UNSAFE_URL_CODE
        )
        self.ledger.note(job.id, f"{language}/{kind} not downloaded: {reason}")
        log.error("unsafe download URL refused", language=language, kind=kind, reason=reason)

    def _ours_to_replace(self, job: Job, dest: Path) -> bool:
        """An existing output may be replaced only if we wrote it for an earlier version of
        this same source; another source's output (``talk.mp4`` vs ``talk.m4v``) never."""
        owner_id = self.ledger.output_written_by(str(dest), atomic.file_sha256(dest))
        if owner_id is None or owner_id == job.id:
            return False
        owner = self.ledger.get(owner_id)
        if (owner.watch, owner.source_path) != (job.watch, job.source_path):
            return False
        log.info("replacing the output of an earlier version", path=str(dest), job=owner_id)
        return True

    def _finish(self, job: Job) -> None:
        outs = self.ledger.outputs(job.id)
        failed = [o for o in outs if o.state is OutputState.FAILED]
        if any(o.state is OutputState.PENDING for o in outs):
            return
        done = [o for o in outs if o.state is OutputState.DONE and o.path]
        done_paths = [Path(o.path) for o in done if o.path]
        problems = {o: outputs.verify_outputs([Path(o.path)]) for o in done if o.path}
        lost = [o for o, found in problems.items() if found]
        if lost:
            # An output vanished or was emptied before the job finished: fetch it again.
            for o in lost:
                self.ledger.set_output(job.id, o.language, o.kind, state=OutputState.PENDING)
            raise TransientError(
                "outputs failed verification: " + "; ".join(p for o in lost for p in problems[o])
            )
        if not failed:
            self._move(
                job.id,
                JobState.DOWNLOADING,
                JobState.DONE,
                why=f"{len(done_paths)} output(s) written and verified",
                last_error=None,
                last_error_context=None,
            )
            log.info("job done", outputs=len(done_paths))
            self._after_done(self.ledger.get(job.id))
            return
        reasons = ", ".join(f"{o.language}/{o.kind}: {o.error_code}" for o in failed)
        if not done and all(o.error_code == UNSAFE_URL_CODE for o in failed):
            # Nothing usable came back, through no fault of the dub: `retry` re-polls the
            # project (no new charge) once allowed_download_hosts or the API is fixed.
            why = f"every download URL was refused as unsafe ({reasons})"
            self._fail(job, Reason.UNSAFE_URLS, why, None)
            return
        self._move(
            job.id,
            JobState.DOWNLOADING,
            JobState.PARTIAL,
            why=f"some languages failed at Synthesia ({reasons}); "
            "`retry` dubs them again as a new job",
            code=Reason.LANGUAGES_FAILED,
            last_error=f"languages failed: {reasons}",
        )
        log.warning("job partial", failed=reasons, written=len(done_paths))

    def _after_done(self, job: Job) -> None:
        """on_success, only once every output is verified on disk, and only on the very
        version of the source that was dubbed (a newer one saved meanwhile is left alone)."""
        action = post_action(job.settings.get("on_success"))
        if action.kind == "keep":
            return
        if not self._source_unchanged(job):
            self.ledger.note(
                job.id,
                f"on_success {action.kind} skipped: the source changed or "
                "is gone since it was dubbed",
            )
            return
        watch = self.watch(job.watch)
        paths = [Path(o.path) for o in self.ledger.outputs(job.id) if o.path]
        self.release_source(Path(job.source_path))
        try:
            moved = outputs.apply_on_success(
                action, Path(job.source_path), watch or FrozenWatch(job), paths
            )
        except (OSError, WatchdError) as exc:
            self.ledger.note(job.id, f"on_success {action.kind} skipped: {exc}")
            log.warning("on_success skipped", reason=str(exc))
            return
        self.ledger.note(
            job.id, f"on_success: source {action.kind}d" + (f" to {moved}" if moved else "")
        )

    _STAGES: dict[JobState, Callable[[Pipeline, Job], None]] = {
        JobState.QUEUED: _stage_queued,
        JobState.ASSET_CREATED: _stage_asset_created,
        JobState.UPLOADED: _stage_uploaded,
        JobState.DUBBING: _stage_dubbing,
        JobState.DOWNLOADING: _stage_downloading,
    }

    def _move(
        self,
        job_id: int,
        expected: JobState,
        new: JobState,
        *,
        why: str,
        code: Reason | None = None,
        **fields: Any,
    ) -> Job:
        """A compare-and-set transition plus its one canonical log line."""
        return lifecycle.move(self.ledger, job_id, expected, new, why=why, code=code, **fields)

    # --- the one error -> outcome table -------------------------------------------------------

    def classify(self, job: Job, exc: BaseException) -> None:
        """Turn any error from a stage into the job's next state (see ARCHITECTURE.md)."""
        now = self.now()
        msg = str(exc)
        if isinstance(exc, AuthError):
            # Only the API's own error body blames the key (a proxy's page says so itself).
            why = f"Synthesia rejected the API key ({msg})" if exc.error else msg
            if self.pauses.set("auth", why):
                log.error(
                    "API key rejected: all API work paused; fix the key and send SIGHUP",
                    status=getattr(exc, "status", None),
                )
            lifecycle.hold(self.ledger, job, now + 30, Reason.AUTH_REJECTED, msg)
        elif isinstance(exc, RateLimited):
            lifecycle.hold(self.ledger, job, now + exc.retry_after, Reason.RATE_LIMITED, msg)
        elif isinstance(exc, UploadCredentialsExpired):
            self._credentials.pop(job.id, None)
            if lifecycle.fresh_asset(self.ledger, job, msg, now) is None:
                self._failed_by_cap(job.id)
        elif isinstance(exc, AmbiguousSubmit):
            self._ambiguous(job, msg)
        elif isinstance(exc, NoSpaceLeft) or diskspace.is_no_space(exc):
            assert isinstance(exc, (NoSpaceLeft, OSError))
            self._hold_for_space(job, exc)
        elif isinstance(exc, OutputConflict):
            lifecycle.needs_attention(self.ledger, job, Reason.OUTPUT_CONFLICT, msg)
            log.error("output name taken by a different file", reason=msg)
        elif isinstance(exc, (PermanentError, ContentError, UnsafePathError)):
            code = Reason.PROJECT_FAILED if isinstance(exc, ProjectFailed) else Reason.PERMANENT
            self._fail(job, code, msg, getattr(exc, "context", None))
        elif isinstance(exc, (TransientError, ApiError, OSError)):
            delay = backoff_delay(job.attempts, base=RETRY_BASE, cap=RETRY_CAP)
            if isinstance(exc, OSError):
                code, msg = Reason.FILE_ERROR, f"{type(exc).__name__}: {exc}"
            else:
                code = Reason.TRANSIENT
            lifecycle.retry_later(self.ledger, job, now + delay, code, msg)
            log.warning("retrying later", reason=msg, in_seconds=round(delay, 1))
        else:
            log.exception("unexpected error in job", exc_info=exc)
            delay = backoff_delay(job.attempts, base=RETRY_BASE, cap=RETRY_CAP)
            what = f"{type(exc).__name__}: {msg}"
            if lifecycle.internal_error(self.ledger, job, now + delay, what):
                self._failed_by_cap(job.id)

    def _failed_by_cap(self, job_id: int) -> None:
        """A lifecycle cap failed the job: log it and run the on_failure post-action."""
        job = self.ledger.get(job_id)
        log.error("job failed", reason=job.last_error)
        self._on_failure(job, job.last_error or "", None)

    def _ambiguous(self, job: Job, msg: str) -> None:
        if self.config.on_ambiguous_submit == "retry":
            lifecycle.resubmit_automatically(self.ledger, job, self.now())
            return
        context = (
            "POST /v2/dubbing was sent but no answer came back: Synthesia may have started (and "
            "billed) a project. Check your Synthesia workspace; then `synthesia-watchd retry "
            f"{job.id} --resubmit` to submit again, or `cancel {job.id}`"
        )
        lifecycle.needs_attention(self.ledger, job, Reason.AMBIGUOUS_SUBMIT, msg, context)
        log.error("ambiguous submit: needs attention", reason=msg)

    def _fail(self, job: Job, code: Reason, reason: str, context: str | None) -> None:
        job = lifecycle.fail(self.ledger, job, code, reason, context)
        log.error("job failed", reason=reason, context=context)
        self._on_failure(job, reason, context)

    def _on_failure(self, job: Job, reason: str, context: str | None) -> None:
        """The on_failure post-action: move the source aside with a reason file (only the
        version that failed; a newer one saved meanwhile gets its own job)."""
        action = post_action(job.settings.get("on_failure"))
        if action.kind == "keep" or not self._source_unchanged(job):
            return
        watch = self.watch(job.watch)
        self.release_source(Path(job.source_path))
        try:
            moved = outputs.apply_on_failure(
                action,
                Path(job.source_path),
                watch or FrozenWatch(job),
                error=reason,
                context=context,
                now=self.now(),
            )
        except (OSError, WatchdError) as exc:
            self.ledger.note(job.id, f"on_failure move failed: {exc}")
            return
        if moved is not None:
            self.ledger.note(job.id, f"on_failure: source moved to {moved}")
