"""Benchmark 4: ten thousand small videos dropped at once; intake time, memory, ledger size,
and how fast ``synthesia-watchd status`` answers over that ledger.

Only intake is measured, but with the whole daemon running: it has a valid key and a
simulator whose dubbing never finishes, with ``max_active_jobs: 1``, so after the first few
jobs reach the API (one dubbing, two uploaded ahead) every other job stays ``queued``. The
dispatch loop keeps querying the growing ledger as it would in production; a daemon with no
key would pause dispatch and measure less than what runs for real.

The files are written to a staging folder first (creating 10,000 files is the writer's cost,
not the daemon's), then renamed into 100 subfolders of the watched folder in one burst.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import (
    DaemonProcess,
    LedgerReader,
    ledger_bytes,
    ledger_path,
    make_videos,
    median,
    wait_for,
    write_config,
)
from .simproc import SimProcess

PER_DIR = 100
STABLE_SECONDS = 1.0
CLI_RUNS = 5


def _timed(argv: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def measure(sim: SimProcess, work: Path, files: int) -> dict[str, Any]:
    drop, staging = work / "drop", work / "staging"
    sources = make_videos(staging, files, size=4096, seed=f"scale-{work.name}", per_dir=PER_DIR)
    for i in range(0, files, PER_DIR):
        (drop / f"d{i // PER_DIR:03d}").mkdir(parents=True)
    config = write_config(
        work,
        api_url=sim.url,
        watch={
            "input": str(drop),
            "output": str(work / "out"),
            "mode": "native",
            "stable_seconds": STABLE_SECONDS,
        },
        workers={"max_active_jobs": 1},
    )
    ledger = ledger_path(config)
    daemon = DaemonProcess(config, sim.env).start()
    reader = LedgerReader(ledger)
    try:
        daemon.wait_started()
        cpu0 = daemon.cpu_seconds()
        t0 = time.time()
        for src in sources:
            src.rename(drop / src.parent.name / src.name)
        dropped = time.time() - t0
        wait_for(lambda: reader.count() >= files, 900, f"{files} jobs in the ledger", 0.5)
        last = reader.query("SELECT max(created_at) FROM jobs")[0][0]
        cpu = daemon.cpu_seconds() - cpu0
        hwm = daemon.status_kib("VmHWM")
        counts = reader.counts()
        size = ledger_bytes(ledger)
        status_argv = [sys.executable, "-m", "synthesia_watchd", "status", "--ledger", str(ledger)]
        status = [_timed(status_argv) for _ in range(CLI_RUNS)]
        bare = [_timed([sys.executable, "-m", "synthesia_watchd", "--version"]) for _ in range(3)]
    finally:
        reader.close()
        daemon.stop()
    return {
        "files": files,
        "drop_seconds": dropped,
        "queued_seconds": last - t0,
        "files_per_second": files / (last - t0),
        "intake_cpu_seconds": cpu,
        "peak_rss_mib": hwm / 1024,
        "ledger_mib": size / 2**20,
        "counts": counts,
        "status_seconds": status,
        "status_median": median(status),
        "cli_startup_median": median(bare),
    }


def bench(*, files: int, runs: int) -> dict[str, Any]:
    """``runs`` fresh daemons, each given ``files`` files; medians across runs."""
    per_run = []
    with SimProcess(dub_seconds=1e6) as sim:
        for r in range(runs):
            with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
                work = Path(tmp) / f"r{r}"
                per_run.append(measure(sim, work, files))
            x = per_run[-1]
            print(
                f"  scale run {r + 1}/{runs}: {files} queued in {x['queued_seconds']:.1f}s, "
                f"peak RSS {x['peak_rss_mib']:.0f} MiB, ledger {x['ledger_mib']:.1f} MiB, "
                f"status {x['status_median']:.2f}s",
                flush=True,
            )
    keys = (
        "queued_seconds",
        "files_per_second",
        "intake_cpu_seconds",
        "peak_rss_mib",
        "ledger_mib",
        "status_median",
        "cli_startup_median",
        "drop_seconds",
    )
    return {
        "files": files,
        "stable_seconds": STABLE_SECONDS,
        **{k: median([x[k] for x in per_run]) for k in keys},
        "runs": per_run,
    }
