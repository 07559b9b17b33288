"""The ``synthesia-watchd`` command: argparse over the core, ``main(argv) -> int``.

Exit codes (stable; scripts depend on them):

====  ==========================================================================
0     success (``health``: the daemon's heartbeat is fresh)
1     finished, but something failed (a job failed, ``health`` is stale)
2     usage or configuration error (the message names file, key and line)
3     the API key is missing or rejected
4     the ledger cannot be used safely (network filesystem, newer schema, another daemon
      on it, read-only, damaged, or emptied/missing/replaced since it was used here)
130   interrupted (Ctrl-C)
====  ==========================================================================
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from enum import IntEnum
from pathlib import Path
from typing import Any

from synthesia_watchd import __version__
from synthesia_watchd.config.load import Config, build_config, dump_effective, load_config
from synthesia_watchd.domain.errors import (
    AuthError,
    ConfigError,
    ConfigIssue,
    LedgerError,
    StaleTransition,
    UsageError,
    WatchdError,
)
from synthesia_watchd.domain.names import printable
from synthesia_watchd.domain.states import ACTIVE, TERMINAL, JobState
from synthesia_watchd.engine import lifecycle
from synthesia_watchd.engine.backfill import Turn
from synthesia_watchd.engine.progress import duration_text as _age
from synthesia_watchd.engine.progress import error_is_current, job_progress, progress_text
from synthesia_watchd.stores import noderecords, runtime
from synthesia_watchd.stores.ledger import (
    Event,
    Job,
    Ledger,
    LedgerStore,
    Output,
    is_shared,
    open_ledger,
)
from synthesia_watchd.telemetry.logsetup import configure_logging

DEFAULT_CONFIG_PATHS = (Path("/etc/synthesia-watchd/config.yaml"),)


class ExitStatus(IntEnum):
    """Process exit codes (see the module docstring)."""

    OK = 0
    FAILED = 1
    USAGE = 2
    AUTH = 3
    LEDGER = 4
    INTERRUPTED = 130


# --- helpers -------------------------------------------------------------------------------


def _find_config(arg: str | None) -> Path | None:
    if arg:
        return Path(arg)
    env = os.environ.get("SYNTHESIA_WATCHD_CONFIG")
    if env:
        return Path(env)
    for candidate in DEFAULT_CONFIG_PATHS:
        if candidate.is_file():
            return candidate
    return None


def _load(args: argparse.Namespace, *, required: bool = True) -> Config:
    path = _find_config(getattr(args, "config", None))
    if path is None:
        if required:
            raise ConfigError(
                [
                    ConfigIssue(
                        "<none>",
                        "",
                        None,
                        "no config file: pass -c CONFIG or set SYNTHESIA_WATCHD_CONFIG",
                    )
                ]
            )
        return build_config({})
    return load_config(path)


def _ledger_path(args: argparse.Namespace) -> tuple[Path | str, str | None]:
    """The ledger a command means: --ledger (a file or a PostgreSQL URL), the config's, or the
    one running daemon's; with the shared ledger's password when the config names its file."""
    if getattr(args, "ledger", None):
        given = str(args.ledger)
        return (given if is_shared(given) else Path(given)), None
    path = _find_config(getattr(args, "config", None))
    if path is not None:
        config = load_config(path)
        return config.ledger_location, config.ledger_password_text()
    found = runtime.ledger_without_config(default=build_config({}).ledger)
    if not found.running:
        sys.stderr.write(f"(no config and no running daemon: using {found.ledger})\n")
    return found.ledger, found.password()


def _open_ledger(args: argparse.Namespace) -> LedgerStore:
    """Open an existing ledger; never create one (a typo must not start an empty history)."""
    location, password = _ledger_path(args)
    if isinstance(location, Path) and not location.exists():
        raise WatchdError(
            f"no ledger at {location}: synthesia-watchd has not run with this config yet "
            "(or -c/--ledger names another one)"
        )
    return open_ledger(location, password=password)


def _job_dict(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "watch": job.watch,
        "source": job.source_path,
        "state": job.state.value,
        "size": job.size,
        "sha256": job.sha256,
        "source_language": job.source_language,
        "detected_language": job.detected_language,
        "targets": list(job.targets),
        "attempts": job.attempts,
        "next_attempt_at": job.next_attempt_at,
        "asset_id": job.asset_id,
        "project_id": job.project_id,
        "last_error": job.last_error,
        "last_error_context": job.last_error_context,
        "created_at": job.created_at,
        "state_changed_at": job.state_changed_at,
    }


def _job_id(text: str) -> int:
    """A job id as typed: ``5`` or ``#5`` (the form `jobs` and `status` print)."""
    try:
        return int(text.strip().lstrip("#"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a job id: {text!r} (e.g. 5 or '#5')") from None


def _print(text: str = "") -> None:
    sys.stdout.write(printable(text) + "\n")  # a file name that is not UTF-8 is shown escaped


# --- commands ------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    from . import compose
    from .daemon import Daemon

    config = _load(args)
    configure_logging(level=config.log_level, fmt=config.log_format)
    if args.dry_run:
        from synthesia_watchd.engine.dryrun import dry_run

        return dry_run(config, paths=None)
    daemon = Daemon(compose.build(config, new_ledger=args.new_ledger), once=args.once)
    started = time.time()
    result = daemon.run()
    if not result.finished:
        # A worker is stuck in a call that ignores the stop (a hung socket read): everything
        # durable is written, so leave without joining it rather than overrun systemd's
        # TimeoutStopSec and get SIGKILLed.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(result.exit_code)
    if args.once:
        # Only what this run did counts: last month's failure must not fail every cron run.
        with open_ledger(config.ledger_location, password=config.ledger_password_text()) as ledger:
            touched = [
                j for j in ledger.list_jobs(limit=1_000_000) if j.state_changed_at >= started
            ]
        by_state: dict[str, int] = {}
        for j in touched:
            by_state[j.state.value] = by_state.get(j.state.value, 0) + 1
        _print(
            "run --once: "
            + (
                ", ".join(f"{n} {state}" for state, n in sorted(by_state.items()))
                or "nothing to do"
            )
            + (
                f"; see `synthesia-watchd jobs -c {config.source} --state failed`"
                if by_state.get("failed")
                else ""
            )
        )
        bad = by_state.get("failed", 0) + by_state.get("needs_attention", 0)
        if result.exit_code == 0 and bad:
            return ExitStatus.FAILED
    return result.exit_code


def cmd_check_config(args: argparse.Namespace) -> int:
    config = _load(args)
    _print(f"# {config.source}: valid")
    _print(dump_effective(config).rstrip())
    for warning in config.warnings:
        sys.stderr.write(f"warning: {warning}\n")
    _print(f"# spending limits: {_spending_line(config)}")
    if config.api_key is None:
        _print(
            "# no API key found (SYNTHESIA_API_KEY, api_key_file, "
            "$CREDENTIALS_DIRECTORY/synthesia_api_key): only the simulator or --dry-run work"
        )
        # Exit 3 as for a rejected key, unless the key is not to be checked at all.
        return ExitStatus.OK if args.offline else ExitStatus.AUTH
    if args.offline:
        return ExitStatus.OK
    from . import compose

    client = compose.command_client(config)
    assert client is not None
    result = client.check_key()
    if result.verdict in ("rejected", "blocked"):
        raise AuthError(result.summary, status=result.status)
    _print(f"# API key check: {result.summary}")
    if result.verdict != "accepted":
        sys.stderr.write(
            f"warning: the API key check was inconclusive ({result.call} answered "
            f"{result.status}); the key may or may not work\n"
        )
        return ExitStatus.OK
    _print(f"# API key from {config.api_key_source}: accepted by {config.api_url}")
    return ExitStatus.OK


def _spending_line(config: Config) -> str:
    """The daily limits and today's use from the config's ledger (never creating it)."""
    from synthesia_watchd.engine.spending import spending, spending_text

    if config.ledger_url is None and not config.ledger.exists():
        return spending_text(spending(config, None, time.time()))
    with open_ledger(config.ledger_location, password=config.ledger_password_text()) as ledger:
        return spending_text(spending(config, ledger, time.time()))


def _minutes(duration_s: float | None) -> float | None:
    """Video minutes, as billed, from a parsed duration (None when it is not known)."""
    return None if duration_s is None else round(duration_s / 60, 1)


def status_data(ledger: LedgerStore, now: float | None = None) -> dict[str, Any]:
    """Everything `status` shows, as plain data (also the `--json` output)."""
    now = time.time() if now is None else now
    found = noderecords.records(ledger)
    record = noderecords.freshest(found)
    running = noderecords.is_running(record, now)
    live = record.get("progress", {}) if running else {}
    active = [
        {
            "id": j.id,
            "file": Path(j.source_path).name,
            "step": j.state.value,
            "age_seconds": round(now - j.state_changed_at, 1),
            "attempts": j.attempts,
            "last_error": j.last_error if error_is_current(ledger, j) else None,
            "detected_language": j.detected_language,
            "video_minutes": _minutes(j.duration_s),
            "progress": job_progress(ledger, j, live.get(str(j.id)), now),
        }
        for j in ledger.list_jobs(states=ACTIVE, limit=50)
    ]
    unhappy = [
        {
            "id": j.id,
            "file": Path(j.source_path).name,
            "state": j.state.value,
            "age_seconds": round(now - j.state_changed_at, 1),
            "reason": j.last_error or j.last_error_context,
        }
        for j in ledger.list_jobs(states=(JobState.FAILED, JobState.PARTIAL), limit=20)
    ]
    attention = [
        {
            "id": j.id,
            "file": Path(j.source_path).name,
            "state": j.state.value,
            "reason": j.last_error_context or j.last_error,
        }
        for j in ledger.list_jobs(states=(JobState.NEEDS_ATTENTION,), limit=50)
    ]
    oldest = ledger.oldest_queued_at()
    return {
        "daemon": noderecords.summary(record, now, paused=False),
        "paused": noderecords.pauses(found, now),
        "reads": record.get("reads") if running else None,
        "holds": lifecycle.holds_data(ledger),
        "watches": record.get("watches", []) if running else [],
        "fs_stuck_seconds": record.get("fs_stuck_seconds") if running else None,
        "counts": ledger.counts(),
        "oldest_queued_age_seconds": round(now - oldest, 1) if oldest else None,
        "active": active,
        "needs_attention": attention,
        "failed": unhappy,
        **noderecords.nodes_data(ledger, now, found),
    }


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


def cmd_status(args: argparse.Namespace) -> int:
    with _open_ledger(args) as ledger:
        data = status_data(ledger)
    if args.json:
        _print(json.dumps(data, indent=2))
        return ExitStatus.OK
    d = data["daemon"]
    if d["running"]:
        _print(f"daemon: running (pid {d['pid']}, heartbeat {d['heartbeat_age_seconds']}s ago)")
    elif d.get("stopped_cleanly") and d["heartbeat_age_seconds"] is not None:
        _print(f"daemon: not running (stopped cleanly {_age(d['heartbeat_age_seconds'])} ago)")
    else:
        _print(
            "daemon: not running"
            + (
                f" (last heartbeat {_age(d['heartbeat_age_seconds'])} ago)"
                if d["heartbeat_age_seconds"] is not None
                else ""
            )
        )
    for line in _node_lines(data):
        _print(line)
    reads = data.get("reads")
    if reads:
        limit = f"of {reads['per_day']:,} a day" if reads.get("per_day") else "(no day limit)"
        _print(f"status reads in the last 24 h: {reads['last_24h']:,} {limit}")
    if data.get("fs_stuck_seconds"):
        _print(
            f"SCANNING STALLED: a filesystem call has hung for {_age(data['fs_stuck_seconds'])} "
            "(a dead NFS/SMB mount?); new files are not seen until it answers"
        )
    holds = data["holds"]
    for name, hold in [("all watches", holds["all"]), *holds["watches"].items()]:
        if hold:
            _print(f"{hold['mode'].upper()}: {name} ({hold['reason']}; `resume` lifts it)")
    for w in data["watches"]:
        line = f"watch {w['name']}: {w['mode']}"
        if w.get("paused"):
            line += f", PAUSED: {w.get('pause_reason')}"
        if w.get("held"):
            line += f", holding new work ({w['held']})"
        if w.get("pending"):
            line += f", {w['pending']} file(s) settling"
        _print(line)
        for held in w.get("incomplete", []):
            age = _age(max(time.time() - float(held.get("since", 0)), 0))
            _print(
                f"  INCOMPLETE {held['file']} (for {age}): {held['detail']}; re-checked when it "
                "changes, failed after incomplete_timeout without a change"
            )
    counts = data["counts"]
    _print(
        "jobs: " + ", ".join(f"{k} {v}" for k, v in counts.items() if v)
        if any(counts.values())
        else "jobs: none yet"
    )
    if data["oldest_queued_age_seconds"] is not None:
        _print(f"oldest queued: {_age(data['oldest_queued_age_seconds'])}")
    for j in data["active"]:
        extra = f"  (attempt {j['attempts']}: {j['last_error']})" if j["last_error"] else ""
        lang = f" [{j['detected_language']}]" if j.get("detected_language") else ""
        mins = f" ({j['video_minutes']} video min)" if j.get("video_minutes") is not None else ""
        _print(
            f"  #{j['id']} {j['step']:<13} {_age(j['age_seconds']):>6}  {j['file']}{lang}{mins}"
            f"{progress_text(j.get('progress'))}{extra}"
        )
    for j in data["needs_attention"]:
        _print(f"  #{j['id']} NEEDS ATTENTION {j['file']}: {j['reason']}")
    if data["failed"]:
        _print("failed or partial (newest first; `retry JOB` once the cause is fixed):")
    for j in data["failed"]:
        _print(
            f"  #{j['id']} {j['state']:<8} {_age(j['age_seconds']):>6} ago  {j['file']}: "
            f"{j['reason']}"
        )
    return ExitStatus.OK


def cmd_jobs(args: argparse.Namespace) -> int:
    states = [JobState(s) for s in args.state] if args.state else None
    with _open_ledger(args) as ledger:
        jobs = ledger.list_jobs(states=states, watch=args.watch, limit=args.limit)
    if args.json:
        _print(json.dumps([_job_dict(j) for j in jobs], indent=2))
        return ExitStatus.OK
    now = time.time()
    for j in jobs:
        _print(
            f"#{j.id:<6} {j.state.value:<15} {_age(now - j.state_changed_at):>6}  "
            f"{j.watch}: {j.source_path}"
        )
    return ExitStatus.OK


def show_data(job: Job, outs: Sequence[Output], events: Sequence[Event]) -> dict[str, Any]:
    """One job with its outputs and history as plain data (also the `show --json` output)."""
    data = _job_dict(job)
    data["outputs"] = [
        {
            "language": o.language,
            "kind": o.kind,
            "state": o.state.value,
            "path": o.path,
            "bytes": o.bytes,
            "sha256": o.sha256,
            "error_code": o.error_code,
        }
        for o in outs
    ]
    data["events"] = [
        {"at": e.at, "from": e.from_state, "to": e.to_state, "why": e.why} for e in events
    ]
    return data


def cmd_show(args: argparse.Namespace) -> int:
    with _open_ledger(args) as ledger:
        try:
            job = ledger.get(args.job)
        except KeyError:
            sys.stderr.write(f"no job #{args.job}\n")
            return ExitStatus.FAILED
        outs = ledger.outputs(job.id)
        events = ledger.events(job.id)
    if args.json:
        _print(json.dumps(show_data(job, outs, events), indent=2))
        return ExitStatus.OK
    _print(f"job #{job.id}: {job.state.value}")
    for key, value in _job_dict(job).items():
        if value in (None, [], "") or key in ("id", "state"):
            continue
        if key == "next_attempt_at" and job.state in TERMINAL:
            continue
        if key.endswith("_at") and isinstance(value, float):
            value = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value))
        elif isinstance(value, list):
            value = ", ".join(value)
        _print(f"  {key}: {value}")
    _print("outputs:")
    for o in outs:
        _print(f"  {o.language:<8} {o.kind:<9} {o.state.value:<8} {o.path or o.error_code or ''}")
    _print("history:")
    for e in events:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.at))
        arrow = f"{e.from_state or '-'} -> {e.to_state or '-'}"
        _print(f"  {when}  {arrow:<30} {e.why}")
    return ExitStatus.OK


