"""The daemon as a subprocess, killed at every step: nothing lost, nothing paid for twice.

Each crash is made deterministic by holding one simulator endpoint at a gate: the daemon is
killed while its request waits there, the gate is released, and a fresh daemon resumes from
the ledger alone.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from e2efixtures import DaemonProcess
from helpers import wait_until

from synthesia_watchd.domain.states import JobState
from synthesia_watchd.simulator import Simulator

pytestmark = pytest.mark.slow

SimFactory = Callable[..., Simulator]
DaemonFactory = Callable[..., DaemonProcess]

#: Job states in pipeline order, to check that a held endpoint stops every job before it.
ORDER = [
    JobState.QUEUED,
    JobState.ASSET_CREATED,
    JobState.UPLOADED,
    JobState.DUBBING,
    JobState.DOWNLOADING,
    JobState.DONE,
]

CRASH_POINTS = [
    pytest.param("POST /v2/assets", JobState.QUEUED, id="creating-asset"),
    pytest.param("S3", JobState.ASSET_CREATED, id="uploading"),
    pytest.param("GET /v2/dubbing/{id}", JobState.DUBBING, id="polling"),
    pytest.param("DOWNLOAD", JobState.DOWNLOADING, id="downloading"),
]


@pytest.mark.parametrize(("endpoint", "held_state"), CRASH_POINTS)
def test_sigkill_at_each_step_resumes_to_done_paying_once(
    e2e_sim: SimFactory, daemon_factory: DaemonFactory, endpoint: str, held_state: JobState
) -> None:
    """SIGKILL while a step's request is held; a restart ends every file done, billed once."""
    sim = e2e_sim()
    daemon = daemon_factory(sim)
    gate = sim.pause(endpoint)
    daemon.start()
    daemon.drop_many(2)
    assert gate.wait_arrived(20), f"no request reached {endpoint}"

    daemon.wait_state(
        lambda jobs: len(jobs) == 2 and any(j.state is held_state for j in jobs),
        what=f"both files recorded, one {held_state}",
    )
    assert daemon.kill() == -9
    jobs = daemon.jobs()
    assert len(jobs) == 2
    limit = ORDER.index(held_state)
    assert all(ORDER.index(j.state) <= limit for j in jobs), [j.state for j in jobs]
    daemon.assert_no_partial_outputs()
    if held_state is JobState.DOWNLOADING:
        # What a kill in the middle of writing leaves: a hidden temp file, never a final name.
        job = next(j for j in jobs if j.state is JobState.DOWNLOADING)
        stale = daemon.output / f".{Path(job.source_path).stem}.dubbed-fr-FR.mp4.0badf00d.part"
        stale.write_bytes(b"\x00" * 100)

    sim.unpause(endpoint)
    daemon.restart()
    done = daemon.wait_all(2, {JobState.DONE})

    for job in done:
        daemon.assert_outputs_exact(job)
    assert sim.count("POST /v2/dubbing") == 2
    assert len(sim.projects) == 2
    assert {j.project_id for j in done} == set(sim.projects)
    assert daemon.temp_files() == []
    assert len(daemon.final_files()) == 2 * len(daemon.targets)
    if held_state is JobState.ASSET_CREATED:
        # The S3 credentials lived only in the dead process: a fresh asset replaced them.
        assert sim.count("POST /v2/assets") >= 3


#: Submits run on two threads; one project slot keeps exactly one submit on the wire at the kill.
ONE_SUBMIT_AT_A_TIME = {"workers": {"max_active_jobs": 1}}


def _ambiguous_run(sim: Simulator, daemon: DaemonProcess) -> tuple[int, list[Path]]:
    """Kill the daemon while one POST /v2/dubbing waits at the gate, then let it through."""
    gate = sim.pause("POST /v2/dubbing")
    daemon.start()
    sources = daemon.drop_many(3)
    assert gate.wait_arrived(20)
    assert daemon.kill() == -9
    held = [j for j in daemon.jobs() if j.submit_started_at is not None]
    assert len(held) == 1, "exactly one submit was on the wire"
    assert held[0].state is JobState.UPLOADED
    # The server acts on the request after the client died: a project exists, unknown to us.
    sim.unpause("POST /v2/dubbing")
    wait_until(lambda: len(sim.projects) == 1, 10, what="the orphaned project")
    return held[0].id, sources


