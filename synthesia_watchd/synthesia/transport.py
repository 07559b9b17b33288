"""Sending requests to Synthesia: pacing, idempotency-aware retries, status codes as errors.

The only module that imports ``requests``. Every API call goes through the rate limiter
first, then is retried inline only where repeating it is safe (STYLE.md habit 9):

- GET and PUT add-locales (which skips locales it already has) are retried on any transient
  failure; so is POST /v2/assets, since a stray asset costs nothing.
- POST /v2/dubbing costs money (``submit=True``). It is resent only when the server surely
  never saw it (no connection could be made) or answered that it did not act (429,
  500/502/503). Sent and no answer (read timeout, connection dropped after sending) or a 504
  from a gateway raises AmbiguousSubmit: the project may exist and be billed.

The API key travels only as ``Authorization: <key>`` to the API host; signed download URLs
are fetched without it (S3 refuses two auth mechanisms, and the key must never leave for a
third host). Transport failures are described without their URL or query string.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urljoin

import requests

from synthesia_watchd.domain.errors import (
    AmbiguousSubmit,
    PermanentError,
    RateLimited,
    ShutdownRequested,
    TransientError,
)
from synthesia_watchd.domain.ratelimit import READ, WRITE, RateLimiter
from synthesia_watchd.domain.retry import RetryPolicy, server_wait
from synthesia_watchd.synthesia.answers import api_error, auth_error
from synthesia_watchd.synthesia.urlpolicy import check_api_url
from synthesia_watchd.telemetry.logsetup import get_logger

log = get_logger()

_MAX_REDIRECTS = 5

#: The HTTP session type a client may be given (tests mount adapters on one).
Session = requests.Session


class NoAnswer(Exception):
    """A signed-URL request got no answer (``why`` is secret-free)."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


