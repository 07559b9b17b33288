"""A watch root that is unmounted holds its jobs; a vanished file that returns is queued again.

The first test uses a real bind mount (root only): a bind mount keeps ``st_dev``, so nothing
but the jobs themselves notices the folder went away.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from enginefixtures import Engine

from synthesia_watchd.domain.media import sample_video
from synthesia_watchd.domain.states import JobState
from synthesia_watchd.engine.pipeline import VANISHED
from synthesia_watchd.service.daemon import Daemon

NAMES = ("a.mp4", "b.mp4", "c.mp4")


class BindMount:
    """``source`` bind-mounted onto ``target``; unmounted again at the end of the test."""

    def __init__(self, source: Path, target: Path) -> None:
        self.source, self.target = source, target
        self.mounted = False

    def mount(self) -> None:
        subprocess.run(["mount", "--bind", str(self.source), str(self.target)], check=True)
        self.mounted = True

    def umount(self) -> None:
        subprocess.run(["umount", str(self.target)], check=True)
        self.mounted = False


@pytest.fixture
def bind_mount(tmp_path: Path) -> Iterator[Callable[[Path, Path], BindMount]]:
    """Make bind mounts (skips without root or mount(8)); any left mounted are undone."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("bind mounts need root and mount(8)")
    probe_src, probe_dst = tmp_path / "probe-src", tmp_path / "probe-dst"
    probe_src.mkdir()
    probe_dst.mkdir()
    done = subprocess.run(
        ["mount", "--bind", str(probe_src), str(probe_dst)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {done.stderr.strip()}")
    subprocess.run(["umount", str(probe_dst)], check=True)
    made: list[BindMount] = []

    def make(source: Path, target: Path) -> BindMount:
        m = BindMount(source, target)
        made.append(m)
        return m

    try:
        yield make
    finally:
        for m in made:
            if m.mounted:
                subprocess.run(["umount", "-l", str(m.target)], check=False)


def test_unmounted_root_holds_queued_jobs_until_remounted(
    engine: Engine, tmp_path: Path, bind_mount: Callable[[Path, Path], BindMount]
) -> None:
    """Jobs held back by a 429 when their bind-mounted root goes away wait; none is cancelled."""
    share = tmp_path / "share"
    share.mkdir()
    for name in NAMES:
        (share / name).write_bytes(sample_video(name, 16 * 1024))
    mount = bind_mount(share, engine.input)
    mount.mount()
    engine.sim.faults.add("POST /v2/assets", "429", retry_after=1)  # every job waits
    steps: list[str] = []
    seen_states: set[str] = set()

    def unmount_then_remount(d: Daemon) -> None:
        jobs = d.ledger.list_jobs(limit=10)
        seen_states.update(j.state.value for j in jobs)
        if not steps:
            if len(jobs) == len(NAMES) and all(
                "rate limited" in (j.last_error or "") for j in jobs
            ):
                mount.umount()
                steps.append("unmounted")
        elif steps == ["unmounted"] and all("watch folder" in (j.last_error or "") for j in jobs):
            # Each job came due with its source missing and was held, not cancelled.
            steps.append("held")
            engine.sim.faults.clear()
            mount.mount()

    engine.run(on_tick=unmount_then_remount, timeout=60, scan_interval=30)
    assert steps == ["unmounted", "held"], (steps, engine.states())
    assert "cancelled" not in seen_states
    engine.assert_all_done()
    assert len(engine.jobs()) == len(NAMES)
    assert engine.dub_posts() == len(NAMES)


def test_vanished_file_that_returns_is_queued_again_without_restart(engine: Engine) -> None:
    """A job cancelled because its file vanished is queued again when the file comes back."""
    keep = engine.put("keep.mp4")
    gone = engine.put("gone.mp4")
    data, st = gone.read_bytes(), gone.stat()
    engine.sim.faults.add("POST /v2/assets", "429", retry_after=1)
    steps: list[str] = []

    def delete_then_restore(d: Daemon) -> None:
        jobs = {Path(j.source_path).name: j for j in d.ledger.list_jobs(limit=10)}
        if not steps:
            if len(jobs) == 2 and all(
                "rate limited" in (j.last_error or "") for j in jobs.values()
            ):
                gone.unlink()
                steps.append("deleted")
        elif steps == ["deleted"]:
            job = jobs["gone.mp4"]
            if job.state is JobState.CANCELLED and job.last_error == VANISHED:
                gone.write_bytes(data)
                os.utime(gone, ns=(st.st_atime_ns, st.st_mtime_ns))
                engine.sim.faults.clear()
                steps.append("restored")

    engine.run(on_tick=delete_then_restore, timeout=60, scan_interval=30)
    assert steps == ["deleted", "restored"], (steps, engine.states())
    assert keep.exists()
    jobs = engine.jobs()
    assert len(jobs) == 2  # the same job came back: no new job, no restart
    engine.assert_all_done()
