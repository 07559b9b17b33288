"""Each watch's folders on this node, and paths as the ledger keeps them (pure).

Nodes sharing a ledger may mount a share at different paths (``/mnt/drop`` on one host,
``/volume1/drop`` on another). The ledger therefore identifies a job's file by the watch's
*name* and the path relative to that watch's input folder, and each node turns that back
into its own absolute path through its own config. Outputs likewise: a path relative to the
watch's output root, resolved by each node under its own.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


class _ActionLike(Protocol):
    @property
    def path(self) -> Path | None: ...


class WatchLike(Protocol):
    """What a PathMap needs from config's ``WatchConfig``."""

    @property
    def name(self) -> str: ...
    @property
    def input(self) -> Path: ...
    @property
    def output_root(self) -> Path: ...
    @property
    def on_success(self) -> _ActionLike: ...
    @property
    def on_failure(self) -> _ActionLike: ...


@dataclass(frozen=True)
class WatchFolders:
    """One watch's folders on this node."""

    input: Path
    output_root: Path
    #: Where ``on_success`` / ``on_failure`` move sources to on this node (None: no move).
    on_success: Path | None = None
    on_failure: Path | None = None


def relative(root: str | os.PathLike[str] | None, path: str | os.PathLike[str]) -> str | None:
    """``path`` relative to ``root`` as ``a/b.mp4``; None when either is not absolute or
    ``path`` is not strictly inside ``root`` (lexically: no symlink is followed).

    Plain string work on normalised POSIX paths: intake resolves every job through here, so
    it stays off pathlib's object building."""
    if root is None or not os.path.isabs(root) or not os.path.isabs(path):
        return None
    base, full = os.path.normpath(root), os.path.normpath(path)
    prefix = base if base.endswith("/") else base + "/"
    if not full.startswith(prefix) or len(full) == len(prefix):
        return None
    return full[len(prefix) :]


def under_text(root: str | os.PathLike[str], rel: str) -> str:
    """The absolute path of ``rel`` (as ``relative`` gave it) under ``root``."""
    return os.path.normpath(os.path.join(os.fspath(root), rel))


def rel_parent(rel: str) -> str:
    """The folder part of a relative path (``""`` for a file at the top)."""
    return rel.rpartition("/")[0]


class PathMap:
    """Watch name -> its folders on this node; empty for a ledger opened without a config."""

    def __init__(self, folders: Mapping[str, WatchFolders] | None = None) -> None:
        self._folders = dict(folders or {})

    @classmethod
    def of(cls, watches: Iterable[WatchLike]) -> PathMap:
        """The map of a config's watches."""
        return cls(
            {
                w.name: WatchFolders(w.input, w.output_root, w.on_success.path, w.on_failure.path)
                for w in watches
            }
        )

    def __bool__(self) -> bool:
        return bool(self._folders)

    def folders(self, watch: str) -> WatchFolders | None:
        """The watch's folders on this node (None: this node has no such watch)."""
        return self._folders.get(watch)

    def source_key(self, watch: str, path: str) -> str | None:
        """The ledger's node-independent name of a source file on this node, or None."""
        f = self._folders.get(watch)
        return None if f is None else relative(f.input, path)

    def output_keys(self, path: str) -> list[tuple[str, str]]:
        """(watch, path relative to its output root) for every watch whose output root holds
        ``path`` on this node (several watches may share one output folder)."""
        found = []
        for name, f in sorted(self._folders.items()):
            rel = relative(f.output_root, path)
            if rel is not None:
                found.append((name, rel))
        return found

    def settings(self, watch: str, frozen: Mapping[str, Any]) -> dict[str, Any] | None:
        """A job's frozen settings with this node's folders for the watch (None: unknown
        watch). Post-action kinds stay as frozen; a move's target becomes this node's when
        this node's watch moves too."""
        f = self._folders.get(watch)
        if f is None:
            return None
        out = dict(frozen)
        out["input_root"], out["output_root"] = str(f.input), str(f.output_root)
        for key, mine in (("on_success", f.on_success), ("on_failure", f.on_failure)):
            action = out.get(key)
            if isinstance(action, Mapping) and action.get("path") and mine is not None:
                out[key] = {**action, "path": str(mine)}
        return out
