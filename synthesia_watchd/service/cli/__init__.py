"""The ``synthesia-watchd`` command: argparse over the core, ``main(argv) -> int``.

``parser`` declares the commands; ``running``, ``reading``, ``operating`` and ``upkeep`` run
them; ``locate`` finds the config and ledger a command means. Here: parse, dispatch, and turn
the error a command raises into its exit code.

Exit codes (stable; scripts depend on them):

====  ==========================================================================
0     success (``health``: the daemon's heartbeat is fresh)
1     finished, but something failed (a job failed, ``health`` is stale)
2     usage or configuration error (the message names file, key and line)
3     the API key is missing or rejected
4     the ledger cannot be used safely (network filesystem, newer schema, another daemon
      on it, read-only, damaged, or emptied/missing/replaced since it was used here)
130   interrupted (Ctrl-C)
====  ==========================================================================
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from synthesia_watchd.domain.errors import (
    AuthError,
    ConfigError,
    LedgerError,
    StaleTransition,
    UsageError,
    WatchdError,
)

from .common import ExitStatus
from .parser import build_parser

__all__ = ["ExitStatus", "build_parser", "entrypoint", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run one command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        sys.stderr.write(f"config error:\n{exc}\n")
        return ExitStatus.USAGE
    except UsageError as exc:
        sys.stderr.write(f"{exc}\n")
        return ExitStatus.USAGE
    except AuthError as exc:
        sys.stderr.write(f"API key problem: {exc}\n")
        return ExitStatus.AUTH
    except LedgerError as exc:
        sys.stderr.write(f"ledger error: {exc}\n")
        return ExitStatus.LEDGER
    except (StaleTransition, KeyError) as exc:
        sys.stderr.write(f"{exc}\n")
        return ExitStatus.FAILED
    except WatchdError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return ExitStatus.FAILED
    except KeyboardInterrupt:
        return ExitStatus.INTERRUPTED


def entrypoint() -> None:
    """Console-script entry point."""
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        # `status | head`: the reader left. Point stdout at /dev/null so the interpreter's
        # final flush does not complain again (the recipe in Python's signal docs).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = ExitStatus.FAILED
    sys.exit(code)
