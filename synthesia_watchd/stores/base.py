"""What every ledger backend stores and the operations it offers, typed.

The engine, the CLI and the tools see only `LedgerStore`: domain operations (add a job,
compare-and-set its state, record an output, answer the scheduler's questions), never SQL
or a driver's exceptions. Field writes are typed (`JobFields`), checked at runtime as well,
so a misspelt column is a type error and a secret in the settings is refused before it
reaches any backend.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypedDict

from synthesia_watchd.domain.errors import StaleTransition
from synthesia_watchd.domain.names import from_db, printable, to_db
from synthesia_watchd.domain.outputs import KIND_EXTENSIONS
from synthesia_watchd.domain.states import JobState, OutputState

#: Output kinds a job can produce per target language.
KINDS: frozenset[str] = frozenset(KIND_EXTENSIONS)

#: Every column of the jobs table, in the order the backends select them.
JOB_COLUMNS = (
    "id",
    "watch",
    "source_path",
    "size",
    "mtime_ns",
    "sha256",
    "source_language",
    "detected_language",
    "targets",
    "state",
    "attempts",
    "next_attempt_at",
    "asset_id",
    "project_id",
    "submit_started_at",
    "last_error",
    "last_error_context",
    "output_dir",
    "settings",
    "created_at",
    "updated_at",
    "state_changed_at",
    "duration_s",
    "reason_code",
    "lease_node",
    "lease_until",
)


class JobFields(TypedDict, total=False):
    """The job fields a transition or an update may write, with their types.

    Identity (id, watch, source_path), the state and the bookkeeping timestamps are the
    store's own and cannot be written this way.
    """

    size: int
    mtime_ns: int
    sha256: str | None
    source_language: str
    detected_language: str | None
    targets: Sequence[str]
    attempts: int
    next_attempt_at: float
    asset_id: str | None
    project_id: str | None
    submit_started_at: float | None
    last_error: str | None
    last_error_context: str | None
    output_dir: str
    settings: Mapping[str, Any]
    duration_s: float | None
    #: The typed code (``reasons.Reason`` value) of why; also written on the event.
    reason_code: str | None


#: Columns ``transition``/``update`` may write.
UPDATABLE: frozenset[str] = frozenset(JobFields.__annotations__)

#: Setting names that would smuggle a secret into the ledger; refused outright.
_SECRET_KEYS = frozenset(
    {
        "api_key",
        "apikey",
        "authorization",
        "password",
        "secret_access_key",
        "aws_secret_access_key",
        "session_token",
        "aws_session_token",
    }
)


#: The first schema step's statements that read the same in every backend's SQL (the tables
#: before them differ in their column types).
FIRST_TABLES_AND_INDEXES: tuple[str, ...] = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE INDEX jobs_state_due ON jobs (state, next_attempt_at)",
    "CREATE INDEX jobs_sha256 ON jobs (sha256)",
    "CREATE INDEX jobs_watch_path ON jobs (watch, source_path)",
    "CREATE INDEX events_job ON events (job_id, id)",
    "CREATE INDEX events_to_state_at ON events (to_state, at)",
)


@dataclass(frozen=True)
class Job:
    """One source file version and where its dub stands."""

    id: int
    watch: str
    source_path: str
    size: int
    mtime_ns: int
    sha256: str | None
    source_language: str
    detected_language: str | None
    targets: tuple[str, ...]
    state: JobState
    attempts: int
    next_attempt_at: float
    asset_id: str | None
    project_id: str | None
    submit_started_at: float | None
    last_error: str | None
    last_error_context: str | None
    output_dir: str
    #: Options frozen at job creation, so in-flight jobs keep what they started with.
    settings: Mapping[str, Any] = field(hash=False)
    created_at: float
    updated_at: float
    state_changed_at: float
    #: Seconds of video, parsed from the file's container (None: not parsed or unknown).
    duration_s: float | None = None
    #: The typed code (``reasons.Reason`` value) of the last transition that gave a reason.
    reason_code: str | None = None
    #: The node working on the job, and until when (None: free to claim).
    lease_node: str | None = None
    lease_until: float | None = None


@dataclass(frozen=True)
class Output:
    """One (language, kind) output of a job."""

    job_id: int
    language: str
    kind: str
    state: OutputState
    path: str | None
    bytes: int | None
    sha256: str | None
    error_code: str | None
    dubbed_asset_id: str | None
    updated_at: float = 0.0


@dataclass(frozen=True)
class Event:
    """One line of a job's history; ``from_state == to_state`` for notes and retries."""

    id: int
    job_id: int
    at: float
    from_state: str | None
    to_state: str | None
    why: str
    reason_code: str | None = None