class BodyBroken(Exception):
    """A streamed body stopped on a transport failure (``why`` is secret-free)."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


class _KeyAuth(requests.auth.AuthBase):
    """Sets ``Authorization: <key>``; also stops requests from adding ~/.netrc credentials."""

    def __init__(self, key: str) -> None:
        self._key = key

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = self._key
        return r

    def __repr__(self) -> str:
        return "_KeyAuth(<redacted>)"


class _NoAuth(requests.auth.AuthBase):
    """Removes any Authorization header (session defaults, ~/.netrc) from download requests."""

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers.pop("Authorization", None)
        return r


class Transport:
    """One API key, one session, one limiter: sends calls and fetches signed URLs."""

    def __init__(
        self,
        api_key: str,
        *,
        api_url: str,
        limiter: RateLimiter | None,
        retry: RetryPolicy,
        timeout: tuple[float, float],
        stop: threading.Event | None,
        on_response: Callable[[str, int | None], None] | None,
        session: requests.Session | None,
    ) -> None:
        if not api_key:
            raise ValueError("an API key is required")
        check_api_url(api_url)
        if len(timeout) != 2 or min(timeout) <= 0:
            raise ValueError("timeout must be a (connect, read) pair of positive seconds")
        self.base = api_url.rstrip("/")
        self._auth = _KeyAuth(api_key)
        self._key = api_key
        self.limiter = limiter if limiter is not None else RateLimiter()
        self.retry = retry
        self.timeout = (float(timeout[0]), float(timeout[1]))
        self.stop = stop if stop is not None else threading.Event()
        self._on_response = on_response
        self._session = session if session is not None else requests.Session()

    def close(self) -> None:
        """Close pooled connections."""
        self._session.close()

    def redact(self, text: str) -> str:
        """``text`` with the API key blanked out."""
        return text.replace(self._key, "<redacted>") if len(self._key) >= 4 else text

    def report(self, operation: str, status: int | None) -> None:
        """Tell the ``on_response`` hook (metrics) how a request ended (None: no answer)."""
        if self._on_response is not None:
            self._on_response(operation, status)

    def retry_or_raise(
        self, policy: RetryPolicy, op: str, why: str, status: int | None
    ) -> RetryPolicy:
        """Count one failed try; raise TransientError when none are left, else pause."""
        policy = policy.increment()
        if policy.exhausted:
            raise TransientError(
                f"{op}: {why} (gave up after {policy.attempts} tries)", status=status, operation=op
            )
        if self.stop.wait(policy.backoff()):
            raise ShutdownRequested("stopping during a retry pause")
        return policy

    # --- API calls -----------------------------------------------------------------------------

    def call(
        self,
        method: str,
        template: str,
        path: str,
        *,
        json_body: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        submit: bool = False,
        on_send: Callable[[], None] | None = None,
        on_refused: Callable[[], None] | None = None,
        policy: RetryPolicy | None = None,
        timeout: tuple[float, float] | None = None,
    ) -> requests.Response:
        """Send one API call with pacing, inline retries and error mapping; 2xx or raise.

        ``on_send``/``on_refused`` bracket each attempt (see ``start_dubbing``).
        """
        op = f"{method} {template}"
        limit_class = READ if method == "GET" else WRITE
        policy = self.retry if policy is None else policy
        while True:
            self.limiter.acquire(limit_class, op, stop=self.stop)
            if on_send is not None:
                on_send()
            try:
                resp = self._session.request(
                    method,
                    self.base + path,
                    json=json_body,
                    params=params,
                    auth=self._auth,
                    headers={"Accept": "application/json"},
                    timeout=self.timeout if timeout is None else timeout,
                    allow_redirects=False,
                )
            except requests.RequestException as exc:
                self.report(op, None)
                policy = self._unanswered(op, exc, policy, submit=submit, on_refused=on_refused)
                continue
            status = resp.status_code
            self.report(op, status)
            if 200 <= status < 300:
                return resp
            if on_refused is not None and not (submit and status == 504):
                on_refused()
            policy = self._refused(op, limit_class, resp, policy, submit=submit)

    def _unanswered(
        self,
        op: str,
        exc: requests.RequestException,
        policy: RetryPolicy,
        *,
        submit: bool,
        on_refused: Callable[[], None] | None,
    ) -> RetryPolicy:
        """No answer came: AmbiguousSubmit when a submit may have arrived, else one more try."""
        why = describe(exc)
        if submit and not _never_sent(exc):
            raise AmbiguousSubmit(
                f"{op}: sent but no answer ({why}); Synthesia may have created "
                "(and billed) the project, so it is not resent automatically",
                operation=op,
            ) from None
        if on_refused is not None:
            on_refused()
        return self.retry_or_raise(policy, op, why, None)

    def _refused(
        self,
        op: str,
        limit_class: str,
        resp: requests.Response,
        policy: RetryPolicy,
        *,
        submit: bool,
    ) -> RetryPolicy:
        """A non-2xx answer: its typed error, or the policy for one more try."""
        status = resp.status_code
        if status in (401, 403):
            raise auth_error(op, resp, self.redact)
        if status == 429:
            return self._rate_limited(op, limit_class, resp, policy)
        if submit and status == 504:
            raise AmbiguousSubmit(
                f"{op} answered 504 from a gateway: the request may have reached "
                "Synthesia, so it is not resent automatically",
                status=status,
                operation=op,
            )
        if status == 408 or (status >= 500 and status != 501):
            return self.retry_or_raise(policy, op, f"answered {status}", status)
        if 300 <= status < 400:
            raise PermanentError(
                f"{op} answered an unexpected redirect ({status})", status=status, operation=op
            )
        raise api_error(PermanentError, op, resp, self.redact)

    def _rate_limited(
        self, op: str, limit_class: str, resp: requests.Response, policy: RetryPolicy
    ) -> RetryPolicy:
        """A 429: hold every request for the server's wait; RateLimited once out of tries."""
        delay = self._rate_limit_wait(op, limit_class, resp, policy)
        self.limiter.block_until(self.limiter.clock() + delay)
        policy = policy.increment()
        if policy.exhausted:
            raise RateLimited(
                f"{op}: rate limited; retry in {delay:.1f}s",
                retry_after=delay,
                status=429,
                operation=op,
            )
        return policy

    def _rate_limit_wait(
        self, op: str, limit_class: str, resp: requests.Response, policy: RetryPolicy
    ) -> float:
        """Seconds to hold every request after a 429, logged with the header that set it."""
        raw_limit = resp.headers.get("RateLimit-Limit", "").strip()
        limit = int(raw_limit) if raw_limit.isdigit() else None
        window = self.limiter.window_for(limit_class, limit)
        wait = server_wait(resp.headers, cap=window)
        delay = wait.seconds if wait is not None else max(1.0, policy.backoff())
        log.warning(
            "rate limited by the API: waiting",
            operation=op,
            wait_seconds=round(delay, 3),
            source=wait.source if wait is not None else "backoff (no usable header)",
            header_value=wait.raw if wait is not None else None,
            capped_to_window=wait.capped if wait is not None else False,
            limit=limit,
            window_seconds=window,
        )
        return delay

    # --- signed URLs ---------------------------------------------------------------------------

    def open_signed(self, url: str, op: str, check: Callable[[str], object]) -> requests.Response:
        """GET a signed URL, streamed and never with an Authorization header; redirects are
        followed hop by hop, each new URL passing ``check`` first (which raises to refuse).

        Raises NoAnswer when no answer came (no pacing: downloads are not API calls).
        """
        current = url
        for _ in range(_MAX_REDIRECTS + 1):
            try:
                resp = self._session.get(
                    current,
                    stream=True,
                    allow_redirects=False,
                    auth=_NoAuth(),
                    headers={"Accept-Encoding": "identity"},
                    timeout=self.timeout,
                )
            except requests.RequestException as exc:
                self.report(op, None)
                raise NoAnswer(describe(exc)) from None
            self.report(op, resp.status_code)
            if not resp.is_redirect:
                return resp
            location = resp.headers.get("Location", "")
            resp.close()
            current = urljoin(current, location)
            check(current)
        raise PermanentError(f"{op}: more than {_MAX_REDIRECTS} redirects", operation=op)

    @staticmethod
    def chunks(resp: requests.Response, size: int) -> Iterator[bytes]:
        """A streamed body in chunks; a transport failure raises BodyBroken."""
        try:
            yield from resp.iter_content(size)
        except requests.RequestException as exc:
            raise BodyBroken(describe(exc)) from None


