"""What the ledger's start-up checks cost: ``python -m bench.ledgercheck [--jobs 10000,100000]``.

Every daemon start runs ``ledgerguard.open_checked``: the id comparison, an O_RDWR probe,
SQLite's ``quick_check`` over every page and one write. This builds ledgers of N done jobs
(two outputs and two events each, like a real history) in a temp folder and prints the median
of 5 checked opens next to 5 plain ``Ledger`` opens.
"""

from __future__ import annotations

import argparse
import functools
import json
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from synthesia_watchd.stores.ledger import Ledger
from synthesia_watchd.stores.ledgerguard import open_checked

RUNS = 5


def build(path: Path, jobs: int) -> None:
    """A ledger of ``jobs`` done jobs, written in one transaction (fast to build)."""
    Ledger(path).close()
    conn = sqlite3.connect(path)
    now = time.time()
    with conn:
        conn.executemany(
            "INSERT INTO jobs (id, watch, source_path, size, mtime_ns, sha256, source_language,"
            " targets, state, next_attempt_at, output_dir, settings, created_at, updated_at,"
            " state_changed_at) VALUES (?, 'drop', ?, ?, ?, ?, 'en', ?, 'done', ?, '/srv/out',"
            " ?, ?, ?, ?)",
            (
                (
                    i,
                    f"/srv/drop/sub{i % 50}/clip{i:06d}.mp4",
                    10**8 + i,
                    i,
                    f"{i:064x}",
                    json.dumps(["fr-FR", "es-ES"]),
                    now,
                    json.dumps({"outputs": ["video"]}),
                    now,
                    now,
                    now,
                )
                for i in range(1, jobs + 1)
            ),
        )
        conn.executemany(
            "INSERT INTO outputs (job_id, language, kind, state, path, bytes, sha256,"
            " updated_at) VALUES (?, ?, 'video', 'done', ?, 8192, ?, ?)",
            (
                (i, lang, f"/srv/out/clip{i:06d}.dubbed-{lang}.mp4", f"{i:064x}", now)
                for i in range(1, jobs + 1)
                for lang in ("fr-FR", "es-ES")
            ),
        )
        conn.executemany(
            "INSERT INTO events (job_id, at, from_state, to_state, why) VALUES (?, ?, ?, ?, ?)",
            (
                (i, now, src, dst, "bench")
                for i in range(1, jobs + 1)
                for src, dst in ((None, "queued"), ("downloading", "done"))
            ),
        )
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def _median_ms(open_once: Callable[[], Ledger], runs: int = RUNS) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        ledger = open_once()
        times.append(time.perf_counter() - t0)
        ledger.close()
    return statistics.median(times) * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", default="10000,100000", help="comma-separated ledger sizes")
    args = parser.parse_args(argv)
    print("| jobs | ledger MiB | checked open (ms) | plain open (ms) |")
    print("| --- | --- | --- | --- |")
    for jobs in (int(n) for n in args.jobs.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "ledger.sqlite3"
            build(path, jobs)
            checked = _median_ms(functools.partial(open_checked, path))
            plain = _median_ms(functools.partial(Ledger, path))
            mib = path.stat().st_size / 2**20
            print(f"| {jobs} | {mib:.1f} | {checked:.0f} | {plain:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
