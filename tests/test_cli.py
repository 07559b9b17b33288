"""The `synthesia-watchd` commands through `cli.main(argv)`, over real ledgers and the sim."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from enginefixtures import Engine

from synthesia_watchd.domain.states import JobState
from synthesia_watchd.service import cli
from synthesia_watchd.stores.ledger import Ledger
from synthesia_watchd.telemetry.metrics import Heartbeat

Capsys = pytest.CaptureFixture[str]


@pytest.fixture
def keyed(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """The engine, with the sim's key in the environment as an operator would set it."""
    monkeypatch.setenv("SYNTHESIA_API_KEY", engine.sim.api_key)
    return engine


def run_cli(capsys: Capsys, *argv: str) -> tuple[int, str, str]:
    """main(argv) -> (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --- check-config ----------------------------------------------------------------------------


def test_check_config_valid_key_masked_and_accepted(keyed: Engine, capsys: Capsys) -> None:
    """A valid config with the key from the env: exit 0, key shown as ***, sim accepts it."""
    cfg = keyed.write_config()
    code, out, err = run_cli(capsys, "check-config", "-c", str(cfg))
    assert code == 0, err
    assert f"{cfg}: valid" in out
    assert "***" in out and keyed.sim.api_key not in out + err
    assert f"API key from env SYNTHESIA_API_KEY: accepted by {keyed.sim.url}" in out
    assert keyed.sim.count("POST /v2/assets") == 0


def test_check_config_wrong_key_exits_3(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, capsys: Capsys
) -> None:
    """A key Synthesia refuses: exit 3, the key itself never printed."""
    monkeypatch.setenv("SYNTHESIA_API_KEY", "sk-wrong-key-123456")
    code, out, err = run_cli(capsys, "check-config", "-c", str(engine.write_config()))
    assert code == 3
    assert "API key problem" in err
    assert "sk-wrong-key-123456" not in out + err


def test_check_config_bad_yaml_names_file_and_line(tmp_path: Path, capsys: Capsys) -> None:
    """Broken YAML: exit 2, the message points at file:line."""
    cfg = tmp_path / "config.yaml"
    cfg.write_text("watches:\n  - name: a\n    input: in\n    targets: [fr-FR\n")
    code, _, err = run_cli(capsys, "check-config", "-c", str(cfg))
    assert code == 2
    assert f"{cfg}:5: invalid YAML" in err


def test_check_config_unknown_key_suggests(tmp_path: Path, capsys: Capsys) -> None:
    """A typo: exit 2 with file:line, key path and the closest known key."""
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        "watches:\n  - name: a\n    input: in\n    targets: [fr-FR]\n    lipsinc: true\n"
    )
    code, _, err = run_cli(capsys, "check-config", "-c", str(cfg))
    assert code == 2
    assert f"{cfg}:5: watches[0].lipsinc: unknown key (did you mean 'lipsync'?)" in err


# --- status, jobs, show ----------------------------------------------------------------------


@pytest.fixture
def mixed(keyed: Engine) -> Engine:
    """A ledger with one done job and one failed (non-video) job."""
    keyed.put("good.mp4")
    (keyed.input / "bad.mp4").write_bytes(b"plain text, not a video\n" * 50)
    keyed.run()
    return keyed


def test_status_text_and_json(mixed: Engine, capsys: Capsys) -> None:
    """status: not running, counts per state; --json carries the same numbers."""
    ledger = str(mixed.ledger_path)
    code, out, _ = run_cli(capsys, "status", "--ledger", ledger)
    assert code == 0
    assert "daemon: not running" in out
    assert "jobs: done 1, failed 1" in out
    code, out, _ = run_cli(capsys, "status", "--json", "--ledger", ledger)
    data = json.loads(out)
    assert code == 0
    assert data["counts"]["done"] == 1 and data["counts"]["failed"] == 1
    assert data["daemon"]["running"] is False and data["active"] == []


def test_jobs_lists_newest_first_and_filters(mixed: Engine, capsys: Capsys) -> None:
    """jobs: one line per job; --state filters; --json is a list of job records."""
    ledger = str(mixed.ledger_path)
    code, out, _ = run_cli(capsys, "jobs", "--ledger", ledger)
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 2
    assert all(" drop: " in line for line in lines)
    code, out, _ = run_cli(capsys, "jobs", "--state", "failed", "--json", "--ledger", ledger)
    records = json.loads(out)
    assert [(Path(r["source"]).name, r["state"]) for r in records] == [("bad.mp4", "failed")]
    assert "not a" in records[0]["last_error"].lower()


def test_show_prints_outputs_and_history(mixed: Engine, capsys: Capsys) -> None:
    """show: the job, its outputs and the history of its transitions."""
    good = mixed.job_for(mixed.input / "good.mp4")
    code, out, _ = run_cli(capsys, "show", str(good.id), "--ledger", str(mixed.ledger_path))
    assert code == 0
    assert out.startswith(f"job #{good.id}: done")
    assert "good.dubbed-fr-FR.mp4" in out and "good.dubbed-es-ES.mp4" in out
    history = out.split("history:")[1]
    for step in ("queued -> asset_created", "uploaded -> dubbing", "downloading -> done"):
        assert step in history
    code, out, _ = run_cli(
        capsys, "show", str(good.id), "--json", "--ledger", str(mixed.ledger_path)
    )
    data = json.loads(out)
    assert [e["to"] for e in data["events"]][-1] == "done"
    code, _, err = run_cli(capsys, "show", "999", "--ledger", str(mixed.ledger_path))
    assert code == 1 and "no job #999" in err


# --- retry and cancel ------------------------------------------------------------------------


def test_retry_failed_job_runs_again(keyed: Engine, capsys: Capsys) -> None:
    """A job failed at Synthesia is queued again by retry and then finishes."""
    keyed.sim.faults.add("POST /v2/assets", "asset_error", count=1, error_code="asset_upload")
    src = keyed.put("a.mp4")
    keyed.run()
    job = keyed.job_for(src)
    assert job.state is JobState.FAILED
    code, out, _ = run_cli(capsys, "retry", str(job.id), "--ledger", str(keyed.ledger_path))
    assert code == 0 and f"job #{job.id}: queued again" in out
    keyed.run()
    assert keyed.job_for(src).state is JobState.DONE
    assert len(keyed.jobs()) == 1


def test_retry_partial_job_queues_failed_languages(keyed: Engine, capsys: Capsys) -> None:
    """A partial job: only its failed language is queued as a new job, and only that is paid."""
    keyed.sim.faults.add("POST /v2/dubbing", "language_error", count=1, language="es-ES")
    src = keyed.put("a.mp4")
    keyed.run()
    first = keyed.job_for(src)
    assert first.state is JobState.PARTIAL
    code, out, _ = run_cli(capsys, "retry", str(first.id), "--ledger", str(keyed.ledger_path))
    assert code == 0
    assert f"job #{first.id}: failed languages es-ES queued as job #" in out
    keyed.run()
    second = keyed.job_for(src)
    assert second.id != first.id and second.state is JobState.DONE
    assert list(second.targets) == ["es-ES"]
    assert second.project_id is not None
    assert keyed.sim.projects[second.project_id].target_languages == ["es-ES"]
    spanish = keyed.output / "a.dubbed-es-ES.mp4"
    assert spanish.read_bytes() == keyed.sim.expected_output(second.project_id, "es-ES")


def test_retry_of_ambiguous_submit_needs_resubmit(keyed: Engine, capsys: Capsys) -> None:
    """A submit whose answer was lost: retry refuses without --resubmit, pays again with it."""
    keyed.sim.faults.add("POST /v2/dubbing", "drop_after", count=1)
    src = keyed.put("a.mp4")
    keyed.run()
    job = keyed.job_for(src)
    assert job.state is JobState.NEEDS_ATTENTION, job.last_error
    assert keyed.dub_posts() == 1
    ledger = str(keyed.ledger_path)
    code, _, err = run_cli(capsys, "retry", str(job.id), "--ledger", ledger)
    assert code == 1 and "--resubmit" in err
    assert keyed.job_for(src).state is JobState.NEEDS_ATTENTION
    code, out, _ = run_cli(capsys, "retry", str(job.id), "--resubmit", "--ledger", ledger)
    assert code == 0 and "will be submitted again" in out
    keyed.run()
    assert keyed.job_for(src).state is JobState.DONE
    assert keyed.dub_posts() == 2
    assert keyed.sim.count("POST /v2/assets") == 1


def test_cancel_active_job_and_refuse_finished(keyed: Engine, capsys: Capsys) -> None:
    """cancel: an active job ends cancelled (exit 0); a finished one is refused (exit 1)."""
    with Ledger(keyed.ledger_path) as ledger:
        queued = ledger.add_job(
            watch="drop",
            source_path=str(keyed.input / "a.mp4"),
            size=1,
            mtime_ns=1,
            sha256=None,
            source_language="en",
            targets=["fr-FR"],
            output_dir=str(keyed.output),
        )
    path = str(keyed.ledger_path)
    code, out, _ = run_cli(capsys, "cancel", str(queued.id), "--ledger", path)
    assert code == 0 and f"job #{queued.id}: cancelled" in out
    assert keyed.jobs()[0].state is JobState.CANCELLED
    code, _, err = run_cli(capsys, "cancel", str(queued.id), "--ledger", path)
    assert code == 1 and "already cancelled" in err


# --- health ----------------------------------------------------------------------------------


def test_health_fresh_stale_and_missing(engine: Engine, capsys: Capsys) -> None:
    """health: 0 with a fresh heartbeat, 1 when it is stale or missing."""
    cfg = str(engine.write_config())
    beat = engine.state_dir / "heartbeat"
    code, _, err = run_cli(capsys, "health", "-c", cfg)
    assert code == 1 and "no heartbeat file" in err
    engine.state_dir.mkdir(parents=True, exist_ok=True)
    Heartbeat(beat).beat()
    code, out, _ = run_cli(capsys, "health", "-c", cfg)
    assert code == 0 and out.startswith("ok:")
    Heartbeat(beat, now=lambda: time.time() - 600).beat()
    code, _, err = run_cli(capsys, "health", "-c", cfg, "--max-age", "60")
    assert code == 1 and "stale" in err


def test_health_during_a_real_run(engine: Engine, capsys: Capsys) -> None:
    """The heartbeat the daemon itself writes satisfies health while it runs."""
    cfg = str(engine.write_config())
    seen: list[int] = []
    engine.run(speed=1, on_tick=lambda d: seen.append(cli.main(["health", "-c", cfg])))
    assert seen and seen[0] == 0
    assert "ok: last heartbeat" in capsys.readouterr().out


# --- dub and help ----------------------------------------------------------------------------


def test_dub_file_then_again_for_free(keyed: Engine, capsys: Capsys) -> None:
    """dub PATH --targets: exit 0 with outputs listed; the same file again costs nothing."""
    src = keyed.put("talk.mp4")
    cfg = str(keyed.write_config())
    code, out, err = run_cli(capsys, "dub", str(src), "--targets", "de-DE", "-c", cfg)
    assert code == 0, out + err
    written = keyed.input / "talk.dubbed-de-DE.mp4"
    assert str(written) in out
    assert written.is_file()
    before = len(keyed.work_requests())
    code, out, err = run_cli(capsys, "dub", str(src), "--targets", "de-DE", "-c", cfg)
    assert code == 0, out + err
    assert str(written) in out
    assert len(keyed.work_requests()) == before


def test_dub_keeps_the_configs_daily_limit_and_options(keyed: Engine, capsys: Capsys) -> None:
    """dub -c CONFIG: the config's max_jobs_per_day and watch options apply to the one-shot."""
    keyed.settings["limits"] = {"max_jobs_per_day": 1}
    cfg = str(keyed.write_config(targets=["fr-FR"], title="{watch}/{stem}"))
    a, b = keyed.put("a.mp4"), keyed.put("b.mp4")
    code, out, err = run_cli(capsys, "dub", str(a), str(b), "-c", cfg)
    assert code == 1, out + err
    assert keyed.dub_posts() == 1
    assert "daily job limit" in out
    (project,) = keyed.sim.projects.values()
    assert project.target_languages == ["fr-FR"]
    assert project.title.startswith("dub/")


def test_help_lists_every_command(capsys: Capsys) -> None:
    """--help names every subcommand an operator can run."""
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    commands = "run check-config status jobs show retry cancel health dub demo backfill simulator"
    for name in commands.split():
        assert name in out, name
    assert "Exit codes" in out


def test_the_command_line_starts_without_the_heavy_libraries() -> None:
    """`status`, `--version` and the other quick commands start fast: importing the CLI loads
    neither the HTTP client, the AWS SDK nor a database driver (each command loads its own)."""
    import subprocess
    import sys

    probe = (
        "import sys; import synthesia_watchd.service.cli; "
        "print(sorted(m for m in ('requests', 'boto3', 'psycopg', 'watchdog') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
