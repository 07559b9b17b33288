"""The command line's grammar: every command and option, read as a table; no behaviour."""

from __future__ import annotations

import argparse
from pathlib import Path

from synthesia_watchd import __version__
from synthesia_watchd.domain.states import JobState

from .common import job_id
from .operating import cmd_cancel, cmd_pause, cmd_resume, cmd_retry
from .reading import cmd_health, cmd_jobs, cmd_show, cmd_status
from .running import cmd_demo, cmd_dub, cmd_run, cmd_simulator
from .upkeep import cmd_backfill, cmd_backup, cmd_check_config, cmd_config_init, cmd_languages


def build_parser() -> argparse.ArgumentParser:
    """Every command with its options, each bound to the function that runs it."""
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
    sp.add_argument("job", type=job_id)
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_show)

    sp = sub.add_parser("retry", help="retry a job (or every failed one)")
    with_ledger(sp)
    sp.add_argument("job", type=job_id, nargs="?")
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
    sp.add_argument("job", type=job_id)
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
