"""The config file's schema: YAML read with lines, one check per value type, the key table.

The operator's YAML file is a public interface. Every key lives in one table (``TOP_KEYS`` and
``WATCH_KEYS``): its check, its default and its entry in docs/configuration.md all come from it,
so no key exists without a description and a default. ``walk`` checks parsed data against the
table and collects every problem with file, key path and line, so a file is fixed in one pass.
The values it yields (``Secret``, ``PostAction`` and plain data) are assembled into the daemon's
settings by config.py, which imports this module; this module never imports config.py.

This module and config.py are the only ones that import yaml.
"""

from __future__ import annotations

import dataclasses
import difflib
import hmac
import ipaddress
import math
import os
import re
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml

from . import contract
from .errors import ConfigError, ConfigIssue
from .urls import is_loopback_host

KeyPath = tuple[str | int, ...]

MASK = "***"
_SECRET_PATH: KeyPath = ("synthesia", "api_key")

#: Rate-limit presets per tier: (per_minute, per_hour, per_day) for writes and reads.
TIERS: Mapping[str, Mapping[str, tuple[int | None, int | None, int | None]]] = {
    "creator": {"writes": (60, 300, 1000), "reads": (60, None, 20000)},
    "tier2": {"writes": (80, 400, 2000), "reads": (80, None, 40000)},
    "tier1": {"writes": (120, 600, 3000), "reads": (120, None, 80000)},
}
TITLE_FIELDS = ("stem", "name", "watch", "lang_list")


# --- values --------------------------------------------------------------------------------------


class Secret:
    """A string that prints as ``***``: the API key can sit in a config object safely."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The value itself; call it only where the key is sent (the Authorization header)."""
        return self._value

    def __str__(self) -> str:
        return MASK

    def __repr__(self) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Secret):
            other = other._value
        if not isinstance(other, str):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other.encode())

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass(frozen=True)
class PostAction:
    """What happens to a source file after its job ends (on_success / on_failure)."""

    kind: Literal["keep", "delete", "move"]
    path: Path | None = None


# --- YAML with line numbers ----------------------------------------------------------------------


