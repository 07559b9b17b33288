"""Sliding-window pacing and the shared 429 gate, over a fake clock."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest

from synthesia_watchd.domain.errors import ShutdownRequested
from synthesia_watchd.domain.ratelimit import CREATOR_TIER, RateLimiter, Window


class FakeClock:
    """A clock that only moves when told."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def send_all(limiter: RateLimiter, clock: FakeClock, n: int, cls: str = "write") -> list[float]:
    """Send ``n`` requests as fast as the limiter allows; return their send times."""
    times: list[float] = []
    while len(times) < n:
        wait = limiter.reserve(cls, "POST /v2/dubbing")
        if wait:
            clock.advance(wait)
        else:
            times.append(clock.now)
    return times


def test_400_requests_at_60_per_minute_exact() -> None:
    """400 requests go exactly 60 per any 60 s window: never more, and no slower."""
    clock = FakeClock()
    margin = 0.05
    limiter = RateLimiter({"write": (Window(60, 60.0),)}, clock=clock, margin=margin)
    times = send_all(limiter, clock, 400)
    # never faster: no 61 requests within any 60 s
    for i in range(len(times) - 60):
        assert times[i + 60] - times[i] >= 60.0
    # never slower: each request goes as soon as the one 60 places earlier leaves the window
    for i in range(60, len(times)):
        assert times[i] == pytest.approx(times[i - 60] + 60.0 + margin)
    # the opening burst sits exactly at the limit
    assert times[:60] == [1000.0] * 60
    assert times[60] > 1060.0


def test_wait_not_recorded() -> None:
    """A refused reservation records nothing, so asking again does not push the wait out."""
    clock = FakeClock()
    limiter = RateLimiter({"read": (Window(1, 10.0),)}, clock=clock, margin=0.0)
    assert limiter.reserve("read", "GET /v2/dubbing/{id}") == 0.0
    clock.advance(4)
    assert limiter.reserve("read", "GET /v2/dubbing/{id}") == pytest.approx(6.0)
    assert limiter.reserve("read", "GET /v2/dubbing/{id}") == pytest.approx(6.0)
    clock.advance(6)
    assert limiter.reserve("read", "GET /v2/dubbing/{id}") == 0.0


def test_endpoints_and_classes_are_separate() -> None:
    """Each (class, endpoint) pair has its own windows, as Synthesia counts per endpoint."""
    clock = FakeClock()
    limiter = RateLimiter(
        {"write": (Window(1, 60.0),), "read": (Window(1, 60.0),)}, clock=clock, margin=0.0
    )
    assert limiter.reserve("write", "POST /v2/assets") == 0.0
    assert limiter.reserve("write", "POST /v2/dubbing") == 0.0
    assert limiter.reserve("read", "POST /v2/assets") == 0.0
    assert limiter.reserve("write", "POST /v2/assets") == pytest.approx(60.0)


def test_creator_tier_hourly_window_applies() -> None:
    """At the Creator tier the 301st write in an hour waits for the first to age out."""
    clock = FakeClock(0.0)
    limiter = RateLimiter(CREATOR_TIER, clock=clock, margin=0.0)
    times = send_all(limiter, clock, 301)
    assert times[299] < 3600.0
    assert times[300] == pytest.approx(times[0] + 3600.0)


def test_block_until_delays_every_class() -> None:
    """After a 429 the shared gate holds reads and writes on every endpoint."""
    clock = FakeClock()
    limiter = RateLimiter.unlimited(clock=clock)
    limiter.block_until(clock.now + 30)
    assert limiter.reserve("read", "GET /v2/assets/{id}") == pytest.approx(30.0)
    assert limiter.reserve("write", "POST /v2/assets") == pytest.approx(30.0)
    assert limiter.blocked_for() == pytest.approx(30.0)
    clock.advance(30)
    assert limiter.blocked_for() == 0.0
    assert limiter.reserve("write", "POST /v2/assets") == 0.0


