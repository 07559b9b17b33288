"""Reading the API's answers: JSON bodies into the plain types of apitypes, error bodies into
typed errors.

Anything the API returns is untrusted: a missing or mistyped required field is a
PermanentError naming the call and the field, optional fields of the wrong type read as
absent, and error texts are passed through ``redact`` so the key never reaches a message.
Works on anything shaped like an HTTP answer (``Answer``), so it needs no HTTP library.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from synthesia_watchd.domain.apireplies import auth_message, excerpt
from synthesia_watchd.domain.apitypes import (
    AddLocalesResult,
    AssetInfo,
    CreatedAsset,
    DubbedAsset,
    Project,
    UploadCredentials,
)
from synthesia_watchd.domain.errors import ApiError, AuthError, PermanentError

OP_CREATE_ASSET = "POST /v2/assets"
OP_GET_ASSET = "GET /v2/assets/{id}"
OP_SUBMIT = "POST /v2/dubbing"
OP_GET_PROJECT = "GET /v2/dubbing/{id}"
OP_ADD_LOCALES = "PUT /v2/dubbing/{id}"


class Answer(Protocol):
    """What is read from an HTTP answer (a ``requests.Response`` is one)."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def content(self) -> bytes: ...

    @property
    def text(self) -> str: ...

    def json(self, **kwargs: Any) -> Any: ...


# --- bodies and errors -------------------------------------------------------------------------


def json_object(op: str, resp: Answer) -> dict[str, Any]:
    """The answer's body as a JSON object, or PermanentError."""
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


def required(op: str, data: Mapping[str, Any], *keys: str) -> Any:
    """The first of ``keys`` present as a non-empty string, or PermanentError."""
    value = _first(data, *keys)
    if not isinstance(value, str) or not value:
        raise PermanentError(f"{op}: answer lacks required field {keys[0]!r}", operation=op)
    return value


def auth_error(op: str, resp: Answer, redact: Callable[[str], str]) -> AuthError:
    """401/403, worded by whether the API's own Error body came with it (apireplies)."""
    api = api_error(AuthError, op, resp, redact)
    return AuthError(
        auth_message(op, resp.status_code, api.error, api.context),
        status=resp.status_code,
        error=api.error,
        context=api.context,
        operation=op,
    )


def api_error(cls: type[ApiError], op: str, resp: Answer, redact: Callable[[str], str]) -> ApiError:
    """An error carrying the API's own ``error``/``context`` (or dubbedErrors) fields."""
    error: str | None = None
    context: str | None = None
    try:
        body = resp.json()
    except ValueError:
        body = None
    if isinstance(body, Mapping):
        if isinstance(body.get("error"), str):
            error = redact(body["error"])
        if isinstance(body.get("context"), str):
            context = redact(body["context"])
        dubbed = body.get("dubbedErrors")
        if isinstance(dubbed, list) and dubbed:
            error = error or "dubbedErrors"
            context = "; ".join(
                f"{item.get('language') or '?'}: {item.get('error') or 'error'}"
                for item in dubbed
                if isinstance(item, Mapping)
            )
            context = redact(context)
    if error is None and context is None and resp.content:
        context = excerpt(resp.text, resp.headers.get("Content-Type", ""), redact)
    detail = ": ".join(part for part in (error, context) if part)
    message = f"{op} answered {resp.status_code}" + (f": {detail}" if detail else "")
    return cls(message, status=resp.status_code, error=error, context=context, operation=op)


# --- answer objects ----------------------------------------------------------------------------


def created_asset(data: Mapping[str, Any]) -> CreatedAsset:
    """POST /v2/assets: the asset's id and its temporary S3 credentials."""
    op = OP_CREATE_ASSET
    creds = data.get("uploadCredentials")
    if not isinstance(creds, Mapping):
        raise PermanentError(f"{op}: answer lacks uploadCredentials", operation=op)
    credentials = UploadCredentials(
        access_key_id=required(op, creds, "accessKeyId"),
        secret_access_key=required(op, creds, "secretAccessKey"),
        session_token=required(op, creds, "sessionToken"),
        bucket=required(op, creds, "bucket"),
        key=required(op, creds, "key"),
    )
    upload_url = data.get("uploadUrl")
    return CreatedAsset(
        id=required(op, data, "id"),
        credentials=credentials,
        upload_url=upload_url if isinstance(upload_url, str) else None,
    )


