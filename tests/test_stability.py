"""The debounced size/mtime stability tracker."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from synthesia_watchd.files.stability import Candidate, StabilityTracker


class FakeFS:
    """A fake stat: path -> (size, mtime_ns); missing paths raise FileNotFoundError."""

    def __init__(self) -> None:
        self.files: dict[Path, tuple[int, int]] = {}
        self.errors: dict[Path, OSError] = {}
        self.unreadable: set[Path] = set()

    def stat(self, path: Path) -> os.stat_result:
        if path in self.errors:
            raise self.errors[path]
        if path not in self.files:
            raise FileNotFoundError(path)
        return _result(*self.files[path])

    def readable(self, path: Path) -> bool:
        return path not in self.unreadable


def _result(size: int, mtime_ns: int, mode: int = stat.S_IFREG | 0o644) -> os.stat_result:
    """An os.stat_result with st_size and st_mtime_ns set."""
    secs = mtime_ns // 10**9
    # The 10-tuple plus the float times and the *_ns fields (indices 10-15).
    values = (mode, 0, 0, 1, 0, 0, size, secs, secs, secs)
    extra = (float(secs), float(secs), float(secs), mtime_ns, mtime_ns, mtime_ns)
    return os.stat_result(values + extra)


class Clock:
    """A hand-driven clock."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def fs() -> FakeFS:
    return FakeFS()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make(fs: FakeFS, clock: Clock, quiet: float = 5.0) -> StabilityTracker:
    return StabilityTracker(quiet, stat=fs.stat, now=clock, readable=fs.readable)


P = Path("/drop/clip.mp4")


def test_stable_after_quiet_period(fs: FakeFS, clock: Clock) -> None:
    """An unchanged file is reported once its quiet period has passed, and only then."""
    tr = make(fs, clock)
    fs.files[P] = (100, 1)
    tr.touch(P)
    assert tr.next_due() == 1005.0
    clock.t = 1004.9
    assert tr.pop_stable() == []
    clock.t = 1005.0
    assert tr.pop_stable() == [Candidate(P, 100, 1)]
    assert tr.pending() == 0
    assert tr.next_due() is None


def test_every_event_restarts_quiet_period(fs: FakeFS, clock: Clock) -> None:
    """Debounce: each touch pushes the due time out by the full quiet period."""
    tr = make(fs, clock)
    fs.files[P] = (100, 1)
    tr.touch(P)
    clock.t = 1004.0
    fs.files[P] = (200, 2)
    tr.touch(P)
    clock.t = 1006.0
    assert tr.pop_stable() == []
    clock.t = 1009.0
    assert tr.pop_stable() == [Candidate(P, 200, 2)]


def test_growth_without_events_is_seen(fs: FakeFS, clock: Clock) -> None:
    """A writer that emits no events (SMB) is caught by comparing snapshots."""
    tr = make(fs, clock)
    fs.files[P] = (100, 1)
    tr.touch(P)
    fs.files[P] = (150, 2)  # grew silently
    clock.t = 1005.0
    assert tr.pop_stable() == []
    assert tr.next_due() == 1010.0
    clock.t = 1010.0
    assert tr.pop_stable() == [Candidate(P, 150, 2)]


def test_mtime_change_alone_restarts(fs: FakeFS, clock: Clock) -> None:
    """Same size but a new mtime_ns (an in-place rewrite) is a change."""
    tr = make(fs, clock)
    fs.files[P] = (100, 1)
    tr.touch(P)
    fs.files[P] = (100, 2)
    clock.t = 1005.0
    assert tr.pop_stable() == []
    clock.t = 1010.0
    assert [c.mtime_ns for c in tr.pop_stable()] == [2]


def test_vanished_is_forgotten(fs: FakeFS, clock: Clock) -> None:
    """A file deleted before its quiet period ends disappears silently."""
    tr = make(fs, clock)
    fs.files[P] = (100, 1)
    tr.touch(P)
    del fs.files[P]
    clock.t = 1005.0
    assert tr.pop_stable() == []
    assert tr.pending() == 0


def test_forget(fs: FakeFS, clock: Clock) -> None:
    """forget() drops a pending file and says whether it was pending."""
    tr = make(fs, clock)
    fs.files[P] = (100, 1)
    tr.touch(P)
    assert tr.forget(P) is True
    assert tr.forget(P) is False
    clock.t = 2000.0
    assert tr.pop_stable() == []


