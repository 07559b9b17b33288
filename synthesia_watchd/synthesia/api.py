"""The Synthesia API client: typed answers, typed errors, idempotency-aware retries, downloads.

The only module that imports ``requests``. Every call goes through the rate limiter first,
then is retried inline only where repeating it is safe (STYLE.md habit 9):

- GET and PUT add-locales (which skips locales it already has) are retried on any transient
  failure; so is POST /v2/assets, since a stray asset costs nothing.
- POST /v2/dubbing costs money. It is resent only when the server surely never saw it (no
  connection could be made) or answered that it did not act (429, 500/502/503). Sent and no
  answer (read timeout, connection dropped after sending) or a 504 from a gateway raises
  AmbiguousSubmit: the project may exist and be billed.

The API key travels only as ``Authorization: <key>`` to the API host; downloads go to signed
URLs without it (S3 refuses two auth mechanisms, and the key must never leave for a third
host). Messages carry status codes, the API's ``error``/``context`` and ids, never the key or a
signed URL's query string.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import requests

from synthesia_watchd.domain import contract
from synthesia_watchd.domain.apireplies import (
    KEY_CHECK_CALL,
    KeyCheck,
    auth_message,
    excerpt,
    unprefixed,
)
from synthesia_watchd.domain.apitypes import (
    AddLocalesResult,
    AssetInfo,
    CreatedAsset,
    DownloadResult,
    DubbedAsset,
    Project,
    UploadCredentials,
)
from synthesia_watchd.domain.errors import (
    AmbiguousSubmit,
    ApiError,
    AuthError,
    DownloadIncomplete,
    DownloadUrlExpired,
    NoSpaceLeft,
    PermanentError,
    RateLimited,
    ShutdownRequested,
    TransientError,
    UnsafeUrlError,
)
from synthesia_watchd.domain.outputs import OutputSink
from synthesia_watchd.domain.ratelimit import READ, WRITE, RateLimiter
from synthesia_watchd.domain.retry import RetryPolicy, server_wait
from synthesia_watchd.domain.urls import is_loopback_host
from synthesia_watchd.files.diskspace import is_no_space
from synthesia_watchd.telemetry.logsetup import get_logger

OP_CREATE_ASSET = "POST /v2/assets"
OP_GET_ASSET = "GET /v2/assets/{id}"
OP_SUBMIT = "POST /v2/dubbing"
OP_GET_PROJECT = "GET /v2/dubbing/{id}"
OP_ADD_LOCALES = "PUT /v2/dubbing/{id}"
OP_KEY_CHECK = "GET /v2/videos"
OP_DOWNLOAD = "DOWNLOAD"

_CHUNK = 1 << 16
_MAX_REDIRECTS = 5

log = get_logger()


# --- answers: plain types in apitypes.py (no requests needed to read them) -------------------


# --- URL checks --------------------------------------------------------------------------------


def _check_url(url: str, *, allowed_hosts: Sequence[str] = ()) -> str:
    """The URL's host if it is https (or http to loopback) and allowed; else a reason."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if not host:
        raise UnsafeUrlError(f"refusing URL without a host: {_safe_url(url)}")
    if parts.username or parts.password:
        raise UnsafeUrlError(f"refusing URL with embedded credentials: {_safe_url(url)}")
    if parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(host)):
        pass
    else:
        raise UnsafeUrlError(
            f"refusing {parts.scheme or 'scheme-less'} URL {_safe_url(url)}: "
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


def _safe_url(url: str) -> str:
    """scheme://host/path only: signed URLs carry credentials in the query string."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


# --- transport helpers -------------------------------------------------------------------------


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


def _describe(exc: BaseException) -> str:
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


def _lower(value: Any) -> str | None:
    return value.lower() if isinstance(value, str) else None


def _first(data: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        if data.get(key) is not None:
            return data[key]
    return None


def _links(value: Any) -> dict[str, str | None]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): (v if isinstance(v, str) else None) for k, v in value.items()}


def _language_matches(language: str, targets: Sequence[str]) -> bool:
    """Case-insensitive match; a bare target ('es') also matches its locales ('es-ES').

    A bare answer ('es', the document's own filter example) is kept when a requested locale
    ('es-ES') has that base; which language it is taken for (none when two requested locales
    share the base) is ``jobspec.match_assets``' decision, and ``missing_code`` says why.
    """
    lang = language.lower()
    base = lang.split("-", 1)[0]
    for target in targets:
        t = target.lower()
        if lang == t or ("-" not in t and base == t):
            return True
    if "-" not in lang:
        return any(t.lower().split("-", 1)[0] == lang for t in targets)
    return False


def _covers(assets: Sequence[DubbedAsset], targets: Sequence[str]) -> bool:
    """Whether every requested language has an entry."""
    return all(any(_language_matches(a.language, [t]) for a in assets) for t in targets)


# --- the client --------------------------------------------------------------------------------


class SynthesiaClient:
    """One API key, one session, one limiter; safe to share between worker threads."""

    def __init__(
        self,
        api_key: str,
        *,
        api_url: str = contract.DEFAULT_API_URL,
        limiter: RateLimiter | None = None,
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008  (immutable value)
        timeout: tuple[float, float] = (5.0, 60.0),
        allowed_download_hosts: Sequence[str] = (),
        stop: threading.Event | None = None,
        on_response: Callable[[str, int | None], None] | None = None,
        session: requests.Session | None = None,
        send_content_md5: bool = False,
    ) -> None:
        if not api_key:
            raise ValueError("an API key is required")
        parts = urlsplit(api_url)
        host = (parts.hostname or "").lower()
        if not host or parts.username or parts.password or parts.query or parts.fragment:
            raise ValueError(f"api_url {_safe_url(api_url)!r} must be scheme://host[:port][/path]")
        if not (parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(host))):
            raise ValueError(
                f"api_url {_safe_url(api_url)!r} must use https "
                "(plain http is allowed only for loopback hosts)"
            )
        if len(timeout) != 2 or min(timeout) <= 0:
            raise ValueError("timeout must be a (connect, read) pair of positive seconds")
        self._base = api_url.rstrip("/")
        self._auth = _KeyAuth(api_key)
        self._key = api_key
        self._limiter = limiter if limiter is not None else RateLimiter()
        self._retry = retry
        self._timeout = (float(timeout[0]), float(timeout[1]))
        self._allowed_hosts = tuple(h.lower() for h in allowed_download_hosts)
        self._stop = stop if stop is not None else threading.Event()
        self._on_response = on_response
        self._session = session if session is not None else requests.Session()
        self._send_md5 = send_content_md5
        #: Set once the API refused the targetLanguages filter (400) and the unfiltered read
        #: worked: later polls go unfiltered, instead of two reads each.
        self._filter_refused = False

    def __repr__(self) -> str:
        return f"SynthesiaClient(api_url={self._base!r})"

    @property
    def sends_content_md5(self) -> bool:
        """Whether POST /v2/assets carries contentMD5 (opt-in: ``api.send_content_md5``)."""
        return self._send_md5

    @property
    def limiter(self) -> RateLimiter:
        """The limiter every call goes through (shared with other clients if passed in)."""
        return self._limiter

    def close(self) -> None:
        """Close pooled connections."""
        self._session.close()

    # --- plumbing ------------------------------------------------------------------------------

    def _redact(self, text: str) -> str:
        return text.replace(self._key, "<redacted>") if len(self._key) >= 4 else text

    def _report(self, operation: str, status: int | None) -> None:
        if self._on_response is not None:
            self._on_response(operation, status)

    def _pause(self, seconds: float) -> None:
        if self._stop.wait(seconds):
            raise ShutdownRequested("stopping during a retry pause")

    def _retry_or_raise(
        self, policy: RetryPolicy, op: str, why: str, status: int | None
    ) -> RetryPolicy:
        """Count one failed try; raise TransientError when none are left, else pause."""
        policy = policy.increment()
        if policy.exhausted:
            raise TransientError(
                f"{op}: {why} (gave up after {policy.attempts} tries)", status=status, operation=op
            )
        self._pause(policy.backoff())
        return policy

    def _auth_error(self, op: str, resp: requests.Response) -> AuthError:
        """401/403, worded by whether the API's own Error body came with it (apireplies)."""
        api = self._api_error(AuthError, op, resp)
        return AuthError(
            auth_message(op, resp.status_code, api.error, api.context),
            status=resp.status_code,
            error=api.error,
            context=api.context,
            operation=op,
        )

    def _api_error(self, cls: type[ApiError], op: str, resp: requests.Response) -> ApiError:
        """An error carrying the API's own ``error``/``context`` (or dubbedErrors) fields."""
        error: str | None = None
        context: str | None = None
        try:
            body = resp.json()
        except ValueError:
            body = None
        if isinstance(body, Mapping):
            if isinstance(body.get("error"), str):
                error = self._redact(body["error"])
            if isinstance(body.get("context"), str):
                context = self._redact(body["context"])
            dubbed = body.get("dubbedErrors")
            if isinstance(dubbed, list) and dubbed:
                error = error or "dubbedErrors"
                context = "; ".join(
                    f"{item.get('language') or '?'}: {item.get('error') or 'error'}"
                    for item in dubbed
                    if isinstance(item, Mapping)
                )
                context = self._redact(context)
        if error is None and context is None and resp.content:
            context = excerpt(resp.text, resp.headers.get("Content-Type", ""), self._redact)
        detail = ": ".join(part for part in (error, context) if part)
        message = f"{op} answered {resp.status_code}" + (f": {detail}" if detail else "")
        return cls(message, status=resp.status_code, error=error, context=context, operation=op)

    def _request(
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
        policy = self._retry if policy is None else policy
        while True:
            self._limiter.acquire(limit_class, op, stop=self._stop)
            if on_send is not None:
                on_send()
            try:
                resp = self._session.request(
                    method,
                    self._base + path,
                    json=json_body,
                    params=params,
                    auth=self._auth,
                    headers={"Accept": "application/json"},
                    timeout=self._timeout if timeout is None else timeout,
                    allow_redirects=False,
                )
            except requests.RequestException as exc:
                self._report(op, None)
                why = _describe(exc)
                if submit and not _never_sent(exc):
                    raise AmbiguousSubmit(
                        f"{op}: sent but no answer ({why}); Synthesia may have created "
                        "(and billed) the project, so it is not resent automatically",
                        operation=op,
                    ) from None
                if on_refused is not None:
                    on_refused()
                policy = self._retry_or_raise(policy, op, why, None)
                continue
            status = resp.status_code
            self._report(op, status)
            if 200 <= status < 300:
                return resp
            if on_refused is not None and not (submit and status == 504):
                on_refused()
            if status in (401, 403):
                raise self._auth_error(op, resp)
            if status == 429:
                delay = self._rate_limit_wait(op, limit_class, resp, policy)
                self._limiter.block_until(self._limiter.clock() + delay)
                policy = policy.increment()
                if policy.exhausted:
                    raise RateLimited(
                        f"{op}: rate limited; retry in {delay:.1f}s",
                        retry_after=delay,
                        status=429,
                        operation=op,
                    )
                continue
            if submit and status == 504:
                raise AmbiguousSubmit(
                    f"{op} answered 504 from a gateway: the request may have reached "
                    "Synthesia, so it is not resent automatically",
                    status=status,
                    operation=op,
                )
            if status == 408 or (status >= 500 and status != 501):
                policy = self._retry_or_raise(policy, op, f"answered {status}", status)
                continue
            if 300 <= status < 400:
                raise PermanentError(
                    f"{op} answered an unexpected redirect ({status})", status=status, operation=op
                )
            raise self._api_error(PermanentError, op, resp)

    def _rate_limit_wait(
        self, op: str, limit_class: str, resp: requests.Response, policy: RetryPolicy
    ) -> float:
        """Seconds to hold every request after a 429, logged with the header that set it."""
        raw_limit = resp.headers.get("RateLimit-Limit", "").strip()
        limit = int(raw_limit) if raw_limit.isdigit() else None
        window = self._limiter.window_for(limit_class, limit)
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

    def _json(self, op: str, resp: requests.Response) -> dict[str, Any]:
        try:
            body = resp.json()
        except ValueError:
            raise PermanentError(
                f"{op} answered {resp.status_code} with a body that is not JSON",
                status=resp.status_code,
                operation=op,
            ) from None
        if not isinstance(body, dict):
            raise PermanentError(
                f"{op} answered {resp.status_code} with JSON that is not an object",
                status=resp.status_code,
                operation=op,
            )
        return body

    @staticmethod
    def _required(op: str, data: Mapping[str, Any], *keys: str) -> Any:
        value = _first(data, *keys)
        if not isinstance(value, str) or not value:
            raise PermanentError(f"{op}: answer lacks required field {keys[0]!r}", operation=op)
        return value

    # --- calls ---------------------------------------------------------------------------------

    def check_key(
        self, *, retry: RetryPolicy | None = None, read_timeout: float | None = None
    ) -> KeyCheck:
        """One cheap read that tells a working key from a refused one (KEY_CHECK_CALL).

        GET /v2/assets/{id} of a random id answers 404 "does not exist or user does not have
        access" whatever the key, so it proves nothing. GET /v2/videos documents 200 and 403
        "Wrong API key"; any other answer is reported as inconclusive, never as working.
        Raises TransientError when the API cannot be reached (after ``retry``'s tries);
        ``read_timeout`` caps the wait for the answer (a start-up must not hang on it).
        """
        timeout = None
        if read_timeout is not None:
            timeout = (self._timeout[0], min(self._timeout[1], read_timeout))
        try:
            resp = self._request(
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
        return KeyCheck(
            KEY_CHECK_CALL, resp.status_code, "accepted", "the API answered with this key"
        )

    def check_auth(self) -> None:
        """``check_key`` as exceptions: AuthError when refused, PermanentError when unsure.

        Raises TransientError when the API cannot be reached.
        """
        result = self.check_key()
        if result.verdict in ("rejected", "blocked"):
            raise AuthError(result.summary, status=result.status, operation=OP_KEY_CHECK)
        if result.verdict != "accepted":
            raise PermanentError(result.summary, status=result.status, operation=OP_KEY_CHECK)

    def create_asset(
        self,
        *,
        content_type: str,
        content_length: int,
        title: str,
        detect_language: bool = False,
        content_md5: str | None = None,
    ) -> CreatedAsset:
        """POST /v2/assets: a new asset and its temporary S3 credentials (retried freely).

        ``content_md5`` (base64 of the MD5 digest, as in a Content-MD5 header) is sent only
        when the client was built with ``send_content_md5``: the official guide never sends
        it, the document names no encoding, and the API may reject or fail an asset whose
        check it reads differently.
        """
        body: dict[str, Any] = {
            "contentType": content_type,
            "configuration": {"name": "dubbing", "detectLanguage": detect_language},
            "contentLength": content_length,
            "title": title[: contract.MAX_TITLE_LENGTH],
        }
        if content_md5 is not None and self._send_md5:
            body["contentMD5"] = content_md5
        op = OP_CREATE_ASSET
        data = self._json(op, self._request("POST", "/v2/assets", "/v2/assets", json_body=body))
        creds = data.get("uploadCredentials")
        if not isinstance(creds, Mapping):
            raise PermanentError(f"{op}: answer lacks uploadCredentials", operation=op)
        credentials = UploadCredentials(
            access_key_id=self._required(op, creds, "accessKeyId"),
            secret_access_key=self._required(op, creds, "secretAccessKey"),
            session_token=self._required(op, creds, "sessionToken"),
            bucket=self._required(op, creds, "bucket"),
            key=self._required(op, creds, "key"),
        )
        upload_url = data.get("uploadUrl")
        return CreatedAsset(
            id=self._required(op, data, "id"),
            credentials=credentials,
            upload_url=upload_url if isinstance(upload_url, str) else None,
        )

    def get_asset(self, asset_id: str) -> AssetInfo:
        """GET /v2/assets/{id}: awaiting_upload/processing/ready/error (lowercased)."""
        op = OP_GET_ASSET
        resp = self._request("GET", "/v2/assets/{id}", f"/v2/assets/{_seg(asset_id)}")
        data = self._json(op, resp)
        metadata = data.get("metadata")
        detected = metadata.get("detectedLanguage") if isinstance(metadata, Mapping) else None
        status = _lower(data.get("status"))
        if status is None:
            raise PermanentError(f"{op}: answer lacks required field 'status'", operation=op)
        title = data.get("title")
        return AssetInfo(
            id=self._required(op, data, "id"),
            status=status,
            detected_language=detected if isinstance(detected, str) else None,
            error_code=data.get("errorCode") if isinstance(data.get("errorCode"), str) else None,
            title=title if isinstance(title, str) else None,
        )

    def start_dubbing(
        self,
        *,
        asset_id: str,
        title: str,
        source_language: str,
        target_languages: Sequence[str],
        lipsync: bool | None = None,
        video_duration: str | None = None,
        visibility: str | None = None,
        on_send: Callable[[], None] | None = None,
        on_refused: Callable[[], None] | None = None,
    ) -> str:
        """POST /v2/dubbing: start a (billed) project; returns its id. Never resent blindly.

        ``on_send`` runs right before each attempt goes out (after any pacing wait), and
        ``on_refused`` when the server said it did not act (429, 5xx, 4xx) or was never
        reached, so the caller can keep a durable "maybe billed" marker exactly as wide as
        the window in which Synthesia may have acted without us hearing of it.
        """
        body: dict[str, Any] = {
            "title": title[: contract.MAX_TITLE_LENGTH],
            "sourceAssetId": asset_id,
            "sourceLanguage": source_language,
            "targetLanguages": list(target_languages),
        }
        body.update(_options(lipsync, video_duration, visibility))
        op = OP_SUBMIT
        resp = self._request(
            "POST",
            "/v2/dubbing",
            "/v2/dubbing",
            json_body=body,
            submit=True,
            on_send=on_send,
            on_refused=on_refused,
        )
        try:
            data = self._json(op, resp)
            created = data.get("createdImportedAsset")
            if not isinstance(created, Mapping):
                raise PermanentError(f"{op}: answer lacks createdImportedAsset", operation=op)
            return str(self._required(op, created, "id"))
        except PermanentError as exc:
            # A 2xx means Synthesia acted; without a readable id the project is unaccounted.
            raise AmbiguousSubmit(
                f"{op} answered {resp.status_code} but the project id could not be read "
                f"({exc}); the project may exist and be billed",
                status=resp.status_code,
                operation=op,
            ) from None

    def get_project(
        self, project_id: str, target_languages: Sequence[str] | None = None
    ) -> Project:
        """GET /v2/dubbing/{id}, optionally filtered by target languages.

        The filter is sent as repeated keys (OpenAPI's default form+explode). How the real
        service reads it is an open question (CONTRACT.md C-3): a server that expects one
        comma-separated value may answer only part of the list, and a filter that matches
        nothing is documented as 404, which looks like a missing project; and the document's
        filter example uses bare codes ("es") where we send locales, so a server may refuse
        ours with a 400. So when the filtered answer is a 400 or 404 or lacks a requested
        language, the project is fetched once unfiltered and the filter applied here; only
        that answer's error is final (a 404 then means the project really is gone). After a
        400 the filter is not sent again by this client.
        """
        path = f"/v2/dubbing/{_seg(project_id)}"
        targets = list(target_languages or ())
        project: Project | None = None
        refused = False
        if targets and not self._filter_refused:
            try:
                resp = self._request(
                    "GET", "/v2/dubbing/{id}", path, params={"targetLanguages": targets}
                )
            except PermanentError as exc:
                if exc.status not in (400, 404):
                    raise
                refused = exc.status == 400
            else:
                project = self._parse_project(self._json(OP_GET_PROJECT, resp))
                if project.status != "error" and not _covers(project.assets, targets):
                    project = None
        if project is None:
            resp = self._request("GET", "/v2/dubbing/{id}", path)
            project = self._parse_project(self._json(OP_GET_PROJECT, resp))
            if refused and not self._filter_refused:
                self._filter_refused = True
                log.warning(
                    "the API refused the targetLanguages filter: polling unfiltered from now on",
                    operation=OP_GET_PROJECT,
                )
        if targets:
            kept = tuple(a for a in project.assets if _language_matches(a.language, targets))
            project = Project(project.id, project.status, project.error_code, kept)
        return project

    def add_locales(
        self,
        project_id: str,
        target_languages: Sequence[str],
        *,
        lipsync: bool | None = None,
        video_duration: str | None = None,
        visibility: str | None = None,
    ) -> AddLocalesResult:
        """PUT /v2/dubbing/{id}: add languages; existing ones are skipped (so retries are safe)."""
        body: dict[str, Any] = {"targetLanguages": list(target_languages)}
        body.update(_options(lipsync, video_duration, visibility))
        op = OP_ADD_LOCALES
        path = f"/v2/dubbing/{_seg(project_id)}"
        resp = self._request("PUT", "/v2/dubbing/{id}", path, json_body=body)
        if resp.status_code == 204:
            return AddLocalesResult(created=(), errors=(), nothing_added=True)
        data = self._json(op, resp)
        created_raw = data.get("createdDubbedAssets") or []
        errors_raw = data.get("dubbedErrors") or []
        if not isinstance(created_raw, list) or not isinstance(errors_raw, list):
            raise PermanentError(f"{op}: malformed createdDubbedAssets/dubbedErrors", operation=op)
        created = tuple(self._parse_dubbed(op, item) for item in created_raw)
        errors = tuple(
            (_str_or_none(item.get("language")), _str_or_none(item.get("error")))
            for item in errors_raw
            if isinstance(item, Mapping)
        )
        return AddLocalesResult(created=created, errors=errors, nothing_added=False)

    # --- parsing -------------------------------------------------------------------------------

    def _parse_project(self, data: Mapping[str, Any]) -> Project:
        op = OP_GET_PROJECT
        project_id = self._required(op, data, "id")
        error_code = _str_or_none(data.get("errorCode"))
        status = _lower(data.get("status")) or ("error" if error_code else "in_progress")
        items = _first(data, "dubbedAssets", "dubbedVideos", "dubbed") or []
        if not isinstance(items, list):
            raise PermanentError(f"{op}: dubbedAssets is not a list", operation=op)
        assets = tuple(self._parse_dubbed(op, item) for item in items)
        return Project(id=project_id, status=status, error_code=error_code, assets=assets)

    def _parse_dubbed(self, op: str, item: Any) -> DubbedAsset:
        if not isinstance(item, Mapping):
            raise PermanentError(f"{op}: a dubbed asset is not an object", operation=op)
        download = _first(item, "download", "downloadUrl", "url")
        error_code = _str_or_none(item.get("errorCode"))
        status = _lower(item.get("status"))
        if status is None:  # optional in the schema (CONTRACT.md C-15): infer from the shape
            status = "error" if error_code else "complete" if download else "in_progress"
        title = item.get("title")
        return DubbedAsset(
            id=self._required(op, item, "id"),
            language=self._required(op, item, "language", "locale"),
            status=status,
            download=download if isinstance(download, str) else None,
            error_code=error_code,
            captions=_links(item.get("captions")),
            thumbnail=_links(item.get("thumbnail")),
            title=title if isinstance(title, str) else None,
        )

    # --- downloads -----------------------------------------------------------------------------

    def download(
        self,
        url: str,
        dest: Path | OutputSink,
        *,
        root: Path | None = None,
        progress: Callable[[int], None] | None = None,
        replace_if: Callable[[Path], bool] | None = None,
    ) -> DownloadResult:
        """Fetch a signed URL into ``dest`` atomically (temp file, fsync, no-clobber link).

        No API key is sent, redirects are followed only to allowed https hosts, and a body
        shorter than its Content-Length raises DownloadIncomplete with no file left behind.
        403/404 raise DownloadUrlExpired (refresh with get_project); 5xx and connection
        failures are retried inline, then TransientError. An identical file already at
        ``dest`` counts as success; a different one raises OutputConflict unless
        ``replace_if(dest)`` says it may be replaced (see AtomicWriter.commit). With ``root``
        the file is written inside it without following symlinks (EscapingPath otherwise).
        ``dest`` may be an ``outputs.OutputSink`` carrying its root and ``replace_if``.
        """
        sink = dest if isinstance(dest, OutputSink) else OutputSink(dest, root, replace_if)
        op = OP_DOWNLOAD
        _check_url(url, allowed_hosts=self._allowed_hosts)
        policy = self._retry
        while True:
            if self._stop.is_set():
                raise ShutdownRequested("stopping before a download")
            try:
                return self._download_once(url, sink, progress)
            except _RetryableDownload as exc:
                policy = self._retry_or_raise(policy, op, exc.why, exc.status)

    def _open(self, url: str) -> requests.Response:
        """GET with redirects checked hop by hop; the final response is 2xx/4xx/5xx."""
        op = OP_DOWNLOAD
        current = url
        for _ in range(_MAX_REDIRECTS + 1):
            try:
                resp = self._session.get(
                    current,
                    stream=True,
                    allow_redirects=False,
                    auth=_NoAuth(),
                    headers={"Accept-Encoding": "identity"},
                    timeout=self._timeout,
                )
            except requests.RequestException as exc:
                self._report(op, None)
                raise _RetryableDownload(_describe(exc), None) from None
            self._report(op, resp.status_code)
            if not resp.is_redirect:
                return resp
            location = resp.headers.get("Location", "")
            resp.close()
            current = urljoin(current, location)
            _check_url(current, allowed_hosts=self._allowed_hosts)
        raise PermanentError(f"{op}: more than {_MAX_REDIRECTS} redirects", operation=op)

    def _download_once(
        self, url: str, sink: OutputSink, progress: Callable[[int], None] | None
    ) -> DownloadResult:
        op = OP_DOWNLOAD
        dest = sink.dest
        resp = self._open(url)
        with resp:
            status = resp.status_code
            if status in (403, 404, 410):
                raise DownloadUrlExpired(
                    f"download of {dest.name} answered {status}: the signed URL expired or is "
                    "gone; refresh it with GET /v2/dubbing/{id}",
                    status=status,
                    operation=op,
                )
            if status == 429 or status >= 500 or status == 408:
                raise _RetryableDownload(f"answered {status}", status)
            if status != 200:
                raise PermanentError(
                    f"download of {dest.name} answered {status}", status=status, operation=op
                )
            expected = _content_length(resp)
            written = 0
            try:
                with sink.writer() as writer:
                    try:
                        for chunk in resp.iter_content(_CHUNK):
                            if self._stop.is_set():
                                raise ShutdownRequested("stopping during a download")
                            writer.write(chunk)
                            written = writer.bytes_written
                            if progress is not None:
                                progress(len(chunk))
                    except (requests.RequestException, OSError) as exc:
                        if is_no_space(exc) and not isinstance(exc, requests.RequestException):
                            raise
                        raise self._short(
                            dest, writer.bytes_written, expected, _describe(exc)
                        ) from None
                    if expected is not None and writer.bytes_written != expected:
                        raise self._short(
                            dest, writer.bytes_written, expected, "body length mismatch"
                        )
                    sink.commit(writer)
                    return DownloadResult(
                        path=dest, bytes=writer.bytes_written, sha256=writer.sha256
                    )
            except OSError as exc:
                if not is_no_space(exc) or isinstance(exc, requests.RequestException):
                    raise
                # The partial file is gone already (the writer discards it on the way out).
                raise NoSpaceLeft(
                    f"download of {dest.name}: {exc.strerror or 'no space left on device'}",
                    folder=str(dest.parent),
                    needed=expected if expected is not None else written + _CHUNK,
                ) from None

    @staticmethod
    def _short(dest: Path, got: int, expected: int | None, why: str) -> DownloadIncomplete:
        of = f" of {expected}" if expected is not None else ""
        return DownloadIncomplete(
            f"download of {dest.name} stopped after {got}{of} bytes ({why}); partial file removed",
            operation=OP_DOWNLOAD,
        )


class _RetryableDownload(Exception):
    """Internal: a download attempt failed in a way worth repeating inline."""

    def __init__(self, why: str, status: int | None) -> None:
        super().__init__(why)
        self.why = why
        self.status = status


def _content_length(resp: requests.Response) -> int | None:
    """Expected body size; None when unknown or when an encoding makes it differ from ours."""
    if resp.headers.get("Content-Encoding", "identity").lower() != "identity":
        return None
    raw = resp.headers.get("Content-Length")
    try:
        value = int(raw) if raw is not None else None
    except ValueError:
        return None
    return value if value is not None and value >= 0 else None


def _unprefixed(exc: ApiError) -> str:
    return unprefixed(str(exc), exc.operation, exc.status)


def _seg(ident: str) -> str:
    """An id as one path segment: an odd id can never reach another path or the query."""
    return quote(ident, safe="")


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _options(
    lipsync: bool | None, video_duration: str | None, visibility: str | None
) -> dict[str, Any]:
    """Optional dubbing fields, sent only when set so the API's defaults apply otherwise."""
    options: dict[str, Any] = {}
    if lipsync is not None:
        options["lipsyncEnabled"] = lipsync
    if video_duration is not None:
        options["videoDuration"] = video_duration
    if visibility is not None:
        options["visibility"] = visibility
    return options