def cmd_retry(args: argparse.Namespace) -> int:
    with _open_ledger(args) as ledger:
        if args.failed:
            jobs = ledger.list_jobs(states=(JobState.FAILED, JobState.PARTIAL), limit=1_000_000)
        elif args.job is not None:
            jobs = [ledger.get(args.job)]
        else:
            sys.stderr.write("retry: give a job id or --failed\n")
            return ExitStatus.USAGE
        if not jobs:
            _print("no failed or partial jobs: nothing to retry")
        for job in jobs:
            _print(lifecycle.retry(ledger, job, resubmit=args.resubmit, fresh=args.fresh))
    return ExitStatus.OK


def cmd_cancel(args: argparse.Namespace) -> int:
    with _open_ledger(args) as ledger:
        _print(lifecycle.cancel(ledger, ledger.get(args.job)))
    return ExitStatus.OK


def cmd_pause(args: argparse.Namespace) -> int:
    config = _load(args, required=False)
    known = [w.name for w in config.watches] if config.source is not None else None
    with _open_ledger(args) as ledger:
        _print(lifecycle.pause(ledger, watch=args.watch, drain=args.drain, known=known))
    return ExitStatus.OK


def cmd_resume(args: argparse.Namespace) -> int:
    with _open_ledger(args) as ledger:
        _print(lifecycle.resume(ledger, watch=args.watch))
    return ExitStatus.OK


