"""The ``watches`` list checked: each watch against the table, ``defaults`` folded in, then the
checks between watches (crosswatch.py).

A key a watch sets wins over ``defaults``; a key wrong in either place is reported once, where
it is written, and never replaced by a default behind the operator's back.
"""

from __future__ import annotations

from typing import Any

from .checks import Context, kind_of
from .crosswatch import Seen, check_between
from .model import WatchConfig
from .schema import REQUIRED, WATCH_KEYS, WATCH_ONLY, WATCH_TREE, walk
from .yamlmarks import KeyPath


def build_watches(
    data: Any, raw_defaults: Any, defaults: dict[str, Any], ctx: Context
) -> list[WatchConfig]:
    """Each watch checked, then defaults folded in, then the checks between watches."""
    raw_defaults = raw_defaults if isinstance(raw_defaults, dict) else {}
    if data is None:
        ctx.error(("watches",), "no watches: add at least one under `watches:`")
        return []
    if not isinstance(data, list):
        ctx.error(("watches",), f"expected a list of watches, got {kind_of(data)}")
        return []
    if not data:
        ctx.error(("watches",), "no watches: add at least one under `watches:`")
    built: list[WatchConfig] = []
    seen: Seen = []
    for i, item in enumerate(data):
        path: KeyPath = ("watches", i)
        values: dict[str, Any] = {}
        if not isinstance(item, dict):
            ctx.error(path, f"expected a mapping with name, input, targets...; got {kind_of(item)}")
            continue
        count = len(ctx.issues)
        walk(item, path, WATCH_TREE, ctx, values)
        merged: dict[str, Any] = {}
        origin: dict[str, KeyPath] = {}
        for key in (*WATCH_ONLY, *WATCH_KEYS):
            own = f"watches.{i}.{key.path}"
            if own in values:
                merged[key.path], origin[key.path] = values[own], (*path, key.path)
            elif key.path in item:
                continue  # present but invalid: already reported
            elif f"defaults.{key.path}" in defaults:
                merged[key.path] = defaults[f"defaults.{key.path}"]
                origin[key.path] = ("defaults", key.path)
            elif key.path in raw_defaults:
                continue  # set in defaults but invalid: already reported there
            elif key.default is REQUIRED:
                where = " (here or in defaults)" if key in WATCH_KEYS else ""
                ctx.error(path, f"missing required key `{key.path}`{where}")
            else:
                merged[key.path] = key.default
        seen.append((i, merged, origin))
        if len(ctx.issues) == count and len(merged) == len(WATCH_ONLY) + len(WATCH_KEYS):
            built.append(WatchConfig(**merged))
    check_between(seen, ctx)
    return built
