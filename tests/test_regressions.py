"""Regression tests: one focused test per engine bug fixed after review.

Each test drives the daemon's `run --once` in-process against the simulator (real sockets,
real folders, a real ledger) and fails on the code as it was before the review's fixes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from enginefixtures import SOURCE_SIZE, Engine

from synthesia_watchd.domain.errors import TransientError, UploadCredentialsExpired
from synthesia_watchd.domain.media import sample_video
from synthesia_watchd.domain.states import JobState
from synthesia_watchd.engine.pipeline import VANISHED
from synthesia_watchd.files.atomic import file_sha256
from synthesia_watchd.service import cli
from synthesia_watchd.service.daemon import Daemon
from synthesia_watchd.stores.ledger import Ledger


def _ledger_cli(engine: Engine, *args: str) -> int:
    """A CLI command against the engine's ledger (no config needed)."""
    return cli.main([*args, "--ledger", str(engine.ledger_path)])


def test_on_success_leaves_a_newer_version_saved_during_the_dub(engine: Engine) -> None:
    """on_success delete spares a newer version saved mid-dub; that version gets its own job."""
    src = engine.put("talk.mp4", seed="v1")
    v2 = sample_video("v2-corrected-edit", SOURCE_SIZE + 4096)
    gate = engine.sim.pause("DOWNLOAD")
    saved: list[bool] = []

    def save_new_version(_: Daemon) -> None:
        if not saved and gate.wait_arrived(0):
            src.write_bytes(v2)  # the operator saves the corrected edit while job 1 downloads
            saved.append(True)
            engine.sim.unpause("DOWNLOAD")

    engine.run(on_tick=save_new_version, on_success="delete")
    assert saved
    first = engine.jobs()[0]
    assert first.state is JobState.DONE and first.size == SOURCE_SIZE
    if len(engine.jobs()) == 1:  # the new version was not stable before the run drained
        assert src.exists() and src.read_bytes() == v2
        engine.run(on_success="delete")
    jobs = engine.jobs()
    assert len(jobs) == 2, [(j.id, j.state.value, j.size) for j in jobs]
    assert jobs[1].size == len(v2) and jobs[1].state is JobState.DONE
    assert engine.dub_posts() == 2


def test_same_stem_does_not_replace_another_sources_outputs(engine: Engine) -> None:
    """talk.m4v beside a dubbed talk.mp4 needs attention; talk.mp4's outputs stay as recorded."""
    engine.put("talk.mp4", seed="A")
    engine.run()
    engine.put("talk.m4v", seed="B")
    engine.run()
    first = engine.job_for(engine.input / "talk.mp4")
    second = engine.job_for(engine.input / "talk.m4v")
    assert first.state is JobState.DONE
    assert second.state is JobState.NEEDS_ATTENTION
    assert "already exists" in (second.last_error or "")
    rows = engine.outputs(first)
    assert rows
    for row in rows:
        assert row.path and row.sha256
        assert file_sha256(Path(row.path)) == row.sha256, row.language


def test_reuse_skips_outputs_edited_since_they_were_recorded(engine: Engine) -> None:
    """Identical content is dubbed again, not linked, when an earlier output's bytes changed."""
    engine.put("a.mp4", seed="same")
    engine.run()
    edited = engine.output / "a.dubbed-fr-FR.mp4"
    edited.write_bytes(b"trimmed by hand\n" * 100)
    copy = engine.put("copy.mp4", seed="same")
    engine.run()
    assert engine.dub_posts() == 2
    job = engine.job_for(copy)
    assert job.state is JobState.DONE
    out = engine.output / "copy.dubbed-fr-FR.mp4"
    assert job.project_id is not None
    assert out.read_bytes() == engine.sim.expected_output(job.project_id, "fr-FR")


def test_cancel_during_submit_keeps_the_project_and_retry_polls_it(engine: Engine) -> None:
    """A cancel racing POST /v2/dubbing keeps the project id; retry polls it, no second POST."""
    engine.put("talk.mp4")
    gate = engine.sim.pause("POST /v2/dubbing")
    cancelled: list[int] = []

    def cancel_while_on_the_wire(_: Daemon) -> None:
        if not cancelled and gate.wait_arrived(0):
            job_id = engine.jobs()[0].id
            cancelled.append(_ledger_cli(engine, "cancel", str(job_id)))
            engine.sim.unpause("POST /v2/dubbing")

    engine.run(on_tick=cancel_while_on_the_wire)
    assert cancelled == [0]
    job = engine.jobs()[0]
    assert job.state is JobState.CANCELLED
    assert job.project_id is not None
    assert _ledger_cli(engine, "retry", str(job.id)) == 0
    engine.run()
    engine.assert_all_done()
    assert engine.dub_posts() == 1


