"""uvicorn serving the console from a thread of the daemon.

The socket is bound in ``start()``, on the daemon's thread, so a taken port or a bad address
stops the daemon at start with a clear error instead of failing later in the background.
uvicorn installs no signal handlers here: the daemon owns signals.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import uvicorn

from synthesia_watchd.domain.errors import ConfigError, ConfigIssue

from .app import ConsoleApp
from .data import Console
from .security import new_csrf_token


def read_token(path: Path | None) -> str | None:
    """The access token from ``web.token_file``; an unreadable or empty file is a config error."""
    if path is None:
        return None
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(
            [ConfigIssue(str(path), "web.token_file", None, f"cannot read: {exc.strerror}")]
        ) from None
    if len(token) < 16:
        raise ConfigError(
            [ConfigIssue(str(path), "web.token_file", None, "the token must be 16+ characters")]
        )
    return token


def _bind(listen: str) -> socket.socket:
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Answers go out in two writes (headers, body): without this a keep-alive client waits
    # for its delayed ACK, 40 ms per request.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, int(port)))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            [ConfigIssue("<config>", "web.listen", None, f"cannot listen on {listen}: {exc}")]
        ) from None
    sock.listen(64)
    sock.set_inheritable(True)
    return sock


class WebServer:
    """The console and push API on ``web.listen``; ``start()`` then ``stop()``."""

    def __init__(self, console: Console, listen: str, token_file: Path | None) -> None:
        self.listen = listen
        token = read_token(token_file)
        self.app = ConsoleApp(console, csrf=new_csrf_token(), listen=listen, token=token)
        self._sock: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (the one the OS chose when listen says port 0)."""
        assert self._sock is not None
        return int(self._sock.getsockname()[1])

    def start(self) -> None:
        self._sock = _bind(self.listen)
        config = uvicorn.Config(
            self.app.app,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name="web", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        if self._sock is not None:
            self._sock.close()
