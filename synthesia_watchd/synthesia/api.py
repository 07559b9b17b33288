"""The Synthesia client: the calls the daemon makes, as typed answers and typed errors.

One object per API key, safe to share between worker threads. It builds each call's path and
body and reads the answer; the parts with one job each live beside it: ``transport`` sends
(pacing, idempotency-aware retries, status codes as errors; the only ``requests`` importer),
``answers`` reads bodies into apitypes, ``keycheck`` tells a working key from a refused one,
``download`` fetches signed URLs into an output sink, ``urlpolicy`` says which URLs may be
used. The API key travels only as ``Authorization: <key>`` to the API host, never to a signed
download URL; messages carry status codes, the API's ``error``/``context`` and ids, never the
key or a signed URL's query string.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from synthesia_watchd.domain import contract
from synthesia_watchd.domain.apireplies import KeyCheck
from synthesia_watchd.domain.apitypes import (
    AddLocalesResult,
    AssetInfo,
    CreatedAsset,
    DownloadResult,
    Project,
)
from synthesia_watchd.domain.errors import AmbiguousSubmit, PermanentError
from synthesia_watchd.domain.outputs import OutputSink
from synthesia_watchd.domain.ratelimit import RateLimiter
from synthesia_watchd.domain.retry import RetryPolicy
from synthesia_watchd.synthesia import answers, keycheck
from synthesia_watchd.synthesia.answers import (
    OP_ADD_LOCALES,
    OP_CREATE_ASSET,
    OP_GET_ASSET,
    OP_GET_PROJECT,
    OP_SUBMIT,
    covers,
    json_object,
    language_matches,
)
from synthesia_watchd.synthesia.download import Downloader
from synthesia_watchd.synthesia.transport import Session, Transport
from synthesia_watchd.telemetry.logsetup import get_logger

log = get_logger()


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
        session: Session | None = None,
        send_content_md5: bool = False,
    ) -> None:
        self._http = Transport(
            api_key,
            api_url=api_url,
            limiter=limiter,
            retry=retry,
            timeout=timeout,
            stop=stop,
            on_response=on_response,
            session=session,
        )
        self._downloads = Downloader(self._http, allowed_download_hosts)
        self._send_md5 = send_content_md5
        #: Set once the API refused the targetLanguages filter (400) and the unfiltered read
        #: worked: later polls go unfiltered, instead of two reads each.
        self._filter_refused = False
        #: Set once an answer named a requested locale by its bare code ("es" for "es-ES"):
        #: two targets of one language could not be told apart, so they are not submitted.
        self.answers_bare_codes = False

    def __repr__(self) -> str:
        return f"SynthesiaClient(api_url={self._http.base!r})"

    @property
    def sends_content_md5(self) -> bool:
        """Whether POST /v2/assets carries contentMD5 (opt-in: ``api.send_content_md5``)."""
        return self._send_md5

    @property
    def limiter(self) -> RateLimiter:
        """The limiter every call goes through (shared with other clients if passed in)."""
        return self._http.limiter

    def close(self) -> None:
        """Close pooled connections."""
        self._http.close()

    # --- calls ---------------------------------------------------------------------------------

    def check_key(
        self, *, retry: RetryPolicy | None = None, read_timeout: float | None = None
    ) -> KeyCheck:
        """One cheap read that tells a working key from a refused one (see ``keycheck``).

        Raises TransientError when the API cannot be reached (after ``retry``'s tries);
        ``read_timeout`` caps the wait for the answer (a start-up must not hang on it).
        """
        return keycheck.check_key(self._http, retry=retry, read_timeout=read_timeout)

    def check_auth(self) -> None:
        """``check_key`` as exceptions: AuthError when refused, PermanentError when unsure.

        Raises TransientError when the API cannot be reached.
        """
        keycheck.raise_unless_accepted(self.check_key())

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
        data = json_object(op, self._http.call("POST", "/v2/assets", "/v2/assets", json_body=body))
        return answers.created_asset(data)

    def get_asset(self, asset_id: str) -> AssetInfo:
        """GET /v2/assets/{id}: awaiting_upload/processing/ready/error (lowercased)."""
        op = OP_GET_ASSET
        resp = self._http.call("GET", "/v2/assets/{id}", f"/v2/assets/{_seg(asset_id)}")
        return answers.asset_info(json_object(op, resp))

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
        resp = self._http.call(
            "POST",
            "/v2/dubbing",
            "/v2/dubbing",
            json_body=body,
            submit=True,
            on_send=on_send,
            on_refused=on_refused,
        )
        try:
            return answers.project_id(json_object(op, resp))
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
                resp = self._http.call(
                    "GET", "/v2/dubbing/{id}", path, params={"targetLanguages": targets}
                )
            except PermanentError as exc:
                if exc.status not in (400, 404):
                    raise
                refused = exc.status == 400
            else:
                project = answers.project(json_object(OP_GET_PROJECT, resp))
                if project.status != "error" and not covers(project.assets, targets):
                    project = None
        if project is None:
            resp = self._http.call("GET", "/v2/dubbing/{id}", path)
            project = answers.project(json_object(OP_GET_PROJECT, resp))
            if refused and not self._filter_refused:
                self._filter_refused = True
                log.warning(
                    "the API refused the targetLanguages filter: polling unfiltered from now on",
                    operation=OP_GET_PROJECT,
                )
        if targets:
            kept = tuple(a for a in project.assets if language_matches(a.language, targets))
            project = Project(project.id, project.status, project.error_code, kept)
            self.answers_bare_codes |= answers.bare_for_locale(kept, targets)
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
        resp = self._http.call("PUT", "/v2/dubbing/{id}", path, json_body=body)
        if resp.status_code == 204:
            return AddLocalesResult(created=(), errors=(), nothing_added=True)
        return answers.added_locales(json_object(op, resp))

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
        return self._downloads.download(url, sink, progress)


def _seg(ident: str) -> str:
    """An id as one path segment: an odd id can never reach another path or the query."""
    return quote(ident, safe="")


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
