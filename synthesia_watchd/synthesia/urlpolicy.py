"""Which URLs the client may talk to, and how a URL is written in a message.

The API URL is checked once when a client is built; a download URL (and every redirect hop)
before it is fetched, since it comes from the remote API and is untrusted: https only (plain
http only to a loopback host), no embedded credentials, and only the operator's
``allowed_download_hosts`` when set. Messages show ``scheme://host/path`` only: signed URLs
carry credentials in their query string.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from synthesia_watchd.domain.errors import UnsafeUrlError
from synthesia_watchd.domain.urls import is_loopback_host


def check_api_url(api_url: str) -> None:
    """Raise ValueError unless ``api_url`` is scheme://host[:port][/path] over https (or
    plain http to a loopback host)."""
    parts = urlsplit(api_url)
    host = (parts.hostname or "").lower()
    if not host or parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError(f"api_url {safe_url(api_url)!r} must be scheme://host[:port][/path]")
    if not (parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(host))):
        raise ValueError(
            f"api_url {safe_url(api_url)!r} must use https "
            "(plain http is allowed only for loopback hosts)"
        )


def check_url(url: str, *, allowed_hosts: Sequence[str] = ()) -> str:
    """The URL's host if it is https (or http to loopback) and allowed; else UnsafeUrlError."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if not host:
        raise UnsafeUrlError(f"refusing URL without a host: {safe_url(url)}")
    if parts.username or parts.password:
        raise UnsafeUrlError(f"refusing URL with embedded credentials: {safe_url(url)}")
    if parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(host)):
        pass
    else:
        raise UnsafeUrlError(
            f"refusing {parts.scheme or 'scheme-less'} URL {safe_url(url)}: "
            "only https (or http to a loopback host) is allowed"
        )
    if allowed_hosts and not any(_host_matches(host, allowed) for allowed in allowed_hosts):
        raise UnsafeUrlError(f"refusing download host {host}: not in allowed_download_hosts")
    return host


def _host_matches(host: str, allowed: str) -> bool:
    """Exact host match; an entry starting with '.' also matches every subdomain."""
    allowed = allowed.lower()
    if allowed.startswith("."):
        return host == allowed[1:] or host.endswith(allowed)
    return host == allowed


def safe_url(url: str) -> str:
    """scheme://host/path only: signed URLs carry credentials in the query string."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"
