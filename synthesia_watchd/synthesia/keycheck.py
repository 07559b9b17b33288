"""Whether the API key works: one cheap read whose answer is turned into a verdict.

GET /v2/assets/{id} of a random id answers 404 "does not exist or user does not have access"
whatever the key, so it proves nothing. GET /v2/videos documents 200 and 403 "Wrong API key";
any other answer is reported as inconclusive, never as working.
"""

from __future__ import annotations

from synthesia_watchd.domain.apireplies import KEY_CHECK_CALL, KeyCheck, unprefixed
from synthesia_watchd.domain.errors import ApiError, AuthError, PermanentError
from synthesia_watchd.domain.retry import RetryPolicy
from synthesia_watchd.synthesia.transport import Transport

OP_KEY_CHECK = "GET /v2/videos"


def check_key(
    http: Transport, *, retry: RetryPolicy | None = None, read_timeout: float | None = None
) -> KeyCheck:
    """The key check's verdict (``SynthesiaClient.check_key``)."""
    timeout = None
    if read_timeout is not None:
        timeout = (http.timeout[0], min(http.timeout[1], read_timeout))
    try:
        resp = http.call(
            "GET",
            "/v2/videos",
            "/v2/videos",
            params={"limit": 1},
            policy=retry,
            timeout=timeout,
        )
    except AuthError as exc:
        verdict = "rejected" if exc.error else "blocked"
        return KeyCheck(KEY_CHECK_CALL, exc.status, verdict, _unprefixed(exc))
    except PermanentError as exc:
        return KeyCheck(
            KEY_CHECK_CALL,
            exc.status,
            "inconclusive",
            f"{_unprefixed(exc)}; only 200 or 403 says whether the key works",
        )
    return KeyCheck(KEY_CHECK_CALL, resp.status_code, "accepted", "the API answered with this key")


def raise_unless_accepted(result: KeyCheck) -> None:
    """AuthError when the key was refused, PermanentError when the answer was unsure."""
    if result.verdict in ("rejected", "blocked"):
        raise AuthError(result.summary, status=result.status, operation=OP_KEY_CHECK)
    if result.verdict != "accepted":
        raise PermanentError(result.summary, status=result.status, operation=OP_KEY_CHECK)


def _unprefixed(exc: ApiError) -> str:
    return unprefixed(str(exc), exc.operation, exc.status)
