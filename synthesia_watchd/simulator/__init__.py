"""A loopback Synthesia (API on 127.0.0.1) with a real S3 from moto, for tests and the demo.

It follows the API contract: bare-key ``Authorization``, 403 "Forbidden - Wrong API key.",
``{"error", "context"}`` bodies, lowercase statuses, ``download``/``thumbnail``/``captions``
URLs that expire, temporary S3 credentials scoped to one object. It imports nothing from the
daemon but ``contract`` and ``media``.

Faults, per endpoint (``"POST /v2/assets"``, ``"GET /v2/assets/{id}"``, ``"POST /v2/dubbing"``,
``"GET /v2/dubbing/{id}"``, ``"PUT /v2/dubbing/{id}"``, ``"GET /v2/videos"`` (the key
check), ``"DOWNLOAD"``, ``"S3"``, or ``"*"``),
by ``count`` or seeded ``probability``::

    sim.faults.add("POST /v2/dubbing", "drop_after", count=1)
    sim.faults.add("GET /v2/dubbing/{id}", "429", count=3, retry_after=2)
    sim.faults.add("*", "5xx", probability=0.1, status=503)

Kinds: ``429`` (retry_after, limit, ``reset="epoch"`` for a RateLimit-Reset given as a UNIX
time; S3 and signed URLs answer 503 SlowDown instead),
``5xx`` (status), ``drop_before``, ``drop_after``, ``slow`` (seconds: processed, then the answer
waits), ``expired_credentials`` (S3: 400 ExpiredToken), ``expired_url`` (DOWNLOAD: 403
AccessDenied), ``truncate`` (DOWNLOAD: full Content-Length, half the body, then close),
``project_error`` / ``language_error`` (POST /v2/dubbing: error_code, language),
``asset_error`` (POST /v2/assets: error_code) and ``unsafe_url`` (GET /v2/dubbing/{id}:
language; its download URL becomes plain http to a link-local metadata address).

Run it alone with ``python -m synthesia_watchd.simulator --port 8765``.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from .faults import ENDPOINTS, Fault, Faults, Gate, Recorded
from .sim import Simulator

__all__ = ["ENDPOINTS", "Fault", "Faults", "Gate", "Recorded", "Simulator", "main"]


def main(argv: list[str] | None = None) -> int:
    """Serve a simulator until SIGINT/SIGTERM; print its URLs and the env lines to export."""
    parser = argparse.ArgumentParser(
        prog="synthesia-watchd simulator",
        description="Run the loopback Synthesia API and its S3 (moto) for demos and tests.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="API port (0: any free port)")
    parser.add_argument("--s3-port", type=int, default=0, help="S3 port (0: any free port)")
    parser.add_argument("--api-key", default="sim-key", help="the API key to accept")
    parser.add_argument(
        "--dub-seconds", type=float, default=2.0, help="seconds from submit to dubbed (default 2)"
    )
    args = parser.parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()  # only a flag: the loop below does the work

    try:
        sim = Simulator(
            api_key=args.api_key,
            host=args.host,
            port=args.port,
            s3_port=args.s3_port,
            dub_seconds=args.dub_seconds,
        ).start()
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"simulator: cannot start: {exc}\n")
        return 1
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        env = sim.env()
        sys.stdout.write(
            f"Synthesia simulator API: {sim.url}\n"
            f"S3 (moto): {sim.s3_url}\n"
            "Point the daemon at it (synthesia.api_url in the config) and export:\n"
            + "".join(f"export {name}={value}\n" for name, value in env.items())
        )
        sys.stdout.flush()
        while not stop.wait(0.2):
            pass
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        sim.stop()
    return 0
