"""Open a folder inside a root without following symlinks, and act on names relative to it.

Outputs, temp files, moved sources and reason files go to a path built under a root the
operator configured (an output folder, a move target). A folder on the way replaced by a
symlink would carry the write somewhere else, so each component is opened relative to its
parent's descriptor with ``O_NOFOLLOW | O_DIRECTORY`` (created there when missing), and every
write then names a file relative to the descriptor we hold. Checking a resolved path first
and writing by path later would leave a window in which the folder could be swapped.
The root itself is the operator's choice and may be a symlink (``/data/out`` -> a volume).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat as stat_mod
from pathlib import Path, PurePath
from types import TracebackType

from synthesia_watchd.domain.errors import EscapingPath

__all__ = ["NEW_FILE_FLAGS", "EscapingPath", "SafeDir", "open_inside", "open_parent"]

_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC
#: Flags for a new file created beside its final name: exclusive, never through a symlink.
NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC


class SafeDir:
    """An open folder reached from a root without following symlinks.

    ``fd`` is the descriptor file operations pass as ``dir_fd``; ``path`` is for messages and
    for callers that record where a file went.
    """

    def __init__(self, fd: int, path: Path) -> None:
        self.fd = fd
        self.path = path

    def lexists(self, name: str) -> bool:
        """Whether ``name`` exists in this folder (a symlink counts, never followed)."""
        try:
            os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        return True

    def is_file(self, name: str) -> bool:
        """Whether ``name`` is a regular file here (a symlink is not)."""
        try:
            st = os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        return stat_mod.S_ISREG(st.st_mode)

    def open_new(self, name: str, mode: int = 0o666) -> int:
        """Create ``name`` exclusively (never through a symlink); returns a write descriptor."""
        return os.open(name, NEW_FILE_FLAGS, mode, dir_fd=self.fd)

    def open_read(self, name: str) -> int:
        """Open ``name`` for reading; a symlink in its place raises OSError(ELOOP)."""
        return os.open(name, os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC, dir_fd=self.fd)

    def unlink(self, name: str) -> None:
        """Remove ``name`` if it is there."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=self.fd)

    def fsync(self) -> None:
        """Make links, renames and unlinks in this folder durable (best effort)."""
        with contextlib.suppress(OSError):
            os.fsync(self.fd)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> SafeDir:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _parts(rel: PurePath) -> list[str]:
    parts = [p for p in rel.parts if p not in ("", os.curdir)]
    if rel.is_absolute() or os.pardir in parts:
        raise EscapingPath(f"{rel}: not a plain path inside its root")
    return parts


def open_inside(root: Path, rel: PurePath, *, create: bool = True) -> SafeDir:
    """Open ``root/rel`` walking ``rel`` one component at a time, never following a symlink.

    Missing folders are created (``create``) relative to their parent's descriptor. A
    component that is a symlink or not a folder raises EscapingPath naming it.
    """
    parts = _parts(rel)
    if create:
        os.makedirs(root, exist_ok=True)
    fd = os.open(root, _DIR_FLAGS)
    here = Path(root)
    try:
        for part in parts:
            here = here / part
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o777, dir_fd=fd)
            try:
                child = os.open(part, _DIR_FLAGS | _O_NOFOLLOW, dir_fd=fd)
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
                    raise
                what = "a symlink" if os.path.islink(here) else "not a folder"
                raise EscapingPath(
                    f"{here} is {what}: refusing to write through it, which could land "
                    f"outside {root}; replace it with a real folder"
                ) from None
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return SafeDir(fd, here)


def open_parent(root: Path | None, dest: Path, *, create: bool = True) -> SafeDir:
    """The folder ``dest`` goes in, opened from ``root`` without following symlinks.

    With ``root`` None the folder is opened as named (the caller vouches for the path).
    ``dest`` must be lexically inside ``root``.
    """
    folder = Path(dest).parent
    if root is None:
        if create:
            folder.mkdir(parents=True, exist_ok=True)
        return SafeDir(os.open(folder, _DIR_FLAGS), folder)
    base = os.path.abspath(root)
    rel = os.path.relpath(os.path.abspath(folder), base)
    if rel == os.pardir or rel.startswith(os.pardir + os.sep):
        raise EscapingPath(f"{dest.name}: would be written outside {root}")
    return open_inside(Path(root), PurePath(rel), create=create)
