"""Benchmark 5: one big random file through the daemon's upload path vs bare boto3.

Both upload the same file to the simulator's S3 (moto, in the simulator's own process, so the
server never competes for this process's GIL), each with the temporary credentials of a fresh
asset (they are scoped to one object). The daemon's path is ``upload.upload_file`` with its
defaults, exactly as the pipeline calls it (16 MiB parts, 4 at once, a progress callback and
a stop event); bare boto3 is ``client.upload_file`` with boto3's default TransferConfig
(8 MiB parts, 10 at once). The two alternate, so neither always runs on a warmer server.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import botocore.config

from synthesia_watchd.domain.apitypes import UploadCredentials
from synthesia_watchd.domain.ratelimit import RateLimiter
from synthesia_watchd.synthesia.api import SynthesiaClient
from synthesia_watchd.synthesia.upload import REGION, upload_file

from .common import median
from .simproc import SimProcess

MIB = 1 << 20


def _random_file(path: Path, size: int) -> None:
    """Random bytes (incompressible, no sparse-file shortcuts anywhere on the way)."""
    with open(path, "wb") as fh:
        left = size
        while left:
            n = min(left, 8 * MIB)
            fh.write(os.urandom(n))
            left -= n


def _daemon_path(path: Path, creds: UploadCredentials) -> None:
    sent = [0]

    def progress(n: int) -> None:
        sent[0] += n

    upload_file(path, creds, progress=progress, stop=threading.Event())


def _bare_boto3(path: Path, creds: UploadCredentials, s3_url: str) -> None:
    session = boto3.session.Session(
        aws_access_key_id=creds.access_key_id,
        aws_secret_access_key=creds.secret_access_key,
        aws_session_token=creds.session_token,
        region_name=REGION,
    )
    client = session.client(
        "s3",
        endpoint_url=s3_url,
        config=botocore.config.Config(s3={"addressing_style": "path"}),
    )
    try:
        client.upload_file(str(path), creds.bucket, creds.key)
    finally:
        client.close()


def bench(*, mib: int, runs: int) -> dict[str, Any]:
    """``runs`` alternating pairs; the ratio of medians (daemon / bare; 1.0 = equal)."""
    times: dict[str, list[float]] = {"daemon": [], "boto3": []}
    with tempfile.TemporaryDirectory(prefix="bench-up-") as tmp:
        path = Path(tmp) / "big.mp4"
        _random_file(path, mib * MIB)
        warm_path = Path(tmp) / "warm.mp4"
        _random_file(warm_path, 20 * MIB)
        for r in range(runs):
            # A fresh simulator per pair: moto keeps every object in memory.
            with SimProcess() as sim:
                os.environ.update(sim.env)
                client = SynthesiaClient(
                    sim.env["SYNTHESIA_API_KEY"], api_url=sim.url, limiter=RateLimiter.unlimited()
                )
                # Warm the server up first (its first multipart upload is always slower).
                warm = client.create_asset(
                    content_type="video/mp4", content_length=warm_path.stat().st_size, title="w"
                )
                _bare_boto3(warm_path, warm.credentials, sim.s3_url)
                order = ("daemon", "boto3") if r % 2 == 0 else ("boto3", "daemon")
                for name in order:
                    asset = client.create_asset(
                        content_type="video/mp4", content_length=path.stat().st_size, title=name
                    )
                    t0 = time.perf_counter()
                    if name == "daemon":
                        _daemon_path(path, asset.credentials)
                    else:
                        _bare_boto3(path, asset.credentials, sim.s3_url)
                    times[name].append(time.perf_counter() - t0)
                client.close()
            print(
                f"  upload run {r + 1}/{runs}: daemon {times['daemon'][-1]:.1f}s, "
                f"boto3 {times['boto3'][-1]:.1f}s",
                flush=True,
            )
    d, b = median(times["daemon"]), median(times["boto3"])
    return {
        "mib": mib,
        "daemon_seconds": d,
        "boto3_seconds": b,
        "daemon_mib_s": mib / d,
        "boto3_mib_s": mib / b,
        "ratio": d / b,
        "runs": times,
    }
