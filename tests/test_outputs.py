"""Output paths and post-actions."""

from __future__ import annotations

import errno
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from synthesia_watchd.domain import outputs
from synthesia_watchd.domain.errors import UnsafePathError, WatchdError
from synthesia_watchd.domain.outputs import (
    OutputsNotVerified,
    apply_on_failure,
    apply_on_success,
    move_file,
    output_dir,
    output_path,
    relative_source,
    sanitize_language,
    verify_outputs,
)


@dataclass(frozen=True)
class PostAction:
    """Stand-in for config.PostAction."""

    kind: str
    path: Path | None = None


@dataclass(frozen=True)
class Watch:
    """Stand-in for the path part of config.WatchConfig."""

    input: Path
    output: Path | None = None

    @property
    def output_root(self) -> Path:
        return self.output or self.input


@pytest.fixture
def watch(tmp_path: Path) -> Watch:
    (tmp_path / "in" / "sub").mkdir(parents=True)
    (tmp_path / "out").mkdir()
    return Watch(input=tmp_path / "in", output=tmp_path / "out")


def _src(watch: Watch, rel: str = "sub/clip.mp4", data: bytes = b"video") -> Path:
    p = watch.input / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


def _outs(watch: Watch, source: Path, langs: tuple[str, ...] = ("de", "fr")) -> list[Path]:
    paths = [output_path(watch, source, lang) for lang in langs]
    for p in paths:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"dubbed")
    return paths


@pytest.mark.parametrize("code", ["de", "fr", "pt-BR", "zh-Hans", "yue", "es-419", "en-US-x1"])
def test_language_accepted(code: str) -> None:
    """Plain language tags pass through unchanged."""
    assert sanitize_language(code) == code


@pytest.mark.parametrize(
    "code", ["", "d", "../x", "de/..", "de.mp4", "de\n", "de-", "toolong", "de_DE", "dé", "de-a"]
)
def test_language_refused(code: str) -> None:
    """Anything that is not a plain language tag is refused before it reaches a file name."""
    with pytest.raises(UnsafePathError):
        sanitize_language(code)


def test_paths_mirror_subfolders(watch: Watch) -> None:
    """Outputs go to the output root plus the source's subfolder, named per language and kind."""
    src = watch.input / "sub" / "my clip.final.mov"
    assert relative_source(watch, src).as_posix() == "sub/my clip.final.mov"
    assert output_dir(watch, src) == watch.output_root / "sub"
    base = watch.output_root / "sub"
    assert output_path(watch, src, "pt-BR") == base / "my clip.final.dubbed-pt-BR.mp4"
    assert output_path(watch, src, "de", "vtt") == base / "my clip.final.dubbed-de.vtt"
    assert output_path(watch, src, "de", "srt") == base / "my clip.final.dubbed-de.srt"
    assert output_path(watch, src, "de", "thumbnail") == base / "my clip.final.dubbed-de.jpg"


def test_output_equals_input(tmp_path: Path) -> None:
    """Without an output folder, outputs sit beside the source."""
    w = Watch(input=tmp_path)
    assert output_path(w, tmp_path / "a" / "x.mp4", "de") == tmp_path / "a" / "x.dubbed-de.mp4"


def test_unknown_kind(watch: Watch) -> None:
    """An unknown output kind is a programming error."""
    with pytest.raises(ValueError):
        output_path(watch, watch.input / "x.mp4", "de", "gif")


def test_source_outside_input(watch: Watch) -> None:
    """A source outside the input folder has no mirrored place."""
    with pytest.raises(UnsafePathError):
        relative_source(watch, watch.input.parent / "elsewhere.mp4")
    with pytest.raises(UnsafePathError):
        relative_source(watch, watch.input)


def test_symlinked_output_folder_escape(watch: Watch, tmp_path: Path) -> None:
    """A subfolder of the output root that links elsewhere cannot receive outputs."""
    (tmp_path / "elsewhere").mkdir()
    (watch.output_root / "sub").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UnsafePathError):
        output_path(watch, watch.input / "sub" / "clip.mp4", "de")


