"""Progress lines (upload, dubbing, download) and what `status` shows of each job."""

from __future__ import annotations

import io
import itertools
import json
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import structlog
from e2efixtures import DaemonProcess
from enginefixtures import Engine

from synthesia_watchd.domain.states import JobState
from synthesia_watchd.engine.progress import PROGRESS_SECONDS, Board, Transfer, dubbing_figures
from synthesia_watchd.service import cli
from synthesia_watchd.service.daemon import Daemon
from synthesia_watchd.simulator import Simulator
from synthesia_watchd.stores.ledger import Ledger
from synthesia_watchd.telemetry.logsetup import ShortConsoleRenderer, configure_logging, get_logger

Capsys = pytest.CaptureFixture[str]


class SteppedClock:
    """A monotonic clock the test moves by hand (the seam Transfer takes)."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _job(tmp_path: Path, size: int = 3 * 1024 * 1024) -> tuple[Ledger, int]:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    job = ledger.add_job(
        watch="drop",
        source_path=str(tmp_path / "in" / "talk.mp4"),
        size=size,
        mtime_ns=1,
        sha256=None,
        source_language="en",
        targets=["fr-FR"],
        output_dir=str(tmp_path / "out"),
    )
    return ledger, job.id


def test_upload_lines_carry_job_and_file_and_are_throttled(tmp_path: Path) -> None:
    """Nine chunks within 2 ms: no line; after PROGRESS_SECONDS one line with job, file, %."""
    ledger, job_id = _job(tmp_path)
    clock = SteppedClock()
    board = Board(clock)
    progress = Transfer(ledger.get(job_id), "uploading", board, total=9 * 1000, clock=clock)
    with structlog.testing.capture_logs() as logs:
        for _ in range(9):
            clock.t += 0.0002
            progress(500)
        assert logs == []
        clock.t += PROGRESS_SECONDS
        progress(500)
    (line,) = logs
    assert line["event"] == "uploading"
    assert line["job_id"] == str(job_id) and line["file"] == "talk.mp4"
    assert line["percent"] == 55 and line["rate"].endswith("MB/s")
    assert board.snapshot()[str(job_id)]["percent"] == 55
    ledger.close()


def test_dubbing_estimate_follows_the_video_length(tmp_path: Path) -> None:
    """Unknown length, no history: the 20 s floor; a 60 s video: about a minute."""
    ledger, job_id = _job(tmp_path)
    job = ledger.get(job_id)
    figures = dubbing_figures(ledger, job, job.state_changed_at + 5)
    assert figures == {"elapsed": "5s", "estimate": "20s", "left": "about 15s left"}
    job = ledger.update(job_id, expected=JobState.QUEUED, duration_s=60.0)
    figures = dubbing_figures(ledger, job, job.state_changed_at + 90)
    assert figures["estimate"] == "60s" and figures["left"] == "due any time now"
    ledger.close()


class HistoryCountingLedger(Ledger):
    """The real SQLite ledger, counting how often the dub history is queried."""

    reads = 0

    def dub_history(self, limit: int = 200) -> list[tuple[float | None, float]]:
        self.reads += 1
        return super().dub_history(limit)


def test_dubbing_polls_do_not_query_the_dub_history_each_time(tmp_path: Path) -> None:
    """A thousand polls of a running dub (line and next poll) read the history once a minute
    or so, and a dub that finishes is learnt at once."""
    from enginefixtures import ManualClock

    from synthesia_watchd.config.load import build_config
    from synthesia_watchd.engine.pipeline import Pipeline
    from synthesia_watchd.engine.pollplan import HISTORY_TTL

    clock = ManualClock()
    ledger = HistoryCountingLedger(tmp_path / "ledger.sqlite3", now=clock)
    watch = {"name": "drop", "input": str(tmp_path), "targets": ["fr-FR"], "source_language": "en"}
    config = build_config({"watches": [watch]}, filename="<test>", environ={})
    pipeline = Pipeline(
        ledger=ledger, config=config, client=None, uploader=None, stop=threading.Event(), now=clock
    )

    def dubbing(name: str) -> int:
        job = ledger.add_job(
            watch="drop", source_path=str(tmp_path / name), size=1, mtime_ns=1, sha256=name,
            source_language="en", targets=["fr-FR"], output_dir=str(tmp_path), duration_s=60.0,
        )  # fmt: skip
        for old, new in itertools.pairwise(JOURNEY):
            ledger.transition(job.id, old, new, why="test")
        return job.id

    running, other = dubbing("running.mp4"), dubbing("other.mp4")
    polls = 1000
    for _ in range(polls):
        clock.advance(1.0)
        job = ledger.get(running)
        pipeline.progress.dubbing(job)
        pipeline.polls.next_poll_at(job, clock(), poll_interval=10, poll_max=60)
    assert ledger.reads <= polls / HISTORY_TTL + 2, ledger.reads
    assert pipeline.progress.board.snapshot()[str(running)]["estimate"] == "60s"
    # The other dub finishes (its 60 s of video took 1000 s): the next line learns from it.
    ledger.transition(other, JobState.DUBBING, JobState.DOWNLOADING, why="test")
    pipeline.polls.finished(other, clock(), poll_max=60)
    pipeline.progress.dubbing(ledger.get(running))
    assert pipeline.progress.board.snapshot()[str(running)]["estimate"] != "60s"
    ledger.close()


def test_status_reads_the_dub_history_once_for_every_dubbing_job(tmp_path: Path) -> None:
    """`status` with several dubs running shows each one's estimate from one history read."""
    from synthesia_watchd.service.ledgerviews import status_data

    ledger = HistoryCountingLedger(tmp_path / "ledger.sqlite3")
    for n in range(5):
        job = ledger.add_job(
            watch="drop", source_path=str(tmp_path / f"{n}.mp4"), size=1, mtime_ns=1,
            sha256=str(n), source_language="en", targets=["fr-FR"], output_dir=str(tmp_path),
        )  # fmt: skip
        for old, new in itertools.pairwise(JOURNEY):
            ledger.transition(job.id, old, new, why="test")
    active = status_data(ledger)["active"]
    assert len(active) == 5 and all(a["progress"]["estimate"] for a in active)
    assert ledger.reads == 1
    ledger.close()


