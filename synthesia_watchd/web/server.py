"""uvicorn serving the console from a thread of the daemon.

The socket is bound in ``start()``, on the daemon's thread, so a taken port or a bad address
stops the daemon at start with a clear error instead of failing later in the background.
uvicorn installs no signal handlers here: the daemon owns signals. A reload that changes
``web.listen`` or ``web.token_file`` moves the console (``serve``); one that cannot keeps the
running console and logs why.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from pathlib import Path

import uvicorn

from synthesia_watchd.config.load import Config
from synthesia_watchd.domain.errors import ConfigError, ConfigIssue
from synthesia_watchd.telemetry.logsetup import get_logger

from .app import ConsoleApp
from .data import Console
from .security import new_csrf_token

log = get_logger(component="web")


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
        self.token_file = token_file
        token = read_token(token_file)
        self.app = ConsoleApp(console, csrf=new_csrf_token(), listen=listen, token=token)
        self._sock: socket.socket | None = None
        self._port: int | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (the one the OS chose when listen says port 0), kept after stop."""
        assert self._port is not None, "not started"
        return self._port

    def start(self) -> None:
        self._sock = _bind(self.listen)
        self._port = int(self._sock.getsockname()[1])
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


def serve(
    current: WebServer | None,
    config: Config,
    console: Callable[[], Console],
    *,
    reload: bool = False,
) -> WebServer | None:
    """The console as ``config`` says: started, moved to a new address or token, or stopped.

    The new server is bound before the old one stops, so a move loses no request; only when
    the old one holds the very port (a new token, the same address) does it stop first. At
    start a failure is fatal (ConfigError); on reload the running console stays as it was and
    the log says why.
    """
    listen, token_file = config.web_listen, config.web_token_file
    if current is not None and (current.listen, current.token_file) == (listen, token_file):
        return current
    if not listen:
        if current is not None:
            current.stop()
            log.info("console stopped: web.listen is no longer set", was=current.listen)
        return None
    try:
        fresh = WebServer(console(), listen, token_file)
        try:
            fresh.start()
        except ConfigError:
            if current is None or _port(listen) != current.port:
                raise
            current.stop()  # it holds the port: free it, and take it back if that fails too
            try:
                fresh.start()
            except ConfigError:
                current.start()
                raise
    except ConfigError as exc:
        if not reload:
            raise
        log.error("console not moved; it stays where it was", listen=listen, error=str(exc))
        return current
    if current is not None:
        current.stop()
        log.info("console moved", listen=listen, port=fresh.port, was=current.listen)
    else:
        log.info("console listening", listen=listen, port=fresh.port)
    return fresh


def _port(listen: str) -> int:
    """The port of a ``host:port`` listen address."""
    return int(listen.rpartition(":")[2])