def test_verify_outputs(tmp_path: Path) -> None:
    """Missing and empty outputs are named; good ones are not."""
    good = tmp_path / "good.mp4"
    good.write_bytes(b"x")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    assert verify_outputs([good]) == []
    problems = verify_outputs([good, empty, tmp_path / "gone.mp4", tmp_path])
    assert problems == [
        "empty.mp4: empty",
        "gone.mp4: missing",
        f"{tmp_path.name}: not a regular file",
    ]


def test_on_success_keep(watch: Watch) -> None:
    """keep leaves the source where it is."""
    src = _src(watch)
    assert apply_on_success(PostAction("keep"), src, watch, _outs(watch, src)) is None
    assert src.read_bytes() == b"video"


def test_on_success_delete(watch: Watch) -> None:
    """delete removes the source once outputs are verified."""
    src = _src(watch)
    assert apply_on_success(PostAction("delete"), src, watch, _outs(watch, src)) is None
    assert not src.exists()


def test_on_success_refuses_unverified(watch: Watch) -> None:
    """A missing or empty output stops the post-action and leaves the source untouched."""
    src = _src(watch)
    outs = _outs(watch, src)
    outs[1].write_bytes(b"")
    with pytest.raises(OutputsNotVerified, match="empty") as info:
        apply_on_success(PostAction("delete"), src, watch, [*outs, outs[0].with_name("x.mp4")])
    assert isinstance(info.value, WatchdError)
    assert "x.mp4: missing" in str(info.value)
    assert src.read_bytes() == b"video"


def test_on_success_move_mirrors_and_never_overwrites(watch: Watch, tmp_path: Path) -> None:
    """move mirrors the subfolder and picks ' (n)' names instead of overwriting."""
    done = tmp_path / "done"
    (done / "sub").mkdir(parents=True)
    (done / "sub" / "clip.mp4").write_bytes(b"older")
    (done / "sub" / "clip (1).mp4").write_bytes(b"older too")
    src = _src(watch)
    moved = apply_on_success(PostAction("move", done), src, watch, _outs(watch, src))
    assert moved == done / "sub" / "clip (2).mp4"
    assert moved.read_bytes() == b"video"
    assert not src.exists()
    assert (done / "sub" / "clip.mp4").read_bytes() == b"older"


def test_move_across_filesystems(tmp_path: Path) -> None:
    """When a hard link crosses devices (EXDEV), the file is copied, fsynced, then linked."""
    src = tmp_path / "a" / "clip.mp4"
    src.parent.mkdir()
    src.write_bytes(b"payload" * 1000)
    os.utime(src, ns=(1, 5_000_000_000))
    calls: list[Path] = []

    def cross_device(a: Path, b: Path) -> None:
        calls.append(Path(a))
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    dest = tmp_path / "b" / "clip.mp4"
    dest.parent.mkdir()
    dest.write_bytes(b"taken")
    moved = move_file(src, dest, link=cross_device)
    assert calls == [src]
    assert moved == tmp_path / "b" / "clip (1).mp4"
    assert moved.read_bytes() == b"payload" * 1000
    assert moved.stat().st_mtime_ns == 5_000_000_000
    assert not src.exists()
    assert dest.read_bytes() == b"taken"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["clip (1).mp4", "clip.mp4"]


def test_move_keeps_source_when_target_unusable(tmp_path: Path) -> None:
    """A target folder that cannot be created fails the move and leaves the source alone."""
    src = tmp_path / "clip.mp4"
    src.write_bytes(b"payload")
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")

    def cross_device(a: Path, b: Path) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    with pytest.raises(OSError):
        move_file(src, blocker / "sub" / "clip.mp4", link=cross_device)
    assert src.read_bytes() == b"payload"


