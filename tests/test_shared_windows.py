"""Rate windows kept in the ledger: nodes pace together, a restart remembers, no ledger no send."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from synthesia_watchd.domain.errors import ShutdownRequested
from synthesia_watchd.domain.ratelimit import MINUTE, WRITE, RateLimiter, Window
from synthesia_watchd.stores.ledger import Ledger

EP = "POST /v2/dubbing"


class Clock:
    """A hand-stepped wall clock."""

    def __init__(self) -> None:
        self.t = 1_750_000_000.0

    def __call__(self) -> float:
        return self.t


def _limiter(ledger: Ledger, clock: Clock, node: str) -> RateLimiter:
    classes = {WRITE: (Window(2, MINUTE),), "read": ()}
    return RateLimiter(classes, clock=clock, margin=0.0, shared=ledger, node=node)


def test_two_nodes_share_a_window_and_a_429(tmp_path: Path) -> None:
    """Two limiters on one ledger count together; a 429 on one holds the other."""
    clock = Clock()
    with Ledger(tmp_path / "l.sqlite3") as one, Ledger(tmp_path / "l.sqlite3") as two:
        a, b = _limiter(one, clock, "a"), _limiter(two, clock, "b")
        assert a.reserve(WRITE, EP) == 0.0
        assert b.reserve(WRITE, EP) == 0.0
        assert a.reserve(WRITE, EP) == 60.0
        clock.t += 60
        a.block_until(clock.t + 20)
        assert b.reserve(WRITE, "POST /v2/assets") == 20.0


def test_a_restart_remembers_the_window(tmp_path: Path) -> None:
    """A new limiter (a restarted daemon) on the same ledger still sees earlier requests."""
    clock = Clock()
    with Ledger(tmp_path / "l.sqlite3") as led:
        first = _limiter(led, clock, "a")
        assert first.reserve(WRITE, EP) == first.reserve(WRITE, EP) == 0.0
    with Ledger(tmp_path / "l.sqlite3") as led:
        assert _limiter(led, clock, "a").reserve(WRITE, EP) == 60.0


def test_no_ledger_no_request(tmp_path: Path) -> None:
    """While the ledger cannot be reached acquire keeps waiting and never lets a request go."""
    clock = Clock()
    led = Ledger(tmp_path / "l.sqlite3")
    limiter = _limiter(led, clock, "a")
    led.close()  # every ledger call now raises LedgerError
    stop = threading.Event()
    timer = threading.Timer(1.5, stop.set)
    timer.start()
    try:
        with pytest.raises(ShutdownRequested):
            limiter.acquire(WRITE, EP, stop=stop)
    finally:
        timer.cancel()
    with Ledger(tmp_path / "l.sqlite3") as again:
        assert _limiter(again, clock, "a").reserve(WRITE, EP) == 0.0  # nothing was recorded
