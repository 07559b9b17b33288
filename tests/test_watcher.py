"""The drop-folder watcher on real temp folders, with both the inotify and polling observers."""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
import structlog
from helpers import wait_until
from structlog.testing import capture_logs

from synthesia_watchd.domain.media import sample_video
from synthesia_watchd.files import fsinfo
from synthesia_watchd.watching.model import StableFile, Vanished, WatchStatus
from synthesia_watchd.watching.watcher import WatchSet

QUIET = 0.15
SCAN = 0.05


@dataclass(frozen=True)
class PostAction:
    """Stand-in for config.PostAction."""

    kind: str = "keep"
    path: Path | None = None


@dataclass(frozen=True)
class WatchConfig:
    """Stand-in for config.WatchConfig with the fields the watcher reads."""

    name: str
    input: Path
    output: Path | None = None
    recursive: bool = True
    source_language: str = "en"
    targets: tuple[str, ...] = ("de",)
    stable_seconds: float = QUIET
    mode: str = "native"
    scan_interval: float = SCAN
    poll_interval: float = 1.0
    on_success: PostAction = field(default_factory=PostAction)
    on_failure: PostAction = field(default_factory=PostAction)
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ("video",)
    incomplete_timeout: float = 3600.0

    @property
    def output_root(self) -> Path:
        return self.output or self.input


class Driver:
    """Runs the WatchSet's poll() like the daemon's main loop and keeps what it returned."""

    def __init__(self, ws: WatchSet) -> None:
        self.ws = ws
        self.items: list[StableFile | Vanished] = []

    def pump(self) -> None:
        self.items += self.ws.poll()

    def stable(self, watch: str | None = None) -> list[Path]:
        return [
            i.path
            for i in self.items
            if isinstance(i, StableFile) and (watch is None or i.watch == watch)
        ]

    def vanished(self) -> list[Path]:
        return [i.path for i in self.items if isinstance(i, Vanished)]

    def until(self, pred: Callable[[], Any], what: str, timeout: float = 10.0) -> None:
        def step() -> Any:
            self.pump()
            return pred()

        wait_until(step, timeout=timeout, what=what)

    def settle(self, seconds: float) -> None:
        """Keep polling for an observation window (to show that nothing more arrives)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.pump()
            self.ws.wakeup.wait(0.02)

    def status(self, name: str) -> WatchStatus:
        return next(s for s in self.ws.status() if s.name == name)


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Every observer thread a test starts must be stopped and joined by its end."""
    before = set(threading.enumerate())
    yield

    def leaked() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t not in before and t.is_alive()]

    try:
        wait_until(lambda: not leaked(), timeout=5, what="threads to end")
    except AssertionError:
        pytest.fail(f"leaked threads: {leaked()}")


