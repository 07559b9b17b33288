"""Two daemon processes, one PostgreSQL ledger, a daily job limit: the node whose submit is on
its way is SIGKILLed, and the survivor still keeps both of them inside the limit."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

import pytest
from e2efixtures import SOURCE_SIZE, DaemonProcess
from helpers import wait_until
from pgcluster import PASSWORD

from synthesia_watchd.domain.media import sample_video
from synthesia_watchd.domain.states import JobState
from synthesia_watchd.simulator import Simulator
from synthesia_watchd.stores.ledger import Job, open_ledger

pytestmark = pytest.mark.slow

S = JobState
LIMIT = 2
LEASE = 15


def test_a_killed_nodes_submit_still_counts_against_the_daily_limit(
    tmp_path: Path,
    e2e_sim: Callable[..., Simulator],
    daemon_factory: Callable[..., DaemonProcess],
    pg_database: str,
) -> None:
    """max_jobs_per_day 2, five files, two nodes. The first POST /v2/dubbing is held at the
    API and its node killed: it may have been paid. The survivor waits for the dead node's
    spending lease to expire, counts that submit, submits one more and holds the rest: two
    POSTs in all, never three."""
    sim = e2e_sim()
    shared_in, shared_out = tmp_path / "shared-in", tmp_path / "shared-out"
    for folder in (shared_in, shared_out):
        folder.mkdir()
    secret = tmp_path / "ledger_password"
    secret.write_text(PASSWORD + "\n")
    nodes = []
    for i in range(2):
        node = daemon_factory(
            sim,
            settings={
                "ledger": pg_database,
                "ledger_password_file": str(secret),
                "node_name": f"node-{i}",
                "lease_duration": LEASE,
                "limits": {"max_jobs_per_day": LIMIT},
            },
        )
        node.input, node.output = shared_in, shared_out
        nodes.append(node)

    def jobs() -> list[Job]:
        with open_ledger(pg_database, password=PASSWORD) as ledger:
            return ledger.list_jobs(limit=100)

    gate = sim.pause("POST /v2/dubbing")
    for node in nodes:
        node.start()
    for node in nodes:
        node.wait_started()
    for i in range(5):
        nodes[0].drop(
            f"clip-{i}.mp4", sample_video(f"limit:{i}:{secrets.token_hex(4)}", SOURCE_SIZE)
        )
    assert gate.wait_arrived(60)

    def marked() -> list[Job]:
        return [j for j in jobs() if j.submit_started_at is not None]

    first = wait_until(marked, timeout=30, what="a submit marker")[0]
    [dead] = [n for n in nodes if n.settings["node_name"] == first.lease_node]
    [survivor] = [n for n in nodes if n is not dead]
    dead.kill()
    # Every submit on its way (one or two threads of the dead node) is that node's: while it
    # held the spending lease the other node sent none.
    sending = marked()
    assert {j.lease_node for j in sending} == {first.lease_node}
    gate.release()
    paid = len(sending)

    def settled() -> list[Job] | None:
        found = jobs()
        done = [j for j in found if j.state is S.DONE]
        limited = [j for j in found if f"limit reached ({LIMIT}/{LIMIT})" in (j.last_error or "")]
        attention = [j for j in found if j.state is S.NEEDS_ATTENTION]
        counts = (len(done), len(limited), len(attention))
        return found if counts == (LIMIT - paid, 5 - LIMIT, paid) else None

    found = wait_until(settled, timeout=120, interval=0.5, what="the limit reached, the rest held")
    # The dead node's POSTs (held at the API, maybe paid) and the survivor's: within the limit.
    assert sim.count("POST /v2/dubbing") == gate.arrivals + LIMIT - paid <= LIMIT
    assert {j.id for j in found if j.state is S.NEEDS_ATTENTION} == {j.id for j in sending}
    assert survivor.running
