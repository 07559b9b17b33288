"""Which files of a watch folder are candidates, and the stat-only walk that finds them.

The watcher's scans and ``--dry-run`` walk folders with this one module, so a dry run sees
the very files a run would take (same name filters, same skipped output and move-target
folders, regular files only).
"""

from __future__ import annotations

import os
import stat as stat_mod
from pathlib import Path, PurePath
from typing import Protocol

from synthesia_watchd.domain.filters import is_ignored, is_ignored_dir


class _ActionLike(Protocol):
    @property
    def kind(self) -> str: ...
    @property
    def path(self) -> Path | None: ...


class WalkLike(Protocol):
    """The parts of a watch's config the walk reads (config.WatchConfig fits)."""

    @property
    def input(self) -> Path: ...
    @property
    def recursive(self) -> bool: ...
    @property
    def include(self) -> tuple[str, ...]: ...
    @property
    def exclude(self) -> tuple[str, ...]: ...
    @property
    def output_root(self) -> Path: ...
    @property
    def on_success(self) -> _ActionLike: ...
    @property
    def on_failure(self) -> _ActionLike: ...


class FolderWalk:
    """The candidate files of one watch folder."""

    def __init__(self, cfg: WalkLike) -> None:
        self.walk_cfg = cfg
        self.root = Path(os.path.abspath(cfg.input))
        self.excluded = self._excluded_dirs()

    def _excluded_dirs(self) -> list[PurePath]:
        """Output and move-target folders inside the input: never scanned, never watched."""
        cfg = self.walk_cfg
        dirs = [Path(cfg.output_root)]
        dirs += [a.path for a in (cfg.on_success, cfg.on_failure) if a.kind == "move" and a.path]
        out: list[PurePath] = []
        for d in dirs:
            rel = os.path.relpath(os.path.abspath(d), self.root)
            if rel != os.curdir and not rel.startswith(os.pardir):
                out.append(PurePath(rel))
        return out

    def rel(self, path: Path) -> PurePath | None:
        """``path`` relative to the root, or None when outside it."""
        rel = os.path.relpath(os.path.abspath(path), self.root)
        if rel == os.curdir or rel.startswith(os.pardir + os.sep) or rel == os.pardir:
            return None
        return PurePath(rel)

    def in_excluded(self, rel: PurePath) -> bool:
        return any(rel.parts[: len(ex.parts)] == ex.parts for ex in self.excluded)

    def dir_wanted(self, rel: PurePath) -> bool:
        """Whether a subfolder is scanned."""
        if not self.walk_cfg.recursive or self.in_excluded(rel):
            return False
        return not is_ignored_dir(rel, exclude=self.walk_cfg.exclude)

    def is_candidate(self, path: Path) -> bool:
        """Whether a file path is a candidate of this watch (by name and place only)."""
        rel = self.rel(path)
        if rel is None or (not self.walk_cfg.recursive and len(rel.parts) != 1):
            return False
        if self.in_excluded(rel):
            return False
        cfg = self.walk_cfg
        return not is_ignored(rel, include=cfg.include, exclude=cfg.exclude)

    def walk(self, top: Path | None = None) -> dict[Path, tuple[int, int]]:
        """Stat-only scan: candidate files under ``top`` (default: the root) -> (size, mtime_ns).

        Raises OSError when ``top`` itself cannot be listed; unreadable subfolders are skipped.
        """
        found: dict[Path, tuple[int, int]] = {}
        stack = [top or self.root]
        first = True
        while stack:
            folder = stack.pop()
            try:
                entries = list(os.scandir(folder))
            except OSError:
                if first:
                    raise
                continue
            first = False
            for entry in entries:
                path = Path(entry.path)
                try:
                    if entry.is_dir(follow_symlinks=False):
                        rel = self.rel(path)
                        if rel is not None and self.dir_wanted(rel):
                            stack.append(path)
                        continue
                    if not self.is_candidate(path):
                        continue
                    st = entry.stat()  # a symlinked file is followed: the daemon reads through it
                except OSError:
                    continue
                if stat_mod.S_ISREG(st.st_mode):
                    found[path] = (st.st_size, st.st_mtime_ns)
        return found
