"""Benchmark 7: realistic dub latency; how late the daemon notices a finished dub, and at what
cost in reads.

The simulator dubs at 60 s per minute of video, +- 30 % (uniform) per dub; 40 videos whose
lengths spread over ``--min-seconds`` to ``--max-seconds`` are dropped at once into a daemon
with max_active_jobs 8 and its default (Creator-tier) pacing. For each dub: the lag from the
moment the simulator finished it to the daemon's ``dubbing -> downloading`` event, as a
fraction of the dub's own time; and the GET /v2/dubbing/{id} requests per job (status polls
plus the download's URL fetch), counted by the simulator.
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path
from typing import Any

from .common import median, percentile
from .simproc import SimProcess
from .throughput import MAX_ACTIVE_JOBS, run_daemon

RATE = 1.0  # seconds of dubbing per second of video
JITTER = 0.3


def bench(
    *, files: int = 40, min_seconds: float = 20.0, max_seconds: float = 60.0
) -> dict[str, Any]:
    """One run; figures per dub from the simulator's project times and the daemon's ledger."""
    rng = random.Random(7)
    durations = [round(rng.uniform(min_seconds, max_seconds), 1) for _ in range(files)]
    with tempfile.TemporaryDirectory(prefix="bench-real-") as tmp:
        dump = Path(tmp) / "sim.json"
        with SimProcess(dub_seconds=2.0, dub_rate=RATE, dub_jitter=JITTER, dump=dump) as sim:
            run = run_daemon(
                sim, Path(tmp) / "daemon", files, "real", creator_tier=True, durations=durations
            )
        projects = sim.timings()
    lags, fractions, reads = [], [], []
    for pid, detected in run["detected"].items():
        p = projects.get(pid)
        if p is None:
            continue
        took = p["done"] - p["created"]
        lag = max(detected - p["done"], 0.0)
        lags.append(lag)
        fractions.append(lag / took)
        reads.append(p["reads"])
    result = {
        "files": files,
        "video_seconds": [min_seconds, max_seconds],
        "rate": RATE,
        "jitter": JITTER,
        "max_active_jobs": MAX_ACTIVE_JOBS,
        "seconds": run["seconds"],
        "done": run["done"],
        "lag_fraction_p50": median(fractions),
        "lag_fraction_p95": percentile(fractions, 95),
        "lag_seconds_p50": median(lags),
        "lag_seconds_p95": percentile(lags, 95),
        "reads_per_job": sum(reads) / len(reads) if reads else float("nan"),
        "reads_per_job_max": max(reads, default=0),
    }
    print(
        f"  realistic: lag p50 {result['lag_fraction_p50']:.1%}"
        f" p95 {result['lag_fraction_p95']:.1%} of dub time,"
        f" {result['reads_per_job']:.1f} reads per job, {run['seconds']:.0f}s",
        flush=True,
    )
    return result
