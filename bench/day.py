"""Benchmark 8: a simulated day of continuous work at the Creator tier, on a fake clock.

Wall time would take a day, so this one is an in-process simulation: the daemon's own poll
planner (pollplan.Poller), read budget (readbudget.ReadBudget) and rate limiter
(ratelimit.RateLimiter, Creator windows) run on a real ledger file, all reading one fake
clock, against a model of Synthesia: a dub of a video of L seconds takes L x U(0.7, 1.3)
seconds; there is always more work waiting (a backlog that never runs dry), submitted into
8 project slots as fast as the write limits allow (POST /v2/assets and POST /v2/dubbing,
60/min, 300/h, 1,000/day each). Every status poll and every download's URL fetch is one
GET /v2/dubbing/{id}, paced by the limiter like the real client.

Reported: jobs finished, reads (per job, and the most in any 24 hours against the 20,000
limit), how often a read had to wait for the limiter's day window (the goal: never), how
long polls were held by the budget, and the completion-to-detection lag.
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import median, percentile
from synthesia_watchd.domain.ratelimit import CREATOR_TIER, READ, WRITE, RateLimiter
from synthesia_watchd.domain.readbudget import DAY, STATUS_ENDPOINT, ReadBudget
from synthesia_watchd.domain.states import JobState
from synthesia_watchd.engine.pollplan import Poller
from synthesia_watchd.stores.ledger import Ledger

SLOTS = 8
POLL_INTERVAL = 10.0  # the watch default
POLL_MAX = 300.0
READS_PER_DAY = 20_000
FLUSH_EVERY = 60.0  # simulated seconds between budget flushes (the daemon: every 5 s)


class Clock:
    """The one fake clock every part reads."""

    def __init__(self, start: float) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t


def simulate(
    *,
    hours: float = 24.0,
    min_video: float = 30.0,
    max_video: float = 600.0,
    slots: int = SLOTS,
    lengths_known: bool = True,
    seed: int = 1,
) -> dict[str, Any]:
    """Run the day; returns the figures."""
    rng = random.Random(seed)
    start = 1_750_000_200.0
    clock = Clock(start)
    end = start + hours * 3600
    limiter = RateLimiter(CREATOR_TIER, clock=clock, margin=0.0)
    with tempfile.TemporaryDirectory(prefix="bench-day-") as tmp:
        ledger = Ledger(Path(tmp) / "ledger.sqlite3", now=clock)
        budget = ReadBudget(per_minute=60, per_day=READS_PER_DAY, store=ledger, clock=clock)
        poller = Poller(ledger, budget, now=clock)
        events: list[tuple[float, int, str, int]] = []  # (time, seq, kind, job id)
        seq = 0
        done_at: dict[int, float] = {}
        reads_log: deque[float] = deque()
        stats: dict[str, Any] = {
            "jobs_done": 0,
            "reads": 0,
            "max_reads_24h": 0,
            "day_window_waits": 0,
            "minute_window_waits": 0,
            "holds": 0,
            "held_seconds": 0.0,
            "submits": 0,
        }
        reads_of: dict[int, int] = {}
        lags: list[float] = []
        active = 0
        last_flush = start

        def push(at: float, kind: str, job_id: int) -> None:
            nonlocal seq
            seq += 1
            heapq.heappush(events, (at, seq, kind, job_id))

        def read(job_id: int) -> float:
            """One GET through the limiter; returns when it went (may wait)."""
            while True:
                wait = limiter.reserve(READ, STATUS_ENDPOINT, clock.t)
                if wait <= 0:
                    break
                in_day = sum(1 for t in reads_log if t > clock.t - DAY)
                key = "day_window_waits" if in_day >= READS_PER_DAY else "minute_window_waits"
                stats[key] += 1
                clock.t += wait
            budget.record(STATUS_ENDPOINT)
            reads_log.append(clock.t)
            while reads_log and reads_log[0] <= clock.t - DAY:
                reads_log.popleft()
            stats["max_reads_24h"] = max(stats["max_reads_24h"], len(reads_log))
            stats["reads"] += 1
            reads_of[job_id] = reads_of.get(job_id, 0) + 1
            return clock.t

        asset_ready = False

        def try_submit() -> None:
            nonlocal active, asset_ready
            while active < slots:
                for endpoint in ("POST /v2/assets", "POST /v2/dubbing"):
                    if endpoint == "POST /v2/assets" and asset_ready:
                        continue
                    wait = limiter.reserve(WRITE, endpoint, clock.t)
                    if wait > 0:  # a write window is full: try again when it opens
                        push(clock.t + wait, "submit", 0)
                        return
                    asset_ready = endpoint == "POST /v2/assets"
                length = rng.uniform(min_video, max_video)
                job = ledger.add_job(
                    watch="day",
                    source_path=f"v{stats['submits']}.mp4",
                    size=1,
                    mtime_ns=1,
                    sha256=None,
                    source_language="en",
                    targets=["de"],
                    output_dir="out",
                    duration_s=length if lengths_known else None,
                )
                for new in (JobState.ASSET_CREATED, JobState.UPLOADED):
                    job = ledger.transition(job.id, job.state, new, why=new.value)
                first = poller.first_poll_at(
                    job, clock.t, poll_interval=POLL_INTERVAL, poll_max=POLL_MAX
                )
                job = ledger.transition(
                    job.id, JobState.UPLOADED, JobState.DUBBING, why="submitted",
                    next_attempt_at=first,
                )  # fmt: skip
                done_at[job.id] = clock.t + length * rng.uniform(0.7, 1.3)
                push(first, "poll", job.id)
                active += 1
                stats["submits"] += 1

        try_submit()
        while events and events[0][0] < end:
            at, _, kind, job_id = heapq.heappop(events)
            clock.t = max(clock.t, at)
            if clock.t - last_flush >= FLUSH_EVERY:
                budget.flush()
                last_flush = clock.t
            if kind == "submit":
                try_submit()
                continue
            job = ledger.get(job_id)
            if job.state is not JobState.DUBBING or job.next_attempt_at > clock.t + 1e-6:
                continue  # re-planned meanwhile: a newer event stands for it
            held = poller.hold(clock.t)
            if held > 0:
                stats["holds"] += 1
                stats["held_seconds"] += held
                ledger.update(job_id, expected=JobState.DUBBING, next_attempt_at=clock.t + held)
                push(clock.t + held, "poll", job_id)
                continue
            polled = read(job_id)
            if polled < done_at[job_id]:
                when = poller.next_poll_at(
                    job, clock.t, poll_interval=POLL_INTERVAL, poll_max=POLL_MAX
                )
                ledger.update(job_id, expected=JobState.DUBBING, next_attempt_at=when)
                push(when, "poll", job_id)
                continue
            took = done_at[job_id] - job.state_changed_at
            lags.append((polled - done_at[job_id]) / took)
            ledger.transition(
                job_id, JobState.DUBBING, JobState.DOWNLOADING, why="dubbing complete",
                next_attempt_at=clock.t,
            )  # fmt: skip
            moved = poller.finished(job_id, clock.t, poll_max=POLL_MAX)
            for other in moved:
                push(ledger.get(other).next_attempt_at, "poll", other)
            read(job_id)  # the download's URL fetch
            ledger.transition(job_id, JobState.DOWNLOADING, JobState.DONE, why="downloaded")
            stats["jobs_done"] += 1
            active -= 1
            try_submit()
        budget.flush()
        ledger.close()
    done = stats["jobs_done"]
    return {
        **stats,
        "hours": hours,
        "video_seconds": [min_video, max_video],
        "slots": slots,
        "lengths_known": lengths_known,
        "reads_per_day_limit": READS_PER_DAY,
        "reads_per_job": sum(reads_of.values()) / max(len(reads_of), 1),
        "reads_per_done_job": stats["reads"] / max(done, 1),
        "lag_fraction_p50": median(lags),
        "lag_fraction_p95": percentile(lags, 95),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.day", description=__doc__.split("\n")[0])
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--min-video", type=float, default=30.0, help="shortest video, seconds")
    parser.add_argument("--max-video", type=float, default=600.0, help="longest video, seconds")
    parser.add_argument("--slots", type=int, default=SLOTS, help="workers.max_active_jobs")
    parser.add_argument(
        "--no-lengths", action="store_true", help="jobs without a parsed video length"
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    t0 = time.monotonic()
    result = simulate(
        hours=args.hours,
        min_video=args.min_video,
        max_video=args.max_video,
        slots=args.slots,
        lengths_known=not args.no_lengths,
        seed=args.seed,
    )
    result["wall_seconds"] = round(time.monotonic() - t0, 1)
    sys.stdout.write(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
