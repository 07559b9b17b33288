"""Runner leases as one daemon's threads share them, on a real SQLite ledger."""

from __future__ import annotations

from pathlib import Path

from ledgerbackends import T0

from synthesia_watchd.engine.singlerun import Runners, SingleRunner
from synthesia_watchd.stores.ledger import Ledger


def test_threads_of_one_node_share_the_lease_and_the_last_one_drops_it(tmp_path: Path) -> None:
    """Two submits under way on nas-1 share the lease; nas-2 is kept out until both end."""
    with Ledger(tmp_path / "ledger.sqlite3") as ledger:
        runner = SingleRunner(Runners.SPENDING)
        assert runner.enter(ledger, "nas-1", T0, 60) is None
        assert runner.enter(ledger, "nas-1", T0 + 1, 60) is None
        assert ledger.take_runner(Runners.SPENDING, "nas-2", T0 + 2, T0 + 62) == "nas-1"
        runner.leave(ledger, "nas-1")
        assert ledger.take_runner(Runners.SPENDING, "nas-2", T0 + 3, T0 + 63) == "nas-1"
        runner.leave(ledger, "nas-1")
        assert ledger.take_runner(Runners.SPENDING, "nas-2", T0 + 4, T0 + 64) is None


def test_the_heartbeat_keeps_a_lease_in_use_and_lets_an_idle_one_expire(tmp_path: Path) -> None:
    """renew extends only leases with threads inside; an unused one is never renewed."""
    with Ledger(tmp_path / "ledger.sqlite3") as ledger:
        runners = Runners()
        assert runners.get(Runners.BACKFILL).enter(ledger, "nas-1", T0, 60) is None
        runners.renew(ledger, "nas-1", T0 + 50, 60)  # in use: until T0 + 110
        assert ledger.take_runner(Runners.BACKFILL, "nas-2", T0 + 100, T0 + 160) == "nas-1"
        ledger.take_runner(Runners.SPENDING, "nas-1", T0, T0 + 60)  # a row left behind
        runners.renew(ledger, "nas-1", T0 + 50, 60)  # not this daemon's: not renewed
        assert ledger.take_runner(Runners.SPENDING, "nas-2", T0 + 61, T0 + 121) is None
