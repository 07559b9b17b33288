"""The watchdog glue: choosing, starting and stopping a watch folder's observer (the only
watchdog importer).

Roots on network/FUSE filesystems get watchdog's polling observer (inotify never sees writes
made by other hosts); so do roots where the inotify limits are exhausted. Observer threads only
turn each event into a plain ``FsEvent`` and hand it on: the bookkeeping happens in the main
loop's ``poll()``, single-threaded.
"""

from __future__ import annotations

import contextlib
import errno
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserver

from synthesia_watchd.files import fsinfo

from .model import FsEvent, LogLike, WatchLike

_INOTIFY_LIMIT_ERRNOS = (errno.ENOSPC, errno.EMFILE)


class ObserverLike(Protocol):
    """The part of a watchdog observer the watcher drives."""

    def schedule(self, event_handler: Any, path: str, *, recursive: bool = ...) -> Any: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def join(self, timeout: float | None = ...) -> None: ...
    def is_alive(self) -> bool: ...


@dataclass(frozen=True)
class Watching:
    """A running observer, its mode ("native" or "polling") and why that mode, if chosen."""

    observer: ObserverLike
    mode: str
    reason: str | None


class _Handler(FileSystemEventHandler):
    """Runs in observer threads: pass the event on (the sink wakes the main loop), nothing else."""

    def __init__(self, sink: Callable[[FsEvent], None]) -> None:
        self._sink = sink

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        dest = _fs(event.dest_path) if event.dest_path else None
        self._sink(FsEvent(event.event_type, _fs(event.src_path), dest, event.is_directory))


def _fs(path: bytes | str) -> Path:
    return Path(os.fsdecode(path))


class Observers:
    """Starts one observer per watch: native inotify where it works, polling where it cannot."""

    def __init__(
        self,
        *,
        mounts: Callable[[], list[fsinfo.Mount]],
        log: LogLike,
        native: Callable[[], ObserverLike] | None = None,
        polling: Callable[[float], ObserverLike] | None = None,
    ) -> None:
        self._mounts = mounts
        self._log = log
        self._native = native or Observer
        self._polling = polling or (lambda interval: PollingObserver(timeout=interval))

    def start(self, cfg: WatchLike, root: Path, sink: Callable[[FsEvent], None]) -> Watching | str:
        """Start watching ``root``: the running observer, or why the folder cannot be watched."""
        mode, reason = self._mode(cfg, root)
        handler = _Handler(sink)
        observer: ObserverLike | None = None
        if mode == "native":
            try:
                observer = _run_observer(self._native, handler, root, cfg.recursive)
            except OSError as exc:
                if exc.errno not in _INOTIFY_LIMIT_ERRNOS:
                    return _cannot_watch(exc)
                mode = "polling"
                reason = (
                    f"inotify limit reached ({errno.errorcode.get(exc.errno or 0, exc.errno)}); "
                    "raise fs.inotify.max_user_watches (and fs.inotify.max_user_instances) "
                    "with sysctl to get native events back"
                )
                self._log.warning("inotify limit reached: polling instead", watch=cfg.name,
                                  root=str(root), reason=reason)  # fmt: skip
        if observer is None:
            try:
                observer = _run_observer(
                    lambda: self._polling(cfg.scan_interval), handler, root, cfg.recursive
                )
            except OSError as exc:
                return _cannot_watch(exc)
        self._log.info("watching", watch=cfg.name, root=str(root), mode=mode, reason=reason)
        return Watching(observer, mode, reason)

    def _mode(self, cfg: WatchLike, root: Path) -> tuple[str, str | None]:
        """The observer a watch starts with, and why when it is not native."""
        if cfg.mode == "polling":
            return "polling", "mode: polling in the config"
        if cfg.mode == "auto":
            net = fsinfo.network_fs_of(root, self._mounts())
            if net is not None:
                return "polling", (
                    f"input is on {net.fstype} ({net.source}): inotify does not see changes "
                    "made by other hosts"
                )
        return "native", None


def _cannot_watch(exc: OSError) -> str:
    return f"cannot watch the input folder: {exc.strerror or exc}"


def _run_observer(
    factory: Callable[[], ObserverLike], handler: _Handler, root: Path, recursive: bool
) -> ObserverLike:
    """Build, schedule and start an observer; on any failure nothing is left running."""
    _quiet_watchdog_rewatch_warning()
    observer = factory()
    try:
        observer.schedule(handler, str(root), recursive=recursive)
        observer.start()
    except BaseException:
        stop_observers([observer])
        raise
    return observer


def _quiet_watchdog_rewatch_warning() -> None:
    """Silence watchdog's RuntimeWarning when a recursive watch re-adds a folder.

    A tree created at once (``mkdir -p a/b``, a folder copied in) makes watchdog's inotify
    backend add the watch for ``a/b`` twice, once while walking ``a`` and once for b's own
    create event; the second add replaces the callback with itself and warns. The warning is
    raised in watchdog's reader thread, where a warnings-as-errors setting would kill the
    thread and stop all events. Installed at each observer start (an identical filter is
    replaced, not duplicated) so it sits ahead of filters configured after import.
    """
    warnings.filterwarnings(
        "ignore", message=r"Callback with id .* already exists for watch", category=RuntimeWarning
    )


def stop_observers(observers: Sequence[ObserverLike]) -> None:
    """Stop every observer first, then join each (threads end in parallel)."""
    for obs in observers:
        with contextlib.suppress(OSError, RuntimeError):
            obs.stop()
    for obs in observers:
        with contextlib.suppress(RuntimeError):  # never started
            if obs.is_alive():
                obs.join(10)