def asset_info(data: Mapping[str, Any]) -> AssetInfo:
    """GET /v2/assets/{id}: status (lowercased), detected language, error code, title."""
    op = OP_GET_ASSET
    metadata = data.get("metadata")
    detected = metadata.get("detectedLanguage") if isinstance(metadata, Mapping) else None
    status = _lower(data.get("status"))
    if status is None:
        raise PermanentError(f"{op}: answer lacks required field 'status'", operation=op)
    title = data.get("title")
    return AssetInfo(
        id=required(op, data, "id"),
        status=status,
        detected_language=detected if isinstance(detected, str) else None,
        error_code=data.get("errorCode") if isinstance(data.get("errorCode"), str) else None,
        title=title if isinstance(title, str) else None,
    )


def project_id(data: Mapping[str, Any]) -> str:
    """POST /v2/dubbing: the new project's id."""
    op = OP_SUBMIT
    created = data.get("createdImportedAsset")
    if not isinstance(created, Mapping):
        raise PermanentError(f"{op}: answer lacks createdImportedAsset", operation=op)
    return str(required(op, created, "id"))


def project(data: Mapping[str, Any]) -> Project:
    """GET /v2/dubbing/{id}: the project and every dubbed asset it lists."""
    op = OP_GET_PROJECT
    project_id = required(op, data, "id")
    error_code = _str_or_none(data.get("errorCode"))
    status = _lower(data.get("status")) or ("error" if error_code else "in_progress")
    items = _first(data, "dubbedAssets", "dubbedVideos", "dubbed") or []
    if not isinstance(items, list):
        raise PermanentError(f"{op}: dubbedAssets is not a list", operation=op)
    assets = tuple(dubbed_asset(op, item) for item in items)
    return Project(id=project_id, status=status, error_code=error_code, assets=assets)


def added_locales(data: Mapping[str, Any]) -> AddLocalesResult:
    """PUT /v2/dubbing/{id} answered with a body: the dubbed assets created, per-language errors."""
    op = OP_ADD_LOCALES
    created_raw = data.get("createdDubbedAssets") or []
    errors_raw = data.get("dubbedErrors") or []
    if not isinstance(created_raw, list) or not isinstance(errors_raw, list):
        raise PermanentError(f"{op}: malformed createdDubbedAssets/dubbedErrors", operation=op)
    created = tuple(dubbed_asset(op, item) for item in created_raw)
    errors = tuple(
        (_str_or_none(item.get("language")), _str_or_none(item.get("error")))
        for item in errors_raw
        if isinstance(item, Mapping)
    )
    return AddLocalesResult(created=created, errors=errors, nothing_added=False)


def dubbed_asset(op: str, item: Any) -> DubbedAsset:
    """One dubbed asset of a project (or of an add-locales answer)."""
    if not isinstance(item, Mapping):
        raise PermanentError(f"{op}: a dubbed asset is not an object", operation=op)
    download = _first(item, "download", "downloadUrl", "url")
    error_code = _str_or_none(item.get("errorCode"))
    status = _lower(item.get("status"))
    if status is None:  # optional in the schema (CONTRACT.md C-15): infer from the shape
        status = "error" if error_code else "complete" if download else "in_progress"
    title = item.get("title")
    return DubbedAsset(
        id=required(op, item, "id"),
        language=required(op, item, "language", "locale"),
        status=status,
        download=download if isinstance(download, str) else None,
        error_code=error_code,
        captions=_links(item.get("captions")),
        thumbnail=_links(item.get("thumbnail")),
        title=title if isinstance(title, str) else None,
    )


# --- languages ---------------------------------------------------------------------------------


def language_matches(language: str, targets: Sequence[str]) -> bool:
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


def bare_for_locale(assets: Sequence[DubbedAsset], targets: Sequence[str]) -> bool:
    """Whether the answer names a requested locale ('es-ES') by its bare code ('es')."""
    locales = {t.lower().split("-", 1)[0] for t in targets if "-" in t}
    return any(a.language and a.language.lower() in locales for a in assets)


def covers(assets: Sequence[DubbedAsset], targets: Sequence[str]) -> bool:
    """Whether every requested language has an entry."""
    return all(any(language_matches(a.language, [t]) for a in assets) for t in targets)


# --- field helpers -----------------------------------------------------------------------------


def _lower(value: Any) -> str | None:
    return value.lower() if isinstance(value, str) else None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _first(data: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        if data.get(key) is not None:
            return data[key]
    return None


def _links(value: Any) -> dict[str, str | None]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): (v if isinstance(v, str) else None) for k, v in value.items()}