def _fmt_path(path: KeyPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


@dataclass
class Doc:
    """Parsed YAML as plain data, plus the line of every key and item and the raw scalar text."""

    # repr=False: the data may hold the API key and must not reach a traceback's locals.
    data: Any = field(repr=False)
    lines: dict[KeyPath, int] = field(default_factory=dict, repr=False)
    raw: dict[KeyPath, str] = field(default_factory=dict, repr=False)


class _Builder:
    """Turns a composed node tree into plain data, recording lines (yaml.safe_load loses them)."""

    def __init__(self, loader: yaml.SafeLoader, filename: str, issues: list[ConfigIssue]) -> None:
        self.loader, self.filename, self.issues = loader, filename, issues
        self.doc = Doc(None)
        self._stack: set[int] = set()

    def _issue(self, path: KeyPath, line: int, message: str) -> None:
        self.issues.append(ConfigIssue(self.filename, _fmt_path(path), line, message))

    def build(self, node: yaml.Node, path: KeyPath) -> Any:
        if id(node) in self._stack:
            self._issue(path, node.start_mark.line + 1, "an alias refers to itself")
            return None
        self._stack.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
            if isinstance(node, yaml.SequenceNode):
                out = []
                for i, item in enumerate(node.value):
                    self.doc.lines[(*path, i)] = item.start_mark.line + 1
                    out.append(self.build(item, (*path, i)))
                return out
            value = self.loader.construct_object(node, deep=True)
            if path == _SECRET_PATH and value is not None:
                return Secret(str(node.value))  # wrapped at once, as the operator typed it
            if not isinstance(value, str) and value is not None:
                # What the operator typed, for string fields: `no` is Norwegian, not False.
                self.doc.raw[path] = str(node.value)
            return value
        finally:
            self._stack.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, path: KeyPath) -> dict[str, Any]:
        own = sum(1 for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge")
        self.loader.flatten_mapping(node)
        merged = len(node.value) - own  # merged pairs come first; own keys may override them
        out: dict[str, Any] = {}
        seen: dict[str, int] = {}
        for index, (knode, vnode) in enumerate(node.value):
            line = knode.start_mark.line + 1
            key = self.loader.construct_object(knode, deep=True)
            if not isinstance(key, str):
                self._issue(path, line, "keys must be plain strings")
                continue
            if index >= merged and key in seen:
                self._issue((*path, key), line, f"duplicate key (first at line {seen[key]})")
                continue
            if index >= merged:
                seen[key] = line
            self.doc.lines[(*path, key)] = line
            out[key] = self.build(vnode, (*path, key))
        return out


def parse_yaml(text: str, filename: str) -> tuple[Doc, list[ConfigIssue]]:
    """Parse one YAML document; syntax errors become a ConfigError with line and column.

    The error text is built from the parser's problem and context only, never its snippet of
    the offending line, which could be the one holding the API key. Duplicate keys come back as
    issues to report together with the schema's.
    """
    issues: list[ConfigIssue] = []
    loader: yaml.SafeLoader | None = None
    try:
        loader = yaml.SafeLoader(text)
        builder = _Builder(loader, filename, issues)
        node = loader.get_single_node()
        builder.doc.data = None if node is None else builder.build(node, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = "; ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        line = mark.line + 1 if mark else None
        where = f" (line {line}, column {mark.column + 1})" if mark else ""
        issue = ConfigIssue(filename, "", line, f"invalid YAML: {what}{where}")
        raise ConfigError([issue]) from None
    except yaml.YAMLError as exc:
        line = None
        if isinstance(exc, yaml.reader.ReaderError):
            line = text.count("\n", 0, exc.position) + 1
        issue = ConfigIssue(filename, "", line, "invalid YAML: a character YAML does not allow")
        raise ConfigError([issue]) from None
    finally:
        if loader is not None:
            loader.dispose()
    return builder.doc, issues


# --- checking context ----------------------------------------------------------------------------


class _Invalid(Exception):
    """A value is wrong as a whole; the walker reports it at the value's key path."""


class _Reported(Exception):
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
        self.issues.append(ConfigIssue(self.filename, _fmt_path(path), self.line(path), message))

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


def _nullable(check: Check) -> Check:
    def run(value: Any, path: KeyPath, ctx: Context) -> Any:
        return None if value is None else check(value, path, ctx)

    return run


def kind_of(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string"}.get(
        type(value), "a list" if isinstance(value, list) else "a mapping"
    )


def _suggest(word: str, choices: Sequence[str]) -> str:
    lower = {c.lower(): c for c in choices}
    if word.lower() in lower:
        return f" (did you mean {lower[word.lower()]!r}?)"
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


# --- checks: one per value type; each returns the converted value or raises -----------------------


def _str(value: Any, path: KeyPath, ctx: Context) -> str:
    text = ctx.text(value, path)
    if text is None:
        raise _Invalid(f"expected a string, got {kind_of(value)}")
    if not text.strip():
        raise _Invalid("must not be empty")
    return text


def _secret(value: Any, path: KeyPath, ctx: Context) -> Secret:
    if isinstance(value, Secret):
        return value
    text = ctx.text(value, path)
    if text is None:
        raise _Invalid(f"expected a string, got {kind_of(value)}")  # never the value itself
    return Secret(text)


def _bool(value: Any, path: KeyPath, ctx: Context) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(f"expected true or false, got {kind_of(value)}")
    return value


def _int(minimum: int) -> Check:
    def run(value: Any, path: KeyPath, ctx: Context) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Invalid(f"expected a whole number, got {kind_of(value)}")
        if value < minimum:
            raise _Invalid(f"must be at least {minimum}, got {value}")
        return value

    return run


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)", re.IGNORECASE)
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(minimum: float) -> Check:
    def run(value: Any, path: KeyPath, ctx: Context) -> float:
        if isinstance(value, bool):
            raise _Invalid("expected seconds (a number or a string like '10s', '5m', '1h')")
        if isinstance(value, int | float):
            seconds = float(value)
        elif isinstance(value, str) and re.fullmatch(
            rf"(?:\s*{_DURATION.pattern})+\s*", value, re.I
        ):
            seconds = sum(float(n) * _UNIT_SECONDS[u.lower()] for n, u in _DURATION.findall(value))
        else:
            raise _Invalid(
                f"expected seconds (a number or a string like '10s', '5m', '1h'), got {value!r}"
            )
        if not math.isfinite(seconds):
            raise _Invalid("must be a finite number of seconds")
        if seconds < minimum:
            raise _Invalid(f"must be at least {minimum:g} seconds, got {seconds:g}")
        return seconds

    return run


_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(?:([kmgtp])(i)?)?b?\s*", re.IGNORECASE)
_SIZE_POWER = {"k": 1, "m": 2, "g": 3, "t": 4, "p": 5}


def _bytesize(value: Any, path: KeyPath, ctx: Context) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        match = _SIZE.fullmatch(value) if isinstance(value, str) else None
        if not match:
            shown = repr(value) if isinstance(value, str) else kind_of(value)
            raise _Invalid(
                f"expected bytes (a whole number or a string like '50GB', '10GiB'), got {shown}"
            )
        amount, prefix, binary = match.groups()
        power = _SIZE_POWER[prefix.lower()] if prefix else 0
        number = int(float(amount) * (1024 if binary else 1000) ** power)
    if number < 1:
        raise _Invalid(f"must be at least 1 byte, got {number}")
    return number


def _choice(*choices: str) -> Check:
    def run(value: Any, path: KeyPath, ctx: Context) -> str:
        text = ctx.text(value, path)
        if text not in choices:
            shown = repr(text) if text is not None else kind_of(value)
            raise _Invalid(
                f"must be one of {', '.join(choices)}; got {shown}{_suggest(text or '', choices)}"
            )
        return text

    return run


def _list(item: Check, *, non_empty: bool = False, unique: bool = False) -> Check:
    """A list whose items are checked one by one, each error at its own index and line."""

    def run(value: Any, path: KeyPath, ctx: Context) -> tuple[Any, ...]:
        if not isinstance(value, list):
            raise _Invalid(f"expected a list, got {kind_of(value)}")
        if non_empty and not value:
            raise _Invalid("must not be empty")
        out: list[Any] = []
        bad = False
        first: dict[Any, int] = {}
        for i, raw in enumerate(value):
            try:
                converted = item(raw, (*path, i), ctx)
            except _Invalid as exc:
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
            raise _Reported
        return tuple(out)

    return run


def _language(allowed: frozenset[str], what: str, extra: tuple[str, ...] = ()) -> Check:
    def run(value: Any, path: KeyPath, ctx: Context) -> str:
        text = ctx.text(value, path)
        if text is None:
            raise _Invalid(f"expected a language code, got {kind_of(value)}")
        if text in allowed or text in extra:
            return text
        hint = _suggest(text, sorted(allowed | set(extra)))
        raise _Invalid(f"{text!r} is not a Synthesia {what} language{hint}")

    return run


def _post_action(*, allow_delete: bool) -> Check:
    words = ("keep", "delete") if allow_delete else ("keep",)

    def run(value: Any, path: KeyPath, ctx: Context) -> PostAction:
        shape = f"{' or '.join(words)} or {{move: /folder}}"
        if isinstance(value, dict):
            extra = [k for k in value if k != "move"]
            for k in extra:
                ctx.error((*path, k), f"unknown key; expected {shape}")
            if "move" not in value:
                if not extra:
                    ctx.error(path, f"expected {shape}")
                raise _Reported
            try:
                target = ctx.path(_str(value["move"], (*path, "move"), ctx))
            except _Invalid as exc:
                ctx.error((*path, "move"), str(exc))
                raise _Reported from None
            if extra:
                raise _Reported
            return PostAction("move", target)
        text = ctx.text(value, path)
        if text in words:
            return PostAction(text)  # type: ignore[arg-type]
        hint = (
            " (delete is not offered for failures: keep the file for a retry)"
            if (text == "delete")
            else _suggest(text or "", (*words, "move"))
        )
        raise _Invalid(f"expected {shape}; got {text!r}{hint}")

    return run


def _path(value: Any, path: KeyPath, ctx: Context) -> Path:
    text = _str(value, path, ctx)
    if "\0" in text:
        raise _Invalid("a path cannot contain a NUL character")
    return ctx.path(text)


def _url(value: Any, path: KeyPath, ctx: Context) -> str:
    text = _str(value, path, ctx).strip()
    try:
        parts = urlsplit(text)
        host = parts.hostname or ""
        _ = parts.port
    except ValueError as exc:
        raise _Invalid(f"not a valid URL: {exc}") from None
    if parts.scheme not in ("https", "http") or not host:
        raise _Invalid(f"expected an https:// URL, got {text!r}")
    if parts.scheme == "http" and not is_loopback_host(host):
        raise _Invalid(
            "http:// is allowed only for loopback hosts (127.0.0.0/8, ::1, localhost); "
            "use https:// so the API key is never sent in clear"
        )
    if parts.username or parts.password or parts.query or parts.fragment:
        raise _Invalid(
            "expected scheme://host[:port][/path] without credentials, query or fragment"
        )
    return text.rstrip("/")


_HOST = re.compile(r"(\*\.)?([a-z0-9]([a-z0-9-]*[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")


def _host_pattern(value: Any, path: KeyPath, ctx: Context) -> str:
    text = _str(value, path, ctx).strip().lower().rstrip(".")
    if not _HOST.fullmatch(text):
        raise _Invalid(f"expected a host name or '*.suffix', got {text!r}")
    return text


def _listen(value: Any, path: KeyPath, ctx: Context) -> str:
    text = _str(value, path, ctx).strip()
    match = re.fullmatch(r"(\[[^\]]+\]|[^:\[\]]+):(\d{1,5})", text)
    host = match.group(1).strip("[]") if match else ""
    if not match or int(match.group(2)) > 65535:
        raise _Invalid(
            f"expected host:port with an explicit address, e.g. '127.0.0.1:9464'; got {text!r} "
            "(a bare port would listen on every interface: write '0.0.0.0:9464' if you mean it)"
        )
    if host.lower() != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise _Invalid(f"{host!r} is not an IP address or localhost") from None
    return text


def _name(value: Any, path: KeyPath, ctx: Context) -> str:
    text = _str(value, path, ctx)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", text) or text in (".", ".."):
        raise _Invalid(f"{text!r}: use only letters, digits, '_', '.' and '-'")
    return text


def _title(value: Any, path: KeyPath, ctx: Context) -> str:
    text = _str(value, path, ctx)
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]
    except ValueError as exc:
        raise _Invalid(f"bad template: {exc} (write {{{{ and }}}} for literal braces)") from None
    for f in fields:
        if f not in TITLE_FIELDS:
            raise _Invalid(
                f"unknown placeholder {{{f}}}; use {', '.join('{' + t + '}' for t in TITLE_FIELDS)}"
            )
    return text


