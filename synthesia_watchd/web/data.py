"""What the console shows and may do, as plain data over the ledger and the running daemon.

No web library is imported here: pages and API endpoints render these dicts, and every
state change goes through ``lifecycle`` (this module never writes the ledger itself).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthesia_watchd.config.load import Config
from synthesia_watchd.domain.control import Gate
from synthesia_watchd.domain.estimate import expected_dub_seconds
from synthesia_watchd.domain.states import ACTIVE, JobState, OutputState
from synthesia_watchd.engine import lifecycle
from synthesia_watchd.engine.jobspec import local_midnight
from synthesia_watchd.service.ledgerviews import job_dict, show_data, status_data
from synthesia_watchd.stores import noderecords
from synthesia_watchd.stores.ledger import Job, LedgerStore, Output

_WINDOW_NAMES = {60.0: "minute", 3600.0: "hour", 86400.0: "day"}
#: Jobs per page of the jobs list.
PAGE_SIZE = 50
#: Rows per page of the failures and needs-attention lists ("older" links reach the rest).
LIST_PAGE_SIZE = 100


@dataclass
class Console:
    """The daemon's parts the console reads, and the few it may poke.

    Built by the daemon; tests build one over a real ledger with plain callables.
    """

    ledger: LedgerStore
    config: Callable[[], Config]
    #: Each watch's live status (mode, root pause, settling files) as dicts.
    watches: Callable[[], list[dict[str, Any]]] = list
    gate: Callable[[], Gate] = Gate
    #: API-wide pauses (auth, budget) with their reasons.
    pauses: Callable[[], Mapping[str, str]] = dict
    #: Hand a file to a watch (the push API); returns None when accepted, else why not.
    offer: Callable[[str, Path], str | None] = lambda _w, _p: "no daemon is running"
    #: Wake the daemon's loop after a change, so it acts within a pass.
    wake: Callable[[], None] = lambda: None
    now: Callable[[], float] = time.time
    #: Requests counted per rate window (RateLimiter.usage), when the daemon reports it.
    rate_usage: Callable[[], list[dict[str, Any]]] = list
    #: Live upload progress per job id (0..1), when the daemon reports it.
    progress: Callable[[], Mapping[int, float]] = dict
    extra: dict[str, Any] = field(default_factory=dict)


def overview(console: Console) -> dict[str, Any]:
    """The overview page: watches, holds, counts, today's usage against the limits."""
    cfg = console.config()
    gate = console.gate()
    live = {w["name"]: w for w in console.watches()}
    holds = lifecycle.holds_data(console.ledger)
    watches = []
    for w in cfg.watches:
        status = live.get(w.name, {})
        watches.append(
            {
                "name": w.name,
                "mode": status.get("mode", w.mode),
                "input": str(w.input),
                "root_paused": status.get("paused", False),
                "root_reason": status.get("pause_reason"),
                "settling": status.get("pending", 0),
                # The ledger's holds are read now (the daemon's gate may be a pass behind).
                "held": _hold_mode(holds, w.name) or gate.why.get(w.name),
                "own_hold": holds["watches"].get(w.name),
                "schedule": list(w.schedule),
                "targets": list(w.targets),
            }
        )
    jobs, nbytes = console.ledger.usage_since(local_midnight(console.now()))
    return {
        "watches": watches,
        "holds": holds,
        "pauses": dict(console.pauses()),
        "counts": console.ledger.counts(),
        "usage": {
            "jobs": jobs,
            "bytes": nbytes,
            "max_jobs": cfg.max_jobs_per_day,
            "max_bytes": cfg.max_bytes_per_day,
        },
        "rate_limits": {
            cls: {"per_minute": s.per_minute, "per_hour": s.per_hour, "per_day": s.per_day}
            for cls, s in cfg.rate_limits.items()
        },
        "rate_usage": [
            {**row, "window": _WINDOW_NAMES.get(float(row["seconds"]), f"{row['seconds']:g}s")}
            for row in console.rate_usage()
            if row["used"]
        ],
        "tier": cfg.api_tier,
        "node": {"ledger": cfg.ledger.name},
        "nodes": _nodes(console),
    }


def _nodes(console: Console) -> list[dict[str, Any]]:
    """The nodes sharing the ledger: heartbeat, claims, and each one's own status record."""
    now = console.now()
    found = noderecords.records(console.ledger)
    return [
        {
            **noderecords.summary(found.get(n.name, {}), now),
            "name": n.name,
            "heartbeat_age": round(now - n.heartbeat_at),
            "claimed": n.claimed,
        }
        for n in console.ledger.nodes(now)
    ]


def _hold_mode(holds: Mapping[str, Any], watch: str) -> str | None:
    for hold in (holds["all"], holds["watches"].get(watch)):
        if hold is not None and hold["mode"] == "pause":
            return "pause"
    for hold in (holds["all"], holds["watches"].get(watch)):
        if hold is not None:
            return str(hold["mode"])
    return None


def chips(outputs: Sequence[Output], targets: Sequence[str]) -> list[dict[str, str]]:
    """One chip per target language: its state over all output kinds (worst wins)."""
    order = [OutputState.FAILED, OutputState.PENDING, OutputState.DONE]
    out = []
    for lang in targets:
        states = {o.state for o in outputs if o.language == lang}
        state = next((s.value for s in order if s in states), "waiting")
        out.append({"language": lang, "state": state})
    return out


def dub_history(console: Console) -> list[tuple[float | None, float]]:
    """Recent dubs' (video seconds, dubbing seconds), for the per-job estimate."""
    return console.ledger.dub_history(limit=50)


