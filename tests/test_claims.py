"""Two ledgers watching one folder pay once: a claim file in each input root says whose it is."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from pathlib import Path, PurePath

import pytest
from e2efixtures import DaemonProcess
from helpers import wait_until
from simfixtures import FakeClock

from synthesia_watchd.domain import filters
from synthesia_watchd.domain.states import JobState
from synthesia_watchd.simulator import Simulator
from synthesia_watchd.stores.claims import CLAIM_NAME, STALE_SECONDS, Claims, claim_path

SimFactory = Callable[..., Simulator]
DaemonFactory = Callable[..., DaemonProcess]


def _foreign(root: Path, heartbeat: float, ledger_id: str = "f" * 32) -> None:
    """A claim written by a daemon on another ledger (another host)."""
    data = {"ledger_id": ledger_id, "host": "nas-2", "pid": 4242, "heartbeat": heartbeat}
    claim_path(root).write_text(json.dumps(data))


def test_a_free_folder_is_claimed_with_ledger_host_pid_and_heartbeat(
    tmp_path: Path, fake_clock: FakeClock
) -> None:
    """The first look claims the folder; the file names the ledger, host, pid and time."""
    claims = Claims("a" * 32, now=fake_clock)
    assert claims.problem(tmp_path) is None
    data = json.loads(claim_path(tmp_path).read_text())
    assert data["ledger_id"] == "a" * 32 and data["host"] == socket.gethostname()
    assert data["heartbeat"] == fake_clock() and isinstance(data["pid"], int)


def test_a_fresh_claim_of_another_ledger_pauses_with_a_reason(
    tmp_path: Path, fake_clock: FakeClock
) -> None:
    """Another ledger's fresh claim: a reason naming its host and pid; the file is untouched."""
    _foreign(tmp_path, fake_clock() - 10)
    before = claim_path(tmp_path).read_bytes()
    reason = Claims("a" * 32, now=fake_clock).problem(tmp_path)
    assert reason is not None and "nas-2" in reason and "4242" in reason
    assert "another ledger" in reason
    assert claim_path(tmp_path).read_bytes() == before


def test_a_stale_claim_is_taken_over(tmp_path: Path, fake_clock: FakeClock) -> None:
    """A claim whose heartbeat stopped longer than STALE_SECONDS ago is replaced by ours."""
    _foreign(tmp_path, fake_clock() - STALE_SECONDS - 1)
    assert Claims("a" * 32, now=fake_clock).problem(tmp_path) is None
    assert json.loads(claim_path(tmp_path).read_text())["ledger_id"] == "a" * 32


def test_daemons_sharing_a_ledger_share_the_claim(tmp_path: Path, fake_clock: FakeClock) -> None:
    """Same ledger id, another host: not a conflict."""
    _foreign(tmp_path, fake_clock(), ledger_id="a" * 32)
    assert Claims("a" * 32, now=fake_clock).problem(tmp_path) is None


def test_the_heartbeat_is_refreshed_and_a_lost_claim_noticed(
    tmp_path: Path, fake_clock: FakeClock
) -> None:
    """refresh() rewrites the heartbeat; a claim overwritten by another ledger is given up."""
    claims = Claims("a" * 32, now=fake_clock)
    assert claims.problem(tmp_path) is None
    fake_clock.advance(STALE_SECONDS / 2)
    claims.refresh()
    assert json.loads(claim_path(tmp_path).read_text())["heartbeat"] == fake_clock()
    _foreign(tmp_path, fake_clock())
    claims.refresh()
    assert claims.problem(tmp_path) is not None


def test_release_removes_only_our_own_claim(tmp_path: Path, fake_clock: FakeClock) -> None:
    """At shutdown our claim goes; a claim another ledger took meanwhile stays."""
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    mine.mkdir()
    theirs.mkdir()
    claims = Claims("a" * 32, now=fake_clock)
    assert claims.problem(mine) is None and claims.problem(theirs) is None
    _foreign(theirs, fake_clock())
    claims.release_all()
    assert not claim_path(mine).exists()
    assert claim_path(theirs).exists()


def test_a_read_only_folder_is_watched_without_a_claim(
    tmp_path: Path, fake_clock: FakeClock
) -> None:
    """A claim that cannot be written (a read-only share) does not pause the folder."""
    missing = tmp_path / "not-a-folder" / "deeper"
    assert Claims("a" * 32, now=fake_clock).problem(missing) is None


