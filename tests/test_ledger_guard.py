"""The ledger's start-up checks and backups, in-process over real SQLite files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from synthesia_watchd.domain.errors import LedgerError
from synthesia_watchd.domain.states import JobState
from synthesia_watchd.stores.ledger import Ledger
from synthesia_watchd.stores.ledgerguard import backup, id_path, open_checked, recorded_id


def _job(ledger: Ledger, n: int) -> None:
    ledger.add_job(
        watch="drop",
        source_path=f"/srv/drop/clip{n}.mp4",
        size=100,
        mtime_ns=n,
        sha256=f"{n:064x}",
        source_language="en",
        targets=["fr-FR"],
        output_dir="/srv/out",
        state=JobState.DONE,
    )


def test_first_use_records_the_ledger_id_beside_it(tmp_path: Path) -> None:
    """A new ledger's id is written to <ledger>.id, private to the daemon's user."""
    path = tmp_path / "ledger.sqlite3"
    with open_checked(path) as ledger:
        ledger_id = ledger.get_meta("ledger_id")
    assert ledger_id and recorded_id(path) == ledger_id
    assert stat.S_IMODE(os.stat(id_path(path)).st_mode) == 0o600


def test_another_ledger_in_its_place_is_refused(tmp_path: Path) -> None:
    """A ledger with jobs but another id (a wrong file copied in) is refused, named as such."""
    path = tmp_path / "ledger.sqlite3"
    open_checked(path).close()
    other = tmp_path / "other.sqlite3"
    with Ledger(other) as ledger:
        _job(ledger, 1)
    path.unlink()
    os.replace(other, path)
    with pytest.raises(LedgerError, match="is another ledger"):
        open_checked(path)
    with open_checked(path, new_ledger=True) as ledger:
        assert recorded_id(path) == ledger.get_meta("ledger_id")


def test_backup_into_a_folder_gets_a_dated_private_name(tmp_path: Path) -> None:
    """backup(folder): a dated file, mode 0600, with every job, no temp file left behind."""
    with open_checked(tmp_path / "state" / "ledger.sqlite3") as ledger:
        _job(ledger, 1)
        _job(ledger, 2)
        folder = tmp_path / "backups"
        folder.mkdir()
        made = backup(ledger, folder)
    assert made.parent == folder and made.name.startswith("ledger-")
    assert stat.S_IMODE(os.stat(made).st_mode) == 0o600
    assert sorted(p.name for p in folder.iterdir()) == [made.name]
    with Ledger(made) as copy:
        assert copy.counts()["done"] == 2


def test_backup_to_a_new_folder_named_with_a_slash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`backup DIR/` creates the folder and a dated file in it, not a file called DIR."""
    from synthesia_watchd.service import cli

    ledger_path = tmp_path / "ledger.sqlite3"
    open_checked(ledger_path).close()
    dest = tmp_path / "backups" / "daily"
    assert cli.main(["backup", "--ledger", str(ledger_path), f"{dest}/"]) == 0
    made = list(dest.iterdir())
    assert len(made) == 1 and made[0].name.startswith("ledger-")
    assert str(made[0]) in capsys.readouterr().out
