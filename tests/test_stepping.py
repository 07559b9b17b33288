"""The engine stepped by hand: ``loop_once(now)`` on an inline executor, no threads."""

from __future__ import annotations

import threading

from enginefixtures import Engine, ManualClock

from synthesia_watchd.domain.states import JobState
from synthesia_watchd.engine.scheduler import InlineExecutor, inline
from synthesia_watchd.service import compose
from synthesia_watchd.service.daemon import Daemon


def test_inline_executor_runs_at_once_and_keeps_the_error() -> None:
    """submit() runs in the caller's thread and returns a finished future (result or error)."""
    ex = InlineExecutor()
    assert ex.submit(threading.current_thread).result() is threading.current_thread()
    failed = ex.submit(int, "not a number")
    assert failed.done() and isinstance(failed.exception(), ValueError)


def test_each_loop_pass_carries_a_job_one_stage_further(stepped_engine: Engine) -> None:
    """The first pass takes the job from queued to dubbing (asset, upload and submit are due at
    once); nothing more happens until Synthesia's dub time has passed on the shared clock;
    then one pass polls and downloads: done. Every pass returns with no stage running."""
    engine = stepped_engine
    clock = engine.sim.clock
    assert isinstance(clock, ManualClock)
    src = engine.put("a.mp4")
    config = engine.config()
    daemon = Daemon(compose.build(config, watch=False, now=clock, executor=inline), once=True)
    try:
        daemon.start()
        st = src.stat()
        job = daemon.pipeline.intake(config.watches[0], src, st.st_size, st.st_mtime_ns)
        assert job is not None
        seen = []
        for advance in (0.0, 5.0, 30.0):
            clock.advance(advance)
            daemon.loop_once(clock())
            assert not daemon.scheduler.busy()
            seen.append(daemon.ledger.get(job.id).state)
    finally:
        daemon.shutdown()
        daemon.ledger.close()
        daemon.lock.release()
    assert seen == [JobState.DUBBING, JobState.DUBBING, JobState.DONE], seen
    assert engine.dub_posts() == 1
