"""Intake under faults, with the daemon as a subprocess: a stalled copy, a writer that keeps its
handle open, a FIFO swapped in under a video's name, a name that is not valid UTF-8.

Each test reproduces a way the daemon used to spend on a half file (or hang, or loop) and
checks what it does now: one dub of the whole file, a live heartbeat, one visible outcome.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from e2efixtures import SOURCE_SIZE, DaemonProcess
from helpers import wait_until

from synthesia_watchd.domain.media import sample_video
from synthesia_watchd.domain.states import JobState
from synthesia_watchd.simulator import Simulator

pytestmark = pytest.mark.slow

SimFactory = Callable[..., Simulator]
DaemonFactory = Callable[..., DaemonProcess]


def _events(daemon: DaemonProcess, *names: str) -> list[dict[str, object]]:
    return [e for e in daemon.log() if e.get("event") in names]


def _assert_one_dub_of(sim: Simulator, data: bytes) -> None:
    """Exactly one POST /v2/dubbing, and the one uploaded asset holds exactly ``data``."""
    assert sim.count("POST /v2/dubbing") == 1
    uploaded = [a for a in sim.assets.values() if a.uploaded_at is not None]
    assert len(uploaded) == 1, [(a.id, a.size) for a in sim.assets.values()]
    assert uploaded[0].size == len(data)
    # A single-part S3 upload's ETag is the MD5 of the bytes stored.
    assert uploaded[0].etag == hashlib.md5(data, usedforsecurity=False).hexdigest()


def test_a_copy_that_stalls_half_way_is_dubbed_once_whole(
    e2e_sim: SimFactory, daemon_factory: DaemonFactory
) -> None:
    """Half a video, a pause past stable_seconds with the handle open, the rest: one dub, whole."""
    sim = e2e_sim()
    daemon = daemon_factory(sim, watch={"mode": "polling", "scan_interval": 1})
    daemon.start().wait_started()
    data = sample_video("stalled copy", SOURCE_SIZE)
    dest = daemon.input / "stalled.mp4"
    with open(dest, "wb") as fh:
        fh.write(data[: len(data) // 2])
        fh.flush()
        # The copy stalls until the daemon has judged the half file (old: a job; now: held).
        wait_until(
            lambda: _events(daemon, "job queued", "file incomplete"),
            15,
            what="the daemon to judge the half file",
        )

        # `status` names the held file and where its structure ends.
        def incomplete_status() -> str | None:
            out = daemon.cli("status").stdout
            return out if "INCOMPLETE stalled.mp4" in out else None

        status = wait_until(incomplete_status, 15, what="status to show the incomplete file") or ""
        assert "structure ends at byte" in status and "'mdat'" in status
        fh.write(data[len(data) // 2 :])
    jobs = daemon.wait_all(1, [JobState.DONE])
    assert jobs[0].size == len(data)
    assert jobs[0].duration_s == pytest.approx(10.0)  # parsed from mvhd at intake
    _assert_one_dub_of(sim, data)


def test_a_file_open_for_writing_is_not_taken_in_native_mode(
    e2e_sim: SimFactory, daemon_factory: DaemonFactory
) -> None:
    """A local writer that pauses with its handle open: nothing is dubbed until it closes."""
    sim = e2e_sim()
    daemon = daemon_factory(sim, watch={"mode": "native"})
    daemon.start().wait_started()
    first = sample_video("open writer", SOURCE_SIZE)  # already a complete-looking video
    tail = (16).to_bytes(4, "big") + b"free" + b"appended"
    dest = daemon.input / "recording.mp4"
    with open(dest, "wb") as fh:
        fh.write(first)
        fh.flush()
        wait_until(
            lambda: _events(daemon, "job queued", "file still open for writing"),
            15,
            what="the daemon to judge the open file",
        )
        fh.write(tail)
    whole = first + tail
    jobs = daemon.wait_all(1, [JobState.DONE])
    assert jobs[0].size == len(whole)
    _assert_one_dub_of(sim, whole)
    assert os.path.getsize(dest) == len(whole)
    assert Path(jobs[0].source_path) == dest


# --- a FIFO swapped in under a video's name --------------------------------------------------


def _exchange(a: Path, b: Path) -> None:
    """renameat2(RENAME_EXCHANGE): the two names swap what they point at, atomically."""
    libc = ctypes.CDLL(None, use_errno=True)
    at_fdcwd, rename_exchange = -100, 2
    if libc.renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _heartbeat_age(daemon: DaemonProcess) -> float:
    doc = json.loads((daemon.state_dir / "heartbeat").read_text())
    return time.time() - float(doc["time"])


def test_a_fifo_swapped_under_a_video_name_never_hangs_the_daemon(
    e2e_sim: SimFactory, daemon_factory: DaemonFactory
) -> None:
    """A FIFO and a video keep trading one name: the heartbeat stays fresh, the video is dubbed."""
    sim = e2e_sim()
    daemon = daemon_factory(sim, watch={"mode": "polling", "scan_interval": 1})
    daemon.start().wait_started()
    fifo = daemon.staging / "pipe"
    os.mkfifo(fifo)
    video = daemon.drop("swapped.mp4")
    stop = threading.Event()
    swaps = [0]

    def swapper() -> None:
        while not stop.is_set():
            _exchange(video, fifo)
            swaps[0] += 1

    t = threading.Thread(target=swapper, daemon=True)
    t.start()
    try:
        # Several stability rounds of the watcher while the name flips between the two.
        started = time.monotonic()
        wait_until(lambda: time.monotonic() - started > 8 and swaps[0] > 1000, 30, what="swaps")
    finally:
        stop.set()
        t.join(5)
    if stat.S_ISFIFO(os.lstat(video).st_mode):
        _exchange(video, fifo)  # leave the video under its name
    # A blocked main loop stops beating (HEARTBEAT_SECONDS is 5): fresh means it kept running.
    wait_until(lambda: _heartbeat_age(daemon) < 3, 15, what="a fresh heartbeat")
    # A job whose source looked gone mid-swap waits for its root to be confirmed (60 s).
    jobs = daemon.wait_all(1, [JobState.DONE], timeout=100)
    assert Path(jobs[0].source_path).name == "swapped.mp4"
    assert sim.count("POST /v2/dubbing") == 1
    assert daemon.terminate(20) == 0
