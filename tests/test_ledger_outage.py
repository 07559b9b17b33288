"""A shared ledger's server going away mid-step: a typed error, and no retry spent on it.

A PostgreSQL restart, a failover or a network blip breaks the connections a step is using.
Nothing is wrong with the job: it must wait for the ledger and run the step again, never count
the outage as one of the few internal errors a job may have before it fails (a failed job
whose dub was paid for would never be downloaded).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from ledgerbackends import add, walk
from pgcluster import PASSWORD, Cluster

from synthesia_watchd.config.load import Config, build_config
from synthesia_watchd.domain.errors import LedgerUnreachable
from synthesia_watchd.domain.reasons import Reason
from synthesia_watchd.domain.states import JobState
from synthesia_watchd.engine.pipeline import Pipeline
from synthesia_watchd.stores.postgres import PostgresLedger

S = JobState


@pytest.fixture
def config(tmp_path: Path) -> Config:
    drop = tmp_path / "drop"
    drop.mkdir()
    watch = {"name": "inbox", "input": str(drop), "targets": ["fr-FR"], "source_language": "en"}
    return build_config({"state_dir": str(tmp_path / "state"), "watches": [watch]}, environ={})


@pytest.fixture
def led(pg_database: str) -> Iterator[PostgresLedger]:
    with PostgresLedger(pg_database, password=PASSWORD, connect_timeout=2) as store:
        yield store


def test_a_server_restart_is_a_typed_outage_that_spends_no_retry(
    pg_cluster: Cluster, led: PostgresLedger, config: Config
) -> None:
    """While the server is down a call raises LedgerUnreachable; the engine then leaves the
    job in its step to run again later, with no attempt and no internal error counted."""
    pipeline = Pipeline(
        ledger=led, config=config, client=None, uploader=None, stop=threading.Event()
    )
    job = walk(led, add(led).id, S.ASSET_CREATED, S.UPLOADED, S.DUBBING)
    pg_cluster.stop("immediate")
    try:
        with pytest.raises(LedgerUnreachable) as lost:
            led.get(job.id)
    finally:
        pg_cluster.start()
    for _ in range(6):  # more outages than the internal-error cap allows
        pipeline.classify(led.get(job.id), lost.value)
    after = led.get(job.id)
    assert (after.state, after.attempts) == (S.DUBBING, job.attempts)
    assert led.count_reasons(job.id, [Reason.INTERNAL_ERROR.value]) == 0
    assert after.next_attempt_at > job.next_attempt_at
