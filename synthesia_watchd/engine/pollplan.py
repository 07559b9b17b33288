"""When to poll each dubbing job: first near its predicted finish, then closely, within budget.

A poll that finds a dub still running costs a read and tells nothing; a poll made long after
the dub finished holds a project slot idle. So each job is polled on a plan made from the
ledger's history (estimate.predict): the first poll when the window in which its dub is
likely to finish opens, then every few percent of the expected dub time until the window
closes, then less and less often for a dub that runs late. The gap between two polls of a
job never drops below what the read budget (readbudget.py) gives each job polling at that
moment, so polls spread over the day instead of spending its reads by noon. With nothing
learnt yet (no finished dub in the history) jobs are polled as before: ``poll_interval``
first, then a quarter of the time waited; the one submitted first a tenth, so that its finish
soon re-plans the others.

``next_poll`` is pure; ``Poller`` adds the ledger reads (history, the jobs polling now) and
the budget, and re-plans every dubbing job when a finished dub teaches something new.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable, Sequence

from synthesia_watchd.domain.errors import StaleTransition
from synthesia_watchd.domain.estimate import Prediction, predict
from synthesia_watchd.domain.readbudget import RESERVE_PER_JOB, ReadBudget
from synthesia_watchd.domain.states import JobState
from synthesia_watchd.stores.ledger import Job, LedgerStore

#: Inside the likely window, a job is polled every this fraction of its expected dub time.
STEP_FRACTION = 0.05
#: Never two polls of one job closer than this (seconds), however short the dubs.
MIN_GAP = 0.1
#: Past the window, the gap grows with this fraction of the time the dub is overdue.
LATE_BACKOFF = 0.5
#: Without history, the gap grows with this fraction of the time waited (the old cadence)...
BLIND_BACKOFF = 0.25
#: ...but for the job submitted first, which is polled more closely: when it is found
#: finished, the others are re-planned from what it took (``Poller.finished``).
LEAD_BACKOFF = 0.1
#: History is read again at least this often (seconds), and whenever a dub finishes.
HISTORY_TTL = 60.0


def next_poll(
    *,
    started: float,
    now: float,
    prediction: Prediction | None,
    poll_interval: float,
    poll_max: float,
    budget_gap: float = 0.0,
    first: bool = False,
    backoff: float = BLIND_BACKOFF,
) -> float:
    """The time of a job's next status poll, planned at ``now``.

    ``started``: when the dub was submitted; ``first``: no poll was made yet; ``budget_gap``:
    the shortest gap the read budget allows between two polls of one job; ``backoff``: with
    nothing learnt, the fraction of the time waited that the gap grows with.
    """
    if prediction is None or blind(prediction):
        # Nothing learnt yet: a length alone, at the published rate, is too rough to wait for.
        delay = poll_interval if first else max(poll_interval, (now - started) * backoff)
        return now + min(poll_max, max(delay, budget_gap))
    opens = started + prediction.opens
    closes = started + prediction.closes
    step = max(MIN_GAP, prediction.seconds * STEP_FRACTION, budget_gap)
    if now < opens:
        return max(opens, now + MIN_GAP)
    if now <= closes:
        return now + min(poll_max, step)
    return now + min(poll_max, max(step, (now - closes) * LATE_BACKOFF))


def blind(prediction: Prediction | None) -> bool:
    """Whether a prediction teaches nothing yet (no finished dub behind it)."""
    return prediction is None or prediction.samples == 0


class Poller:
    """Plans the polls of every dubbing job from the ledger's history and the read budget."""

    def __init__(
        self,
        ledger: LedgerStore,
        budget: ReadBudget | None = None,
        *,
        now: Callable[[], float],
    ) -> None:
        self.ledger = ledger
        self.budget = budget
        self.now = now
        self._lock = threading.Lock()
        self._history: Sequence[tuple[float | None, float]] = ()
        self._history_at = -math.inf

    # --- what is known -----------------------------------------------------------------------

    def past(self) -> Sequence[tuple[float | None, float]]:
        """The ledger's dub history, read at most every HISTORY_TTL seconds and again once a
        dub finishes (``finished``): polls and progress lines of thousands of dubbing jobs
        share one query a minute, not one each."""
        now = self.now()
        with self._lock:
            if now - self._history_at < HISTORY_TTL:
                return self._history
        history = self.ledger.dub_history()
        with self._lock:
            self._history, self._history_at = history, now
        return history

    def prediction(self, job: Job) -> Prediction | None:
        """How long this job's dub will probably take (None: nothing known yet)."""
        return predict(self.past(), job.duration_s)

    # --- the budget --------------------------------------------------------------------------

    def _budget_gap(self, now: float, dubbing: list[Job], *, minute: bool = True) -> float:
        """The shortest gap between two polls of one job that the read budget allows now
        (``minute`` False: the day's share only, see ReadBudget.poll_gap)."""
        if self.budget is None:
            return 0.0
        polling = 0
        completions = 0.0
        for job in dubbing:
            pred = self.prediction(job)
            if blind(pred) or now >= job.state_changed_at + (pred.opens if pred else 0.0):
                polling += 1
            if pred is not None and pred.seconds > 0:
                completions += 1.0 / pred.seconds
        reserve = RESERVE_PER_JOB * len(dubbing)
        return self.budget.poll_gap(
            now,
            polling=polling,
            reserve=reserve,
            other_rate=completions * RESERVE_PER_JOB / 2,
            minute=minute,
        )

    def hold(self, now: float) -> float:
        """0.0 when a poll may be sent now; else how long polls must wait for reads to free
        up (only the reads reserved for downloads are left)."""
        if self.budget is None:
            return 0.0
        reserve = RESERVE_PER_JOB * self.ledger.count_in((JobState.DUBBING, JobState.DOWNLOADING))
        return self.budget.hold(now, reserve=reserve)

    # --- plans -------------------------------------------------------------------------------

    def _dubbing(self) -> list[Job]:
        return self.ledger.list_jobs(states=(JobState.DUBBING,), limit=1_000_000)

    def first_poll_at(
        self, job: Job, now: float, *, poll_interval: float, poll_max: float
    ) -> float:
        """When to poll a job submitted ``now`` for the first time."""
        return next_poll(
            started=now,
            now=now,
            prediction=self.prediction(job),
            poll_interval=poll_interval,
            poll_max=poll_max,
            first=True,
        )

    def next_poll_at(self, job: Job, now: float, *, poll_interval: float, poll_max: float) -> float:
        """When to poll a job again that a poll at ``now`` found still dubbing.

        With nothing learnt yet, the job submitted first leads: it is polled more closely
        (within the same share of the budget); when it finishes it re-plans the others.
        """
        prediction = self.prediction(job)
        dubbing = self._dubbing()
        backoff = BLIND_BACKOFF
        if blind(prediction) and dubbing:
            lead = min(dubbing, key=lambda j: (j.state_changed_at, j.id))
            if lead.id == job.id:
                backoff = LEAD_BACKOFF
        return next_poll(
            started=job.state_changed_at,
            now=now,
            prediction=prediction,
            poll_interval=poll_interval,
            poll_max=poll_max,
            budget_gap=self._budget_gap(now, dubbing),
            backoff=backoff,
        )

    def finished(self, job_id: int, now: float, *, poll_max: float) -> list[int]:
        """A dub finished: learn from it, and bring forward the polls of the other dubbing
        jobs that the new history says are due sooner. Returns the jobs moved."""
        with self._lock:
            self._history_at = -math.inf
        dubbing = [j for j in self._dubbing() if j.id != job_id]
        # Peers submitted alongside it are likely done too: one poll each now, paced by the
        # limiter within the minute, not spread over it.
        gap = self._budget_gap(now, dubbing, minute=False)
        moved = []
        for job in dubbing:
            pred = self.prediction(job)
            if pred is None:
                continue
            when = next_poll(
                started=job.state_changed_at,
                now=now,
                prediction=pred,
                poll_interval=0.0,
                poll_max=poll_max,
                budget_gap=gap,
                first=True,
            )
            # Only a real gain is worth a write: a job polled closely already stays as it is.
            if when < job.next_attempt_at - max(MIN_GAP, pred.seconds * STEP_FRACTION):
                with contextlib.suppress(StaleTransition):  # it finished meanwhile
                    self.ledger.update(job.id, expected=JobState.DUBBING, next_attempt_at=when)
                    moved.append(job.id)
        return moved
