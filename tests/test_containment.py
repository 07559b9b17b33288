"""Every write stays inside its root: outputs, temp files, post-action moves, reason files.

A folder inside an output root (or a move target) replaced by a symlink to somewhere else
must not carry writes out of the root: the job ends with a reason and nothing lands outside.
"""

from __future__ import annotations

from pathlib import Path

from enginefixtures import Engine

from synthesia_watchd.states import JobState


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if not p.is_dir())


def test_symlinked_output_subfolder_is_refused(engine: Engine, tmp_path: Path) -> None:
    """out/sub as a symlink to another folder: no output lands there; the job says why."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (engine.output / "sub").symlink_to(elsewhere, target_is_directory=True)
    engine.put("sub/v.mp4")
    engine.run()
    assert _files(elsewhere) == []
    job = engine.jobs()[0]
    assert job.state in (JobState.FAILED, JobState.NEEDS_ATTENTION), job.state
    assert "symlink" in (job.last_error or ""), job.last_error
    assert "outside" in (job.last_error or ""), job.last_error


def test_symlinked_move_target_is_refused(engine: Engine, tmp_path: Path) -> None:
    """on_success move into a target whose subfolder is a symlink leaves the source in place."""
    done_dir = tmp_path / "done"
    done_dir.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (done_dir / "sub").symlink_to(elsewhere, target_is_directory=True)
    src = engine.put("sub/v.mp4")
    engine.run(on_success={"move": str(done_dir)})
    assert _files(elsewhere) == []
    assert src.exists()
    job = engine.jobs()[0]
    assert job.state is JobState.DONE
    with engine.ledger() as ledger:
        notes = [e.why for e in ledger.events(job.id)]
    assert any("on_success move skipped" in n and "symlink" in n for n in notes), notes


def test_symlinked_failure_target_gets_no_reason_file(engine: Engine, tmp_path: Path) -> None:
    """on_failure move into a symlinked subfolder writes neither the file nor its reason."""
    failed_dir = tmp_path / "failed"
    failed_dir.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (failed_dir / "sub").symlink_to(elsewhere, target_is_directory=True)
    src = engine.input / "sub" / "bad.mp4"
    src.parent.mkdir(parents=True)
    src.write_bytes(b"this is not a video at all" * 100)
    engine.run(on_failure={"move": str(failed_dir)})
    assert _files(elsewhere) == []
    assert src.exists()
    assert engine.jobs()[0].state is JobState.FAILED
