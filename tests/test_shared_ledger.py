"""A daemon on a PostgreSQL ledger: config, password sources, one daemon at a time, commands."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from enginefixtures import Engine
from pgcluster import PASSWORD, Cluster

from synthesia_watchd.config.load import build_config
from synthesia_watchd.domain.errors import ConfigError, LedgerError
from synthesia_watchd.service.cli import main
from synthesia_watchd.service.daemon import Daemon


def _config(url: str, **extra: object) -> dict[str, object]:
    return {"ledger": url, **extra}


def test_ledger_url_with_a_password_is_refused() -> None:
    """A password written into the ledger URL is a config error that says where it belongs."""
    with pytest.raises(ConfigError, match=r"ledger.*password.*ledger_password_file") as caught:
        build_config(_config("postgresql://watchd:s3cr3t@db.example/watchd"), environ={})
    assert "s3cr3t" not in str(caught.value)


def test_password_sources_and_node_name(tmp_path: Path) -> None:
    """ledger_password_file, then the systemd credential; node_name defaults to the host."""
    url = "postgresql://watchd@db.example:5432/watchd?sslmode=verify-full"
    own = tmp_path / "pw"
    own.write_text("from-file\n")
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "ledger_password").write_text("from-credential\n")
    env = {"CREDENTIALS_DIRECTORY": str(creds)}
    cfg = build_config(_config(url, ledger_password_file=str(own)), environ=env)
    assert (cfg.ledger_url, cfg.ledger_password_text()) == (url, "from-file")
    assert cfg.node_name == socket.gethostname()
    cfg = build_config(_config(url, node_name="nas-2"), environ=env)
    assert (cfg.ledger_password_text(), cfg.node_name) == ("from-credential", "nas-2")
    assert build_config(_config(url), environ={}).ledger_password_text() is None
    with pytest.raises(ConfigError, match=r"ledger_password_file.*cannot read"):
        build_config(_config(url, ledger_password_file=str(tmp_path / "nope")), environ={})


def test_daemon_dubs_on_a_postgres_ledger(engine: Engine, pg_database: str) -> None:
    """run --once on a PostgreSQL ledger: every file dubbed once, the jobs in the database."""
    engine.use_shared_ledger(pg_database, PASSWORD)
    engine.put("a.mp4")
    engine.put("b.mp4")
    engine.run()
    engine.assert_all_done()
    assert len(engine.jobs()) == 2
    assert engine.dub_posts() == 2
    assert not engine.ledger_path.exists()  # no SQLite file was made on the side


def test_nodes_share_a_ledger_but_not_a_name(engine: Engine, pg_database: str) -> None:
    """Daemons with different node names run together; a second one with a taken name is
    refused (it would take the first one's leases for its own) until the first is gone."""
    engine.use_shared_ledger(pg_database, PASSWORD)
    started: list[Daemon] = []
    try:
        for name in ("nas-1", "nas-2"):
            engine.settings["node_name"] = name
            started.append(engine.daemon())
        with pytest.raises(LedgerError, match="'nas-2' is already running"):
            engine.daemon()
        started.pop().lock.release()
        started.append(engine.daemon())  # the lock went with the first one's session
    finally:
        for d in started:
            d.lock.release()
            d.ledger.close()


def test_status_reads_a_postgres_ledger(
    engine: Engine,
    pg_database: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`status --ledger postgresql://...` answers from the database (password: PGPASSWORD)."""
    engine.use_shared_ledger(pg_database, PASSWORD)
    engine.put("a.mp4")
    engine.run()
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    assert main(["status", "--ledger", pg_database]) == 0
    out = capsys.readouterr().out
    assert "done" in out
    assert f"node {socket.gethostname()}: heartbeat" in out
    assert "0 job(s) claimed" in out
    assert PASSWORD not in out


def test_a_postgres_restart_mid_run_loses_and_repeats_nothing(
    engine_factory: Callable[..., Engine], pg_cluster: Cluster, pg_database: str
) -> None:
    """The server crashes while jobs are dubbing: the run finishes, one POST per file."""
    engine = engine_factory(dub_seconds=1.0)
    engine.use_shared_ledger(pg_database, PASSWORD)
    for name in ("a.mp4", "b.mp4", "c.mp4"):
        engine.put(name)
    restarted: list[bool] = []

    def crash_once(daemon: Daemon) -> None:
        if (
            restarted
            or daemon.scheduler.running_in("upload")
            or not engine.sim.count("POST /v2/dubbing")
        ):
            return
        restarted.append(True)
        pg_cluster.stop("immediate")  # as after a crash: the server recovers from its WAL
        pg_cluster.start()

    engine.run(on_tick=crash_once, timeout=90)
    assert restarted
    engine.assert_all_done()
    assert engine.dub_posts() == 3
    assert len(engine.jobs()) == 3