def test_kill_during_submit_needs_attention_without_a_second_charge(
    e2e_sim: SimFactory, daemon_factory: DaemonFactory
) -> None:
    """A submit cut off by SIGKILL is never resent: needs_attention with a reason; others done."""
    sim = e2e_sim()
    daemon = daemon_factory(sim, settings=ONE_SUBMIT_AT_A_TIME)
    held_id, _ = _ambiguous_run(sim, daemon)

    daemon.restart()
    jobs = daemon.wait_all(3, {JobState.DONE, JobState.NEEDS_ATTENTION})

    by_id = {j.id: j for j in jobs}
    held = by_id.pop(held_id)
    assert held.state is JobState.NEEDS_ATTENTION
    assert held.project_id is None
    reason = held.last_error_context or ""
    assert "workspace" in reason and f"retry {held_id} --resubmit" in reason
    assert all(j.state is JobState.DONE for j in by_id.values())
    for job in by_id.values():
        daemon.assert_outputs_exact(job)
    assert sim.count("POST /v2/dubbing") == 3  # one per file, the lost one included
    assert len(sim.projects) == 3

    status = daemon.cli("status", "--json")
    assert status.returncode == 0, status.stderr
    attention = json.loads(status.stdout)["needs_attention"]
    assert [a["id"] for a in attention] == [held_id]
    assert "--resubmit" in attention[0]["reason"]


def test_kill_during_submit_with_retry_policy_resubmits_to_done(
    e2e_sim: SimFactory, daemon_factory: DaemonFactory
) -> None:
    """With on_ambiguous_submit: retry the cut-off submit is sent again and the file is done."""
    sim = e2e_sim()
    daemon = daemon_factory(sim, settings={"on_ambiguous_submit": "retry", **ONE_SUBMIT_AT_A_TIME})
    held_id, _ = _ambiguous_run(sim, daemon)

    daemon.restart()
    jobs = daemon.wait_all(3, {JobState.DONE})

    for job in jobs:
        daemon.assert_outputs_exact(job)
    assert sim.count("POST /v2/dubbing") == 4  # the operator chose to risk paying twice
    held = next(j for j in jobs if j.id == held_id)
    assert any("resubmitting" in e.why for e in daemon.ledger().events(held_id))
    assert held.project_id in sim.projects


def test_sigterm_stops_within_shutdown_timeout_and_a_restart_finishes(
    e2e_sim: SimFactory, daemon_factory: DaemonFactory
) -> None:
    """SIGTERM mid-work, one request hung: exit 0 by shutdown_timeout; a restart finishes all."""
    sim = e2e_sim()
    daemon = daemon_factory(sim, settings={"shutdown_timeout": 1})
    gate = sim.pause("GET /v2/dubbing/{id}")
    daemon.start()
    daemon.drop_many(3)
    assert gate.wait_arrived(20)

    started = time.monotonic()
    try:
        code = daemon.terminate(timeout=1 + 3.0)
    except subprocess.TimeoutExpired:
        pytest.fail("SIGTERM: still running 3 s past shutdown_timeout (1 s)")
    finally:
        sim.unpause("GET /v2/dubbing/{id}")
    assert code == 0
    assert time.monotonic() - started < 1 + 3.0
    events = [e.get("event", "") for e in daemon.log()]
    assert "stopping: finishing in-flight work" in events and "stopped" in events
    assert any("did not stop within shutdown_timeout" in e for e in events)
    after_stop = daemon.jobs()
    assert any(j.state is not JobState.DONE for j in after_stop)
    # A warm stop lets a submit finish: it never leaves an ambiguous one behind.
    assert all(j.state not in (JobState.NEEDS_ATTENTION, JobState.FAILED) for j in after_stop)

    daemon.restart()
    jobs = daemon.wait_all(3, {JobState.DONE})
    for job in jobs:
        daemon.assert_outputs_exact(job)
    assert sim.count("POST /v2/dubbing") == 3
