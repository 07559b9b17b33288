"""The daemon's beat: every few seconds, say that it is alive and what it is doing.

One beat renews this node's job leases and its heartbeat in the ledger, flushes the read
counts, updates the metrics, writes the status record (``status`` reads it from the ledger,
``healthz`` and Docker's health check from the heartbeat file) and tells systemd STATUS and
WATCHDOG. The loop asks for one each pass; it happens at most every ``HEARTBEAT_SECONDS``
unless forced (at start and at stop).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from typing import Any

from synthesia_watchd import __version__
from synthesia_watchd.domain.states import JobState
from synthesia_watchd.telemetry.metrics import Heartbeat
from synthesia_watchd.watching.model import WatchStatus

from .compose import Parts

HEARTBEAT_SECONDS = 5.0
#: Pause kinds with a metric each ("space" has one key per held output root).
PAUSE_KINDS = ("auth", "budget", "space", "reads")


class StatusBeat:
    """The periodic status of one daemon, over its parts (the running config read live)."""

    def __init__(self, parts: Parts) -> None:
        self.parts = parts
        self._last = 0.0

    def beat(self, *, force: bool = False, stopping: bool = False) -> None:
        """Heartbeat file, systemd STATUS/WATCHDOG, metrics and the status record."""
        mono = time.monotonic()
        if not force and mono - self._last < HEARTBEAT_SECONDS:
            return
        self._last = mono
        p = self.parts
        self.renew_leases()
        p.reads.flush()
        paused, held = p.pauses.snapshot(), p.scheduler.gate.why
        self._update_metrics(paused, held)
        record = self.record(paused, held, stopping=stopping)
        p.ledger.set_node_status(p.config.node_name, p.now(), json.dumps(record))
        p.heartbeat.beat(record)
        p.metrics.heartbeat_timestamp.set(p.now())
        p.notifier.status(self.status_line())
        p.notifier.watchdog()

    def renew_leases(self) -> None:
        """Keep the jobs this node works on its own, and say the node is alive."""
        p = self.parts
        now, node = p.now(), p.config.node_name
        p.ledger.renew(node, p.scheduler.running_ids(), now + p.config.lease_duration)
        p.pipeline.ctx.runners.renew(p.ledger, node, now, p.config.lease_duration)
        p.ledger.beat(node, now, pid=os.getpid(), version=__version__)

    def _update_metrics(self, paused: Mapping[str, str], held: Mapping[str, str]) -> None:
        p = self.parts
        p.metrics.set_job_counts(p.ledger.counts())
        oldest = p.ledger.oldest_queued_at()
        p.metrics.oldest_queued_age.set(max(p.now() - oldest, 0) if oldest else 0)
        for kind in PAUSE_KINDS:
            p.metrics.set_paused(kind, any(k.split(":", 1)[0] == kind for k in paused))
        p.metrics.set_holds([w.name for w in p.config.watches], held)

    def record(
        self, paused: dict[str, str], held: Mapping[str, str], *, stopping: bool = False
    ) -> dict[str, Any]:
        """The status record (what ``status`` shows of a running daemon): ``paused`` the
        pause reasons, ``held`` the watches the operator's holds or schedules hold back."""
        p = self.parts
        record: dict[str, Any] = {
            "pid": os.getpid(),
            "time": p.now(),
            "stopping": stopping,
            "paused": paused,
            "reads": {"last_24h": p.reads.used(), "per_day": p.reads.per_day},
            "progress": p.pipeline.progress.board.snapshot(),
            "watches": [_watch_record(w, held.get(w.name)) for w in p.watchset.status()],
        }
        stuck = p.watchers.stuck_for()
        if stuck:
            record["fs_stuck_seconds"] = round(stuck, 1)
        return record

    def status_line(self) -> str:
        """One line for systemd's STATUS: the main job counts, and any pause."""
        counts = self.parts.ledger.counts()
        parts = [
            f"{counts.get(s.value, 0)} {s.value}"
            for s in (JobState.QUEUED, JobState.DUBBING, JobState.DONE, JobState.FAILED)
        ]
        paused = self.parts.pauses.snapshot()
        if paused:
            parts.append("PAUSED: " + "; ".join(paused.values()))
        return ", ".join(parts)

    def health(self) -> tuple[bool, str]:
        """For ``/healthz``: fresh while the heartbeat file is younger than six beats."""
        return Heartbeat.check(self.parts.heartbeat.path, max_age=HEARTBEAT_SECONDS * 6)


def _watch_record(w: WatchStatus, held: str | None) -> dict[str, Any]:
    """One watch in the status record: its mode, pause, pending files and held files."""
    return {
        "name": w.name,
        "mode": w.mode,
        "reason": w.reason,
        "paused": w.paused,
        "pause_reason": w.pause_reason,
        "pending": w.pending,
        "incomplete": [
            {
                "file": h.path.name,
                "path": str(h.path),
                "detail": h.detail,
                "since": h.since_wall,
            }
            for h in w.incomplete
        ],
        "held": held,
    }
