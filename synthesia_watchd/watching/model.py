"""What the watchers take and what they hand back: the config and logger they need, the plain
filesystem events their observers pass on, the files a poll reports and each watch's status.

Kept apart from the machinery so the daemon, the runner and the watchers' own modules share
one vocabulary without importing each other (and without a watchdog type in sight).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from synthesia_watchd.files.folderwalk import WalkLike
from synthesia_watchd.files.incomplete import Held

# --- what the watcher needs from config (the real frozen dataclasses fit) ---------------------


class WatchLike(WalkLike, Protocol):
    """config.WatchConfig as seen by the watcher (the walk's part comes from folderwalk)."""

    @property
    def name(self) -> str: ...
    @property
    def stable_seconds(self) -> float: ...
    @property
    def mode(self) -> str: ...
    @property
    def scan_interval(self) -> float: ...
    @property
    def incomplete_timeout(self) -> float: ...


class LogLike(Protocol):
    """A structlog-style logger: an event name plus key/value pairs."""

    def debug(self, event: str, **kw: Any) -> Any: ...
    def info(self, event: str, **kw: Any) -> Any: ...
    def warning(self, event: str, **kw: Any) -> Any: ...


# --- what an observer passes on ----------------------------------------------------------------


@dataclass(frozen=True)
class FsEvent:
    """One filesystem event as the main loop reads it (decoded paths, no watchdog type)."""

    event_type: str
    src: Path
    dest: Path | None
    is_directory: bool


# --- what poll() reports -----------------------------------------------------------------------


@dataclass(frozen=True)
class StableFile:
    """A candidate file that finished being written: queue a job for this identity."""

    watch: str
    path: Path
    size: int
    mtime_ns: int
    #: Set when the file stayed structurally incomplete for the watch's whole
    #: ``incomplete_timeout``: intake fails it with this reason instead of dubbing it.
    incomplete: str | None = None


@dataclass(frozen=True)
class Vanished:
    """A file reported stable earlier is gone (root healthy): cancel its queued job."""

    watch: str
    path: Path


@dataclass(frozen=True)
class WatchStatus:
    """One watch as the operator sees it (``status`` command, /healthz)."""

    name: str
    mode: str
    reason: str | None
    paused: bool
    pause_reason: str | None
    pending: int
    incomplete: tuple[Held, ...] = ()
