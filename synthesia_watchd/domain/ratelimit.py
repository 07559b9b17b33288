"""Pace requests ahead of Synthesia's documented limits instead of bouncing off them.

Synthesia limits each endpoint separately, with minute/hour/day windows that differ for writes
(POST/PUT) and reads (GET) (CONTRACT.md A10). A sliding-window log is exact: it keeps the send
time of every request inside the longest window, so "at most N in any S seconds" holds for every
S-second interval, not only for aligned buckets. A burst goes out at once up to the limit and
then waits exactly until the oldest request leaves the window.

On top of the windows sits one shared gate: when any worker receives a 429 the client calls
``block_until(reset)`` and every worker, for every endpoint, waits until then; hammering a
limited API from other threads would only extend the penalty.

The core (``reserve``) is pure over an injected clock; threading appears only in ``acquire``,
which blocks on a stop event so a shutdown never waits for a window to open.

With ``shared`` (the ledger), the windows and the 429 gate live in the database instead: every
node sharing the ledger counts against the same windows, and a restart remembers the hour and
day. The clock is then wall time. While the ledger cannot be reached nothing is sent: a request
without its durable record would escape the shared count.
"""

from __future__ import annotations

import bisect
import contextlib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .errors import LedgerError, ShutdownRequested

MINUTE = 60.0
HOUR = 3600.0
DAY = 86_400.0

WRITE = "write"
READ = "read"


@dataclass(frozen=True)
class Window:
    """At most ``limit`` requests in any interval of ``seconds``."""

    limit: int
    seconds: float

    def __post_init__(self) -> None:
        if self.limit < 1 or self.seconds <= 0:
            raise ValueError(f"invalid rate window {self.limit}/{self.seconds}s")


#: Tier 3 (Creator), the lowest documented tier; per endpoint (CONTRACT.md A10).
CREATOR_TIER: dict[str, tuple[Window, ...]] = {
    WRITE: (Window(60, MINUTE), Window(300, HOUR), Window(1000, DAY)),
    READ: (Window(60, MINUTE), Window(20_000, DAY)),
}

#: Every limit the documentation names, by the window it counts (CONTRACT.md A10, all tiers):
#: a 429's RateLimit-Limit names the breached one, and so the window its wait belongs to.
DOCUMENTED_WINDOWS: dict[int, float] = {
    **dict.fromkeys((60, 80, 120), MINUTE),
    **dict.fromkeys((300, 400, 600), HOUR),
    **dict.fromkeys((1000, 2000, 3000, 20_000, 40_000, 80_000), DAY),
}

#: Longest wait between attempts to reach an unreachable shared ledger.
LEDGER_RETRY_MAX = 30.0


class SharedWindows(Protocol):
    """Request windows and the 429 gate kept where every node sees them (the ledger)."""

    def reserve_request(
        self,
        limit_class: str,
        endpoint: str,
        now: float,
        windows: Sequence[tuple[int, float]],
        *,
        node: str | None = None,
        margin: float = 0.0,
    ) -> float: ...
    def hold_requests_until(self, until: float) -> None: ...


_CONFIG_CLASSES = {"writes": WRITE, "reads": READ}
_CONFIG_WINDOWS = {"per_minute": MINUTE, "per_hour": HOUR, "per_day": DAY}


def _field(obj: Any, name: str) -> Any:
    """Read ``name`` from a mapping or an object with that attribute; None when absent."""
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


