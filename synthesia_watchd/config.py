"""Configuration: YAML -> frozen dataclasses, validated in full, and API key resolution.

The operator's YAML file is a public interface. Every key lives in one schema table (``_TOP``
and ``_WATCH_KEYS``): validation, defaults and docs/configuration.md all come from it, so no key
exists without a description and a default. Validation collects every problem with file, key
path and line and raises them together in one ``ConfigError``, so a file is fixed in one pass.
The API key is held in a ``Secret`` that never prints, and no message ever quotes it.

This is the only module that imports yaml.
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
import types
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

#: Where Docker (and compose) mount secrets.
DOCKER_SECRET = Path("/run/secrets/synthesia_api_key")
#: File name looked up in ``$CREDENTIALS_DIRECTORY`` (systemd ``LoadCredential=``).
CREDENTIAL_NAME = "synthesia_api_key"
API_KEY_ENV = "SYNTHESIA_API_KEY"
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


@dataclass(frozen=True)
class RateLimitSpec:
    """Request budget of one limit class (writes or reads) per endpoint; None means no window."""

    per_minute: int | None
    per_hour: int | None
    per_day: int | None


@dataclass(frozen=True)
class WatchConfig:
    """One drop folder and how its videos are dubbed, with defaults already folded in."""

    name: str
    input: Path
    output: Path | None
    recursive: bool
    source_language: str
    targets: tuple[str, ...]
    stable_seconds: float
    mode: str
    scan_interval: float
    poll_interval: float
    on_success: PostAction
    on_failure: PostAction
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    outputs: tuple[str, ...]
    lipsync: bool
    video_duration: str | None
    visibility: str | None
    title: str
    backfill_new_targets: bool

    @property
    def output_root(self) -> Path:
        """Folder dubbed files go under: ``output``, or beside the source when unset."""
        return self.output if self.output is not None else self.input


@dataclass(frozen=True)
class Config:
    """The whole validated configuration; build it with ``load_config`` or ``build_config``."""

    source: Path | None
    api_url: str
    api_key: Secret | None
    api_key_source: str | None
    state_dir: Path
    ledger: Path
    max_uploads: int
    max_active_jobs: int
    max_downloads: int
    rate_limits: Mapping[str, RateLimitSpec]
    connect_timeout: float
    read_timeout: float
    allowed_download_hosts: tuple[str, ...]
    max_jobs_per_day: int | None
    max_bytes_per_day: int | None
    on_ambiguous_submit: str
    shutdown_timeout: float
    poll_interval_max: float
    metrics_listen: str | None
    log_level: str
    log_format: str
    watches: tuple[WatchConfig, ...]
    api_tier: str = "creator"
    #: Things that work but that the operator should hear about (shown by check-config).
    warnings: tuple[str, ...] = field(default=())

    def watch(self, name: str) -> WatchConfig:
        """The watch called ``name``; KeyError when there is none."""
        for w in self.watches:
            if w.name == name:
                return w
        raise KeyError(name)


# --- YAML with line numbers ----------------------------------------------------------------------


def _fmt_path(path: KeyPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


@dataclass
class _Doc:
    """Parsed YAML as plain data, plus the line of every key and item and the raw scalar text."""

    # repr=False: the data may hold the API key and must not reach a traceback's locals.
    data: Any = field(repr=False)
    lines: dict[KeyPath, int] = field(default_factory=dict, repr=False)
    raw: dict[KeyPath, str] = field(default_factory=dict, repr=False)


class _Builder:
    """Turns a composed node tree into plain data, recording lines (yaml.safe_load loses them)."""

    def __init__(self, loader: yaml.SafeLoader, filename: str, issues: list[ConfigIssue]) -> None:
        self.loader, self.filename, self.issues = loader, filename, issues
        self.doc = _Doc(None)
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


def _parse_yaml(text: str, filename: str) -> tuple[_Doc, list[ConfigIssue]]:
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
class _Ctx:
    """What every check needs: where values came from, how to resolve paths, where issues go."""

    filename: str
    doc: _Doc
    base_dir: Path
    environ: Mapping[str, str]
    docker_secret: Path = DOCKER_SECRET
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


Check = Callable[[Any, KeyPath, _Ctx], Any]


def _nullable(check: Check) -> Check:
    def run(value: Any, path: KeyPath, ctx: _Ctx) -> Any:
        return None if value is None else check(value, path, ctx)

    return run


def _kind(value: Any) -> str:
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


def _str(value: Any, path: KeyPath, ctx: _Ctx) -> str:
    text = ctx.text(value, path)
    if text is None:
        raise _Invalid(f"expected a string, got {_kind(value)}")
    if not text.strip():
        raise _Invalid("must not be empty")
    return text


def _secret(value: Any, path: KeyPath, ctx: _Ctx) -> Secret:
    if isinstance(value, Secret):
        return value
    text = ctx.text(value, path)
    if text is None:
        raise _Invalid(f"expected a string, got {_kind(value)}")  # never the value itself
    return Secret(text)


def _bool(value: Any, path: KeyPath, ctx: _Ctx) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(f"expected true or false, got {_kind(value)}")
    return value


def _int(minimum: int) -> Check:
    def run(value: Any, path: KeyPath, ctx: _Ctx) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Invalid(f"expected a whole number, got {_kind(value)}")
        if value < minimum:
            raise _Invalid(f"must be at least {minimum}, got {value}")
        return value

    return run


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)", re.IGNORECASE)
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(minimum: float) -> Check:
    def run(value: Any, path: KeyPath, ctx: _Ctx) -> float:
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


def _bytesize(value: Any, path: KeyPath, ctx: _Ctx) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        match = _SIZE.fullmatch(value) if isinstance(value, str) else None
        if not match:
            shown = repr(value) if isinstance(value, str) else _kind(value)
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
    def run(value: Any, path: KeyPath, ctx: _Ctx) -> str:
        text = ctx.text(value, path)
        if text not in choices:
            shown = repr(text) if text is not None else _kind(value)
            raise _Invalid(
                f"must be one of {', '.join(choices)}; got {shown}{_suggest(text or '', choices)}"
            )
        return text

    return run


def _list(item: Check, *, non_empty: bool = False, unique: bool = False) -> Check:
    """A list whose items are checked one by one, each error at its own index and line."""

    def run(value: Any, path: KeyPath, ctx: _Ctx) -> tuple[Any, ...]:
        if not isinstance(value, list):
            raise _Invalid(f"expected a list, got {_kind(value)}")
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
    def run(value: Any, path: KeyPath, ctx: _Ctx) -> str:
        text = ctx.text(value, path)
        if text is None:
            raise _Invalid(f"expected a language code, got {_kind(value)}")
        if text in allowed or text in extra:
            return text
        hint = _suggest(text, sorted(allowed | set(extra)))
        raise _Invalid(f"{text!r} is not a Synthesia {what} language{hint}")

    return run


def _post_action(*, allow_delete: bool) -> Check:
    words = ("keep", "delete") if allow_delete else ("keep",)

    def run(value: Any, path: KeyPath, ctx: _Ctx) -> PostAction:
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


def _path(value: Any, path: KeyPath, ctx: _Ctx) -> Path:
    text = _str(value, path, ctx)
    if "\0" in text:
        raise _Invalid("a path cannot contain a NUL character")
    return ctx.path(text)


def _url(value: Any, path: KeyPath, ctx: _Ctx) -> str:
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


def _host_pattern(value: Any, path: KeyPath, ctx: _Ctx) -> str:
    text = _str(value, path, ctx).strip().lower().rstrip(".")
    if not _HOST.fullmatch(text):
        raise _Invalid(f"expected a host name or '*.suffix', got {text!r}")
    return text


def _listen(value: Any, path: KeyPath, ctx: _Ctx) -> str:
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


def _name(value: Any, path: KeyPath, ctx: _Ctx) -> str:
    text = _str(value, path, ctx)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", text) or text in (".", ".."):
        raise _Invalid(f"{text!r}: use only letters, digits, '_', '.' and '-'")
    return text


def _title(value: Any, path: KeyPath, ctx: _Ctx) -> str:
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


_REQUIRED = object()


@dataclass(frozen=True)
class _Key:
    path: str  # dotted below the top (or below a watch for _WATCH_KEYS)
    type: str
    default: Any
    check: Check
    description: str
    example: str | None = None
    default_doc: str | None = None

    def doc(self, prefix: str = "") -> KeyDoc:
        return KeyDoc(
            prefix + self.path,
            self.type,
            self.default_doc or _yaml_value(self.default),
            self.description,
            self.example,
        )


def _yaml_value(value: Any) -> str:
    if value is _REQUIRED:
        return "required"
    if isinstance(value, PostAction):
        return value.kind
    if isinstance(value, tuple):
        value = list(value)
    return yaml.safe_dump(value, default_flow_style=True).removesuffix("\n...\n").strip()


_DURATION_T = "duration (seconds, or '10s', '5m', '1h')"

_TOP: tuple[_Key, ...] = (
    _Key(
        "synthesia.api_url",
        "URL",
        contract.DEFAULT_API_URL,
        _url,
        "Base URL of the Synthesia API. https, or http only for loopback hosts (a local "
        "simulator), so the key never crosses a network in clear.",
        "http://127.0.0.1:8080",
    ),
    _Key(
        "synthesia.api_key_file",
        "path",
        None,
        _nullable(_path),
        "File holding the API key (surrounding whitespace and the trailing newline are "
        "stripped). Used when SYNTHESIA_API_KEY is not set. An unreadable file is an error.",
        "/run/secrets/synthesia",
    ),
    _Key(
        "synthesia.api_key",
        "string (secret)",
        None,
        _nullable(_secret),
        "The API key written in the config file itself. Allowed but discouraged: prefer "
        "SYNTHESIA_API_KEY, api_key_file or a systemd credential. Lowest in the resolution "
        "order; never shown by check-config.",
    ),
    _Key(
        "state_dir",
        "path",
        None,
        _nullable(_path),
        "Folder for the daemon's own state (ledger, heartbeat). Must be on a local disk.",
        "/var/lib/synthesia-watchd",
        default_doc="$STATE_DIRECTORY (systemd), else $XDG_STATE_HOME/synthesia-watchd, "
        "else ~/.local/state/synthesia-watchd",
    ),
    _Key(
        "ledger",
        "path",
        None,
        _nullable(_path),
        "SQLite job ledger: what was seen, sent, paid for and written. Must be on a local "
        "disk (SQLite locking is unsafe on NFS/SMB).",
        "/var/lib/synthesia-watchd/ledger.sqlite3",
        default_doc="<state_dir>/ledger.sqlite3",
    ),
    _Key(
        "workers.max_uploads",
        "integer >= 1",
        2,
        _int(1),
        "Uploads to S3 running at once (each one reads a whole video).",
    ),
    _Key(
        "workers.max_active_jobs",
        "integer >= 1",
        8,
        _int(1),
        "Jobs past upload (dubbing at Synthesia) tracked at once; new submits wait beyond it.",
    ),
    _Key(
        "workers.max_downloads",
        "integer >= 1",
        4,
        _int(1),
        "Downloads of dubbed files running at once.",
    ),
    _Key(
        "api.tier",
        "creator | tier2 | tier1",
        "creator",
        _choice(*TIERS),
        "Your Synthesia API tier; selects the preset for api.rate_limits. Explicit "
        "api.rate_limits values win over the preset.",
    ),
    *(
        _Key(
            f"api.rate_limits.{cls}.{window}",
            "integer >= 1 or null",
            None,
            _nullable(_int(1)),
            f"Most {cls[:-1]} requests per endpoint {label}; null for no limit in this window.",
            default_doc=f"from api.tier (creator: {_yaml_value(TIERS['creator'][cls][i])})",
        )
        for cls in ("writes", "reads")
        for i, (window, label) in enumerate(
            (("per_minute", "per minute"), ("per_hour", "per hour"), ("per_day", "per day"))
        )
    ),
    _Key(
        "api.connect_timeout",
        _DURATION_T,
        5.0,
        _duration(0.1),
        "Seconds to wait for a TCP/TLS connection to the API.",
    ),
    _Key(
        "api.read_timeout",
        _DURATION_T,
        60.0,
        _duration(0.1),
        "Seconds to wait for the API (or a download) to send the next bytes.",
    ),
    _Key(
        "api.allowed_download_hosts",
        "list of host names",
        (),
        _list(_host_pattern),
        "Hosts dubbed files may be downloaded from. Empty: any https host. Else exact host "
        "names or '*.suffix' patterns; a URL elsewhere fails the language as unsafe.",
        "['*.amazonaws.com', 'cdn.synthesia.io']",
    ),
    _Key(
        "limits.max_jobs_per_day",
        "integer >= 1 or null",
        None,
        _nullable(_int(1)),
        "Spending guard: most dubbing projects submitted per local calendar day (resets at "
        "local midnight); null for no limit. "
        "Jobs over the limit wait for the next day.",
        "50",
    ),
    _Key(
        "limits.max_bytes_per_day",
        "bytes or null ('50GB', '10GiB')",
        None,
        _nullable(_bytesize),
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
        "When the daemon cannot know whether a dubbing submit reached Synthesia (it died or "
        "the connection broke after sending): needs_attention waits for a human; retry "
        "submits again and may pay twice.",
    ),
    _Key(
        "shutdown_timeout",
        _DURATION_T,
        30.0,
        _duration(1),
        "Seconds a stop waits for running steps to finish before cutting them off. Match "
        "systemd's TimeoutStopSec and docker's stop timeout to it.",
    ),
    _Key(
        "poll_interval_max",
        _DURATION_T,
        300.0,
        _duration(1),
        "Cap of the status-poll backoff for long dubbing jobs.",
    ),
    _Key(
        "metrics.listen",
        "host:port or null",
        None,
        _nullable(_listen),
        "Address of the Prometheus /metrics and /healthz listener; null disables it. An "
        "explicit address is required (a bare port is refused).",
        "127.0.0.1:9464",
    ),
    _Key(
        "log.level",
        "debug | info | warning | error",
        "info",
        _choice("debug", "info", "warning", "error"),
        "Lowest log level written.",
    ),
    _Key(
        "log.format",
        "auto | json | console",
        "auto",
        _choice("auto", "json", "console"),
        "auto: console on a terminal, JSON lines otherwise (journald, docker).",
    ),
)

#: Keys every watch has; `defaults` sets them for all, a watch may override any of them.
_WATCH_KEYS: tuple[_Key, ...] = (
    _Key(
        "source_language",
        "language code or auto",
        "auto",
        _language(contract.INPUT_LANGUAGES, "source", ("auto",)),
        "Language spoken in the source videos, a DubbingInputLanguage code; auto lets "
        "Synthesia detect it.",
        "en",
    ),
    _Key(
        "targets",
        "list of language codes",
        _REQUIRED,
        _list(_language(contract.OUTPUT_LANGUAGES, "target"), non_empty=True, unique=True),
        "Languages to dub into (DubbingOutputLanguage codes), in this order. Required here "
        "or on every watch: there is no built-in default, so nothing is paid for by accident.",
        "[fr-FR, es-ES]",
    ),
    _Key(
        "stable_seconds",
        _DURATION_T,
        10.0,
        _duration(0.5),
        "A file is taken only after its size and mtime stayed unchanged this long (at least "
        "0.5), so half-copied files are never sent.",
    ),
    _Key(
        "mode",
        "auto | native | polling",
        "auto",
        _choice("auto", "native", "polling"),
        "How changes are noticed. auto: inotify on local disks, polling on network and FUSE "
        "mounts (NFS/SMB changes made elsewhere never reach inotify).",
    ),
    _Key(
        "scan_interval",
        _DURATION_T,
        30.0,
        _duration(1),
        "Seconds between full catch-up scans (and the polling observer's period).",
    ),
    _Key(
        "poll_interval",
        _DURATION_T,
        10.0,
        _duration(1),
        "First delay between status polls of a dubbing job; it backs off up to poll_interval_max.",
    ),
    _Key(
        "on_success",
        "keep | delete | {move: folder}",
        PostAction("keep"),
        _post_action(allow_delete=True),
        "What happens to a source once every language is written. A move keeps the "
        "subfolder layout under the target folder.",
        "{move: /srv/drop/done}",
    ),
    _Key(
        "on_failure",
        "keep | {move: folder}",
        PostAction("keep"),
        _post_action(allow_delete=False),
        "What happens to a source whose job failed for good.",
        "{move: /srv/drop/failed}",
    ),
    _Key(
        "include",
        "list of globs",
        (),
        _list(_str),
        "When non-empty, only file names matching one of these globs are taken.",
        "['*.mp4']",
    ),
    _Key(
        "exclude",
        "list of globs",
        (),
        _list(_str),
        "File names matching any of these globs are ignored (on top of the built-in temp, "
        "partial and NAS-metadata patterns and our own outputs).",
        "['*-draft.*']",
    ),
    _Key(
        "outputs",
        "list of video | captions | thumbnail",
        ("video",),
        _list(_choice("video", "captions", "thumbnail"), non_empty=True, unique=True),
        "What to download for each language: the dubbed video, its captions (srt, vtt), "
        "its thumbnail.",
        "[video, captions]",
    ),
    _Key("lipsync", "boolean", False, _bool, "Ask Synthesia for lip-synced dubbing."),
    _Key(
        "video_duration",
        "adaptive | original | null",
        None,
        _nullable(_choice("adaptive", "original")),
        "Whether the dub may change the video's length; null leaves Synthesia's default "
        "(adaptive).",
    ),
    _Key(
        "visibility",
        "private | public | null",
        None,
        _nullable(_choice("private", "public")),
        "Visibility of the dubbed videos at Synthesia; null leaves its default (private).",
    ),
    _Key(
        "title",
        "template",
        "{stem}",
        _title,
        "Project title at Synthesia. Placeholders: {stem}, {name}, {watch}, {lang_list}. "
        "Cut to 256 characters.",
        "'{watch}: {stem} ({lang_list})'",
    ),
    _Key(
        "backfill_new_targets",
        "boolean",
        False,
        _bool,
        "When targets gain a language, also dub the files already done into it (adds the "
        "language to the existing project; only the new language is paid for).",
    ),
    _Key("recursive", "boolean", True, _bool, "Also watch subfolders of input."),
)

_WATCH_ONLY: tuple[_Key, ...] = (
    _Key(
        "name",
        "string [A-Za-z0-9_.-]+",
        _REQUIRED,
        _name,
        "Unique name of the watch, used in logs, metrics and titles.",
        "marketing",
    ),
    _Key(
        "input",
        "path",
        _REQUIRED,
        _path,
        "The drop folder. Absolute, or relative to the config file's folder. It need not "
        "exist yet: a missing folder is reported at run time and watched once it appears. "
        "Inputs of two watches may not overlap.",
        "/srv/drop/marketing",
    ),
    _Key(
        "output",
        "path or null",
        None,
        _nullable(_path),
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
    *sorted((k.doc() for k in _TOP), key=lambda d: list(_SECTIONS).index(_section(d.path))),
    *(k.doc("defaults.") for k in _WATCH_KEYS),
    *(k.doc("watches[].") for k in _WATCH_ONLY),
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


_WATCH_TREE = _tree((*_WATCH_ONLY, *_WATCH_KEYS))
_TOP_TREE = {**_tree(_TOP), "defaults": _tree(_WATCH_KEYS), "watches": None}


def _walk(value: Any, path: KeyPath, spec: dict[str, Any], ctx: _Ctx, out: dict[str, Any]) -> None:
    """Check a mapping against ``spec``: unknown keys, then each leaf; good values land in out."""
    if value is None:
        return
    if not isinstance(value, dict):
        ctx.error(path, f"expected a mapping with keys {', '.join(spec)}; got {_kind(value)}")
        return
    for key, item in value.items():
        sub = (*path, key)
        if key not in spec:
            hint = _suggest(key, list(spec))
            if not hint and path == ("defaults",) and key in ("name", "input", "output"):
                hint = f" ({key} belongs in each watch, not in defaults)"
            ctx.error(sub, f"unknown key{hint}")
        elif isinstance(spec[key], dict):
            _walk(item, sub, spec[key], ctx, out)
        elif spec[key] is not None:
            try:
                out[".".join(str(p) for p in sub)] = spec[key].check(item, sub, ctx)
            except _Invalid as exc:
                ctx.error(sub, str(exc))
            except _Reported:
                pass


# --- API key -------------------------------------------------------------------------------------


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


# --- assembling ----------------------------------------------------------------------------------


def default_state_dir(environ: Mapping[str, str]) -> Path:
    """$STATE_DIRECTORY (systemd), else $XDG_STATE_HOME/synthesia-watchd, else ~/.local/state/..."""
    state = environ.get("STATE_DIRECTORY", "").split(":")[0]
    if state:
        return Path(state)
    xdg = environ.get("XDG_STATE_HOME", "")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "synthesia-watchd"
    home = environ.get("HOME") or str(Path.home())
    return Path(home) / ".local" / "state" / "synthesia-watchd"


def _watches(
    data: Any, raw_defaults: Any, defaults: dict[str, Any], ctx: _Ctx
) -> list[WatchConfig]:
    """Each watch checked, then defaults folded in, then the checks between watches."""
    raw_defaults = raw_defaults if isinstance(raw_defaults, dict) else {}
    if data is None:
        ctx.error(("watches",), "no watches: add at least one under `watches:`")
        return []
    if not isinstance(data, list):
        ctx.error(("watches",), f"expected a list of watches, got {_kind(data)}")
        return []
    if not data:
        ctx.error(("watches",), "no watches: add at least one under `watches:`")
    built: list[WatchConfig] = []
    seen: _Seen = []
    for i, item in enumerate(data):
        path: KeyPath = ("watches", i)
        values: dict[str, Any] = {}
        if not isinstance(item, dict):
            ctx.error(path, f"expected a mapping with name, input, targets...; got {_kind(item)}")
            continue
        count = len(ctx.issues)
        _walk(item, path, _WATCH_TREE, ctx, values)
        merged: dict[str, Any] = {}
        origin: dict[str, KeyPath] = {}
        for key in (*_WATCH_ONLY, *_WATCH_KEYS):
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
            elif key.default is _REQUIRED:
                where = " (here or in defaults)" if key in _WATCH_KEYS else ""
                ctx.error(path, f"missing required key `{key.path}`{where}")
            else:
                merged[key.path] = key.default
        seen.append((i, merged, origin))
        if len(ctx.issues) == count and len(merged) == len(_WATCH_ONLY) + len(_WATCH_KEYS):
            built.append(WatchConfig(**merged))
    _cross_check(seen, ctx)
    return built


def _same(a: Path, b: Path) -> bool:
    return a == b or Path(os.path.realpath(a)) == Path(os.path.realpath(b))


def _below(child: Path, parent: Path) -> bool:
    """child is strictly inside parent, by name or after resolving symlinks."""
    real_child, real_parent = Path(os.path.realpath(child)), Path(os.path.realpath(parent))
    return not _same(child, parent) and (
        child.is_relative_to(parent) or real_child.is_relative_to(real_parent)
    )


_Seen = list[tuple[int, dict[str, Any], dict[str, KeyPath]]]


def _cross_check(seen: _Seen, ctx: _Ctx) -> None:
    """Checks between watches: unique names, no overlapping inputs, outputs never re-watched.

    Runs on whatever parts of each watch were valid, so these errors show up together with the
    others instead of after the next fix.
    """
    for n, (i, w, _) in enumerate(seen):
        for j, other, _ in seen[:n]:
            if "name" in w and w["name"] == other.get("name"):
                ctx.error(
                    ("watches", i, "name"),
                    f"duplicate watch name {w['name']!r} (also watches[{j}])",
                )
            a, b = w.get("input"), other.get("input")
            if a is not None and b is not None and (_same(a, b) or _below(a, b) or _below(b, a)):
                ctx.error(
                    ("watches", i, "input"),
                    f"overlaps the input of watches[{j}]: {a} and {b} are the same folder or "
                    "one is inside the other",
                )
    for i, w, origin in seen:
        output = w.get("output")
        if output is not None:
            for j, other, _ in seen:
                root = other.get("input")
                if root is None or (j == i and _same(output, root)):
                    continue  # beside the source: our outputs are excluded by name
                if _same(output, root) or (other.get("recursive", True) and _below(output, root)):
                    whose = "this watch's input" if j == i else f"the input of watches[{j}]"
                    ctx.error(
                        origin["output"],
                        f"output folder {output} is inside {whose}, so dubbed files would be "
                        "taken as new sources; put it elsewhere, leave output unset (beside "
                        "the source) or set recursive: false",
                    )
        for action in ("on_success", "on_failure"):
            folder = getattr(w.get(action), "path", None)
            for j, other, _ in seen:
                root = other.get("input")
                if folder is None or root is None:
                    continue
                if _same(folder, root) or (other.get("recursive", True) and _below(folder, root)):
                    whose = "this watch's input" if j == i else f"the input of watches[{j}]"
                    inherited = "" if origin[action][0] == "watches" else f" (in watches[{i}])"
                    ctx.error(
                        (*origin[action], "move"),
                        f"move folder {folder} is inside {whose}{inherited}, so moved files "
                        "would be taken as new sources; put it outside every watched folder",
                    )


def _build(doc: _Doc, ctx: _Ctx, source: Path | None, require_watches: bool = True) -> Config:
    """Walk the whole schema, resolve the key, then raise every issue at once or build Config."""
    data = doc.data
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            [
                ConfigIssue(
                    ctx.filename,
                    "",
                    ctx.line(()),
                    f"expected a mapping of settings, got {_kind(data)}",
                )
            ]
        )
    top: dict[str, Any] = {}
    _walk(data, (), _TOP_TREE, ctx, top)
    watches = (
        _watches(data.get("watches"), data.get("defaults"), top, ctx)
        if require_watches or data.get("watches")
        else []
    )

    def get(key: str) -> Any:
        return top[key] if key in top else next(k.default for k in _TOP if k.path == key)

    state_dir = get("state_dir") or default_state_dir(ctx.environ)
    inline = top.get("synthesia.api_key")
    key, key_source, problems = resolve_api_key(
        api_key_file=top.get("synthesia.api_key_file"),
        inline=inline,
        environ=ctx.environ,
        docker_secret=ctx.docker_secret,
    )
    for key_path, message in problems:
        ctx.error(tuple(key_path.split(".")) if key_path else (), message)
    tier = get("api.tier")
    limits = {}
    for cls in ("writes", "reads"):
        preset = TIERS.get(tier, TIERS["creator"])[cls]
        windows = ("per_minute", "per_hour", "per_day")
        limits[cls] = RateLimitSpec(
            *(top.get(f"api.rate_limits.{cls}.{w}", preset[n]) for n, w in enumerate(windows))
        )
    if ctx.issues:
        raise ConfigError(sorted(ctx.issues, key=lambda issue: issue.line or 0))
    warnings = []
    if inline is not None:
        warnings.append(
            "synthesia.api_key is written in the config file; prefer "
            f"{API_KEY_ENV}, synthesia.api_key_file or a systemd credential"
        )
    return Config(
        source=source,
        api_url=get("synthesia.api_url"),
        api_key=key,
        api_key_source=key_source,
        state_dir=state_dir,
        ledger=get("ledger") or state_dir / "ledger.sqlite3",
        max_uploads=get("workers.max_uploads"),
        max_active_jobs=get("workers.max_active_jobs"),
        max_downloads=get("workers.max_downloads"),
        rate_limits=types.MappingProxyType(limits),
        connect_timeout=get("api.connect_timeout"),
        read_timeout=get("api.read_timeout"),
        allowed_download_hosts=get("api.allowed_download_hosts"),
        max_jobs_per_day=get("limits.max_jobs_per_day"),
        max_bytes_per_day=get("limits.max_bytes_per_day"),
        on_ambiguous_submit=get("on_ambiguous_submit"),
        shutdown_timeout=get("shutdown_timeout"),
        poll_interval_max=get("poll_interval_max"),
        metrics_listen=get("metrics.listen"),
        log_level=get("log.level"),
        log_format=get("log.format"),
        watches=tuple(watches),
        api_tier=tier,
        warnings=tuple(warnings),
    )


# --- public entry points -------------------------------------------------------------------------


def load_config(path: Path, *, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate a config file; relative paths resolve against its folder."""
    path = Path(path)
    filename = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigError(
            [ConfigIssue(filename, "", None, f"cannot read: {exc.strerror}")]
        ) from None
    except UnicodeDecodeError:
        raise ConfigError([ConfigIssue(filename, "", None, "not UTF-8 text")]) from None
    source = Path(os.path.abspath(path))
    return _from_text(text, filename, source.parent, environ, source)


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
    doc = _Doc(_plain(data))
    ctx = _Ctx(filename, doc, _base(base_dir), os.environ if environ is None else environ)
    return _build(doc, ctx, None, require_watches)


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
) -> Config:
    doc, issues = _parse_yaml(text, filename)
    ctx = _Ctx(filename, doc, _base(base_dir), os.environ if environ is None else environ)
    ctx.issues.extend(issues)
    return _build(doc, ctx, source)


