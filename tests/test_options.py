"""Options beyond the classic script: outputs, auto language, project options, backfill, dry run."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from enginefixtures import Engine

from synthesia_watchd.domain.states import JobState, OutputState
from synthesia_watchd.service import cli, ledgerviews
from synthesia_watchd.service.daemon import Daemon


def only_project(engine: Engine) -> Any:
    """The one dubbing project the simulator holds."""
    projects = list(engine.sim.projects.values())
    assert len(projects) == 1, projects
    return projects[0]


# --- outputs: captions and thumbnail ---------------------------------------------------------


def test_captions_and_thumbnail_written_beside_the_video(stepped_engine: Engine) -> None:
    """outputs [video, captions, thumbnail]: .mp4, .vtt, .srt and .jpg per language."""
    engine = stepped_engine
    src = engine.put("clip.mp4")
    engine.step(outputs=["video", "captions", "thumbnail"], targets=["fr-FR"])
    engine.assert_all_done()
    job = engine.job_for(src)
    assert job.project_id is not None
    service = engine.sim.service
    for ext, kind in (("mp4", "video"), ("vtt", "vtt"), ("srt", "srt"), ("jpg", "image")):
        path = engine.output / f"clip.dubbed-fr-FR.{ext}"
        assert path.read_bytes() == service.output_bytes(job.project_id, "fr-FR", kind), ext
    kinds = {(o.kind, o.state) for o in engine.outputs(job)}
    assert kinds == {(k, OutputState.DONE) for k in ("video", "vtt", "srt", "thumbnail")}


def test_expired_caption_url_is_refreshed(stepped_engine: Engine) -> None:
    """A caption download answered 'expired' is fetched again with a fresh URL and written."""
    engine = stepped_engine
    engine.sim.faults.add("DOWNLOAD", "expired_url", count=1)
    src = engine.put("clip.mp4")
    engine.step(outputs=["captions"], targets=["fr-FR"])
    engine.assert_all_done()
    expired = [r for r in engine.sim.requests if r.fault == "expired_url"]
    assert len(expired) == 1 and expired[0].path.endswith((".srt", ".vtt"))
    job = engine.job_for(src)
    assert job.project_id is not None
    for ext in ("srt", "vtt"):
        want = engine.sim.service.output_bytes(job.project_id, "fr-FR", ext)
        assert (engine.output / f"clip.dubbed-fr-FR.{ext}").read_bytes() == want


# --- source_language: auto -------------------------------------------------------------------


def test_auto_language_detected_recorded_and_submitted(
    engine_factory: Callable[..., Engine], capsys: pytest.CaptureFixture[str]
) -> None:
    """auto: asset asks for detection, the job records it, status shows it, the submit uses it."""
    engine = engine_factory(detected_language="de", dub_seconds=1.0)
    src = engine.put("clip.mp4")
    shown: list[dict[str, Any]] = []

    def status(daemon: Daemon) -> None:
        if not shown:  # status_data is exactly what `status --json` prints
            active = ledgerviews.status_data(daemon.ledger)["active"]
            shown.extend(a for a in active if a["detected_language"])

    engine.run(source_language="auto", on_tick=status)
    engine.assert_all_done()
    job = engine.job_for(src)
    assert job.detected_language == "de"
    assert job.asset_id is not None and engine.sim.assets[job.asset_id].detect_language
    assert only_project(engine).source_language == "de"
    assert shown and shown[0]["detected_language"] == "de"
    capsys.readouterr()
    assert cli.main(["show", str(job.id), "--ledger", str(engine.ledger_path)]) == 0
    assert "detected_language: de" in capsys.readouterr().out


def test_language_detection_failure_fails_the_job(stepped_engine: Engine) -> None:
    """The asset ends in error language_detect: failed with that code, nothing submitted."""
    engine = stepped_engine
    engine.sim.faults.add("POST /v2/assets", "asset_error", count=1, error_code="language_detect")
    src = engine.put("clip.mp4")
    engine.step(source_language="auto")
    job = engine.job_for(src)
    assert job.state is JobState.FAILED
    assert job.last_error is not None and "language_detect" in job.last_error
    assert engine.dub_posts() == 0


def test_undetermined_language_fails_with_a_clear_reason(
    engine_factory: Callable[..., Engine],
) -> None:
    """Synthesia detects "und": failed, telling the operator to set source_language."""
    engine = engine_factory(detected_language="und")
    src = engine.put("clip.mp4")
    engine.run(source_language="auto")
    job = engine.job_for(src)
    assert job.state is JobState.FAILED
    assert job.last_error is not None
    assert "und" in job.last_error and "source_language" in job.last_error
    assert engine.dub_posts() == 0


# --- options sent with POST /v2/dubbing ------------------------------------------------------


def test_project_options_reach_the_dubbing_request(stepped_engine: Engine) -> None:
    """lipsync, video_duration, visibility and the title template arrive at Synthesia."""
    engine = stepped_engine
    engine.put("clip.mp4")
    engine.step(
        lipsync=True,
        video_duration="original",
        visibility="public",
        title="{watch}: {stem} ({lang_list})",
    )
    project = only_project(engine)
    assert project.lipsync_enabled is True
    assert project.video_duration == "original"
    assert project.visibility == "public"
    assert project.title == "drop: clip (fr-FR, es-ES)"


def test_default_options_leave_synthesia_defaults(stepped_engine: Engine) -> None:
    """Unset options: no lipsync, adaptive, private, title = stem; a named language as is."""
    engine = stepped_engine
    src = engine.put("clip.mp4")
    engine.step(source_language="en")
    job = engine.job_for(src)
    assert job.asset_id is not None and not engine.sim.assets[job.asset_id].detect_language
    project = only_project(engine)
    assert project.source_language == "en"
    assert (project.lipsync_enabled, project.video_duration, project.visibility) == (
        False,
        "adaptive",
        "private",
    )
    assert project.title == "clip"


def test_long_title_is_capped_at_256(stepped_engine: Engine) -> None:
    """A template that renders past 256 characters is cut, not refused by Synthesia."""
    engine = stepped_engine
    stem = "x" * 100
    engine.put(f"{stem}.mp4")
    engine.step(title="{stem} / {name} / {stem} / {watch} / {lang_list}")
    engine.assert_all_done()
    full = f"{stem} / {stem}.mp4 / {stem} / drop / fr-FR, es-ES"
    assert len(full) > 256
    assert only_project(engine).title == full[:256]


def test_name_too_long_for_its_outputs_fails_before_paying(stepped_engine: Engine) -> None:
    """A source whose output names would not fit on disk fails at intake, with no API call."""
    engine = stepped_engine
    src = engine.put("x" * 236 + ".mp4")
    engine.step()
    job = engine.job_for(src)
    assert job.state is JobState.FAILED
    assert job.last_error is not None and "file name too long" in job.last_error
    assert engine.work_requests() == []


# --- backfill of new targets -----------------------------------------------------------------


@pytest.fixture
def done_in_french(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """One file done into fr-FR only; the CLI sees the sim's key in its environment."""
    monkeypatch.setenv("SYNTHESIA_API_KEY", engine.sim.api_key)
    engine.put("clip.mp4")
    engine.run(targets=["fr-FR"])
    engine.assert_all_done()
    return engine


