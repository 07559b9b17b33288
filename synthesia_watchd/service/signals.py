"""The daemon's signal handlers: flags only, acted on by the main loop.

A handler runs between two bytecodes of the main thread, which may hold a lock or be half way
through a log line: so it takes no lock, logs nothing and does no I/O. It notes the signal;
``Daemon.loop_once`` takes the notes on its next pass (SIGTERM/SIGINT: a warm stop, SIGHUP:
a reload). A second SIGTERM/SIGINT is the one exception: a cold stop, at once.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from types import FrameType

#: The signals that ask for a stop (the first warm, a second cold).
STOPS = (signal.SIGTERM, signal.SIGINT)


class SignalFlags:
    """The signals noted since the loop's last pass, oldest first."""

    def __init__(self) -> None:
        self._pending: list[int] = []
        self._stops = 0

    def install(self) -> None:
        """Route SIGTERM, SIGINT and SIGHUP here (the main thread only may do this)."""
        for sig in (*STOPS, signal.SIGHUP):
            signal.signal(sig, self.on_signal)

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        # Only a flag: no locks, no logging, no I/O here (they can deadlock a signal handler).
        self._pending.append(signum)
        if signum in STOPS:
            self._stops += 1
            if self._stops >= 2:
                os._exit(130)  # second signal: cold stop; the ledger is consistent at any point

    def request_stop(self) -> None:
        """A warm stop asked from another thread (the demo, tests): the note SIGTERM leaves."""
        self._pending.append(signal.SIGTERM)

    def taken(self) -> Iterator[int]:
        """Each noted signal once, oldest first, including those noted while acting on one."""
        while self._pending:
            yield self._pending.pop(0)
