"""Every ledger backend, as the contract suite opens them: a fresh, empty ledger per test."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pgcluster import PASSWORD

from synthesia_watchd.domain.states import JobState
from synthesia_watchd.stores.ledger import Job, Ledger, LedgerStore
from synthesia_watchd.stores.postgres import PostgresLedger

T0 = 1_750_000_000.0


class Clock:
    """A hand-stepped clock for the ledger's ``now``."""

    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def add(led: LedgerStore, name: str = "a.mp4", **kw: object) -> Job:
    """A job with sensible defaults; keyword arguments override them."""
    args: dict[str, object] = {
        "watch": "inbox",
        "source_path": name,
        "size": 1000,
        "mtime_ns": 1,
        "sha256": "h-" + name,
        "source_language": "en",
        "targets": ["de", "fr"],
        "output_dir": "out",
    }
    args.update(kw)
    return led.add_job(**args)  # type: ignore[arg-type]


def walk(led: LedgerStore, job_id: int, *states: JobState) -> Job:
    """Move a job through ``states`` in order."""
    job = led.get(job_id)
    for new in states:
        job = led.transition(job_id, job.state, new, why=f"to {new.value}")
    return job


def run_threads(work: Callable[[int], None], n: int) -> None:
    """Run ``work(0..n-1)`` on ``n`` threads and wait for all (bounded)."""
    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)


class Backend:
    """Opens stores on one fresh ledger of one backend; closes them all at the end."""

    def __init__(self, name: str, opener: Callable[[Callable[[], float]], LedgerStore]) -> None:
        self.name = name
        self.clock = Clock()
        self._opener = opener
        self._open: list[LedgerStore] = []

    def open(self, now: Callable[[], float] | None = None) -> LedgerStore:
        """Another store (own connection) on the same ledger."""
        store = self._opener(self.clock if now is None else now)
        self._open.append(store)
        return store

    def close(self) -> None:
        for store in self._open:
            store.close()


BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """A fresh ledger of each backend in turn (PostgreSQL: a new database on the cluster)."""
    if request.param == "postgres":
        url = request.getfixturevalue("pg_database")
        b = Backend("postgres", lambda now: PostgresLedger(url, password=PASSWORD, now=now))
    else:
        path = tmp_path / "state" / "ledger.sqlite3"
        b = Backend("sqlite", lambda now: Ledger(path, now=now))
    try:
        yield b
    finally:
        b.close()
