"""Which config and which ledger a command means: ``-c``/``--ledger``, the environment, the
default path, or the one running daemon's (its runtime file); a ledger is never created here."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from synthesia_watchd.config.load import Config, build_config, load_config
from synthesia_watchd.domain.errors import ConfigError, ConfigIssue, WatchdError
from synthesia_watchd.stores import runtime
from synthesia_watchd.stores.ledger import LedgerStore, is_shared, open_ledger

DEFAULT_CONFIG_PATHS = (Path("/etc/synthesia-watchd/config.yaml"),)


def find_config(arg: str | None) -> Path | None:
    """The config file named by ``-c``, ``$SYNTHESIA_WATCHD_CONFIG`` or the default path."""
    if arg:
        return Path(arg)
    env = os.environ.get("SYNTHESIA_WATCHD_CONFIG")
    if env:
        return Path(env)
    for candidate in DEFAULT_CONFIG_PATHS:
        if candidate.is_file():
            return candidate
    return None


def load(args: argparse.Namespace, *, required: bool = True) -> Config:
    """The command's config; without one, an error (or the defaults when not ``required``)."""
    path = find_config(getattr(args, "config", None))
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


def ledger_path(args: argparse.Namespace) -> tuple[Path | str, str | None]:
    """The ledger a command means: --ledger (a file or a PostgreSQL URL), the config's, or the
    one running daemon's; with the shared ledger's password when the config names its file."""
    if getattr(args, "ledger", None):
        given = str(args.ledger)
        return (given if is_shared(given) else Path(given)), None
    path = find_config(getattr(args, "config", None))
    if path is not None:
        config = load_config(path)
        return config.ledger_location, config.ledger_password_text()
    found = runtime.ledger_without_config(default=build_config({}).ledger)
    if not found.running:
        sys.stderr.write(f"(no config and no running daemon: using {found.ledger})\n")
    return found.ledger, found.password()


def open_existing_ledger(args: argparse.Namespace) -> LedgerStore:
    """Open an existing ledger; never create one (a typo must not start an empty history)."""
    location, password = ledger_path(args)
    if isinstance(location, Path) and not location.exists():
        raise WatchdError(
            f"no ledger at {location}: synthesia-watchd has not run with this config yet "
            "(or -c/--ledger names another one)"
        )
    return open_ledger(location, password=password)
