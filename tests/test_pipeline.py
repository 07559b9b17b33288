"""Spend safety and engine behaviour: the daemon's `run --once` in-process against the sim."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from enginefixtures import SOURCE_SIZE, TARGETS, Engine

from synthesia_watchd.domain.media import sample_video
from synthesia_watchd.domain.reasons import Reason
from synthesia_watchd.domain.states import JobState, OutputState
from synthesia_watchd.engine import lifecycle
from synthesia_watchd.engine.jobspec import job_settings
from synthesia_watchd.engine.pipeline import Pipeline
from synthesia_watchd.service import ledgerviews
from synthesia_watchd.service.daemon import Daemon


def video_outputs(engine: Engine, source: Path) -> dict[str, Path]:
    """Language -> expected video output path of a source, mirrored under the output folder."""
    rel = source.relative_to(engine.input)
    folder = engine.output / rel.parent
    return {lang: folder / f"{source.stem}.dubbed-{lang}.mp4" for lang in TARGETS}


def engine_bytes(seed: str) -> bytes:
    """Sample video bytes of the engine's default size."""
    return sample_video(seed, SOURCE_SIZE)


def test_every_file_done_with_exact_outputs_one_submit_each(engine: Engine) -> None:
    """Each file: done, one POST /v2/dubbing, outputs byte-identical, mirrored, umask mode."""
    os.umask(0o002)
    sources = [engine.put("a.mp4"), engine.put("sub/deep/b.mp4"), engine.put("sub/c.mp4")]
    result = engine.run()
    assert result.exit_code == 0
    engine.assert_all_done()
    assert engine.dub_posts() == len(sources)
    assert engine.sim.count("POST /v2/assets") == len(sources)
    project_ids = set()
    for src in sources:
        job = engine.job_for(src)
        assert job.project_id is not None
        project_ids.add(job.project_id)
        for lang, path in video_outputs(engine, src).items():
            assert path.read_bytes() == engine.sim.expected_output(job.project_id, lang)
            assert path.stat().st_mode & 0o777 == 0o664, oct(path.stat().st_mode)
        rows = engine.outputs(job)
        assert {(o.language, o.state) for o in rows} == {
            (lang, OutputState.DONE) for lang in TARGETS
        }
    assert len(project_ids) == len(sources)
    leftovers = [p.name for p in engine.output.rglob("*") if p.is_file() and ".part" in p.name]
    assert leftovers == []


def test_identical_content_under_new_name_reuses_outputs_for_free(stepped_engine: Engine) -> None:
    """The same bytes under another name later (and the old file again): zero API requests."""
    engine = stepped_engine
    first = engine.put("a.mp4", seed="same")
    engine.step()
    before = len(engine.work_requests())
    second = engine.put("copy.mp4", seed="same")
    engine.step()
    assert len(engine.work_requests()) == before
    assert len(engine.jobs()) == 2
    engine.assert_all_done()
    a_job, b_job = engine.job_for(first), engine.job_for(second)
    assert b_job.project_id is None
    old, new = video_outputs(engine, first), video_outputs(engine, second)
    for lang in TARGETS:
        assert new[lang].read_bytes() == old[lang].read_bytes()
    with engine.ledger() as ledger:
        whys = [e.why for e in ledger.events(b_job.id)]
    assert any(f"job {a_job.id}" in w and "no API call" in w for w in whys), whys


def test_two_identical_files_at_once_submit_once(stepped_engine: Engine) -> None:
    """Two copies dropped together: one asset, one POST /v2/dubbing; the twin reuses."""
    engine = stepped_engine
    engine.put("a.mp4", seed="same")
    engine.put("b.mp4", seed="same")
    engine.step()
    engine.assert_all_done()
    assert engine.dub_posts() == 1
    assert engine.sim.count("POST /v2/assets") == 1
    a = video_outputs(engine, engine.input / "a.mp4")
    b = video_outputs(engine, engine.input / "b.mp4")
    for lang in TARGETS:
        assert a[lang].read_bytes() == b[lang].read_bytes()