def test_empty_file_keeps_waiting(fs: FakeFS, clock: Clock) -> None:
    """A zero-byte file (a copy that has not started) is never reported."""
    tr = make(fs, clock)
    fs.files[P] = (0, 1)
    tr.touch(P)
    for step in range(1, 4):
        clock.t = 1000.0 + 5.0 * step
        assert tr.pop_stable() == []
    assert tr.pending() == 1
    fs.files[P] = (10, 2)
    clock.t += 5.0
    assert tr.pop_stable() == []  # changed: new quiet period
    clock.t += 5.0
    assert tr.pop_stable() == [Candidate(P, 10, 2)]


def test_unreadable_keeps_waiting(fs: FakeFS, clock: Clock) -> None:
    """A file that cannot be opened (writer holds a lock) waits until it can."""
    tr = make(fs, clock)
    fs.files[P] = (100, 1)
    fs.unreadable.add(P)
    tr.touch(P)
    clock.t = 1005.0
    assert tr.pop_stable() == []
    fs.unreadable.clear()
    clock.t = 1010.0
    assert tr.pop_stable() == [Candidate(P, 100, 1)]


def test_stat_error_keeps_waiting(fs: FakeFS, clock: Clock) -> None:
    """A transient stat error (EIO on a share) neither reports nor forgets the file."""
    tr = make(fs, clock)
    fs.files[P] = (100, 1)
    tr.touch(P)
    fs.errors[P] = OSError(5, "Input/output error")
    clock.t = 1005.0
    assert tr.pop_stable() == []
    assert tr.pending() == 1
    del fs.errors[P]
    clock.t = 1010.0
    assert tr.pop_stable() == [Candidate(P, 100, 1)]


def test_touch_of_missing_file_then_appears(fs: FakeFS, clock: Clock) -> None:
    """An event for a file not yet stat-able starts from an empty snapshot, then waits again."""
    tr = make(fs, clock)
    tr.touch(P)
    fs.files[P] = (100, 1)
    clock.t = 1005.0
    assert tr.pop_stable() == []
    clock.t = 1010.0
    assert tr.pop_stable() == [Candidate(P, 100, 1)]


def test_directory_is_dropped(clock: Clock) -> None:
    """A path that turns out to be a directory is not a candidate."""

    def stat_dir(path: Path) -> os.stat_result:
        return _result(4096, 1, mode=stat.S_IFDIR | 0o755)

    tr = StabilityTracker(1.0, stat=stat_dir, now=clock)
    tr.touch(P)
    clock.t += 1.0
    assert tr.pop_stable() == []
    assert tr.pending() == 0


def test_many_files_independent(fs: FakeFS, clock: Clock) -> None:
    """Each file has its own quiet period; next_due is the earliest."""
    tr = make(fs, clock)
    a, b = Path("/d/a.mp4"), Path("/d/b.mp4")
    fs.files[a] = (1, 1)
    fs.files[b] = (2, 2)
    tr.touch(a)
    clock.t = 1002.0
    tr.touch(b)
    assert tr.next_due() == 1005.0
    clock.t = 1005.0
    assert [c.path for c in tr.pop_stable()] == [a]
    assert tr.pending() == 1
    clock.t = 1007.0
    assert [c.path for c in tr.pop_stable()] == [b]


def test_explicit_now_overrides_clock(fs: FakeFS, clock: Clock) -> None:
    """touch/pop_stable take an explicit now (the main loop's) over the injected clock."""
    tr = make(fs, clock)
    fs.files[P] = (1, 1)
    tr.touch(P, now=50.0)
    assert tr.pop_stable(now=54.0) == []
    assert tr.pop_stable(now=55.0) == [Candidate(P, 1, 1)]


def test_negative_quiet_period_refused() -> None:
    """A negative stable_seconds is a programming error."""
    with pytest.raises(ValueError):
        StabilityTracker(-1)


def test_real_file(tmp_path: Path) -> None:
    """With the real os.stat: growth restarts the period, a finished file is reported."""
    clock = Clock()
    tr = StabilityTracker(2.0, now=clock)
    f = tmp_path / "real.mp4"
    f.write_bytes(b"x" * 10)
    tr.touch(f)
    with open(f, "ab") as fh:
        fh.write(b"y" * 10)
    os.utime(f, ns=(1, 123_456_789))  # make the change visible even on coarse mtime clocks
    clock.t += 2.0
    assert tr.pop_stable() == []
    clock.t += 2.0
    (c,) = tr.pop_stable()
    assert (c.path, c.size, c.mtime_ns) == (f, 20, 123_456_789)
