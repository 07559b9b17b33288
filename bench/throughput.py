"""Benchmark 1: many videos dropped at once, the daemon against a one-file-at-a-time script.

Both talk to the same kind of simulator (its own process, dubbing latency ``dub_seconds``,
rate limits off on both sides) with the same SynthesiaClient and upload_file. The daemon's
wall time runs from the first drop to the last job's ``done`` in its ledger, so its
stable_seconds is included; the script's from its first request to its last download (its
files already exist: it waits for nothing).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from synthesia_watchd.domain.ratelimit import RateLimiter
from synthesia_watchd.synthesia.api import SynthesiaClient
from synthesia_watchd.synthesia.upload import upload_file

from .common import (
    NO_RATE_LIMITS,
    TARGETS,
    DaemonProcess,
    LedgerReader,
    ledger_path,
    make_videos,
    median,
    wait_for,
    write_config,
)
from .simproc import SimProcess

VIDEO_BYTES = 256 * 1024
MAX_UPLOADS = 2
MAX_ACTIVE_JOBS = 8
POLL_INTERVAL = 1.0
STABLE_SECONDS = 0.5


def run_daemon(
    sim: SimProcess,
    work: Path,
    files: int,
    seed: str,
    *,
    creator_tier: bool = False,
    durations: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Drop ``files`` videos at once into a running daemon; seconds until the last is done.

    ``creator_tier``: the daemon paces itself at the Creator tier's documented limits (its
    default) instead of running with limits off. ``durations``: each video's length.
    """
    drop, out = work / "drop", work / "out"
    drop.mkdir(parents=True)
    config = write_config(
        work,
        api_url=sim.url,
        watch={
            "input": str(drop),
            "output": str(out),
            "stable_seconds": STABLE_SECONDS,
            "poll_interval": POLL_INTERVAL,
            "mode": "native",
        },
        workers={"max_uploads": MAX_UPLOADS, "max_active_jobs": MAX_ACTIVE_JOBS},
        rate_limits=None if creator_tier else NO_RATE_LIMITS,
    )
    staging = work / "staging"
    sources = make_videos(staging, files, size=VIDEO_BYTES, seed=seed, durations=durations)
    daemon = DaemonProcess(config, sim.env).start()
    reader = LedgerReader(ledger_path(config))
    try:
        daemon.wait_started()
        t0 = time.time()
        for src in sources:
            src.rename(drop / src.name)  # a finished file appears at once (same filesystem)
        wait_for(
            lambda: reader.count(("done", "failed", "partial", "needs_attention")) == files,
            600,
            "every job to finish",
            interval=0.25,
        )
        last = reader.query("SELECT max(state_changed_at) FROM jobs")[0][0]
        counts = reader.counts()
        stages = _stages(reader, t0)
        detected = {
            str(pid): float(at)
            for pid, at in reader.query(
                "SELECT j.project_id, min(e.at) FROM jobs j JOIN events e ON e.job_id = j.id"
                " WHERE e.from_state = 'dubbing' AND e.to_state = 'downloading'"
                " GROUP BY j.id"
            )
        }
    finally:
        reader.close()
        daemon.stop()
    outputs = len(list(out.glob("*.dubbed-*.mp4")))
    return {
        "seconds": last - t0,
        "done": counts.get("done", 0),
        "outputs": outputs,
        "stages": stages,
        "detected": detected,
    }


def _stages(reader: LedgerReader, t0: float) -> dict[str, float]:
    """Median seconds per job spent in each stretch, from the ledger's events."""
    rows = reader.query(
        "SELECT j.id, j.created_at,"
        " (SELECT max(at) FROM events e WHERE e.job_id = j.id AND e.to_state = 'asset_created'),"
        " (SELECT min(at) FROM events e WHERE e.job_id = j.id AND e.to_state = 'uploaded'),"
        " (SELECT min(at) FROM events e WHERE e.job_id = j.id AND e.to_state = 'dubbing'),"
        " (SELECT min(at) FROM events e WHERE e.job_id = j.id AND e.to_state = 'downloading'),"
        " (SELECT min(at) FROM events e WHERE e.job_id = j.id AND e.to_state = 'done')"
        " FROM jobs j"
    )
    spans: dict[str, list[float]] = {
        "drop_to_queued": [],
        "queued_to_asset_created": [],
        "asset_created_to_uploaded": [],
        "uploaded_to_dubbing": [],
        "dubbing_to_downloading": [],
        "downloading_to_done": [],
    }
    for _, created, asset, uploaded, dubbing, downloading, done in rows:
        if None in (asset, uploaded, dubbing, downloading, done):
            continue
        points = (t0, created, asset, uploaded, dubbing, downloading, done)
        for key, a, b in zip(spans, points, points[1:], strict=False):
            spans[key].append(b - a)
    return {k: median(v) for k, v in spans.items()}


