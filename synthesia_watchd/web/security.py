"""The console's guards: Host allow-list, login, same-origin + token checks on changes.

- Host: only names the operator listed (plus the listen address and loopback names) are
  answered, so a DNS-rebinding page cannot talk to a console on 127.0.0.1.
- Login: with ``web.token_file``, every request needs the token, as ``Authorization: Bearer``
  (scripts) or as the basic-auth password (browsers). Compared in constant time.
- Changes are POST only. A POST whose Origin (or Referer) is another site is refused; a form
  POST must also carry the page's CSRF token. A JSON POST (the push API) needs no CSRF token:
  a cross-site page cannot send ``application/json`` without a CORS preflight, which this
  server never grants.
- Every answer forbids framing and sniffing, and allows scripts only from the console itself.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
SECURITY_HEADERS = (
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        b"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
)


class CsrfError(Exception):
    """Raised when a state change does not come from the console's own page."""


def host_of(value: str) -> str:
    """The host name of a Host header or an origin (no port, no brackets), lower case."""
    if "//" not in value:
        value = "//" + value
    try:
        return (urlsplit(value).hostname or "").lower()
    except ValueError:
        return ""


def allowed_hosts(listen: str, extra: Iterable[str]) -> frozenset[str]:
    """The Host names the console answers to."""
    names = {*LOOPBACK_NAMES, *(h.lower() for h in extra)}
    own = host_of(listen)
    if own not in ("0.0.0.0", "::"):  # noqa: S104 - a wildcard is no Host name; compared only
        names.add(own)
    return frozenset(n for n in names if n)


def _host_ok(host: str, allowed: frozenset[str]) -> bool:
    for pattern in allowed:
        if pattern.startswith("*.") and host.endswith(pattern[1:]):
            return True
        if host == pattern:
            return True
    return False


class Guard:
    """ASGI middleware: Host allow-list, login, security headers (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, hosts: frozenset[str], token: str | None) -> None:
        self.app = app
        self.hosts = hosts
        self.token = token

    def authenticated(self, headers: Headers) -> str | None:
        """'bearer', 'basic' or 'open' (no token configured), or None when refused."""
        if self.token is None:
            return "open"
        auth = headers.get("authorization", "")
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            value.strip().encode(), self.token.encode()
        ):
            return "bearer"
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return None
            _, _, password = decoded.partition(":")
            if hmac.compare_digest(password.encode(), self.token.encode()):
                return "basic"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if not _host_ok(host_of(headers.get("host", "")), self.hosts):
            await _plain(send, 400, b"unknown Host header: add it to web.allowed_hosts")
            return
        how = self.authenticated(headers)
        if how is None:
            await _plain(
                send,
                401,
                b"log in with the token from web.token_file",
                ((b"www-authenticate", b'Basic realm="synthesia-watchd", charset="UTF-8"'),),
            )
            return
        scope.setdefault("state", {})["auth"] = how

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _plain(
    send: Send, status: int, body: bytes, extra: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                *SECURITY_HEADERS,
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def new_csrf_token() -> str:
    """The token every page embeds and every form POST must return (one per daemon run)."""
    return secrets.token_urlsafe(32)


def check_same_origin(headers: Headers, scheme: str) -> None:
    """Refuse a change whose Origin (or, without one, Referer) is not this console."""
    host = headers.get("host", "")
    origin = headers.get("origin")
    if origin is None and headers.get("referer"):
        parts = urlsplit(headers["referer"])
        origin = f"{parts.scheme}://{parts.netloc}"
    if origin is not None and origin.lower() != f"{scheme}://{host}".lower():
        raise CsrfError(f"cross-site request refused (Origin {origin!r})")


def check_token(given: str | None, expected: str) -> None:
    """Refuse a form change without the page's CSRF token."""
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise CsrfError("missing or wrong CSRF token: reload the page and try again")
