"""Faults at download time: one language's unsafe URL, a full output disk.

Each drives the daemon's `run --once` against the simulator over real folders.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog
from enginefixtures import Engine

from synthesia_watchd.domain.states import JobState, OutputState
from synthesia_watchd.files.diskspace import SpaceHolds
from synthesia_watchd.service import cli
from synthesia_watchd.service.daemon import Daemon
from synthesia_watchd.stores.ledger import Job


def test_unsafe_url_fails_only_its_language(stepped_engine: Engine) -> None:
    """A plain-http metadata URL for es-ES fails es-ES only; fr-FR is written; job partial."""
    engine = stepped_engine
    engine.sim.faults.add("GET /v2/dubbing/{id}", "unsafe_url", language="es-ES")
    engine.put("talk.mp4")
    engine.step()
    job = engine.jobs()[0]
    assert job.state is JobState.PARTIAL, (job.state, job.last_error)
    outs = {o.language: o for o in engine.outputs(job)}
    assert outs["fr-FR"].state is OutputState.DONE
    assert (engine.output / "talk.dubbed-fr-FR.mp4").stat().st_size > 0
    assert outs["es-ES"].state is OutputState.FAILED
    assert outs["es-ES"].error_code == "unsafe_download_url"
    assert "unsafe_download_url" in (job.last_error or ""), job.last_error
    with engine.ledger() as ledger:
        history = [e.why for e in ledger.events(job.id)]
    assert any("es-ES/video not downloaded" in h and "169.254.169.254" in h for h in history)
    assert not (engine.output / "talk.dubbed-es-ES.mp4").exists()
    assert engine.sim.count("DOWNLOAD") == 1  # only fr-FR was fetched


MIB = 1024 * 1024


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    """A real 4 MiB tmpfs mounted in the test's folder (root only), unmounted afterwards."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m,mode=0755", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=True)


def test_full_disk_holds_downloads_until_space_returns(
    engine_factory: Callable[..., Engine], tiny_fs: Path
) -> None:
    """ENOSPC holds the downloads (no retries spent, one fetch, 'no space left on' the folder)."""
    engine = engine_factory(dub_size=MIB)
    out = tiny_fs / "out"
    out.mkdir()
    filler = tiny_fs / "filler"
    filler.write_bytes(b"\0" * (3 * MIB + MIB // 2))  # leaves about half a MiB
    engine.put("talk.mp4")
    seen: dict[str, object] = {}
    rechecks: set[float] = set()

    def free_space_once_held(d: Daemon) -> None:
        if "held" in seen:
            return
        jobs = d.ledger.list_jobs(limit=10)
        if jobs and "no space left on" in (jobs[0].last_error or ""):
            # Each re-check of the free space moves next_attempt_at on: let it re-check
            # twice, and check that no download went out meanwhile.
            rechecks.add(jobs[0].next_attempt_at)
            if len(rechecks) < 3:
                return
            seen["held"] = jobs[0]
            seen["downloads"] = engine.sim.count("DOWNLOAD")
            filler.unlink()

    engine.run(on_tick=free_space_once_held, output=str(out), targets=["fr-FR", "es-ES"])
    held = seen.get("held")
    assert isinstance(held, Job), "the job was never held for space"
    assert held.state is JobState.DOWNLOADING
    assert str(out) in (held.last_error or ""), held.last_error
    assert "free" in (held.last_error or ""), held.last_error
    assert held.attempts == 0
    assert seen["downloads"] == 1, seen["downloads"]  # one try, then held, not retried blindly
    job = engine.jobs()[0]
    assert job.state is JobState.DONE, (job.state, job.last_error)
    assert job.attempts == 0
    assert (out / "talk.dubbed-fr-FR.mp4").stat().st_size == MIB
    assert (out / "talk.dubbed-es-ES.mp4").stat().st_size == MIB


def test_quota_hold_is_logged_once_per_episode_and_stays_in_status(
    engine_factory: Callable[..., Engine], tiny_fs: Path
) -> None:
    """A write refused for space that statvfs cannot see (a quota: free space looks fine) logs
    the hold once, however many re-checks pass, keeps the hold in `status` throughout, and
    logs once that it cleared."""
    engine = engine_factory(dub_size=MIB)
    out = tiny_fs / "out"
    out.mkdir()
    filler = tiny_fs / "filler"
    filler.write_bytes(b"\0" * (3 * MIB + MIB // 2))  # writes fail: ENOSPC, as a quota's EDQUOT
    engine.put("talk.mp4")
    rechecks: set[float] = set()
    shown: list[bool] = []

    def quota(d: Daemon) -> None:
        # statvfs under a quota: plenty free, whatever the writes say.
        if not isinstance(d.pipeline.ctx.space, QuotaBlind):
            d.pipeline.ctx.space = QuotaBlind(free=lambda folder: 1 << 40)
        if not filler.exists():
            return
        jobs = d.ledger.list_jobs(limit=10)
        if jobs and "no space left on" in (jobs[0].last_error or ""):
            rechecks.add(jobs[0].next_attempt_at)
            shown.append(any(k.startswith("space:") for k in d.pipeline.pauses.snapshot()))
            if len(rechecks) >= 4:
                filler.unlink()

    with structlog.testing.capture_logs() as logs:
        engine.run(on_tick=quota, output=str(out), targets=["fr-FR", "es-ES"])
    assert len(rechecks) >= 4, "the job was never held for space"
    events = [e["event"] for e in logs]
    held = [e for e in events if e.startswith("no space left on device")]
    back = [e for e in events if e.startswith("space is back")]
    assert (len(held), len(back)) == (1, 1), events
    assert shown and all(shown), f"status lost the hold between re-checks: {shown}"
    engine.assert_all_done()
    assert (out / "talk.dubbed-fr-FR.mp4").stat().st_size == MIB


class QuotaBlind(SpaceHolds):
    """The engine's space holds over a ``free`` that, like statvfs under a quota, sees room."""


def test_retry_of_refused_downloads_polls_the_project_again(
    stepped_engine: Engine,
) -> None:
    """retry of a job whose only failures are unsafe URLs fetches them again, no new dub."""
    engine = stepped_engine
    fault = engine.sim.faults.add("GET /v2/dubbing/{id}", "unsafe_url", language="es-ES")
    engine.put("talk.mp4")
    engine.step()
    assert engine.jobs()[0].state is JobState.PARTIAL
    fault.remaining = 0  # the answer is safe again
    assert cli.main(["retry", "--failed", "--ledger", str(engine.ledger_path)]) == 0
    engine.step()
    engine.assert_all_done()
    assert len(engine.jobs()) == 1
    assert engine.dub_posts() == 1
    assert (engine.output / "talk.dubbed-es-ES.mp4").stat().st_size > 0


def test_every_url_unsafe_fails_the_job(stepped_engine: Engine) -> None:
    """When no language came back usable the job fails with the refusals as its reason."""
    engine = stepped_engine
    engine.sim.faults.add("GET /v2/dubbing/{id}", "unsafe_url", language="es-ES")
    engine.sim.faults.add("GET /v2/dubbing/{id}", "unsafe_url", language="fr-FR")
    engine.put("talk.mp4")
    engine.step()
    job = engine.jobs()[0]
    assert job.state is JobState.FAILED
    assert "refused as unsafe" in (job.last_error or "")
    assert list(engine.output.iterdir()) == []