def run_sequential(sim: SimProcess, work: Path, files: int, seed: str) -> dict[str, Any]:
    """The classic script: create, upload, start, poll every POLL_INTERVAL, download, next."""
    os.environ.update(sim.env)  # AWS_ENDPOINT_URL_S3 for upload_file
    sources = make_videos(work / "seq-in", files, size=VIDEO_BYTES, seed=seed)
    out = work / "seq-out"
    out.mkdir()
    client = SynthesiaClient(
        sim.env["SYNTHESIA_API_KEY"], api_url=sim.url, limiter=RateLimiter.unlimited()
    )
    written = 0
    t0 = time.time()
    try:
        for src in sources:
            asset = client.create_asset(
                content_type="video/mp4", content_length=src.stat().st_size, title=src.stem
            )
            upload_file(src, asset.credentials)
            project_id = client.start_dubbing(
                asset_id=asset.id,
                title=src.stem,
                source_language="en",
                target_languages=TARGETS,
            )
            while True:
                time.sleep(POLL_INTERVAL)  # the script's own poll cadence, not synchronisation
                project = client.get_project(project_id)
                if project.status in ("complete", "error"):
                    break
            for item in project.assets:
                if item.download:
                    client.download(item.download, out / f"{src.stem}.dubbed-{item.language}.mp4")
                    written += 1
    finally:
        client.close()
    return {"seconds": time.time() - t0, "outputs": written}


def bench(*, files: int, runs: int, dub_seconds: float = 2.0) -> dict[str, Any]:
    """``runs`` rounds of daemon then script, each against a fresh simulator process."""
    rounds = []
    for r in range(runs):
        with tempfile.TemporaryDirectory(prefix="bench-tp-") as tmp:
            work = Path(tmp)
            with SimProcess(dub_seconds=dub_seconds) as sim:
                daemon = run_daemon(sim, work / "daemon", files, f"tp{r}d")
            with SimProcess(dub_seconds=dub_seconds) as sim:
                seq = run_sequential(sim, work, files, f"tp{r}s")
        rounds.append(
            {"daemon": daemon, "sequential": seq, "ratio": seq["seconds"] / daemon["seconds"]}
        )
        print(
            f"  throughput run {r + 1}/{runs}: daemon {daemon['seconds']:.1f}s, "
            f"sequential {seq['seconds']:.1f}s",
            flush=True,
        )
    return {
        "files": files,
        "languages": len(TARGETS),
        "dub_seconds": dub_seconds,
        "max_uploads": MAX_UPLOADS,
        "max_active_jobs": MAX_ACTIVE_JOBS,
        "poll_interval": POLL_INTERVAL,
        "stable_seconds": STABLE_SECONDS,
        "ideal_seconds": files / MAX_ACTIVE_JOBS * dub_seconds,
        "rounds": rounds,
    }


def bench_creator_tier(*, files: int, dub_seconds: float = 2.0) -> dict[str, Any]:
    """One daemon run pacing itself at the Creator tier (60 requests/min per endpoint)."""
    with (
        tempfile.TemporaryDirectory(prefix="bench-tp-") as tmp,
        SimProcess(dub_seconds=dub_seconds) as sim,
    ):
        result = run_daemon(sim, Path(tmp) / "daemon", files, "tpc", creator_tier=True)
    print(f"  throughput at Creator-tier pacing: {result['seconds']:.1f}s", flush=True)
    return {"files": files, "dub_seconds": dub_seconds, **result}


def bench_latency(*, files: int = 16, dub_seconds: float = 20.0) -> dict[str, Any]:
    """Longer dubs, where the poll plan matters: the daemon at Creator-tier pacing and with
    pacing off, one after the other in the same run (ideal: files / slots x dub_seconds)."""
    result: dict[str, Any] = {
        "files": files,
        "dub_seconds": dub_seconds,
        "max_active_jobs": MAX_ACTIVE_JOBS,
        "ideal_seconds": -(-files // MAX_ACTIVE_JOBS) * dub_seconds,
    }
    for name, creator in (("creator", True), ("off", False)):
        with (
            tempfile.TemporaryDirectory(prefix="bench-lat-") as tmp,
            SimProcess(dub_seconds=dub_seconds) as sim,
        ):
            run = run_daemon(sim, Path(tmp) / "daemon", files, f"lat-{name}", creator_tier=creator)
        run.pop("detected")
        run["of_ideal"] = result["ideal_seconds"] / run["seconds"]
        result[name] = run
        print(f"  {dub_seconds:g} s latency, pacing {name}: {run['seconds']:.1f}s", flush=True)
    return result
