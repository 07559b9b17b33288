"""Secret hygiene: check-config and the daemon warn when the key is readable by others, and
when the metrics listener is reachable from other hosts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml

from synthesia_watchd.config.load import load_config
from synthesia_watchd.service import cli, compose
from synthesia_watchd.service.daemon import Daemon

Capsys = pytest.CaptureFixture[str]


def _config(tmp_path: Path, mode: int, **top: Any) -> Path:
    data: dict[str, Any] = {
        "state_dir": str(tmp_path / "state"),
        "watches": [
            {
                "name": "drop",
                "input": str(tmp_path / "in"),
                "targets": ["fr-FR"],
                "source_language": "en",
            }
        ],
        **top,
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    os.chmod(path, mode)
    return path


def _warnings(capsys: Capsys, path: Path) -> str:
    capsys.readouterr()
    assert cli.main(["check-config", "--offline", "-c", str(path)]) == 0
    return capsys.readouterr().err


@pytest.fixture(autouse=True)
def _no_key_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SYNTHESIA_API_KEY", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)


def test_a_readable_config_holding_the_key_is_warned_about(tmp_path: Path, capsys: Capsys) -> None:
    """Key inline in a 0644 config: check-config warns, naming the file and chmod 600."""
    path = _config(tmp_path, 0o644, synthesia={"api_key": "sk-inline-secret"})
    err = _warnings(capsys, path)
    assert "readable by group or others" in err and str(path) in err and "chmod 600" in err
    assert "sk-inline-secret" not in err


def test_a_readable_api_key_file_is_warned_about(tmp_path: Path, capsys: Capsys) -> None:
    """api_key_file at 0640: check-config warns about that file."""
    key = tmp_path / "api_key"
    key.write_text("sk-file-secret\n")
    os.chmod(key, 0o640)
    path = _config(tmp_path, 0o600, synthesia={"api_key_file": str(key)})
    err = _warnings(capsys, path)
    assert "readable by group or others" in err and str(key) in err


def test_private_files_and_loopback_metrics_give_no_warning(tmp_path: Path, capsys: Capsys) -> None:
    """0600 files and a loopback listener: none of these warnings."""
    key = tmp_path / "api_key"
    key.write_text("sk-file-secret\n")
    os.chmod(key, 0o600)
    path = _config(
        tmp_path, 0o644, synthesia={"api_key_file": str(key)}, metrics={"listen": "127.0.0.1:0"}
    )
    err = _warnings(capsys, path)
    assert "readable by group or others" not in err and "loopback" not in err


def test_a_config_without_the_key_may_be_group_readable(tmp_path: Path, capsys: Capsys) -> None:
    """The systemd layout (config 0640 without the key) is not warned about."""
    err = _warnings(capsys, _config(tmp_path, 0o640))
    assert "readable by group or others" not in err


def test_metrics_on_every_interface_are_warned_about(tmp_path: Path, capsys: Capsys) -> None:
    """metrics.listen 0.0.0.0: a warning that /metrics is reachable from other hosts."""
    err = _warnings(capsys, _config(tmp_path, 0o600, metrics={"listen": "0.0.0.0:9464"}))
    assert "not a loopback address" in err


def test_the_daemon_logs_the_warnings_at_start(tmp_path: Path) -> None:
    """The same warnings reach the daemon's log when it starts."""
    path = _config(tmp_path, 0o644, synthesia={"api_key": "sk-inline-secret"})
    (tmp_path / "in").mkdir()
    daemon = Daemon(compose.build(load_config(path)), once=True)
    try:
        with structlog.testing.capture_logs() as logs:
            daemon.start()
    finally:
        daemon.shutdown()
        daemon.ledger.close()
        daemon.lock.release()
    warned = [e for e in logs if e.get("log_level") == "warning" and "config" in e["event"]]
    assert any("readable by group or others" in str(e.get("warning")) for e in warned), logs
