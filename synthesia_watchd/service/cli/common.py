"""What every command shares: the stable exit codes, printing, the job-id argument type."""

from __future__ import annotations

import argparse
import sys
from enum import IntEnum

from synthesia_watchd.domain.names import printable


class ExitStatus(IntEnum):
    """Process exit codes (the table in ``synthesia_watchd.service.cli``'s docstring)."""

    OK = 0
    FAILED = 1
    USAGE = 2
    AUTH = 3
    LEDGER = 4
    INTERRUPTED = 130


def echo(text: str = "") -> None:
    """One line on stdout; a file name that is not UTF-8 is shown escaped."""
    sys.stdout.write(printable(text) + "\n")


def job_id(text: str) -> int:
    """A job id as typed: ``5`` or ``#5`` (the form `jobs` and `status` print)."""
    try:
        return int(text.strip().lstrip("#"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a job id: {text!r} (e.g. 5 or '#5')") from None
