"""Every write stays inside its root: outputs, temp files, post-action moves, reason files.

A folder inside an output root (or a move target) replaced by a symlink to somewhere else
must not carry writes out of the root: the job ends with a reason and nothing lands outside.
"""

from __future__ import annotations

from pathlib import Path, PurePath

import pytest
from enginefixtures import Engine

from synthesia_watchd.domain.outputs import remove_temp_files
from synthesia_watchd.domain.states import JobState
from synthesia_watchd.files.atomic import AtomicWriter, link_or_copy
from synthesia_watchd.files.saferoot import EscapingPath, open_inside, open_parent


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if not p.is_dir())


def test_symlinked_output_subfolder_is_refused(stepped_engine: Engine, tmp_path: Path) -> None:
    """out/sub as a symlink to another folder: no output lands there; the job says why."""
    engine = stepped_engine
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (engine.output / "sub").symlink_to(elsewhere, target_is_directory=True)
    engine.put("sub/v.mp4")
    engine.step()
    assert _files(elsewhere) == []
    job = engine.jobs()[0]
    assert job.state in (JobState.FAILED, JobState.NEEDS_ATTENTION), job.state
    assert "symlink" in (job.last_error or ""), job.last_error
    assert "outside" in (job.last_error or ""), job.last_error


def test_symlinked_move_target_is_refused(stepped_engine: Engine, tmp_path: Path) -> None:
    """on_success move into a target whose subfolder is a symlink leaves the source in place."""
    engine = stepped_engine
    done_dir = tmp_path / "done"
    done_dir.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (done_dir / "sub").symlink_to(elsewhere, target_is_directory=True)
    src = engine.put("sub/v.mp4")
    engine.step(on_success={"move": str(done_dir)})
    assert _files(elsewhere) == []
    assert src.exists()
    job = engine.jobs()[0]
    assert job.state is JobState.DONE
    with engine.ledger() as ledger:
        notes = [e.why for e in ledger.events(job.id)]
    assert any("on_success move skipped" in n and "symlink" in n for n in notes), notes


def test_symlinked_failure_target_gets_no_reason_file(
    stepped_engine: Engine, tmp_path: Path
) -> None:
    """on_failure move into a symlinked subfolder writes neither the file nor its reason."""
    engine = stepped_engine
    failed_dir = tmp_path / "failed"
    failed_dir.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (failed_dir / "sub").symlink_to(elsewhere, target_is_directory=True)
    src = engine.input / "sub" / "bad.mp4"
    src.parent.mkdir(parents=True)
    src.write_bytes(b"this is not a video at all" * 100)
    engine.step(on_failure={"move": str(failed_dir)})
    assert _files(elsewhere) == []
    assert src.exists()
    assert engine.jobs()[0].state is JobState.FAILED


def test_open_inside_refuses_climbing_and_non_folders(tmp_path: Path) -> None:
    """``..`` and a file on the way are refused; missing folders are made inside the root."""
    root = tmp_path / "root"
    with open_inside(root, PurePath("a/b")) as folder:
        assert folder.path == root / "a" / "b"
    assert (root / "a" / "b").is_dir()
    with pytest.raises(EscapingPath):
        open_inside(root, PurePath("../x"))
    (root / "file").write_bytes(b"")
    with pytest.raises(EscapingPath, match="not a folder"):
        open_inside(root, PurePath("file/sub"))
    with pytest.raises(EscapingPath):
        open_parent(root, tmp_path / "elsewhere" / "x.mp4")


def test_atomic_writer_in_a_symlinked_folder_writes_nothing_anywhere(tmp_path: Path) -> None:
    """Neither the temp file nor the final name reaches the folder a symlink points to."""
    root, elsewhere = tmp_path / "root", tmp_path / "elsewhere"
    root.mkdir()
    elsewhere.mkdir()
    (root / "sub").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(EscapingPath, match="is a symlink"):
        AtomicWriter(root / "sub" / "v.dubbed-de.mp4", root=root).__enter__()
    assert _files(elsewhere) == []
    with AtomicWriter(root / "real" / "v.dubbed-de.mp4", root=root) as writer:
        writer.write(b"data")
        writer.commit()
    assert _files(root) == ["real/v.dubbed-de.mp4"]


def test_reuse_link_refuses_a_symlinked_folder(tmp_path: Path) -> None:
    """Placing an earlier output by hard link never goes through a symlinked folder."""
    root, elsewhere = tmp_path / "root", tmp_path / "elsewhere"
    root.mkdir()
    elsewhere.mkdir()
    (root / "sub").symlink_to(elsewhere, target_is_directory=True)
    earlier = tmp_path / "earlier.mp4"
    earlier.write_bytes(b"dubbed")
    with pytest.raises(EscapingPath):
        link_or_copy(earlier, root / "sub" / "v.dubbed-de.mp4", root=root)
    assert _files(elsewhere) == []


def test_leftover_temp_cleanup_stays_inside_the_root(tmp_path: Path) -> None:
    """Recovery removes a source's temp files in its folder, never through a symlinked one."""
    root, elsewhere = tmp_path / "root", tmp_path / "elsewhere"
    (root / "real").mkdir(parents=True)
    elsewhere.mkdir()
    (root / "sub").symlink_to(elsewhere, target_is_directory=True)
    for folder in (root / "real", elsewhere):
        (folder / ".v.dubbed-de.mp4.0a1b2c3d.part").write_bytes(b"half")
        (folder / "v.dubbed-de.mp4").write_bytes(b"whole")
    remove_temp_files(root, root / "real", "v")
    remove_temp_files(root, root / "sub", "v")
    assert _files(root / "real") == ["v.dubbed-de.mp4"]
    assert _files(elsewhere) == [".v.dubbed-de.mp4.0a1b2c3d.part", "v.dubbed-de.mp4"]