def test_retry_after_a_failed_download_polls_the_existing_project(engine: Engine) -> None:
    """A job failed after its project existed is retried by polling: one POST /v2/dubbing."""
    engine.put("talk.mp4")
    engine.settings["api"] = {"allowed_download_hosts": ["cdn.example.com"]}
    engine.run()
    failed = engine.jobs()[0]
    assert failed.state is JobState.FAILED and failed.project_id is not None
    engine.settings.pop("api")  # the operator fixes the too-narrow host list
    assert _ledger_cli(engine, "retry", "--failed") == 0
    engine.run()
    engine.assert_all_done()
    assert engine.jobs()[0].project_id == failed.project_id
    assert engine.dub_posts() == 1


def test_partial_reuse_leaves_no_stray_links_and_the_redub_finishes(engine: Engine) -> None:
    """With one earlier output gone, nothing is linked and the new dub ends done."""
    service = engine.sim.service
    real_output = service.output_bytes

    def per_project(project_id: str, language: str, kind: str = "video") -> bytes:
        # A real re-dub is not byte-identical to the first one.
        if kind != "video":
            return real_output(project_id, language, kind)
        return sample_video(f"{project_id}:{language}", service.options.dub_size)

    service.output_bytes = per_project  # type: ignore[method-assign]
    engine.put("a.mp4", seed="same")
    engine.run()
    (engine.output / "a.dubbed-fr-FR.mp4").unlink()  # the operator took one earlier dub away
    b = engine.put("b.mp4", seed="same")
    engine.run()
    job = engine.job_for(b)
    assert job.state is JobState.DONE, job.last_error
    assert engine.dub_posts() == 2
    assert job.project_id is not None
    for lang in ("fr-FR", "es-ES"):
        out = engine.output / f"b.dubbed-{lang}.mp4"
        assert out.read_bytes() == per_project(job.project_id, lang)


def test_no_api_key_does_not_busy_spin_with_a_queued_job(engine: Engine) -> None:
    """Without a key, the main loop sleeps (> 0) while a job sits queued."""
    engine.environ = {}
    engine.put("a.mp4")
    sleeps: list[float] = []

    def measure(d: Daemon) -> None:
        if d.ledger.count_in((JobState.QUEUED,)):
            sleeps.append(d.loop_once())

    result = engine.run(on_tick=measure)
    assert result.exit_code == 3
    assert sleeps, "the job was never queued"
    assert min(sleeps) > 0


def _vanishing_uploader(attempted: threading.Event) -> Callable[..., None]:
    """An uploader whose source is gone for a moment (a share dropped mid-upload)."""

    def upload(path: Path, credentials: Any, **_: Any) -> None:
        attempted.set()
        raise FileNotFoundError(2, "No such file or directory", str(path))

    return upload


def test_upload_source_missing_with_root_unreachable_requeues(engine: Engine) -> None:
    """A file missing mid-upload while its root is unreachable sends the job back to queued."""
    engine.put("a.mp4")
    daemon = engine.daemon()
    attempted = threading.Event()
    daemon.pipeline.uploader = _vanishing_uploader(attempted)
    daemon.pipeline.root_available = lambda watch: False

    def stop_when_requeued(d: Daemon) -> None:
        if attempted.is_set() and d.ledger.count_in((JobState.QUEUED,)):
            d.request_stop()

    daemon.on_tick = stop_when_requeued
    daemon.run()
    job = engine.jobs()[0]
    assert job.state is JobState.QUEUED, (job.state, job.last_error)
    assert engine.dub_posts() == 0


def test_upload_source_missing_with_root_reachable_cancels_then_returns(engine: Engine) -> None:
    """A file missing mid-upload from a reachable root cancels (VANISHED); it comes back."""
    src = engine.put("a.mp4")
    daemon = engine.daemon()
    attempted = threading.Event()
    daemon.pipeline.uploader = _vanishing_uploader(attempted)
    daemon.run()
    assert attempted.is_set()
    job = engine.jobs()[0]
    assert job.state is JobState.CANCELLED
    assert job.last_error == VANISHED
    assert src.exists()
    engine.run()  # the share is back: the catch-up scan sees the same file again
    jobs = engine.jobs()
    assert [j.id for j in jobs] == [job.id]
    engine.assert_all_done()
    assert engine.dub_posts() == 1