def test_the_claim_file_is_never_a_candidate() -> None:
    """The claim and its temp names are ignored by the watcher's filters."""
    assert filters.is_ignored(PurePath(CLAIM_NAME))
    assert filters.is_ignored(PurePath(f".{CLAIM_NAME}.0123abcd.part"))


@pytest.mark.slow
def test_two_ledgers_on_one_folder_pay_once(
    e2e_sim: SimFactory, daemon_factory: DaemonFactory
) -> None:
    """The issue's repro: a second ledger on the same folder pauses it; every file paid once."""
    sim = e2e_sim()
    first = daemon_factory(sim, watch={"scan_interval": 1})
    second = daemon_factory(sim, watch={"scan_interval": 1})
    second.input, second.output = first.input, first.output  # one config, two state folders
    first.start()
    first.wait_started()
    second.start()
    second.wait_started()
    wait_until(
        lambda: any(
            e.get("event") == "watch paused" and "claimed" in str(e.get("reason"))
            for e in second.log()
        ),
        15,
        what="the second daemon to pause its watch",
    )
    status = second.cli("status")
    assert status.returncode == 0, status.stderr
    assert "PAUSED" in status.stdout and "claimed" in status.stdout
    first.drop_many(2)
    first.wait_all(2, {JobState.DONE})
    assert sim.count("POST /v2/dubbing") == 2
    assert second.jobs() == []
    # The first stops and gives the folder up; the second takes over and pays only for news.
    assert first.terminate() == 0
    wait_until(
        lambda: any(e.get("event") == "watch resumed" for e in second.log()),
        15,
        what="the second daemon to resume",
    )
    second.drop("late.mp4")
    second.wait_state(
        lambda jobs: len(jobs) == 3 and all(j.state is JobState.DONE for j in jobs),
        what="the old files adopted and the new one dubbed",
    )
    assert sim.count("POST /v2/dubbing") == 3
    assert all(".claim" not in j.source_path for j in first.jobs() + second.jobs())
    assert second.terminate() == 0


@pytest.mark.slow
def test_a_claim_left_by_a_dead_daemon_is_taken_over(
    e2e_sim: SimFactory, daemon_factory: DaemonFactory
) -> None:
    """A claim whose heartbeat stopped long ago (a crash elsewhere) does not block the folder."""
    sim = e2e_sim()
    daemon = daemon_factory(sim)
    _foreign(daemon.input, time.time() - STALE_SECONDS - 60)
    daemon.start()
    daemon.wait_started()
    daemon.drop("clip.mp4")
    daemon.wait_all(1, {JobState.DONE})
    assert daemon.ledger().get_meta("ledger_id") in claim_path(daemon.input).read_text()


def test_a_watch_removed_by_reload_gives_its_folder_up(tmp_path: Path) -> None:
    """SIGHUP without a watch: its claim is released, not refreshed forever."""
    from synthesia_watchd.config.load import load_config
    from synthesia_watchd.service import compose
    from synthesia_watchd.service.daemon import Daemon

    folders = {name: tmp_path / name for name in ("a", "b")}
    for folder in folders.values():
        folder.mkdir()

    def write(*names: str) -> Path:
        watches = "".join(
            f"  - {{name: {n}, input: {folders[n]}, targets: [fr-FR], source_language: en}}\n"
            for n in names
        )
        path = tmp_path / "config.yaml"
        path.write_text(f"state_dir: {tmp_path / 'state'}\nwatches:\n{watches}")
        return path

    daemon = Daemon(compose.build(load_config(write("a", "b"))), once=True)
    try:
        daemon.start()
        assert claim_path(folders["a"]).exists() and claim_path(folders["b"]).exists()
        write("a")
        daemon.reload()
        assert claim_path(folders["a"]).exists() and not claim_path(folders["b"]).exists()
    finally:
        daemon.shutdown()
        daemon.ledger.close()
        daemon.lock.release()
    assert not claim_path(folders["a"]).exists()


def test_a_claim_that_never_changes_goes_stale_whatever_its_clock(
    tmp_path: Path, fake_clock: FakeClock
) -> None:
    """A heartbeat from a clock far ahead, never rewritten: stale after STALE_SECONDS seen."""
    _foreign(tmp_path, fake_clock() + 3600)
    mono = FakeClock()
    claims = Claims("a" * 32, now=fake_clock, monotonic=mono)
    assert claims.problem(tmp_path) is not None
    mono.advance(STALE_SECONDS - 1)
    assert claims.problem(tmp_path) is not None
    mono.advance(2)
    assert claims.problem(tmp_path) is None
    assert json.loads(claim_path(tmp_path).read_text())["ledger_id"] == "a" * 32
