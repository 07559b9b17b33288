"""The commands that read and never write: `status`, `jobs`, `show` (the ledger, through
``ledgerviews``) and `health` (the heartbeat file)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from synthesia_watchd.config.load import load_config
from synthesia_watchd.domain.states import TERMINAL, JobState
from synthesia_watchd.engine.progress import duration_text as _age
from synthesia_watchd.engine.progress import progress_text
from synthesia_watchd.service.ledgerviews import job_dict, show_data, status_data
from synthesia_watchd.stores import runtime

from .common import ExitStatus, echo
from .locate import find_config, open_existing_ledger


def cmd_status(args: argparse.Namespace) -> int:
    """The daemon, its nodes, pauses and holds, watches, and jobs by state."""
    with open_existing_ledger(args) as ledger:
        data = status_data(ledger)
    if args.json:
        echo(json.dumps(data, indent=2))
        return ExitStatus.OK
    _show_daemon(data)
    _show_alerts(data)
    _show_watches(data["watches"])
    _show_jobs(data)
    return ExitStatus.OK


def _show_daemon(data: dict[str, Any]) -> None:
    """Whether the daemon runs, each node sharing the ledger, and the API-wide pauses."""
    d = data["daemon"]
    if d["running"]:
        echo(f"daemon: running (pid {d['pid']}, heartbeat {d['heartbeat_age_seconds']}s ago)")
    elif d.get("stopped_cleanly") and d["heartbeat_age_seconds"] is not None:
        echo(f"daemon: not running (stopped cleanly {_age(d['heartbeat_age_seconds'])} ago)")
    else:
        echo(
            "daemon: not running"
            + (
                f" (last heartbeat {_age(d['heartbeat_age_seconds'])} ago)"
                if d["heartbeat_age_seconds"] is not None
                else ""
            )
        )
    for line in _node_lines(data):
        echo(line)


def _node_lines(data: dict[str, Any]) -> list[str]:
    """Each node sharing the ledger and its pauses (one node: its pauses only)."""
    if not data["shared"] and len(data["nodes"]) < 2:
        return [f"PAUSED ({kind}): {reason}" for kind, reason in data["paused"].items()]
    lines = []
    for n in data["nodes"]:
        state = f"running (pid {n['pid']})" if n["running"] else "not running"
        lines.append(
            f"node {n['name']}: heartbeat {_age(n['heartbeat_age_seconds'])} ago, "
            f"{n['claimed']} job(s) claimed, {state}"
        )
        lines += [f"PAUSED ({k}) on {n['name']}: {why}" for k, why in n["paused"].items()]
    return lines


def _show_alerts(data: dict[str, Any]) -> None:
    """The read budget, a stalled scan and the operator's holds."""
    reads = data.get("reads")
    if reads:
        limit = f"of {reads['per_day']:,} a day" if reads.get("per_day") else "(no day limit)"
        echo(f"status reads in the last 24 h: {reads['last_24h']:,} {limit}")
    if data.get("fs_stuck_seconds"):
        echo(
            f"SCANNING STALLED: a filesystem call has hung for {_age(data['fs_stuck_seconds'])} "
            "(a dead NFS/SMB mount?); new files are not seen until it answers"
        )
    holds = data["holds"]
    for name, hold in [("all watches", holds["all"]), *holds["watches"].items()]:
        if hold:
            echo(f"{hold['mode'].upper()}: {name} ({hold['reason']}; `resume` lifts it)")


def _show_watches(watches: list[dict[str, Any]]) -> None:
    """Each watch's mode, pause, held work, settling and incomplete files."""
    for w in watches:
        line = f"watch {w['name']}: {w['mode']}"
        if w.get("paused"):
            line += f", PAUSED: {w.get('pause_reason')}"
        if w.get("held"):
            line += f", holding new work ({w['held']})"
        if w.get("pending"):
            line += f", {w['pending']} file(s) settling"
        echo(line)
        for held in w.get("incomplete", []):
            age = _age(max(time.time() - float(held.get("since", 0)), 0))
            echo(
                f"  INCOMPLETE {held['file']} (for {age}): {held['detail']}; re-checked when it "
                "changes, failed after incomplete_timeout without a change"
            )


