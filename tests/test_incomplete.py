"""Incomplete files: held while settled-but-short, re-checked on change, failed after a timeout."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from enginefixtures import WATCH, Engine
from helpers import wait_until

from synthesia_watchd.domain.media import sample_video
from synthesia_watchd.domain.states import JobState
from synthesia_watchd.files.completeness import Structure, inspect
from synthesia_watchd.files.incomplete import Decision, IncompleteFiles
from synthesia_watchd.service import cli
from synthesia_watchd.watching.model import StableFile
from synthesia_watchd.watching.watcher import WatchSet

Capsys = pytest.CaptureFixture[str]


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Observer threads started by a test are stopped by its end."""
    before = set(threading.enumerate())
    yield
    wait_until(
        lambda: not [t for t in threading.enumerate() if t not in before and t.is_alive()],
        5,
        what="threads to end",
    )


def half(path: Path, seed: str = "half") -> bytes:
    """Write the first half of a sample video to ``path``; return the whole video."""
    data = sample_video(seed, 16 * 1024)
    path.write_bytes(data[: len(data) // 2])
    return data


def test_gate_holds_then_takes_a_file_that_became_whole(tmp_path: Path) -> None:
    """Held while short (checked once per version), taken once the rest arrived."""
    path = tmp_path / "v.mp4"
    data = half(path)
    calls: list[Path] = []

    def counting(p: Path) -> Structure:
        calls.append(p)
        return inspect(p)

    gate = IncompleteFiles(100, inspect=counting, now=lambda: 0.0)
    st = path.stat()
    first = gate.judge(path, (st.st_size, st.st_mtime_ns), 0.0)
    assert first.decision is Decision.HOLD and first.new
    assert "structure ends at byte" in (first.detail or "")
    again = gate.judge(path, (st.st_size, st.st_mtime_ns), 50.0)
    assert again.decision is Decision.HOLD and not again.new and len(calls) == 1
    path.write_bytes(data)
    st = path.stat()
    assert gate.judge(path, (st.st_size, st.st_mtime_ns), 60.0).decision is Decision.TAKE
    assert gate.held() == []


def test_gate_gives_up_after_the_timeout_without_change(tmp_path: Path) -> None:
    """Unchanged for incomplete_timeout: given up, with the reason."""
    path = tmp_path / "v.mp4"
    half(path)
    gate = IncompleteFiles(30, now=lambda: 0.0)
    st = path.stat()
    ident = (st.st_size, st.st_mtime_ns)
    assert gate.judge(path, ident, 0.0).decision is Decision.HOLD
    assert gate.next_due() == 30
    assert gate.due(29.0) == [] and gate.due(30.0) == [path]
    verdict = gate.judge(path, ident, 30.0)
    assert verdict.decision is Decision.GIVE_UP and "'mdat'" in (verdict.detail or "")


def test_gate_drops_a_fifo(tmp_path: Path) -> None:
    """A FIFO under the name is dropped at once (never opened for reading)."""
    fifo = tmp_path / "v.mp4"
    os.mkfifo(fifo)
    assert IncompleteFiles(30).judge(fifo, (0, 0), 0.0).decision is Decision.DROP


@pytest.mark.parametrize("mode", ["native", "polling"])
def test_watcher_holds_an_incomplete_file_then_reports_it_whole(engine: Engine, mode: str) -> None:
    """The watcher shows the held file in status; once whole it is reported, unmarked."""
    config = engine.config(mode=mode, stable_seconds=0.5, scan_interval=1)
    ws = WatchSet(config.watches, mounts=lambda: [])
    ws.start()
    try:
        path = engine.input / "rec.mp4"
        data = half(path)
        found: list[object] = []

        def held() -> bool:
            found.extend(ws.poll())
            return bool(ws.status()[0].incomplete)

        wait_until(held, 10, what="the half file to be held")
        (entry,) = ws.status()[0].incomplete
        assert entry.path == path and "structure ends at byte" in entry.detail
        assert found == []
        path.write_bytes(data)

        def reported() -> bool:
            found.extend(ws.poll())
            return bool(found)

        wait_until(reported, 10, what="the whole file to be reported")
        assert found == [StableFile(WATCH, path, len(data), path.stat().st_mtime_ns)]
        assert ws.status()[0].incomplete == ()
    finally:
        ws.stop()


def test_watcher_gives_up_after_incomplete_timeout(engine: Engine) -> None:
    """Unchanged past incomplete_timeout: reported once, marked incomplete with the reason."""
    config = engine.config(mode="polling", stable_seconds=0.5, scan_interval=1,
                           incomplete_timeout=1)  # fmt: skip
    ws = WatchSet(config.watches, mounts=lambda: [])
    ws.start()
    try:
        half(engine.input / "stuck.mp4")
        found: list[object] = []

        def given_up() -> bool:
            found.extend(ws.poll())
            return bool(found)

        wait_until(given_up, 15, what="the watcher to give up")
        (item,) = found
        assert isinstance(item, StableFile) and item.incomplete
        assert "still incomplete after 1s unchanged" in item.incomplete
    finally:
        ws.stop()


def test_given_up_file_is_a_failed_job_without_any_api_call(engine: Engine) -> None:
    """Intake of a given-up file: failed with the reason, nothing created at Synthesia."""
    path = engine.input / "stuck.mp4"
    half(path)
    daemon = engine.daemon()
    try:
        st = path.stat()
        job = daemon.pipeline.intake(
            daemon.config.watches[0], path, st.st_size, st.st_mtime_ns,
            incomplete="still incomplete after 3600s unchanged: box 'mdat' ...",
        )  # fmt: skip
        assert job is not None and job.state is JobState.FAILED
        assert "still incomplete" in (job.last_error or "")
    finally:
        daemon.ledger.close()
        daemon.lock.release()
    assert engine.sim.requests == []


def test_dub_refuses_a_half_file_and_dry_run_says_so(
    engine: Engine, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`dub` of a cut file: failed with where its structure ends, no API call; --dry-run too."""
    monkeypatch.setenv("SYNTHESIA_API_KEY", engine.sim.api_key)
    path = engine.input / "cut.mp4"
    half(path)
    whole = engine.put("whole.mp4")
    cfg = str(engine.write_config())
    capsys.readouterr()
    assert cli.main(["dub", str(path), str(whole), "--dry-run", "-c", cfg]) == 0
    out = capsys.readouterr().out
    assert "incomplete" in out and "structure ends at byte" in out
    assert "0.2 video min" in out  # the whole file's 10 s, from its mvhd
    assert cli.main(["dub", str(path), "--targets", "de-DE", "-c", cfg]) == 1
    out = capsys.readouterr().out
    assert "failed" in out and "structure ends at byte" in out
    assert engine.sim.count("POST /v2/assets") == 0


def test_gate_takes_a_live_webm_on_stability_alone_and_says_so(tmp_path: Path) -> None:
    """A WebM Segment of unknown size cannot be judged: taken, with a note for the log."""
    from test_completeness import mkv

    path = tmp_path / "live.webm"
    path.write_bytes(mkv(unknown=True))
    st = path.stat()
    verdict = IncompleteFiles(30).judge(path, (st.st_size, st.st_mtime_ns), 0.0)
    assert verdict.decision is Decision.TAKE
    assert "stability alone" in (verdict.detail or "")


def test_status_shows_the_video_minutes_of_active_jobs(tmp_path: Path, capsys: Capsys) -> None:
    """`status` lists an active job with the video minutes parsed at intake."""
    from synthesia_watchd.stores.ledger import Ledger

    ledger_path = tmp_path / "ledger.sqlite3"
    with Ledger(ledger_path) as ledger:
        ledger.add_job(
            watch="w", source_path=str(tmp_path / "talk.mp4"), size=1, mtime_ns=1, sha256="x",
            source_language="en", targets=["fr-FR"], output_dir=str(tmp_path), duration_s=90.0,
        )  # fmt: skip
    capsys.readouterr()
    assert cli.main(["status", "--ledger", str(ledger_path)]) == 0
    out = capsys.readouterr().out
    assert "talk.mp4 (1.5 video min)" in out
