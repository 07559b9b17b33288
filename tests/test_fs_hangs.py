"""Filesystem calls that never return must not stop the daemon's main loop.

A FIFO swapped in under a video's name blocks ``open()`` until some writer shows up; a hung
NFS mount blocks even ``stat``. The race is made certain here, not hoped for: the watcher's
``stat`` seam swaps a real FIFO in right after it looked at the video (renameat2
RENAME_EXCHANGE), or blocks like a dead mount until the test lets it go.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable
from pathlib import Path

from enginefixtures import Engine
from helpers import wait_until

from synthesia_watchd.config.load import build_config
from synthesia_watchd.domain.media import sample_video
from synthesia_watchd.stores.noderecords import freshest, records
from synthesia_watchd.watching.watcher import WatchSet


def exchange(a: Path, b: Path) -> None:
    """renameat2(RENAME_EXCHANGE): the two names swap what they point at, atomically."""
    libc = ctypes.CDLL(None, use_errno=True)
    at_fdcwd, rename_exchange = -100, 2
    if libc.renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def in_thread(fn: Callable[[], object], timeout: float = 5.0) -> bool:
    """Run ``fn`` on a daemon thread; True when it returned within ``timeout``."""
    t = threading.Thread(target=fn, daemon=True)
    t.start()
    t.join(timeout)
    return not t.is_alive()


def unblock_readers(fifo: Path) -> None:
    """Open ``fifo`` for writing once, so that a reader stuck in open() gets going again."""
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return
    os.close(fd)


def test_watcher_never_opens_a_fifo_swapped_in_after_its_stat(
    tmp_path: Path,
) -> None:
    """stat sees the video, then a FIFO takes its name: poll() returns, nothing is reported."""
    root, aside = tmp_path / "in", tmp_path / "aside"
    root.mkdir()
    aside.mkdir()
    video = root / "clip.mp4"
    video.write_bytes(sample_video("clip", 8192))
    fifo = aside / "pipe"
    os.mkfifo(fifo)
    armed = threading.Event()

    def swapping_stat(path: Path) -> os.stat_result:
        st = os.stat(path)
        if armed.is_set() and path == video and os.path.isfile(video):
            exchange(video, fifo)  # the race, every time: a FIFO right after a regular stat
        return st

    config = build_config(
        {"watches": [{"name": "w", "input": str(root), "targets": ["fr-FR"],
                      "mode": "polling", "stable_seconds": 0.5, "scan_interval": 1}]},
        filename="<test>", environ={},
    )  # fmt: skip
    ws = WatchSet(config.watches, stat=swapping_stat, mounts=lambda: [])
    ws.start()
    try:
        assert ws.status()[0].pending == 1
        armed.set()
        found: list[object] = []
        # Past the quiet period: the tracker stats (video), the FIFO arrives, it opens.
        assert in_thread(lambda: found.extend(ws.poll(now=10**9))), "poll() blocked on a FIFO"
        assert found == []
    finally:
        unblock_readers(video)
        ws.stop()


def test_a_hung_stat_does_not_stop_the_main_loop(engine: Engine) -> None:
    """A watch root whose stat hangs (a dead NFS mount): loop passes, heartbeat and status go on."""
    engine.put("a.mp4")
    daemon = engine.daemon()
    daemon.once = False
    release = threading.Event()
    hung = threading.Event()
    real_stat = os.stat

    def dead_mount_stat(path: Path) -> os.stat_result:
        if Path(path) == engine.input and hung_armed.is_set():
            hung.set()
            release.wait(60)
        return real_stat(path)

    hung_armed = threading.Event()
    daemon.watchset._stat = dead_mount_stat
    daemon.watchers.stuck_after = 0.0  # report the hang at once instead of after 10 s
    try:
        daemon.start()
        hung_armed.set()

        def one_pass() -> bool:
            # Each pass of the loop returns although the watchers' stat never does.
            assert in_thread(daemon.loop_once, 5), "the main loop blocked on a filesystem call"
            return hung.is_set()

        wait_until(one_pass, 15, what="the watchers' next root check to hang")
        for _ in range(3):
            one_pass()
        assert in_thread(lambda: daemon.beat(force=True), 5), "heartbeat blocked"
        assert in_thread(daemon.watchset.status, 5), "status blocked"
        record = freshest(records(daemon.ledger))
        assert record["fs_stuck_seconds"] > 0  # `status` says scanning is stalled
    finally:
        release.set()
        daemon.shutdown()
        daemon.ledger.close()
        daemon.lock.release()


def test_intake_of_a_name_that_is_now_a_fifo_offers_it_again(engine: Engine) -> None:
    """Intake finds a FIFO under the name: no job, no wait, and the watcher forgets the file."""
    fifo = engine.input / "swapped.mp4"
    os.mkfifo(fifo)
    daemon = engine.daemon()
    released: list[Path] = []
    daemon.pipeline.release_source = released.append
    try:
        result: list[object] = []
        watch = daemon.config.watches[0]
        assert in_thread(lambda: result.append(daemon.pipeline.intake(watch, fifo, 4096, 1)))
        assert result == [None] and released == [fifo]
        assert daemon.ledger.list_jobs() == []
    finally:
        unblock_readers(fifo)
        daemon.ledger.close()
        daemon.lock.release()


def test_a_mount_hung_at_startup_does_not_keep_the_daemon_from_starting(engine: Engine) -> None:
    """The catch-up scan hangs: start() returns, the loop runs, --once does not call it done."""
    daemon = engine.daemon()
    release = threading.Event()
    real_stat = os.stat

    def dead_mount_stat(path: Path) -> os.stat_result:
        if Path(path) == engine.input:
            release.wait(60)
        return real_stat(path)

    daemon.watchset._stat = dead_mount_stat
    daemon.watchers.start_wait = 0.2
    try:
        assert in_thread(daemon.start, 5), "startup blocked on the catch-up scan"
        assert daemon.started.is_set()
        assert in_thread(daemon.loop_once, 5)
        assert not daemon.drained()  # the folders were never scanned: not "nothing to do"
        release.set()
        wait_until(lambda: in_thread(daemon.loop_once, 5) and daemon.watchers.ready, 10,
                   what="the catch-up scan to finish once the mount answers")  # fmt: skip
    finally:
        release.set()
        daemon.shutdown()
        daemon.ledger.close()
        daemon.lock.release()


def test_a_queued_job_whose_name_is_now_a_fifo_counts_as_vanished(engine: Engine) -> None:
    """The video moved aside, a FIFO under its name: vanished (back when the video is), not
    "changed" (which would leave the video, back under its name, never dubbed)."""
    from synthesia_watchd.domain.states import JobState
    from synthesia_watchd.engine.pipeline import VANISHED

    src = engine.put("clip.mp4")
    daemon = engine.daemon()
    released: list[Path] = []
    daemon.pipeline.release_source = released.append
    try:
        st = src.stat()
        job = daemon.pipeline.intake(daemon.config.watches[0], src, st.st_size, st.st_mtime_ns)
        assert job is not None and job.state is JobState.QUEUED
        aside = engine.base / "aside.mp4"
        os.rename(src, aside)
        os.mkfifo(src)
        assert in_thread(lambda: daemon.pipeline.step(job.id))
        after = daemon.ledger.get(job.id)
        assert after.state is JobState.CANCELLED and after.last_error == VANISHED
        assert released == [src]
    finally:
        unblock_readers(src)
        daemon.ledger.close()
        daemon.lock.release()
