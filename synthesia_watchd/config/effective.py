"""The effective config: every setting after defaults as plain data, for ``check-config``.

What the daemon will really do, shown to the operator (and dumped as YAML): secrets as ``***``
(with where the API key came from), paths as text, post-actions as written in a file.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from .model import MASK, Config, PostAction, WatchConfig
from .yamlmarks import dump_block


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
        "upload": {"max_bandwidth": cfg.upload_max_bandwidth},
        "api": _api(cfg),
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
        "notify": _notify(cfg),
        "log": {"level": cfg.log_level, "format": cfg.log_format},
        "watches": [_watch_data(w) for w in cfg.watches],
        "warnings": list(cfg.warnings),
    }


def _api(cfg: Config) -> dict[str, Any]:
    """The ``api`` section: the tier with its rate limits as in force, timeouts, hosts."""
    return {
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
    }


def _notify(cfg: Config) -> dict[str, Any]:
    """The ``notify`` section; Apprise URLs carry tokens, so they show as ``***``."""
    return {
        "apprise": [MASK for _ in cfg.notify_apprise],
        "webhook": {
            "url": cfg.notify_webhook_url,
            "secret_file": (
                str(cfg.notify_webhook_secret_file) if cfg.notify_webhook_secret_file else None
            ),
        },
        "events": list(cfg.notify_events),
    }


def dump_effective(cfg: Config) -> str:
    """``effective_config`` as YAML text."""
    return dump_block(effective_config(cfg))
