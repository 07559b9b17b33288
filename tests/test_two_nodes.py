"""Two daemons on one PostgreSQL ledger, in one process: each keeps its own status record,
the start-up backfill runs once, and together they stay inside the daily spending limit."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest
from enginefixtures import Engine
from helpers import wait_until
from pgcluster import PASSWORD

from synthesia_watchd.domain.reasons import Reason
from synthesia_watchd.domain.states import JobState
from synthesia_watchd.service.cli import main
from synthesia_watchd.service.daemon import Daemon

NAMES = ("nas-1", "nas-2")
T = TypeVar("T")


@pytest.fixture
def make_nodes(engine: Engine, pg_database: str) -> Iterator[Callable[..., list[Daemon]]]:
    """Two daemons (nas-1, nas-2) over the engine's config (``watch`` keys on top) on a
    shared ledger, not started; all stopped and closed at the end."""
    engine.use_shared_ledger(pg_database, PASSWORD)
    made: list[Daemon] = []

    def build(**watch: object) -> list[Daemon]:
        for name in NAMES:
            engine.settings["node_name"] = name
            made.append(engine.daemon(**watch))
        return made[-len(NAMES) :]

    try:
        yield build
    finally:
        for d in made:
            if d.started.is_set():
                d.shutdown()
            d.lock.release()
            d.ledger.close()


@pytest.fixture
def two_nodes(make_nodes: Callable[..., list[Daemon]]) -> list[Daemon]:
    """Two daemons over the engine's config on a shared ledger, not started."""
    return make_nodes()


def drive(nodes: list[Daemon], until: Callable[[], T], what: str, timeout: float = 60) -> T:
    """Run both daemons' main loops, pass by pass, until ``until`` holds."""

    def step() -> T:
        for d in nodes:
            d.loop_once()
        return until()

    return wait_until(step, timeout=timeout, interval=0.05, what=what)


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


def test_two_nodes_starting_together_backfill_once(
    engine: Engine, make_nodes: Callable[..., list[Daemon]]
) -> None:
    """Two nodes start with a new target for a done job: one adds the language (one PUT,
    no new job, no new project); the other leaves the start-up backfill to it."""
    engine.put("clip.mp4")
    engine.run(targets=["fr-FR"])
    engine.assert_all_done()
    gate = engine.sim.pause("PUT /v2/dubbing/{id}")
    one, two = make_nodes(targets=["fr-FR", "es-ES"], backfill_new_targets=True)
    one.start()
    assert gate.wait_arrived(30)  # nas-1 is adding the language (held at the API)
    two.start()  # meanwhile nas-2 starts with the same new target
    gate.release()
    drive([one, two], lambda: one.drained() and two.drained(), "both nodes drained")
    engine.assert_all_done()
    assert gate.arrivals == 1
    assert engine.sim.count("PUT /v2/dubbing/{id}") == 1
    assert engine.sim.count("POST /v2/dubbing") == 1
    [job] = engine.jobs()
    assert set(job.targets) == {"fr-FR", "es-ES"}
    assert (engine.output / "clip.dubbed-es-ES.mp4").is_file()


def test_two_nodes_together_stay_inside_the_daily_job_limit(
    engine: Engine, make_nodes: Callable[..., list[Daemon]]
) -> None:
    """max_jobs_per_day 1 and three files on two nodes: while one node's submit is on its
    way, the other does not submit too; one POST /v2/dubbing in all, the rest held."""
    engine.settings["limits"] = {"max_jobs_per_day": 1}
    for name in ("a.mp4", "b.mp4", "c.mp4"):
        engine.put(name)
    gate = engine.sim.pause("POST /v2/dubbing")
    nodes = make_nodes()
    for d in nodes:
        d.start()

    def held() -> list[str]:
        jobs = engine.jobs()
        return [
            j.source_path
            for j in jobs
            if j.state is JobState.UPLOADED and j.reason_code == Reason.DAILY_LIMIT.value
        ]

    drive(nodes, lambda: gate.arrivals == 1, "one submit on its way")
    drive(nodes, lambda: len(held()) == 2, "the other two jobs held by the daily limit")
    assert gate.arrivals == 1
    gate.release()

    def one_dubbed_two_at_the_limit() -> bool:
        jobs = engine.jobs()
        done = [j for j in jobs if j.state is JobState.DONE]
        limited = [j for j in jobs if "daily job limit reached (1/1)" in (j.last_error or "")]
        return len(done) == 1 and len(limited) == 2

    drive(nodes, one_dubbed_two_at_the_limit, "one dubbed, two at the limit")
    assert engine.sim.count("POST /v2/dubbing") == 1