def test_cross_device_copy_leaves_no_temp_on_conflict(tmp_path: Path) -> None:
    """After a cross-device move onto a taken name only the two real files remain."""
    src = tmp_path / "clip.mp4"
    src.write_bytes(b"new")
    dest_dir = tmp_path / "d"
    dest_dir.mkdir()
    for name in ("clip.mp4", "clip (1).mp4"):
        (dest_dir / name).write_bytes(b"old")

    def cross_device(a: Path, b: Path) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    moved = move_file(src, dest_dir / "clip.mp4", link=cross_device)
    assert moved.name == "clip (2).mp4"
    assert sorted(p.name for p in dest_dir.iterdir()) == [
        "clip (1).mp4",
        "clip (2).mp4",
        "clip.mp4",
    ]


def test_move_without_hardlinks(tmp_path: Path) -> None:
    """Filesystems without hard links fall back to a rename onto a free name."""
    src = tmp_path / "clip.mp4"
    src.write_bytes(b"payload")

    def no_links(a: Path, b: Path) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    moved = move_file(src, tmp_path / "dest" / "clip.mp4", link=no_links)
    assert moved.read_bytes() == b"payload"
    assert not src.exists()


def test_on_failure_keep(watch: Watch) -> None:
    """keep leaves a failed source in place and writes nothing."""
    src = _src(watch)
    assert (
        apply_on_failure(PostAction("keep"), src, watch, error="bad", context=None, now=0.0) is None
    )
    assert sorted(p.name for p in src.parent.iterdir()) == ["clip.mp4"]


def test_on_failure_never_deletes(watch: Watch) -> None:
    """A failed source is the only copy: delete is refused and the file stays."""
    src = _src(watch)
    apply_on_failure(PostAction("delete"), src, watch, error="bad", context=None, now=0.0)
    assert src.exists()


def test_on_failure_move_writes_reason(watch: Watch, tmp_path: Path) -> None:
    """move puts the file aside with a reason file: error, context, UTC time, source."""
    failed = tmp_path / "failed"
    src = _src(watch)
    moved = apply_on_failure(
        PostAction("move", failed),
        src,
        watch,
        error="not a video",
        context="magic bytes",
        now=1_700_000_000.0,
    )
    assert moved == failed / "sub" / "clip.mp4"
    assert moved.read_bytes() == b"video"
    assert not src.exists()
    reason = json.loads((failed / "sub" / "clip.mp4.reason.json").read_text())
    assert reason == {
        "error": "not a video",
        "context": "magic bytes",
        "time": "2023-11-14T22:13:20+00:00",
        "source": str(src),
    }
    assert not [p for p in moved.parent.iterdir() if p.name.startswith(".")]


def test_on_failure_move_twice(watch: Watch, tmp_path: Path) -> None:
    """A second failure of the same name gets its own file and reason, nothing is overwritten."""
    failed = tmp_path / "failed"
    first = apply_on_failure(
        PostAction("move", failed), _src(watch, data=b"one"), watch, error="e1", context=None,
        now=0.0,
    )  # fmt: skip
    second = apply_on_failure(
        PostAction("move", failed), _src(watch, data=b"two"), watch, error="e2", context=None,
        now=0.0,
    )  # fmt: skip
    assert first is not None and second is not None
    assert (first.read_bytes(), second.read_bytes()) == (b"one", b"two")
    assert second.name == "clip (1).mp4"
    reason = json.loads((second.parent / "clip (1).mp4.reason.json").read_text())
    assert reason["error"] == "e2"


def test_move_needs_target(watch: Watch) -> None:
    """A move without a target folder is refused and the source stays."""
    src = _src(watch)
    with pytest.raises(WatchdError):
        apply_on_success(PostAction("move", None), src, watch, _outs(watch, src))
    assert src.exists()


def test_kind_table_covers_pipeline_kinds() -> None:
    """Every output kind has an extension the filters recognise as ours."""
    assert set(outputs.KIND_EXTENSIONS) == {"video", "vtt", "srt", "thumbnail"}
