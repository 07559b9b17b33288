"""``demo``: the whole daemon, end to end, on the built-in simulator, in a few seconds.

No key, no config: start the loopback Synthesia (with its local S3), a temporary drop folder
and the daemon; copy a generated sample video into the folder the way a slow network copy
would; watch it go through every stage; print where the outputs are.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from synthesia_watchd.config.load import Config, build_config, default_state_dir
from synthesia_watchd.domain import outputs
from synthesia_watchd.domain.media import sample_video
from synthesia_watchd.domain.states import TERMINAL

if TYPE_CHECKING:
    from synthesia_watchd.stores.ledger import Job

TARGETS = ["fr-FR", "es-ES", "de-DE"]
PROG = "synthesia-watchd"


def _drop(path: Path, data: bytes, chunks: int = 4, pause: float = 0.2) -> None:
    """Write like a copy over the network: a .part file growing, then renamed into place."""
    part = path.with_name(path.name + ".part")
    step = max(len(data) // chunks, 1)
    with open(part, "wb") as fh:
        for i in range(0, len(data), step):
            fh.write(data[i : i + step])
            fh.flush()
            time.sleep(pause)  # pacing the writer, not synchronisation
    part.rename(path)


def own_command() -> str:
    """How to run this same synthesia-watchd from any shell: the bare name only when PATH
    finds this very program, else its full path (a venv not on PATH), else ``python -m``."""
    me = Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else None
    found = shutil.which(PROG)
    if me is not None and me.name == PROG and me.is_file():
        if found is not None and Path(found).resolve() == me:
            return PROG
        return shlex.quote(str(me))
    return f"{shlex.quote(sys.executable)} -m synthesia_watchd"


def demo(args: argparse.Namespace) -> int:
    """Run the demo; returns 0 when the sample was dubbed into every target language."""
    try:
        from synthesia_watchd.simulator import Simulator
    except ImportError:
        sys.stderr.write(
            "the demo needs the simulator extra: pip install 'synthesia-watchd[simulator]'\n"
        )
        return 2
    from synthesia_watchd.telemetry.logsetup import configure_logging

    from . import compose
    from .daemon import Daemon

    base = Path(args.dir).resolve() if args.dir else default_state_dir(os.environ) / "demo"
    drop, dubbed, state = base / "drop", base / "dubbed", base / "state"
    for d in (drop, dubbed, state):
        if not args.dir:
            shutil.rmtree(d, ignore_errors=True)  # our own folder: each demo starts afresh
        d.mkdir(parents=True, exist_ok=True)
    configure_logging(level="info", fmt="auto")
    with Simulator(dub_seconds=args.dub_seconds) as sim:
        os.environ["AWS_ENDPOINT_URL_S3"] = sim.s3_url
        config = _config(sim.url, sim.api_key, drop, dubbed, state)
        daemon = Daemon(compose.build(config))
        source = drop / "welcome video.mp4"
        outcome: dict[str, Job] = {}

        def scenario() -> None:
            deadline = time.monotonic() + 60
            while not daemon.started.is_set() and time.monotonic() < deadline:
                daemon.started.wait(0.1)
            _drop(source, sample_video("synthesia-watchd demo", 256 * 1024))
            while time.monotonic() < deadline:
                jobs = daemon.ledger.list_jobs(limit=5)
                if jobs and all(j.state in TERMINAL for j in jobs):
                    outcome["job"] = jobs[0]
                    break
                time.sleep(0.2)
            daemon.request_stop()

        threading.Thread(target=scenario, name="demo-scenario", daemon=True).start()
        daemon.run()
        requests = sim.count("POST /v2/dubbing")
    return _report(outcome.get("job"), source, dubbed, requests, config.ledger)


def _config(api_url: str, api_key: str, drop: Path, dubbed: Path, state: Path) -> Config:
    """The demo's config: one watch over its own folders, talking to the local simulator."""
    return build_config(
        {
            "synthesia": {"api_url": api_url},
            "state_dir": str(state),
            "watches": [
                {
                    "name": "demo",
                    "input": str(drop),
                    "output": str(dubbed),
                    "targets": TARGETS,
                    "source_language": "en",
                    "stable_seconds": 1,
                    "poll_interval": 1,
                }
            ],
        },
        filename="<demo>",
        environ={"SYNTHESIA_API_KEY": api_key},
    )


def _report(job: Job | None, source: Path, dubbed: Path, requests: int, ledger: Path) -> int:
    """What the demo did, with the outputs it made (named by outputs.py, as the daemon names
    them) and the command to see the job's history."""
    out = sys.stdout
    if job is None:
        out.write("\ndemo did not finish in time; see the log above\n")
        return 1
    names = [outputs.output_name(source.stem, t, "video") for t in TARGETS]
    outs = [dubbed / n for n in names if (dubbed / n).is_file()]
    out.write(f"\ndemo: '{source.name}' -> {job.state.value} with {requests} dubbing request(s)\n")
    for p in outs:
        out.write(f"  {p}  ({p.stat().st_size} bytes)\n")
    out.write(f"ledger: {ledger}\n")
    out.write(f"try: {own_command()} show {job.id} --ledger {shlex.quote(str(ledger))}\n")
    return 0 if len(outs) == len(TARGETS) else 1
