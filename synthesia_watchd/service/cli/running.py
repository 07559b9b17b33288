"""The commands that run the engine: `run` (the daemon), `dub` (files now), `demo` and the
`simulator` it dubs against; each builds its parts through ``compose`` and stays thin."""

from __future__ import annotations

import argparse
import os
import sys
import time

from synthesia_watchd.stores.ledger import open_ledger
from synthesia_watchd.telemetry.logsetup import configure_logging

from .common import ExitStatus, echo
from .locate import load


def cmd_run(args: argparse.Namespace) -> int:
    """Run the daemon in the foreground (``--once``: until nothing is left; ``--dry-run``)."""
    from synthesia_watchd.service import compose
    from synthesia_watchd.service.daemon import Daemon

    config = load(args)
    configure_logging(level=config.log_level, fmt=config.log_format)
    if args.dry_run:
        from synthesia_watchd.engine.dryrun import dry_run

        return dry_run(config, paths=None)
    daemon = Daemon(compose.build(config, new_ledger=args.new_ledger), once=args.once)
    started = time.time()
    result = daemon.run()
    if not result.finished:
        # A worker is stuck in a call that ignores the stop (a hung socket read): everything
        # durable is written, so leave without joining it rather than overrun systemd's
        # TimeoutStopSec and get SIGKILLed.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(result.exit_code)
    if args.once:
        # Only what this run did counts: last month's failure must not fail every cron run.
        with open_ledger(config.ledger_location, password=config.ledger_password_text()) as ledger:
            touched = [
                j for j in ledger.list_jobs(limit=1_000_000) if j.state_changed_at >= started
            ]
        by_state: dict[str, int] = {}
        for j in touched:
            by_state[j.state.value] = by_state.get(j.state.value, 0) + 1
        echo(
            "run --once: "
            + (
                ", ".join(f"{n} {state}" for state, n in sorted(by_state.items()))
                or "nothing to do"
            )
            + (
                f"; see `synthesia-watchd jobs -c {config.source} --state failed`"
                if by_state.get("failed")
                else ""
            )
        )
        bad = by_state.get("failed", 0) + by_state.get("needs_attention", 0)
        if result.exit_code == 0 and bad:
            return ExitStatus.FAILED
    return result.exit_code


def cmd_dub(args: argparse.Namespace) -> int:
    """Dub the given files or folders now, through the same engine (``oneshot``)."""
    from synthesia_watchd.service.oneshot import dub

    return dub(args)


def cmd_demo(args: argparse.Namespace) -> int:
    """Dub a generated video end to end on the built-in simulator (``demo``)."""
    from synthesia_watchd.service.demo import demo

    return demo(args)


def cmd_simulator(args: argparse.Namespace) -> int:
    """Run the loopback Synthesia simulator with its S3, for trying things out."""
    from synthesia_watchd.simulator import main as sim_main

    argv = ["--port", str(args.port)]
    if args.s3_port:
        argv += ["--s3-port", str(args.s3_port)]
    if args.dub_seconds is not None:
        argv += ["--dub-seconds", str(args.dub_seconds)]
    return sim_main(argv)
