"""Where the API key comes from, first found wins: env, key file, systemd credential, Docker
secret, and last the config file itself (discouraged, and warned about).

Messages name where a key was looked for and what was wrong with it (unreadable, empty,
spaces), never the value; the key itself comes back sealed in a ``Secret``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

from .model import Secret

#: Where Docker (and compose) mount secrets.
DOCKER_SECRET = Path("/run/secrets/synthesia_api_key")
#: File name looked up in ``$CREDENTIALS_DIRECTORY`` (systemd ``LoadCredential=``).
CREDENTIAL_NAME = "synthesia_api_key"
API_KEY_ENV = "SYNTHESIA_API_KEY"


def _read_key(path: Path) -> str:
    with open(path, encoding="utf-8") as fh:
        return fh.read().strip()


def resolve_api_key(
    *,
    api_key_file: Path | None,
    inline: Secret | None,
    environ: Mapping[str, str],
    docker_secret: Path = DOCKER_SECRET,
) -> tuple[Secret | None, str | None, list[tuple[str, str]]]:
    """Find the API key: env, api_key_file, $CREDENTIALS_DIRECTORY, docker secret, inline.

    Returns (key, where it came from, problems as (key path, message)). No key is not a
    problem: the simulator, the demo and --dry-run need none. Messages name paths, never values.
    """
    problems: list[tuple[str, str]] = []
    candidates: list[tuple[str, Callable[[], str | None], str]] = [
        (f"env {API_KEY_ENV}", lambda: environ.get(API_KEY_ENV, "").strip() or None, ""),
    ]
    if api_key_file is not None:
        candidates.append(
            (f"file {api_key_file}", lambda: _read_key(api_key_file), "synthesia.api_key_file")
        )
    cred_dir = environ.get("CREDENTIALS_DIRECTORY")
    if cred_dir:
        cred = Path(cred_dir) / CREDENTIAL_NAME
        if cred.exists():
            candidates.append((f"credential {cred}", lambda: _read_key(cred), ""))
    if os.access(docker_secret, os.R_OK) and docker_secret.is_file():
        candidates.append((f"file {docker_secret}", lambda: _read_key(docker_secret), ""))
    if inline is not None:
        candidates.append(
            ("config synthesia.api_key", lambda: inline.reveal().strip(), "synthesia.api_key")
        )
    for source, read, key in candidates:
        try:
            value = read()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            problems.append((key, f"cannot read the API key from {source}: {reason}"))
            return None, None, problems
        if value is None:
            continue
        if not value:
            problems.append((key, f"the API key from {source} is empty"))
            return None, None, problems
        if any(c.isspace() or not c.isprintable() for c in value):
            problems.append(
                (key, f"the API key from {source} contains spaces or control characters")
            )
            return None, None, problems
        return Secret(value), source, problems
    return None, None, problems
