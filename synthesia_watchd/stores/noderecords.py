"""Each node's status record: what its daemon wrote with its last heartbeat.

A daemon writes one record per node name (``LedgerStore.set_node_status``): its pid, pauses,
watches, the day's reads. On one host there is one record and `status` reads as it always
did; on a shared ledger every node keeps its own instead of overwriting one another's.
"""

from __future__ import annotations

import json
from typing import Any

from .ledger import LedgerStore, is_shared

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


def summary(record: dict[str, Any], now: float, *, paused: bool = True) -> dict[str, Any]:
    """Whether a record's daemon runs, its pid, heartbeat age (and pauses), as plain data."""
    age = beat_age(record, now)
    running = is_running(record, now)
    found = {
        "running": running,
        "pid": record.get("pid"),
        "heartbeat_age_seconds": round(age, 1) if age is not None else None,
        "stopped_cleanly": bool(record.get("stopping")),
    }
    if paused:
        found["paused"] = record.get("paused", {}) if running else {}
    return found


def pauses(found: dict[str, dict[str, Any]], now: float) -> dict[str, str]:
    """Every running node's pauses (each node pauses on its own: a refused key, a full disk)."""
    return {
        kind: reason
        for record in found.values()
        if is_running(record, now)
        for kind, reason in record.get("paused", {}).items()
    }


def nodes_data(ledger: LedgerStore, now: float, found: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The nodes that share the ledger (heartbeats, claimed jobs, each one's own record:
    running, pauses), and whether it is shared."""
    nodes = [
        {
            **summary(found.get(n.name, {}), now),
            "name": n.name,
            "heartbeat_age_seconds": round(now - n.heartbeat_at, 1),
            "claimed": n.claimed,
            "pid": n.pid,
            "version": n.version,
        }
        for n in ledger.nodes(now)
    ]
    return {"nodes": nodes, "shared": is_shared(ledger.location)}
