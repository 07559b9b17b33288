"""``dub PATH...``: the classic script's one-shot use, through the daemon's engine and ledger.

Files named on the command line are taken as complete (the operator says so); folders are
walked with the watcher's filters. Everything else is the daemon: same pipeline, same ledger
(so a file dubbed before is not paid for again), same error handling.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from synthesia_watchd.config.load import Config, build_config, effective_config, load_config
from synthesia_watchd.domain.errors import UsageError
from synthesia_watchd.domain.names import printable
from synthesia_watchd.domain.states import TERMINAL, JobState
from synthesia_watchd.engine.dryrun import discover, dry_run

#: Watch settings `dub -c CONFIG` takes from the config's first watch unless given on the line.
_INHERITED_WATCH_KEYS = (
    "targets",
    "source_language",
    "outputs",
    "lipsync",
    "video_duration",
    "visibility",
    "title",
    "poll_interval",
)


def _config_for(args: argparse.Namespace) -> tuple[Config, list[Path]]:
    files: list[Path] = []
    roots: list[Path] = []
    for raw in args.paths:
        p = Path(raw).expanduser().resolve()
        if p.is_dir():
            roots.append(p)
        elif p.is_file():
            files.append(p)
            roots.append(p.parent)
        else:
            raise UsageError(f"dub: {raw}: no such file or folder")
    root = Path(os.path.commonpath([str(r) for r in roots]))
    base = load_config(Path(args.config), require_watches=False) if args.config else None
    watch: dict[str, Any] = {"name": "dub", "input": str(root), "recursive": True}
    if args.targets:
        watch["targets"] = [t.strip() for t in args.targets.split(",") if t.strip()]
    if args.source_language:
        watch["source_language"] = args.source_language
    if args.output:
        watch["output"] = str(Path(args.output).expanduser().resolve())
    data: dict[str, Any] = {"watches": [watch]}
    if base is not None:
        data["synthesia"] = {"api_url": base.api_url}
        data["ledger"] = str(base.ledger)
        data["state_dir"] = str(base.state_dir)
        data["on_ambiguous_submit"] = base.on_ambiguous_submit
        # The config's spending guards, pacing and dubbing options hold for `dub` too.
        effective = effective_config(base)
        data.update({key: effective[key] for key in ("workers", "api", "limits")})
        if base.watches:
            first = effective["watches"][0]
            for key in _INHERITED_WATCH_KEYS:
                watch.setdefault(key, first[key])
    config = build_config(data, filename="<command line>")
    w = config.watches[0]
    for r in roots:
        if r not in files and r.is_dir() and r not in [f.parent for f in files]:
            files.extend(discover_files(w, r))
    return config, sorted(set(files))


def discover_files(watch: Any, folder: Path) -> list[Path]:
    return [p for p in discover(watch) if folder in p.parents or p.parent == folder]


def bar_wanted(stderr: TextIO, stdout: TextIO) -> bool:
    """Draw the bar only on a terminal, and only when the log lines do not go to that same
    terminal (they would be cut by it); there, the log's own progress lines say it all."""
    return _is_tty(stderr) and not _is_tty(stdout)


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _progress(daemon: Any, job_ids: list[int]) -> None:
    jobs = [daemon.ledger.get(j) for j in job_ids]
    done = sum(j.state in TERMINAL for j in jobs)
    steps = ", ".join(sorted({j.state.value for j in jobs if j.state not in TERMINAL}))
    width = 24
    filled = int(width * done / max(len(jobs), 1))
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{len(jobs)} {steps:<40}")
    sys.stderr.flush()


def dub(args: argparse.Namespace) -> int:
    """Run the one-shot dub; exit 0 when every file ended done."""
    from synthesia_watchd.telemetry.logsetup import configure_logging

    from . import compose
    from .daemon import Daemon

    config, files = _config_for(args)
    configure_logging(level=config.log_level, fmt=config.log_format)
    watch = config.watches[0]
    if args.dry_run:
        return dry_run(config, [(watch, f) for f in files])
    if not files:
        sys.stderr.write("no video files found\n")
        return 1
    daemon = Daemon(compose.build(config, watch=False), once=True)
    job_ids: list[int] = []
    for f in files:
        st = f.stat()
        job = daemon.pipeline.intake(watch, f, st.st_size, st.st_mtime_ns)
        if job is None:
            job = daemon.ledger.find_job(watch.name, str(f), st.st_size, st.st_mtime_ns)
        if job is not None:
            job_ids.append(job.id)
    bar = bar_wanted(sys.stderr, sys.stdout)
    if bar:
        daemon.on_tick = lambda d: _progress(d, job_ids)
    result = daemon.run()
    if bar:
        sys.stderr.write("\n")
    ok = True
    from synthesia_watchd.stores.ledger import open_ledger

    with open_ledger(config.ledger_location, password=config.ledger_password_text()) as ledger:
        for jid in job_ids:
            job = ledger.get(jid)
            ok &= job.state is JobState.DONE
            lines = [f"{job.state.value:<15} {job.source_path}"]
            for o in ledger.outputs(jid):
                lines.append(f"    {o.language:<8} {o.path or o.error_code or o.state.value}")
            if job.last_error and job.state is not JobState.DONE:
                lines.append(f"    reason: {job.last_error}")
            sys.stdout.write("".join(printable(line) + "\n" for line in lines))
    if result.exit_code:
        return result.exit_code
    return 0 if ok else 1