def cmd_health(args: argparse.Namespace) -> int:
    from synthesia_watchd.telemetry.metrics import Heartbeat

    path = _find_config(args.config)
    state_dir = load_config(path).state_dir if path else runtime.the_running_daemon().state_dir
    ok, reason = Heartbeat.check(state_dir / "heartbeat", max_age=args.max_age)
    (_print if ok else lambda t: sys.stderr.write(t + "\n"))(reason)
    return ExitStatus.OK if ok else ExitStatus.FAILED


def cmd_dub(args: argparse.Namespace) -> int:
    from .oneshot import dub

    return dub(args)


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import demo

    return demo(args)


def cmd_backfill(args: argparse.Namespace) -> int:
    """Show (``--dry-run``) or add a watch's new targets to its done jobs' projects."""
    from . import compose

    config = _load(args)
    try:
        watch = config.watch(args.watch)
    except KeyError:
        known = ", ".join(w.name for w in config.watches) or "none"
        raise UsageError(
            f"backfill: no watch named {args.watch!r} in {config.source} (watches: {known})"
        ) from None
    client = None
    if not args.dry_run:
        client = compose.command_client(config)
        if client is None:
            raise AuthError("no API key configured: set SYNTHESIA_API_KEY or api_key_file")
    with open_ledger(config.ledger_location, password=config.ledger_password_text()) as ledger:
        pipeline = compose.engine(config, ledger, client)
        # Never beside a daemon's start-up backfill (any node's, this host's too).
        turn: AbstractContextManager[Turn | None] = (
            contextlib.nullcontext() if args.dry_run else Turn(pipeline.ctx, "backfill command")
        )
        with turn as held:
            todo = pipeline.backfill_candidates(watch)
            langs = sum(len(m) for _, m in todo)
            for job, missing in todo:
                line = f"#{job.id} {Path(job.source_path).name}: + {', '.join(missing)}"
                if held is not None:
                    held.renew()
                    line += f"  -> {pipeline.backfill(job, missing)}"
                _print(line)
    verb = "would add" if args.dry_run else "added"
    _print(
        f"{verb} {langs} dubbed language(s) to {len(todo)} existing project(s); "
        "no upload and no new project"
        + ("; the daemon downloads them" if not args.dry_run and todo else "")
    )
    return ExitStatus.OK