def test_changed_file_under_same_name_is_a_new_job(stepped_engine: Engine) -> None:
    """New bytes under a known name are dubbed again, and the outputs follow the new version."""
    engine = stepped_engine
    src = engine.put("a.mp4", seed="v1")
    engine.step()
    src.write_bytes(engine_bytes("v2"))
    os.utime(src, ns=(src.stat().st_atime_ns, src.stat().st_mtime_ns + 10**9))
    engine.step()
    jobs = [j for j in engine.jobs() if j.source_path == str(src)]
    assert len(jobs) == 2
    assert jobs[0].sha256 != jobs[1].sha256
    assert engine.dub_posts() == 2
    assert [j.state for j in jobs] == [JobState.DONE, JobState.DONE], [
        (j.state, j.last_error) for j in jobs
    ]
    newest = jobs[1]
    assert newest.project_id is not None
    for lang, path in video_outputs(engine, src).items():
        assert path.read_bytes() == engine.sim.expected_output(newest.project_id, lang)


def test_daily_job_limit_holds_the_rest_back(engine: Engine) -> None:
    """max_jobs_per_day 1: one done, the other waits (not failed); status shows "budget"."""
    engine.settings["limits"] = {"max_jobs_per_day": 1}
    engine.put("a.mp4")
    engine.put("b.mp4")
    seen: dict[str, Any] = {}

    def watch_status(daemon: Daemon) -> None:
        if "status" in seen or not daemon.pauses.get("budget"):
            return
        daemon.beat(force=True)
        seen["status"] = ledgerviews.status_data(daemon.ledger)  # what `status --json` prints

    result = engine.run(on_tick=watch_status, speed=1)  # daily limits count wall-clock days
    assert result.exit_code == 0
    assert engine.dub_posts() == 1
    jobs = engine.jobs()
    states = sorted(j.state for j in jobs)
    assert states == sorted([JobState.DONE, JobState.UPLOADED])
    waiting = next(j for j in jobs if j.state is JobState.UPLOADED)
    assert waiting.last_error is not None and "daily job limit" in waiting.last_error
    assert "status" in seen, "the budget pause never showed while the daemon ran"
    assert "budget" in seen["status"]["paused"]
    assert "daily job limit" in seen["status"]["paused"]["budget"]


def test_bad_file_fails_alone_and_moves_with_reason(stepped_engine: Engine) -> None:
    """A non-video .mp4 fails with a content reason and no API call; others finish."""
    engine = stepped_engine
    failed_dir = engine.base / "failed"
    engine.watch["on_failure"] = {"move": str(failed_dir)}
    bad = engine.input / "bad.mp4"
    bad.write_bytes(b"this is a text file, not a video\n" * 200)
    good = engine.put("good.mp4")
    engine.step()
    bad_job, good_job = engine.job_for(bad), engine.job_for(good)
    assert bad_job.state is JobState.FAILED
    assert bad_job.asset_id is None and bad_job.project_id is None
    assert bad_job.last_error is not None and "video" in bad_job.last_error.lower()
    assert good_job.state is JobState.DONE
    assert engine.sim.count("POST /v2/assets") == 1
    assert engine.dub_posts() == 1
    assert not bad.exists()
    reason = json.loads((failed_dir / "bad.mp4.reason.json").read_text())
    assert reason["error"] == bad_job.last_error
    assert (failed_dir / "bad.mp4").read_bytes().startswith(b"this is a text file")


def test_on_success_delete_after_outputs_written(stepped_engine: Engine) -> None:
    """on_success delete removes the source only once every output is on disk."""
    engine = stepped_engine
    src = engine.put("a.mp4")
    engine.step(on_success="delete")
    engine.assert_all_done()
    assert not src.exists()
    assert all(p.stat().st_size > 0 for p in video_outputs(engine, src).values())


