"""A lost, replaced, read-only or damaged ledger is refused at start (exit 4), never paid around.

The daemon runs as a real subprocess over a real ledger file, which the tests then empty,
delete, make immutable or overwrite, exactly as a disk, a careless `rm` or a restore would.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from e2efixtures import DaemonProcess

from synthesia_watchd.domain.states import JobState
from synthesia_watchd.simulator import Simulator
from synthesia_watchd.stores.ledger import Ledger

pytestmark = pytest.mark.slow

SimFactory = Callable[..., Simulator]
DaemonFactory = Callable[..., DaemonProcess]

LEDGER_EXIT = 4


def _dub_three(daemon: DaemonProcess) -> None:
    """Three files dubbed to done, then a clean stop (the ledger checkpointed)."""
    daemon.start()
    daemon.wait_started()
    daemon.drop_many(3)
    daemon.wait_all(3, {JobState.DONE})
    assert daemon.terminate() == 0
    daemon.release_ledger()


def _remove_sidecars(ledger: Path) -> None:
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{ledger}{suffix}")


def _assert_refused(daemon: DaemonProcess, *words: str) -> str:
    """The run exits 4 by itself, with no traceback and a message holding ``words``."""
    assert daemon.wait_exit() == LEDGER_EXIT, daemon.log_text()[-3000:]
    text = daemon.log_text()
    assert "Traceback" not in text, text[-3000:]
    for word in words:
        assert word in text, f"{word!r} missing from:\n{text[-3000:]}"
    return text


@pytest.mark.parametrize("loss", ["truncated", "deleted"])
def test_a_lost_ledger_is_refused_instead_of_paying_again(
    e2e_sim: SimFactory, daemon_factory: DaemonFactory, loss: str
) -> None:
    """A ledger emptied or deleted after use: exit 4 naming --new-ledger; nothing sent again."""
    sim = e2e_sim()
    daemon = daemon_factory(sim)
    _dub_three(daemon)
    if loss == "truncated":
        os.truncate(daemon.ledger_path, 0)
    else:
        daemon.ledger_path.unlink()
    _remove_sidecars(daemon.ledger_path)
    daemon.start()
    _assert_refused(daemon, "--new-ledger", "backup")
    assert sim.count("POST /v2/assets") == 3
    assert sim.count("POST /v2/dubbing") == 3


def test_new_ledger_starts_afresh_and_adopts_outputs_on_disk(
    e2e_sim: SimFactory, daemon_factory: DaemonFactory
) -> None:
    """`run --new-ledger` after a loss: every file with its outputs on disk is done, unpaid."""
    sim = e2e_sim()
    daemon = daemon_factory(sim)
    _dub_three(daemon)
    os.truncate(daemon.ledger_path, 0)
    _remove_sidecars(daemon.ledger_path)
    daemon.start("--new-ledger")
    daemon.wait_started()
    jobs = daemon.wait_all(3, {JobState.DONE})
    assert sim.count("POST /v2/assets") == 3
    assert sim.count("POST /v2/dubbing") == 3
    for job in jobs:
        whys = [e.why for e in daemon.ledger().events(job.id)]
        assert any("adopted existing outputs" in why for why in whys), whys
    # The fresh ledger is now the recorded one: a plain restart needs no flag.
    assert daemon.terminate() == 0
    daemon.start()
    daemon.wait_started()


@contextlib.contextmanager
def _read_only(path: Path) -> Iterator[None]:
    """Make ``path`` unwritable for the daemon: immutable for root, 0444 for anyone else."""
    if os.geteuid() == 0:
        made = subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False)
        if made.returncode != 0:
            pytest.skip(f"chattr +i is not supported here: {made.stderr.decode().strip()}")
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=False)
    else:
        os.chmod(path, 0o444)
        try:
            yield
        finally:
            os.chmod(path, 0o600)


def test_a_read_only_ledger_is_refused_at_start(
    e2e_sim: SimFactory, daemon_factory: DaemonFactory
) -> None:
    """An immutable (or 0444) ledger: exit 4 saying it is read-only, before `started`."""
    sim = e2e_sim()
    daemon = daemon_factory(sim)
    daemon.start()
    daemon.wait_started()
    assert daemon.terminate() == 0
    daemon.release_ledger()
    _remove_sidecars(daemon.ledger_path)
    with _read_only(daemon.ledger_path):
        daemon.start()
        text = _assert_refused(daemon, "read-only")
    assert '"event": "started"' not in text


def _overwrite_pages(path: Path, pages: tuple[int, ...]) -> None:
    """Scribble over whole pages of an SQLite file, as a bad disk or a stray write would."""
    conn = sqlite3.connect(path)
    try:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    finally:
        conn.close()
    with open(path, "r+b") as fh:
        for page in pages:
            fh.seek(page * page_size)
            fh.write(b"\xa5" * page_size)


def test_a_ledger_with_overwritten_pages_is_refused_at_start(
    e2e_sim: SimFactory, daemon_factory: DaemonFactory
) -> None:
    """Two pages overwritten: exit 4 saying the ledger is damaged and how to restore it."""
    sim = e2e_sim()
    daemon = daemon_factory(sim)
    daemon.state_dir.mkdir(parents=True, exist_ok=True)
    with Ledger(daemon.ledger_path) as ledger:
        for i in range(300):
            ledger.add_job(
                watch="drop",
                source_path=str(daemon.input / f"old{i:03d}.mp4"),
                size=1000 + i,
                mtime_ns=i,
                sha256=f"{i:064x}",
                source_language="en",
                targets=["fr-FR"],
                output_dir=str(daemon.output),
                state=JobState.DOWNLOADING,
            )
        ledger.checkpoint()
    _remove_sidecars(daemon.ledger_path)
    _overwrite_pages(daemon.ledger_path, (3, 4))
    daemon.start()
    _assert_refused(daemon, "damaged", "backup")


def test_backup_while_running_then_restore_pays_nothing_again(
    e2e_sim: SimFactory, daemon_factory: DaemonFactory
) -> None:
    """`backup` copies the live ledger; restoring it as the README says resumes with no re-dub."""
    sim = e2e_sim()
    daemon = daemon_factory(sim)
    daemon.start()
    daemon.wait_started()
    daemon.drop_many(2)
    daemon.wait_all(2, {JobState.DONE})
    copy = daemon.base / "backups" / "ledger-copy.sqlite3"
    made = daemon.cli("backup", str(copy))
    assert made.returncode == 0, made.stderr
    assert str(copy) in made.stdout
    with Ledger(copy) as backup:
        assert backup.counts()["done"] == 2
        assert backup.integrity_check() == "ok"
    assert daemon.terminate() == 0
    daemon.release_ledger()
    # The README's restore: stop, put the copy in place, drop the old -wal/-shm, start.
    daemon.ledger_path.unlink()
    _remove_sidecars(daemon.ledger_path)
    daemon.ledger_path.write_bytes(copy.read_bytes())
    daemon.start()
    daemon.wait_started()
    daemon.drop("late.mp4")
    daemon.wait_all(3, {JobState.DONE})
    assert sim.count("POST /v2/dubbing") == 3
