"""Checked values become a ``Config``: the whole file walked, what the table alone cannot say
resolved (the API key, a shared ledger's password, rate limits from the tier), then every
problem raised at once or the settings built.

The checks that need several keys together live here too (a console reachable from the network
needs a token). Nothing reaches ``Config`` while any issue stands, so a ``Config`` is always
whole and valid.
"""

from __future__ import annotations

import os
import socket
import types
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthesia_watchd.domain.errors import ConfigError, ConfigIssue
from synthesia_watchd.domain.urls import is_loopback_host
from synthesia_watchd.files.hygiene import secret_warnings

from .apikey import API_KEY_ENV, resolve_api_key
from .checks import Context, kind_of
from .model import Config, RateLimitSpec, Secret, WatchConfig
from .schema import TIERS, TOP_KEYS, TOP_TREE, walk
from .secret import resolve_ledger_password
from .watches import build_watches
from .yamlmarks import Doc


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


@dataclass(frozen=True)
class _Found:
    """What the key table alone does not give: the API key (and where from), the ledger password."""

    api_key: Secret | None
    api_key_source: str | None
    ledger_password: Secret | None


def build(doc: Doc, ctx: Context, source: Path | None, require_watches: bool = True) -> Config:
    """Walk the whole schema, resolve the key, then raise every issue at once or build Config."""
    data = _settings(doc.data, ctx)
    top: dict[str, Any] = {}
    walk(data, (), TOP_TREE, ctx, top)
    watches = (
        build_watches(data.get("watches"), data.get("defaults"), top, ctx)
        if require_watches or data.get("watches")
        else []
    )
    found = _resolve(top, ctx)
    _check_web_listen(top, ctx)
    if ctx.issues:
        raise ConfigError(sorted(ctx.issues, key=lambda issue: issue.line or 0))
    return _config(top, ctx, source, watches, found)


def _settings(data: Any, ctx: Context) -> dict[str, Any]:
    """The file's top level as a mapping (an empty file is no settings); else one issue."""
    if data is None:
        return {}
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
    return data


def _get(top: Mapping[str, Any], key: str) -> Any:
    """A top-level key's checked value, else its default from the key table."""
    return top[key] if key in top else next(k.default for k in TOP_KEYS if k.path == key)


def _ledger_url(top: Mapping[str, Any]) -> str | None:
    """The shared PostgreSQL ledger's URL; None for a SQLite file."""
    location = _get(top, "ledger")
    return location if isinstance(location, str) else None


def _resolve(top: Mapping[str, Any], ctx: Context) -> _Found:
    """The API key and a shared ledger's password, each problem reported at its key."""
    key, key_source, problems = resolve_api_key(
        api_key_file=top.get("synthesia.api_key_file"),
        inline=top.get("synthesia.api_key"),
        environ=ctx.environ,
    )
    for key_path, message in problems:
        ctx.error(tuple(key_path.split(".")) if key_path else (), message)
    ledger_password = None
    if _ledger_url(top) is not None:
        ledger_password, problem = resolve_ledger_password(
            top.get("ledger_password_file"), ctx.environ
        )
        if problem:
            ctx.error(("ledger_password_file",), problem)
    return _Found(key, key_source, ledger_password)


def _check_web_listen(top: Mapping[str, Any], ctx: Context) -> None:
    """A console reachable from the network must ask for a token."""
    web_listen = _get(top, "web.listen")
    if web_listen and not _get(top, "web.token_file"):
        host = web_listen.rsplit(":", 1)[0].strip("[]")
        if not is_loopback_host(host):
            ctx.error(
                ("web", "listen"),
                f"{web_listen} is reachable from the network: set web.token_file (a file "
                "holding an access token) or listen on 127.0.0.1",
            )


def _rate_limits(top: Mapping[str, Any]) -> Mapping[str, RateLimitSpec]:
    """Writes and reads budgets: the tier's preset, window by window overridden by the file."""
    tier = _get(top, "api.tier")
    limits = {}
    for cls in ("writes", "reads"):
        preset = TIERS.get(tier, TIERS["creator"])[cls]
        windows = ("per_minute", "per_hour", "per_day")
        limits[cls] = RateLimitSpec(
            *(top.get(f"api.rate_limits.{cls}.{w}", preset[n]) for n, w in enumerate(windows))
        )
    return types.MappingProxyType(limits)


def _warnings(top: Mapping[str, Any], source: Path | None) -> tuple[str, ...]:
    """What works but the operator should hear about: a key in the file, readable secrets."""
    inline = top.get("synthesia.api_key") is not None
    warnings = []
    if inline:
        warnings.append(
            "synthesia.api_key is written in the config file; prefer "
            f"{API_KEY_ENV}, synthesia.api_key_file or a systemd credential"
        )
    warnings += secret_warnings(
        config_file=source,
        key_inline=inline,
        api_key_file=top.get("synthesia.api_key_file"),
        metrics_listen=_get(top, "metrics.listen"),
    )
    return tuple(warnings)


def _config(
    top: Mapping[str, Any],
    ctx: Context,
    source: Path | None,
    watches: list[WatchConfig],
    found: _Found,
) -> Config:
    """The settings themselves, once no issue stands."""

    def get(key: str) -> Any:
        return _get(top, key)

    state_dir = get("state_dir") or default_state_dir(ctx.environ)
    location = get("ledger")
    return Config(
        source=source,
        api_url=get("synthesia.api_url"),
        api_key=found.api_key,
        api_key_source=found.api_key_source,
        state_dir=state_dir,
        ledger=location if isinstance(location, Path) else state_dir / "ledger.sqlite3",
        ledger_url=_ledger_url(top),
        ledger_password=found.ledger_password,
        node_name=get("node_name") or socket.gethostname(),
        lease_duration=get("lease_duration"),
        max_uploads=get("workers.max_uploads"),
        max_active_jobs=get("workers.max_active_jobs"),
        max_downloads=get("workers.max_downloads"),
        upload_max_bandwidth=get("upload.max_bandwidth"),
        rate_limits=_rate_limits(top),
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
        api_tier=get("api.tier"),
        web_listen=get("web.listen"),
        web_token_file=get("web.token_file"),
        web_allowed_hosts=get("web.allowed_hosts"),
        notify_apprise=get("notify.apprise"),
        notify_webhook_url=get("notify.webhook.url"),
        notify_webhook_secret_file=get("notify.webhook.secret_file"),
        notify_events=get("notify.events"),
        warnings=_warnings(top, source),
    )
