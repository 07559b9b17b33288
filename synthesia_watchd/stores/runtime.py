"""Runtime files: which daemons run now, and on which ledger.

A running daemon writes ``<pid>.json`` (its ledger, state folder and config) into a runtime
folder at start and removes it at a clean stop. A PostgreSQL ledger is named by its URL
without any password: a command takes the password from the daemon's config when it may read
it (its ``ledger_password_file``, a credential), else libpq finds it (PGPASSWORD, ~/.pgpass);
the runtime file itself never holds a secret. Commands given no config read these files,
so `status` typed without ``-c`` answers for the daemon that really runs instead of a
default ledger nobody uses. A file left by a killed daemon names a dead pid and is ignored.

Folder, first that applies: ``$SYNTHESIA_WATCHD_RUNTIME_DIR``, systemd's
``$RUNTIME_DIRECTORY``, ``$XDG_RUNTIME_DIR/synthesia-watchd``, ``/run/synthesia-watchd``
when writable, else ``<tmp>/synthesia-watchd-<uid>``. Readers look in all of them.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from synthesia_watchd.config.load import load_config
from synthesia_watchd.domain.errors import ConfigError, UsageError

ENV_DIR = "SYNTHESIA_WATCHD_RUNTIME_DIR"
SYSTEM_DIR = Path("/run/synthesia-watchd")


@dataclass(frozen=True)
class RunningDaemon:
    """What a runtime file says about one running daemon."""

    pid: int
    #: The SQLite file, or the PostgreSQL URL without its password.
    ledger: Path | str
    state_dir: Path
    config: str | None
    started: float
    file: Path
    start_ticks: int | None = None


def is_url(ledger: str) -> bool:
    """Whether a runtime file's ledger is a PostgreSQL URL rather than a file."""
    return ledger.startswith(("postgresql://", "postgres://"))


def without_password(url: str) -> str:
    """A libpq URL with any password left out (in the user part or as a parameter)."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.split(':', 1)[0]}@{host}"
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "password"]
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query), parts.fragment))


def _candidates(environ: Mapping[str, str]) -> list[Path]:
    """Runtime folders in order of preference (writers take the first usable one)."""
    found: list[Path] = []
    if environ.get(ENV_DIR):
        return [Path(environ[ENV_DIR])]
    systemd = environ.get("RUNTIME_DIRECTORY", "").split(":")[0]
    if systemd:
        found.append(Path(systemd))
    if environ.get("XDG_RUNTIME_DIR"):
        found.append(Path(environ["XDG_RUNTIME_DIR"]) / "synthesia-watchd")
    found.append(SYSTEM_DIR)
    found.append(Path(tempfile.gettempdir()) / f"synthesia-watchd-{os.getuid()}")
    return found


def _start_ticks(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot, from /proc): a pid reused by
    another process after a crash has another start time. None where /proc is unreadable."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
        return int(raw.rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _writable_dir(path: Path) -> bool:
    try:
        path.mkdir(mode=0o755, parents=False, exist_ok=True)
    except OSError:
        return False
    return os.access(path, os.W_OK | os.X_OK)


def register(
    ledger: Path | str,
    state_dir: Path,
    config: Path | None,
    environ: Mapping[str, str] | None = None,
) -> Path | None:
    """Write this process's runtime file; returns it (None when no folder is writable)."""
    env = os.environ if environ is None else environ
    record = {
        "pid": os.getpid(),
        "ledger": without_password(ledger) if isinstance(ledger, str) else str(ledger),
        "state_dir": str(state_dir),
        "config": str(config) if config is not None else None,
        "started": time.time(),
        "start_ticks": _start_ticks(os.getpid()),
    }
    for folder in _candidates(env):
        if not _writable_dir(folder):
            continue
        path = folder / f"{os.getpid()}.json"
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            tmp.write_text(json.dumps(record), encoding="utf-8")
            os.chmod(tmp, 0o644)  # readable by operators: it names paths, no secret
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()
            continue
        return path
    return None


def unregister(path: Path | None) -> None:
    """Remove a runtime file written by ``register`` (clean stop)."""
    if path is not None:
        with contextlib.suppress(OSError):
            path.unlink()


def _alive(pid: int, start_ticks: int | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        pass
    now_ticks = _start_ticks(pid)
    return start_ticks is None or now_ticks is None or now_ticks == start_ticks


def _read(path: Path) -> RunningDaemon | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        ledger = str(doc["ledger"])
        return RunningDaemon(
            pid=int(doc["pid"]),
            ledger=ledger if is_url(ledger) else Path(ledger),
            state_dir=Path(doc["state_dir"]),
            config=doc.get("config"),
            started=float(doc.get("started", 0)),
            file=path,
            start_ticks=doc.get("start_ticks"),
        )
    except (OSError, ValueError, TypeError, KeyError):
        return None


def running(environ: Mapping[str, str] | None = None) -> list[RunningDaemon]:
    """Every daemon whose runtime file names a live process, one per ledger."""
    env = os.environ if environ is None else environ
    folders = _candidates(env)
    if ENV_DIR not in env or not env.get(ENV_DIR):
        # Daemons of other users fall back to their own temp folder: look there too.
        folders += sorted(Path(tempfile.gettempdir()).glob("synthesia-watchd-*"))
    seen: dict[Path | str, RunningDaemon] = {}
    for folder in dict.fromkeys(folders):
        with contextlib.suppress(OSError):
            for path in sorted(folder.glob("*.json")):
                found = _read(path)
                if found is not None and _alive(found.pid, found.start_ticks):
                    seen.setdefault(found.ledger, found)
    return list(seen.values())


NO_CONFIG_FIX = (
    "pass -c CONFIG (the config the daemon runs with), set SYNTHESIA_WATCHD_CONFIG, "
    "or give --ledger FILE"
)


def the_running_daemon(environ: Mapping[str, str] | None = None) -> RunningDaemon:
    """Without a config: the one running daemon, else UsageError saying what to pass."""
    found = running(environ)
    if len(found) == 1:
        return found[0]
    if found:
        names = "; ".join(
            f"pid {d.pid}: -c {d.config}" if d.config else f"pid {d.pid}: --ledger {d.ledger}"
            for d in found
        )
        raise UsageError(f"{len(found)} daemons are running ({names}); say which: {NO_CONFIG_FIX}")
    raise UsageError(f"no config file and no running synthesia-watchd found: {NO_CONFIG_FIX}")


@dataclass(frozen=True)
class FoundLedger:
    """The ledger a command given no config works on, and whether a daemon runs on it."""

    ledger: Path | str
    running: bool
    #: The running daemon's config file, if it named one.
    config: str | None = None

    def password(self) -> str | None:
        """A PostgreSQL ledger's password as the daemon's config finds it (its password file,
        a credential) when this user may read them; None: libpq's own sources (PGPASSWORD,
        ~/.pgpass)."""
        if isinstance(self.ledger, Path) or self.config is None:
            return None
        try:
            return load_config(Path(self.config)).ledger_password_text()
        except (ConfigError, OSError):
            return None


def ledger_without_config(default: Path, environ: Mapping[str, str] | None = None) -> FoundLedger:
    """The running daemon's ledger; with none running, ``default`` (the default state
    folder's, where `dub` without -c keeps its jobs) if it exists; else UsageError."""
    try:
        found = the_running_daemon(environ)
        return FoundLedger(found.ledger, True, found.config)
    except UsageError:
        if not running(environ) and default.exists():
            return FoundLedger(default, False)
        raise
