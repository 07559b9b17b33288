"""The daily limits count a submit whose answer was never recorded: it may have been paid."""

from __future__ import annotations

import time

from enginefixtures import Engine

from synthesia_watchd.domain.reasons import Reason
from synthesia_watchd.domain.states import JobState

S = JobState


def test_an_ambiguous_submit_counts_against_the_daily_job_limit(engine: Engine) -> None:
    """max_jobs_per_day 1 and a job left with a submit marker today (the daemon died after
    sending POST /v2/dubbing): a new file is held by the limit, not submitted."""
    engine.put("a.mp4")
    with engine.ledger() as ledger:
        job = ledger.add_job(
            watch="drop",
            source_path=str(engine.input / "gone.mp4"),
            size=1000,
            mtime_ns=1,
            sha256="gone",
            source_language="en",
            targets=["fr-FR"],
            output_dir=str(engine.output),
        )
        for new in (S.ASSET_CREATED, S.UPLOADED):
            ledger.transition(job.id, ledger.get(job.id).state, new, why=new.value)
        ledger.update(job.id, expected=S.UPLOADED, submit_started_at=time.time())
        ledger.transition(job.id, S.UPLOADED, S.NEEDS_ATTENTION, why="answer lost")
    engine.settings["limits"] = {"max_jobs_per_day": 1}
    engine.run()
    assert engine.dub_posts() == 0
    [held] = [j for j in engine.jobs() if j.source_path.endswith("a.mp4")]
    assert held.state is S.UPLOADED
    assert held.reason_code == Reason.DAILY_LIMIT.value
    assert "daily job limit reached (1/1)" in (held.last_error or "")