#: The states a job passes through to be dubbing.
JOURNEY = (JobState.QUEUED, JobState.ASSET_CREATED, JobState.UPLOADED, JobState.DUBBING)


def test_console_lines_start_with_time_level_event_job_file() -> None:
    """The terminal renderer: `HH:MM:SS INFO  event #job file key=value`, no colour on a pipe."""
    out = io.StringIO()
    configure_logging(stream=out, fmt="console")
    get_logger(component="pipeline").info(
        "uploading", job_id="7", file="talk.mp4", step="asset_created", percent=40
    )
    line = out.getvalue().strip()
    assert re.match(r"^\d\d:\d\d:\d\d INFO  uploading #7 talk\.mp4 percent=40$", line), line


def test_console_renderer_colours_only_on_request() -> None:
    """Colours are ANSI codes around level and event when asked for, none otherwise."""
    event = {"timestamp": "2026-01-01T00:00:00Z", "level": "warning", "event": "x", "n": 1}
    assert "\x1b[" in ShortConsoleRenderer(True)(None, "warning", dict(event))
    assert "\x1b[" not in ShortConsoleRenderer(False)(None, "warning", dict(event))


@pytest.mark.slow
def test_daemon_logs_dubbing_progress_per_job(
    daemon_factory: Callable[..., DaemonProcess], e2e_sim: Callable[..., Simulator]
) -> None:
    """A real daemon: dubbing lines with job, file, elapsed and estimate while Synthesia works;
    every progress line names its job and file."""
    d = daemon_factory(e2e_sim(dub_seconds=3)).start()
    d.wait_started()
    d.drop("talk.mp4")
    d.wait_state(lambda jobs: bool(jobs) and jobs[0].state is JobState.DONE)
    lines = d.log()
    dubbing = [e for e in lines if e.get("event") == "dubbing"]
    assert dubbing, [e.get("event") for e in lines]
    assert {"elapsed", "estimate", "left"} <= dubbing[0].keys()
    for e in lines:
        if e.get("event") in ("uploading", "dubbing", "downloading"):
            assert e.get("job_id") and e.get("file") == "talk.mp4", e


