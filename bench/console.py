"""Console render time with 10,000 jobs in the ledger: ``python -m bench.console [--jobs N]``.

A real ledger is filled through the ledger's own API (7 in 10 jobs done, the rest queued,
dubbing, failed, partial or needing attention, two languages each), the console runs on
uvicorn on 127.0.0.1 exactly as the daemon starts it, and each page and API endpoint is
fetched over HTTP: 3 warm-up requests, then ``--requests`` timed ones. Reported: median and
p95 wall time per request, client side (what an operator's browser waits for).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import requests

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import median, percentile
from synthesia_watchd.config.load import build_config
from synthesia_watchd.domain.states import JobState, OutputState
from synthesia_watchd.stores.ledger import Ledger
from synthesia_watchd.web.data import Console
from synthesia_watchd.web.server import WebServer

PATHS = (
    "/",
    "/jobs",
    "/jobs?state=failed&watch=w1",
    "/jobs?live=1",
    "/jobs/{mid}",
    "/failures",
    "/attention",
    "/api/v1/status",
    "/api/v1/jobs?limit=50",
    "/api/v1/jobs/{mid}",
)
_CHAIN = (JobState.ASSET_CREATED, JobState.UPLOADED, JobState.DUBBING, JobState.DOWNLOADING)


def fill(ledger: Ledger, jobs: int) -> None:
    """``jobs`` jobs over three watches, in a realistic mix of states."""
    for i in range(jobs):
        job = ledger.add_job(
            watch=f"w{i % 3}",
            source_path=f"/srv/drop/w{i % 3}/folder-{i // 100}/video-{i:05d}.mp4",
            size=50_000_000,
            mtime_ns=i,
            sha256=f"{i:064x}",
            source_language="en",
            targets=["fr-FR", "es-ES"],
            output_dir="/srv/dubbed",
        )
        kind = i % 20
        if kind < 14:  # done
            state = JobState.QUEUED
            for nxt in _CHAIN:
                ledger.transition(job.id, state, nxt, why="bench", project_id=f"p{i}")
                state = nxt
            for lang in ("fr-FR", "es-ES"):
                ledger.set_output(job.id, lang, "video", state=OutputState.DONE, path=f"/o/{i}")
            ledger.transition(job.id, state, JobState.DONE, why="bench")
        elif kind < 16:
            ledger.transition(
                job.id, JobState.QUEUED, JobState.FAILED, why="bench", last_error="not a video"
            )
        elif kind == 16:
            ledger.transition(
                job.id,
                JobState.QUEUED,
                JobState.NEEDS_ATTENTION,
                why="bench",
                last_error="a different file sits at the output name",
            )
        elif kind == 17:
            for nxt in _CHAIN[:3]:
                ledger.transition(job.id, ledger.get(job.id).state, nxt, why="bench")


def bench(jobs: int, requests_per_path: int) -> dict[str, dict[str, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        config = build_config(
            {
                "state_dir": str(base),
                "watches": [
                    {"name": f"w{n}", "input": str(base / f"in{n}"), "targets": ["fr-FR", "es-ES"]}
                    for n in range(3)
                ],
            },
            filename="<bench>",
            environ={},
        )
        with Ledger(config.ledger) as ledger:
            t0 = time.monotonic()
            fill(ledger, jobs)
            print(f"filled {jobs} jobs in {time.monotonic() - t0:.1f}s", flush=True)
            server = WebServer(Console(ledger=ledger, config=lambda: config), "127.0.0.1:0", None)
            server.start()
            try:
                url = f"http://127.0.0.1:{server.port}"
                out = {}
                with requests.Session() as http:
                    for template in PATHS:
                        path = template.format(mid=jobs // 2)
                        headers = {"HX-Request": "true"} if "live=1" in path else {}
                        times = []
                        for n in range(3 + requests_per_path):
                            t = time.perf_counter()
                            r = http.get(url + path, headers=headers, timeout=60)
                            elapsed = time.perf_counter() - t
                            assert r.status_code == 200, (path, r.status_code)
                            if n >= 3:
                                times.append(elapsed * 1000)
                        out[path] = {
                            "median_ms": round(median(times), 1),
                            "p95_ms": round(percentile(times, 95), 1),
                            "bytes": len(r.content),
                        }
                return out
            finally:
                server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args(argv)
    result = bench(args.jobs, args.requests)
    print(f"\n| page ({args.jobs} jobs in the ledger) | median | p95 | bytes |")
    print("| --- | --- | --- | --- |")
    for path, r in result.items():
        print(f"| `{path}` | {r['median_ms']} ms | {r['p95_ms']} ms | {r['bytes']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
