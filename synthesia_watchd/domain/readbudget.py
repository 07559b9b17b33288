"""The read budget of the status endpoint, planned over the day instead of found exhausted.

Every status poll and every download's URL fetch is a GET /v2/dubbing/{id}, one endpoint
with its own per-minute and per-day read limits (Creator tier: 60 a minute, 20,000 a day,
CONTRACT.md A10). Pacing alone (ratelimit.py) keeps under the per-minute limit, but a busy
day would poll at that pace for six hours, spend the day's reads, and then stall every
download until the window moves on. This module plans instead:

- Reads are counted from the ledger's request log (``ReadStore``): the rate limiter records
  every request there before it goes (ratelimit.py), so one table counts reads for both, a
  restart remembers the day's reads, and daemons sharing one ledger share one budget. Here
  they are summed per ten minutes; reads counted since the last look stand in until the next.
- ``poll_rate`` is the fastest steady rate that keeps every 24-hour window under the day's
  limit, given the reads still inside the window and when they leave it: after a quiet night
  it allows a burst, after a busy day it settles at limit / 86,400 s. ``poll_gap`` turns it
  into the shortest gap between two polls of one job: while less than half of the day's
  reads are spent, only the per-minute share counts (a day's work at the Creator tier is at
  most 1,000 submits, so 20 reads a job); beyond that the steady rate takes over by degrees.
- Reads that jobs already dubbing will need for their downloads (a URL fetch, perhaps one
  refresh each) are reserved first: ``hold`` stops polls, never downloads, when only that
  reserve is left.

The day is a sliding 24 hours, which is at least as strict as a calendar day; counts are
per ten minutes, and a period's reads are taken to leave the window only when its last one could,
so the plan errs on the safe side. Pure: the clock and the store are injected.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

#: Reads are counted per period of this many seconds (ten minutes).
BUCKET = 600
DAY = 86_400
#: The endpoint whose reads are planned (every poll and every download's URL fetch).
STATUS_ENDPOINT = "GET /v2/dubbing/{id}"
#: Reads a job dubbing now is expected to need after it finishes: the download's URL fetch
#: and one refresh of expired URLs.
RESERVE_PER_JOB = 2
#: While less than this share of the day's reads (less the reserve) is spent, only the
#: minute's share spaces polls: a burst of work after a quiet spell polls at full speed.
#: Beyond it, the share of the steady rate that lasts the day grows to the whole of it.
CALM = 0.5
MINUTE = 60.0
#: The shortest hold: a budget that is out waits at least this long before looking again.
MIN_HOLD = 1.0


class ReadStore(Protocol):
    """Where reads are recorded (the ledger's request log, written by the rate limiter)."""

    def api_reads_since(self, endpoint: str, since: float) -> dict[int, int]: ...


class ReadBudget:
    """Counts reads of the status endpoint and plans how fast polls may spend them.

    ``per_minute`` / ``per_day`` None: that window is not limited. Thread-safe.
    """

    def __init__(
        self,
        *,
        per_minute: int | None,
        per_day: int | None,
        store: ReadStore | None = None,
        clock: Callable[[], float] = time.time,
        endpoint: str = STATUS_ENDPOINT,
    ) -> None:
        self.per_minute = per_minute
        self.per_day = per_day
        self.endpoint = endpoint
        self._store = store
        self._clock = clock
        self._lock = threading.Lock()
        #: Counted here and not yet written to the store, per period start.
        self._pending: dict[int, int] = {}
        #: The store's counts (all nodes) as last read, per period start.
        self._stored: dict[int, int] = {}
        #: When each read of the last minute was sent (this node's own).
        self._recent: deque[float] = deque()
        self.flush()

    def record(self, endpoint: str, count: int = 1) -> None:
        """Count ``count`` requests sent to ``endpoint`` (other endpoints are ignored)."""
        if endpoint != self.endpoint:
            return
        now = self._clock()
        bucket = int(now // BUCKET * BUCKET)
        with self._lock:
            self._pending[bucket] = self._pending.get(bucket, 0) + count
            self._recent.extend([now] * count)
            while self._recent and self._recent[0] <= now - MINUTE:
                self._recent.popleft()

    def flush(self) -> None:
        """Read every node's counts back from the store (the daemon calls this with its
        heartbeat). The store already holds the reads counted here since the last look (the
        rate limiter recorded each before it went): they stop standing in. Reads counted
        while the store answers stay too, counted twice until the next look: the safe side."""
        now = self._clock()
        with self._lock:
            pending, self._pending = self._pending, {}
        if self._store is None:
            with self._lock:
                for bucket, n in pending.items():
                    self._stored[bucket] = self._stored.get(bucket, 0) + n
                self._stored = {h: n for h, n in self._stored.items() if h >= now - DAY - BUCKET}
            return
        try:
            stored = self._store.api_reads_since(self.endpoint, now - DAY - BUCKET)
        except Exception:
            with self._lock:  # keep the counts for the next look; never forget a read
                for bucket, n in pending.items():
                    self._pending[bucket] = self._pending.get(bucket, 0) + n
            raise
        with self._lock:
            self._stored = stored

    def window(self, now: float | None = None) -> dict[int, int]:
        """Reads per period start that are still inside the 24 hours ending ``now``."""
        now = self._clock() if now is None else now
        with self._lock:
            merged = dict(self._stored)
            for bucket, n in self._pending.items():
                merged[bucket] = merged.get(bucket, 0) + n
        # A period's reads leave the window when its last possible read does.
        return {h: n for h, n in merged.items() if h + BUCKET + DAY > now}

    def used(self, now: float | None = None) -> int:
        """Reads in the last 24 hours (all nodes, counted by whole periods, so a little more)."""
        return sum(self.window(now).values())

    def _leaving(self, now: float) -> list[tuple[float, int]]:
        """(seconds from now, reads) at which each period's reads leave the window, in order."""
        return sorted((h + BUCKET + DAY - now, n) for h, n in self.window(now).items())

    def poll_rate(self, now: float | None = None, *, reserve: int = 0) -> float:
        """Reads per second polls may spend steadily without any 24-hour window ever holding
        more than ``per_day - reserve``; ``math.inf`` when there is no day limit."""
        if self.per_day is None:
            return math.inf
        now = self._clock() if now is None else now
        room = self.per_day - reserve
        leaving = self._leaving(now)
        inside = sum(n for _, n in leaving)
        if inside >= room:
            return 0.0
        # Spending r for x seconds must leave room for what is still inside at x: the
        # tightest x is just before some period's reads leave, or the full day.
        rate = math.inf
        for at, n in leaving:
            if at > DAY:
                break
            if at > 0:
                rate = min(rate, (room - inside) / at)
            inside -= n
        rate = min(rate, (room - inside) / DAY)
        return max(rate, 0.0)

    def hold(self, now: float | None = None, *, reserve: int = 0) -> float:
        """0.0 when a poll may be sent; else seconds until enough reads leave the window.

        Downloads never ask: the ``reserve`` kept here is theirs.
        """
        if self.per_day is None:
            return 0.0
        now = self._clock() if now is None else now
        room = self.per_day - reserve
        inside = self.used(now)
        if inside < room:
            return 0.0
        for at, n in self._leaving(now):
            inside -= n
            if inside < room:
                return max(at, MIN_HOLD)
        return MIN_HOLD

    def poll_gap(
        self,
        now: float | None = None,
        *,
        polling: int,
        reserve: int = 0,
        other_rate: float = 0.0,
        minute: bool = True,
    ) -> float:
        """The shortest time between two polls of one job when ``polling`` jobs poll at once.

        ``other_rate``: reads per second expected for other uses (downloads' URL fetches),
        which come out of the same budget before the polls share what is left. ``minute``
        False leaves out the per-minute share: for a one-off burst, which the rate limiter
        paces within the minute's window anyway.
        """
        polling = max(polling, 1)
        now = self._clock() if now is None else now
        gap = 0.0
        if minute and self.per_minute is not None:
            # Each job's share of the minute; and when the last minute's reads leave no room
            # for one poll of each job polling, not before enough of them have left it (else
            # the polls would wait at the rate limiter, holding threads, for up to a minute).
            gap = polling * MINUTE / self.per_minute
            with self._lock:
                recent = [t for t in self._recent if t > now - MINUTE]
            over = len(recent) + polling - self.per_minute
            if over > 0:
                gap = max(gap, recent[min(over, len(recent)) - 1] + MINUTE - now)
        if self.per_day is None:
            return gap
        room = self.per_day - reserve
        pressure = (self.used(now) / room - CALM) / (1.0 - CALM) if room > 0 else 1.0
        if pressure <= 0:
            return gap
        rate = self.poll_rate(now, reserve=reserve) - other_rate
        if rate <= 0:
            return math.inf
        return max(gap, min(pressure, 1.0) * polling / rate)
