"""Reading API answers that are not what we asked for, as text for the operator (pure).

An error body in another shape than the API's own ``{"error", "context"}`` (a 422 ``detail``
list, a proxy's HTML page) keeps a short one-line excerpt, so its reason is not lost; a 401/403
without the API's JSON error is told apart from a refused key, so the operator looks at the
proxy or firewall first; the key check's answer becomes a verdict with the call that was made.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

#: Longest excerpt of a body kept in an error message.
SNIPPET = 200

#: The key check as the operator reads it: one cheap read whose documented answers are
#: 200 for a working key and 403 "Wrong API key" (GET /v2/assets/{id} answers 404 for both).
KEY_CHECK_CALL = "GET /v2/videos?limit=1"

_TAGS = re.compile(r"<[^>]*>")
_HIDDEN = re.compile(r"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class KeyCheck:
    """What the key check asked and what the answer means.

    ``verdict``: ``accepted`` (200), ``rejected`` (the API's own 401/403 error), ``blocked``
    (a 401/403 in another shape: a proxy or firewall), ``inconclusive`` (anything else).
    """

    call: str
    status: int | None
    verdict: str
    detail: str

    @property
    def summary(self) -> str:
        """One line for the operator: the call, its answer, what it means."""
        return f"{self.call} answered {self.status}: {self.verdict} ({self.detail})"


def excerpt(text: str, content_type: str, redact: Callable[[str], str]) -> str:
    """A short, redacted, one-line excerpt of any body (HTML reduced to its text)."""
    text = text[: SNIPPET * 20]
    if "html" in content_type.lower() or text.lstrip()[:1] == "<":
        text = _TAGS.sub(" ", _HIDDEN.sub(" ", text))
    text = " ".join(redact(text).split())
    if len(text) > SNIPPET:
        text = text[: SNIPPET - 3].rstrip() + "..."
    return text


def auth_message(op: str, status: int, error: str | None, context: str | None) -> str:
    """Why a 401/403 happened: the API's own Error body means the key, anything else a proxy.

    The API documents 403 with ``{"error": ...}`` for a wrong key. A 401/403 in another shape
    (an HTML page, no body) most likely came from something between us and the API.
    """
    if error is not None:
        return (
            f"{op} answered {status}: the API key was rejected "
            f"(wrong, revoked or without Legacy (v2) scope): {error}"
        )
    body = f": {context}" if context else " and no body"
    return (
        f"{op} answered {status} without the API's JSON error shape{body}; a proxy or "
        "firewall between this host and the API may have refused the request (check "
        "HTTPS_PROXY and egress rules before the key)"
    )


def unprefixed(message: str, op: str | None, status: int | None) -> str:
    """An error message without its leading "<operation> answered <status>: "."""
    return message.removeprefix(f"{op} answered {status}: ")
