"""The simulator's HTTP answers as plain values: JSON bodies, Synthesia's and S3's errors.

The service builds them, the HTTP layer (``server.py``) sends them; keeping them apart lets every
rule be tested without a socket.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from .s3 import error_xml

_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


class Headers(Protocol):
    """Request headers as the HTTP server hands them over (an email Message, not a Mapping)."""

    def get(self, name: str, /) -> str | None: ...


@dataclass
class Reply:
    """One HTTP answer: status, body bytes, content type, extra headers."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)


def json_reply(status: int, payload: Any) -> Reply:
    """A JSON answer."""
    return Reply(status, json.dumps(payload).encode())


def error_reply(status: int, error: str, context: str | None = None) -> Reply:
    """An answer with Synthesia's ``Error`` body."""
    payload = {"error": error} if context is None else {"error": error, "context": context}
    return json_reply(status, payload)


def s3_error_reply(status: int, code: str, message: str, **extra: str) -> Reply:
    """An answer the way S3 (which serves Synthesia's signed URLs) words errors."""
    return Reply(status, error_xml(code, message, **extra), "application/xml")


class Invalid(Exception):
    """Raised by a validator; becomes a 400 with an Error body naming the field."""

    def __init__(self, context: str, error: str = "Bad Request") -> None:
        super().__init__(context)
        self.error = error
        self.context = context


def ranged(reply: Reply, header: str | None) -> Reply:
    """Apply a single ``Range: bytes=a-b`` header the way S3 does (206 / 416)."""
    if not header:
        return reply
    match = _RANGE.match(header.strip())
    size = len(reply.body)
    if not match or match.groups() == ("", ""):
        return reply
    first, last = match.groups()
    if first == "":
        start, end = max(size - int(last), 0), size - 1
    else:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        return s3_error_reply(416, "InvalidRange", "The requested range is not satisfiable")
    reply.headers.append(("Content-Range", f"bytes {start}-{end}/{size}"))
    return Reply(206, reply.body[start : end + 1], reply.content_type, reply.headers)
