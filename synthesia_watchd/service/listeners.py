"""The daemon's optional HTTP listeners: Prometheus ``/metrics`` with ``/healthz``, and the
web console.

The console comes with the optional ``web`` extra: this is the one module that imports it,
and only when ``web.listen`` is set, so a daemon installed without the extra never needs it.
A reload moves the console to a changed ``web.listen`` (``web.server.serve``); the metrics
listener is read at start only, and a reload that changes it says so.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from synthesia_watchd.config.load import Config
from synthesia_watchd.telemetry.logsetup import get_logger
from synthesia_watchd.telemetry.metrics import HealthCheck, MetricsServer

from .compose import Parts

log = get_logger(component="daemon")


class Listeners:
    """Started after recovery, stopped once the workers have finished."""

    def __init__(self, parts: Parts, *, health: HealthCheck) -> None:
        self.parts = parts
        self.health = health
        self.metrics_server: MetricsServer | None = None
        #: The console's server (``web.server.WebServer``), when ``web.listen`` is set.
        self.web: Any = None

    def start(self) -> None:
        config = self.parts.config
        if config.web_listen:
            from synthesia_watchd.web.server import serve

            self.web = serve(None, config, self.console)
        if config.metrics_listen:
            self.metrics_server = MetricsServer(
                self.parts.metrics, config.metrics_listen, health=self.health
            )
            self.metrics_server.start()

    def reload(self, old: Config, new: Config) -> None:
        """A reload: the console follows ``web.listen`` (and its token file); a changed
        ``metrics.listen`` waits for a restart, and the log says so."""
        if new.metrics_listen != old.metrics_listen:
            log.warning("metrics.listen changed: applies at restart", listen=new.metrics_listen)
        if self.web is None and not new.web_listen:
            return
        try:
            from synthesia_watchd.web.server import serve  # the web extra, only when used
        except ImportError as exc:
            log.error("web.listen not applied: the web extra is not installed", error=str(exc))
            return
        self.web = serve(self.web, new, self.console, reload=True)

    def stop(self) -> None:
        if self.metrics_server is not None:
            self.metrics_server.stop()
        if self.web is not None:
            self.web.stop()

    def console(self) -> Any:
        """What the web console sees of this daemon (imported only when web.listen is set)."""
        from synthesia_watchd.web.data import Console

        p = self.parts
        return Console(
            ledger=p.ledger,
            config=lambda: p.config,
            watches=lambda: [dataclasses.asdict(w) for w in p.watchset.status()],
            gate=lambda: p.scheduler.gate,
            pauses=p.pauses.snapshot,
            offer=p.watchset.offer,
            wake=p.watchset.wakeup.set,
            now=p.now,
            progress=p.pipeline.progress.board.uploads,
            rate_usage=p.limiter.usage,
        )