def test_status_shows_progress_failures_and_no_stale_error(
    engine_factory: Callable[..., Engine], capsys: Capsys
) -> None:
    """status: a dubbing job with time so far and estimate; failed jobs listed with reason;
    an error from an attempt that later succeeded is not shown."""
    keyed = engine_factory(dub_seconds=600)
    (keyed.input / "bad.mp4").write_bytes(b"not a video\n" * 100)
    keyed.run()
    keyed.put("long.mp4")
    seen: list[str] = []

    def tick(d: Daemon) -> None:
        jobs = d.ledger.list_jobs(states=(JobState.DUBBING,))
        if jobs and not seen:
            # An error from the step before, with attempts left over: the job got past it.
            d.ledger.update(jobs[0].id, expected=JobState.DUBBING, last_error="old 403", attempts=2)
            seen.append(str(jobs[0].id))
            d.request_stop()

    keyed.run(on_tick=tick)
    code, out, _ = run_cli(capsys, "status", "--ledger", str(keyed.ledger_path))
    assert code == 0
    (line,) = [x for x in out.splitlines() if x.strip().startswith(f"#{seen[0]} dubbing")]
    assert "usually ~" in line and "long.mp4" in line
    assert "daemon: not running (stopped cleanly" in out
    assert "old 403" not in out
    assert "failed or partial" in out
    assert re.search(r"#\d+ failed .* bad\.mp4: .*not a video", out), out


def run_cli(capsys: Capsys, *argv: str) -> tuple[int, str, str]:
    """main(argv) -> (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_status_shows_the_error_of_a_job_still_retrying(tmp_path: Path, capsys: Capsys) -> None:
    """A job retrying in its current step shows the error it retries after."""
    ledger, job_id = _job(tmp_path)
    ledger.update(
        job_id, expected=JobState.QUEUED, why="retry: 503", last_error="503 Slow", attempts=1
    )
    code, out, _ = run_cli(capsys, "status", "--ledger", str(ledger.path))
    assert code == 0 and "(attempt 1: 503 Slow)" in out
    ledger.close()


def test_status_shows_a_running_upload_from_the_daemon_record(
    tmp_path: Path, capsys: Capsys
) -> None:
    """While the daemon runs, status shows an uploading job's percent and rate from the
    progress the daemon put into its status record; a stopped daemon's figures are not shown."""
    ledger, job_id = _job(tmp_path)
    ledger.transition(job_id, JobState.QUEUED, JobState.ASSET_CREATED, why="asset created")
    board = Board()
    Transfer(ledger.get(job_id), "uploading", board, total=1000)(550)
    record = {"pid": 1, "time": time.time(), "stopping": False, "progress": board.snapshot()}
    ledger.set_node_status("nas", time.time(), json.dumps(record))
    code, out, _ = run_cli(capsys, "status", "--ledger", str(ledger.path))
    assert code == 0
    (line,) = [x for x in out.splitlines() if x.strip().startswith(f"#{job_id} ")]
    assert "asset_created" in line and "55%" in line and "MB/s" in line
    ledger.set_node_status("nas", time.time(), json.dumps({**record, "stopping": True}))
    code, out, _ = run_cli(capsys, "status", "--ledger", str(ledger.path))
    assert "55%" not in out
    ledger.close()
