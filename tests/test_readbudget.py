"""The status endpoint's day read budget (readbudget.py), on a real ledger and a fake clock."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest
from simfixtures import FakeClock

from synthesia_watchd.domain.readbudget import BUCKET, DAY, STATUS_ENDPOINT, ReadBudget
from synthesia_watchd.service import cli
from synthesia_watchd.stores.ledger import Ledger

T0 = 1_750_000_200.0  # a period boundary


def budget(clock: FakeClock, per_day: int | None = 20_000, **kw: object) -> ReadBudget:
    return ReadBudget(per_minute=60, per_day=per_day, clock=clock, **kw)  # type: ignore[arg-type]


def test_only_the_status_endpoint_is_counted() -> None:
    """Reads of other endpoints do not spend the status endpoint's budget."""
    b = budget(FakeClock(T0))
    b.record(STATUS_ENDPOINT, 3)
    b.record("GET /v2/assets/{id}", 5)
    assert b.used() == 3


def test_a_fresh_day_spreads_the_whole_budget_over_the_day() -> None:
    """With nothing spent, polls may spend limit minus the reserve per day, at most."""
    b = budget(FakeClock(T0))
    assert b.poll_rate(reserve=0) == pytest.approx(20_000 / DAY)
    assert b.poll_rate(reserve=2_000) == pytest.approx(18_000 / DAY)


def test_a_busy_morning_slows_polls_until_its_reads_leave_the_window() -> None:
    """Reads spent recently lower the rate: the window must never hold more than the limit."""
    clock = FakeClock(T0)
    b = budget(clock)
    b.record(STATUS_ENDPOINT, 15_000)
    clock.advance(3 * 3600)
    # 5,000 left for the 21 h until the morning's reads leave: slower than limit / day.
    rate = b.poll_rate()
    assert rate == pytest.approx(5_000 / (DAY + BUCKET - 3 * 3600), rel=1e-6)
    assert rate < 20_000 / DAY
    # Spending at that rate never overfills any window: check every period up to a day on.
    for step in range(1, 145):
        x = step * BUCKET
        inside = 15_000 if x < DAY + BUCKET - 3 * 3600 else 0
        assert inside + rate * x <= 20_000 + 1e-6


def test_polls_are_held_when_only_the_download_reserve_is_left() -> None:
    """At limit minus reserve polls wait until the oldest reads leave; downloads may go on."""
    clock = FakeClock(T0)
    b = budget(clock, per_day=100)
    b.record(STATUS_ENDPOINT, 90)
    assert b.hold(reserve=5) == 0.0
    clock.advance(600)
    b.record(STATUS_ENDPOINT, 6)
    assert b.poll_rate(reserve=5) == 0.0
    wait = b.hold(reserve=5)
    assert wait == pytest.approx(DAY)  # the first period's 90 leave a day after it ended
    assert b.poll_gap(polling=1, reserve=5) == math.inf
    clock.advance(wait)
    assert b.hold(reserve=5) == 0.0


def test_no_day_limit_means_only_the_minute_limit_spaces_polls() -> None:
    """Without a day limit the gap is the minute limit shared by the jobs polling."""
    clock = FakeClock(T0)
    b = budget(clock, per_day=None)
    b.record(STATUS_ENDPOINT, 1_000_000)
    clock.advance(61)
    assert b.hold() == 0.0
    assert b.poll_gap(polling=8) == pytest.approx(8.0)


def test_a_full_minute_defers_polls_until_its_reads_leave_it() -> None:
    """58 reads in the last minute, 4 jobs polling: not before the two oldest have left."""
    clock = FakeClock(T0)
    b = budget(clock)
    b.record(STATUS_ENDPOINT, 1)
    clock.advance(10)
    b.record(STATUS_ENDPOINT, 1)
    clock.advance(10)
    b.record(STATUS_ENDPOINT, 56)
    assert b.poll_gap(polling=4) == pytest.approx(50.0)  # the second read leaves at +70 s
    assert b.poll_gap(polling=2) == pytest.approx(2.0)  # room for two: their share


def test_the_day_rate_spaces_polls_once_half_the_day_is_spent() -> None:
    """Below half the day's reads only the minute's share counts; at three quarters, half of
    each polling job's share of the steady rate (after downloads) is the gap."""
    clock = FakeClock(T0)
    b = budget(clock, per_day=8_640)
    assert b.poll_gap(polling=2) == pytest.approx(2.0)  # 2 jobs x 60 s / 60 reads
    b.record(STATUS_ENDPOINT, 6_480)
    clock.advance(61)  # out of the minute's window, still in the day's
    rate = (8_640 - 6_480) / DAY - 0.005  # what is left, spread over the day, less downloads
    assert b.poll_gap(polling=2, other_rate=0.005) == pytest.approx(0.5 * 2 / rate)


def test_counts_come_from_the_request_log_across_restarts_and_nodes(tmp_path: Path) -> None:
    """The reads the rate limiter records in the ledger are the budget's count: counted
    once (not again at the flush), every node's, and still there for a restarted budget."""
    clock = FakeClock(T0)
    day = [(20_000, DAY)]

    def send(ledger: Ledger, node: str, n: int, counted: ReadBudget | None = None) -> None:
        for _ in range(n):
            assert ledger.reserve_request("read", STATUS_ENDPOINT, clock(), day, node=node) == 0
            if counted is not None:
                counted.record(STATUS_ENDPOINT)

    with Ledger(tmp_path / "ledger.db", now=clock) as ledger:
        one = budget(clock, store=ledger)
        send(ledger, "nas-1", 7, one)
        assert one.used() == 7  # counted here until the next look at the log
        one.flush()
        assert one.used() == 7  # not twice
        clock.advance(BUCKET)
        send(ledger, "nas-2", 3)  # another node's reads: seen at the next look
        one.flush()
        assert one.used() == 10
    with Ledger(tmp_path / "ledger.db", now=clock) as ledger:
        restarted = budget(clock, store=ledger)
        assert restarted.used() == 10
        assert ledger.api_reads_since(STATUS_ENDPOINT, 0) == {int(T0): 7, int(T0) + BUCKET: 3}
        clock.advance(DAY)
        assert restarted.used() == 3  # the first period has left the window


def test_status_shows_the_day_reads_of_a_running_daemon(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`status` prints the daemon's reads in the last 24 hours against the day's limit."""
    path = tmp_path / "ledger.db"
    with Ledger(path) as ledger:
        record = {"pid": 1, "time": time.time(), "reads": {"last_24h": 1234, "per_day": 20_000}}
        ledger.set_node_status("nas-1", time.time(), json.dumps(record))
    assert cli.main(["status", "--ledger", str(path)]) == 0
    assert "status reads in the last 24 h: 1,234 of 20,000 a day" in capsys.readouterr().out
