"""The operator's holds and the schedule windows, turned into the scheduler's gate each pass.

``pause``, ``drain`` and ``resume`` write holds into the ledger from any process (the CLI,
the console, another node); reading them every loop pass is how they reach this daemon
within a pass. A change is logged once; the gate the scheduler obeys is set every pass,
since a schedule window opens and closes with the clock alone.
"""

from __future__ import annotations

from datetime import datetime

from synthesia_watchd.domain.control import Control, Gate, gate
from synthesia_watchd.engine import lifecycle
from synthesia_watchd.telemetry.logsetup import get_logger

from .compose import Parts

log = get_logger(component="daemon")


class HoldGate:
    """The holds last read (``control``), and the gate they and the schedules make."""

    def __init__(self, parts: Parts) -> None:
        self.parts = parts
        self.control = Control()

    def refresh(self, now: float) -> Gate:
        """Read the operator's holds from the ledger (``pause`` writes them there, from any
        process) and the schedule windows; the scheduler holds back what they say."""
        p = self.parts
        control = lifecycle.read_control(p.ledger)
        if control != self.control:
            log.info(
                "holds changed",
                all=control.global_hold.mode if control.global_hold else None,
                watches={n: h.mode for n, h in control.watches.items()},
            )
            self.control = control
        new = gate(
            control,
            {w.name: w.schedule for w in p.config.watches},
            datetime.fromtimestamp(now),
        )
        p.scheduler.gate = new
        return new
