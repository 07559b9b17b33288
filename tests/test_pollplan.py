"""Poll planning (pollplan.py): near the predicted finish, then closely, within the budget."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from simfixtures import FakeClock

from synthesia_watchd.domain.estimate import Prediction
from synthesia_watchd.domain.readbudget import STATUS_ENDPOINT, ReadBudget
from synthesia_watchd.domain.states import JobState
from synthesia_watchd.engine.pollplan import MIN_GAP, STEP_FRACTION, Poller, next_poll
from synthesia_watchd.stores.ledger import Job, Ledger

S = JobState
T0 = 1_750_000_200.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def ledger(tmp_path: Path, clock: FakeClock) -> Iterator[Ledger]:
    with Ledger(tmp_path / "ledger.db", now=clock) as led:
        yield led


def submit(ledger: Ledger, name: str, duration_s: float | None = None) -> Job:
    """A job walked up to dubbing now."""
    job = ledger.add_job(
        watch="w",
        source_path=name,
        size=1,
        mtime_ns=1,
        sha256="h-" + name,
        source_language="en",
        targets=["de"],
        output_dir="out",
        duration_s=duration_s,
    )
    for new in (S.ASSET_CREATED, S.UPLOADED, S.DUBBING):
        job = ledger.transition(job.id, job.state, new, why=new.value)
    return job


def finish(ledger: Ledger, job: Job) -> None:
    ledger.transition(job.id, S.DUBBING, S.DOWNLOADING, why="dubbing complete")


def history(
    ledger: Ledger, clock: FakeClock, seconds: list[float], duration_s: float | None
) -> None:
    """Finished dubs that took ``seconds`` each."""
    for i, took in enumerate(seconds):
        job = submit(ledger, f"old{i}.mp4", duration_s)
        clock.advance(took)
        finish(ledger, job)


PRED = Prediction(seconds=100.0, early=0.8, late=1.3, samples=20)
ARGS = {"poll_interval": 10.0, "poll_max": 300.0}


def test_without_any_knowledge_the_old_cadence_holds() -> None:
    """Nothing learnt yet: poll_interval first, then a quarter of the time waited."""
    assert next_poll(started=0, now=0, prediction=None, first=True, **ARGS) == 10.0
    assert next_poll(started=0, now=10, prediction=None, **ARGS) == 20.0
    assert next_poll(started=0, now=200, prediction=None, **ARGS) == 250.0
    assert next_poll(started=0, now=5000, prediction=None, **ARGS) == 5300.0
    length_only = Prediction(seconds=600.0, early=0.5, late=2.0, samples=0)
    assert next_poll(started=0, now=0, prediction=length_only, first=True, **ARGS) == 10.0


def test_first_poll_waits_for_the_window_then_polls_closely() -> None:
    """First poll when the likely window opens; inside it every few percent of the dub."""
    assert next_poll(started=0, now=0, prediction=PRED, first=True, **ARGS) == 80.0
    assert next_poll(started=0, now=80, prediction=PRED, **ARGS) == 80 + 100 * STEP_FRACTION
    assert next_poll(started=0, now=129, prediction=PRED, **ARGS) == 129 + 100 * STEP_FRACTION


def test_a_late_dub_is_polled_less_and_less_often() -> None:
    """Past the window the gap grows with the time overdue, up to poll_interval_max."""
    gaps = [next_poll(started=0, now=t, prediction=PRED, **ARGS) - t for t in (140, 200, 400)]
    assert gaps == sorted(gaps) and gaps[0] < gaps[-1]
    assert next_poll(started=0, now=10_000, prediction=PRED, **ARGS) == 10_300


def test_the_budget_gap_spaces_polls_inside_the_window() -> None:
    """A budget that gives each job one poll per 30 s wins over the 5 % step."""
    assert next_poll(started=0, now=90, prediction=PRED, budget_gap=30.0, **ARGS) == 120.0
    short = Prediction(seconds=0.5, early=1.0, late=1.0, samples=9)
    assert next_poll(started=0, now=0.5, prediction=short, **ARGS) == 0.5 + MIN_GAP


def test_first_poll_follows_the_history_of_similar_dubs(ledger: Ledger, clock: FakeClock) -> None:
    """Ten dubs of 60 s videos took 100-120 s: a new 60 s video is first polled near 88 s."""
    history(ledger, clock, [100, 105, 110, 115, 120, 100, 105, 110, 115, 120], 60.0)
    poller = Poller(ledger, now=clock)
    job = submit(ledger, "new.mp4", 60.0)
    pred = poller.prediction(job)
    assert pred is not None and pred.seconds == pytest.approx(110.0, abs=3)
    first = poller.first_poll_at(job, clock(), **ARGS)
    assert clock() + 80 <= first <= clock() + 100
    long = submit(ledger, "long.mp4", 600.0)
    assert poller.first_poll_at(long, clock(), **ARGS) > clock() + 400  # ten times longer


def test_a_finished_dub_brings_forward_the_polls_of_its_peers(
    ledger: Ledger, clock: FakeClock
) -> None:
    """With no history, the first finished dub re-plans the others submitted alongside it."""
    poller = Poller(ledger, now=clock)
    a, b = submit(ledger, "a.mp4"), submit(ledger, "b.mp4")
    ledger.update(b.id, expected=S.DUBBING, next_attempt_at=clock() + 300)
    clock.advance(100)
    finish(ledger, a)
    assert poller.finished(a.id, clock(), poll_max=300.0) == [b.id]
    assert ledger.get(b.id).next_attempt_at <= clock() + 100 * STEP_FRACTION


def test_polls_wait_when_only_the_download_reserve_is_left(
    ledger: Ledger, clock: FakeClock
) -> None:
    """A spent day holds polls (and says how long); the reserve covers jobs dubbing."""
    budget = ReadBudget(per_minute=60, per_day=100, store=ledger, clock=clock)
    poller = Poller(ledger, budget, now=clock)
    submit(ledger, "a.mp4")
    budget.record(STATUS_ENDPOINT, 97)
    assert poller.hold(clock()) == 0.0
    budget.record(STATUS_ENDPOINT, 1)  # 98 + 2 reserved for a's download = 100
    assert poller.hold(clock()) > 0.0


def test_with_nothing_learnt_the_first_job_leads_with_closer_polls(
    ledger: Ledger, clock: FakeClock
) -> None:
    """On a fresh ledger the job submitted first is polled every tenth of its wait, the
    others every quarter: the first to finish then re-plans the rest."""
    poller = Poller(ledger, now=clock)
    lead = submit(ledger, "lead.mp4")
    clock.advance(1)
    other = submit(ledger, "other.mp4")
    clock.advance(199)
    now = clock()
    assert poller.next_poll_at(ledger.get(lead.id), now, **ARGS) == pytest.approx(now + 20.0)
    assert poller.next_poll_at(ledger.get(other.id), now, **ARGS) == pytest.approx(now + 49.75)