# --- the schema ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyDoc:
    """One documented key: what docs/configuration.md says about it."""

    path: str
    type: str
    default: str
    description: str
    example: str | None = None


REQUIRED = object()


@dataclass(frozen=True)
class _Key:
    """One key: what it is and how it is checked, then (``about``) what the docs say of it."""

    path: str  # dotted below the top (or below a watch for WATCH_KEYS)
    type: str
    default: Any
    check: Check
    description: str = ""
    example: str | None = None
    default_doc: str | None = None

    def about(
        self, description: str, example: str | None = None, *, default_doc: str | None = None
    ) -> _Key:
        """This key with its documentation; keeps each table entry a few lines long."""
        return dataclasses.replace(
            self, description=description, example=example, default_doc=default_doc
        )

    def doc(self, prefix: str = "") -> KeyDoc:
        return KeyDoc(
            prefix + self.path,
            self.type,
            self.default_doc or _yaml_value(self.default),
            self.description,
            self.example,
        )


def _yaml_value(value: Any) -> str:
    if value is REQUIRED:
        return "required"
    if isinstance(value, PostAction):
        return value.kind
    if isinstance(value, tuple):
        value = list(value)
    return yaml.safe_dump(value, default_flow_style=True).removesuffix("\n...\n").strip()


_DURATION_T = "duration (seconds, or '10s', '5m', '1h')"