# --- transport failures ------------------------------------------------------------------------


def _reasons(exc: BaseException) -> list[str]:
    """Class names along an exception's wrapped causes (requests wraps urllib3 errors)."""
    names: list[str] = []
    seen: set[int] = set()
    todo: list[Any] = [exc]
    while todo:
        item = todo.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        names.extend(cls.__name__ for cls in type(item).__mro__)
        todo.extend(item.args)
        todo.extend([getattr(item, "reason", None), item.__cause__, item.__context__])
    return names


def _never_sent(exc: requests.RequestException) -> bool:
    """True when the request surely never reached the server: no connection was made.

    Connect timeouts and refused/unresolvable connections qualify. Anything after the
    connection opened (read timeout, reset, remote closed) may have been acted on.
    """
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError):
        names = _reasons(exc)
        return "NewConnectionError" in names or "ConnectTimeoutError" in names
    return False


def describe(exc: BaseException) -> str:
    """A short, secret-free description of a transport error (no URL, no query string)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "connect timeout"
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return "read timeout"
    names = _reasons(exc)
    for name in (
        "NewConnectionError",
        "NameResolutionError",
        "ConnectionRefusedError",
        "ConnectionResetError",
        "RemoteDisconnected",
        "BrokenPipeError",
        "IncompleteRead",
        "SSLError",
    ):
        if name in names:
            return name
    return type(exc).__name__
