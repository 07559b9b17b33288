"""What a new operator trips on: commands without -c, health after a stop, hints, retry, dub."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from e2efixtures import DaemonProcess
from enginefixtures import Engine

from synthesia_watchd.domain.states import JobState
from synthesia_watchd.service import cli
from synthesia_watchd.service.cli import locate
from synthesia_watchd.simulator import Simulator
from synthesia_watchd.stores.ledger import Job

Capsys = pytest.CaptureFixture[str]


def run_cli(capsys: Capsys, *argv: str) -> tuple[int, str, str]:
    """main(argv) -> (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def no_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No config anywhere (no -c, no env, no /etc file); the default state folder is empty."""
    monkeypatch.delenv("SYNTHESIA_WATCHD_CONFIG", raising=False)
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    monkeypatch.setattr(locate, "DEFAULT_CONFIG_PATHS", ())
    state_home = tmp_path / "xdg-state"
    monkeypatch.setenv("XDG_STATE_HOME", str(state_home))
    return state_home / "synthesia-watchd"


# --- 1: read-only commands without -c --------------------------------------------------------


@pytest.mark.parametrize("command", ["status", "jobs", "health"])
def test_without_config_or_daemon_exit_2_and_create_nothing(
    command: str, no_config: Path, capsys: Capsys
) -> None:
    """No config and no running daemon: exit 2 naming -c, and no ledger is created."""
    code, _, err = run_cli(capsys, command)
    assert code == 2, err
    assert "-c CONFIG" in err
    assert not no_config.exists()


def test_without_config_a_dub_ledger_in_the_default_folder_is_used_and_named(
    no_config: Path, keyed: Engine, capsys: Capsys
) -> None:
    """No config, no daemon, but `dub` left a ledger in the default state folder: jobs shows
    it and says which ledger it is on stderr."""
    src = keyed.put("talk.mp4")
    cfg = keyed.base / "sim-only.yaml"  # no state_dir: dub's ledger is the default one
    cfg.write_text(yaml.safe_dump({"synthesia": {"api_url": keyed.sim.url}}))
    code, out, err = run_cli(capsys, "dub", str(src), "-t", "de-DE", "-c", str(cfg))
    assert code == 0, out + err
    code, out, err = run_cli(capsys, "jobs")
    assert code == 0 and "talk.mp4" in out
    assert f"using {no_config / 'ledger.sqlite3'}" in err


def test_status_with_config_never_creates_the_ledger(engine: Engine, capsys: Capsys) -> None:
    """status -c on a config whose daemon never ran: says so, and creates no ledger."""
    code, _, err = run_cli(capsys, "status", "-c", str(engine.write_config()))
    assert code == 1
    assert "no ledger" in err
    assert not engine.ledger_path.exists()


@pytest.mark.slow
def test_without_config_commands_find_the_running_daemon(
    daemon_factory: Callable[..., DaemonProcess],
    e2e_sim: Callable[..., Simulator],
    no_config: Path,
    capsys: Capsys,
) -> None:
    """status/jobs/health without -c answer for the daemon that runs (its runtime file)."""
    d = daemon_factory(e2e_sim()).start()
    d.wait_started()
    d.drop("a.mp4")
    d.wait_state(lambda jobs: bool(jobs) and jobs[0].state is JobState.DONE, what="job done")
    code, out, err = run_cli(capsys, "status")
    assert code == 0, err
    assert "daemon: running" in out and "done 1" in out
    code, out, _ = run_cli(capsys, "jobs")
    assert code == 0 and "a.mp4" in out
    code, out, _ = run_cli(capsys, "health")
    assert code == 0 and out.startswith("ok:")
    assert not no_config.exists()
    assert d.terminate() == 0
    code, _, err = run_cli(capsys, "status")
    assert code == 2 and "-c CONFIG" in err


# --- 4: health after a clean stop ------------------------------------------------------------


def test_health_fails_after_a_clean_stop(engine: Engine, capsys: Capsys) -> None:
    """health: ok while the daemon runs, exit 1 'stopped' right after it stopped cleanly."""
    cfg = str(engine.write_config())
    during: list[int] = []
    engine.run(speed=1, on_tick=lambda d: during.append(cli.main(["health", "-c", cfg])))
    assert during and during[-1] == 0
    code, _, err = run_cli(capsys, "health", "-c", cfg)
    assert code == 1, err
    assert "stopped" in err


# --- 5: language codes -----------------------------------------------------------------------


def test_language_suggestion_prefers_the_same_language(tmp_path: Path, capsys: Capsys) -> None:
    """it-IT is not a dubbing code: the hint is 'it' (same language), not 'ta-IN'."""
    cfg = tmp_path / "config.yaml"
    cfg.write_text("watches:\n  - name: a\n    input: in\n    targets: [it-IT]\n")
    code, _, err = run_cli(capsys, "check-config", "--offline", "-c", str(cfg))
    assert code == 2
    assert "did you mean 'it'" in err and "ta-IN" not in err


def test_languages_command_lists_codes_with_names(capsys: Capsys) -> None:
    """languages: target codes with their names; --source the spoken ones; --json for scripts."""
    code, out, _ = run_cli(capsys, "languages")
    assert code == 0
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "Italian" in lines["it"] and "French (France)" in lines["fr-FR"]
    code, out, _ = run_cli(capsys, "languages", "--source", "--json")
    data = json.loads(out)
    assert code == 0 and {"code": "auto", "name": "detect automatically"} in data


# --- 6: retry of a failed job whose source was moved -----------------------------------------


def _failed_and_moved(keyed: Engine) -> tuple[Path, Path, Job]:
    """A job failed at Synthesia whose source on_failure moved to failed/: (src, failed, job)."""
    failed = keyed.base / "failed"
    keyed.watch["on_failure"] = {"move": str(failed)}
    keyed.sim.faults.add("POST /v2/assets", "asset_error", count=1, error_code="asset_upload")
    src = keyed.put("a.mp4")
    keyed.run()
    job = keyed.job_for(src)
    assert job.state is JobState.FAILED and not src.exists()
    return src, failed, job


def test_retry_moves_a_failed_source_back(keyed: Engine, capsys: Capsys) -> None:
    """retry of a job whose on_failure moved the source: moved back, then dubbed to done."""
    src, failed, job = _failed_and_moved(keyed)
    assert (failed / "a.mp4").is_file()
    code, out, err = run_cli(capsys, "retry", str(job.id), "--ledger", str(keyed.ledger_path))
    assert code == 0, err
    assert f"job #{job.id}: queued again" in out and "source moved back from" in out
    assert src.is_file() and not (failed / "a.mp4").exists()
    assert not (failed / "a.mp4.reason.json").exists()
    keyed.run()
    assert keyed.job_for(src).state is JobState.DONE


def test_retry_says_where_the_source_is_when_it_cannot_move_it(
    keyed: Engine, capsys: Capsys
) -> None:
    """The original name is taken by another file: retry refuses and names both paths."""
    src, failed, job = _failed_and_moved(keyed)
    src.write_bytes(b"someone else's file")
    code, _, err = run_cli(capsys, "retry", str(job.id), "--ledger", str(keyed.ledger_path))
    assert code == 1
    assert str(failed / "a.mp4") in err and str(src) in err
    assert keyed.job_for(src).state is JobState.FAILED
    assert src.read_bytes() == b"someone else's file"


@pytest.fixture
def keyed(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """The engine, with the sim's key in the environment as an operator would set it."""
    monkeypatch.setenv("SYNTHESIA_API_KEY", engine.sim.api_key)
    return engine


# --- 7: dub ----------------------------------------------------------------------------------


def test_dub_missing_path_exits_2_with_a_message(tmp_path: Path, capsys: Capsys) -> None:
    """dub of a path that does not exist: exit 2 and the path named, no traceback."""
    code, _, err = run_cli(capsys, "dub", str(tmp_path / "nope.mp4"), "--targets", "fr-FR")
    assert code == 2
    assert "nope.mp4" in err and "Traceback" not in err


def test_dub_accepts_a_config_without_watches(keyed: Engine, capsys: Capsys) -> None:
    """dub -c with a config that has no watches (only where the ledger is): works."""
    cfg = keyed.base / "dub.yaml"
    data = keyed.data()
    del data["watches"]
    cfg.write_text(yaml.safe_dump(data))
    src = keyed.put("talk.mp4")
    code, out, err = run_cli(capsys, "dub", str(src), "--targets", "de-DE", "-c", str(cfg))
    assert code == 0, out + err
    assert (keyed.input / "talk.dubbed-de-DE.mp4").is_file()


def test_dub_bar_only_when_logs_do_not_share_the_terminal() -> None:
    """The bar is drawn on a terminal stderr only when the log lines go elsewhere."""
    from synthesia_watchd.service.oneshot import bar_wanted

    master, slave = os.openpty()
    try:
        with open(slave, "w", closefd=False) as tty, open(os.devnull, "w") as null:
            assert bar_wanted(stderr=tty, stdout=null)
            assert not bar_wanted(stderr=tty, stdout=tty)
            assert not bar_wanted(stderr=null, stdout=null)
    finally:
        os.close(master)
        os.close(slave)


# --- 8: smaller stumbles ---------------------------------------------------------------------


def test_backfill_unknown_watch_names_the_known_ones(keyed: Engine, capsys: Capsys) -> None:
    """backfill --watch gamma: exit 2 saying there is no such watch, listing the real ones."""
    code, _, err = run_cli(
        capsys, "backfill", "--watch", "gamma", "--dry-run", "-c", str(keyed.write_config())
    )
    assert code == 2
    assert "no watch named 'gamma'" in err and "drop" in err


def test_retry_failed_with_nothing_to_do_says_so(keyed: Engine, capsys: Capsys) -> None:
    """retry --failed on a ledger without failed jobs prints that there is nothing to retry."""
    keyed.put("a.mp4")
    keyed.run()
    code, out, _ = run_cli(capsys, "retry", "--failed", "--ledger", str(keyed.ledger_path))
    assert code == 0
    assert "nothing to retry" in out


def test_run_once_prints_a_summary(keyed: Engine, capsys: Capsys) -> None:
    """run --once ends with one summary line of what this run did."""
    keyed.put("a.mp4")
    (keyed.input / "bad.mp4").write_bytes(b"not a video\n" * 100)
    code, out, _ = run_cli(capsys, "run", "--once", "-c", str(keyed.write_config()))
    assert code == 1
    summary = out.strip().splitlines()[-1]
    assert summary.startswith("run --once:") and "1 done" in summary and "1 failed" in summary


def test_show_accepts_the_hash_form(keyed: Engine, capsys: Capsys) -> None:
    """show '#N' (as `jobs` prints ids) works like show N."""
    keyed.put("a.mp4")
    keyed.run()
    job = keyed.jobs()[0]
    code, out, err = run_cli(capsys, "show", f"#{job.id}", "--ledger", str(keyed.ledger_path))
    assert code == 0, err
    assert out.startswith(f"job #{job.id}: done")


def test_check_config_without_key_exits_3_unless_offline(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, capsys: Capsys
) -> None:
    """No key found: exit 3 as the README's table says; --offline does not test it: 0."""
    monkeypatch.delenv("SYNTHESIA_API_KEY", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    cfg = str(engine.write_config())
    code, out, _ = run_cli(capsys, "check-config", "-c", cfg)
    assert code == 3
    assert "no API key found" in out
    code, _, _ = run_cli(capsys, "check-config", "--offline", "-c", cfg)
    assert code == 0


def test_simulator_help_describes_every_option(capsys: Capsys) -> None:
    """simulator --help: each option has a description."""
    with pytest.raises(SystemExit):
        cli.main(["simulator", "--help"])
    out = capsys.readouterr().out.split("options:", 1)[1]
    for option, words in (("--port", "API port"), ("--s3-port", "S3"), ("--dub-seconds", "sec")):
        after = out.split(option, 1)[1].split("\n  -", 1)[0]
        assert words in after, option


@pytest.mark.slow
def test_simulator_hint_names_the_real_config_key(tmp_path: Path) -> None:
    """The simulator tells you to set synthesia.api_url (the key that exists)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "synthesia_watchd", "simulator", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(3)]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
    assert "synthesia.api_url" in lines[2], lines


def test_demo_try_command_works_from_any_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo's `try:` line names a command that runs even when the venv is not on PATH."""
    from synthesia_watchd.service.demo import own_command

    monkeypatch.setenv("PATH", "/nonexistent")
    command = own_command()
    assert Path(command.split()[0]).is_absolute()
    done = subprocess.run(
        [*command.split(), "--version"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and "synthesia-watchd" in done.stdout


@pytest.mark.slow
def test_demo_reuses_one_folder(
    no_config: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capsys
) -> None:
    """Two demos without --dir use one folder under the state folder, emptied each time."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "")
    ledgers = []
    for _ in range(2):
        code, out, err = run_cli(capsys, "demo", "--dub-seconds", "0.2")
        assert code == 0, out + err
        ledgers += [line for line in out.splitlines() if line.startswith("ledger: ")]
    demo = no_config / "demo"
    assert ledgers == [f"ledger: {demo / 'state' / 'ledger.sqlite3'}"] * 2
    assert len(list((demo / "dubbed").glob("*.dubbed-*.mp4"))) == 3


# --- 10: spending limits ---------------------------------------------------------------------


def test_check_config_shows_limits_and_todays_use(keyed: Engine, capsys: Capsys) -> None:
    """check-config: 'no limit' said out loud with today's submits; a set limit shown as n/max."""
    keyed.put("a.mp4")
    keyed.run()
    code, out, _ = run_cli(capsys, "check-config", "--offline", "-c", str(keyed.write_config()))
    assert code == 0
    line = next(x for x in out.splitlines() if "spending limits" in x)
    assert "jobs today 1 (max_jobs_per_day: no limit)" in line
    assert "set limits.max_jobs_per_day" in line
    keyed.settings["limits"] = {"max_jobs_per_day": 5}
    code, out, _ = run_cli(capsys, "check-config", "--offline", "-c", str(keyed.write_config()))
    assert "jobs today 1/5" in out


def test_daemon_start_logs_the_limits(keyed: Engine, capsys: Capsys) -> None:
    """The daemon's start says which limits hold and today's use, in its own log line."""
    keyed.settings["log"] = {"level": "info", "format": "json"}
    code, out, _ = run_cli(capsys, "run", "--once", "-c", str(keyed.write_config()))
    assert code == 0
    (line,) = [json.loads(x) for x in out.splitlines() if '"spending limits"' in x]
    assert line["max_jobs_per_day"] is None and line["today_jobs"] == 0
    assert "no limit" in line["summary"]


# --- 9: config init --------------------------------------------------------------------------


def test_config_init_writes_a_config_check_config_accepts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capsys
) -> None:
    """config init: a commented file for the folders and targets that check-config accepts;
    it is never overwritten without --force."""
    monkeypatch.delenv("SYNTHESIA_API_KEY", raising=False)
    dest = tmp_path / "etc" / "config.yaml"
    argv = ["config", "init", "--input", str(tmp_path / "drop"), "--output", str(tmp_path / "out")]
    code, out, err = run_cli(capsys, *argv, "-t", "fr-FR,de", "-s", "en", "--write", str(dest))
    assert code == 0, err
    text = dest.read_text()
    assert "max_jobs_per_day: null" in text and "# " in text
    code, out, err = run_cli(capsys, "check-config", "--offline", "-c", str(dest))
    assert code == 0, err
    assert str(tmp_path / "drop") in out and "de" in out
    code, _, err = run_cli(capsys, *argv, "-t", "fr-FR", "--write", str(dest))
    assert code == 2 and "--force" in err
    assert dest.read_text() == text


def test_config_init_rejects_what_the_schema_rejects(tmp_path: Path, capsys: Capsys) -> None:
    """A wrong language code: exit 2 with the schema's own message and hint; nothing written."""
    dest = tmp_path / "config.yaml"
    code, _, err = run_cli(
        capsys, "config", "init", "--input", str(tmp_path), "-t", "it-IT", "-w", str(dest)
    )
    assert code == 2
    assert "did you mean 'it'" in err
    assert not dest.exists()


def test_runtime_file_of_a_dead_or_reused_pid_is_ignored(tmp_path: Path) -> None:
    """A runtime file names this live process: found; the same pid with another start time
    (a pid reused after a crash) or a pid that is gone: ignored."""
    from synthesia_watchd.stores import runtime

    env = {runtime.ENV_DIR: str(tmp_path)}
    path = runtime.register(tmp_path / "l.sqlite3", tmp_path, None, environ=env)
    assert path is not None
    assert [d.ledger for d in runtime.running(env)] == [tmp_path / "l.sqlite3"]
    doc = json.loads(path.read_text())
    path.write_text(json.dumps({**doc, "start_ticks": doc["start_ticks"] + 1}))
    assert runtime.running(env) == []
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    path.write_text(json.dumps({**doc, "pid": int(child.stdout)}))
    assert runtime.running(env) == []
    runtime.unregister(path)
    assert not path.exists()