TOP_KEYS: tuple[_Key, ...] = (
    _Key("synthesia.api_url", "URL", contract.DEFAULT_API_URL, _url).about(
        "Base URL of the Synthesia API. https, or http only for loopback hosts (a local "
        "simulator), so the key never crosses a network in clear.",
        "http://127.0.0.1:8080",
    ),
    _Key("synthesia.api_key_file", "path", None, _nullable(_path)).about(
        "File holding the API key (surrounding whitespace and the trailing newline are "
        "stripped). Used when SYNTHESIA_API_KEY is not set. An unreadable file is an error.",
        "/run/secrets/synthesia",
    ),
    _Key("synthesia.api_key", "string (secret)", None, _nullable(_secret)).about(
        "The API key written in the config file itself. Allowed but discouraged: prefer "
        "SYNTHESIA_API_KEY, api_key_file or a systemd credential. Lowest in the resolution "
        "order; never shown by check-config."
    ),
    _Key("state_dir", "path", None, _nullable(_path)).about(
        "Folder for the daemon's own state (ledger, heartbeat). Must be on a local disk.",
        "/var/lib/synthesia-watchd",
        default_doc="$STATE_DIRECTORY (systemd), else $XDG_STATE_HOME/synthesia-watchd, "
        "else ~/.local/state/synthesia-watchd",
    ),
    _Key("ledger", "path", None, _nullable(_path)).about(
        "SQLite job ledger: what was seen, sent, paid for and written. Must be on a local "
        "disk (SQLite locking is unsafe on NFS/SMB).",
        "/var/lib/synthesia-watchd/ledger.sqlite3",
        default_doc="<state_dir>/ledger.sqlite3",
    ),
    _Key("workers.max_uploads", "integer >= 1", 2, _int(1)).about(
        "Uploads to S3 running at once (each one reads a whole video)."
    ),
    _Key("workers.max_active_jobs", "integer >= 1", 8, _int(1)).about(
        "Jobs past upload (dubbing at Synthesia) tracked at once; new submits wait beyond it."
    ),
    _Key("workers.max_downloads", "integer >= 1", 4, _int(1)).about(
        "Downloads of dubbed files running at once."
    ),
    _Key("api.tier", "creator | tier2 | tier1", "creator", _choice(*TIERS)).about(
        "Your Synthesia API tier; selects the preset for api.rate_limits. Explicit "
        "api.rate_limits values win over the preset."
    ),
    *(
        _Key(
            f"api.rate_limits.{cls}.{window}", "integer >= 1 or null", None, _nullable(_int(1))
        ).about(
            f"Most {cls[:-1]} requests per endpoint {label}; null for no limit in this window.",
            default_doc=f"from api.tier (creator: {_yaml_value(TIERS['creator'][cls][i])})",
        )
        for cls in ("writes", "reads")
        for i, (window, label) in enumerate(
            (("per_minute", "per minute"), ("per_hour", "per hour"), ("per_day", "per day"))
        )
    ),
    _Key("api.connect_timeout", _DURATION_T, 5.0, _duration(0.1)).about(
        "Seconds to wait for a TCP/TLS connection to the API."
    ),
    _Key("api.read_timeout", _DURATION_T, 60.0, _duration(0.1)).about(
        "Seconds to wait for the API (or a download) to send the next bytes."
    ),
    _Key("api.allowed_download_hosts", "list of host names", (), _list(_host_pattern)).about(
        "Hosts dubbed files may be downloaded from. Empty: any https host. Else exact host "
        "names or '*.suffix' patterns; a URL elsewhere fails the language as unsafe.",
        "['*.amazonaws.com', 'cdn.synthesia.io']",
    ),
    _Key("limits.max_jobs_per_day", "integer >= 1 or null", None, _nullable(_int(1))).about(
        "Spending guard: most dubbing projects submitted per local calendar day (resets at "
        "local midnight); null for no limit. "
        "Jobs over the limit wait for the next day.",
        "50",
    ),
    _Key(
        "limits.max_bytes_per_day", "bytes or null ('50GB', '10GiB')", None, _nullable(_bytesize)
    ).about(
        "Most source bytes submitted per local calendar day; null for no limit. "
        "Decimal (KB, MB, GB, TB) "
        "and binary (KiB, MiB, GiB, TiB) units.",
        "50GB",
    ),
    _Key(
        "on_ambiguous_submit",
        "needs_attention | retry",
        "needs_attention",
        _choice("needs_attention", "retry"),
    ).about(
        "When the daemon cannot know whether a dubbing submit reached Synthesia (it died or "
        "the connection broke after sending): needs_attention waits for a human; retry "
        "submits again and may pay twice."
    ),
    _Key("shutdown_timeout", _DURATION_T, 30.0, _duration(1)).about(
        "Seconds a stop waits for running steps to finish before cutting them off. Match "
        "systemd's TimeoutStopSec and docker's stop timeout to it."
    ),
    _Key("poll_interval_max", _DURATION_T, 300.0, _duration(1)).about(
        "Cap of the status-poll backoff for long dubbing jobs."
    ),
    _Key("metrics.listen", "host:port or null", None, _nullable(_listen)).about(
        "Address of the Prometheus /metrics and /healthz listener; null disables it. An "
        "explicit address is required (a bare port is refused).",
        "127.0.0.1:9464",
    ),
    _Key(
        "log.level",
        "debug | info | warning | error",
        "info",
        _choice("debug", "info", "warning", "error"),
    ).about("Lowest log level written."),
    _Key("log.format", "auto | json | console", "auto", _choice("auto", "json", "console")).about(
        "auto: console on a terminal, JSON lines otherwise (journald, docker)."
    ),
)

