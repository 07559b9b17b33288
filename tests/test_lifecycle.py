"""Lifecycle rules key on typed reason codes: rewording any message changes nothing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from synthesia_watchd.config.load import Config, build_config
from synthesia_watchd.domain.errors import ProjectFailed, UploadCredentialsExpired
from synthesia_watchd.domain.media import sample_video
from synthesia_watchd.domain.reasons import Reason
from synthesia_watchd.domain.states import JobState, OutputState
from synthesia_watchd.engine import lifecycle
from synthesia_watchd.engine.pipeline import Pipeline
from synthesia_watchd.stores.ledger import Job, Ledger

S = JobState


@pytest.fixture
def config(tmp_path: Path) -> Config:
    drop = tmp_path / "drop"
    drop.mkdir()
    return build_config(
        {
            "state_dir": str(tmp_path / "state"),
            "watches": [
                {"name": "w", "input": str(drop), "targets": ["fr-FR"], "source_language": "en"}
            ],
        },
        environ={},
    )


@pytest.fixture
def ledger(config: Config) -> Iterator[Ledger]:
    with Ledger(config.ledger) as led:
        yield led


@pytest.fixture
def pipeline(config: Config, ledger: Ledger) -> Pipeline:
    return Pipeline(
        ledger=ledger, config=config, client=None, uploader=None, stop=threading.Event()
    )


def _job(ledger: Ledger, name: str = "clip.mp4") -> Job:
    return ledger.add_job(
        watch="w",
        source_path=name,
        size=10,
        mtime_ns=1,
        sha256="h-" + name,
        source_language="en",
        targets=["fr-FR"],
        output_dir="out",
    )


def _to(ledger: Ledger, job: Job, *states: JobState, **last: object) -> Job:
    for new in states:
        job = ledger.transition(job.id, job.state, new, why=f"to {new.value}", **last)
    return job


def test_a_vanished_job_comes_back_by_its_code_not_its_words(
    config: Config, ledger: Ledger, pipeline: Pipeline
) -> None:
    """Only a job cancelled with Reason.VANISHED is requeued when its file is back, whatever
    its message says; an operator's cancel worded like a vanish stays cancelled."""
    src = Path(config.watches[0].input) / "clip.mp4"
    src.write_bytes(sample_video("clip", 4096))
    st = src.stat()
    job = pipeline.intake(config.watches[0], src, st.st_size, st.st_mtime_ns)
    assert job is not None
    ledger.transition(
        job.id, S.QUEUED, S.CANCELLED, why="reworded", last_error="file went away (reworded)",
        reason_code=Reason.VANISHED.value,
    )  # fmt: skip
    back = pipeline.intake(config.watches[0], src, st.st_size, st.st_mtime_ns)
    assert back is not None and back.state is S.QUEUED
    assert back.reason_code == Reason.SOURCE_BACK
    lifecycle.cancel(ledger, back)
    ledger.update(job.id, expected=S.CANCELLED, last_error="source file vanished")
    assert pipeline.intake(config.watches[0], src, st.st_size, st.st_mtime_ns) is None
    assert ledger.get(job.id).state is S.CANCELLED


def test_fresh_asset_cap_counts_codes(ledger: Ledger) -> None:
    """MAX_FRESH_ASSETS counts FRESH_ASSET events (any words); the old phrase without the
    code counts for nothing."""
    job = _to(ledger, _job(ledger), S.ASSET_CREATED)
    for _ in range(lifecycle.MAX_FRESH_ASSETS - 2):
        ledger.note(job.id, "whatever words", code=Reason.FRESH_ASSET.value)
    for _ in range(3):
        ledger.note(job.id, "upload credentials expired; creating a fresh asset")
    again = lifecycle.fresh_asset(ledger, job, "403", 0.0)
    assert again is not None and again.state is S.QUEUED
    assert again.reason_code == Reason.FRESH_ASSET
    again = _to(ledger, again, S.ASSET_CREATED)
    assert lifecycle.fresh_asset(ledger, again, "403", 0.0) is None
    failed = ledger.get(job.id)
    assert (failed.state, failed.reason_code) == (S.FAILED, Reason.FRESH_ASSET_LIMIT)


def test_internal_error_cap_counts_codes(ledger: Ledger) -> None:
    """MAX_INTERNAL_ERRORS counts INTERNAL_ERROR retries; transient retries do not count."""
    job = _job(ledger)
    for _ in range(lifecycle.MAX_INTERNAL_ERRORS + 3):
        lifecycle.retry_later(ledger, ledger.get(job.id), 0.0, Reason.TRANSIENT, "503")
    for _ in range(lifecycle.MAX_INTERNAL_ERRORS - 1):
        assert not lifecycle.internal_error(ledger, ledger.get(job.id), 0.0, "KeyError: x")
    assert lifecycle.internal_error(ledger, ledger.get(job.id), 0.0, "KeyError: x")
    failed = ledger.get(job.id)
    assert (failed.state, failed.reason_code) == (S.FAILED, Reason.INTERNAL_ERROR_LIMIT)


