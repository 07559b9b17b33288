"""Configuration: checked settings as frozen dataclasses, API key resolution, the entry points.

yamlmarks.py reads the YAML (keeping lines), configschema.py checks each key against the schema
table (with configchecks.py's value checks); this module folds
``defaults`` into each watch, checks watches against each other (names, overlapping inputs,
outputs and move folders inside a watched folder), finds the API key and builds ``Config``.
Every problem from both steps is raised together in one ``ConfigError``, each with file, key
path and line. The API key is held in a ``Secret`` that never prints, and no message quotes it.

Only yamlmarks.py imports yaml.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthesia_watchd.domain.errors import ConfigError, ConfigIssue
from synthesia_watchd.domain.urls import is_loopback_host
from synthesia_watchd.files.hygiene import secret_warnings

from .checks import MASK, TITLE_FIELDS, Context, PostAction, Secret, kind_of
from .schema import (
    REFERENCE,
    REQUIRED,
    TIERS,
    TOP_KEYS,
    TOP_TREE,
    WATCH_KEYS,
    WATCH_ONLY,
    WATCH_TREE,
    KeyDoc,
    parse_yaml,
    render_reference,
    walk,
)
from .secret import resolve_ledger_password
from .yamlmarks import MAX_CONFIG_BYTES, Doc, KeyPath, dump_block, too_large

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

#: Where Docker (and compose) mount secrets.
DOCKER_SECRET = Path("/run/secrets/synthesia_api_key")
#: File name looked up in ``$CREDENTIALS_DIRECTORY`` (systemd ``LoadCredential=``).
CREDENTIAL_NAME = "synthesia_api_key"
API_KEY_ENV = "SYNTHESIA_API_KEY"


# --- settings ------------------------------------------------------------------------------------


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
    incomplete_timeout: float = 3600.0
    #: Windows (local time) in which new paid work may start; empty: always.
    schedule: tuple[str, ...] = ()

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
    web_listen: str | None = None
    web_token_file: Path | None = None
    web_allowed_hosts: tuple[str, ...] = ()
    notify_apprise: tuple[Secret, ...] = ()
    notify_webhook_url: str | None = None
    notify_webhook_secret_file: Path | None = None
    notify_events: tuple[str, ...] = ()
    #: Things that work but that the operator should hear about (shown by check-config).
    warnings: tuple[str, ...] = field(default=())
    #: Send contentMD5 on POST /v2/assets (opt-in; see configschema).
    send_content_md5: bool = False
    #: A shared PostgreSQL ledger's URL (no password); None: the SQLite file ``ledger``.
    ledger_url: str | None = None
    #: That ledger's password when read from a file or credential (else libpq finds it).
    ledger_password: Secret | None = None
    #: This host's name in a shared ledger.
    node_name: str = field(default_factory=socket.gethostname)
    #: Seconds a claimed job stays this node's without a renewing heartbeat.
    lease_duration: float = 60.0

    @property
    def ledger_location(self) -> Path | str:
        """The ledger as ``open_ledger`` takes it: the PostgreSQL URL, else the SQLite file."""
        return self.ledger_url or self.ledger

    def ledger_password_text(self) -> str | None:
        """The shared ledger's password as read from a file or credential (None: libpq's)."""
        return None if self.ledger_password is None else self.ledger_password.reveal()

    def watch(self, name: str) -> WatchConfig:
        """The watch called ``name``; KeyError when there is none."""
        for w in self.watches:
            if w.name == name:
                return w
        raise KeyError(name)


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
    seen: _Seen = []
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


def _cross_check(seen: _Seen, ctx: Context) -> None:
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


def _build(doc: Doc, ctx: Context, source: Path | None, require_watches: bool = True) -> Config:
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
                    f"expected a mapping of settings, got {kind_of(data)}",
                )
            ]
        )
    top: dict[str, Any] = {}
    walk(data, (), TOP_TREE, ctx, top)
    watches = (
        _watches(data.get("watches"), data.get("defaults"), top, ctx)
        if require_watches or data.get("watches")
        else []
    )

    def get(key: str) -> Any:
        return top[key] if key in top else next(k.default for k in TOP_KEYS if k.path == key)

    state_dir = get("state_dir") or default_state_dir(ctx.environ)
    inline = top.get("synthesia.api_key")
    key, key_source, problems = resolve_api_key(
        api_key_file=top.get("synthesia.api_key_file"),
        inline=inline,
        environ=ctx.environ,
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
    location = get("ledger")
    ledger_url = location if isinstance(location, str) else None
    ledger_password = None
    if ledger_url is not None:
        ledger_password, problem = resolve_ledger_password(
            top.get("ledger_password_file"), ctx.environ
        )
        if problem:
            ctx.error(("ledger_password_file",), problem)
    web_listen = get("web.listen")
    if web_listen and not get("web.token_file"):
        host = web_listen.rsplit(":", 1)[0].strip("[]")
        if not is_loopback_host(host):
            ctx.error(
                ("web", "listen"),
                f"{web_listen} is reachable from the network: set web.token_file (a file "
                "holding an access token) or listen on 127.0.0.1",
            )
    if ctx.issues:
        raise ConfigError(sorted(ctx.issues, key=lambda issue: issue.line or 0))
    warnings = []
    if inline is not None:
        warnings.append(
            "synthesia.api_key is written in the config file; prefer "
            f"{API_KEY_ENV}, synthesia.api_key_file or a systemd credential"
        )
    warnings += secret_warnings(
        config_file=source,
        key_inline=inline is not None,
        api_key_file=top.get("synthesia.api_key_file"),
        metrics_listen=get("metrics.listen"),
    )
    return Config(
        source=source,
        api_url=get("synthesia.api_url"),
        api_key=key,
        api_key_source=key_source,
        state_dir=state_dir,
        ledger=location if isinstance(location, Path) else state_dir / "ledger.sqlite3",
        ledger_url=ledger_url,
        ledger_password=ledger_password,
        node_name=get("node_name") or socket.gethostname(),
        lease_duration=get("lease_duration"),
        max_uploads=get("workers.max_uploads"),
        max_active_jobs=get("workers.max_active_jobs"),
        max_downloads=get("workers.max_downloads"),
        rate_limits=types.MappingProxyType(limits),
        connect_timeout=get("api.connect_timeout"),
        read_timeout=get("api.read_timeout"),
        allowed_download_hosts=get("api.allowed_download_hosts"),
        send_content_md5=get("api.send_content_md5"),
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
        web_listen=web_listen,
        web_token_file=get("web.token_file"),
        web_allowed_hosts=get("web.allowed_hosts"),
        notify_apprise=get("notify.apprise"),
        notify_webhook_url=get("notify.webhook.url"),
        notify_webhook_secret_file=get("notify.webhook.secret_file"),
        notify_events=get("notify.events"),
        warnings=tuple(warnings),
    )


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
    require_watches: bool = True,
) -> Config:
    doc, issues = parse_yaml(text, filename)
    ctx = Context(filename, doc, _base(base_dir), os.environ if environ is None else environ)
    ctx.issues.extend(issues)
    return _build(doc, ctx, source, require_watches)


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
        "ledger": cfg.ledger_url or str(cfg.ledger),
        "node_name": cfg.node_name,
        "lease_duration": cfg.lease_duration,
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
            "send_content_md5": cfg.send_content_md5,
        },
        "limits": {
            "max_jobs_per_day": cfg.max_jobs_per_day,
            "max_bytes_per_day": cfg.max_bytes_per_day,
        },
        "on_ambiguous_submit": cfg.on_ambiguous_submit,
        "shutdown_timeout": cfg.shutdown_timeout,
        "poll_interval_max": cfg.poll_interval_max,
        "metrics": {"listen": cfg.metrics_listen},
        "web": {
            "listen": cfg.web_listen,
            "token_file": str(cfg.web_token_file) if cfg.web_token_file else None,
            "allowed_hosts": list(cfg.web_allowed_hosts),
        },
        "notify": {
            "apprise": [MASK for _ in cfg.notify_apprise],
            "webhook": {
                "url": cfg.notify_webhook_url,
                "secret_file": (
                    str(cfg.notify_webhook_secret_file) if cfg.notify_webhook_secret_file else None
                ),
            },
            "events": list(cfg.notify_events),
        },
        "log": {"level": cfg.log_level, "format": cfg.log_format},
        "watches": [_watch_data(w) for w in cfg.watches],
        "warnings": list(cfg.warnings),
    }


def dump_effective(cfg: Config) -> str:
    """``effective_config`` as YAML text."""
    return dump_block(effective_config(cfg))
