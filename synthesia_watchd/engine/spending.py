"""The daily spending guards as an operator should see them: set or not, and today's use.

``limits.max_jobs_per_day`` and ``max_bytes_per_day`` are off (null) by default, so nothing
stops a flood of files from being dubbed and billed. The default stays, but `check-config`
and the daemon's start say so, next to what was submitted today.
"""

from __future__ import annotations

from typing import Any

from synthesia_watchd.config.load import Config
from synthesia_watchd.stores.ledger import LedgerStore

from .jobspec import local_midnight


def spending(config: Config, ledger: LedgerStore | None, now: float) -> dict[str, Any]:
    """The limits and today's submits (jobs and source bytes; zero without a ledger)."""
    jobs, nbytes = ledger.usage_since(local_midnight(now)) if ledger is not None else (0, 0)
    return {
        "max_jobs_per_day": config.max_jobs_per_day,
        "max_bytes_per_day": config.max_bytes_per_day,
        "today_jobs": jobs,
        "today_bytes": nbytes,
    }


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def spending_text(figures: dict[str, Any]) -> str:
    """One line: each limit (or "no limit") with today's use, and how to set one if off."""
    jobs, limit_jobs = figures["today_jobs"], figures["max_jobs_per_day"]
    nbytes, limit_bytes = figures["today_bytes"], figures["max_bytes_per_day"]
    parts = [
        f"jobs today {jobs}/{limit_jobs}"
        if limit_jobs is not None
        else f"jobs today {jobs} (max_jobs_per_day: no limit)",
        f"bytes today {_mb(nbytes)}/{_mb(limit_bytes)}"
        if limit_bytes is not None
        else f"bytes today {_mb(nbytes)} (max_bytes_per_day: no limit)",
    ]
    text = "; ".join(parts)
    if limit_jobs is None and limit_bytes is None:
        text += "; every file dropped is dubbed and billed: set limits.max_jobs_per_day to cap it"
    return text
