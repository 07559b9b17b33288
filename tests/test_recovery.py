"""Jobs whose source disappears: unmounted roots wait, vanished files cancel, cancels stick."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from synthesia_watchd.config.load import Config, build_config
from synthesia_watchd.domain.media import sample_video
from synthesia_watchd.domain.states import JobState
from synthesia_watchd.engine.pipeline import VANISHED, Pipeline
from synthesia_watchd.service.cli import main
from synthesia_watchd.stores.ledger import Ledger


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Config, Ledger, Pipeline, Path]:
    drop = tmp_path / "drop"
    drop.mkdir()
    config = build_config(
        {
            "state_dir": str(tmp_path / "state"),
            "watches": [
                {"name": "w", "input": str(drop), "targets": ["fr-FR"], "source_language": "en"}
            ],
        },
        environ={},
    )
    ledger = Ledger(config.ledger)
    pipeline = Pipeline(
        ledger=ledger, config=config, client=None, uploader=None, stop=threading.Event()
    )
    src = drop / "clip.mp4"
    src.write_bytes(sample_video("clip", 4096))
    yield config, ledger, pipeline, src
    ledger.close()


def _intake(pipeline: Pipeline, config: Config, src: Path):
    st = src.stat()
    return pipeline.intake(config.watches[0], src, st.st_size, st.st_mtime_ns)


def test_unreachable_root_holds_a_queued_job(setup) -> None:
    """A source missing because its root is unmounted keeps the job queued, with a reason."""
    config, ledger, pipeline, src = setup
    job = _intake(pipeline, config, src)
    src.unlink()
    pipeline.root_available = lambda watch: False
    pipeline.step(job.id)
    held = ledger.get(job.id)
    assert held.state is JobState.QUEUED
    assert "watch folder" in (held.last_error or "")
    assert held.next_attempt_at > job.next_attempt_at


def test_vanished_source_cancels_and_comes_back(setup) -> None:
    """A source deleted from a reachable root cancels its job; the same file back requeues it."""
    config, ledger, pipeline, src = setup
    data = src.read_bytes()
    st = src.stat()
    job = _intake(pipeline, config, src)
    src.unlink()
    pipeline.step(job.id)
    assert ledger.get(job.id).state is JobState.CANCELLED
    assert ledger.get(job.id).last_error == VANISHED
    src.write_bytes(data)
    import os

    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))
    back = _intake(pipeline, config, src)
    assert back is not None and back.id == job.id
    assert ledger.get(job.id).state is JobState.QUEUED


def test_operator_cancel_sticks_across_rediscovery(setup) -> None:
    """A job the operator cancelled is not queued again when its file is seen again."""
    config, ledger, pipeline, src = setup
    job = _intake(pipeline, config, src)
    assert main(["cancel", str(job.id), "--ledger", str(config.ledger)]) == 0
    assert _intake(pipeline, config, src) is None
    assert ledger.get(job.id).state is JobState.CANCELLED