class RateLimiter:
    """Sliding-window pacing per (limit class, endpoint) plus a shared 429 gate; thread-safe.

    ``margin`` seconds are added to every computed wait: our clock and the server's window
    boundaries never line up exactly, and arriving a hair late is cheaper than a 429.
    """

    def __init__(
        self,
        classes: Mapping[str, Sequence[Window]] = CREATOR_TIER,
        *,
        clock: Callable[[], float] = time.monotonic,
        margin: float = 0.05,
        shared: SharedWindows | None = None,
        node: str | None = None,
    ) -> None:
        if margin < 0:
            raise ValueError("margin must be >= 0")
        self._classes = {name: tuple(windows) for name, windows in classes.items()}
        self._clock = clock
        self._margin = margin
        self._lock = threading.Lock()
        self._logs: dict[tuple[str, str], list[float]] = {}
        self._gate = float("-inf")
        self._shared = shared
        self._node = node

    def __repr__(self) -> str:
        return f"RateLimiter(classes={self._classes!r}, margin={self._margin})"

    @classmethod
    def from_rate_limits(cls, rate_limits: Mapping[str, Any] | Any, **kw: Any) -> RateLimiter:
        """Build from config: ``{"writes": {"per_minute": 60, ...}, "reads": {...}}``.

        Works with mappings or objects carrying those attributes. A class left out keeps the
        Creator-tier windows (the safe default); a window set to None is not limited.
        """
        classes: dict[str, tuple[Window, ...]] = {}
        for key, name in _CONFIG_CLASSES.items():
            section = _field(rate_limits, key)
            if section is None:
                classes[name] = CREATOR_TIER[name]
                continue
            windows = []
            for field_name, seconds in _CONFIG_WINDOWS.items():
                limit = _field(section, field_name)
                if limit is not None:
                    windows.append(Window(int(limit), seconds))
            classes[name] = tuple(windows)
        return cls(classes, **kw)

    @classmethod
    def unlimited(cls, **kw: Any) -> RateLimiter:
        """No windows at all (the 429 gate still works): for tests and dry runs."""
        return cls({WRITE: (), READ: ()}, **kw)

    def reserve(self, limit_class: str, endpoint: str, now: float | None = None) -> float:
        """0.0 and record the request if it may go now; else the seconds to wait (nothing kept).

        ``endpoint`` is the path template (``GET /v2/dubbing/{id}``), never a concrete id: the
        server counts per endpoint, and concrete ids would make every log a fresh empty one.
        """
        try:
            windows = self._classes[limit_class]
        except KeyError:
            raise ValueError(f"unknown limit class {limit_class!r}") from None
        if self._shared is not None:
            current = self._clock() if now is None else now
            with self._lock:
                held = self._gate - current
            if held > 0:  # this node's own 429 hold: ask nothing, record nothing
                return held
            shared = self._shared.reserve_request(
                limit_class,
                endpoint,
                current,
                [(w.limit, w.seconds) for w in windows],
                node=self._node,
                margin=self._margin,
            )
            with self._lock:
                # A 429 may have arrived while the ledger was asked: it wins (the recorded
                # request only over-counts by one, the safe side).
                held = self._gate - self._clock()
                if shared <= 0 and held > 0:
                    return held
                if shared <= 0 and windows:
                    # This node's own view for usage() (the windows themselves are shared).
                    log = self._logs.setdefault((limit_class, endpoint), [])
                    del log[: bisect.bisect_right(log, current - max(w.seconds for w in windows))]
                    bisect.insort(log, current)
            return max(shared, 0.0)
        with self._lock:
            current = self._clock() if now is None else now
            wait = max(0.0, self._gate - current)
            log = self._logs.setdefault((limit_class, endpoint), [])
            if windows:
                longest = max(w.seconds for w in windows)
                del log[: bisect.bisect_right(log, current - longest)]
            for window in windows:
                start = bisect.bisect_right(log, current - window.seconds)
                inside = len(log) - start
                if inside >= window.limit:
                    # The request that must leave the window before one more may enter.
                    leaving = log[start + inside - window.limit]
                    wait = max(wait, leaving + window.seconds - current + self._margin)
            if wait > 0:
                return wait
            if windows:
                bisect.insort(log, current)
            return 0.0

    def acquire(
        self, limit_class: str, endpoint: str, *, stop: threading.Event | None = None
    ) -> float:
        """Block until the request may go (and record it); return the seconds waited.

        Waits on ``stop`` so a shutdown interrupts at once with ShutdownRequested.
        """
        event = stop if stop is not None else threading.Event()
        waited = 0.0
        unreachable = 0
        while True:
            if event.is_set():
                raise ShutdownRequested("stopping while waiting for the rate limiter")
            try:
                wait = self.reserve(limit_class, endpoint)
                unreachable = 0
            except LedgerError:
                # No durable record, no request: wait for the ledger, backing off.
                unreachable += 1
                wait = min(2.0 ** (unreachable - 1), LEDGER_RETRY_MAX)
            if wait <= 0:
                return waited
            if event.wait(wait):
                raise ShutdownRequested("stopping while waiting for the rate limiter")
            waited += wait

    def window_for(self, limit_class: str, limit: int | None) -> float:
        """Seconds of the window whose limit is ``limit`` (a 429's RateLimit-Limit).

        Our configured windows first, then the documented tiers'; a limit we cannot place
        belongs to the longest window any documented limit has, a day.
        """
        for window in self._classes.get(limit_class, ()):
            if window.limit == limit:
                return window.seconds
        if limit is not None and limit in DOCUMENTED_WINDOWS:
            return DOCUMENTED_WINDOWS[limit]
        return DAY

    def clock(self) -> float:
        """The limiter's own clock, the time base of ``block_until``."""
        return self._clock()

    def block_until(self, until: float) -> None:
        """Hold every request of every class until ``until`` (clock time); never shortens.
        With a shared ledger every node is held (best effort: the local hold stands anyway)."""
        with self._lock:
            self._gate = max(self._gate, until)
        if self._shared is not None:
            with contextlib.suppress(LedgerError):
                self._shared.hold_requests_until(until)

    def blocked_for(self, now: float | None = None) -> float:
        """Seconds the shared 429 gate still holds (0.0 when open)."""
        with self._lock:
            current = self._clock() if now is None else now
            return max(0.0, self._gate - current)

    def usage(self, now: float | None = None) -> list[dict[str, object]]:
        """Requests counted in each window, per limit class and endpoint (the console's view).

        One row per (class, endpoint, window): ``used`` of ``limit`` in the last ``seconds``.
        """
        rows: list[dict[str, object]] = []
        with self._lock:
            current = self._clock() if now is None else now
            for (limit_class, endpoint), log in sorted(self._logs.items()):
                for window in self._classes.get(limit_class, ()):
                    used = len(log) - bisect.bisect_right(log, current - window.seconds)
                    rows.append(
                        {
                            "class": limit_class,
                            "endpoint": endpoint,
                            "seconds": window.seconds,
                            "used": used,
                            "limit": window.limit,
                        }
                    )
        return rows
