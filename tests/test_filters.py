"""Which names the watcher ignores."""

from __future__ import annotations

from pathlib import PurePath

import pytest

from synthesia_watchd.domain.filters import is_ignored, is_ignored_dir


@pytest.mark.parametrize(
    "rel",
    [
        "clip.mp4",
        "Clip.MP4",
        "talk.mov",
        "promo.webm",
        "old.m4v",
        "sub/dir/clip.mp4",
        "my video (final).mp4",
        "vidéo ünïcode.mp4",
        "-leading-dash.mp4",
        "clip.dubbed.mp4",  # only ".dubbed-<lang>.mp4" is ours
    ],
)
def test_videos_pass(rel: str) -> None:
    """Ordinary video names, in subfolders, with spaces, unicode and dashes, are candidates."""
    assert not is_ignored(PurePath(rel))


@pytest.mark.parametrize(
    "rel",
    [
        ".hidden.mp4",
        ".git/clip.mp4",
        "clip.mp4.part",
        "clip.mp4.partial",
        "clip.mp4.tmp",
        "clip.mp4.crdownload",
        "clip.mp4.CRDOWNLOAD",
        "~$clip.mp4",
        ".syncthing.clip.mp4.tmp",
        "~syncthing~clip.mp4.tmp",
        "clip.mp4.!sync",
        "._clip.mp4",
        ".DS_Store",
        "Thumbs.db",
        "THUMBS.DB",
        "@eaDir/clip.mp4/SYNOVIDEO_VIDEO_SCREENSHOT.mp4",
        "#recycle/clip.mp4",
        ".@__thumb/clip.mp4",
        "#snapshot/daily/clip.mp4",
        ".snapshot/hourly.0/clip.mp4",
        "_UNPACK_clip/clip.mp4",
        "clip.dubbed-de.mp4",
        "clip.dubbed-pt-BR.mp4",
        "clip.DUBBED-fr.MP4",
        "clip.dubbed-de.vtt",
        "clip.dubbed-de.srt",
        "clip.dubbed-de.jpg",
        "clip.mp4.reason.json",
        "notes.txt",
        "clip",
        "clip.mkv",
    ],
)
def test_ignored(rel: str) -> None:
    """Temp, partial, hidden, NAS metadata, our outputs and non-video names are ignored."""
    assert is_ignored(PurePath(rel))


def test_empty_path_is_ignored() -> None:
    """The root itself is never a candidate file."""
    assert is_ignored(PurePath())


def test_exclude_globs_match_names_and_folders() -> None:
    """An exclude glob without '/' matches any component; with '/' the whole path."""
    assert is_ignored(PurePath("a/draft-1.mp4"), exclude=["draft-*"])
    assert is_ignored(PurePath("drafts/x.mp4"), exclude=["drafts"])
    assert is_ignored(PurePath("raw/2024/x.mp4"), exclude=["raw/*"])
    assert not is_ignored(PurePath("final/x.mp4"), exclude=["raw/*", "drafts"])
    assert is_ignored(PurePath("X.MOV"), exclude=["*.mov"])


def test_include_globs_restrict() -> None:
    """With include globs only matching names pass, and excludes still win."""
    inc = ["*.mp4", "talks/*.mov"]
    assert not is_ignored(PurePath("sub/clip.mp4"), include=inc)
    assert not is_ignored(PurePath("talks/keynote.mov"), include=inc)
    assert is_ignored(PurePath("other/keynote.mov"), include=inc)
    assert is_ignored(PurePath("clip.mp4"), include=inc, exclude=["clip*"])
    assert is_ignored(PurePath("notes.txt"), include=["*"])


def test_ignored_dirs() -> None:
    """Folders that are hidden, NAS metadata or excluded are not scanned; others are."""
    assert is_ignored_dir(PurePath("@eaDir"))
    assert is_ignored_dir(PurePath("a/.cache"))
    assert is_ignored_dir(PurePath("_UNPACK_job"))
    assert is_ignored_dir(PurePath("drafts"), exclude=["drafts"])
    assert not is_ignored_dir(PurePath("videos/2024"))
    assert not is_ignored_dir(PurePath())
