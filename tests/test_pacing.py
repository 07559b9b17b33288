"""Pacing ahead of the limits: a burst through the shared limiter meets no 429 at all."""

from __future__ import annotations

import threading
from collections.abc import Callable

from synthesia_watchd.domain.ratelimit import RateLimiter, Window
from synthesia_watchd.domain.retry import RetryPolicy
from synthesia_watchd.simulator import Simulator
from synthesia_watchd.synthesia.api import SynthesiaClient

#: A scaled-down tier: the simulator enforces it, the client paces to it.
LIMIT, SECONDS = 8, 1.0


def test_a_burst_from_many_workers_meets_no_429(sim_factory: Callable[..., Simulator]) -> None:
    """40 asset creations from 4 threads at a scaled-down limit: every one 201, none 429."""
    sim = sim_factory(rate_limits={"write": [(LIMIT, SECONDS)], "read": [(LIMIT, SECONDS)]})
    limiter = RateLimiter(
        {"write": (Window(LIMIT, SECONDS),), "read": (Window(LIMIT, SECONDS),)}, margin=0.05
    )
    client = SynthesiaClient(
        sim.api_key, api_url=sim.url, limiter=limiter, retry=RetryPolicy(max_attempts=1)
    )
    errors: list[BaseException] = []

    def worker() -> None:
        for _ in range(10):
            try:
                client.create_asset(content_type="video/mp4", content_length=10, title="burst")
            except BaseException as exc:  # collected and asserted below
                errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    statuses = [r.status for r in sim.requests if r.endpoint == "POST /v2/assets"]
    assert not errors
    assert statuses.count(201) == 40
    assert 429 not in statuses
    # Exactly at the limit: no window of SECONDS ever held more than LIMIT requests.
    times = sorted(r.time for r in sim.requests if r.endpoint == "POST /v2/assets")
    for i in range(len(times) - LIMIT):
        assert times[i + LIMIT] - times[i] >= SECONDS - 0.02
