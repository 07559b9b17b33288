"""What a stage decided, as plain values; ``apply.apply`` is the one place that writes them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from synthesia_watchd.domain.reasons import Reason
from synthesia_watchd.domain.states import JobState, OutputState


@dataclass(frozen=True)
class OutputRow:
    """One (language, kind) output row to write, with its columns."""

    language: str
    kind: str
    state: OutputState
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Move:
    """A transition from the job's current state; ``run_next``: the next stage may run at
    once in this worker (the upload right after its asset was created)."""

    to: JobState
    why: str
    code: Reason | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)
    outputs: tuple[OutputRow, ...] = ()
    run_next: bool = False
    #: What to do once the move is written (re-plan the other jobs' polls), if anything.
    after: Callable[[], object] | None = None


@dataclass(frozen=True)
class Wait:
    """Come back at ``until``; nothing is wrong (a slot, a twin, Synthesia still working)."""

    until: float


@dataclass(frozen=True)
class Hold:
    """Wait without using a retry (key, rate limit, space, budget, an unreachable folder)."""

    until: float
    code: Reason
    message: str


@dataclass(frozen=True)
class Retry:
    """Try the step again at ``until``, counting one attempt."""

    until: float
    code: Reason
    message: str


@dataclass(frozen=True)
class InternalError:
    """A bug or an odd error: retried up to the lifecycle's cap, then failed."""

    until: float
    message: str


@dataclass(frozen=True)
class FreshAsset:
    """Upload credentials expired: start over with a new asset (capped)."""

    message: str


@dataclass(frozen=True)
class Vanished:
    """The source disappeared before it was uploaded."""

    during: str = ""


@dataclass(frozen=True)
class Fail:
    """The job ends failed; the on_failure post-action runs."""

    code: Reason
    message: str
    context: str | None = None


@dataclass(frozen=True)
class NeedsAttention:
    """The job waits for a person."""

    code: Reason
    message: str
    context: str | None = None


@dataclass(frozen=True)
class AutoResubmit:
    """``on_ambiguous_submit: retry``: submit again."""


@dataclass(frozen=True)
class Settled:
    """Done without an API call: earlier outputs reused or files on disk adopted."""

    code: Reason
    why: str
    outputs: tuple[OutputRow, ...]


@dataclass(frozen=True)
class Finished:
    """Every output written and verified: the job is done (the on_success post-action runs)."""

    why: str


Outcome = (
    Move
    | Wait
    | Hold
    | Retry
    | InternalError
    | FreshAsset
    | Vanished
    | Fail
    | NeedsAttention
    | AutoResubmit
    | Settled
    | Finished
    | None
)