#: Keys every watch has; `defaults` sets them for all, a watch may override any of them.
WATCH_KEYS: tuple[_Key, ...] = (
    _Key(
        "source_language",
        "language code or auto",
        "auto",
        _language(contract.INPUT_LANGUAGES, "source", ("auto",)),
    ).about(
        "Language spoken in the source videos, a DubbingInputLanguage code; auto lets "
        "Synthesia detect it.",
        "en",
    ),
    _Key(
        "targets",
        "list of language codes",
        REQUIRED,
        _list(_language(contract.OUTPUT_LANGUAGES, "target"), non_empty=True, unique=True),
    ).about(
        "Languages to dub into (DubbingOutputLanguage codes), in this order. Required here "
        "or on every watch: there is no built-in default, so nothing is paid for by accident.",
        "[fr-FR, es-ES]",
    ),
    _Key("stable_seconds", _DURATION_T, 10.0, _duration(0.5)).about(
        "A file is taken only after its size and mtime stayed unchanged this long (at least "
        "0.5), so half-copied files are never sent."
    ),
    _Key("mode", "auto | native | polling", "auto", _choice("auto", "native", "polling")).about(
        "How changes are noticed. auto: inotify on local disks, polling on network and FUSE "
        "mounts (NFS/SMB changes made elsewhere never reach inotify)."
    ),
    _Key("scan_interval", _DURATION_T, 30.0, _duration(1)).about(
        "Seconds between full catch-up scans (and the polling observer's period)."
    ),
    _Key("poll_interval", _DURATION_T, 10.0, _duration(1)).about(
        "First delay between status polls of a dubbing job; it backs off up to poll_interval_max."
    ),
    _Key(
        "on_success",
        "keep | delete | {move: folder}",
        PostAction("keep"),
        _post_action(allow_delete=True),
    ).about(
        "What happens to a source once every language is written. A move keeps the "
        "subfolder layout under the target folder.",
        "{move: /srv/drop/done}",
    ),
    _Key(
        "on_failure", "keep | {move: folder}", PostAction("keep"), _post_action(allow_delete=False)
    ).about("What happens to a source whose job failed for good.", "{move: /srv/drop/failed}"),
    _Key("include", "list of globs", (), _list(_str)).about(
        "When non-empty, only file names matching one of these globs are taken.", "['*.mp4']"
    ),
    _Key("exclude", "list of globs", (), _list(_str)).about(
        "File names matching any of these globs are ignored (on top of the built-in temp, "
        "partial and NAS-metadata patterns and our own outputs).",
        "['*-draft.*']",
    ),
    _Key(
        "outputs",
        "list of video | captions | thumbnail",
        ("video",),
        _list(_choice("video", "captions", "thumbnail"), non_empty=True, unique=True),
    ).about(
        "What to download for each language: the dubbed video, its captions (srt, vtt), "
        "its thumbnail.",
        "[video, captions]",
    ),
    _Key("lipsync", "boolean", False, _bool).about("Ask Synthesia for lip-synced dubbing."),
    _Key(
        "video_duration",
        "adaptive | original | null",
        None,
        _nullable(_choice("adaptive", "original")),
    ).about(
        "Whether the dub may change the video's length; null leaves Synthesia's default (adaptive)."
    ),
    _Key(
        "visibility", "private | public | null", None, _nullable(_choice("private", "public"))
    ).about("Visibility of the dubbed videos at Synthesia; null leaves its default (private)."),
    _Key("title", "template", "{stem}", _title).about(
        "Project title at Synthesia. Placeholders: {stem}, {name}, {watch}, {lang_list}. "
        "Cut to 256 characters.",
        "'{watch}: {stem} ({lang_list})'",
    ),
    _Key("backfill_new_targets", "boolean", False, _bool).about(
        "When targets gain a language, also dub the files already done into it (adds the "
        "language to the existing project; only the new language is paid for)."
    ),
    _Key("recursive", "boolean", True, _bool).about("Also watch subfolders of input."),
)

