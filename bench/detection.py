"""Benchmark 2: from the writer's close() to the job in the ledger, minus stable_seconds.

A writer creates files one at a time (write, close, a pause) and notes the wall time of each
close; the job's ``created_at`` in the ledger is when intake recorded it (after hashing the
file). What remains after subtracting stable_seconds is the daemon's own detection overhead:
event delivery or the polling period, the main loop's wake-up, intake.

The daemon has a valid key and a simulator whose dubbing never finishes, with one project
slot: the first job or two go out to the API, every later one stays queued, so the dispatch
loop runs as it would in production while nothing else competes for the disk.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from synthesia_watchd.domain.media import sample_video

from .common import (
    DaemonProcess,
    LedgerReader,
    ledger_path,
    percentile,
    wait_for,
    write_config,
)
from .simproc import SimProcess

STABLE_SECONDS = 1.0
POLL_SCAN_INTERVAL = 1.0
#: Pauses between files, cycled: irregular so files do not line up with the polling period.
GAPS = (0.31, 0.47, 0.23, 0.53, 0.37)


def measure(sim: SimProcess, work: Path, mode: str, files: int) -> dict[str, Any]:
    """Overheads (seconds) of ``files`` drops in one daemon run in ``mode``."""
    drop = work / "drop"
    drop.mkdir(parents=True)
    config = write_config(
        work,
        api_url=sim.url,
        watch={
            "input": str(drop),
            "output": str(work / "out"),
            "stable_seconds": STABLE_SECONDS,
            "mode": mode,
            "scan_interval": POLL_SCAN_INTERVAL,
        },
        workers={"max_active_jobs": 1},
    )
    daemon = DaemonProcess(config, sim.env).start()
    reader = LedgerReader(ledger_path(config))
    closed: dict[str, float] = {}
    try:
        daemon.wait_started()
        for i in range(files):
            path = drop / f"{mode}-{i:03d}.mp4"
            with open(path, "wb") as fh:
                fh.write(sample_video(f"det-{mode}-{i}", 64 * 1024))
            closed[str(path)] = time.time()
            time.sleep(GAPS[i % len(GAPS)])  # pacing the writer, not synchronisation
        wait_for(lambda: reader.count() >= files, 120, "every file queued")
        rows = reader.query("SELECT source_path, created_at FROM jobs")
    finally:
        reader.close()
        daemon.stop()
    overheads = [r["created_at"] - closed[r["source_path"]] - STABLE_SECONDS for r in rows]
    return {
        "overheads": overheads,
        "p50": percentile(overheads, 50),
        "p95": percentile(overheads, 95),
    }


def bench(*, files: int, runs: int) -> dict[str, Any]:
    """Native and polling, ``runs`` daemon runs each; percentiles pooled over every file."""
    result: dict[str, Any] = {
        "stable_seconds": STABLE_SECONDS,
        "polling_scan_interval": POLL_SCAN_INTERVAL,
    }
    with SimProcess(dub_seconds=1e6) as sim:
        for mode in ("native", "polling"):
            per_run = []
            for r in range(runs):
                with tempfile.TemporaryDirectory(prefix="bench-det-") as tmp:
                    per_run.append(measure(sim, Path(tmp), mode, files))
                print(
                    f"  detection {mode} run {r + 1}/{runs}: p50 {per_run[-1]['p50']:.3f}s "
                    f"p95 {per_run[-1]['p95']:.3f}s",
                    flush=True,
                )
            pooled = [x for run in per_run for x in run["overheads"]]
            result[mode] = {
                "files": len(pooled),
                "p50": percentile(pooled, 50),
                "p95": percentile(pooled, 95),
                "max": max(pooled),
                "runs": [{"p50": run["p50"], "p95": run["p95"]} for run in per_run],
            }
    return result
