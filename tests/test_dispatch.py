"""Dispatch: projects start in the order their uploads finished; polls stay in the read budget."""

from __future__ import annotations

from enginefixtures import Engine

from synthesia_watchd.domain.states import JobState
from synthesia_watchd.service.daemon import Daemon


def _first_time(engine: Engine, state: JobState) -> dict[int, float]:
    """Job id -> when the job first entered ``state``."""
    found: dict[int, float] = {}
    with engine.ledger() as ledger:
        for job in engine.jobs():
            times = [e.at for e in ledger.events(job.id) if e.to_state == state.value]
            if times:
                found[job.id] = min(times)
    return found


def test_jobs_waiting_for_a_project_slot_are_submitted_first_come_first_served(
    engine: Engine,
) -> None:
    """A job uploaded while every slot was taken starts before jobs uploaded after it."""
    engine.settings["workers"] = {"max_active_jobs": 1, "max_uploads": 2}
    for i in range(5):
        engine.put(f"clip{i}.mp4")
    engine.run()
    engine.assert_all_done()
    uploaded = _first_time(engine, JobState.UPLOADED)
    started = _first_time(engine, JobState.DUBBING)
    by_upload = sorted(uploaded, key=uploaded.__getitem__)
    by_start = sorted(started, key=started.__getitem__)
    assert by_start == by_upload, (uploaded, started)


def test_polls_wait_when_the_day_read_budget_is_down_to_the_download_reserve(
    engine: Engine,
) -> None:
    """Reads per day 2 (the reserve of one dubbing job): no poll is sent, the job waits in
    dubbing and run --once ends; with a larger budget the next run finishes it."""
    engine.settings["api"] = {"rate_limits": {"reads": {"per_minute": 60, "per_day": 2}}}
    engine.put("a.mp4")
    paused: list[str] = []

    def note_pause(daemon: Daemon) -> None:
        reason = daemon.pauses.get("reads")
        if reason:
            paused.append(reason)

    engine.run(on_tick=note_pause)
    (job,) = engine.jobs()
    assert job.state is JobState.DUBBING
    assert engine.sim.count("GET /v2/dubbing/{id}") == 0
    assert paused and "read budget" in paused[-1]
    engine.settings["api"] = {"rate_limits": {"reads": {"per_minute": 60, "per_day": 100}}}
    engine.run()
    engine.assert_all_done()
    with engine.ledger() as ledger:
        counted = sum(ledger.api_reads_since("GET /v2/dubbing/{id}", 0).values())
    assert counted == engine.sim.count("GET /v2/dubbing/{id}") > 0
