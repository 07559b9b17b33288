"""Dubbed files already on disk are adopted, not paid for again.

After a ledger was lost and started afresh, or when a folder dubbed by a one-off script is
put under the daemon, the outputs of many sources already sit at their output names. A file
is adopted only when *every* output it asks for is there, is a non-empty regular file newer
than the source, and is not an output the ledger records for some job (an earlier version of
the source, or another source with the same stem): those are the daemon's own, and the
normal rules for replacing them apply.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .atomic import file_sha256

#: The reason recorded on an adopted job (``show JOB``, the log).
ADOPTED = "adopted existing outputs"


@dataclass(frozen=True)
class Found:
    """One output already on disk, as the ledger records it."""

    language: str
    kind: str
    path: Path
    sha256: str
    size: int


def existing_outputs(
    wanted: Mapping[tuple[str, str], Path],
    source_mtime_ns: int,
    known: Callable[[Path, str], bool],
) -> list[Found] | None:
    """The outputs to adopt for a source, or None when any one of them is not adoptable.

    ``wanted`` maps (language, kind) to its output path; ``known(path, sha256)`` says the
    ledger already records that file as some job's output. Names are checked with stat first,
    so a source with nothing on disk costs one stat per output; only then are files hashed.
    """
    if not wanted:
        return None
    sizes: dict[tuple[str, str], int] = {}
    for key, path in wanted.items():
        try:
            st = os.stat(path)
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode) or st.st_size == 0 or st.st_mtime_ns <= source_mtime_ns:
            return None
        sizes[key] = st.st_size
    found = []
    for (language, kind), path in wanted.items():
        try:
            digest = file_sha256(path)
        except OSError:
            return None
        if known(path, digest):
            return None
        found.append(Found(language, kind, path, digest, sizes[(language, kind)]))
    return found
