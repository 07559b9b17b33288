"""Warnings about who else can reach a secret or the daemon (pure, except for stat).

The API key pays for dubbing: a config or key file readable by a group or by everyone hands
it to every account on the box (or the NAS). The metrics listener has no authentication: on
an address other than loopback, anyone who can reach the port reads job counts and pauses.
None of this stops the daemon; check-config prints the warnings and the daemon logs them.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from synthesia_watchd.domain.urls import is_loopback_host


def _readable_by_others(path: Path) -> str | None:
    """The file's mode as octal text when group or others may read it, else None."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None
    return f"{mode:04o}" if mode & (stat.S_IRGRP | stat.S_IROTH) else None


def secret_warnings(
    *,
    config_file: Path | None,
    key_inline: bool,
    api_key_file: Path | None,
    metrics_listen: str | None,
) -> list[str]:
    """What check-config and the daemon warn about; the messages name files, never values."""
    warnings = []
    holders = [(config_file, "the config file")] if key_inline else []
    holders.append((api_key_file, "synthesia.api_key_file"))
    for path, what in holders:
        if path is None:
            continue
        mode = _readable_by_others(path)
        if mode is not None:
            warnings.append(
                f"{what} {path} holds the API key and is readable by group or others "
                f"(mode {mode}): `chmod 600 {path}` (owned by the daemon's user)"
            )
    if metrics_listen:
        host = metrics_listen.rpartition(":")[0].strip("[]")
        if not is_loopback_host(host):
            warnings.append(
                f"metrics.listen {metrics_listen} is not a loopback address: /metrics and "
                "/healthz answer anyone who can reach that port, with no authentication; use "
                "127.0.0.1 unless a firewall or a container's port mapping limits who connects"
            )
    return warnings
