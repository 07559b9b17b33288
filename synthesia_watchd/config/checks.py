"""Config value checks: how a check works, and the checks of plain values.

A check takes the parsed value, its key path and a ``Context`` (where values came from, how to
resolve paths, where issues go). It returns the converted value, raises ``Invalid`` when the
value is wrong as a whole, or reports item by item and raises ``Reported``, so a file is fixed
in one pass. Messages name the type expected and what was found, never the API key.

This module holds that protocol and the checks of plain values (text, numbers, durations, byte
sizes, choices, lists, paths); netchecks.py checks addresses, watchchecks.py what a watch says
about dubbing. The key table that pairs each key with its check lives in schema.py; no check
knows key names.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthesia_watchd.domain.errors import ConfigIssue

from .model import Secret
from .yamlmarks import Doc, KeyPath, fmt_path

# --- checking context ----------------------------------------------------------------------------


class Invalid(Exception):
    """A value is wrong as a whole; the walker reports it at the value's key path."""


class Reported(Exception):
    """Parts of a value were wrong and already reported item by item."""


@dataclass
class Context:
    """What every check needs: where values came from, how to resolve paths, where issues go."""

    filename: str
    doc: Doc
    base_dir: Path
    environ: Mapping[str, str]
    issues: list[ConfigIssue] = field(default_factory=list)

    def line(self, path: KeyPath) -> int | None:
        while path:
            if path in self.doc.lines:
                return self.doc.lines[path]
            path = path[:-1]
        return 1 if self.doc.lines else None

    def error(self, path: KeyPath, message: str) -> None:
        self.issues.append(ConfigIssue(self.filename, fmt_path(path), self.line(path), message))

    def text(self, value: Any, path: KeyPath) -> str | None:
        """``value`` as the operator typed it when it is a scalar, else None."""
        if isinstance(value, str):
            return value
        return self.doc.raw.get(path)

    def path(self, text: str) -> Path:
        """``~`` expanded, relative paths against the config file's folder, normalised."""
        if text == "~" or text.startswith("~/"):
            home = self.environ.get("HOME") or str(Path.home())
            text = home + text[1:]
        elif text.startswith("~"):
            text = os.path.expanduser(text)
        return Path(os.path.normpath(self.base_dir / text))


Check = Callable[[Any, KeyPath, Context], Any]


def nullable(check: Check) -> Check:
    """``check``, but null passes as None: for keys whose null means "off" or "default"."""

    def run(value: Any, path: KeyPath, ctx: Context) -> Any:
        return None if value is None else check(value, path, ctx)

    return run


def kind_of(value: Any) -> str:
    """What the operator wrote, in words, for messages that must not quote the value."""
    if value is None:
        return "nothing (null)"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string"}.get(
        type(value), "a list" if isinstance(value, list) else "a mapping"
    )


def suggest(word: str, choices: Sequence[str]) -> str:
    """A " (did you mean ...?)" hint for a near miss, else empty: typos get fixed in one go."""
    lower = {c.lower(): c for c in choices}
    if word.lower() in lower:
        return f" (did you mean {lower[word.lower()]!r}?)"
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


# --- checks: one per value type; each returns the converted value or raises -----------------------


def nonempty_text(value: Any, path: KeyPath, ctx: Context) -> str:
    text = ctx.text(value, path)
    if text is None:
        raise Invalid(f"expected a string, got {kind_of(value)}")
    if not text.strip():
        raise Invalid("must not be empty")
    return text


def secret(value: Any, path: KeyPath, ctx: Context) -> Secret:
    if isinstance(value, Secret):
        return value
    text = ctx.text(value, path)
    if text is None:
        raise Invalid(f"expected a string, got {kind_of(value)}")  # never the value itself
    return Secret(text)


def boolean(value: Any, path: KeyPath, ctx: Context) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"expected true or false, got {kind_of(value)}")
    return value


def integer(minimum: int) -> Check:
    def run(value: Any, path: KeyPath, ctx: Context) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise Invalid(f"expected a whole number, got {kind_of(value)}")
        if value < minimum:
            raise Invalid(f"must be at least {minimum}, got {value}")
        return value

    return run


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)", re.IGNORECASE)
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(minimum: float) -> Check:
    def run(value: Any, path: KeyPath, ctx: Context) -> float:
        if isinstance(value, bool):
            raise Invalid("expected seconds (a number or a string like '10s', '5m', '1h')")
        if isinstance(value, int | float):
            seconds = float(value)
        elif isinstance(value, str) and re.fullmatch(
            rf"(?:\s*{_DURATION.pattern})+\s*", value, re.I
        ):
            seconds = sum(float(n) * _UNIT_SECONDS[u.lower()] for n, u in _DURATION.findall(value))
        else:
            raise Invalid(
                f"expected seconds (a number or a string like '10s', '5m', '1h'), got {value!r}"
            )
        if not math.isfinite(seconds):
            raise Invalid("must be a finite number of seconds")
        if seconds < minimum:
            raise Invalid(f"must be at least {minimum:g} seconds, got {seconds:g}")
        return seconds

    return run


_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(?:([kmgtp])(i)?)?b?\s*", re.IGNORECASE)
_SIZE_POWER = {"k": 1, "m": 2, "g": 3, "t": 4, "p": 5}


def bytesize(value: Any, path: KeyPath, ctx: Context) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        match = _SIZE.fullmatch(value) if isinstance(value, str) else None
        if not match:
            shown = repr(value) if isinstance(value, str) else kind_of(value)
            raise Invalid(
                f"expected bytes (a whole number or a string like '50GB', '10GiB'), got {shown}"
            )
        amount, prefix, binary = match.groups()
        power = _SIZE_POWER[prefix.lower()] if prefix else 0
        number = int(float(amount) * (1024 if binary else 1000) ** power)
    if number < 1:
        raise Invalid(f"must be at least 1 byte, got {number}")
    return number


def one_of(*choices: str) -> Check:
    def run(value: Any, path: KeyPath, ctx: Context) -> str:
        text = ctx.text(value, path)
        if text not in choices:
            shown = repr(text) if text is not None else kind_of(value)
            raise Invalid(
                f"must be one of {', '.join(choices)}; got {shown}{suggest(text or '', choices)}"
            )
        return text

    return run


def list_of(item: Check, *, non_empty: bool = False, unique: bool = False) -> Check:
    """A list whose items are checked one by one, each error at its own index and line."""

    def run(value: Any, path: KeyPath, ctx: Context) -> tuple[Any, ...]:
        if not isinstance(value, list):
            raise Invalid(f"expected a list, got {kind_of(value)}")
        if non_empty and not value:
            raise Invalid("must not be empty")
        out: list[Any] = []
        bad = False
        first: dict[Any, int] = {}
        for i, raw in enumerate(value):
            try:
                converted = item(raw, (*path, i), ctx)
            except Invalid as exc:
                ctx.error((*path, i), str(exc))
                bad = True
                continue
            if unique and converted in first:
                ctx.error(
                    (*path, i), f"{converted!r} is listed twice (also at [{first[converted]}])"
                )
                bad = True
                continue
            first.setdefault(converted, i)
            out.append(converted)
        if bad:
            raise Reported
        return tuple(out)

    return run


def filepath(value: Any, path: KeyPath, ctx: Context) -> Path:
    text = nonempty_text(value, path, ctx)
    if "\0" in text:
        raise Invalid("a path cannot contain a NUL character")
    return ctx.path(text)
