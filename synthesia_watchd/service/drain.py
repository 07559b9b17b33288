"""When a ``--once`` run (and ``dub``) is finished: nothing more can happen before it stops.

A cron run must end when its work is done, and must not hang until midnight for work that
only a new day's limits allow: jobs waiting for the day's spending (uploaded, budget
paused) or for the day's status reads (dubbing, polls held) count as drained, and so does
work held by the operator's pause, drain or a schedule, and everything while the key is
refused.
"""

from __future__ import annotations

from synthesia_watchd.domain.states import ACTIVE, JobState

from .compose import Parts


def drained(parts: Parts) -> bool:
    """Nothing running, nothing pending at the watchers, no active job that may move now."""
    p = parts
    if p.scheduler.busy() or not p.watchers.ready:
        return False
    if any(w.pending for w in p.watchset.status()):
        return False
    if not p.scheduler.runnable():
        return True  # what is left is held by a pause, drain or schedule
    active = p.ledger.count_in(ACTIVE)
    if p.pauses.get("budget") and active == p.ledger.count_in((JobState.UPLOADED,)):
        return True
    if p.pauses.get("reads") and active == p.ledger.count_in((JobState.DUBBING,)):
        return True  # polls wait for the day's read budget: the next run polls them
    return active == 0 or bool(p.pauses.get("auth"))
