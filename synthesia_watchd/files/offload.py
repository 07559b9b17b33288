"""Filesystem work off the main loop, with a bound on how long the loop waits for it (pure).

A hung NFS or SMB mount blocks ``stat`` and ``scandir`` in the kernel, where no timeout can
reach; a thread stuck there cannot be cancelled either. So the main loop hands such calls to
a worker and waits a bounded time: when the call is late, the loop carries on (heartbeat,
signals, ``status``) and collects the result on a later pass. At most one call is in flight;
the worker is a daemon thread, so a call that never returns cannot hold up the exit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Offloaded(Generic[T]):
    """Runs one call at a time on a daemon thread; ``run`` waits at most ``timeout``."""

    def __init__(self, name: str, *, now: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self._now = now
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._result: T | None = None
        self._error: BaseException | None = None
        self._started_at = 0.0

    def _target(self, fn: Callable[[], T]) -> None:
        try:
            self._result = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller by run()
            self._error = exc
        finally:
            self._done.set()

    def run(self, fn: Callable[[], T], timeout: float) -> tuple[bool, T | None]:
        """(True, result) when the call (this one, or a late earlier one) has finished within
        ``timeout``; (False, None) while it is still running. Re-raises the call's error."""
        if self._thread is None:
            self._done.clear()
            self._result, self._error = None, None
            self._started_at = self._now()
            self._thread = threading.Thread(
                target=self._target, args=(fn,), name=self.name, daemon=True
            )
            self._thread.start()
        if not self._done.wait(timeout):
            return False, None
        self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        result, self._result = self._result, None
        return True, result

    def stuck_for(self) -> float:
        """Seconds the call in flight has been running (0 when none is)."""
        if self._thread is None or self._done.is_set():
            return 0.0
        return self._now() - self._started_at
