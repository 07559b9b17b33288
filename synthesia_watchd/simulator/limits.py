"""Sliding-window rate limits per endpoint, as Synthesia documents them (tiered, per class).

Writes (POST/PUT) and reads (GET) have their own windows, and every endpoint template counts
separately. A refused request does not use up a slot, so a client that honours
``RateLimit-Reset`` gets through on its next try.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Mapping, Sequence

Windows = Sequence[tuple[int, float]]

#: Documented tiers: (limit, window seconds) for write and read operations.
TIERS: dict[str, dict[str, list[tuple[int, float]]]] = {
    "tier1": {
        "write": [(120, 60), (600, 3600), (3000, 86400)],
        "read": [(120, 60), (80000, 86400)],
    },
    "tier2": {"write": [(80, 60), (400, 3600), (2000, 86400)], "read": [(80, 60), (40000, 86400)]},
    "creator": {
        "write": [(60, 60), (300, 3600), (1000, 86400)],
        "read": [(60, 60), (20000, 86400)],
    },
}
TIERS["tier3"] = TIERS["creator"]


def limit_class(method: str) -> str:
    """``write`` for POST/PUT/PATCH/DELETE, ``read`` otherwise."""
    return "write" if method.upper() in {"POST", "PUT", "PATCH", "DELETE"} else "read"


class RateLimiter:
    """Exact sliding windows; ``check`` either admits a request or says which limit it broke."""

    def __init__(self, limits: str | Mapping[str, Windows]) -> None:
        if isinstance(limits, str):
            if limits not in TIERS:
                raise ValueError(f"unknown rate-limit tier {limits!r}; one of {', '.join(TIERS)}")
            limits = TIERS[limits]
        unknown = set(limits) - {"write", "read"}
        if unknown:
            raise ValueError(f"rate limit classes are 'write' and 'read', not {sorted(unknown)}")
        self._limits = {cls: sorted((int(n), float(s)) for n, s in w) for cls, w in limits.items()}
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, endpoint: str, method: str, now: float) -> tuple[int, int] | None:
        """Admit and count a request (None), or return (breached limit, seconds until a slot).

        When several windows are full, the one that frees up last is reported: waiting for
        it is the only wait that is sure to succeed.
        """
        windows = self._limits.get(limit_class(method), [])
        if not windows:
            return None
        longest = max(s for _, s in windows)
        with self._lock:
            hits = self._hits.setdefault(endpoint, deque())
            while hits and hits[0] <= now - longest:
                hits.popleft()
            worst: tuple[int, int] | None = None
            for limit, seconds in windows:
                inside = [t for t in _tail(hits, now - seconds)]
                if len(inside) >= limit:
                    # The slot frees when the oldest hit that still counts leaves the window.
                    oldest = inside[len(inside) - limit]
                    reset = max(1, math.ceil(oldest + seconds - now))
                    if worst is None or reset > worst[1]:
                        worst = (limit, reset)
            if worst is None:
                hits.append(now)
            return worst


def _tail(hits: deque[float], after: float) -> list[float]:
    """The hits later than ``after`` (oldest first)."""
    out: list[float] = []
    for t in reversed(hits):
        if t <= after:
            break
        out.append(t)
    out.reverse()
    return out
