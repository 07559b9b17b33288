"""Which filesystem a path lives on, read from the mount table (pure over an injected table).

Two decisions hang on it: the ledger refuses network filesystems (SQLite locking is unsafe
there) and ``mode: auto`` picks the polling observer where inotify never sees remote writes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: Filesystem types whose changes made by other hosts never reach inotify, and on which SQLite's
#: POSIX locks are unreliable. FUSE covers sshfs, rclone, s3fs, mergerfs-over-remote and friends.
NETWORK_FS_TYPES: frozenset[str] = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb",
        "smb2",
        "smb3",
        "smbfs",
        "afs",
        "ncpfs",
        "9p",
        "ceph",
        "glusterfs",
        "lustre",
        "gpfs",
        "davfs",
        "fuse",
        "fuseblk",
        "fuse.sshfs",
        "fuse.rclone",
        "fuse.s3fs",
        "fuse.glusterfs",
        "fuse.cephfs",
        "fuse.gvfsd-fuse",
    }
)
# Local FUSE filesystems (mergerfs over local disks, Unraid's shfs) still get polling in auto
# mode: inotify through FUSE is unreliable, and polling is the safe default on a NAS.


@dataclass(frozen=True)
class Mount:
    """One line of /proc/self/mounts."""

    source: str
    mountpoint: str
    fstype: str


def _unescape(field: str) -> str:
    # /proc/mounts escapes space, tab, newline and backslash as octal.
    return (
        field.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
    )


def read_mounts(text: str | None = None) -> list[Mount]:
    """Parse a mount table (default: /proc/self/mounts); empty when there is none."""
    if text is None:
        try:
            with open("/proc/self/mounts", encoding="utf-8", errors="replace") as fh:
                text = fh.read()
        except OSError:
            return []
    mounts = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3:
            mounts.append(Mount(_unescape(parts[0]), _unescape(parts[1]), parts[2]))
    return mounts


def mount_for(path: Path, mounts: list[Mount] | None = None) -> Mount | None:
    """The mount that holds ``path`` (the longest mountpoint prefix of its real path)."""
    mounts = read_mounts() if mounts is None else mounts
    real = os.path.realpath(path)
    best: Mount | None = None
    for m in mounts:
        mp = m.mountpoint.rstrip("/") or "/"
        inside = real == mp or real.startswith(mp + "/") or mp == "/"
        if inside and (best is None or len(mp) >= len(best.mountpoint.rstrip("/") or "/")):
            best = m
    return best


def is_network_fs(fstype: str) -> bool:
    """Whether a filesystem type is remote or FUSE (see NETWORK_FS_TYPES)."""
    return fstype in NETWORK_FS_TYPES or fstype.startswith("fuse.") or fstype.startswith("nfs")


def network_fs_of(path: Path, mounts: list[Mount] | None = None) -> Mount | None:
    """The mount holding ``path`` when it is a network/FUSE filesystem, else None."""
    m = mount_for(path, mounts)
    return m if m is not None and is_network_fs(m.fstype) else None
