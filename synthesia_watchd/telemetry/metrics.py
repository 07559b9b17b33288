"""Prometheus metrics, the optional /metrics and /healthz listener, and the heartbeat file.

The only prometheus_client importer. Each ``Metrics`` owns its registry (never the global
default one), so tests and a ``run --once`` inside a test can build as many as they like.
The heartbeat is a small JSON file the main loop rewrites; ``synthesia-watchd health``, the
Docker HEALTHCHECK and /healthz all judge liveness from its age, so a hung loop shows up even
when the process is still there.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge
from prometheus_client.exposition import generate_latest

from synthesia_watchd.domain.states import JobState

# stdlib logging on purpose: the record still goes through logsetup's renderer and redaction,
# and this module stays free of structlog.
log = logging.getLogger(__name__)

PREFIX = "synthesia_watchd"


class Metrics:
    """Every metric the daemon exports, on a registry of its own."""

    def __init__(self, node: str | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.jobs_by_state = Gauge(
            f"{PREFIX}_jobs", "Jobs in the ledger, by state.", ["state"], registry=r
        )
        self.bytes_uploaded = Counter(
            f"{PREFIX}_uploaded_bytes", "Source bytes uploaded to S3.", registry=r
        )
        self.bytes_downloaded = Counter(
            f"{PREFIX}_downloaded_bytes", "Dubbed output bytes downloaded.", registry=r
        )
        self.api_responses = Counter(
            f"{PREFIX}_api_responses",
            'Synthesia API answers by operation and HTTP status ("none": no answer).',
            ["operation", "status"],
            registry=r,
        )
        self.oldest_queued_age = Gauge(
            f"{PREFIX}_oldest_queued_age_seconds",
            "Age of the oldest job still waiting to start (0 when none waits).",
            registry=r,
        )
        self.paused = Gauge(
            f"{PREFIX}_paused",
            "1 while API work is paused for this reason (auth, budget, ...), else 0.",
            ["reason"],
            registry=r,
        )
        self.watch_held = Gauge(
            f"{PREFIX}_watch_held",
            "1 while a watch starts no new paid work, by reason (pause, drain, schedule).",
            ["watch", "reason"],
            registry=r,
        )
        self.heartbeat_timestamp = Gauge(
            f"{PREFIX}_heartbeat_timestamp_seconds",
            "Unix time of the main loop's last heartbeat.",
            registry=r,
        )
        self.node_info = Gauge(
            f"{PREFIX}_node_info",
            "1, labelled with this daemon's node name (joins the other series to the node).",
            ["node"],
            registry=r,
        )
        if node is not None:
            self.set_node(node)
        # Every state exported from the start, so dashboards see 0 rather than no data.
        for state in JobState:
            self.jobs_by_state.labels(state=state.value).set(0)

    def set_node(self, name: str) -> None:
        """Name the node these metrics come from (several hosts on one shared ledger)."""
        self.node_info.clear()
        self.node_info.labels(node=name).set(1)

    def observe_api(self, operation: str, status: int | None) -> None:
        """Count one API answer; ``status`` None means no answer (timeout, reset)."""
        label = "none" if status is None else str(status)
        self.api_responses.labels(operation=operation, status=label).inc()

    def set_job_counts(self, counts: Mapping[str, int]) -> None:
        """Publish the ledger's per-state counts; states missing from ``counts`` read 0."""
        for state in JobState:
            self.jobs_by_state.labels(state=state.value).set(0)
        for name, n in counts.items():
            self.jobs_by_state.labels(state=str(name)).set(n)

    def set_paused(self, reason: str, paused: bool) -> None:
        """Raise or clear one pause reason."""
        self.paused.labels(reason=reason).set(1 if paused else 0)

    def set_holds(self, watches: Iterable[str], why: Mapping[str, str]) -> None:
        """Publish each watch's hold: one reason at 1, the others at 0."""
        for watch in watches:
            for reason in ("pause", "drain", "schedule"):
                self.watch_held.labels(watch=watch, reason=reason).set(
                    1 if why.get(watch) == reason else 0
                )

    def render(self) -> bytes:
        """The registry in Prometheus text exposition format."""
        return generate_latest(self.registry)


HealthCheck = Callable[[], tuple[bool, str]]


