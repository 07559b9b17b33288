"""The operator's commands that change jobs and holds: `retry`, `cancel`, `pause`, `resume`.

Each is one call to a named ``lifecycle`` operation, which owns the ledger writes and says
what it did; these only find the jobs and print the answer.
"""

from __future__ import annotations

import argparse
import sys

from synthesia_watchd.domain.states import JobState
from synthesia_watchd.engine import lifecycle

from .common import ExitStatus, echo
from .locate import load, open_existing_ledger


def cmd_retry(args: argparse.Namespace) -> int:
    """Retry one job, or every failed and partial one, through ``lifecycle.retry``."""
    with open_existing_ledger(args) as ledger:
        if args.failed:
            jobs = ledger.list_jobs(states=(JobState.FAILED, JobState.PARTIAL), limit=1_000_000)
        elif args.job is not None:
            jobs = [ledger.get(args.job)]
        else:
            sys.stderr.write("retry: give a job id or --failed\n")
            return ExitStatus.USAGE
        if not jobs:
            echo("no failed or partial jobs: nothing to retry")
        for job in jobs:
            echo(lifecycle.retry(ledger, job, resubmit=args.resubmit, fresh=args.fresh))
    return ExitStatus.OK


def cmd_cancel(args: argparse.Namespace) -> int:
    """Cancel one job through ``lifecycle.cancel``."""
    with open_existing_ledger(args) as ledger:
        echo(lifecycle.cancel(ledger, ledger.get(args.job)))
    return ExitStatus.OK


def cmd_pause(args: argparse.Namespace) -> int:
    """Pause or drain new paid work, globally or for one known watch."""
    config = load(args, required=False)
    known = [w.name for w in config.watches] if config.source is not None else None
    with open_existing_ledger(args) as ledger:
        echo(lifecycle.pause(ledger, watch=args.watch, drain=args.drain, known=known))
    return ExitStatus.OK


def cmd_resume(args: argparse.Namespace) -> int:
    """Lift a pause or drain."""
    with open_existing_ledger(args) as ledger:
        echo(lifecycle.resume(ledger, watch=args.watch))
    return ExitStatus.OK
