"""Pause, drain and schedule windows: stored in the ledger, honoured by the scheduler."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from enginefixtures import Engine
from helpers import wait_until

from synthesia_watchd.config.load import parse_config
from synthesia_watchd.domain.control import (
    DRAIN,
    PAUSE,
    BadWindow,
    Control,
    Gate,
    Hold,
    gate,
    parse_window,
)
from synthesia_watchd.domain.errors import ConfigError
from synthesia_watchd.domain.states import JobState
from synthesia_watchd.engine import lifecycle
from synthesia_watchd.service import cli
from synthesia_watchd.stores.ledger import Ledger

# 2026-11-27 is a Friday.
FRI_2300 = datetime(2026, 11, 27, 23, 0)
SAT_0500 = datetime(2026, 11, 28, 5, 0)
SUN_0500 = datetime(2026, 11, 29, 5, 0)
FRI_1200 = datetime(2026, 11, 27, 12, 0)


# --- schedule windows ------------------------------------------------------------------------


def test_window_over_midnight_belongs_to_its_start_day() -> None:
    """'mon-fri 22:00-06:00' is open Friday night into Saturday morning, not Saturday night."""
    w = parse_window("mon-fri 22:00-06:00")
    assert [w.contains(t) for t in (FRI_2300, SAT_0500, SUN_0500, FRI_1200)] == [
        True,
        True,
        False,
        False,
    ]


def test_days_alone_and_wrapping_day_ranges() -> None:
    """'sat,sun' is whole days; 'fri-mon' wraps over the week end."""
    assert parse_window("sat,sun").contains(SUN_0500)
    assert not parse_window("sat,sun").contains(FRI_2300)
    assert parse_window("fri-mon").days == frozenset({4, 5, 6, 0})
    assert parse_window("00:00-24:00").contains(FRI_1200)


@pytest.mark.parametrize("bad", ["25:00-06:00", "22:00", "someday", "10:00-10:00", "mon-xyz"])
def test_bad_windows_say_what_is_expected(bad: str) -> None:
    """A malformed window is refused with a message, never read as 'always open'."""
    with pytest.raises(BadWindow):
        parse_window(bad)


def test_bad_schedule_in_config_names_key_and_line(tmp_path: Path) -> None:
    """A bad schedule window is a config error at its key path and line."""
    text = (
        "watches:\n"
        "  - name: w\n"
        f"    input: {tmp_path}\n"
        "    targets: [fr-FR]\n"
        "    schedule: ['22:00-06:00', 'late']\n"
    )
    with pytest.raises(ConfigError) as info:
        parse_config(text, filename="c.yaml")
    issue = info.value.issues[0]
    assert issue.key == "watches[0].schedule[1]" and issue.line == 5
    assert "HH:MM-HH:MM" in issue.message


def test_gate_holds_closed_schedules_and_operator_holds() -> None:
    """Closed windows and a pause hold new and started work; a drain holds only new work."""
    control = Control(None, {"b": Hold(DRAIN, 1.0)})
    g = gate(control, {"a": ("22:00-06:00",), "b": (), "c": ()}, FRI_1200)
    assert g.new == {"a", "b"} and g.started == {"a"}
    assert dict(g.why) == {"a": "schedule", "b": DRAIN}
    g = gate(Control(Hold(PAUSE, 1.0)), {"a": ()}, FRI_1200)
    assert g.all_new and g.all_started


# --- lifecycle: holds in the ledger ----------------------------------------------------------


def test_pause_and_resume_are_stored_in_the_ledger(tmp_path: Path) -> None:
    """pause/drain/resume write the meta table; a fresh connection (a restart) reads them."""
    path = tmp_path / "l.sqlite3"
    with Ledger(path) as ledger:
        lifecycle.pause(ledger, now=lambda: 5.0)
        lifecycle.drain(ledger, watch="w")
    with Ledger(path) as ledger:
        control = lifecycle.read_control(ledger)
        assert control.global_hold is not None and control.global_hold.mode == PAUSE
        assert control.watches["w"].mode == DRAIN
        assert lifecycle.resume(ledger) == "all watches: resumed"
        assert lifecycle.resume(ledger, watch="w") == "watch w: resumed"
        assert lifecycle.read_control(ledger) == Control()


def test_cli_pause_shows_in_status(engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    """`pause --drain --watch` and `resume` via the CLI; `status` and `--json` show the hold."""
    ledger = str(engine.ledger_path)
    engine.state_dir.mkdir(parents=True, exist_ok=True)
    Ledger(engine.ledger_path).close()  # the daemon has run once
    assert cli.main(["pause", "--watch", "drop", "--drain", "--ledger", ledger]) == 0
    assert "watch drop: draining" in capsys.readouterr().out
    assert cli.main(["status", "--ledger", ledger]) == 0
    assert "DRAIN: drop" in capsys.readouterr().out
    assert cli.main(["status", "--json", "--ledger", ledger]) == 0
    assert '"mode": "drain"' in capsys.readouterr().out
    assert cli.main(["resume", "--watch", "drop", "--ledger", ledger]) == 0
    assert cli.main(["status", "--ledger", ledger]) == 0
    assert "DRAIN" not in capsys.readouterr().out


# --- the scheduler honours the gate ----------------------------------------------------------


def _job(ledger: Ledger, watch: str, state: JobState) -> int:
    job = ledger.add_job(
        watch=watch,
        source_path=f"/in/{watch}-{state.value}.mp4",
        size=1,
        mtime_ns=1,
        sha256=None,
        source_language="en",
        targets=["fr-FR"],
        output_dir="/out",
    )
    path = {
        JobState.QUEUED: [],
        JobState.UPLOADED: [JobState.ASSET_CREATED, JobState.UPLOADED],
        JobState.DUBBING: [JobState.ASSET_CREATED, JobState.UPLOADED, JobState.DUBBING],
    }[state]
    current = JobState.QUEUED
    for nxt in path:
        ledger.transition(job.id, current, nxt, why="test", next_attempt_at=0.0)
        current = nxt
    return job.id


def test_scheduler_dispatches_only_what_the_gate_allows(engine: Engine) -> None:
    """Pause: only paid-for work moves; drain: started work too; neither takes a queued job."""
    daemon = engine.daemon()
    try:
        with Ledger(engine.ledger_path) as ledger:
            ids = {s: _job(ledger, "drop", s) for s in JobState if s in _STATES}
        sched = daemon.scheduler
        running: set[int] = set()
        now = time.time() + 10

        def due(g: Gate) -> set[int]:
            sched.gate = g
            found = set()
            for states in ((JobState.QUEUED,), (JobState.UPLOADED,), (JobState.DUBBING,)):
                found |= {j.id for j in sched._due(states, now, 10, running)}
            return found

        assert due(Gate()) == set(ids.values())
        paused = Gate(all_new=True, all_started=True)
        assert due(paused) == {ids[JobState.DUBBING]}
        drained = Gate(new=frozenset({"drop"}))
        assert due(drained) == {ids[JobState.UPLOADED], ids[JobState.DUBBING]}
        sched.gate = Gate(new=frozenset({"drop"}), started=frozenset({"drop"}))
        assert sched.runnable()  # the dubbing job still moves
    finally:
        daemon.scheduler.shutdown(1)
        daemon.ledger.close()
        daemon.lock.release()


_STATES = (JobState.QUEUED, JobState.UPLOADED, JobState.DUBBING)


def test_paused_daemon_queues_files_and_sends_nothing_until_resumed(engine: Engine) -> None:
    """A pause set before start survives into the run: the file is queued, no API call is
    made; after `resume` the next run dubs it."""
    engine.state_dir.mkdir(parents=True, exist_ok=True)
    with Ledger(engine.ledger_path) as ledger:
        lifecycle.pause(ledger)
    src = engine.put("clip.mp4")
    engine.run()
    assert engine.job_for(src).state is JobState.QUEUED
    assert engine.sim.count("POST /v2/assets") == 0 and engine.dub_posts() == 0
    with Ledger(engine.ledger_path) as ledger:
        lifecycle.resume(ledger)
    engine.run()
    engine.assert_all_done()


def test_pause_from_another_process_reaches_a_running_daemon(
    engine_factory: Callable[..., Engine],
) -> None:
    """`pause` written by the CLI while the daemon runs holds the next file; the one already
    dubbing finishes (a drain)."""
    engine = engine_factory(dub_seconds=2.0)
    first = engine.put("first.mp4")
    later: list[Path] = []

    def tick(d: object) -> None:
        if not later and engine.states().get("first.mp4") == JobState.DUBBING.value:
            assert cli.main(["pause", "--drain", "--ledger", str(engine.ledger_path)]) == 0
            later.append(engine.put("second.mp4"))

    engine.run(on_tick=tick, speed=1.0)
    assert later, "the first job never reached dubbing"
    assert engine.job_for(first).state is JobState.DONE
    assert engine.job_for(later[0]).state is JobState.QUEUED
    assert engine.dub_posts() == 1


def test_schedule_closed_now_holds_new_work(engine: Engine) -> None:
    """A watch whose only window is another day queues its file and submits nothing."""
    days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    other_day = days[(datetime.now().weekday() + 3) % 7]
    src = engine.put("clip.mp4")
    engine.run(schedule=[other_day])
    assert engine.job_for(src).state is JobState.QUEUED
    assert engine.sim.count("POST /v2/assets") == 0
    engine.run(schedule=["00:00-24:00"])
    engine.assert_all_done()


def test_pause_of_a_misspelt_watch_is_refused(
    engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    """With a config, `pause --watch` of a name no watch has fails and holds nothing."""
    config = str(engine.write_config())
    engine.state_dir.mkdir(parents=True, exist_ok=True)
    Ledger(engine.ledger_path).close()  # the daemon has run once
    assert cli.main(["pause", "--watch", "dorp", "-c", config]) == 1
    assert "no watch named 'dorp'" in capsys.readouterr().err
    assert cli.main(["pause", "--watch", "drop", "-c", config]) == 0
    with Ledger(engine.ledger_path) as ledger:
        assert list(lifecycle.read_control(ledger).watches) == ["drop"]


def test_holds_reach_the_metrics(live_factory: Callable[..., object]) -> None:
    """A watch's pause shows as synthesia_watchd_watch_held{reason="pause"} = 1."""
    live = live_factory()
    daemon = live.daemon  # type: ignore[attr-defined]
    lifecycle.pause(daemon.ledger, watch="drop")
    wait_until(lambda: daemon.scheduler.gate.why.get("drop") == PAUSE, what="the hold")
    daemon.beat(force=True)
    text = daemon.metrics.render().decode()
    assert 'synthesia_watchd_watch_held{reason="pause",watch="drop"} 1.0' in text
    assert 'synthesia_watchd_watch_held{reason="drain",watch="drop"} 0.0' in text