def test_retry_after_a_failed_project_starts_over_by_code(
    ledger: Ledger, pipeline: Pipeline
) -> None:
    """A project Synthesia failed is started over by retry (whatever its message says); any
    other failure with a project polls it again at no new charge."""
    failed_project = _to(
        ledger, _job(ledger, "a.mp4"), S.ASSET_CREATED, S.UPLOADED, S.DUBBING, project_id="p-1"
    )
    pipeline.classify(failed_project, ProjectFailed("reworded: the dub broke", error="tts"))
    assert ledger.get(failed_project.id).reason_code == Reason.PROJECT_FAILED
    assert "queued again" in lifecycle.retry(ledger, ledger.get(failed_project.id))
    assert ledger.get(failed_project.id).state is S.QUEUED

    other = _to(
        ledger, _job(ledger, "b.mp4"), S.ASSET_CREATED, S.UPLOADED, S.DUBBING, project_id="p-2"
    )
    lifecycle.fail(ledger, other, Reason.PERMANENT, "Synthesia failed the dubbing project: x")
    assert "polling project p-2" in lifecycle.retry(ledger, ledger.get(other.id))
    assert ledger.get(other.id).state is S.DUBBING


def test_expired_credentials_go_through_the_fresh_asset_operation(
    ledger: Ledger, pipeline: Pipeline
) -> None:
    """The engine's error table records a fresh asset by code (what the cap counts)."""
    job = _to(ledger, _job(ledger), S.ASSET_CREATED)
    pipeline.classify(job, UploadCredentialsExpired("any words at all"))
    assert ledger.count_reasons(job.id, [Reason.FRESH_ASSET.value]) == 1
    assert ledger.get(job.id).state is S.QUEUED


def test_operator_operations_record_their_codes(ledger: Ledger) -> None:
    """cancel, retry and an ambiguous submit's resubmit each leave their own code."""
    job = _job(ledger)
    lifecycle.cancel(ledger, job)
    assert ledger.get(job.id).reason_code == Reason.CANCELLED
    with pytest.raises(lifecycle.NotAllowed):
        lifecycle.cancel(ledger, ledger.get(job.id))
    lifecycle.retry(ledger, ledger.get(job.id))
    assert ledger.get(job.id).reason_code == Reason.RETRY
    sent = _to(ledger, ledger.get(job.id), S.ASSET_CREATED, S.UPLOADED)
    ledger.update(sent.id, expected=S.UPLOADED, submit_started_at=1.0)
    lifecycle.needs_attention(ledger, ledger.get(sent.id), Reason.AMBIGUOUS_SUBMIT, "lost")
    with pytest.raises(lifecycle.NeedsConfirmation):
        lifecycle.retry(ledger, ledger.get(sent.id))
    lifecycle.resubmit(ledger, ledger.get(sent.id))
    assert (ledger.get(sent.id).state, ledger.get(sent.id).reason_code) == (
        S.UPLOADED,
        Reason.RESUBMIT,
    )


def test_retry_of_a_mixed_partial_never_pays_again_for_refused_downloads(
    ledger: Ledger,
) -> None:
    """A partial job with one refused URL and one language Synthesia failed: retry fetches the
    refused language from the paid project; only the failed language may cost a new dub."""
    job = ledger.add_job(
        watch="w",
        source_path="clip.mp4",
        size=10,
        mtime_ns=1,
        sha256="h-clip",
        source_language="en",
        targets=["fr-FR", "de-DE"],
        output_dir="out",
    )
    job = _to(ledger, job, S.ASSET_CREATED, S.UPLOADED)
    job = ledger.transition(job.id, S.UPLOADED, S.DUBBING, why="submitted", project_id="p-1")
    job = _to(ledger, job, S.DOWNLOADING, S.PARTIAL)
    ledger.set_output(job.id, "fr-FR", state=OutputState.FAILED, error_code="unsafe_download_url")
    ledger.set_output(job.id, "de-DE", state=OutputState.FAILED, error_code="processing_error")
    lifecycle.retry(ledger, ledger.get(job.id))
    paid_for_again = {
        lang for other in ledger.list_jobs() if other.id != job.id for lang in other.targets
    }
    assert "fr-FR" not in paid_for_again
    again = ledger.get(job.id)
    assert (again.state, again.project_id) == (S.DUBBING, "p-1")
    states = {o.language: o.state for o in ledger.outputs(job.id)}
    assert states["fr-FR"] is OutputState.PENDING
