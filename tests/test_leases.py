"""The engine and leases: claimed work is given back, a lost lease sends nothing paid."""

from __future__ import annotations

from enginefixtures import TARGETS, WATCH, Engine

from synthesia_watchd.domain.states import JobState

S = JobState


def test_a_run_gives_every_lease_back_and_records_its_node(engine: Engine) -> None:
    """After run --once every job is done and unleased; the node is listed with its beat."""
    engine.settings["node_name"] = "nas-1"
    engine.put("a.mp4")
    engine.put("b.mp4")
    engine.run()
    engine.assert_all_done()
    assert {(j.lease_node, j.lease_until) for j in engine.jobs()} == {(None, None)}
    with engine.ledger() as ledger:
        [node] = ledger.nodes(0.0)
    assert (node.name, node.claimed) == ("nas-1", 0)
    assert node.heartbeat_at >= node.started_at > 0


def test_metrics_carry_the_node_name(engine: Engine) -> None:
    """The node_info series names this daemon's node."""
    engine.settings["node_name"] = "nas-7"
    daemon = engine.daemon()
    try:
        value = daemon.metrics.registry.get_sample_value(
            "synthesia_watchd_node_info", {"node": "nas-7"}
        )
        assert value == 1
    finally:
        daemon.lock.release()
        daemon.ledger.close()


def test_a_submit_under_a_lease_another_node_holds_is_never_sent(engine: Engine) -> None:
    """A job another node has claimed since: the submit marker is refused, no POST leaves."""
    engine.settings["node_name"] = "node-a"
    daemon = engine.daemon()
    try:
        ledger = daemon.ledger
        job = ledger.add_job(
            watch=WATCH,
            source_path=str(engine.put("a.mp4")),
            size=1,
            mtime_ns=1,
            sha256="h",
            source_language="en",
            targets=list(TARGETS),
            output_dir=str(engine.output),
        )
        for new in (S.ASSET_CREATED, S.UPLOADED):
            ledger.transition(job.id, ledger.get(job.id).state, new, why="test", asset_id="as-1")
        now = daemon.now()
        [taken] = ledger.claim([S.UPLOADED], now, "node-b", now + 600)
        assert taken.lease_node == "node-b"
        daemon.pipeline.step(job.id)
        after = ledger.get(job.id)
        assert (after.state, after.submit_started_at) == (S.UPLOADED, None)
        assert engine.dub_posts() == 0
    finally:
        daemon.lock.release()
        daemon.ledger.close()