def test_one_credential_expiry_after_transient_retries_does_not_fail(engine: Engine) -> None:
    """Four transient upload errors then one expired credential: the job still ends done."""
    engine.put("a.mp4")
    daemon = engine.daemon(speed=500.0)
    real = daemon.pipeline.uploader
    assert real is not None
    calls: list[int] = []

    def flaky(path: Path, credentials: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) <= 4:
            raise TransientError("S3 upload: network failure (ConnectionError)")
        if len(calls) == 5:
            raise UploadCredentialsExpired("S3 refused the temporary credentials (ExpiredToken)")
        return real(path, credentials, **kwargs)

    daemon.pipeline.uploader = flaky
    daemon.run()
    assert len(calls) == 6
    engine.assert_all_done()
    assert engine.dub_posts() == 1


def test_output_deleted_before_the_job_finished_is_fetched_again(engine: Engine) -> None:
    """An output removed after it was written, before the job finished: fetched again, done."""
    engine.sim.faults.add("DOWNLOAD", "slow", seconds=1.0)
    engine.put("talk.mp4")
    removed: list[str] = []

    def take_first_output_away(_: Daemon) -> None:
        if removed:
            return
        for path in engine.output.glob("talk.dubbed-*.mp4"):
            with engine.ledger() as ledger:
                assert ledger.list_jobs()[0].state is not JobState.DONE
            path.unlink()
            removed.append(path.name)
            return

    engine.run(on_tick=take_first_output_away, timeout=20)
    assert removed
    engine.assert_all_done()
    job = engine.jobs()[0]
    assert job.project_id is not None
    for row in engine.outputs(job):
        assert row.path and Path(row.path).is_file()
        assert file_sha256(Path(row.path)) == row.sha256
    assert engine.sim.count("DOWNLOAD") == 3


def test_max_downloads_one_never_overlaps_downloads(engine: Engine) -> None:
    """workers.max_downloads: 1 keeps at most one download in flight."""
    engine.settings["workers"] = {"max_downloads": 1}
    engine.sim.faults.add("DOWNLOAD", "slow", seconds=0.3)
    for i in range(4):
        engine.put(f"f{i}.mp4")
    daemon = engine.daemon()
    client = daemon.pipeline.client
    assert client is not None
    real = client.download
    lock = threading.Lock()
    running = [0]
    peak = [0]

    def counted(*args: Any, **kwargs: Any) -> Any:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        try:
            return real(*args, **kwargs)
        finally:
            with lock:
                running[0] -= 1

    client.download = counted  # type: ignore[method-assign]
    daemon.run()
    engine.assert_all_done()
    assert engine.sim.count("DOWNLOAD") == 8
    assert peak[0] == 1


def test_cancel_a_job_that_needs_attention(tmp_path: Path) -> None:
    """cancel on a needs_attention job succeeds (exit 0) and leaves it cancelled."""
    path = tmp_path / "ledger.sqlite3"
    with Ledger(path) as ledger:
        job = ledger.add_job(
            watch="w",
            source_path=str(tmp_path / "a.mp4"),
            size=1,
            mtime_ns=1,
            sha256=None,
            source_language="en",
            targets=["fr-FR"],
            output_dir=str(tmp_path),
        )
        ledger.transition(job.id, JobState.QUEUED, JobState.NEEDS_ATTENTION, why="ambiguous")
    assert cli.main(["cancel", str(job.id), "--ledger", str(path)]) == 0
    with Ledger(path) as ledger:
        assert ledger.get(job.id).state is JobState.CANCELLED


def test_run_once_ignores_a_failure_from_an_earlier_run(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """run --once exits 0 when the only failed job in the ledger is from an earlier run."""
    monkeypatch.setenv("SYNTHESIA_API_KEY", engine.sim.api_key)
    (engine.input / "notes.mp4").write_bytes(b"meeting notes, not a video\n" * 50)
    config = str(engine.write_config())
    assert cli.main(["run", "--once", "--config", config]) != 0
    assert [j.state for j in engine.jobs()] == [JobState.FAILED]
    engine.put("a.mp4")
    assert cli.main(["run", "--once", "--config", config]) == 0
    assert engine.states() == {"notes.mp4": "failed", "a.mp4": "done"}