def test_on_success_move_keeps_subfolders(stepped_engine: Engine) -> None:
    """on_success move puts the source under the target folder with its subfolder."""
    engine = stepped_engine
    done_dir = engine.base / "done"
    src = engine.put("sub/a.mp4", seed="a")
    engine.step(on_success={"move": str(done_dir)})
    engine.assert_all_done()
    assert not src.exists()
    assert (done_dir / "sub" / "a.mp4").read_bytes() == engine_bytes("a")


def test_on_success_never_runs_for_a_partial_job(stepped_engine: Engine) -> None:
    """A language failing at Synthesia leaves the job partial and the source in place."""
    engine = stepped_engine
    engine.sim.faults.add("POST /v2/dubbing", "language_error", count=1, language="es-ES")
    src = engine.put("a.mp4")
    engine.step(on_success="delete")
    job = engine.job_for(src)
    assert job.state is JobState.PARTIAL
    assert src.exists()
    states = {o.language: o.state for o in engine.outputs(job)}
    assert states == {"fr-FR": OutputState.DONE, "es-ES": OutputState.FAILED}


def test_on_success_never_touches_a_source_with_missing_outputs(engine: Engine) -> None:
    """A done job whose output vanished: on_success delete leaves the source and notes why."""
    src = engine.put("a.mp4")
    config = engine.config(on_success="delete")
    outs = video_outputs(engine, src)
    outs["fr-FR"].write_bytes(b"dubbed")  # es-ES is missing
    with engine.ledger() as ledger:
        job = ledger.add_job(
            watch="drop",
            source_path=str(src),
            size=src.stat().st_size,
            mtime_ns=src.stat().st_mtime_ns,
            sha256="0" * 64,
            source_language="en",
            targets=list(TARGETS),
            output_dir=str(engine.output),
            settings=job_settings(config.watches[0]),
            state=JobState.DONE,
        )
        for lang, path in outs.items():
            ledger.set_output(job.id, lang, state=OutputState.DONE, path=str(path))
        pipeline = Pipeline(
            ledger=ledger, config=config, client=None, uploader=None, stop=threading.Event()
        )
        pipeline._after_done(ledger.get(job.id))
        whys = [e.why for e in ledger.events(job.id)]
    assert src.exists()
    assert any("on_success delete skipped" in w and "missing" in w for w in whys), whys


def test_outputs_beside_sources_are_not_new_jobs(engine: Engine) -> None:
    """output == input: our own outputs are never picked up as new sources."""
    src = engine.put("a.mp4")
    engine.run(output=str(engine.input))
    assert (engine.input / "a.dubbed-fr-FR.mp4").is_file()
    before = len(engine.work_requests())
    engine.run(output=str(engine.input))
    assert [j.source_path for j in engine.jobs()] == [str(src)]
    assert len(engine.work_requests()) == before


def test_a_twin_of_a_job_that_may_be_paid_waits_for_a_human(engine: Engine) -> None:
    """An identical file while the first job's submit is ambiguous (maybe paid): the twin
    never pays again; it needs attention, names the job, and reuses once that one is done."""
    engine.sim.faults.add("POST /v2/dubbing", "drop_after", count=1)
    first = engine.put("a.mp4", seed="same")
    engine.run()
    a_job = engine.job_for(first)
    assert a_job.state is JobState.NEEDS_ATTENTION, a_job.last_error
    second = engine.put("b.mp4", seed="same")
    engine.run()
    assert engine.dub_posts() == 1
    b_job = engine.job_for(second)
    assert (b_job.state, b_job.reason_code) == (
        JobState.NEEDS_ATTENTION,
        Reason.TWIN_NEEDS_ATTENTION.value,
    )
    assert f"job #{a_job.id}" in (b_job.last_error or "")
    with engine.ledger() as ledger:
        lifecycle.resubmit(ledger, ledger.get(a_job.id))
    engine.run()
    assert engine.job_for(first).state is JobState.DONE
    with engine.ledger() as ledger:
        lifecycle.retry(ledger, ledger.get(b_job.id))
    engine.run()
    assert engine.job_for(second).state is JobState.DONE
    assert engine.dub_posts() == 2  # the confirmed resubmit; the twin reused its outputs
