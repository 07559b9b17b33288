"""Write a file so that no reader ever sees it half-written, and never clobber a stranger.

Bytes go to a hidden temp name in the destination folder (same filesystem, so the final rename
is atomic), are fsynced, then linked into place. The temp file is created with mode 0666 and
the process umask applies, unlike ``tempfile.mkstemp`` (0600), so NAS users get the
group-readable outputs they expect.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from synthesia_watchd.domain.errors import OutputConflict

from .saferoot import SafeDir, open_parent
from .sourcefile import open_regular

PART_SUFFIX = ".part"


def temp_name_for(dest: Path) -> Path:
    """A hidden, unique temp name beside ``dest`` that our own watcher ignores."""
    return dest.with_name(f".{dest.name}.{secrets.token_hex(4)}{PART_SUFFIX}")


def fsync_dir(folder: Path) -> None:
    """Make a rename or link in ``folder`` durable (no-op where directories can't be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def replace_file(dest: Path, data: bytes, mode: int = 0o600) -> None:
    """Put ``data`` at ``dest`` in one rename: readers see the old or the new file, never half.

    For small files we own (the ledger's id, a watch folder's claim); rename works on NFS and
    SMB, where no lock can be relied on.
    """
    tmp = temp_name_for(dest)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(dest.parent)


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def file_digests(path: Path, chunk: int = 1 << 20) -> tuple[str, str, int]:
    """(sha256 hex, MD5 base64, bytes read) in one pass over the file.

    sha256 identifies content in the ledger (dedup); MD5 is what POST /v2/assets takes as
    contentMD5 so Synthesia can check the upload's integrity.
    """
    sha = hashlib.sha256()
    md5 = hashlib.md5(usedforsecurity=False)
    total = 0
    with open_regular(path) as fh:
        while block := fh.read(chunk):
            sha.update(block)
            md5.update(block)
            total += len(block)
    return sha.hexdigest(), base64.b64encode(md5.digest()).decode("ascii"), total


def _sha256_fd(fd: int, chunk: int = 1 << 20) -> str:
    """Hex sha256 of an open file, read to the end; closes ``fd``."""
    h = hashlib.sha256()
    with os.fdopen(fd, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def link_or_copy(src: Path, dest: Path, *, root: Path | None = None) -> str:
    """Place an existing output at a new name without clobbering: hard link, else copy.

    Returns the sha256 of what now sits at ``dest``. An identical file already there counts
    as success; a different one raises OutputConflict. With ``root``, ``dest``'s folder is
    reached from it without following symlinks (EscapingPath otherwise).
    """
    with open_parent(root, dest, create=root is not None) as folder:
        try:
            os.link(src, dest.name, dst_dir_fd=folder.fd)
            folder.fsync()
            return _sha256_fd(folder.open_read(dest.name))
        except FileExistsError:
            if folder.is_file(dest.name):
                digest = _sha256_fd(folder.open_read(dest.name))
                if digest == file_sha256(src):
                    return digest
            raise OutputConflict(
                f"{dest.name}: a different file already exists at this output name"
            ) from None
        except OSError:
            pass  # cross-device or no hard links here: copy instead
    with open(src, "rb") as fh, AtomicWriter(dest, root=root) as out:
        while block := fh.read(1 << 20):
            out.write(block)
        out.commit()
        return out.sha256


class AtomicWriter:
    """Context manager: write to a temp file, then ``commit()`` it to ``dest``.

    Leaving the block without commit (an exception, a shutdown) removes the temp file, so a
    final name only ever holds a complete file. ``sha256`` and ``bytes_written`` describe what
    was written. With ``root``, the folder is reached from it without following symlinks
    (created as needed) and every operation names files relative to that open folder, so
    neither the temp file nor the final name can land outside the root.
    """

    def __init__(self, dest: Path, *, root: Path | None = None) -> None:
        self.dest = dest
        self.root = root
        self.tmp = temp_name_for(dest)
        self.bytes_written = 0
        self._hash = hashlib.sha256()
        self._fh: BinaryIO | None = None
        self._dir: SafeDir | None = None
        self._committed = False

    def __enter__(self) -> AtomicWriter:
        self._dir = open_parent(self.root, self.dest, create=self.root is not None)
        try:
            fd = self._dir.open_new(self.tmp.name)
        except BaseException:
            self._dir.close()
            raise
        self._fh = os.fdopen(fd, "wb")
        return self

    def write(self, data: bytes) -> None:
        assert self._fh is not None
        self._fh.write(data)
        self._hash.update(data)
        self.bytes_written += len(data)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def commit(
        self,
        *,
        replace_identical: bool = True,
        replace_if: Callable[[Path], bool] | None = None,
    ) -> None:
        """fsync and move into place; raise OutputConflict if a different file is there.

        An existing file with the same content counts as success (a resumed download). A
        different one is replaced only when ``replace_if(dest)`` says it is ours to replace
        (an output we wrote for an earlier version of the same source), atomically, so the
        old file is there until the new one is complete.
        """
        assert self._fh is not None and self._dir is not None
        folder, tmp, name = self._dir, self.tmp.name, self.dest.name
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        try:
            # Fails if dest exists: no silent clobbering.
            os.link(tmp, name, src_dir_fd=folder.fd, dst_dir_fd=folder.fd)
        except FileExistsError:
            self._settle_existing(replace_identical, replace_if)
            return
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                raise
            # Filesystems without hard links (some SMB/FUSE mounts): check, then rename.
            if folder.lexists(name):
                self._settle_existing(replace_identical, replace_if)
                return
            os.replace(tmp, name, src_dir_fd=folder.fd, dst_dir_fd=folder.fd)
        else:
            self._discard()
        folder.fsync()
        self._committed = True

    def _settle_existing(
        self, replace_identical: bool, replace_if: Callable[[Path], bool] | None
    ) -> None:
        """A file already sits at ``dest``: keep it if identical, replace it if ours, or refuse."""
        assert self._dir is not None
        folder, name = self._dir, self.dest.name
        regular = folder.is_file(name)
        if replace_identical and regular and _sha256_fd(folder.open_read(name)) == self.sha256:
            self._discard()
        elif regular and replace_if is not None and replace_if(self.dest):
            os.replace(self.tmp.name, name, src_dir_fd=folder.fd, dst_dir_fd=folder.fd)
            folder.fsync()
        else:
            self._discard()
            raise OutputConflict(
                f"{self.dest.name}: a different file already exists at this output name; "
                "move it away or delete it, then retry the job"
            )
        self._committed = True

    def _discard(self) -> None:
        if self._dir is not None:
            self._dir.unlink(self.tmp.name)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fh is not None and not self._fh.closed:
            self._fh.close()
        if not self._committed:
            self._discard()
        if self._dir is not None:
            self._dir.close()
