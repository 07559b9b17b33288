"""Which names in a drop folder are never work (pure).

A drop folder collects much more than finished videos: browsers and sync tools write partial
files, NAS boxes add metadata folders, macOS and Windows add their droppings, and the daemon
itself writes dubbed outputs and reason files that may land in the same folder. Every one of
those must be invisible to the watcher, silently: a log line per ignored file would drown the
operator. Names are compared case-insensitively where users expect it (``.MP4``, ``thumbs.db``,
globs), since drop folders are often SMB shares filled from Windows or macOS.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from pathlib import PurePath

from .media import is_video_name
from .outputs import OWN_OUTPUT

#: Suffixes of files still being written by browsers, sync tools and copy programs.
PARTIAL_SUFFIXES: tuple[str, ...] = (
    ".part",
    ".partial",
    ".tmp",
    ".temp",
    ".crdownload",
    ".download",
    ".filepart",
    ".!sync",
)

#: Prefixes of temp, lock and unpack names (Office, Syncthing, AppleDouble, SABnzbd/NZBGet).
IGNORED_PREFIXES: tuple[str, ...] = ("~$", ".syncthing.", "~syncthing~", "._", "_unpack_")

#: Whole names (lower case) of OS droppings and NAS metadata / recycle folders.
IGNORED_NAMES: frozenset[str] = frozenset(
    {
        ".ds_store",
        "thumbs.db",
        "desktop.ini",
        "@eadir",
        "#recycle",
        "@recycle",
        ".@__thumb",
        "#snapshot",
        ".snapshot",
        "$recycle.bin",
        "system volume information",
        "lost+found",
    }
)


def _ignored_component(name: str) -> bool:
    """Whether one path component (file or folder) marks something that is never work."""
    low = name.lower()
    return (
        low.startswith(".")
        or low in IGNORED_NAMES
        or low.startswith(IGNORED_PREFIXES)
        or low.endswith(PARTIAL_SUFFIXES)
    )


def _glob_hits(rel: PurePath, patterns: Sequence[str]) -> bool:
    """Whether ``rel`` matches any glob.

    A glob with a ``/`` is matched against the whole relative path (``drafts/*``); one without
    is matched against each component, so ``drafts`` excludes a folder and ``*.mov`` a name.
    """
    whole = rel.as_posix().lower()
    parts = [p.lower() for p in rel.parts]
    for pattern in patterns:
        pat = pattern.lower().strip("/")
        if "/" in pat:
            if fnmatch.fnmatchcase(whole, pat):
                return True
        elif any(fnmatch.fnmatchcase(part, pat) for part in parts):
            return True
    return False


def is_ignored_dir(rel: PurePath, *, exclude: Sequence[str] = ()) -> bool:
    """Whether a folder (relative to the watch root) must not be scanned at all."""
    if not rel.parts:
        return False
    return any(_ignored_component(p) for p in rel.parts) or _glob_hits(rel, exclude)


def is_ignored(rel: PurePath, *, include: Sequence[str] = (), exclude: Sequence[str] = ()) -> bool:
    """Whether a file, given relative to the watch root, is not a candidate for dubbing.

    Every component is checked, so a video inside ``@eaDir/`` or ``.hidden/`` is ignored. The
    content check is not done here: an ``.mp4`` that is really text is still a candidate, and
    the pipeline fails it with a clear reason.
    """
    if not rel.parts:
        return True
    name = rel.name
    if any(_ignored_component(p) for p in rel.parts):
        return True
    if OWN_OUTPUT.search(name) or not is_video_name(name):
        return True
    if exclude and _glob_hits(rel, exclude):
        return True
    if include:
        name_rel = PurePath(name)
        return not any(
            _glob_hits(rel if "/" in pattern.strip("/") else name_rel, [pattern])
            for pattern in include
        )
    return False