def cmd_backup(args: argparse.Namespace) -> int:
    """Copy the ledger while the daemon keeps running (SQLite's online backup)."""
    from synthesia_watchd.stores.ledgerguard import backup

    with _open_ledger(args) as ledger:
        if not isinstance(ledger, Ledger):
            raise WatchdError(
                f"backup copies a SQLite ledger; {ledger.location} is a PostgreSQL database: "
                "back it up with pg_dump (or the server's own backups)"
            )
        dest = backup(ledger, Path(args.dest), folder=args.dest.endswith(os.sep))
    _print(f"ledger backed up to {dest}")
    return ExitStatus.OK


def cmd_config_init(args: argparse.Namespace) -> int:
    """Write (or print) a commented starter config, checked by the config schema first."""
    from synthesia_watchd.config.starter import init_config

    _print(init_config(args).rstrip("\n"))
    return ExitStatus.OK


def cmd_languages(args: argparse.Namespace) -> int:
    """Print the language codes `targets` (or `source_language` with --source) accept."""
    from synthesia_watchd.config.languages import listing

    rows = listing(source=args.source)
    if args.json:
        _print(json.dumps(rows, indent=2))
        return ExitStatus.OK
    width = max(len(r["code"]) for r in rows)
    for row in rows:
        _print(f"{row['code']:<{width}}  {row['name']}")
    return ExitStatus.OK


