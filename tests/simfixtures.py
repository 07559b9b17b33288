"""Fixtures that start the loopback Synthesia simulator (and its moto S3) for a test."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from synthesia_watchd.simulator import Simulator


class FakeClock:
    """A clock tests move by hand; pass it as ``clock=`` wherever time matters."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        """Move time forward; returns the new reading."""
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, value: float) -> None:
        """Jump to an absolute reading."""
        with self._lock:
            self._now = value


@pytest.fixture
def fake_clock() -> FakeClock:
    """A fresh fake clock starting at 1000.0."""
    return FakeClock()


@pytest.fixture
def sim_factory() -> Iterator[Callable[..., Simulator]]:
    """Build and start simulators with custom options; all are stopped after the test."""
    started: list[Simulator] = []

    def build(**options: Any) -> Simulator:
        options.setdefault("dub_seconds", 0.2)
        sim = Simulator(**options).start()
        started.append(sim)
        return sim

    yield build
    for sim in reversed(started):
        sim.stop()


@pytest.fixture
def sim(sim_factory: Callable[..., Simulator]) -> Simulator:
    """A started simulator that dubs in 0.2 s, stopped after the test."""
    return sim_factory()
