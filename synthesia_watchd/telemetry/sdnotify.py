"""systemd's sd_notify protocol over ``$NOTIFY_SOCKET``, in the stdlib only.

With ``Type=notify`` systemd waits for READY=1 (sent after the catch-up scan), shows our
STATUS= line in ``systemctl status``, restarts us when WATCHDOG=1 pings stop, and knows a stop
or reload is under way. Outside systemd (a terminal, Docker) the variable is unset and every
call is a no-op, so the daemon calls these unconditionally.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)


def _socket_address(value: str | None) -> str | None:
    """The sendto() address for ``$NOTIFY_SOCKET``, or None when unset or unsupported."""
    if not value:
        return None
    if value.startswith("@"):
        return "\0" + value[1:]  # Linux abstract namespace
    if value.startswith("/"):
        return value
    return None  # e.g. "vsock:..." from newer systemd: not used for a host service


class Notifier:
    """Send sd_notify messages; a no-op when ``$NOTIFY_SOCKET`` is unset.

    A failed send is logged once and otherwise ignored: a missing notification must never
    stop the daemon from working (systemd will complain on its own if READY never comes).
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self._address = _socket_address(env.get("NOTIFY_SOCKET"))
        self.enabled: bool = self._address is not None
        self._watchdog_usec = env.get("WATCHDOG_USEC")
        self._watchdog_pid = env.get("WATCHDOG_PID")
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._warned = False

    def ready(self, status: str | None = None) -> None:
        """READY=1: startup (or a reload) is complete; optionally with a STATUS= line."""
        self._send("READY=1", *([_status(status)] if status is not None else []))

    def status(self, text: str) -> None:
        """STATUS=: one line shown by ``systemctl status`` (e.g. queue counts)."""
        self._send(_status(text))

    def watchdog(self) -> None:
        """WATCHDOG=1: the main loop is alive; due every ``watchdog_interval()`` seconds."""
        self._send("WATCHDOG=1")

    def stopping(self) -> None:
        """STOPPING=1: a graceful shutdown has begun."""
        self._send("STOPPING=1")

    def reloading(self) -> None:
        """RELOADING=1 with MONOTONIC_USEC=; send ready() again when the reload is done."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self._send("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def watchdog_interval(self) -> float | None:
        """Seconds between WATCHDOG=1 pings (half of ``$WATCHDOG_USEC``), or None.

        None when no watchdog is configured, the value is not a positive number, or
        ``$WATCHDOG_PID`` names another process (the variable was inherited, not meant for us).
        """
        if not self._watchdog_usec:
            return None
        if self._watchdog_pid:
            try:
                if int(self._watchdog_pid) != os.getpid():
                    return None
            except ValueError:
                return None
        try:
            usec = int(self._watchdog_usec)
        except ValueError:
            return None
        if usec <= 0:
            return None
        return usec / 2 / 1_000_000

    def close(self) -> None:
        """Close the socket (a later message reopens it)."""
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None

    def _send(self, *fields: str) -> None:
        if self._address is None:
            return
        message = "\n".join(fields).encode()
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._sock.sendto(message, self._address)
            except OSError as exc:
                if not self._warned:
                    self._warned = True
                    log.warning("sd_notify to %s failed: %s", self._address.lstrip("\0"), exc)


def _status(text: str) -> str:
    """One STATUS= field: a newline would start a new (forged) assignment, so none pass."""
    return "STATUS=" + " ".join(text.splitlines())
