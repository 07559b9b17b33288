"""Open-connection bookkeeping shared by the simulator's two servers (API and S3).

``stop()`` must end every handler thread, including ones parked in a keep-alive read or a
paused gate: the servers remember each client socket so they can shut them all down.
"""

from __future__ import annotations

import contextlib
import socket
import threading


class ConnectionTracker:
    """Mixin for a server: ``track`` each client socket, ``close_connections`` at stop."""

    def init_tracking(self) -> None:
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()

    def track(self, conn: socket.socket, add: bool) -> None:
        """Remember (or forget) an open client connection."""
        with self._conns_lock:
            if add:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)

    def close_connections(self) -> None:
        """Shut every open client connection so its handler thread ends."""
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
