"""Refuse a ledger that would make the daemon forget what it paid for: lost, replaced,
read-only or damaged.

The ledger is the only memory of what was sent to Synthesia. Emptied or deleted, it makes a
restart see every file in the watch folders as new and pay for each again; read-only or with
damaged pages, it crashes the daemon at its first write or read, deep inside a job. So before
anything is sent: the id stored in the ledger is compared with the copy kept beside it
(``<ledger>.id``), the file must open for writing, SQLite's ``quick_check`` must pass, and a
write must go through. Each failure is a LedgerError that says what to do (exit 4).
"""

from __future__ import annotations

import os
import sqlite3
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path

from synthesia_watchd.domain.errors import LedgerError
from synthesia_watchd.files.atomic import replace_file
from synthesia_watchd.telemetry.logsetup import get_logger

from .ledger import Ledger

log = get_logger(component="ledger")

ID_SUFFIX = ".id"
ID_KEY = "ledger_id"
#: SQLite's result codes for a file that is not (or no longer) a sound database.
_DAMAGED = frozenset({"SQLITE_CORRUPT", "SQLITE_NOTADB"})
_READONLY = frozenset({"SQLITE_READONLY", "SQLITE_PERM", "SQLITE_CANTOPEN"})

RESTORE = 'restore the newest backup (README, Troubleshooting: "Restoring the ledger")'
AFRESH = (
    "start afresh on purpose with `synthesia-watchd run --new-ledger` (files whose outputs "
    "are already on disk are adopted with no API call; the others are dubbed, and paid for, "
    "again)"
)


def id_path(ledger_path: Path) -> Path:
    """The small file beside the ledger that remembers which ledger was used here."""
    return ledger_path.with_name(ledger_path.name + ID_SUFFIX)


def recorded_id(ledger_path: Path) -> str | None:
    """The id recorded beside the ledger, or None when no ledger was ever used here."""
    path = id_path(ledger_path)
    try:
        return path.read_text(encoding="ascii").strip() or None
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not an id"
        raise LedgerError(f"cannot read {path}: {why}; fix or remove that file") from None


def _damaged(path: Path, detail: str) -> LedgerError:
    return LedgerError(
        f"the ledger {path} is damaged ({detail.splitlines()[0]}); nothing was sent. Stop here "
        f"and {RESTORE}; without a backup, move the damaged file away (keep it: "
        f"`sqlite3 {path.name} .recover` may save its history) and {AFRESH}"
    )


def _read_only(path: Path, detail: str) -> LedgerError:
    return LedgerError(
        f"the ledger {path} is read-only for this user (uid {os.getuid()}: {detail}); the "
        "daemon writes every step down before taking it, so it cannot run. Make the file, its "
        "-wal/-shm files and its folder writable by the daemon's user (`chattr -i` if it was "
        "made immutable, `chmod u+w`, `chown`), then start again"
    )