def _show_jobs(data: dict[str, Any]) -> None:
    """Job counts, the oldest queued job, active jobs, and the ones that need a person."""
    counts = data["counts"]
    echo(
        "jobs: " + ", ".join(f"{k} {v}" for k, v in counts.items() if v)
        if any(counts.values())
        else "jobs: none yet"
    )
    if data["oldest_queued_age_seconds"] is not None:
        echo(f"oldest queued: {_age(data['oldest_queued_age_seconds'])}")
    for j in data["active"]:
        extra = f"  (attempt {j['attempts']}: {j['last_error']})" if j["last_error"] else ""
        lang = f" [{j['detected_language']}]" if j.get("detected_language") else ""
        mins = f" ({j['video_minutes']} video min)" if j.get("video_minutes") is not None else ""
        echo(
            f"  #{j['id']} {j['step']:<13} {_age(j['age_seconds']):>6}  {j['file']}{lang}{mins}"
            f"{progress_text(j.get('progress'))}{extra}"
        )
    for j in data["needs_attention"]:
        echo(f"  #{j['id']} NEEDS ATTENTION {j['file']}: {j['reason']}")
    if data["failed"]:
        echo("failed or partial (newest first; `retry JOB` once the cause is fixed):")
    for j in data["failed"]:
        echo(
            f"  #{j['id']} {j['state']:<8} {_age(j['age_seconds']):>6} ago  {j['file']}: "
            f"{j['reason']}"
        )


def cmd_jobs(args: argparse.Namespace) -> int:
    """Jobs, newest first, filtered by state and watch."""
    states = [JobState(s) for s in args.state] if args.state else None
    with open_existing_ledger(args) as ledger:
        jobs = ledger.list_jobs(states=states, watch=args.watch, limit=args.limit)
    if args.json:
        echo(json.dumps([job_dict(j) for j in jobs], indent=2))
        return ExitStatus.OK
    now = time.time()
    for j in jobs:
        echo(
            f"#{j.id:<6} {j.state.value:<15} {_age(now - j.state_changed_at):>6}  "
            f"{j.watch}: {j.source_path}"
        )
    return ExitStatus.OK


def cmd_show(args: argparse.Namespace) -> int:
    """One job with its fields, outputs and history."""
    with open_existing_ledger(args) as ledger:
        try:
            job = ledger.get(args.job)
        except KeyError:
            sys.stderr.write(f"no job #{args.job}\n")
            return ExitStatus.FAILED
        outs = ledger.outputs(job.id)
        events = ledger.events(job.id)
    if args.json:
        echo(json.dumps(show_data(job, outs, events), indent=2))
        return ExitStatus.OK
    echo(f"job #{job.id}: {job.state.value}")
    for key, value in job_dict(job).items():
        if value in (None, [], "") or key in ("id", "state"):
            continue
        if key == "next_attempt_at" and job.state in TERMINAL:
            continue
        if key.endswith("_at") and isinstance(value, float):
            value = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value))
        elif isinstance(value, list):
            value = ", ".join(value)
        echo(f"  {key}: {value}")
    echo("outputs:")
    for o in outs:
        echo(f"  {o.language:<8} {o.kind:<9} {o.state.value:<8} {o.path or o.error_code or ''}")
    echo("history:")
    for e in events:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.at))
        arrow = f"{e.from_state or '-'} -> {e.to_state or '-'}"
        echo(f"  {when}  {arrow:<30} {e.why}")
    return ExitStatus.OK


def cmd_health(args: argparse.Namespace) -> int:
    """Exit 0 when the daemon's heartbeat file is fresh (for health checks)."""
    from synthesia_watchd.telemetry.metrics import Heartbeat

    path = find_config(args.config)
    state_dir = load_config(path).state_dir if path else runtime.the_running_daemon().state_dir
    ok, reason = Heartbeat.check(state_dir / "heartbeat", max_age=args.max_age)
    (echo if ok else lambda t: sys.stderr.write(t + "\n"))(reason)
    return ExitStatus.OK if ok else ExitStatus.FAILED