#: Keys only a watch has: they name and place it, so `defaults` cannot set them.
WATCH_ONLY: tuple[_Key, ...] = (
    _Key("name", "string [A-Za-z0-9_.-]+", REQUIRED, _name).about(
        "Unique name of the watch, used in logs, metrics and titles.", "marketing"
    ),
    _Key("input", "path", REQUIRED, _path).about(
        "The drop folder. Absolute, or relative to the config file's folder. It need not "
        "exist yet: a missing folder is reported at run time and watched once it appears. "
        "Inputs of two watches may not overlap.",
        "/srv/drop/marketing",
    ),
    _Key("output", "path or null", None, _nullable(_path)).about(
        "Where dubbed files go, mirroring subfolders. null: beside each source (our outputs "
        "are never taken as new sources). A folder inside a recursive watch's input is "
        "refused.",
        "/srv/dubbed/marketing",
        default_doc="null (beside the source)",
    ),
)

#: Sections of the reference, in order: id -> (heading, what the section is for).
_SECTIONS: dict[str, tuple[str, str]] = {
    "synthesia": ("`synthesia`", "Where the API is and how the key is found."),
    "daemon": ("Daemon", "The daemon's own state and its behaviour around a job."),
    "workers": ("`workers`", "How much runs at once."),
    "api": ("`api`", "Talking to the API: pacing, timeouts, download hosts."),
    "limits": ("`limits`", "Spending guards."),
    "metrics": ("`metrics`", "The Prometheus listener."),
    "log": ("`log`", "Logs go to stdout: journald or docker collect them."),
    "defaults": (
        "`defaults` and watch settings",
        "Every watch inherits these; a watch may override any of them.",
    ),
    "watches[]": (
        "`watches`",
        "A list of drop folders. Each entry has the keys below plus any key of `defaults`.",
    ),
}


