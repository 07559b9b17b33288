"""Each node's status record: what its daemon wrote with its last heartbeat.

A daemon writes one record per node name (``LedgerStore.set_node_status``): its pid, pauses,
watches, the day's reads. On one host there is one record and `status` reads as it always
did; on a shared ledger every node keeps its own instead of overwriting one another's.
"""

from __future__ import annotations

import json
from typing import Any

from .ledger import LedgerStore

#: A record whose heartbeat is older than this belongs to a daemon that is not running.
RUNNING_WITHIN = 60.0


def records(ledger: LedgerStore) -> dict[str, dict[str, Any]]:
    """Every node's record by node name (a record that does not parse is left out)."""
    found: dict[str, dict[str, Any]] = {}
    for node, raw in ledger.node_statuses().items():
        try:
            record = json.loads(raw)
        except ValueError:
            continue
        if isinstance(record, dict):
            found[node] = record
    return found


def beat_age(record: dict[str, Any], now: float) -> float | None:
    """Seconds since the record was written (None: it has no time)."""
    return now - float(record["time"]) if "time" in record else None


def is_running(record: dict[str, Any], now: float) -> bool:
    """Whether the record's daemon is running: a recent heartbeat, not a clean stop."""
    age = beat_age(record, now)
    return age is not None and age < RUNNING_WITHIN and not record.get("stopping")


def freshest(found: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The newest record (the daemon line of `status`); empty when there is none."""
    return max(found.values(), key=lambda r: float(r.get("time", 0)), default={})


def summary(record: dict[str, Any], now: float) -> dict[str, Any]:
    """Whether a record's daemon runs, its pid, heartbeat age and pauses, as plain data."""
    age = beat_age(record, now)
    running = is_running(record, now)
    return {
        "running": running,
        "pid": record.get("pid"),
        "heartbeat_age_seconds": round(age, 1) if age is not None else None,
        "stopped_cleanly": bool(record.get("stopping")),
        "paused": record.get("paused", {}) if running else {},
    }
