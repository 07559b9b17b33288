"""Whether a watch's root can be trusted right now: reachable, a folder, and still on the
device it was first seen on.

A share that is unmounted leaves an empty folder on its parent's device behind: without this
check every file in it would look deleted and its queued jobs cancelled. A root mounted again
under a new device number (or newly a mount point) is a new baseline instead, and its watch
restarts, since inotify watches do not follow a new mount.
"""

from __future__ import annotations

import os
import stat as stat_mod
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple


class RootCheck(NamedTuple):
    """What one look at the root found."""

    #: Why the root cannot be trusted (missing, unreachable, unmounted), or None.
    problem: str | None
    #: Mounted again since the last look: scan it all and restart its observer.
    remounted: bool = False


class RootDevice:
    """A watch root's device, taken as the baseline at its first healthy look."""

    def __init__(self, root: Path, stat: Callable[[Path], os.stat_result]) -> None:
        self.root = root
        self._stat = stat
        self.dev: int | None = None
        self.was_mount = False

    def check(self) -> RootCheck:
        """Look at the root now (two stat calls: the root and its parent)."""
        try:
            st = self._stat(self.root)
        except (FileNotFoundError, NotADirectoryError):
            return RootCheck("input folder is missing")
        except OSError as exc:
            return RootCheck(f"input folder is unreachable: {exc.strerror or exc}")
        if not stat_mod.S_ISDIR(st.st_mode):
            return RootCheck("input path is not a folder")
        try:
            parent_dev = self._stat(self.root.parent).st_dev
        except OSError:
            parent_dev = None
        if self.dev is None:
            self.dev, self.was_mount = st.st_dev, st.st_dev != parent_dev
        elif st.st_dev != self.dev:
            if self.was_mount and st.st_dev == parent_dev:
                return RootCheck(
                    "input folder is no longer mounted (it is now on its parent's device)"
                )
            # Mounted again with a new device number, or newly a mount point: new baseline.
            self.dev, self.was_mount = st.st_dev, st.st_dev != parent_dev
            return RootCheck(None, remounted=True)
        return RootCheck(None)
