"""A running daemon with its web console on a free loopback port, for console and API tests.

The daemon runs its real loop on a thread (signals stay with pytest's main thread); the
console is the real uvicorn server inside it, reached over HTTP with ``requests``.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from enginefixtures import Engine, ScaledClock

from synthesia_watchd.config.load import load_config
from synthesia_watchd.domain.states import ACTIVE, JobState
from synthesia_watchd.service import compose
from synthesia_watchd.service.daemon import Daemon
from synthesia_watchd.stores.ledger import Job, Ledger


class LiveDaemon:
    """One started daemon (not --once) whose loop runs on a thread until ``stop()``."""

    def __init__(self, engine: Engine, **watch: Any) -> None:
        self.engine = engine
        # From a file, as in production, so that a reload re-reads it.
        config = load_config(engine.write_config(**watch), environ=engine.environ)
        self.daemon = Daemon(compose.build(config, now=ScaledClock(1.0)))
        self.daemon.start()
        self._thread = threading.Thread(target=self._loop, name="test-daemon", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        d = self.daemon
        while not d.stop.is_set():
            sleep = d.loop_once()
            if sleep > 0:
                d.wake.wait(sleep)
                d.wake.clear()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.daemon.web.port}"

    def get(self, path: str, **kw: Any) -> requests.Response:
        return requests.get(self.url + path, timeout=10, **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        kw.setdefault("allow_redirects", False)
        return requests.post(self.url + path, timeout=10, **kw)

    def reload(self) -> None:
        """What SIGHUP does: the loop re-reads the config file on its next pass."""
        self.daemon.signals.on_signal(signal.SIGHUP, None)
        self.daemon.wake.set()

    def stop(self) -> None:
        self.daemon.stop.set()
        self.daemon.wake.set()
        self._thread.join(10)
        self.daemon.shutdown()
        self.daemon.ledger.close()
        self.daemon.lock.release()


def add_job(
    engine: Engine,
    name: str,
    state: JobState = JobState.QUEUED,
    watch: str = "elsewhere",
    size: int = 1,
    **fields: Any,
) -> Job:
    """A job written straight into the ledger in ``state`` (how a crash or the API left it).

    It is not due for a day and its watch is not configured: the running daemon leaves it be.
    """
    engine.state_dir.mkdir(parents=True, exist_ok=True)
    # Created in its state at once (never due in between), an active one due only tomorrow.
    clock = (lambda: time.time() + 86400) if state in ACTIVE else time.time
    with Ledger(engine.ledger_path, now=clock) as ledger:
        job = ledger.add_job(
            watch=watch,
            source_path=str(engine.input / name),
            size=size,
            mtime_ns=1,
            sha256=None,
            source_language="en",
            targets=["fr-FR", "es-ES"],
            output_dir=str(engine.output),
            state=state,
            why="set up by the test",
            last_error=fields.pop("last_error", None),
        )
        if fields:
            ledger.update(job.id, expected=state, **fields)
        return ledger.get(job.id)


@pytest.fixture
def live_factory(
    engine_factory: Callable[..., Engine],
) -> Iterator[Callable[..., LiveDaemon]]:
    """Start a LiveDaemon with web.listen on a free port; ``settings`` go to the config top."""
    started: list[LiveDaemon] = []

    def build(
        *,
        sim: dict[str, Any] | None = None,
        web: dict[str, Any] | None = None,
        settings: dict[str, Any] | None = None,
        **watch: Any,
    ) -> LiveDaemon:
        engine = engine_factory(**(sim or {}))
        engine.settings = {"web": {"listen": "127.0.0.1:0", **(web or {})}, **(settings or {})}
        engine.watch = {"mode": "polling", "scan_interval": 3600}
        started.append(LiveDaemon(engine, **watch))
        return started[-1]

    yield build
    for live in started:
        live.stop()


@pytest.fixture
def live(live_factory: Callable[..., LiveDaemon]) -> LiveDaemon:
    """A running daemon with its console on 127.0.0.1 (no login), over a fast simulator."""
    return live_factory()


def token_file(base: Path, token: str) -> Path:
    """A web.token_file holding ``token``."""
    path = base / "web-token"
    path.write_text(token + "\n", encoding="utf-8")
    return path
