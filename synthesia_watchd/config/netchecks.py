"""Config checks of addresses: the API URL, download hosts, listen addresses, the ledger's place.

These decide where the daemon connects and listens, and so where the API key may travel: plain
http only to loopback, no credentials in URLs (the ledger's password comes from a file, never
the URL), listeners on an explicit address. Each check follows checks.py's protocol.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from synthesia_watchd.domain.urls import is_loopback_host

from .checks import Context, Invalid, filepath, nonempty_text
from .yamlmarks import KeyPath


def ledger_location(value: Any, path: KeyPath, ctx: Context) -> Path | str:
    """A SQLite file path, or a PostgreSQL URL (``postgresql://user@host:port/db``) kept as is."""
    text = nonempty_text(value, path, ctx).strip()
    if text.startswith(("postgresql://", "postgres://")):
        parts = urlsplit(text)
        if parts.password:
            raise Invalid(
                "the URL carries a password; leave it out and use ledger_password_file, "
                "PGPASSWORD, ~/.pgpass or a systemd/Docker credential"
            )
        if not parts.hostname and "host=" not in parts.query:
            raise Invalid("a PostgreSQL URL needs a host: postgresql://user@host:5432/dbname")
        return text
    return filepath(value, path, ctx)


def url(value: Any, path: KeyPath, ctx: Context) -> str:
    text = nonempty_text(value, path, ctx).strip()
    try:
        parts = urlsplit(text)
        host = parts.hostname or ""
        _ = parts.port
    except ValueError as exc:
        raise Invalid(f"not a valid URL: {exc}") from None
    if parts.scheme not in ("https", "http") or not host:
        raise Invalid(f"expected an https:// URL, got {text!r}")
    if parts.scheme == "http" and not is_loopback_host(host):
        raise Invalid(
            "http:// is allowed only for loopback hosts (127.0.0.0/8, ::1, localhost); "
            "use https:// so the API key is never sent in clear"
        )
    if parts.username or parts.password or parts.query or parts.fragment:
        raise Invalid("expected scheme://host[:port][/path] without credentials, query or fragment")
    return text.rstrip("/")


_HOST = re.compile(r"(\*\.)?([a-z0-9]([a-z0-9-]*[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")


def host_pattern(value: Any, path: KeyPath, ctx: Context) -> str:
    text = nonempty_text(value, path, ctx).strip().lower().rstrip(".")
    if not _HOST.fullmatch(text):
        raise Invalid(f"expected a host name or '*.suffix', got {text!r}")
    return text


def listen_address(value: Any, path: KeyPath, ctx: Context) -> str:
    text = nonempty_text(value, path, ctx).strip()
    match = re.fullmatch(r"(\[[^\]]+\]|[^:\[\]]+):(\d{1,5})", text)
    host = match.group(1).strip("[]") if match else ""
    if not match or int(match.group(2)) > 65535:
        raise Invalid(
            f"expected host:port with an explicit address, e.g. '127.0.0.1:9464'; got {text!r} "
            "(a bare port would listen on every interface: write '0.0.0.0:9464' if you mean it)"
        )
    if host.lower() != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise Invalid(f"{host!r} is not an IP address or localhost") from None
    return text
