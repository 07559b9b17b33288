"""Benchmark 3: what a daemon costs while nothing happens, over a large watched tree.

Variants, each a fresh daemon over 10,000 files in 100 subfolders:

- ``txt``: non-video files (``.txt``): ignored by name, never tracked, never queued;
- ``known``: videos whose jobs are already ``done`` in the ledger (seeded through the Ledger
  API before start): the catch-up scan re-offers each to intake, which recognises it by
  (path, size, mtime) without hashing; the window starts after that has settled;
- ``empty``: the same daemon over an empty folder, as the floor.

CPU is utime+stime of the daemon process over the window; peak RSS is VmHWM at its end.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from synthesia_watchd.domain.states import JobState
from synthesia_watchd.stores.ledger import Ledger

from .common import (
    TARGETS,
    DaemonProcess,
    LedgerReader,
    ledger_path,
    make_videos,
    median,
    wait_for,
)
from .common import write_config as _write_config
from .simproc import SimProcess

FILES = 10_000
PER_DIR = 100
POLL_SCAN_INTERVAL = 30.0
STABLE_SECONDS = 1.0
SETTLE_SECONDS = 3.0


def _populate(drop: Path, kind: str, files: int) -> list[Path]:
    if kind == "txt":
        paths = []
        for i in range(files):
            sub = drop / f"d{i // PER_DIR:03d}"
            sub.mkdir(parents=True, exist_ok=True)
            path = sub / f"notes-{i:05d}.txt"
            path.write_bytes(b"not a video\n")
            paths.append(path)
        return paths
    if kind == "known":
        return make_videos(drop, files, size=4096, seed="idle", per_dir=PER_DIR)
    return []


def _seed_ledger(path: Path, sources: list[Path], out: Path) -> None:
    """Record every source as a done job, as an earlier run of the daemon would have.

    Built on tmpfs when there is one (10,000 fsynced transactions on a disk take minutes),
    then copied into place once closed (closing checkpoints the WAL into the main file).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else path.parent) as scratch:
        seed = Path(scratch) / path.name
        _seed(seed, sources, out)
        shutil.copyfile(seed, path)


def _seed(path: Path, sources: list[Path], out: Path) -> None:
    with Ledger(path) as ledger:
        for src in sources:
            st = src.stat()
            ledger.add_job(
                watch="bench",
                source_path=str(src),
                size=st.st_size,
                mtime_ns=st.st_mtime_ns,
                sha256=None,
                source_language="en",
                targets=TARGETS,
                output_dir=str(out),
                state=JobState.DONE,
                why="seeded by the idle benchmark",
            )


def _pending(reader: LedgerReader) -> int | None:
    rows = reader.query("SELECT value FROM meta WHERE key = 'daemon'")
    if not rows:
        return None
    record = json.loads(rows[0][0])
    return sum(int(w.get("pending") or 0) for w in record.get("watches", []))


def measure(
    sim: SimProcess, work: Path, mode: str, drop: Path, seeded: Path | None, seconds: float
) -> dict[str, Any]:
    """One daemon over ``drop`` (with a copy of the ``seeded`` ledger, if any)."""
    config = _write_config(
        work,
        api_url=sim.url,
        watch={
            "input": str(drop),
            "output": str(work / "out"),
            "mode": mode,
            "scan_interval": POLL_SCAN_INTERVAL,
            "stable_seconds": STABLE_SECONDS,
        },
    )
    if seeded is not None:
        ledger_path(config).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(seeded, ledger_path(config))
    daemon = DaemonProcess(config, sim.env).start()
    reader = LedgerReader(ledger_path(config))
    try:
        t_start = time.monotonic()
        daemon.wait_started()
        # Settled: nothing pending at the watcher (the heartbeat record says so).
        wait_for(lambda: _pending(reader) == 0, 300, "the catch-up scan to settle", 0.5)
        time.sleep(SETTLE_SECONDS)  # let the last intakes finish before the window opens
        settle = time.monotonic() - t_start
        cpu0 = daemon.cpu_seconds()
        time.sleep(seconds)  # the measurement window itself
        cpu = daemon.cpu_seconds() - cpu0
        hwm = daemon.status_kib("VmHWM")
        jobs = reader.count()
    finally:
        reader.close()
        daemon.stop()
    return {
        "cpu_seconds": cpu,
        "cpu_percent": 100 * cpu / seconds,
        "cpu_before_window": cpu0,
        "settle_seconds": settle,
        "peak_rss_mib": hwm / 1024,
        "jobs": jobs,
    }


VARIANTS = (
    ("native", "empty"),
    ("native", "txt"),
    ("polling", "txt"),
    ("native", "known"),
    ("polling", "known"),
)


def bench(*, seconds: float, runs: int, files: int = FILES) -> dict[str, Any]:
    """Each variant ``runs`` times; the median CPU per variant. Trees are built once."""
    results: dict[str, Any] = {
        "polling_scan_interval": POLL_SCAN_INTERVAL,
        "window_seconds": seconds,
        "variants": [],
    }
    with tempfile.TemporaryDirectory(prefix="bench-idle-") as tmp, SimProcess() as sim:
        shared = Path(tmp)
        trees = {kind: shared / kind for kind in ("empty", "txt", "known")}
        counts = {kind: len(_populate(tree, kind, files)) for kind, tree in trees.items()}
        trees["empty"].mkdir()
        seeded = shared / "seeded.sqlite3"
        _seed_ledger(seeded, sorted(trees["known"].rglob("*.mp4")), shared / "out")
        for mode, kind in VARIANTS:
            per_run = []
            for r in range(runs):
                work = shared / f"run-{mode}-{kind}-{r}"
                per_run.append(
                    measure(
                        sim, work, mode, trees[kind], seeded if kind == "known" else None, seconds
                    )
                )
                print(
                    f"  idle {mode}/{kind} run {r + 1}/{runs}: "
                    f"{per_run[-1]['cpu_seconds']:.2f} CPU s in {seconds:.0f}s, "
                    f"peak RSS {per_run[-1]['peak_rss_mib']:.0f} MiB",
                    flush=True,
                )
            results["variants"].append(
                {
                    "mode": mode,
                    "kind": kind,
                    "files": counts[kind],
                    "cpu_seconds_median": median([x["cpu_seconds"] for x in per_run]),
                    "peak_rss_mib_max": max(x["peak_rss_mib"] for x in per_run),
                    "settle_seconds_median": median([x["settle_seconds"] for x in per_run]),
                    "runs": per_run,
                }
            )
    return results
