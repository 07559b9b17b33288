"""Maintenance commands: `check-config` (with the key check and today's spending), `config
init`, `languages`, `backfill` (a watch's new targets for done jobs) and `backup` of the ledger."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from contextlib import AbstractContextManager
from pathlib import Path

from synthesia_watchd.config.load import Config, dump_effective
from synthesia_watchd.domain.errors import AuthError, UsageError, WatchdError
from synthesia_watchd.stores.ledger import Ledger, open_ledger

from .common import ExitStatus, echo
from .locate import load, open_existing_ledger


def cmd_check_config(args: argparse.Namespace) -> int:
    """Validate a config, print it with secrets masked, and test the API key."""
    config = load(args)
    echo(f"# {config.source}: valid")
    echo(dump_effective(config).rstrip())
    for warning in config.warnings:
        sys.stderr.write(f"warning: {warning}\n")
    echo(f"# spending limits: {_spending_line(config)}")
    if config.api_key is None:
        echo(
            "# no API key found (SYNTHESIA_API_KEY, api_key_file, "
            "$CREDENTIALS_DIRECTORY/synthesia_api_key): only the simulator or --dry-run work"
        )
        # Exit 3 as for a rejected key, unless the key is not to be checked at all.
        return ExitStatus.OK if args.offline else ExitStatus.AUTH
    if args.offline:
        return ExitStatus.OK
    from synthesia_watchd.service import compose

    client = compose.command_client(config)
    assert client is not None
    result = client.check_key()
    if result.verdict in ("rejected", "blocked"):
        raise AuthError(result.summary, status=result.status)
    echo(f"# API key check: {result.summary}")
    if result.verdict != "accepted":
        sys.stderr.write(
            f"warning: the API key check was inconclusive ({result.call} answered "
            f"{result.status}); the key may or may not work\n"
        )
        return ExitStatus.OK
    echo(f"# API key from {config.api_key_source}: accepted by {config.api_url}")
    return ExitStatus.OK


def _spending_line(config: Config) -> str:
    """The daily limits and today's use from the config's ledger (never creating it)."""
    from synthesia_watchd.engine.spending import spending, spending_text

    if config.ledger_url is None and not config.ledger.exists():
        return spending_text(spending(config, None, time.time()))
    with open_ledger(config.ledger_location, password=config.ledger_password_text()) as ledger:
        return spending_text(spending(config, ledger, time.time()))


def cmd_backfill(args: argparse.Namespace) -> int:
    """Show (``--dry-run``) or add a watch's new targets to its done jobs' projects."""
    from synthesia_watchd.engine.backfill import Turn
    from synthesia_watchd.service import compose

    config = load(args)
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
                echo(line)
    verb = "would add" if args.dry_run else "added"
    echo(
        f"{verb} {langs} dubbed language(s) to {len(todo)} existing project(s); "
        "no upload and no new project"
        + ("; the daemon downloads them" if not args.dry_run and todo else "")
    )
    return ExitStatus.OK


def cmd_backup(args: argparse.Namespace) -> int:
    """Copy the ledger while the daemon keeps running (SQLite's online backup)."""
    from synthesia_watchd.stores.ledgerguard import backup

    with open_existing_ledger(args) as ledger:
        if not isinstance(ledger, Ledger):
            raise WatchdError(
                f"backup copies a SQLite ledger; {ledger.location} is a PostgreSQL database: "
                "back it up with pg_dump (or the server's own backups)"
            )
        dest = backup(ledger, Path(args.dest), folder=args.dest.endswith(os.sep))
    echo(f"ledger backed up to {dest}")
    return ExitStatus.OK


def cmd_config_init(args: argparse.Namespace) -> int:
    """Write (or print) a commented starter config, checked by the config schema first."""
    from synthesia_watchd.config.starter import init_config

    echo(init_config(args).rstrip("\n"))
    return ExitStatus.OK


def cmd_languages(args: argparse.Namespace) -> int:
    """Print the language codes `targets` (or `source_language` with --source) accept."""
    from synthesia_watchd.config.languages import listing

    rows = listing(source=args.source)
    if args.json:
        echo(json.dumps(rows, indent=2))
        return ExitStatus.OK
    width = max(len(r["code"]) for r in rows)
    for row in rows:
        echo(f"{row['code']:<{width}}  {row['name']}")
    return ExitStatus.OK