def cmd_simulator(args: argparse.Namespace) -> int:
    from synthesia_watchd.simulator import main as sim_main

    argv = ["--port", str(args.port)]
    if args.s3_port:
        argv += ["--s3-port", str(args.s3_port)]
    if args.dub_seconds is not None:
        argv += ["--dub-seconds", str(args.dub_seconds)]
    return sim_main(argv)


# --- parser --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="synthesia-watchd",
        description="Watch drop folders and dub every new video through the Synthesia API.",
        epilog="Exit codes: 0 ok, 1 something failed, 2 usage/config error, 3 API key "
        "missing or rejected, 4 ledger unusable, 130 interrupted.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "-c",
            "--config",
            help="config file (default: $SYNTHESIA_WATCHD_CONFIG "
            "or /etc/synthesia-watchd/config.yaml)",
        )

    def with_ledger(sp: argparse.ArgumentParser) -> None:
        with_config(sp)
        sp.add_argument("--ledger", help="ledger file (default: from the config)")

    sp = sub.add_parser("run", help="run the daemon in the foreground")
    with_config(sp)
    sp.add_argument(
        "--once", action="store_true", help="scan, process until nothing is left to do, exit"
    )
    sp.add_argument(
        "--dry-run",
        action="store_true",
        help="discover and check files, report what would be sent and billed; no API call",
    )
    sp.add_argument(
        "--new-ledger",
        action="store_true",
        help="start afresh when the ledger used here before is empty, missing or replaced "
        "(outputs already on disk are adopted; other files are dubbed and paid for again)",
    )
    sp.set_defaults(func=cmd_run)

    sp = sub.add_parser("check-config", help="validate a config and print it (secrets masked)")
    with_config(sp)
    sp.add_argument("--offline", action="store_true", help="do not test the API key")
    sp.set_defaults(func=cmd_check_config)

    sp = sub.add_parser("status", help="job counts, active jobs, pauses")
    with_ledger(sp)
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_status)

    sp = sub.add_parser("jobs", help="list jobs, newest first")
    with_ledger(sp)
    sp.add_argument("--state", action="append", choices=[s.value for s in JobState])
    sp.add_argument("--watch")
    sp.add_argument("--limit", type=int, default=50)
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_jobs)

    sp = sub.add_parser("show", help="one job with its outputs and history")
    with_ledger(sp)
    sp.add_argument("job", type=_job_id)
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_show)

    sp = sub.add_parser("retry", help="retry a job (or every failed one)")
    with_ledger(sp)
    sp.add_argument("job", type=_job_id, nargs="?")
    sp.add_argument("--failed", action="store_true", help="every failed or partial job")
    sp.add_argument(
        "--resubmit",
        action="store_true",
        help="confirm resubmitting an ambiguous submit (may pay twice)",
    )
    sp.add_argument(
        "--fresh",
        action="store_true",
        help="start over with a new project even when one exists (pays again)",
    )
    sp.set_defaults(func=cmd_retry)

    sp = sub.add_parser("cancel", help="cancel a job")
    with_ledger(sp)
    sp.add_argument("job", type=_job_id)
    sp.set_defaults(func=cmd_cancel)

    sp = sub.add_parser("pause", help="start no new paid work (globally or for one watch)")
    with_ledger(sp)
    sp.add_argument("--watch", help="pause only this watch")
    sp.add_argument(
        "--drain", action="store_true", help="let started jobs finish, take nothing new"
    )
    sp.set_defaults(func=cmd_pause)

    sp = sub.add_parser("resume", help="lift a pause or drain")
    with_ledger(sp)
    sp.add_argument("--watch", help="resume only this watch")
    sp.set_defaults(func=cmd_resume)

    sp = sub.add_parser("health", help="exit 0 when the daemon's heartbeat is fresh")
    with_config(sp)
    sp.add_argument("--max-age", type=float, default=60.0, help="seconds (default 60)")
    sp.set_defaults(func=cmd_health)

    sp = sub.add_parser("dub", help="dub files or folders now, through the same engine")
    with_config(sp)
    sp.add_argument("paths", nargs="+", type=Path)
    sp.add_argument("-t", "--targets", help="comma-separated target languages, e.g. fr-FR,es-ES")
    sp.add_argument("-s", "--source-language", help="source language (or auto)")
    sp.add_argument("-o", "--output", type=Path, help="output folder (default: beside each file)")
    sp.add_argument("--dry-run", action="store_true", help="report what would be billed")
    sp.set_defaults(func=cmd_dub)

    sp = sub.add_parser("demo", help="dub a generated video end to end on the built-in simulator")
    sp.add_argument("--dub-seconds", type=float, default=2.0)
    sp.add_argument(
        "--dir",
        type=Path,
        help="keep the demo files here (default: the state folder's demo/, emptied each run)",
    )
    sp.set_defaults(func=cmd_demo)

    sp = sub.add_parser("backfill", help="add a watch's new targets to its done projects")
    with_config(sp)
    sp.add_argument("--watch", required=True, help="watch name")
    sp.add_argument("--dry-run", action="store_true", help="show what would be added and billed")
    sp.set_defaults(func=cmd_backfill)

    sp = sub.add_parser("backup", help="copy the ledger now, while the daemon runs")
    with_ledger(sp)
    sp.add_argument(
        "dest", help="backup file, or a folder (existing, or ending in /) for a dated file name"
    )
    sp.set_defaults(func=cmd_backup)

    sp = sub.add_parser("config", help="config helpers: `config init` writes a starter config")
    config_sub = sp.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    init = config_sub.add_parser(
        "init", help="write a commented starter config for your folders and languages"
    )
    init.add_argument(
        "--input", action="append", required=True, help="a drop folder to watch (repeatable)"
    )
    init.add_argument("--output", help="where dubbed files go (default: beside each source)")
    init.add_argument("-t", "--targets", required=True, help="target languages, e.g. fr-FR,de")
    init.add_argument("-s", "--source-language", default="auto", help="spoken language or auto")
    init.add_argument("-w", "--write", metavar="FILE", help="write here (default: print it)")
    init.add_argument("--force", action="store_true", help="replace an existing FILE")
    init.set_defaults(func=cmd_config_init)

    sp = sub.add_parser("languages", help="list the language codes Synthesia dubs into")
    sp.add_argument("--source", action="store_true", help="list source (spoken) languages instead")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_languages)

    sp = sub.add_parser("simulator", help="run the loopback Synthesia simulator")
    sp.add_argument("--port", type=int, default=8765, help="API port (default 8765; 0: any)")
    sp.add_argument("--s3-port", type=int, default=0, help="S3 port (default 0: any free port)")
    sp.add_argument("--dub-seconds", type=float, help="seconds from submit to dubbed (default 2)")
    sp.set_defaults(func=cmd_simulator)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run one command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        sys.stderr.write(f"config error:\n{exc}\n")
        return ExitStatus.USAGE
    except UsageError as exc:
        sys.stderr.write(f"{exc}\n")
        return ExitStatus.USAGE
    except AuthError as exc:
        sys.stderr.write(f"API key problem: {exc}\n")
        return ExitStatus.AUTH
    except LedgerError as exc:
        sys.stderr.write(f"ledger error: {exc}\n")
        return ExitStatus.LEDGER
    except (StaleTransition, KeyError) as exc:
        sys.stderr.write(f"{exc}\n")
        return ExitStatus.FAILED
    except WatchdError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return ExitStatus.FAILED
    except KeyboardInterrupt:
        return ExitStatus.INTERRUPTED


def entrypoint() -> None:
    """Console-script entry point."""
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        # `status | head`: the reader left. Point stdout at /dev/null so the interpreter's
        # final flush does not complain again (the recipe in Python's signal docs).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = ExitStatus.FAILED
    sys.exit(code)