def _peek(path: Path) -> tuple[str | None, int]:
    """(the id stored in the ledger file, how many jobs it holds), read-only.

    A missing or empty file, or one without our tables, has no id.
    """
    if not path.exists() or path.stat().st_size == 0:
        return None, 0
    uri = f"file:{urllib.parse.quote(str(path))}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True)
        try:
            tables = {
                r[0]
                for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'"
                    " AND name IN ('meta', 'jobs')"
                )
            }
            if tables != {"meta", "jobs"}:
                return None, 0
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (ID_KEY,)).fetchone()
            jobs = int(conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        if getattr(exc, "sqlite_errorname", "") in _DAMAGED:
            raise _damaged(path, str(exc)) from None
        raise LedgerError(f"cannot read the ledger {path}: {exc}") from None
    return (str(row[0]) if row else None), jobs


def check_identity(path: Path, *, new_ledger: bool = False) -> None:
    """Refuse a ledger that is not the one recorded beside it (emptied, deleted, replaced)."""
    recorded = recorded_id(path)
    if recorded is None:
        return  # never used here (or used before ids were recorded): nothing to compare
    found, jobs = _peek(path)
    if found == recorded:
        return
    if not path.exists():
        what = "is missing"
    elif found is None or jobs == 0:
        what = "is empty"
    else:
        what = f"is another ledger (id {found[:8]}, {jobs} jobs)"
    if new_ledger:
        log.warning(
            "starting afresh with a new ledger (--new-ledger)",
            ledger=str(path),
            was=recorded[:8],
            found=what,
        )
        return
    raise LedgerError(
        f"the ledger {path} {what}, but {id_path(path).name} beside it records that ledger "
        f"{recorded[:8]} was used here: without it every file in the watch folders would be "
        f"dubbed, and paid for, again. Nothing was sent. Either {RESTORE}, or {AFRESH}"
    )


def _check_file_writable(path: Path) -> None:
    """An immutable, 0444 or read-only-mounted ledger fails here, before SQLite hides it."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return  # created by the open that follows
    except OSError as exc:
        raise _read_only(path, exc.strerror or str(exc)) from None
    os.close(fd)


def _open(path: Path, now: Callable[[], float]) -> Ledger:
    try:
        return Ledger(path, now=now)
    except LedgerError as exc:
        cause = exc.__cause__
        name = getattr(cause, "sqlite_errorname", "")
        if name in _DAMAGED:
            raise _damaged(path, str(cause)) from None
        if name in _READONLY:
            raise _read_only(path, str(cause)) from None
        raise


def check_health(ledger: Ledger) -> None:
    """Every page readable (``quick_check``) and a write that goes through, or LedgerError."""
    try:
        problems = ledger.quick_check()
    except sqlite3.DatabaseError as exc:
        raise _damaged(ledger.path, str(exc)) from None
    if problems != "ok":
        raise _damaged(ledger.path, problems)
    try:
        ledger.set_meta("opened_at", repr(time.time()))
    except (sqlite3.Error, LedgerError) as exc:
        cause = exc if isinstance(exc, sqlite3.Error) else exc.__cause__
        if getattr(cause, "sqlite_errorname", "") in _READONLY:
            raise _read_only(ledger.path, str(cause)) from None
        raise LedgerError(f"the ledger {ledger.path} cannot be written: {exc}") from None


def record_identity(ledger: Ledger) -> str:
    """Write the ledger's id beside it (first use, or a start afresh); returns the id."""
    ledger_id = ledger.get_meta(ID_KEY)
    if ledger_id is None:
        raise LedgerError(f"the ledger {ledger.path} has no id; it was not migrated")
    if recorded_id(ledger.path) != ledger_id:
        replace_file(id_path(ledger.path), (ledger_id + "\n").encode("ascii"), 0o600)
    return ledger_id


def open_checked(
    path: Path, *, new_ledger: bool = False, now: Callable[[], float] = time.time
) -> Ledger:
    """Open the ledger for a daemon run after every start-up check; LedgerError says why not."""
    check_identity(path, new_ledger=new_ledger)
    _check_file_writable(path)
    ledger = _open(path, now)
    try:
        check_health(ledger)
        record_identity(ledger)
    except BaseException:
        ledger.close()
        raise
    return ledger


def backup(ledger: Ledger, dest: Path, *, folder: bool = False) -> Path:
    """Copy the ledger online into ``dest``: a file, or (existing, or ``folder``) a folder
    that gets a dated name.

    The copy is written beside its final name and renamed into place once checked, so a
    failed backup never leaves a half copy under the name of a good one.
    """
    if folder or dest.is_dir():
        dest.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime())
        dest = dest / f"{ledger.path.stem}-{stamp}.sqlite3"
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # private from birth
        ledger.backup(tmp)
        check = sqlite3.connect(tmp)
        try:
            problems = [r[0] for r in check.execute("PRAGMA quick_check(20)") if r[0] != "ok"]
        finally:
            check.close()
        if problems:
            raise LedgerError(f"the backup copy failed its check ({problems[0]}); nothing kept")
        os.replace(tmp, dest)
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{tmp}{suffix}").unlink(missing_ok=True)
    return dest
