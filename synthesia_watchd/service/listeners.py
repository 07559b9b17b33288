"""The daemon's optional HTTP listeners: Prometheus ``/metrics`` with ``/healthz``, and the
web console.

The console comes with the optional ``web`` extra: this is the one module that imports it,
and only when ``web.listen`` is set, so a daemon installed without the extra never needs it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

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
            from synthesia_watchd.web.server import WebServer

            self.web = WebServer(self.console(), config.web_listen, config.web_token_file)
            self.web.start()
            log.info("console listening", listen=config.web_listen, port=self.web.port)
        if config.metrics_listen:
            self.metrics_server = MetricsServer(
                self.parts.metrics, config.metrics_listen, health=self.health
            )
            self.metrics_server.start()

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
            progress=self._upload_progress,
            rate_usage=p.limiter.usage,
        )

    def _upload_progress(self) -> dict[int, float]:
        """Uploads under way (job id -> share sent), from the pipeline's progress board."""
        return {
            int(job_id): fields["percent"] / 100
            for job_id, fields in self.parts.pipeline.progress.board.snapshot().items()
            if fields.get("step") == "uploading" and "percent" in fields
        }
