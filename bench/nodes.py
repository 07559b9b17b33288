"""1 node vs 3 on one PostgreSQL ledger: ``python -m bench.nodes [--files 30] [--runs 3]``.

The same load (``--files`` distinct videos of ``--size`` bytes dropped at once into one shared
folder) is worked by one daemon, then by three, each a real ``run`` subprocess with its own
state folder and node name on one PostgreSQL ledger (a throwaway local cluster, fsync on). Every
node's uploads are capped at ``--cap`` bytes per second (``upload.max_bandwidth``), so three
nodes have three times the upload bandwidth of one; rate limits are off and dubbing takes
``--dub`` seconds, so the upload is what the extra nodes can speed up. Wall time runs from the
drop to the last job's ``done``, start-up excluded.

Then the ledger figures of ``bench.ledgers`` on the same cluster: per-job ledger overhead,
PostgreSQL vs SQLite, and claim latency p50 / p95 of three nodes draining a queue.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from synthesia_watchd.domain.states import JobState
from synthesia_watchd.stores.postgres import PostgresLedger

from .common import NO_RATE_LIMITS, DaemonProcess, make_videos, median, wait_for, write_config
from .ledgers import PASSWORD, Cluster, measure, running_cluster
from .simproc import SimProcess

MAX_UPLOADS = 2
ENDED = (JobState.DONE, JobState.FAILED, JobState.PARTIAL, JobState.NEEDS_ATTENTION)


def _ended(url: str) -> int:
    """Jobs in an end state in the shared ledger."""
    with PostgresLedger(url, password=PASSWORD) as led:
        return len(led.list_jobs(states=ENDED, limit=100_000))


def run_nodes(
    sim: SimProcess, cluster: Cluster, work: Path, nodes: int, args: argparse.Namespace
) -> dict[str, Any]:
    """Drop ``args.files`` videos into a folder shared by ``nodes`` daemons; seconds to done."""
    db = work.name
    with cluster.admin() as admin:
        admin.execute(f'CREATE DATABASE "{db}"')
    url = cluster.url(db)
    drop, out = work / "drop", work / "out"
    drop.mkdir(parents=True)
    daemons = []
    for n in range(nodes):
        config = write_config(
            work / f"node-{n}",
            api_url=sim.url,
            watch={
                "input": str(drop),
                "output": str(out),
                "stable_seconds": 0.5,
                "poll_interval": 1,
                "mode": "native",
            },
            workers={"max_uploads": MAX_UPLOADS, "max_active_jobs": 8},
            rate_limits=NO_RATE_LIMITS,
            extra={
                "ledger": url,
                "node_name": f"node-{n}",
                "upload": {"max_bandwidth": args.cap},
            },
        )
        daemons.append(DaemonProcess(config, {**sim.env, "PGPASSWORD": PASSWORD}))
    sources = make_videos(work / "staging", args.files, size=args.size, seed=work.name)
    try:
        for daemon in daemons:
            daemon.start()
        for daemon in daemons:
            daemon.wait_started()
        t0 = time.monotonic()
        for src in sources:
            src.rename(drop / src.name)  # a finished file appears at once (same filesystem)
        wait_for(lambda: _ended(url) == args.files, 900, "every job to end", interval=0.25)
        seconds = time.monotonic() - t0
        with PostgresLedger(url, password=PASSWORD) as led:
            done = len(led.list_jobs(states=[JobState.DONE], limit=100_000))
    finally:
        for daemon in daemons:
            daemon.stop()
    uploads = [_uploads(d.log_path) for d in daemons]
    return {"nodes": nodes, "seconds": seconds, "done": done, "uploads": uploads}


def _uploads(log: Path) -> int:
    """Uploads a node finished, from its JSON log."""
    return sum(1 for line in log.read_text().splitlines() if '"to_state": "uploaded"' in line)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--files", type=int, default=30)
    ap.add_argument("--size", type=int, default=1024 * 1024, help="bytes per video")
    ap.add_argument("--cap", type=int, default=1024 * 1024, help="bytes/s per node")
    ap.add_argument("--dub", type=float, default=2.0, help="seconds each dub takes")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=200, help="jobs for the per-job overhead")
    ap.add_argument("--claims", type=int, default=600, help="jobs the claim latency drains")
    args = ap.parse_args(argv)
    walls: dict[int, list[float]] = {1: [], 3: []}
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_cluster(fsync=True) as cluster,
        SimProcess(dub_seconds=args.dub) as sim,
    ):
        for run in range(args.runs):
            for nodes in (1, 3):
                result = run_nodes(sim, cluster, Path(tmp) / f"r{run}n{nodes}", nodes, args)
                assert result["done"] == args.files, result
                walls[nodes].append(result["seconds"])
                print(
                    f"run {run + 1}: {nodes} node(s) {result['seconds']:.1f} s, uploads per node "
                    f"{result['uploads']}",
                    flush=True,
                )
        ledger_lines = measure(cluster, Path(tmp), args.jobs, args.claims)
    one, three = median(walls[1]), median(walls[3])
    load = (
        f"{args.files} videos of {args.size / 2**20:.1f} MiB, upload cap "
        f"{args.cap / 2**20:.1f} MiB/s per node ({MAX_UPLOADS} uploads), {args.dub:.0f} s dubs"
    )
    print(f"wall time to all done ({load}), median of {args.runs}:")
    print(f"  1 node   {one:6.1f} s   runs: {', '.join(f'{s:.1f}' for s in walls[1])}")
    print(f"  3 nodes  {three:6.1f} s   runs: {', '.join(f'{s:.1f}' for s in walls[3])}")
    print(f"  speed-up {one / three:6.2f} x")
    print("\n".join(ledger_lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