def job_row(
    console: Console,
    job: Job,
    outputs: Sequence[Output],
    history: Sequence[tuple[float | None, float]] = (),
) -> dict[str, Any]:
    """One line of the jobs list, with what moves: state age, upload share, languages."""
    now = console.now()
    age = max(now - job.state_changed_at, 0.0)
    row: dict[str, Any] = {
        "id": job.id,
        "watch": job.watch,
        "file": Path(job.source_path).name,
        "state": job.state.value,
        "active": job.state in ACTIVE,
        "age_seconds": age,
        "attempts": job.attempts,
        "last_error": job.last_error,
        "chips": chips(outputs, job.targets),
        "upload": console.progress().get(job.id),
        "project_id": job.project_id,
        "estimate_left": None,
    }
    if job.state is JobState.DUBBING and history:
        expected = expected_dub_seconds(history, job.duration_s)
        row["estimate_left"] = max(expected - age, 0.0)
    return row


def jobs_page(
    console: Console,
    *,
    states: Sequence[JobState] | None = None,
    watch: str | None = None,
    page: int = 0,
) -> dict[str, Any]:
    """A page of the jobs list, newest first, filtered by state and watch."""
    ledger = console.ledger
    jobs = ledger.list_jobs(
        states=states, watch=watch or None, limit=PAGE_SIZE + 1, offset=page * PAGE_SIZE
    )
    history = dub_history(console)
    rows = [job_row(console, j, ledger.outputs(j.id), history) for j in jobs[:PAGE_SIZE]]
    return {"rows": rows, "page": page, "more": len(jobs) > PAGE_SIZE}


def _page_of(
    console: Console, states: Sequence[JobState], page: int
) -> tuple[list[Job], dict[str, Any]]:
    """One page (newest first) of the jobs in ``states``, and where it sits among them all."""
    jobs = console.ledger.list_jobs(
        states=states, limit=LIST_PAGE_SIZE + 1, offset=page * LIST_PAGE_SIZE
    )
    first = page * LIST_PAGE_SIZE
    shown = jobs[:LIST_PAGE_SIZE]
    where = {
        "page": page,
        "more": len(jobs) > LIST_PAGE_SIZE,
        "total": console.ledger.count_in(states),
        "first": first + 1 if shown else first,
        "last": first + len(shown),
    }
    return shown, where


def explain(job: Job) -> dict[str, Any]:
    """Why a job waits for a human and what each button would do (the needs_attention view)."""
    if job.submit_started_at is not None and not job.project_id:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(job.submit_started_at))
        return {
            "why": f"The dubbing request was sent at {when}, but its answer never arrived "
            "(the daemon stopped or the connection broke). Synthesia may have started, and "
            "billed, a project. Look for it in your Synthesia workspace first.",
            "retry": None,
            "resubmit": "Submit again. If Synthesia did start the first project, you pay twice.",
            "cancel": "Give up on this file; nothing more is sent.",
        }
    if job.project_id:
        return {
            "why": job.last_error_context or job.last_error or "the job stopped",
            "retry": f"Poll project {job.project_id} again and download its results "
            "(no new charge).",
            "resubmit": None,
            "cancel": "Stop here; Synthesia keeps the project.",
        }
    return {
        "why": job.last_error_context or job.last_error or "the job stopped",
        "retry": "Start this file over (nothing was paid for it yet).",
        "resubmit": None,
        "cancel": "Give up on this file.",
    }


def job_detail(console: Console, job_id: int) -> dict[str, Any]:
    """Everything about one job: fields, outputs, history, what the operator may do."""
    ledger = console.ledger
    job = ledger.get(job_id)
    outs = ledger.outputs(job.id)
    data = show_data(job, outs, ledger.events(job.id))
    data["file"] = Path(job.source_path).name
    data["row"] = job_row(console, job, outs, dub_history(console))
    data["can_retry"] = job.state not in (JobState.DONE,)
    data["can_cancel"] = lifecycle.can_cancel(job)
    data["explain"] = explain(job) if job.state is JobState.NEEDS_ATTENTION else None
    return data


def attention(console: Console, page: int = 0) -> dict[str, Any]:
    """A page of the jobs waiting for a human, with the explanation of each decision."""
    jobs, view = _page_of(console, (JobState.NEEDS_ATTENTION,), page)
    view["rows"] = [
        {**job_row(console, j, console.ledger.outputs(j.id)), "explain": explain(j)} for j in jobs
    ]
    return view


def failures(console: Console, page: int = 0) -> dict[str, Any]:
    """A page of the failed and partial jobs, newest first, with their errors."""
    ledger = console.ledger
    jobs, view = _page_of(console, (JobState.FAILED, JobState.PARTIAL), page)
    out = []
    for j in jobs:
        outs = ledger.outputs(j.id)
        row = job_row(console, j, outs)
        row["errors"] = [
            f"{o.language} {o.kind}: {o.error_code}"
            for o in outs
            if o.state is OutputState.FAILED and o.error_code
        ]
        row["context"] = j.last_error_context
        out.append(row)
    view["rows"] = out
    return view


# --- the API's JSON, the same as the CLI's --json ----------------------------------------------


def api_status(console: Console) -> dict[str, Any]:
    """What ``status --json`` prints."""
    return status_data(console.ledger, console.now())


def api_jobs(
    console: Console, *, states: Sequence[JobState] | None, watch: str | None, limit: int
) -> list[dict[str, Any]]:
    """What ``jobs --json`` prints."""
    return [job_dict(j) for j in console.ledger.list_jobs(states=states, watch=watch, limit=limit)]


def api_show(console: Console, job_id: int) -> dict[str, Any]:
    """What ``show --json`` prints; KeyError when there is no such job."""
    ledger = console.ledger
    job = ledger.get(job_id)
    return show_data(job, ledger.outputs(job.id), ledger.events(job.id))
