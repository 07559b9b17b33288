"""Configuration's entry points: a file, config text or plain data in, a checked ``Config`` out.

The steps, each in its own module: yamlmarks.py reads the YAML keeping lines; schema.py checks
each key against the key table (with the value checks of checks.py, netchecks.py and
watchchecks.py); watches.py folds ``defaults`` into each watch and crosswatch.py checks watches
against each other; apikey.py finds the API key; build.py raises every problem together in one
``ConfigError`` (each with file, key path and line) or builds the settings of model.py.
effective.py shows them back for ``check-config``. The API key is held in a ``Secret`` that
never prints, and no message quotes it.

The names callers need are importable from here, so the rest of the daemon imports one module.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from synthesia_watchd.domain.errors import ConfigError, ConfigIssue

from .apikey import API_KEY_ENV, CREDENTIAL_NAME, DOCKER_SECRET, resolve_api_key
from .build import build, default_state_dir
from .checks import Context
from .effective import dump_effective, effective_config
from .model import MASK, Config, PostAction, RateLimitSpec, Secret, WatchConfig
from .schema import REFERENCE, TIERS, KeyDoc, parse_yaml, render_reference
from .watchchecks import TITLE_FIELDS
from .yamlmarks import MAX_CONFIG_BYTES, Doc, too_large

__all__ = [
    "API_KEY_ENV",
    "CREDENTIAL_NAME",
    "DOCKER_SECRET",
    "MASK",
    "REFERENCE",
    "TIERS",
    "TITLE_FIELDS",
    "Config",
    "KeyDoc",
    "PostAction",
    "RateLimitSpec",
    "Secret",
    "WatchConfig",
    "build_config",
    "default_state_dir",
    "dump_effective",
    "effective_config",
    "load_config",
    "parse_config",
    "render_reference",
    "resolve_api_key",
]


# --- public entry points -------------------------------------------------------------------------


def load_config(
    path: Path, *, environ: Mapping[str, str] | None = None, require_watches: bool = True
) -> Config:
    """Read and validate a config file; relative paths resolve against its folder.

    ``require_watches=False`` (``dub``, which names its own files) accepts a file without
    ``watches``.
    """
    path = Path(path)
    filename = str(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)  # never more: the file may be anything
        if len(raw) > MAX_CONFIG_BYTES:
            raise ConfigError([too_large(filename, os.stat(path).st_size)])
        text = raw.decode("utf-8-sig")
    except OSError as exc:
        raise ConfigError(
            [ConfigIssue(filename, "", None, f"cannot read: {exc.strerror}")]
        ) from None
    except UnicodeDecodeError:
        raise ConfigError([ConfigIssue(filename, "", None, "not UTF-8 text")]) from None
    source = Path(os.path.abspath(path))
    return _from_text(text, filename, source.parent, environ, source, require_watches)


def parse_config(
    text: str,
    *,
    filename: str = "<config>",
    base_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Validate config text; relative paths resolve against ``base_dir`` (default: cwd)."""
    return _from_text(text, filename, base_dir, environ, None)


def build_config(
    data: Mapping[str, Any],
    *,
    filename: str = "<built-in>",
    base_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
    require_watches: bool = False,
) -> Config:
    """Validate settings given as data (``dub``, ``demo``): the same checks as a file, no lines.

    Unlike a file, data may leave out ``watches`` (a command that names its own files, or one
    that only needs state_dir); ``require_watches=True`` restores the file's rule.
    """
    doc = Doc(_plain(data))
    ctx = Context(filename, doc, _base(base_dir), os.environ if environ is None else environ)
    return build(doc, ctx, None, require_watches)


def _plain(value: Any) -> Any:
    """Mappings and sequences as dicts and lists, the shapes the YAML parser yields."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _base(base_dir: Path | None) -> Path:
    return Path(os.path.abspath(base_dir if base_dir is not None else Path.cwd()))


def _from_text(
    text: str,
    filename: str,
    base_dir: Path | None,
    environ: Mapping[str, str] | None,
    source: Path | None,
    require_watches: bool = True,
) -> Config:
    doc, issues = parse_yaml(text, filename)
    ctx = Context(filename, doc, _base(base_dir), os.environ if environ is None else environ)
    ctx.issues.extend(issues)
    return build(doc, ctx, source, require_watches)
