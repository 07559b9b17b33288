"""Where a PostgreSQL ledger's password comes from (never from the config file itself).

First that exists: ``ledger_password_file``, ``$CREDENTIALS_DIRECTORY/ledger_password``
(systemd ``LoadCredential=``), ``/run/secrets/ledger_password`` (Docker/compose secrets).
None of them: libpq looks itself, in ``PGPASSWORD`` and ``~/.pgpass``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from .model import Secret

CREDENTIAL_NAME = "ledger_password"
DOCKER_SECRET = Path("/run/secrets/ledger_password")


def resolve_ledger_password(
    password_file: Path | None,
    environ: Mapping[str, str],
    docker_secret: Path = DOCKER_SECRET,
) -> tuple[Secret | None, str | None]:
    """(password, a problem naming the file, never the value)."""
    candidates: list[Path] = []
    if password_file is not None:
        candidates.append(password_file)
    if environ.get("CREDENTIALS_DIRECTORY"):
        cred = Path(environ["CREDENTIALS_DIRECTORY"]) / CREDENTIAL_NAME
        if cred.is_file():
            candidates.append(cred)
    if os.access(docker_secret, os.R_OK) and docker_secret.is_file():
        candidates.append(docker_secret)
    for path in candidates[:1]:
        try:
            text = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            return None, f"cannot read the ledger password from {path}: {reason}"
        if not text:
            return None, f"the ledger password file {path} is empty"
        return Secret(text), None
    return None, None
