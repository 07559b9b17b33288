"""Two daemons on one PostgreSQL ledger, in one process: each keeps its own status record,
the start-up backfill runs once, and together they stay inside the daily spending limit."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from enginefixtures import Engine
from pgcluster import PASSWORD

from synthesia_watchd.service.cli import main
from synthesia_watchd.service.daemon import Daemon

NAMES = ("nas-1", "nas-2")


@pytest.fixture
def two_nodes(engine: Engine, pg_database: str) -> Iterator[list[Daemon]]:
    """Two daemons (nas-1, nas-2) over the engine's config on a shared ledger, not started."""
    engine.use_shared_ledger(pg_database, PASSWORD)
    made: list[Daemon] = []
    try:
        for name in NAMES:
            engine.settings["node_name"] = name
            made.append(engine.daemon())
        yield made
    finally:
        for d in made:
            if d.started.is_set():
                d.shutdown()
            d.lock.release()
            d.ledger.close()


def test_each_node_keeps_its_own_status_record(
    engine: Engine,
    two_nodes: list[Daemon],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Two nodes' heartbeats write two records: `status` shows each node's state and its own
    pauses, where one record used to be overwritten by whichever node beat last."""
    one, two = two_nodes
    for d in two_nodes:
        d.start()
    one.pauses.set("auth", "API key refused on nas-1")
    one.beat(force=True)
    two.beat(force=True)
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    capsys.readouterr()  # the daemons' start-up log lines
    assert main(["status", "--json", "--ledger", engine.settings["ledger"]]) == 0
    data = json.loads(capsys.readouterr().out)
    nodes = {n["name"]: n for n in data["nodes"]}
    assert nodes["nas-1"]["running"] and nodes["nas-2"]["running"]
    assert nodes["nas-1"]["paused"] == {"auth": "API key refused on nas-1"}
    assert nodes["nas-2"]["paused"] == {}
    assert data["paused"] == {"auth": "API key refused on nas-1"}
    assert main(["status", "--ledger", engine.settings["ledger"]]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("node ")]
    assert len(lines) == 2 and all(", running (pid " in line for line in lines)
    assert "PAUSED (auth) on nas-1: API key refused on nas-1" in out
    two.shutdown()
    capsys.readouterr()
    assert main(["status", "--json", "--ledger", engine.settings["ledger"]]) == 0
    nodes = {n["name"]: n for n in json.loads(capsys.readouterr().out)["nodes"]}
    assert nodes["nas-1"]["running"] and not nodes["nas-2"]["running"]
    assert nodes["nas-2"]["stopped_cleanly"]