def parse_listen(listen: str) -> tuple[str, int]:
    """``"127.0.0.1:9464"`` or ``"[::1]:9464"`` -> (host, port); ValueError otherwise."""
    host, sep, port_text = listen.strip().rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(
            f"metrics listen address must look like HOST:PORT (e.g. 127.0.0.1:9464), not {listen!r}"
        )
    return host, int(port_text)


class _Handler(BaseHTTPRequestHandler):
    """Serves /metrics and /healthz from the owning MetricsServer."""

    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._send(200, self.server.metrics.render(), CONTENT_TYPE_LATEST)
        elif path == "/healthz":
            try:
                ok, reason = self.server.health()
            except Exception as exc:  # noqa: BLE001 - a broken check must still answer 503
                ok, reason = False, f"health check failed: {type(exc).__name__}: {exc}"
            body = ("ok" if ok else reason) + "\n"
            self._send(200 if ok else 503, body.encode(), "text/plain; charset=utf-8")
        else:
            self._send(404, b"not found: try /metrics or /healthz\n", "text/plain; charset=utf-8")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every 15 s would flood stderr; keep them at debug in our own log."""
        log.debug("metrics request from %s: %s", self.client_address[0], format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], family: int, metrics: Metrics, health: HealthCheck
    ) -> None:
        self.address_family = family
        self.metrics = metrics
        self.health = health
        super().__init__(address, _Handler)


class MetricsServer:
    """Optional HTTP listener (config ``metrics.listen``) for Prometheus and load balancers.

    ``/healthz`` answers 200 "ok" while ``health()`` says fresh, else 503 with its reason.
    """

    def __init__(self, metrics: Metrics, listen: str, *, health: HealthCheck) -> None:
        self.metrics = metrics
        self.host, self.port = parse_listen(listen)
        self.health = health
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Bind and serve in a background thread; OSError if the address is taken."""
        if self._server is not None:
            raise RuntimeError("metrics server already started")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self._server = _Server((self.host, self.port), family, self.metrics, self.health)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="metrics-http",
            daemon=True,
        )
        self._thread.start()
        log.info("metrics listening on %s:%d", *self.address)

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port): the real port when 0 was asked for."""
        if self._server is None:
            return self.host, self.port
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def stop(self) -> None:
        """Stop serving, close the socket and join the thread (idempotent)."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)


class Heartbeat:
    """A small JSON file the main loop rewrites each turn: {time, pid, status}."""

    def __init__(self, path: Path, *, now: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self._now = now

    def beat(self, status: Mapping[str, Any] | None = None) -> float:
        """Atomically replace the file; returns the time written.

        A reader never sees half a file: write a temp file beside it, then rename over.
        No fsync: after a crash an old heartbeat is exactly what the file should say.
        """
        t = float(self._now())
        doc = {"time": t, "pid": os.getpid(), "status": dict(status or {})}
        data = json.dumps(doc, default=str, sort_keys=True).encode()
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        return t

    @staticmethod
    def check(path: Path, max_age: float, now: float | None = None) -> tuple[bool, str]:
        """(fresh?, a reason a person can act on) from the heartbeat file's recorded time."""
        now = time.time() if now is None else now
        try:
            raw = Path(path).read_bytes()
        except FileNotFoundError:
            return False, f"no heartbeat file at {path}: the daemon is not running (or not yet)"
        except OSError as exc:
            return False, f"cannot read heartbeat file {path}: {exc.strerror or exc}"
        try:
            doc = json.loads(raw)
            beat_time = float(doc["time"])
            pid = doc.get("pid", "?")
        except (ValueError, TypeError, KeyError, AttributeError):
            return False, f"heartbeat file {path} is not valid heartbeat JSON"
        age = now - beat_time
        status = doc.get("status")
        if isinstance(status, dict) and status.get("stopping"):
            return False, (
                f"stopped: pid {pid} stopped cleanly {max(age, 0.0):.0f}s ago; "
                "the daemon is not running"
            )
        if age > max_age:
            return False, (
                f"stale: last heartbeat {age:.0f}s ago from pid {pid} (limit {max_age:.0f}s); "
                "the main loop is stuck or the daemon stopped"
            )
        return True, f"ok: last heartbeat {max(age, 0.0):.0f}s ago from pid {pid}"