def test_block_until_only_extends() -> None:
    """A shorter reset announced later never shortens an existing block."""
    clock = FakeClock()
    limiter = RateLimiter.unlimited(clock=clock)
    limiter.block_until(clock.now + 50)
    limiter.block_until(clock.now + 5)
    assert limiter.blocked_for() == pytest.approx(50.0)


def test_unknown_class_is_an_error() -> None:
    """A misspelt limit class is caught instead of silently unlimited."""
    with pytest.raises(ValueError, match="unknown limit class"):
        RateLimiter().reserve("wirte", "POST /v2/assets")


def test_from_rate_limits_mapping_and_none() -> None:
    """Config mappings become windows; None means that window is not limited."""
    clock = FakeClock()
    limiter = RateLimiter.from_rate_limits(
        {"writes": {"per_minute": 2, "per_hour": None}, "reads": {"per_minute": 1}},
        clock=clock,
        margin=0.0,
    )
    assert limiter.reserve("write", "PUT /v2/dubbing/{id}") == 0.0
    assert limiter.reserve("write", "PUT /v2/dubbing/{id}") == 0.0
    assert limiter.reserve("write", "PUT /v2/dubbing/{id}") == pytest.approx(60.0)
    assert limiter.reserve("read", "GET /v2/dubbing/{id}") == 0.0
    assert limiter.reserve("read", "GET /v2/dubbing/{id}") == pytest.approx(60.0)


def test_from_rate_limits_objects_and_missing_class() -> None:
    """Objects with attributes work; a class left out keeps the Creator-tier windows."""
    clock = FakeClock()
    config = SimpleNamespace(writes=SimpleNamespace(per_minute=None, per_hour=None, per_day=1))
    limiter = RateLimiter.from_rate_limits(config, clock=clock, margin=0.0)
    assert limiter.reserve("write", "POST /v2/dubbing") == 0.0
    assert limiter.reserve("write", "POST /v2/dubbing") == pytest.approx(86_400.0)
    reads = send_all(limiter, clock, 61, cls="read")
    assert reads[60] - reads[0] == pytest.approx(60.0)


def test_acquire_returns_at_once_when_free() -> None:
    """acquire does not wait when the window has room."""
    limiter = RateLimiter.unlimited()
    assert limiter.acquire("read", "GET /v2/assets/{id}") == 0.0


def test_acquire_waits_for_window() -> None:
    """acquire blocks until the window opens and reports the wait."""
    limiter = RateLimiter({"read": (Window(1, 0.1),)}, margin=0.0)
    limiter.acquire("read", "GET /v2/assets/{id}")
    started = time.monotonic()
    waited = limiter.acquire("read", "GET /v2/assets/{id}")
    assert waited > 0.0
    assert time.monotonic() - started >= 0.09


def test_acquire_honours_stop() -> None:
    """Setting stop interrupts a long wait with ShutdownRequested."""
    limiter = RateLimiter.unlimited()
    limiter.block_until(time.monotonic() + 3600)
    stop = threading.Event()
    outcome: list[BaseException] = []

    def worker() -> None:
        try:
            limiter.acquire("write", "POST /v2/dubbing", stop=stop)
        except ShutdownRequested as exc:
            outcome.append(exc)

    thread = threading.Thread(target=worker)
    thread.start()
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert len(outcome) == 1


def test_acquire_with_stop_already_set_sends_nothing() -> None:
    """A stopping worker does not start new requests, and records none."""
    clock = FakeClock()
    limiter = RateLimiter({"write": (Window(1, 60.0),)}, clock=clock)
    stop = threading.Event()
    stop.set()
    with pytest.raises(ShutdownRequested):
        limiter.acquire("write", "POST /v2/assets", stop=stop)
    assert limiter.reserve("write", "POST /v2/assets") == 0.0


def test_thread_safe_under_contention() -> None:
    """Many threads reserving at once never exceed the window."""
    clock = FakeClock()
    limiter = RateLimiter({"write": (Window(50, 60.0),)}, clock=clock)
    granted: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        ok = sum(1 for _ in range(20) if limiter.reserve("write", "POST /v2/assets") == 0.0)
        with lock:
            granted.append(ok)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(granted) == 8
    assert sum(granted) == 50