def states_of(states: JobState | str | Iterable[JobState | str]) -> tuple[JobState, ...]:
    """One state or several, as a tuple of JobState."""
    # A JobState is a str and so iterable: a single state must be caught first.
    if isinstance(states, str):
        return (JobState(states),)
    return tuple(JobState(s) for s in states)


def _check_no_secrets(value: Any, where: str = "settings") -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            if str(k).lower().replace("-", "_") in _SECRET_KEYS:
                raise ValueError(f"{where}.{k}: secrets are never stored in the ledger")
            _check_no_secrets(v, f"{where}.{k}")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _check_no_secrets(v, f"{where}[{i}]")


def encode_targets(targets: Sequence[str]) -> str:
    """Targets as stored: a JSON list, de-duplicated in order; empty or one string refused."""
    if isinstance(targets, str):
        raise ValueError("targets must be a sequence of language codes, not one string")
    clean = list(dict.fromkeys(str(t) for t in targets))  # de-duplicated, order kept
    if not clean or any(not t for t in clean):
        raise ValueError("targets must name at least one language, none of them empty")
    return json.dumps(clean)


def encode_settings(settings: Mapping[str, Any] | None) -> str:
    """Settings as stored: sorted JSON; a secret anywhere inside is refused."""
    settings = {} if settings is None else settings
    if not isinstance(settings, Mapping):
        raise ValueError("settings must be a mapping")
    _check_no_secrets(settings)
    return json.dumps(dict(settings), sort_keys=True)


def encode_fields(fields: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """Checked (column, stored value) pairs; unknown or identity columns are refused."""
    unknown = sorted(set(fields) - UPDATABLE)
    if unknown:
        raise ValueError(
            f"not updatable job fields: {', '.join(unknown)} "
            f"(allowed: {', '.join(sorted(UPDATABLE))})"
        )
    pairs = []
    for name, value in fields.items():
        if name == "targets":
            value = encode_targets(value)
        elif name == "settings":
            value = encode_settings(value)
        elif name == "output_dir":
            value = to_db(value)
        elif isinstance(value, str):
            value = printable(value)  # an error text may quote a name that is not UTF-8
        pairs.append((name, value))
    return pairs


def text(value: str | None) -> str | None:
    """Free text for a TEXT column: a name in it that is not UTF-8 is shown escaped."""
    return None if value is None else printable(value)


def job_from_row(row: Mapping[str, Any]) -> Job:
    """A Job from a row of JOB_COLUMNS."""
    d = dict(row)
    d["source_path"] = from_db(d["source_path"])
    d["output_dir"] = from_db(d["output_dir"])
    d["targets"] = tuple(json.loads(d["targets"]))
    d["settings"] = MappingProxyType(json.loads(d["settings"]))
    d["state"] = JobState(d["state"])
    return Job(**d)


def output_from_row(row: Mapping[str, Any]) -> Output:
    """An Output from a row of the outputs table."""
    d = dict(row)
    if d["path"] is not None:
        d["path"] = from_db(d["path"])
    d["state"] = OutputState(d["state"])
    return Output(**d)


def stale(job_id: int, found: JobState, allowed: Sequence[JobState], new: JobState | None) -> None:
    """Raise the StaleTransition that explains why a compare-and-set did not apply."""
    if found not in allowed:
        action = "update refused" if new is None else f"refusing to move it to {new.value}"
        raise StaleTransition(
            f"job {job_id} is {found.value}, not {'/'.join(s.value for s in allowed)}; {action}"
        )
    assert new is not None
    raise StaleTransition(
        f"job {job_id}: {found.value} -> {new.value} is not an allowed transition"
    )


@dataclass(frozen=True)
class Node:
    """One daemon host sharing the ledger, as its last heartbeat told."""

    name: str
    started_at: float
    heartbeat_at: float
    pid: int | None
    version: str | None
    #: Jobs whose lease this node holds now.
    claimed: int = 0


@dataclass(frozen=True)
class Lease:
    """A claim's holder: writes made under it apply only while the node still holds it."""

    node: str
    until: float
