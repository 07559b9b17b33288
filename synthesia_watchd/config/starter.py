"""`config init`: a commented starter config for the operator's own folders and languages.

The text is built here and then checked by the same schema as any config file
(``parse_config``), so a starter that would not load is never written.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Sequence
from pathlib import Path

from synthesia_watchd.domain.errors import UsageError

from .load import Config, parse_config

_HEADER = """\
# synthesia-watchd configuration, written by `synthesia-watchd config init`.
# Check it:   synthesia-watchd check-config -c {path}
# Every key:  docs/configuration.md (or config.example.yaml), with its default.
# Languages:  synthesia-watchd languages   (source codes: languages --source)

# The API key is not kept here: export SYNTHESIA_API_KEY, or point to a file readable only by
# the daemon's user (systemd: LoadCredential=, Docker: a secret; see the README).
synthesia:
  api_url: https://api.synthesia.io
  # api_key_file: /etc/synthesia-watchd/api_key

# Where the ledger (the job history) lives: a local disk, never an SMB/NFS share.
# Leave out to use $STATE_DIRECTORY or ~/.local/state/synthesia-watchd.
# state_dir: /var/lib/synthesia-watchd

api:
  tier: creator              # creator | tier2 | tier1: your Synthesia plan's rate limits

# Spending guards: null means no limit, so every video dropped is dubbed and billed.
# Put a number to cap a day (local midnight to midnight); jobs over a limit wait.
limits:
  max_jobs_per_day: null     # e.g. 100
  max_bytes_per_day: null    # e.g. 50GB

# Settings every watch inherits (a watch may override any of them).
defaults:
  targets: {targets}
  source_language: {source}{source_note}
  stable_seconds: 10         # raise (e.g. 1m) for slow network copies
  # on_success: keep         # keep | delete | {{move: /path/done}}
  # on_failure: keep         # keep | {{move: /path/failed}} (writes <name>.reason.json)

watches:
"""

_WATCH = """\
  - name: {name}
    input: {input}
{output}"""


def _quote(value: str) -> str:
    """A YAML scalar that stays a string (JSON strings are valid YAML)."""
    return json.dumps(value, ensure_ascii=False)


def _names(inputs: Sequence[Path]) -> list[str]:
    """Unique watch names from the folders' names (inbox, inbox-2, ...)."""
    names: list[str] = []
    for folder in inputs:
        base = re.sub(r"[^A-Za-z0-9_-]+", "-", folder.name).strip("-").lower() or "watch"
        name, n = base, 2
        while name in names:
            name, n = f"{base}-{n}", n + 1
        names.append(name)
    return names


def starter_text(
    inputs: Sequence[Path],
    targets: Sequence[str],
    *,
    output: Path | None = None,
    source_language: str = "auto",
    path: Path | None = None,
) -> str:
    """The starter config's text (not yet checked)."""
    watches = []
    for name, folder in zip(_names(inputs), inputs, strict=True):
        if output is None:
            out = "    # output: /path/dubbed   # leave out: outputs go beside each source\n"
        else:
            sub = output / name if len(inputs) > 1 else output
            out = f"    output: {_quote(str(sub))}\n"
        watches.append(_WATCH.format(name=name, input=_quote(str(folder)), output=out))
    return _HEADER.format(
        path=path or "config.yaml",
        targets="[" + ", ".join(targets) + "]",
        source=source_language,
        source_note="       # auto: Synthesia detects it" if source_language == "auto" else "",
    ) + "".join(watches)


def starter_config(
    inputs: Sequence[Path],
    targets: Sequence[str],
    *,
    output: Path | None = None,
    source_language: str = "auto",
    path: Path | None = None,
) -> tuple[str, Config]:
    """The starter text and the Config it loads as; ConfigError when the values are wrong
    (an unknown language code, say), exactly as check-config would report them."""
    text = starter_text(inputs, targets, output=output, source_language=source_language, path=path)
    name = str(path) if path is not None else "<config init>"
    base = path.parent if path is not None else None
    return text, parse_config(text, filename=name, base_dir=base, environ={})


def init_config(args: argparse.Namespace) -> str:
    """`config init`: the starter text (no --write), or write it and say what next.

    Never replaces a file without ``--force``; the schema check runs before anything is written.
    """
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    dest = Path(args.write).expanduser() if args.write else None
    inputs = [Path(p).expanduser().absolute() for p in args.input]
    output = Path(args.output).expanduser().absolute() if args.output else None
    text, _ = starter_config(
        inputs, targets, output=output, source_language=args.source_language, path=dest
    )
    if dest is None:
        return text
    if dest.exists() and not args.force:
        raise UsageError(f"config init: {dest} exists; pass --force to replace it")
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(text, encoding="utf-8")
    return f"wrote {dest}; next: synthesia-watchd check-config -c {dest}"
