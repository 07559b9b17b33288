"""Runtime files: which daemons run now, and on which ledger.

A running daemon writes ``<pid>.json`` (its ledger, state folder and config) into a runtime
folder at start and removes it at a clean stop. Commands given no config read these files,
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

from synthesia_watchd.domain.errors import UsageError

ENV_DIR = "SYNTHESIA_WATCHD_RUNTIME_DIR"
SYSTEM_DIR = Path("/run/synthesia-watchd")


@dataclass(frozen=True)
class RunningDaemon:
    """What a runtime file says about one running daemon."""

    pid: int
    ledger: Path
    state_dir: Path
    config: str | None
    started: float
    file: Path
    start_ticks: int | None = None


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
    ledger: Path,
    state_dir: Path,
    config: Path | None,
    environ: Mapping[str, str] | None = None,
) -> Path | None:
    """Write this process's runtime file; returns it (None when no folder is writable)."""
    env = os.environ if environ is None else environ
    record = {
        "pid": os.getpid(),
        "ledger": str(ledger),
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
        return RunningDaemon(
            pid=int(doc["pid"]),
            ledger=Path(doc["ledger"]),
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
    seen: dict[Path, RunningDaemon] = {}
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

    ledger: Path
    running: bool


def ledger_without_config(default: Path, environ: Mapping[str, str] | None = None) -> FoundLedger:
    """The running daemon's ledger; with none running, ``default`` (the default state
    folder's, where `dub` without -c keeps its jobs) if it exists; else UsageError."""
    try:
        return FoundLedger(the_running_daemon(environ).ledger, True)
    except UsageError:
        if not running(environ) and default.exists():
            return FoundLedger(default, False)
        raise
