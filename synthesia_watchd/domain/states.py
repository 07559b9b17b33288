"""Job states and the transitions allowed between them (pure, no I/O).

Stored as text in the ledger; ``Ledger.transition`` refuses anything not in ``TRANSITIONS`` by
compare-and-set on the expected current state.
"""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    """Where a job is in the dub pipeline."""

    QUEUED = "queued"  # stable file recorded; nothing sent yet
    ASSET_CREATED = "asset_created"  # POST /v2/assets answered; credentials in hand
    UPLOADED = "uploaded"  # S3 multipart upload completed
    DUBBING = "dubbing"  # POST /v2/dubbing answered 202; project id recorded
    DOWNLOADING = "downloading"  # project complete; fetching each language
    DONE = "done"  # every asked language written and verified
    PARTIAL = "partial"  # some languages written, the rest failed at Synthesia
    FAILED = "failed"  # permanent failure, reason in last_error
    NEEDS_ATTENTION = "needs_attention"  # ambiguous submit or similar: a human decides
    CANCELLED = "cancelled"  # source vanished or operator cancelled


class OutputState(StrEnum):
    """State of one target language of a job."""

    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


TERMINAL: frozenset[JobState] = frozenset(
    {JobState.DONE, JobState.PARTIAL, JobState.FAILED, JobState.NEEDS_ATTENTION, JobState.CANCELLED}
)

#: States whose work is pending at Synthesia or on our side and that the scheduler drives.
ACTIVE: frozenset[JobState] = frozenset(
    {
        JobState.QUEUED,
        JobState.ASSET_CREATED,
        JobState.UPLOADED,
        JobState.DUBBING,
        JobState.DOWNLOADING,
    }
)

#: States in which Synthesia holds a project for us (bounded by workers.max_active_jobs).
IN_FLIGHT: frozenset[JobState] = frozenset({JobState.DUBBING, JobState.DOWNLOADING})

_FAIL_OR_STOP = {JobState.FAILED, JobState.NEEDS_ATTENTION, JobState.CANCELLED}

TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    # queued -> done directly when identical content was already dubbed (no API call).
    JobState.QUEUED: frozenset({JobState.ASSET_CREATED, JobState.DONE, *_FAIL_OR_STOP}),
    # asset_created -> queued: the credentials expired, start over with a fresh asset.
    JobState.ASSET_CREATED: frozenset({JobState.UPLOADED, JobState.QUEUED, *_FAIL_OR_STOP}),
    JobState.UPLOADED: frozenset({JobState.DUBBING, JobState.QUEUED, *_FAIL_OR_STOP}),
    JobState.DUBBING: frozenset({JobState.DOWNLOADING, JobState.PARTIAL, *_FAIL_OR_STOP}),
    JobState.DOWNLOADING: frozenset(
        {JobState.DONE, JobState.PARTIAL, JobState.DUBBING, *_FAIL_OR_STOP}
    ),
    # done -> downloading: backfill of new targets on the same project (PUT /v2/dubbing/{id}).
    JobState.DONE: frozenset({JobState.DUBBING}),
    # retry: partial re-polls the failed languages; failed/needs_attention/cancelled start over
    # from the last durable step the operator chose.
    JobState.PARTIAL: frozenset({JobState.DUBBING, JobState.DONE}),
    JobState.FAILED: frozenset(
        {JobState.QUEUED, JobState.ASSET_CREATED, JobState.UPLOADED, JobState.DUBBING}
    ),
    JobState.NEEDS_ATTENTION: frozenset(
        {JobState.QUEUED, JobState.UPLOADED, JobState.DUBBING, JobState.FAILED, JobState.CANCELLED}
    ),
    JobState.CANCELLED: frozenset({JobState.QUEUED, JobState.UPLOADED, JobState.DUBBING}),
}


def can_transition(src: JobState, dst: JobState) -> bool:
    """Whether the state machine allows ``src -> dst``."""
    return dst in TRANSITIONS.get(src, frozenset())
