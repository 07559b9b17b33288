"""The daemon as a subprocess against a misbehaving Synthesia: every fault ends where documented.

Three files go in per test and the fault hits one of them (or one request of them): the bad
job must reach its documented state and the others must still be dubbed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from e2efixtures import DaemonProcess
from helpers import wait_until

from synthesia_watchd.domain.states import JobState, OutputState
from synthesia_watchd.simulator import Recorded, Simulator
from synthesia_watchd.stores.noderecords import freshest, records

pytestmark = pytest.mark.slow

SimFactory = Callable[..., Simulator]
DaemonFactory = Callable[..., DaemonProcess]

API_ENDPOINTS = (
    "POST /v2/assets",
    "GET /v2/assets/{id}",
    "POST /v2/dubbing",
    "GET /v2/dubbing/{id}",
    "PUT /v2/dubbing/{id}",
)


def _run(daemon: DaemonProcess, files: int = 3) -> list[Path]:
    daemon.start()
    return daemon.drop_many(files)


# --- faults the daemon rides out -------------------------------------------------------------

RECOVERED = [
    pytest.param("*", "5xx", {"count": 3, "status": 503}, id="5xx"),
    pytest.param("S3", "expired_credentials", {"count": 1}, id="expired-credentials"),
    pytest.param("DOWNLOAD", "expired_url", {"count": 1}, id="expired-url"),
    pytest.param("DOWNLOAD", "truncate", {"count": 1}, id="truncate"),
]


@pytest.mark.parametrize(("endpoint", "kind", "params"), RECOVERED)
def test_recoverable_fault_ends_done_with_exact_outputs(
    e2e_sim: SimFactory,
    daemon_factory: DaemonFactory,
    endpoint: str,
    kind: str,
    params: dict[str, Any],
) -> None:
    """5xx, expired credentials or URL, truncated body: retried; every file done, paid once."""
    sim = e2e_sim()
    fault = sim.faults.add(endpoint, kind, **params)
    daemon = daemon_factory(sim)
    _run(daemon)
    jobs = daemon.wait_all(3, {JobState.DONE})

    assert fault.fired == params["count"]
    for job in jobs:
        daemon.assert_outputs_exact(job)
    assert daemon.temp_files() == []
    assert sim.count("POST /v2/dubbing") == 3
    assert len(sim.projects) == 3
    if kind == "expired_credentials":
        # The rejected upload's asset is abandoned; the job starts over with a fresh one.
        assert sim.count("POST /v2/assets") == 4
        assert any("fresh asset" in e.why for j in jobs for e in daemon.ledger().events(j.id))
    if kind == "expired_url":
        refused = [r for r in sim.requests if r.fault == "expired_url"]
        assert len(refused) == 1 and refused[0].status == 403
    if kind == "truncate":
        assert sim.count("DOWNLOAD") == 3 * len(daemon.targets) + 1


def test_drop_before_submit_is_not_resent_blindly(
    e2e_sim: SimFactory, daemon_factory: DaemonFactory
) -> None:
    """A submit whose connection drops unanswered is ambiguous to a client: needs_attention."""
    sim = e2e_sim()
    sim.faults.add("POST /v2/dubbing", "drop_before", count=1)
    daemon = daemon_factory(sim)
    _run(daemon)
    jobs = daemon.wait_all(3, {JobState.DONE, JobState.NEEDS_ATTENTION})

    stuck = [j for j in jobs if j.state is JobState.NEEDS_ATTENTION]
    assert len(stuck) == 1 and stuck[0].project_id is None
    assert sim.count("POST /v2/dubbing") == 3
    assert len(sim.projects) == 2  # the server never acted on the dropped one
    for job in jobs:
        if job.state is JobState.DONE:
            daemon.assert_outputs_exact(job)


def test_drop_before_submit_with_retry_policy_ends_done_with_one_project(
    e2e_sim: SimFactory, daemon_factory: DaemonFactory
) -> None:
    """With on_ambiguous_submit: retry a dropped submit is resent; no project is doubled."""
    sim = e2e_sim()
    sim.faults.add("POST /v2/dubbing", "drop_before", count=1)
    daemon = daemon_factory(sim, settings={"on_ambiguous_submit": "retry"})
    _run(daemon)
    jobs = daemon.wait_all(3, {JobState.DONE})

    for job in jobs:
        daemon.assert_outputs_exact(job)
    assert sim.count("POST /v2/dubbing") == 4
    assert len(sim.projects) == 3


def test_drop_after_submit_needs_attention_and_others_finish(
    e2e_sim: SimFactory, daemon_factory: DaemonFactory
) -> None:
    """A submit processed but unanswered is never resent: needs_attention, the rest done."""
    sim = e2e_sim()
    sim.faults.add("POST /v2/dubbing", "drop_after", count=1)
    daemon = daemon_factory(sim)
    _run(daemon)
    jobs = daemon.wait_all(3, {JobState.DONE, JobState.NEEDS_ATTENTION})

    stuck = [j for j in jobs if j.state is JobState.NEEDS_ATTENTION]
    assert len(stuck) == 1
    assert "--resubmit" in (stuck[0].last_error_context or "")
    assert sim.count("POST /v2/dubbing") == 3
    assert len(sim.projects) == 3  # one of them billed but unknown to us: the human's call
    for job in jobs:
        if job.state is JobState.DONE:
            daemon.assert_outputs_exact(job)


# --- faults that end a job -------------------------------------------------------------------


def test_project_moderation_error_fails_the_job_and_moves_the_source_aside(
    e2e_sim: SimFactory, daemon_factory: DaemonFactory, tmp_path: Path
) -> None:
    """project_error: failed with the errorCode; on_failure move leaves a .reason.json."""
    sim = e2e_sim()
    sim.faults.add("POST /v2/dubbing", "project_error", count=1, error_code="moderation")
    failed_dir = tmp_path / "failed"
    daemon = daemon_factory(sim, watch={"on_failure": {"move": str(failed_dir)}})
    _run(daemon)
    jobs = daemon.wait_all(3, {JobState.DONE, JobState.FAILED})

    (bad,) = [j for j in jobs if j.state is JobState.FAILED]
    assert "moderation" in (bad.last_error or "")
    name = Path(bad.source_path).name
    assert not Path(bad.source_path).exists()
    assert (failed_dir / name).is_file()
    reason = json.loads((failed_dir / f"{name}.reason.json").read_text())
    assert "moderation" in reason["error"]
    assert not list(daemon.output.glob(f"{Path(name).stem}.dubbed-*"))
    for job in jobs:
        if job is not bad:
            daemon.assert_outputs_exact(job)
    assert sim.count("POST /v2/dubbing") == 3


def test_language_error_is_partial_with_the_other_language_written(
    e2e_sim: SimFactory, daemon_factory: DaemonFactory
) -> None:
    """language_error: partial; the good language is on disk, the bad one keeps its errorCode."""
    sim = e2e_sim()
    sim.faults.add(
        "POST /v2/dubbing",
        "language_error",
        count=1,
        language="es-ES",
        error_code="processing_error",
    )
    daemon = daemon_factory(sim)
    _run(daemon)
    jobs = daemon.wait_all(3, {JobState.DONE, JobState.PARTIAL})

    (part,) = [j for j in jobs if j.state is JobState.PARTIAL]
    outs = {o.language: o for o in daemon.outputs(part)}
    assert outs["fr-FR"].state is OutputState.DONE
    assert outs["es-ES"].state is OutputState.FAILED
    assert outs["es-ES"].error_code == "processing_error"
    assert "processing_error" in (part.last_error or "")
    daemon.assert_outputs_exact(part, ["fr-FR"])
    assert not daemon.output_path(part, "es-ES").exists()
    for job in jobs:
        if job is not part:
            daemon.assert_outputs_exact(job)


def test_non_video_named_mp4_fails_without_any_api_call(
    e2e_sim: SimFactory, daemon_factory: DaemonFactory
) -> None:
    """A text file named .mp4 fails at intake: no asset, no upload, no project for it."""
    sim = e2e_sim()
    daemon = daemon_factory(sim)
    daemon.start()
    daemon.drop("notes.mp4", b"these are meeting notes, not a video\n" * 50)
    daemon.drop_many(2)
    jobs = daemon.wait_all(3, {JobState.DONE, JobState.FAILED})

    bad = daemon.job("notes.mp4")
    assert bad.state is JobState.FAILED and bad.asset_id is None
    assert bad.last_error
    assert sim.count("POST /v2/assets") == 2
    assert sim.count("POST /v2/dubbing") == 2
    assert [j.state for j in jobs].count(JobState.DONE) == 2


def test_wrong_api_key_pauses_everything_then_the_right_key_finishes(
    e2e_sim: SimFactory, daemon_factory: DaemonFactory
) -> None:
    """A rejected key pauses all work (status shows auth); restarted with the right key: done."""
    sim = e2e_sim()
    daemon = daemon_factory(sim)
    wrong = "sk-wrong-" + "7" * 20
    daemon.start(SYNTHESIA_API_KEY=wrong)
    daemon.drop_many(3)

    def paused() -> bool:
        # The key check at start pauses at once; the dropped files are queued after it.
        record = freshest(records(daemon.ledger()))
        queued = [j for j in daemon.jobs() if j.state is JobState.QUEUED]
        return "auth" in record.get("paused", {}) and len(queued) == 3

    wait_until(paused, 20, interval=0.1, what="the auth pause with the three files queued")
    result = daemon.cli("status", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert "API key" in data["paused"]["auth"]
    assert data["counts"].get("queued") == 3
    assert all(j.state is JobState.QUEUED for j in daemon.jobs())
    assert sim.count("POST /v2/dubbing") == 0
    assert sim.count("S3") == 0
    assert all(r.status == 403 for r in sim.requests)
    # At most one refused try per job: nothing is retried while the pause holds.
    assert sim.count("POST /v2/assets") <= 3
    assert daemon.terminate() == 0
    assert wrong not in daemon.all_logs()

    daemon.restart()
    jobs = daemon.wait_all(3, {JobState.DONE})
    for job in jobs:
        daemon.assert_outputs_exact(job)
    assert sim.count("POST /v2/dubbing") == 3


# --- 429 storm ---------------------------------------------------------------------------------


def _limit_class(rec: Recorded) -> str:
    return "write" if rec.method in ("POST", "PUT", "PATCH", "DELETE") else "read"


def test_429_storm_is_honoured_and_every_file_finishes(
    e2e_sim: SimFactory, daemon_factory: DaemonFactory
) -> None:
    """After each 429 nothing of that class arrives before the announced reset; all done."""
    sim = e2e_sim()
    waits = {"POST /v2/assets": 2, "POST /v2/dubbing": 2, "GET /v2/dubbing/{id}": 2}
    for endpoint, seconds in waits.items():
        sim.faults.add(endpoint, "429", count=2, retry_after=seconds)
    daemon = daemon_factory(sim)
    _run(daemon, files=8)
    jobs = daemon.wait_all(8, {JobState.DONE}, timeout=60)

    log = [r for r in sim.requests if r.endpoint in API_ENDPOINTS]
    limited = [r for r in log if r.status == 429]
    assert len(limited) == 2 * len(waits)
    # Requests already on the wire when the 429 was answered may land just after it (on a busy
    # machine the server may log them a few hundred ms late); past that grace, nothing of the
    # class may arrive until the reset (less 50 ms of clock skew).
    in_flight, tolerance = 0.4, 0.05
    for hit in limited:
        reset = hit.time + waits[hit.endpoint]
        early = [
            r
            for r in log
            if _limit_class(r) == _limit_class(hit)
            and hit.time + in_flight < r.time < reset - tolerance
        ]
        offsets = [(r.endpoint, round(r.time - hit.time, 3)) for r in early]
        assert not early, f"requests inside the reset after a 429 on {hit.endpoint}: {offsets}"
    for job in jobs:
        daemon.assert_outputs_exact(job)
    assert sim.count("POST /v2/dubbing") == 8 + 2  # two refused (429), eight accepted
    assert len(sim.projects) == 8
