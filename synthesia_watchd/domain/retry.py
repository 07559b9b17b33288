"""Retry policy as an immutable value, full-jitter backoff, and server wait hints (pure).

Deciding is kept apart from sleeping: a policy only says how many attempts are left and how long
the next pause should be; the caller sleeps (on a stop event, so shutdown is prompt). The policy
does not know which requests are safe to repeat; the client does, because only it knows whether
the server could have seen a request (see ``synthesia/transport.py``).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from email.utils import parsedate_to_datetime

#: Longest wait any server hint may impose; a bogus header must not park the daemon for weeks.
MAX_SERVER_WAIT = 86_400.0

#: (X-)RateLimit-Reset values above this are UNIX timestamps, below it plain seconds.
_EPOCH_THRESHOLD = 1e9


def backoff_delay(
    attempt: int, *, base: float, cap: float, rng: Callable[[], float] = random.random
) -> float:
    """Full jitter: a uniform pick in ``[0, min(cap, base * 2**attempt))``.

    Full jitter spreads retries of many workers apart instead of having them return in lockstep
    (the AWS architecture blog's comparison); the cap bounds the worst case.
    """
    if attempt < 0:
        raise ValueError("attempt must be >= 0")
    # Avoid float overflow for absurd attempt counts: past ~1000 doublings the cap wins anyway.
    ceiling = cap if attempt > 1000 else min(cap, base * 2.0**attempt)
    return max(0.0, rng() * ceiling)


@dataclass(frozen=True)
class RetryPolicy:
    """How many times one call may be tried, and how long to pause between tries.

    ``attempts`` counts the tries already made; ``increment()`` returns a new policy, so a
    policy shared between threads or calls is never mutated (urllib3's ``Retry`` works the same).
    """

    max_attempts: int = 4
    base: float = 0.5
    cap: float = 30.0
    attempts: int = 0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if self.base < 0 or self.cap < 0:
            raise ValueError("base and cap must be >= 0")

    def increment(self) -> RetryPolicy:
        """The policy after one more try."""
        return replace(self, attempts=self.attempts + 1)

    @property
    def exhausted(self) -> bool:
        """True when no further try is allowed."""
        return self.attempts >= self.max_attempts

    def backoff(self, rng: Callable[[], float] = random.random) -> float:
        """Seconds to pause before the next try (full jitter over the tries made so far)."""
        return backoff_delay(self.attempts, base=self.base, cap=self.cap, rng=rng)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def _number(text: str) -> float | None:
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _retry_after(text: str, now: float) -> float | None:
    seconds = _number(text)
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(text.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # HTTP-dates are GMT by definition
        return None
    return when.timestamp() - now


def _x_reset(text: str, now: float) -> float | None:
    value = _number(text)
    if value is None:
        return None
    return value - now if value > _EPOCH_THRESHOLD else value


@dataclass(frozen=True)
class ServerWait:
    """How long the server asked us to wait, which header said so, and what it said."""

    seconds: float
    source: str
    raw: str
    capped: bool = False


def server_wait(
    headers: Mapping[str, str], now: float | None = None, cap: float = MAX_SERVER_WAIT
) -> ServerWait | None:
    """The wait the server asks for, or None when it gave no usable hint.

    Reads ``Retry-After`` (delta-seconds or HTTP-date), ``RateLimit-Reset`` (seconds, the
    documented header) and ``X-RateLimit-Reset``; a reset value above 1e9 is a UNIX timestamp
    (as third-party SDKs describe it), never 30-odd years of seconds. The largest wins: waiting
    too little earns another 429, waiting a little too long costs nothing. ``now`` is
    wall-clock UNIX time (dates and timestamps are absolute). The answer is clamped to
    ``[0, cap]``: the caller passes the window the breached limit belongs to, since no limit
    needs a longer wait than its own window.
    """
    current = time.time() if now is None else now
    best: ServerWait | None = None
    for name, parse in (
        ("Retry-After", _retry_after),
        ("RateLimit-Reset", _x_reset),
        ("X-RateLimit-Reset", _x_reset),
    ):
        raw = _header(headers, name)
        if raw is None:
            continue
        value = parse(raw, current)
        if value is not None and (best is None or value > best.seconds):
            best = ServerWait(value, name, raw.strip())
    if best is None:
        return None
    limit = min(cap, MAX_SERVER_WAIT)
    seconds = min(limit, max(0.0, best.seconds))
    return replace(best, seconds=seconds, capped=best.seconds > limit)


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds the server asks us to wait (``server_wait``'s seconds), or None."""
    wait = server_wait(headers, now)
    return None if wait is None else wait.seconds