def test_backfill_dry_run_shows_and_sends_nothing(
    done_in_french: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    """backfill --dry-run lists the language it would add and makes no request."""
    engine = done_in_french
    cfg = engine.write_config(targets=["fr-FR", "es-ES"])
    before = len(engine.work_requests())
    capsys.readouterr()
    assert cli.main(["backfill", "--watch", "drop", "--dry-run", "-c", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "clip.mp4: + es-ES" in out
    assert "would add 1 dubbed language(s) to 1 existing project(s)" in out
    assert len(engine.work_requests()) == before
    assert engine.jobs()[0].state is JobState.DONE


def test_backfill_adds_only_the_new_language(
    done_in_french: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    """backfill: one PUT (202), no new asset or project, only es-ES downloaded, done again."""
    engine = done_in_french
    cfg = engine.write_config(targets=["fr-FR", "es-ES"])
    french = (engine.output / "clip.dubbed-fr-FR.mp4").stat()
    counts = {e: engine.sim.count(e) for e in ("POST /v2/assets", "POST /v2/dubbing", "DOWNLOAD")}
    capsys.readouterr()
    assert cli.main(["backfill", "--watch", "drop", "-c", str(cfg)]) == 0
    assert "1 language(s) added (202)" in capsys.readouterr().out
    assert [r.status for r in engine.sim.requests if r.endpoint == "PUT /v2/dubbing/{id}"] == [202]
    engine.run(targets=["fr-FR", "es-ES"])
    engine.assert_all_done()
    assert engine.sim.count("POST /v2/assets") == counts["POST /v2/assets"]
    assert engine.sim.count("POST /v2/dubbing") == counts["POST /v2/dubbing"]
    assert engine.sim.count("DOWNLOAD") == counts["DOWNLOAD"] + 1
    job = engine.jobs()[0]
    assert len(engine.jobs()) == 1 and sorted(job.targets) == ["es-ES", "fr-FR"]
    assert job.project_id is not None
    spanish = engine.output / "clip.dubbed-es-ES.mp4"
    assert spanish.read_bytes() == engine.sim.expected_output(job.project_id, "es-ES")
    assert (engine.output / "clip.dubbed-fr-FR.mp4").stat().st_ino == french.st_ino


def test_backfill_of_a_locale_synthesia_already_has(
    done_in_french: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    """The PUT answers 204 (es-ES already on the project): the language is still fetched."""
    engine = done_in_french
    job = engine.jobs()[0]
    assert job.project_id is not None
    engine.sim.service.add_locales(job.project_id, {"targetLanguages": ["es-ES"]})
    cfg = engine.write_config(targets=["fr-FR", "es-ES"])
    capsys.readouterr()
    assert cli.main(["backfill", "--watch", "drop", "-c", str(cfg)]) == 0
    assert "nothing to add (204)" in capsys.readouterr().out
    assert [r.status for r in engine.sim.requests if r.endpoint == "PUT /v2/dubbing/{id}"] == [204]
    engine.run(targets=["fr-FR", "es-ES"])
    engine.assert_all_done()
    spanish = engine.output / "clip.dubbed-es-ES.mp4"
    assert spanish.read_bytes() == engine.sim.expected_output(job.project_id, "es-ES")


def test_backfill_new_targets_runs_at_daemon_start(done_in_french: Engine) -> None:
    """backfill_new_targets: true adds the new language at start, without a new project."""
    engine = done_in_french
    engine.run(targets=["fr-FR", "es-ES"], backfill_new_targets=True)
    engine.assert_all_done()
    assert engine.sim.count("PUT /v2/dubbing/{id}") == 1
    assert engine.sim.count("POST /v2/dubbing") == 1
    assert (engine.output / "clip.dubbed-es-ES.mp4").is_file()
    before = len(engine.work_requests())
    engine.run(targets=["fr-FR", "es-ES"], backfill_new_targets=True)
    assert len(engine.work_requests()) == before


# --- dry run ---------------------------------------------------------------------------------


def test_run_dry_run_reports_and_sends_nothing(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """run --dry-run: what would be billed, zero requests, no ledger written."""
    monkeypatch.setenv("SYNTHESIA_API_KEY", engine.sim.api_key)
    engine.put("a.mp4")
    engine.put("sub/b.mp4")
    (engine.input / "bad.mp4").write_bytes(b"not a video at all\n" * 100)
    _age(*engine.input.rglob("*.mp4"))
    cfg = engine.write_config()
    capsys.readouterr()
    assert cli.main(["run", "--dry-run", "-c", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "would create 2 dubbing project(s), 4 dubbed language(s)" in out
    assert "1 rejected" in out
    assert engine.work_requests() == []
    assert not engine.ledger_path.exists()


def test_dry_run_knows_done_and_reusable_work(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """After a run: done files and identical copies are free; the ledger is left as it was."""
    monkeypatch.setenv("SYNTHESIA_API_KEY", engine.sim.api_key)
    engine.put("a.mp4", seed="a")
    engine.run()
    _age(engine.put("copy.mp4", seed="a"), engine.put("new.mp4"))
    cfg = engine.write_config()
    before = len(engine.work_requests())
    ledger_bytes = engine.ledger_path.read_bytes()
    capsys.readouterr()
    assert cli.main(["run", "--dry-run", "-c", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "would create 1 dubbing project(s)" in out and "1 reused free" in out
    assert len(engine.work_requests()) == before
    assert len(engine.jobs()) == 1
    assert engine.ledger_path.read_bytes() == ledger_bytes


def test_dub_dry_run_sends_nothing(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """dub PATH --dry-run: the plan for that file, zero requests, no ledger."""
    monkeypatch.setenv("SYNTHESIA_API_KEY", engine.sim.api_key)
    src = engine.put("a.mp4")
    cfg = engine.write_config()
    capsys.readouterr()
    code = cli.main(["dub", str(src), "--targets", "fr-FR,de-DE", "--dry-run", "-c", str(cfg)])
    assert code == 0
    out = capsys.readouterr().out
    assert "would create 1 dubbing project(s), 2 dubbed language(s)" in out
    assert engine.work_requests() == []
    assert not engine.ledger_path.exists()


def _age(*paths: Path) -> None:
    """Backdate files so the dry run does not see them as still settling."""
    old = time.time() - 60
    for p in paths:
        os.utime(p, (old, old))


def test_backfill_command_waits_for_a_node_backfilling_now(
    done_in_french: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    """backfill while a daemon holds the backfill lease (its start-up backfill): refused,
    naming that node, nothing sent; once free it runs and gives the lease back."""
    engine = done_in_french
    cfg = engine.write_config(targets=["fr-FR", "es-ES"])
    now = time.time()
    with engine.ledger() as ledger:
        assert ledger.take_runner("backfill", "nas-9", now, now + 600) is None
    capsys.readouterr()
    assert cli.main(["backfill", "--watch", "drop", "-c", str(cfg)]) == 1
    assert "nas-9" in capsys.readouterr().err
    assert engine.sim.count("PUT /v2/dubbing/{id}") == 0
    with engine.ledger() as ledger:
        ledger.drop_runner("backfill", "nas-9")
    assert cli.main(["backfill", "--watch", "drop", "-c", str(cfg)]) == 0
    assert engine.sim.count("PUT /v2/dubbing/{id}") == 1
    with engine.ledger() as ledger:
        assert ledger.take_runner("backfill", "nas-9", now, now + 600) is None