def _section(path: str) -> str:
    return path.split(".")[0] if "." in path else "daemon"


REFERENCE: tuple[KeyDoc, ...] = (
    *sorted((k.doc() for k in TOP_KEYS), key=lambda d: list(_SECTIONS).index(_section(d.path))),
    *(k.doc("defaults.") for k in WATCH_KEYS),
    *(k.doc("watches[].") for k in WATCH_ONLY),
)


def _tree(keys: Sequence[_Key]) -> dict[str, Any]:
    """Nested mapping spec from dotted key paths: leaves are _Key, branches dicts."""
    root: dict[str, Any] = {}
    for key in keys:
        node = root
        *parents, leaf = key.path.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = key
    return root


WATCH_TREE = _tree((*WATCH_ONLY, *WATCH_KEYS))
TOP_TREE = {**_tree(TOP_KEYS), "defaults": _tree(WATCH_KEYS), "watches": None}


def walk(
    value: Any, path: KeyPath, spec: dict[str, Any], ctx: Context, out: dict[str, Any]
) -> None:
    """Check a mapping against ``spec``: unknown keys, then each leaf; good values land in out."""
    if value is None:
        return
    if not isinstance(value, dict):
        ctx.error(path, f"expected a mapping with keys {', '.join(spec)}; got {kind_of(value)}")
        return
    for key, item in value.items():
        sub = (*path, key)
        if key not in spec:
            hint = _suggest(key, list(spec))
            if not hint and path == ("defaults",) and key in ("name", "input", "output"):
                hint = f" ({key} belongs in each watch, not in defaults)"
            ctx.error(sub, f"unknown key{hint}")
        elif isinstance(spec[key], dict):
            walk(item, sub, spec[key], ctx, out)
        elif spec[key] is not None:
            try:
                out[".".join(str(p) for p in sub)] = spec[key].check(item, sub, ctx)
            except _Invalid as exc:
                ctx.error(sub, str(exc))
            except _Reported:
                pass


