"""Commands without -c find a running daemon's PostgreSQL ledger through its runtime file,
which names the ledger without any password."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from enginefixtures import Engine
from pgcluster import PASSWORD

from synthesia_watchd.config.load import load_config
from synthesia_watchd.service import compose
from synthesia_watchd.service.cli import main
from synthesia_watchd.service.daemon import Daemon
from synthesia_watchd.stores import runtime


def _runtime_files() -> list[Path]:
    return sorted(Path(os.environ[runtime.ENV_DIR]).glob("*.json"))


def test_commands_without_config_find_a_running_daemons_postgres_ledger(
    engine: Engine,
    pg_database: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """status/jobs/health without -c answer from the running daemon's PostgreSQL ledger:
    the password comes from its config's ledger_password_file, else PGPASSWORD; never from
    the runtime file."""
    engine.use_shared_ledger(pg_database, PASSWORD)
    engine.put("a.mp4")
    engine.run()
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("SYNTHESIA_API_KEY", engine.sim.api_key)
    config = load_config(engine.write_config())  # the daemon runs from a config file
    daemon = Daemon(compose.build(config), once=True)
    daemon.start()
    try:
        [file] = _runtime_files()
        text = file.read_text(encoding="utf-8")
        assert PASSWORD not in text
        assert json.loads(text)["ledger"] == pg_database
        capsys.readouterr()
        assert main(["status"]) == 0
        assert "done 1" in capsys.readouterr().out
        assert main(["jobs"]) == 0
        assert "a.mp4" in capsys.readouterr().out
        assert main(["health"]) == 0
        (engine.base / "ledger_password").unlink()  # no file to read: libpq's own sources
        monkeypatch.setenv("PGPASSWORD", PASSWORD)
        capsys.readouterr()
        assert main(["status"]) == 0
        out = capsys.readouterr().out
        assert "done 1" in out and PASSWORD not in out
    finally:
        daemon.shutdown()
        daemon.lock.release()
        daemon.ledger.close()
    assert _runtime_files() == []


def test_a_password_in_the_url_never_reaches_the_runtime_file(tmp_path: Path) -> None:
    """A password given as a URL parameter is left out of the runtime file; the rest stays."""
    url = "postgresql://watchd@db.example:5432/watchd?sslmode=require&password=s3cr3t"
    file = runtime.register(url, tmp_path, None, environ={runtime.ENV_DIR: str(tmp_path)})
    assert file is not None
    text = file.read_text(encoding="utf-8")
    assert "s3cr3t" not in text
    assert (
        json.loads(text)["ledger"] == "postgresql://watchd@db.example:5432/watchd?sslmode=require"
    )
    runtime.unregister(file)
