"""The ledger backends side by side: ``python -m bench.ledgers [--jobs 200] [--claims 600]``.

Per-job overhead: the ledger operations one job makes on its way through the daemon (intake,
claims and lease releases, every state change, the submit marker, polls, outputs, and the
rate-window record of each API request), on a SQLite file (WAL, synchronous FULL) and on a
PostgreSQL database (a throwaway local cluster with fsync on, over loopback TCP), one job after
another. Claim latency: three nodes (three stores, one thread each) claiming one due job at a
time from a shared queue and moving it on, p50/p95 of every claim call.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from synthesia_watchd.domain.states import JobState, OutputState
from synthesia_watchd.stores.ledger import Lease, Ledger, LedgerStore
from synthesia_watchd.stores.postgres import PostgresLedger

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from pgcluster import PASSWORD, Cluster, running_cluster

S = JobState
# Windows wide enough that every request is recorded (the cost measured is the record).
WINDOWS = ((10**6, 60.0), (10**6, 3600.0), (10**6, 86_400.0))
REQUESTS_PER_JOB = ("POST /v2/assets", "POST /v2/dubbing", "GET /v2/dubbing/{id}") * 2


def claim(led: LedgerStore, state: JobState, node: str) -> None:
    """Claim the one due job in ``state`` for ``node`` (it must be there)."""
    t = time.time() + 1  # due even if added within this second
    assert led.claim([state], t, node, t + 60, limit=1), state


def one_job(led: LedgerStore, i: int, node: str) -> None:
    """Every ledger call one job makes from drop to done (two languages, two polls)."""
    now = time.time()
    job = led.add_job(
        watch="drop",
        source_path=f"/srv/drop/clip{i:06d}.mp4",
        size=10**8,
        mtime_ns=i,
        sha256=f"{i:064x}",
        source_language="en",
        targets=["fr-FR", "es-ES"],
        output_dir="/srv/out",
    )
    lease = Lease(node, now + 60)
    for endpoint in REQUESTS_PER_JOB:
        led.reserve_request(
            "read" if endpoint.startswith("GET") else "write", endpoint, now, WINDOWS
        )
    steps = ((S.QUEUED, S.ASSET_CREATED), (S.ASSET_CREATED, S.UPLOADED))
    for old, new in steps:
        claim(led, old, node)
        led.transition(job.id, old, new, why=new.value, asset_id="a")
        led.release(node, [job.id])
    claim(led, S.UPLOADED, node)
    led.update(job.id, expected=S.UPLOADED, lease=lease, submit_started_at=now)
    led.transition(job.id, S.UPLOADED, S.DUBBING, why="dub", project_id="p", submit_started_at=None)
    led.release(node, [job.id])
    for _ in range(2):
        claim(led, S.DUBBING, node)
        led.update(job.id, expected=S.DUBBING, next_attempt_at=now)
        led.release(node, [job.id])
    led.transition(job.id, S.DUBBING, S.DOWNLOADING, why="complete")
    for lang in ("fr-FR", "es-ES"):
        led.set_output(job.id, lang, state=OutputState.DONE, path=f"/srv/out/{i}.{lang}.mp4")
    led.transition(job.id, S.DOWNLOADING, S.DONE, why="done")


def per_job_ms(led: LedgerStore, jobs: int) -> float:
    start = time.perf_counter()
    for i in range(jobs):
        one_job(led, i, "bench")
    return (time.perf_counter() - start) / jobs * 1000


def claim_latency(open_store: Callable[[], LedgerStore], jobs: int) -> tuple[float, float]:
    """p50, p95 of claim calls (ms) by three nodes draining ``jobs`` queued jobs."""
    first = open_store()
    for i in range(jobs):
        first.add_job(
            watch="drop", source_path=f"/q/{i}.mp4", size=1, mtime_ns=i, sha256=f"q{i}",
            source_language="en", targets=["fr-FR"], output_dir="/o",
        )  # fmt: skip
    stores = [open_store() for _ in range(3)]
    times: list[float] = []
    lock = threading.Lock()

    def node(n: int) -> None:
        led, mine = stores[n], []
        while True:
            t = time.perf_counter()
            got = led.claim([S.QUEUED], time.time(), f"node-{n}", time.time() + 60, limit=1)
            mine.append(time.perf_counter() - t)
            if not got:
                break
            led.transition(got[0].id, S.QUEUED, S.ASSET_CREATED, why="claimed")
        with lock:
            times.extend(mine)

    threads = [threading.Thread(target=node, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for led in (first, *stores):
        led.close()
    q = statistics.quantiles(times, n=20)
    return q[9] * 1000, q[18] * 1000


def measure(cluster: Cluster, tmp: Path, jobs: int, claims: int) -> list[str]:
    """Both figures on both backends (new databases on ``cluster``, files in ``tmp``), as
    the lines of the report."""
    admin = cluster.admin()
    for db in ("perjob", "claims"):
        admin.execute(f"CREATE DATABASE {db}")
    admin.close()
    with Ledger(tmp / "perjob.sqlite3") as led:
        sqlite_ms = per_job_ms(led, jobs)
    with PostgresLedger(cluster.url("perjob"), password=PASSWORD) as led:
        pg_ms = per_job_ms(led, jobs)
    sq = claim_latency(lambda: Ledger(tmp / "claims.sqlite3"), claims)
    pg = claim_latency(lambda: PostgresLedger(cluster.url("claims"), password=PASSWORD), claims)
    return [
        f"per-job ledger overhead ({jobs} jobs, sequential):",
        f"  sqlite     {sqlite_ms:7.1f} ms/job",
        f"  postgresql {pg_ms:7.1f} ms/job",
        f"claim latency, 3 nodes draining {claims} jobs, p50 / p95:",
        f"  sqlite     {sq[0]:6.2f} / {sq[1]:6.2f} ms",
        f"  postgresql {pg[0]:6.2f} / {pg[1]:6.2f} ms",
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--jobs", type=int, default=200)
    ap.add_argument("--claims", type=int, default=600)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, running_cluster(fsync=True) as cluster:
        lines = measure(cluster, Path(tmp), args.jobs, args.claims)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
