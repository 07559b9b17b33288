"""The hold on a full output root: recognised errors, the reason, when it resumes."""

from __future__ import annotations

import errno
from pathlib import Path

from synthesia_watchd.files.diskspace import MARGIN, SpaceHolds, describe, is_no_space


def test_no_space_errnos_are_recognised() -> None:
    """ENOSPC and EDQUOT mean no room; other OS errors and non-OS errors do not."""
    assert is_no_space(OSError(errno.ENOSPC, "No space left on device"))
    assert is_no_space(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert not is_no_space(OSError(errno.EIO, "Input/output error"))
    assert not is_no_space(ValueError("no space"))


def test_hold_names_folder_and_free_space_and_resumes_when_the_file_fits(tmp_path: Path) -> None:
    """A held root waits until the failed file's size plus the margin is free; its writes then
    try, and the hold ends with the first that succeeds."""
    free = {"now": 512 * 1024}
    holds = SpaceHolds(free=lambda folder: free["now"])
    reason, new = holds.hold(tmp_path, tmp_path / "sub", 4 * MARGIN)
    assert new
    assert f"no space left on {tmp_path / 'sub'}" in reason
    assert "512.0 KiB free" in reason and "4.0 MiB needed" in reason
    assert holds.blocked(tmp_path) == reason
    free["now"] = 4 * MARGIN  # the file alone, without the margin, is not enough
    assert holds.blocked(tmp_path) == reason
    free["now"] = 6 * MARGIN
    assert holds.blocked(tmp_path) is None
    assert holds.held() == [str(tmp_path)]  # trying, not over yet
    assert holds.written(tmp_path)
    assert holds.blocked(tmp_path) is None
    assert not holds.written(tmp_path)
    assert holds.held() == []


def test_a_refusal_while_trying_is_the_same_episode(tmp_path: Path) -> None:
    """Room by statvfs but the write refused again (a quota): one episode, the hint says so."""
    holds = SpaceHolds(free=lambda folder: 100 * MARGIN)
    reason, new = holds.hold(tmp_path, tmp_path, MARGIN)
    assert new and "a quota is likely the limit" in reason
    assert holds.blocked(tmp_path) is None
    assert holds.hold(tmp_path, tmp_path, MARGIN) == (reason, False)
    assert holds.written(tmp_path)
    assert holds.hold(tmp_path, tmp_path, MARGIN)[1]


def test_unknown_size_waits_for_more_room_than_there_was(tmp_path: Path) -> None:
    """Without a known size, a root resumes only once more than the margin has been freed."""
    free = {"now": 10 * MARGIN}
    holds = SpaceHolds(free=lambda folder: free["now"])
    holds.hold(tmp_path, tmp_path, None)
    assert holds.blocked(tmp_path) is not None
    free["now"] = 12 * MARGIN
    assert holds.blocked(tmp_path) is None


def test_describe_sizes() -> None:
    """Sizes read as people write them."""
    assert describe(None) == "unknown"
    assert describe(900) == "900 bytes"
    assert describe(3 * 1024**3 + 1024**3 // 5) == "3.2 GiB"
