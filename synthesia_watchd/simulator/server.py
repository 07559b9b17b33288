"""The simulator's HTTP front: routing, the request log, gates, faults, auth and rate limits.

Plain ``http.server`` on 127.0.0.1 with HTTP/1.1 keep-alive, like the real API behind its load
balancer, so clients meet real sockets: pooled connections, drops mid-request, short bodies.
The order per request is: record arrival, wait at a gate, pre-processing faults, auth, rate
limit, the service, then slow/drop_after/truncate on the way out.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .conns import ConnectionTracker
from .faults import PRE_KINDS, Fault, Recorded
from .replies import Reply, error_reply, s3_error_reply
from .s3 import phrase

if TYPE_CHECKING:
    from .sim import Simulator

_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("POST", re.compile(r"/v2/assets/?$"), "POST /v2/assets"),
    ("GET", re.compile(r"/v2/assets/([^/]+)$"), "GET /v2/assets/{id}"),
    ("POST", re.compile(r"/v2/dubbing/?$"), "POST /v2/dubbing"),
    ("GET", re.compile(r"/v2/dubbing/([^/]+)$"), "GET /v2/dubbing/{id}"),
    ("PUT", re.compile(r"/v2/dubbing/([^/]+)$"), "PUT /v2/dubbing/{id}"),
    ("GET", re.compile(r"/v2/videos/?$"), "GET /v2/videos"),
    ("GET", re.compile(r"/_signed/[^/]+/[^/]+$"), "DOWNLOAD"),
]
_MAX_BODY = 1 << 20


def allowed_methods(path: str) -> list[str]:
    """The methods a known path serves (for a 405's ``Allow``); empty for unknown paths."""
    return [want for want, pattern, _ in _ROUTES if pattern.match(path)]


def route(method: str, path: str) -> tuple[str | None, str]:
    """(endpoint template, path id) for a request; (None, "") when nothing matches."""
    for want, pattern, endpoint in _ROUTES:
        match = pattern.match(path)
        if match and want == method:
            return endpoint, (match.group(1) if match.groups() else "")
    return None, ""


class ApiServer(ConnectionTracker, ThreadingHTTPServer):
    """Threaded server that knows its open connections, so ``stop`` never hangs on keep-alive."""

    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True

    def __init__(self, sim: Simulator, host: str, port: int) -> None:
        self.sim = sim
        self.init_tracking()
        super().__init__((host, port), Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that vanish are normal here (drops are a feature); others get a traceback."""
        import sys

        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class Handler(BaseHTTPRequestHandler):
    """One client connection; every method goes through ``_dispatch``."""

    protocol_version = "HTTP/1.1"
    server: ApiServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out as separate writes; without NODELAY, Nagle plus the
        # client's delayed ACK adds ~40 ms to every keep-alive answer.
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        """Requests are in ``Simulator.requests``; stderr stays quiet."""

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def __getattr__(self, name: str) -> Any:
        """Any other method (OPTIONS, TRACE, QUERY...) is routed too: 405 on a known path."""
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    # -- the pipeline ---------------------------------------------------------------------------

    def _dispatch(self) -> None:
        sim = self.server.sim
        parts = urlsplit(self.path)
        path, query = parts.path, parts.query
        raw = self._read_body()
        endpoint, ident = route(self.command, path)
        rec = sim.record(
            self.command, endpoint or "UNKNOWN", path, query, "Authorization" in self.headers
        )
        if endpoint is None:
            allowed = allowed_methods(path)
            if allowed:
                reply = error_reply(
                    405, "Method Not Allowed", f"{path} serves {', '.join(allowed)} only"
                )
                reply.headers.append(("Allow", ", ".join(allowed)))
            else:
                reply = error_reply(404, "Not Found", f"no route for {self.command} {path}")
            self._send(rec, reply)
            return
        sim.wait_gate(endpoint)
        download = endpoint == "DOWNLOAD"
        slow = sim.faults.take(endpoint, ["slow"])
        kinds = [*PRE_KINDS, "expired_url"] if download else list(PRE_KINDS)
        fault = sim.faults.take(endpoint, kinds)
        truncate: Fault | None = None
        if fault is not None:
            rec.fault = fault.kind
            if fault.kind == "drop_before":
                self._drop(rec)
                return
            reply = _fault_reply(fault, download, sim)
        elif download:
            reply = sim.service.download(path, query, self.headers)
            if reply.status in (200, 206):
                truncate = sim.faults.take(endpoint, ["truncate"])
        else:
            reply = self._api(endpoint, ident, query, raw, rec)
        if slow is not None:
            rec.fault = rec.fault or "slow"
            sim.stop_event.wait(float(slow.param("seconds", slow.param("delay", 1.0))))
        if sim.faults.take(endpoint, ["drop_after"]) is not None:
            rec.fault = "drop_after"
            self._drop(rec)
            return
        if truncate is not None:
            rec.fault = "truncate"
        self._send(rec, reply, truncate=truncate is not None)

    def _api(self, endpoint: str, ident: str, query: str, raw: bytes, rec: Recorded) -> Reply:
        """Auth, rate limit, then the service call for one API endpoint."""
        sim = self.server.sim
        refusal = sim.check_auth(self.headers.get("Authorization"))
        if refusal is not None:
            return refusal
        limited = sim.check_rate(endpoint, self.command)
        if limited is not None:
            return limited
        if endpoint.startswith("GET"):
            if endpoint == "GET /v2/assets/{id}":
                return sim.service.get_asset(ident)
            if endpoint == "GET /v2/videos":
                return sim.service.list_videos(query)
            return sim.service.get_dubbing(ident, query)
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError:
            return error_reply(400, "Bad Request", "request body is not valid JSON")
        rec.body = body
        if endpoint == "POST /v2/assets":
            return sim.service.create_asset(body)
        if endpoint == "POST /v2/dubbing":
            return sim.service.create_dubbing(body)
        return sim.service.add_locales(ident, body)

    # -- I/O ------------------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        if length <= 0:
            return b""
        data = self.rfile.read(min(length, _MAX_BODY))
        remaining = length - len(data)
        while remaining > 0:  # discard what we will not parse, keep the connection in sync
            chunk = self.rfile.read(min(remaining, 1 << 16))
            if not chunk:
                break
            remaining -= len(chunk)
        return data

    def _send(self, rec: Recorded, reply: Reply, truncate: bool = False) -> None:
        rec.status = reply.status
        self.send_response(reply.status, phrase(reply.status))
        for name, value in reply.headers:
            self.send_header(name, value)
        if reply.status != 204:
            if reply.content_type:
                self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if self.command == "HEAD" or reply.status == 204:
            return
        if truncate:
            self.wfile.write(reply.body[: len(reply.body) // 2])
            self._drop(None)
            return
        self.wfile.write(reply.body)

    def _drop(self, rec: Recorded | None) -> None:
        """Close the connection without (the rest of) an answer."""
        if rec is not None:
            rec.status = None
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _fault_reply(fault: Fault, download: bool, sim: Simulator) -> Reply:
    """The answer a 429 / 5xx / expired_url fault gives (S3-style XML on signed URLs)."""
    if fault.kind == "expired_url":
        return sim.service.urls.expired_reply()
    if fault.kind == "429":
        retry_after = max(1, math.ceil(float(fault.param("retry_after", 1))))
        if download:
            reply = s3_error_reply(503, "SlowDown", "Please reduce your request rate.")
            reply.headers.append(("Retry-After", str(retry_after)))
            return reply
        reply = rate_limited_reply(int(fault.param("limit", 60)), retry_after)
        if fault.param("reset", "seconds") == "epoch":  # as third-party SDKs describe it
            reset = math.ceil(sim.epoch(sim.clock()) + retry_after)
            reply.headers = [
                (k, str(reset) if k == "RateLimit-Reset" else v)
                for k, v in reply.headers
                if k != "Retry-After"
            ]
        return reply
    status = int(fault.param("status", 503))
    if download:
        return s3_error_reply(status, "InternalError", "We encountered an internal error.")
    return error_reply(status, phrase(status), "simulated server fault")


def rate_limited_reply(limit: int, reset: int) -> Reply:
    """429 with Synthesia's RateLimit-Limit / RateLimit-Reset headers (plus Retry-After)."""
    reply = error_reply(429, "Too Many Requests", f"rate limit of {limit} exceeded")
    reply.headers += [
        ("RateLimit-Limit", str(limit)),
        ("RateLimit-Reset", str(reset)),
        ("Retry-After", str(reset)),
    ]
    return reply