def _action(pa: PostAction) -> Any:
    return {"move": str(pa.path)} if pa.kind == "move" else pa.kind


def _watch_data(w: WatchConfig) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(w):
        value = getattr(w, f.name)
        if isinstance(value, PostAction):
            value = _action(value)
        elif isinstance(value, Path):
            value = str(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


def effective_config(cfg: Config) -> dict[str, Any]:
    """Every setting after defaults, as plain data for ``check-config``; the key shows as ***."""
    return {
        "source": str(cfg.source) if cfg.source else None,
        "synthesia": {
            "api_url": cfg.api_url,
            "api_key": MASK if cfg.api_key else None,
            "api_key_source": cfg.api_key_source,
        },
        "state_dir": str(cfg.state_dir),
        "ledger": str(cfg.ledger),
        "workers": {
            "max_uploads": cfg.max_uploads,
            "max_active_jobs": cfg.max_active_jobs,
            "max_downloads": cfg.max_downloads,
        },
        "api": {
            "tier": cfg.api_tier,
            "rate_limits": {
                cls: {
                    "per_minute": spec.per_minute,
                    "per_hour": spec.per_hour,
                    "per_day": spec.per_day,
                }
                for cls, spec in cfg.rate_limits.items()
            },
            "connect_timeout": cfg.connect_timeout,
            "read_timeout": cfg.read_timeout,
            "allowed_download_hosts": list(cfg.allowed_download_hosts),
        },
        "limits": {
            "max_jobs_per_day": cfg.max_jobs_per_day,
            "max_bytes_per_day": cfg.max_bytes_per_day,
        },
        "on_ambiguous_submit": cfg.on_ambiguous_submit,
        "shutdown_timeout": cfg.shutdown_timeout,
        "poll_interval_max": cfg.poll_interval_max,
        "metrics": {"listen": cfg.metrics_listen},
        "log": {"level": cfg.log_level, "format": cfg.log_format},
        "watches": [_watch_data(w) for w in cfg.watches],
        "warnings": list(cfg.warnings),
    }


def dump_effective(cfg: Config) -> str:
    """``effective_config`` as YAML text."""
    return yaml.safe_dump(
        effective_config(cfg),
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=100,
    )


_INTRO = """\
# Configuration reference

<!-- Generated by `synthesia_watchd.config.render_reference()` from the schema table in
synthesia_watchd/config.py. Edit the table, then regenerate this file; a test keeps them equal. -->

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
