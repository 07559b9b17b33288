"""Dispatch order and latency: projects start in the order their uploads finished."""

from __future__ import annotations

from enginefixtures import Engine

from synthesia_watchd.states import JobState


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
