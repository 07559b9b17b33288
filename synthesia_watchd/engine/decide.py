"""Whether a file's work is already paid for: the one decision the engine and ``--dry-run``
share (reuse identical earlier outputs, or adopt outputs already on disk)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from synthesia_watchd.files import adopt, atomic
from synthesia_watchd.stores.ledger import Job, LedgerStore, Output


def reusable_twin(
    ledger: LedgerStore,
    sha256: str,
    source_language: str,
    targets: Sequence[str],
    kinds: Sequence[str],
    *,
    not_job: int | None = None,
) -> tuple[Job, dict[tuple[str, str], Output]] | None:
    """An earlier done job with the same bytes, language, targets and output kinds whose every
    output still holds exactly the bytes it recorded, with those outputs; else None."""
    twin = ledger.find_reusable(sha256, source_language, targets, list(kinds))
    if twin is None or twin.id == not_job:
        return None
    outs = {(o.language, o.kind): o for o in ledger.outputs(twin.id)}
    for key in ((t, k) for t in targets for k in kinds):
        prev = outs.get(key)
        if prev is None or not prev.path or not prev.sha256:
            return None
        try:
            if atomic.file_sha256(Path(prev.path)) != prev.sha256:
                return None  # edited or replaced since: not reused
        except OSError:
            return None  # the earlier outputs are gone: dub again
    return twin, outs


def adoptable(
    ledger: LedgerStore | None,
    wanted: Mapping[tuple[str, str], Path],
    source_mtime_ns: int,
    *,
    job_id: int | None = None,
) -> list[adopt.Found] | None:
    """Every wanted output already on disk and newer than the source, and none of them the
    ledger's output of another job: what to adopt, else None."""
    return adopt.existing_outputs(
        wanted,
        source_mtime_ns,
        # Another worker may be adopting this very job: its own rows do not count.
        lambda path, sha: (
            ledger is not None and ledger.output_written_by(str(path), sha) not in (None, job_id)
        ),
    )
