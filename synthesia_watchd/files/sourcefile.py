"""Opening a dropped file without ever blocking on it (pure).

A name in the drop folder can point at a FIFO or a device at any moment (a rename swaps it in
between a ``stat`` and an ``open``). ``open()`` on a FIFO with no writer blocks forever, so a
source is opened with ``O_NONBLOCK``, the *descriptor* is checked with ``fstat``, and it is
used only when it is a regular file; then ``O_NONBLOCK`` is cleared for ordinary reads.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat as stat_mod
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


class NotRegularFile(OSError):
    """Raised when a source name points at something other than a regular file."""


_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)


def kind_of(mode: int) -> str:
    """A readable name for a file type (for the reason an operator reads)."""
    for test, name in (
        (stat_mod.S_ISFIFO, "a FIFO"),
        (stat_mod.S_ISCHR, "a character device"),
        (stat_mod.S_ISBLK, "a block device"),
        (stat_mod.S_ISSOCK, "a socket"),
        (stat_mod.S_ISDIR, "a folder"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def open_regular_fd(path: Path | str) -> int:
    """A blocking-mode read descriptor on ``path``, only if it is a regular file.

    Raises NotRegularFile (an OSError) for a FIFO, device, socket or folder, and the usual
    OSError when it cannot be opened. Never blocks on the open itself.
    """
    fd = os.open(path, _FLAGS)
    try:
        st = os.fstat(fd)
        if not stat_mod.S_ISREG(st.st_mode):
            raise NotRegularFile(f"{os.fsdecode(path)!s}: {kind_of(st.st_mode)}, not a video file")
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_NONBLOCK)
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextlib.contextmanager
def open_regular(path: Path | str) -> Iterator[BinaryIO]:
    """``open(path, "rb")`` that refuses (never blocks on) anything but a regular file."""
    fd = open_regular_fd(path)
    with os.fdopen(fd, "rb") as fh:
        yield fh


def can_read(path: Path) -> bool:
    """Whether ``path`` is a regular file that opens for reading (a share lock may refuse)."""
    try:
        os.close(open_regular_fd(path))
    except OSError:
        return False
    return True
