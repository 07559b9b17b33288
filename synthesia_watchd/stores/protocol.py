"""`LedgerStore`: the ledger as the engine and the commands use it, whatever stores it."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Protocol, Self, Unpack

from synthesia_watchd.domain.states import JobState, OutputState

from .base import Event, Job, JobFields, Lease, Node, Output


class LedgerStore(Protocol):
    """The job ledger as the engine and the commands use it, whatever stores it.

    Every write is one transaction; ``transition`` and ``update`` are compare-and-set on the
    job's state (StaleTransition when another worker, node or the operator moved it first).
    A missing job is KeyError; a store that cannot be reached is LedgerError.
    """

    #: Where the ledger lives, for people (a file path, or a URL without its password).
    location: str

    def close(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
    @property
    def schema_version(self) -> int: ...

    # writes
    def add_job(
        self,
        *,
        watch: str,
        source_path: str,
        size: int,
        mtime_ns: int,
        sha256: str | None,
        source_language: str,
        targets: Sequence[str],
        output_dir: str,
        settings: Mapping[str, Any] | None = None,
        kinds: Sequence[str] = ("video",),
        state: JobState = JobState.QUEUED,
        why: str = "discovered",
        last_error: str | None = None,
        duration_s: float | None = None,
        reason_code: str | None = None,
    ) -> Job: ...
    def transition(
        self,
        job_id: int,
        expected: JobState | Iterable[JobState],
        new: JobState,
        *,
        why: str,
        lease: Lease | None = None,
        **fields: Unpack[JobFields],
    ) -> Job: ...
    def update(
        self,
        job_id: int,
        *,
        expected: JobState | Iterable[JobState],
        why: str | None = None,
        lease: Lease | None = None,
        **fields: Unpack[JobFields],
    ) -> Job: ...
    def note(self, job_id: int, why: str, code: str | None = None) -> None: ...
    def set_output(
        self,
        job_id: int,
        language: str,
        kind: str = "video",
        *,
        state: OutputState,
        path: str | None = None,
        bytes: int | None = None,
        sha256: str | None = None,
        error_code: str | None = None,
        dubbed_asset_id: str | None = None,
    ) -> None: ...
    def set_meta(self, key: str, value: str | None) -> None: ...

    # reads
    def get(self, job_id: int) -> Job: ...
    def find_job(self, watch: str, source_path: str, size: int, mtime_ns: int) -> Job | None: ...
    def jobs_for_path(
        self, watch: str, source_path: str, states: Iterable[JobState] | None = None
    ) -> list[Job]: ...
    def jobs_with_hash(
        self, sha256: str, states: Iterable[JobState] | None = None
    ) -> list[Job]: ...
    def find_reusable(
        self,
        sha256: str,
        source_language: str,
        targets: Sequence[str],
        kinds: Sequence[str] = ("video",),
    ) -> Job | None: ...
    def due(
        self,
        states: Iterable[JobState],
        now: float,
        limit: int = 100,
        exclude_ids: Collection[int] = (),
        exclude_watches: Collection[str] = (),
    ) -> list[Job]: ...
    def next_due_at(
        self, states: Iterable[JobState], after: float | None = None
    ) -> float | None: ...
    def count_in(self, states: Iterable[JobState]) -> int: ...
    def counts(self) -> dict[str, int]: ...
    def list_jobs(
        self,
        *,
        states: Iterable[JobState] | None = None,
        watch: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Job]: ...
    def outputs(self, job_id: int) -> list[Output]: ...
    def output_written_by(self, path: str, sha256: str) -> int | None: ...
    def events(self, job_id: int) -> list[Event]: ...
    def count_reasons(self, job_id: int, codes: Collection[str]) -> int: ...
    def state_changes_after(
        self, event_id: int, to_states: Iterable[JobState], limit: int = 100
    ) -> list[Event]: ...
    def last_event_id(self) -> int: ...
    def usage_since(self, since: float) -> tuple[int, int]: ...
    def unrecorded_submits_since(
        self, since: float, exclude_ids: Collection[int] = ()
    ) -> tuple[int, int]: ...
    def dub_history(self, limit: int = 200) -> list[tuple[float | None, float]]: ...
    def oldest_queued_at(self) -> float | None: ...
    def get_meta(self, key: str) -> str | None: ...

    # several nodes
    def claim(
        self,
        states: Iterable[JobState],
        now: float,
        node: str,
        until: float,
        limit: int = 100,
        exclude_ids: Collection[int] = (),
        exclude_watches: Collection[str] = (),
    ) -> list[Job]: ...
    def renew(self, node: str, job_ids: Collection[int], until: float) -> int: ...
    def release(self, node: str, job_ids: Collection[int]) -> None: ...
    def beat(self, node: str, now: float, *, pid: int | None, version: str | None) -> None: ...
    def nodes(self, now: float) -> list[Node]: ...

    # shared request windows
    def reserve_request(
        self,
        limit_class: str,
        endpoint: str,
        now: float,
        windows: Sequence[tuple[int, float]],
        *,
        node: str | None = None,
        margin: float = 0.0,
    ) -> float: ...
    def hold_requests_until(self, until: float) -> None: ...
    def requests_held_until(self) -> float: ...
    def api_reads_since(self, endpoint: str, since: float) -> dict[int, int]: ...

    # work one node at a time does; each node's status record
    def take_runner(self, name: str, node: str, now: float, until: float) -> str | None: ...
    def renew_runners(self, node: str, until: float) -> None: ...
    def drop_runner(self, name: str, node: str) -> None: ...
    def set_node_status(self, node: str, now: float, status: str) -> None: ...
    def node_statuses(self) -> dict[str, str]: ...

    # maintenance
    def integrity_check(self) -> str: ...
    def checkpoint(self) -> None: ...
