"""Run a Simulator in its own process, so it never shares a GIL with what is measured.

``python -m bench.simproc '{"dub_seconds": 2}'`` starts one, prints one JSON line (url, s3_url,
env) and serves until SIGTERM/SIGINT, or until its parent dies (a killed bench leaves no
orphan behind).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    """Serve one simulator with the options given as a JSON object."""
    from synthesia_watchd.simulator import Simulator

    args = sys.argv[1:] if argv is None else argv
    options: dict[str, Any] = json.loads(args[0]) if args else {}
    dump = options.pop("dump", None)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()  # only a flag

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    parent = os.getppid()
    with Simulator(**options) as sim:
        sys.stdout.write(json.dumps({"url": sim.url, "s3_url": sim.s3_url, "env": sim.env()}))
        sys.stdout.write("\n")
        sys.stdout.flush()
        while not stop.wait(0.5):
            if os.getppid() != parent:
                break
        if dump:
            Path(dump).write_text(json.dumps(_timings(sim)))
    return 0


def _timings(sim: Any) -> dict[str, Any]:
    """Each project's created and finished times (UNIX) and its status reads, for lag figures."""
    reads: dict[str, int] = {}
    for rec in sim.requests:
        if rec.endpoint == "GET /v2/dubbing/{id}":
            pid = rec.path.rsplit("/", 1)[-1]
            reads[pid] = reads.get(pid, 0) + 1
    return {
        pid: {
            "created": sim.epoch(p.created_at),
            "done": sim.epoch(max(i.done_at for i in p.items)),
            "reads": reads.get(pid, 0),
        }
        for pid, p in sim.projects.items()
    }


class SimProcess:
    """Context manager: a simulator subprocess; ``url``, ``s3_url`` and ``env`` once entered."""

    def __init__(self, *, dump: Path | None = None, **options: Any) -> None:
        """``dump``: a file where the simulator writes each project's timings when it stops
        (``timings()`` reads it back)."""
        self.options = {**options, "dump": str(dump)} if dump is not None else options
        self.dump = dump
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.s3_url = ""
        self.env: dict[str, str] = {}

    def __enter__(self) -> SimProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.simproc", json.dumps(self.options)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(10)
            raise RuntimeError("the simulator process did not start")
        info = json.loads(line)
        self.url, self.s3_url, self.env = info["url"], info["s3_url"], info["env"]
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def timings(self) -> dict[str, Any]:
        """Per project: created and done (UNIX seconds) and GET /v2/dubbing/{id} count."""
        if self.dump is None or not self.dump.exists():
            return {}
        data: dict[str, Any] = json.loads(self.dump.read_text())
        return data


if __name__ == "__main__":
    raise SystemExit(main())
