"""A reload (SIGHUP): the config file read again and handed to the running parts.

Reading comes first and is never fatal: a bad file, a bad key file or any failure while
reading keeps the running config. Then the watches, limits, read budget and client follow
the new config; jobs in flight keep the settings they started with, and the rate limiter
keeps its pacing state (and the reads counted today, whatever the new limits).
"""

from __future__ import annotations

from pathlib import Path

from synthesia_watchd.config.load import Config, load_config
from synthesia_watchd.domain.errors import ConfigError
from synthesia_watchd.synthesia.api import SynthesiaClient
from synthesia_watchd.telemetry.logsetup import get_logger

from .compose import Parts

log = get_logger(component="daemon")


def read_new(parts: Parts, source: Path) -> tuple[Config, SynthesiaClient | None] | None:
    """The config at ``source`` with its client, or None (logged) when it cannot be used."""
    try:
        new = load_config(source)
        # The limiter is kept: pacing state survives a reload on purpose (and the reads
        # counted today, whatever the new limits).
        return new, parts.make_client(new)
    except ConfigError as exc:
        log.error("reload failed; keeping the running config", errors=str(exc))
    except Exception as exc:  # MemoryError, RecursionError, a bug: a reload is never fatal
        log.exception(
            "reload failed; keeping the running config", error=f"{type(exc).__name__}: {exc}"
        )
    return None


def apply(parts: Parts, new: Config, client: SynthesiaClient | None) -> None:
    """Make ``new`` (and its client) the running config of every part that follows it."""
    old, parts.config = parts.config, new
    reads = new.rate_limits.get("reads")
    parts.reads.per_minute = reads.per_minute if reads is not None else None
    parts.reads.per_day = reads.per_day if reads is not None else None
    parts.client = client
    parts.pipeline.reconfigure(new, client)
    parts.scheduler.set_limits(max_active_jobs=new.max_active_jobs)
    if parts.watching:
        parts.watchers.reconfigure(new.watches)
        for gone in {w.input for w in old.watches} - {w.input for w in new.watches}:
            parts.claims.release(gone)