@pytest.fixture(params=["native", "polling"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_ws() -> Iterator[Callable[..., Driver]]:
    made: list[WatchSet] = []

    def make(watches: list[WatchConfig], start: bool = True, **kw: Any) -> Driver:
        kw.setdefault("mounts", lambda: [])
        ws = WatchSet(watches, **kw)
        made.append(ws)
        if start:
            ws.start()
        return Driver(ws)

    yield make
    for ws in made:
        ws.stop()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "drop"
    r.mkdir()
    return r


def put(path: Path, data: bytes | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(sample_video(path.name) if data is None else data)
    return path


def test_slow_writer_reported_once_after_it_stops(
    make_ws: Callable[..., Driver], root: Path, mode: str
) -> None:
    """A file that grows for 3x the quiet period is reported once, only after the last write."""
    d = make_ws([WatchConfig("w", root, mode=mode)])
    target = root / "slow.mp4"
    done = threading.Event()
    last_write: list[float] = []

    def writer() -> None:
        with open(target, "wb") as fh:
            end = time.monotonic() + 3 * QUIET
            while time.monotonic() < end:
                fh.write(b"x" * 4096)
                fh.flush()
                last_write.append(time.monotonic())
                done.wait(0.05)  # the writer's pace, not synchronisation
        done.set()

    t = threading.Thread(target=writer)
    t.start()
    try:
        while not done.is_set():
            d.pump()
            assert d.stable() == [], "reported while still being written"
            done.wait(0.02)
    finally:
        t.join()
    d.until(lambda: d.stable(), "the slow file to be reported")
    reported_at = time.monotonic()
    assert reported_at - last_write[-1] >= QUIET - 0.02  # measured from the poll that saw it
    d.settle(2 * QUIET)
    assert d.stable() == [target]
    (item,) = d.items
    assert isinstance(item, StableFile) and item.size == target.stat().st_size


def test_rename_into_place(make_ws: Callable[..., Driver], root: Path, mode: str) -> None:
    """A .part file renamed to its final name is reported under the final name only."""
    d = make_ws([WatchConfig("w", root, mode=mode)])
    part = put(root / "clip.mp4.part")
    d.settle(QUIET)
    assert d.stable() == []
    part.rename(root / "clip.mp4")
    d.until(lambda: d.stable(), "the renamed file")
    d.settle(QUIET)
    assert d.stable() == [root / "clip.mp4"]


def test_many_files_at_once(make_ws: Callable[..., Driver], root: Path, mode: str) -> None:
    """150 files written at once plus a folder of 50 moved in are each reported exactly once."""
    d = make_ws([WatchConfig("w", root, mode=mode)])
    staging = root.parent / "staging" / "batch"
    for i in range(50):
        put(staging / f"b{i:03}.mp4", b"v" * 64)
    for i in range(150):
        put(root / f"a{i:03}.mp4", b"v" * 64)
    staging.rename(root / "batch")
    d.until(lambda: len(set(d.stable())) >= 200, "200 files", timeout=20)
    d.settle(QUIET)
    assert len(d.stable()) == 200
    assert len(set(d.stable())) == 200
    assert sum(1 for p in d.stable() if p.parent == root / "batch") == 50


def test_nested_tree_created_while_watching(
    make_ws: Callable[..., Driver], root: Path, mode: str
) -> None:
    """Folders created several levels deep at once (mkdir -p, a tree copy) are all seen."""
    d = make_ws([WatchConfig("w", root, mode=mode)])
    for top in ("x", "y"):
        for i in range(3):
            put(root / top / "a" / "b" / f"c{i}" / "clip.mp4")
    d.until(lambda: len(d.stable()) == 6, "six nested files")
    d.settle(QUIET)
    assert len(set(d.stable())) == len(d.stable()) == 6


def test_catch_up_scan(make_ws: Callable[..., Driver], root: Path, mode: str) -> None:
    """Files dropped while the daemon was down are reported after start."""
    put(root / "before.mp4")
    put(root / "sub" / "deep" / "nested.mov")
    d = make_ws([WatchConfig("w", root, mode=mode)])
    d.until(lambda: len(d.stable()) == 2, "both old files")
    assert set(d.stable()) == {root / "before.mp4", root / "sub" / "deep" / "nested.mov"}


def test_awkward_names(make_ws: Callable[..., Driver], root: Path, mode: str) -> None:
    """Names with spaces, unicode and leading dashes are reported as they are."""
    d = make_ws([WatchConfig("w", root, mode=mode)])
    names = ["my holiday (1).mp4", "vidéo été 日本 - copie.mp4", "-rf.mp4", "--help.mov"]
    for n in names:
        put(root / n)
    d.until(lambda: len(d.stable()) == len(names), "all awkward names")
    assert sorted(p.name for p in d.stable()) == sorted(names)


def test_deleted_before_stable(make_ws: Callable[..., Driver], root: Path, mode: str) -> None:
    """A file deleted before its quiet period ends is never reported, and nothing vanishes."""
    d = make_ws([WatchConfig("w", root, mode=mode)])
    f = put(root / "oops.mp4")
    d.pump()
    f.unlink()
    d.settle(2 * QUIET)
    assert d.items == []
    assert d.status("w").pending == 0


def test_names_and_content(make_ws: Callable[..., Driver], root: Path, mode: str) -> None:
    """A text file named .mp4 is still a candidate; notes.txt and temp names are not."""
    d = make_ws([WatchConfig("w", root, mode=mode)])
    put(root / "fake.mp4", b"this is not a video")
    put(root / "notes.txt", b"hello")
    put(root / ".hidden.mp4")
    put(root / "@eaDir" / "x.mp4")
    put(root / "clip.mp4.crdownload")
    d.until(lambda: d.stable(), "fake.mp4")
    d.settle(QUIET)
    assert d.stable() == [root / "fake.mp4"]


def test_output_in_input_no_loop(make_ws: Callable[..., Driver], root: Path, mode: str) -> None:
    """With output == input our own outputs, temp files and reasons are never reported."""
    d = make_ws([WatchConfig("w", root, mode=mode)])
    put(root / "clip.mp4")
    d.until(lambda: d.stable(), "the source")
    for name in (
        ".clip.dubbed-de.mp4.1a2b3c4d.part",
        "clip.dubbed-de.mp4",
        "clip.dubbed-de.vtt",
        "clip.dubbed-pt-BR.mp4",
        "clip.mp4.reason.json",
    ):
        put(root / name)
    d.settle(2 * QUIET)
    assert d.stable() == [root / "clip.mp4"]


def test_output_and_failed_folders_inside_input_excluded(
    make_ws: Callable[..., Driver], root: Path, mode: str
) -> None:
    """Output and on_failure folders inside the input are never watched, whatever the names."""
    cfg = WatchConfig(
        "w",
        root,
        output=root / "dubbed",
        mode=mode,
        on_failure=PostAction("move", root / "failed"),
        on_success=PostAction("move", root / "done"),
    )
    d = make_ws([cfg])
    put(root / "dubbed" / "anything.mp4")
    put(root / "failed" / "bad.mp4")
    put(root / "done" / "sub" / "old.mp4")
    put(root / "new.mp4")
    d.until(lambda: d.stable(), "new.mp4")
    d.settle(2 * QUIET)
    assert d.stable() == [root / "new.mp4"]


def test_changed_file_is_reported_again(
    make_ws: Callable[..., Driver], root: Path, mode: str
) -> None:
    """Each (path, size, mtime_ns) is reported once; rewriting the file makes it new work."""
    d = make_ws([WatchConfig("w", root, mode=mode)])
    f = put(root / "clip.mp4", b"first")
    d.until(lambda: d.stable(), "first version")
    d.ws.rescan()
    d.settle(2 * QUIET)
    assert len(d.stable()) == 1
    f.write_bytes(b"second version")
    d.until(lambda: len(d.stable()) == 2, "second version")
    first, second = (i for i in d.items if isinstance(i, StableFile))
    assert (first.size, second.size) == (5, 14)


def test_deleted_after_reported_is_vanished(
    make_ws: Callable[..., Driver], root: Path, mode: str
) -> None:
    """A reported file deleted while the root stays healthy yields one Vanished."""
    d = make_ws([WatchConfig("w", root, mode=mode)])
    keep = put(root / "keep.mp4")
    gone = put(root / "gone.mp4")
    d.until(lambda: len(d.stable()) == 2, "both files")
    gone.unlink()
    d.until(lambda: d.vanished(), "the Vanished event")
    d.settle(2 * QUIET)
    assert d.vanished() == [gone]
    assert keep.exists() and not d.status("w").paused


def test_release_is_quiet(make_ws: Callable[..., Driver], root: Path, mode: str) -> None:
    """A source the daemon moved away itself neither vanishes nor pauses the watch."""
    d = make_ws([WatchConfig("w", root, mode=mode)])
    f = put(root / "only.mp4")
    d.until(lambda: d.stable(), "the file")
    d.ws.release(f)
    f.unlink()
    d.settle(2 * QUIET)
    assert d.vanished() == []
    assert not d.status("w").paused


def test_root_disappears_pauses_then_resumes(
    make_ws: Callable[..., Driver], root: Path, mode: str
) -> None:
    """A root that goes away pauses the watch with no Vanished flood; it resumes when back."""
    d = make_ws([WatchConfig("w", root, mode=mode)], log=structlog.get_logger())
    for i in range(5):
        put(root / f"f{i}.mp4")
    d.until(lambda: len(d.stable()) == 5, "five files")
    aside = root.parent / "unmounted"
    with capture_logs() as logs:
        root.rename(aside)
        d.until(lambda: d.status("w").paused, "the pause")
        assert "missing" in (d.status("w").pause_reason or "")
        d.settle(2 * QUIET)
        assert d.vanished() == []
        aside.rename(root)
        d.until(lambda: not d.status("w").paused, "the resume")
        put(root / "new.mp4")
        d.until(lambda: len(d.stable()) == 6, "the new file")
        d.settle(QUIET)
    assert d.vanished() == []
    assert d.stable()[-1] == root / "new.mp4"
    events = [e["event"] for e in logs]
    assert events.count("watch paused") == 1
    assert events.count("watch resumed") == 1


def test_root_emptied_at_once_pauses(make_ws: Callable[..., Driver], root: Path, mode: str) -> None:
    """Every file gone in one go pauses the watch instead of reporting each as vanished."""
    d = make_ws([WatchConfig("w", root, mode=mode)])
    files = [put(root / f"f{i}.mp4") for i in range(3)]
    d.until(lambda: len(d.stable()) == 3, "three files")
    for f in files:
        f.unlink()
    d.until(lambda: d.status("w").paused, "the pause")
    assert "emptied" in (d.status("w").pause_reason or "")
    d.settle(2 * QUIET)
    assert d.vanished() == []
    put(root / "fresh.mp4")
    d.until(lambda: root / "fresh.mp4" in d.stable(), "the fresh file")
    assert not d.status("w").paused
    # With the root healthy again, the old files are now known to be gone.
    assert sorted(d.vanished()) == sorted(files)


def test_missing_root_at_start(make_ws: Callable[..., Driver], tmp_path: Path, mode: str) -> None:
    """A root missing at start is paused, not a crash, and picked up once it appears."""
    later = tmp_path / "later"
    d = make_ws([WatchConfig("w", later, mode=mode)])
    st = d.status("w")
    assert st.paused and "missing" in (st.pause_reason or "")
    d.settle(2 * SCAN)
    put(later / "clip.mp4")
    d.until(lambda: d.stable(), "the file in the late root")
    assert not d.status("w").paused


def test_unmount_detected_by_device(make_ws: Callable[..., Driver], root: Path) -> None:
    """A mount point whose device becomes its parent's is paused; remounted, it resumes."""
    unmounted = threading.Event()

    def fake_stat(path: Path) -> os.stat_result:
        st = os.stat(path)
        if Path(path) != root:
            return st
        dev = os.stat(root.parent).st_dev if unmounted.is_set() else st.st_dev + 1
        values = list(st[:10])
        values[2] = dev
        return os.stat_result(
            (
                *values,
                st.st_atime,
                st.st_mtime,
                st.st_ctime,
                st.st_atime_ns,
                st.st_mtime_ns,
                st.st_ctime_ns,
            )
        )

    d = make_ws([WatchConfig("w", root, mode="polling")], stat=fake_stat)
    put(root / "a.mp4")
    d.until(lambda: d.stable(), "the file")
    unmounted.set()
    d.until(lambda: d.status("w").paused, "the pause")
    assert "no longer mounted" in (d.status("w").pause_reason or "")
    unmounted.clear()
    d.until(lambda: not d.status("w").paused, "the resume")
    d.settle(2 * QUIET)
    assert d.vanished() == [] and d.stable() == [root / "a.mp4"]


def test_reconfigure_adds_and_removes(
    make_ws: Callable[..., Driver], tmp_path: Path, mode: str
) -> None:
    """SIGHUP: a new watch starts (with its catch-up scan), a removed one stops reporting."""
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    wa, wb = WatchConfig("a", a, mode=mode), WatchConfig("b", b, mode=mode)
    d = make_ws([wa])
    put(b / "waiting.mp4")
    d.ws.reconfigure([wa, wb])
    d.until(lambda: d.stable("b"), "the file in the new watch")
    d.ws.reconfigure([wb])
    assert [s.name for s in d.ws.status()] == ["b"]
    put(a / "ignored.mp4")
    put(b / "second.mp4")
    d.until(lambda: len(d.stable("b")) == 2, "the second file in b")
    d.settle(QUIET)
    assert d.stable("a") == []


def test_reconfigure_change_keeps_known_files(
    make_ws: Callable[..., Driver], root: Path, mode: str
) -> None:
    """Changing a watch's settings restarts it without reporting its files a second time."""
    cfg = WatchConfig("w", root, mode=mode)
    d = make_ws([cfg])
    put(root / "clip.mp4")
    put(root / "skip.mov")
    d.until(lambda: len(d.stable()) == 2, "both files")
    d.ws.reconfigure([replace(cfg, exclude=("*.mov",), scan_interval=SCAN / 2)])
    d.ws.reconfigure([replace(cfg, exclude=("*.mov",), scan_interval=SCAN / 2, targets=("fr",))])
    put(root / "other.mov")
    d.settle(2 * QUIET)
    assert sorted(p.name for p in d.stable()) == ["clip.mp4", "skip.mov"]
    assert d.vanished() == []


class _LimitObserver:
    """An observer whose schedule() hits the inotify watch limit, like a full fs.inotify."""

    def __init__(self, err: int) -> None:
        self.err = err
        self.stopped = False

    def schedule(self, handler: Any, path: str, *, recursive: bool = False) -> None:
        raise OSError(self.err, os.strerror(self.err))

    def start(self) -> None:
        raise AssertionError("not reached")

    def stop(self) -> None:
        self.stopped = True

    def join(self, timeout: float | None = None) -> None:
        raise RuntimeError("cannot join thread before it is started")

    def is_alive(self) -> bool:
        return False


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EMFILE])
def test_inotify_limit_falls_back_to_polling(
    make_ws: Callable[..., Driver], root: Path, err: int
) -> None:
    """ENOSPC/EMFILE from inotify means polling with a clear warning, never a crash."""
    made: list[_LimitObserver] = []

    def factory() -> _LimitObserver:
        made.append(_LimitObserver(err))
        return made[-1]

    with capture_logs() as logs:
        d = make_ws(
            [WatchConfig("w", root, mode="native")],
            native_observer=factory,
            log=structlog.get_logger(),
        )
    st = d.status("w")
    assert st.mode == "polling" and not st.paused
    assert "fs.inotify.max_user_watches" in (st.reason or "")
    assert made and made[0].stopped
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert len(warnings) == 1 and "max_user_watches" in warnings[0]["reason"]
    put(root / "clip.mp4")
    d.until(lambda: d.stable(), "the file via polling")


def test_inotify_limit_at_construction(make_ws: Callable[..., Driver], root: Path) -> None:
    """An observer factory that itself raises ENOSPC is handled the same way."""

    def factory() -> Any:
        raise OSError(errno.ENOSPC, "inotify watch limit reached")

    d = make_ws([WatchConfig("w", root, mode="native")], native_observer=factory)
    assert d.status("w").mode == "polling"


def test_auto_mode_polls_network_filesystems(make_ws: Callable[..., Driver], root: Path) -> None:
    """mode: auto picks polling on NFS and says why once; native on a local disk."""
    nfs = [fsinfo.Mount("nas:/export", str(root), "nfs4")]
    with capture_logs() as logs:
        d = make_ws(
            [WatchConfig("w", root, mode="auto")], mounts=lambda: nfs, log=structlog.get_logger()
        )
        put(root / "clip.mp4")
        d.until(lambda: d.stable(), "the file")
    st = d.status("w")
    assert st.mode == "polling" and "nfs4" in (st.reason or "")
    assert [e["event"] for e in logs].count("watching") == 1
    local = make_ws([WatchConfig("x", root, mode="auto")])
    assert local.status("x").mode == "native" and local.status("x").reason is None


def test_non_recursive_ignores_subfolders(
    make_ws: Callable[..., Driver], root: Path, mode: str
) -> None:
    """recursive: false reports files directly in the root only."""
    d = make_ws([WatchConfig("w", root, mode=mode, recursive=False)])
    put(root / "sub" / "deep.mp4")
    put(root / "top.mp4")
    d.until(lambda: d.stable(), "top.mp4")
    d.settle(QUIET)
    assert d.stable() == [root / "top.mp4"]


def test_wakeup_and_deadline(make_ws: Callable[..., Driver], root: Path, mode: str) -> None:
    """Observer threads set wakeup on events; next_deadline covers the quiet period."""
    d = make_ws([WatchConfig("w", root, mode=mode)])
    d.pump()
    put(root / "clip.mp4")
    assert d.ws.wakeup.wait(5.0)
    d.until(lambda: d.status("w").pending == 1, "the file to be pending")
    deadline = d.ws.next_deadline()
    assert deadline is not None and deadline <= time.monotonic() + QUIET


def test_poll_before_start_and_after_stop(root: Path) -> None:
    """An unstarted or stopped WatchSet reports nothing and starts no threads."""
    put(root / "clip.mp4")
    ws = WatchSet([WatchConfig("w", root)], mounts=lambda: [])
    assert ws.poll() == []
    ws.start()
    ws.stop()
    assert ws.poll() == []


def test_check_root_confirms_only_a_folder_that_still_holds_files(
    make_ws: Callable[..., Driver], root: Path
) -> None:
    """A job's missing source checks the root at once: emptied pauses, files present confirm."""
    d = make_ws([WatchConfig("w", root, scan_interval=60)])
    files = [put(root / f"f{i}.mp4") for i in range(2)]
    d.until(lambda: len(d.stable()) == 2, "two files")
    files[0].unlink()
    assert d.ws.check_root("w") is True  # another file is still there: a real deletion
    files[1].unlink()
    assert d.ws.check_root("w") is False  # long before the next scan would have noticed
    st = d.status("w")
    assert st.paused and "emptied" in (st.pause_reason or "")
    put(root / "back.mp4")
    assert d.ws.check_root("w") is True
    assert not d.status("w").paused


def test_check_root_does_not_confirm_an_empty_root(
    make_ws: Callable[..., Driver], root: Path
) -> None:
    """An empty root with nothing reported yet (a share not mounted at start) confirms nothing."""
    d = make_ws([WatchConfig("w", root, scan_interval=60)])
    assert d.ws.check_root("w") is False
    assert not d.status("w").paused
    assert d.ws.check_root("unknown watch") is True  # a removed watch holds nothing back