_INTRO = """\
# Configuration reference

<!-- Generated by `synthesia_watchd.config.render_reference()` from the schema table in
synthesia_watchd/configschema.py. Edit the table, then regenerate this file;
a test keeps them equal. -->

The daemon reads one YAML file (`synthesia-watchd run --config FILE`; `check-config` validates it
and prints every setting after defaults). [config.example.yaml](../config.example.yaml) shows every
key with comments.

- Every error is reported at once, each with file, key path and line. Unknown keys are errors
  (with the closest known key suggested), so a typo never silently falls back to a default.
- Relative paths resolve against the config file's folder; `~` expands to the home folder.
- Durations are seconds: a number, or a string like `"10s"`, `"5m"`, `"1h"`, `"1h30m"`.
- Byte sizes are a whole number or a string like `"50GB"` (powers of 1000) or `"10GiB"` (1024).
- `defaults` holds watch settings every watch inherits; each entry of `watches` may override
  any of them.

## The API key

The key is looked up in this order, and the first one found is used:

1. the environment variable `SYNTHESIA_API_KEY`;
2. the file named by `synthesia.api_key_file`;
3. `$CREDENTIALS_DIRECTORY/synthesia_api_key` (systemd `LoadCredential=`);
4. `/run/secrets/synthesia_api_key` (Docker secrets), when readable;
5. `synthesia.api_key` in the config file (discouraged).

Whitespace and the trailing newline around a key read from a file are stripped. Having no key is
not a config error (the simulator, the demo and `--dry-run` need none). The key is never logged
and never shown: `check-config` prints `***` and where the key came from. An unreadable key file
is an error that names the file.
"""


def render_reference() -> str:
    """Markdown of every key, from the schema table; docs/configuration.md is exactly this."""
    parts = [_INTRO]
    section = None
    for doc in REFERENCE:
        if _section(doc.path) != section:
            section = _section(doc.path)
            heading, blurb = _SECTIONS[section]
            parts.append(f"\n## {heading}\n\n{blurb}\n")
        parts.append(f"\n### `{doc.path}`\n\n- type: {doc.type}\n- default: `{doc.default}`\n")
        if doc.example is not None:
            parts.append(f"- example: `{doc.path.rsplit('.', 1)[-1]}: {doc.example}`\n")
        parts.append(f"\n{doc.description}\n")
    return "".join(parts)
