"""What the simulated Synthesia does with each request, as in CONTRACT.md.

Everything here is plain Python over the injected clock: the HTTP layer (``server.py``) parses
requests and sends ``Reply`` objects, the S3 gateway reports written objects. One lock guards
the state, so any number of clients may call at once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import random
import re
import secrets
import threading
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol
from urllib.parse import parse_qs

from synthesia_watchd.domain.contract import (
    INPUT_LANGUAGES,
    MAX_TITLE_LENGTH,
    OUTPUT_LANGUAGES,
    VIDEO_CONTENT_TYPES,
)
from synthesia_watchd.domain.media import sample_video

from .faults import Faults
from .model import Asset, Credentials, DubbedItem, Project, mp4_duration, new_id
from .s3 import error_xml

_EXTENSIONS = {"video/mp4": "mp4", "video/webm": "webm", "video/quicktime": "mov"}
_SIGNED_KINDS = {
    "video": ("mp4", "video/mp4"),
    "vtt": ("vtt", "text/vtt"),
    "srt": ("srt", "application/x-subrip"),
    "image": ("jpg", "image/jpeg"),
    "gif": ("gif", "image/gif"),
}
_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


class ObjectInfo(NamedTuple):
    """What the simulator's S3 holds at an upload key."""

    size: int
    etag: str
    content_type: str | None


class _Headers(Protocol):
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


#: What an ``unsafe_url`` fault answers as a download: plain http to the cloud metadata address.
UNSAFE_URL = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"


@dataclass
class Options:
    """The behaviour knobs of the simulated service (see ``Simulator``)."""

    dub_seconds: float = 2.0
    #: Seconds of dubbing per second of video (the length its mvhd box declares); None: every
    #: dub takes dub_seconds. ``dub_jitter``: each dub strays by up to this fraction, either way.
    dub_rate: float | None = None
    dub_jitter: float = 0.0
    asset_processing_seconds: float = 0.0
    credentials_ttl: float = 3600.0
    download_ttl: float = 600.0
    dub_size: int = 64 * 1024
    detected_language: str = "en"
    status_case: str = "lower"
    download_field_aliases: bool = False
    filter_encoding: str = "repeated"
    filter_base_match: bool = False
    require_upload_content_type: bool = False
    bare_language_codes: bool = False


@dataclass
class SignedUrl:
    """A time-limited URL for one output of one dubbed language."""

    token: str
    project_id: str
    language: str
    kind: str
    issued_at: float
    expires_at: float
    url: str


class Service:
    """The simulated Synthesia: assets, S3 credentials, dubbing projects, signed URLs."""

    def __init__(
        self,
        options: Options,
        faults: Faults,
        clock: Callable[[], float],
        epoch: Callable[[float], float],
        bucket: str,
    ) -> None:
        self.options = options
        self.faults = faults
        self.clock = clock
        self.epoch = epoch
        self.bucket = bucket
        self.base_url = ""
        self.head_object: Callable[[str, str], ObjectInfo | None] = lambda b, k: None
        self.object_md5: Callable[[str, str], bytes | None] = lambda b, k: None
        #: The first bytes of an object (to read a video's length when dub_rate is set).
        self.object_head: Callable[[str, str], bytes] = lambda b, k: b""
        self._jitter = random.Random(0)
        self._lock = threading.RLock()
        self._secret = secrets.token_bytes(32)
        self.assets: dict[str, Asset] = {}
        self.projects: dict[str, Project] = {}
        self._creds: dict[str, Credentials] = {}  # by access key id
        self._urls: dict[str, SignedUrl] = {}  # by token
        self._bundles: dict[tuple[str, str], dict[str, SignedUrl]] = {}

    # -- assets ---------------------------------------------------------------------------------

    def create_asset(self, body: Any) -> Reply:
        """POST /v2/assets: validate, issue scoped credentials, 201."""
        try:
            fields = _asset_fields(body)
        except Invalid as exc:
            return error_reply(400, exc.error, exc.context)
        now = self.clock()
        asset_id = new_id()
        key = f"uploads/{asset_id}/source.{_EXTENSIONS[fields['content_type']]}"
        creds = Credentials.issue(self.bucket, key, asset_id, now + self.options.credentials_ttl)
        fault = self.faults.take("POST /v2/assets", ["asset_error"])
        error_code = None
        if fault is not None:
            error_code = str(fault.param("error_code", "asset_upload"))
        asset = Asset(
            id=asset_id, created_at=now, credentials=creds, error_code=error_code, **fields
        )
        with self._lock:
            self.assets[asset_id] = asset
            self._creds[creds.access_key_id] = creds
        return json_reply(
            201, {"id": asset_id, "uploadUrl": None, "uploadCredentials": creds.as_json()}
        )

    def get_asset(self, asset_id: str) -> Reply:
        """GET /v2/assets/{id}: status from the clock, 404 when unknown."""
        with self._lock:
            asset = self.assets.get(asset_id)
        if asset is None:
            return error_reply(404, "Asset does not exist or user does not have access")
        status, error_code = asset.status(self.clock(), self.options.asset_processing_seconds)
        detected = self.options.detected_language if asset.detect_language else None
        return json_reply(
            200,
            {
                "id": asset.id,
                "title": asset.title,
                "contentType": asset.content_type,
                "status": status,
                "metadata": {"detectedLanguage": detected if status == "ready" else None},
                "errorCode": error_code,
            },
        )

    def credentials_for(self, access_key_id: str) -> Credentials | None:
        """The issued credentials with this key id, if any."""
        with self._lock:
            return self._creds.get(access_key_id)

    def object_written(self, bucket: str, key: str) -> None:
        """Called by the S3 gateway after a whole object was written to ``bucket``/``key``."""
        with self._lock:
            asset = next(
                (
                    self.assets[c.asset_id]
                    for c in self._creds.values()
                    if c.bucket == bucket and c.key == key
                ),
                None,
            )
        if asset is None:
            return
        head = self.head_object(bucket, key)
        md5_ok = None
        if asset.content_md5 is not None:
            digest = self.object_md5(bucket, key)
            md5_ok = digest is not None and _md5_matches(asset.content_md5, digest)
        duration = None
        if self.options.dub_rate is not None:
            duration = mp4_duration(self.object_head(bucket, key))
        with self._lock:
            asset.uploaded_at = self.clock()
            asset.md5_ok = md5_ok
            asset.duration_s = duration
            if head is not None:
                asset.size, asset.etag, asset.upload_content_type = head
                if self.options.require_upload_content_type:
                    asset.content_type_ok = head.content_type == asset.content_type

    def expire_credentials(self) -> None:
        """Every credential issued so far expires now."""
        now = self.clock()
        with self._lock:
            for creds in self._creds.values():
                creds.expires_at = min(creds.expires_at, now)

    # -- videos ---------------------------------------------------------------------------------

    def list_videos(self, query: str) -> Reply:
        """GET /v2/videos: the Studio video list; always empty here (dubs are not videos).

        It exists because its documented answers (200 with a good key, 403 with a wrong one)
        make it the daemon's key check; ``limit``/``offset`` are validated as documented.
        """
        params = parse_qs(query, keep_blank_values=True)
        for name, low, high in (("limit", 1, 100), ("offset", 0, None)):
            raw = params.get(name, [None])[-1]
            if raw is None:
                continue
            if not raw.isdigit() or int(raw) < low or (high is not None and int(raw) > high):
                span = f"{low}..{high}" if high is not None else f">= {low}"
                return error_reply(400, "Bad Request", f"{name} must be an integer {span}")
        return json_reply(200, {"videos": [], "nextOffset": 0})

    # -- dubbing --------------------------------------------------------------------------------

    def create_dubbing(self, body: Any) -> Reply:
        """POST /v2/dubbing from an uploaded asset: validate, 202 with the project id."""
        if isinstance(body, dict) and "sourceVideoUrl" in body:
            return error_reply(
                403, "Forbidden", "sourceVideoUrl is available only to workspaces with beta access"
            )
        try:
            fields = _dubbing_fields(body)
        except Invalid as exc:
            return error_reply(400, exc.error, exc.context)
        with self._lock:
            asset = self.assets.get(fields["asset_id"])
        if asset is None:
            return error_reply(404, "Asset ID was not found.")
        if asset.uploaded_at is None:
            return error_reply(
                400,
                "Asset is not uploaded",
                f"sourceAssetId {asset.id}: no object at its upload key; "
                "upload the file with the asset's credentials first",
            )
        if asset.content_length is not None and asset.size != asset.content_length:
            return error_reply(
                400,
                "Asset upload is incomplete",
                f"sourceAssetId {asset.id}: the uploaded object has {asset.size} bytes "
                f"but contentLength was {asset.content_length}",
            )
        if asset.md5_ok is False or not asset.content_type_ok:
            what = "contentMD5" if asset.md5_ok is False else "Content-Type"
            return error_reply(
                400,
                "Asset is not valid",
                f"sourceAssetId {asset.id}: the uploaded object does not match its {what}",
            )
        if asset.error_code is not None:
            return error_reply(
                400, "Asset is not valid", f"sourceAssetId {asset.id}: {asset.error_code}"
            )
        now = self.clock()
        targets: list[str] = fields.pop("targets")
        project = Project(id=new_id(), created_at=now, fingerprint=asset.etag or asset.id, **fields)
        fault = self.faults.take("POST /v2/dubbing", ["project_error"])
        if fault is not None:
            project.error_code = str(fault.param("error_code", "processing_error"))
            project.error_at = now + self.options.dub_seconds
        project.items = self._new_items(targets, now, self._dub_seconds(asset))
        fault = self.faults.take(
            "POST /v2/dubbing",
            ["language_error"],
            lambda f: f.param("language", targets[0]) in targets,
        )
        if fault is not None:
            failing = fault.param("language", targets[0])
            for item in project.items:
                if item.language == failing:
                    item.error_code = str(fault.param("error_code", "processing_error"))
        with self._lock:
            self.projects[project.id] = project
        return json_reply(202, {"createdImportedAsset": {"id": project.id}})

    def get_dubbing(self, project_id: str, query: str) -> Reply:
        """GET /v2/dubbing/{id}: the project as of now, optionally filtered by language."""
        if not _is_uuid(project_id):
            return error_reply(400, "Invalid dubbing project", f"{project_id!r} is not a uuid")
        with self._lock:
            project = self.projects.get(project_id)
        if project is None:
            return error_reply(404, "Dubbing project does not exist or user does not have access")
        now = self.clock()
        status = project.status(now)
        if status == "error":
            return json_reply(
                200,
                {"id": project.id, "status": self._case(status), "errorCode": project.error_code},
            )
        wanted = self._filter(query)
        if wanted and self.options.bare_language_codes and any("-" in w for w in wanted):
            return error_reply(
                400,
                "Invalid dubbing project",
                "targetLanguages filters by language code (e.g. 'es'), not by locale",
            )
        items = [i for i in project.items if wanted is None or self._matches(i.language, wanted)]
        if not items:
            return error_reply(404, "Feature disabled or target languages not found")
        return json_reply(
            200,
            {
                "id": project.id,
                "status": self._case(status),
                "dubbedAssets": [self._render(project, i, now) for i in items],
            },
        )

    def add_locales(self, project_id: str, body: Any) -> Reply:
        """PUT /v2/dubbing/{id}: add new target languages (202), or 204 if all exist."""
        if not _is_uuid(project_id):
            return error_reply(400, "Invalid dubbing project", f"{project_id!r} is not a uuid")
        try:
            if not isinstance(body, dict):
                raise Invalid("request body must be a JSON object")
            targets = _targets(body.get("targetLanguages"))
            _options(body)
        except Invalid as exc:
            return error_reply(400, exc.error, exc.context)
        now = self.clock()
        with self._lock:
            project = self.projects.get(project_id)
            if project is None:
                return error_reply(404, "Imported video not found")
            if project.status(now) == "error":
                return error_reply(400, "Invalid dubbing project", "the project failed")
            new = [t for t in targets if project.item(t) is None]
            if not new:
                return Reply(204, b"", "")
            created = self._new_items(new, now)
            project.items.extend(created)
        return json_reply(
            202,
            {
                "createdDubbedAssets": [self._render(project, i, now) for i in created],
                "dubbedErrors": [],
            },
        )

    def _dub_seconds(self, asset: Asset) -> float:
        """How long this asset's dub takes: dub_seconds, or its length x dub_rate, jittered."""
        rate, seconds = self.options.dub_rate, self.options.dub_seconds
        if rate is not None and asset.duration_s is not None:
            seconds = asset.duration_s * rate
        jitter = self.options.dub_jitter
        if jitter:
            with self._lock:
                seconds *= 1.0 + self._jitter.uniform(-jitter, jitter)
        return seconds

    def _new_items(
        self, languages: list[str], now: float, seconds: float | None = None
    ) -> list[DubbedItem]:
        """Items that finish a little apart, the last one exactly ``seconds`` (default
        ``dub_seconds``) from now."""
        n = len(languages)
        seconds = self.options.dub_seconds if seconds is None else seconds
        return [
            DubbedItem(new_id(), lang, now, now + seconds * (0.8 + 0.2 * (k + 1) / n))
            for k, lang in enumerate(languages)
        ]

    def _render(self, project: Project, item: DubbedItem, now: float) -> dict[str, Any]:
        """One ``dubbedAssets`` entry in the shape its status calls for."""
        status = item.status(now)
        out: dict[str, Any] = {
            "id": item.id,
            "language": self._spoken(item.language),
            "status": status,
        }
        if status == "error":
            out["errorCode"] = item.error_code
        if status == "complete":
            urls = self._bundle(project.id, item.language, now)
            done = int(self.epoch(item.done_at))
            out.update(
                title=f"{project.title} ({item.language})",
                description="",
                createdAt=done,
                lastUpdatedAt=done,
                visibility=project.visibility,
                download=urls["video"].url,
                thumbnail={"image": urls["image"].url, "gif": urls["gif"].url},
                captions={"srt": urls["srt"].url, "vtt": urls["vtt"].url},
            )
            if self.options.download_field_aliases:
                out["downloadUrl"] = out["url"] = urls["video"].url
            unsafe = self.faults.take(
                "GET /v2/dubbing/{id}",
                ["unsafe_url"],
                lambda f: f.param("language", item.language) == item.language,
            )
            if unsafe is not None:
                out["download"] = UNSAFE_URL
        out["status"] = self._case(status)
        return out

    def _spoken(self, language: str) -> str:
        """A language as answers name it: the locale, or its bare code in that mode."""
        return language.split("-", 1)[0] if self.options.bare_language_codes else language

    def _case(self, status: str) -> str:
        return status.upper() if self.options.status_case == "upper" else status

    def _filter(self, query: str) -> list[str] | None:
        """The ``targetLanguages`` filter in the configured encodings; None when absent."""
        values = parse_qs(query, keep_blank_values=True).get("targetLanguages")
        if not values:
            return None
        encoding = self.options.filter_encoding
        if encoding == "repeated":
            wanted = values
        elif encoding == "comma":
            wanted = values[-1].split(",")
        else:
            wanted = [part for v in values for part in v.split(",")]
        wanted = [w.strip() for w in wanted if w.strip()]
        return wanted or None

    def _matches(self, language: str, wanted: list[str]) -> bool:
        if language in wanted or self._spoken(language) in wanted:
            return True
        if not self.options.filter_base_match:
            return False
        return any("-" not in w and language.split("-", 1)[0] == w for w in wanted)

    # -- signed URLs ----------------------------------------------------------------------------

    def _bundle(self, project_id: str, language: str, now: float) -> dict[str, SignedUrl]:
        """The current signed URLs of one output, reissued past half their lifetime."""
        ttl = self.options.download_ttl
        with self._lock:
            bundle = self._bundles.get((project_id, language))
            fresh = bundle and all(
                now < u.issued_at + ttl / 2 and now < u.expires_at for u in bundle.values()
            )
            if bundle and fresh:
                return bundle
            for token in [t for t, u in self._urls.items() if u.expires_at <= now]:
                del self._urls[token]
            bundle = {}
            for kind, (ext, _) in _SIGNED_KINDS.items():
                token = secrets.token_urlsafe(18)
                expires_epoch = math.ceil(self.epoch(now + ttl))
                sig = self._sign(token, expires_epoch)
                url = (
                    f"{self.base_url}/_signed/{token}/{project_id}-{language}.{ext}"
                    f"?Expires={expires_epoch}&Signature={sig}"
                )
                signed = SignedUrl(token, project_id, language, kind, now, now + ttl, url)
                self._urls[token] = signed
                bundle[kind] = signed
            self._bundles[(project_id, language)] = bundle
            return bundle

    def _sign(self, token: str, expires: int) -> str:
        return hmac.new(self._secret, f"{token}.{expires}".encode(), hashlib.sha256).hexdigest()

    def download(self, path: str, query: str, headers: _Headers) -> Reply:
        """A signed URL: check the signature and the expiry, answer the bytes (Range works)."""
        if headers.get("Authorization"):
            return s3_error_reply(
                400,
                "InvalidArgument",
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
                "Signature query string parameter or the Authorization header should be specified",
            )
        token = path.split("/")[2] if path.count("/") >= 2 else ""
        params = parse_qs(query)
        expires = params.get("Expires", [""])[0]
        signature = params.get("Signature", [""])[0]
        if not (
            expires.isdigit() and hmac.compare_digest(self._sign(token, int(expires)), signature)
        ):
            return s3_error_reply(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        with self._lock:
            signed = self._urls.get(token)
        # A URL we signed whose record is gone was pruned after it expired.
        if signed is None or self.clock() >= signed.expires_at:
            return self.expired_url_reply(expires)
        body = self.output_bytes(signed.project_id, signed.language, signed.kind)
        reply = Reply(200, body, _SIGNED_KINDS[signed.kind][1])
        return _ranged(reply, headers.get("Range"))

    def expired_url_reply(self, expires: str = "") -> Reply:
        """The 403 S3 gives for a presigned URL past its expiry."""
        return s3_error_reply(403, "AccessDenied", "Request has expired", Expires=expires)

    def expire_download_urls(self) -> None:
        """Every signed URL issued so far expires now."""
        now = self.clock()
        with self._lock:
            for signed in self._urls.values():
                signed.expires_at = min(signed.expires_at, now)
            self._bundles.clear()

    def output_bytes(self, project_id: str, language: str, kind: str = "video") -> bytes:
        """The exact bytes of one output; KeyError when the project has no such language."""
        with self._lock:
            project = self.projects[project_id]
        if project.item(language) is None:
            raise KeyError(language)
        seed = f"{project.fingerprint}:{language}"
        if kind == "video":
            return sample_video(seed, self.options.dub_size)
        if kind == "vtt":
            return (
                f"WEBVTT\n\n00:00:00.000 --> 00:00:02.000\n[{language}] {project.title}\n".encode()
            )
        if kind == "srt":
            return f"1\n00:00:00,000 --> 00:00:02,000\n[{language}] {project.title}\n".encode()
        digest = hashlib.sha256(seed.encode()).digest()
        if kind == "image":
            return (
                b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
                + digest
                + b"\xff\xd9"
            )
        return b"GIF89a\x01\x00\x01\x00\x00\x00\x00" + digest + b";"


# -- validation -------------------------------------------------------------------------------


def _asset_fields(body: Any) -> dict[str, Any]:
    """The Asset constructor fields from a POST /v2/assets body, or Invalid."""
    if not isinstance(body, dict):
        raise Invalid("request body must be a JSON object")
    content_type = body.get("contentType")
    if not _is_one_of(content_type, VIDEO_CONTENT_TYPES):
        raise Invalid(
            f"contentType must be one of {', '.join(sorted(VIDEO_CONTENT_TYPES))}",
            "Unsupported Media Type.",
        )
    config = body.get("configuration")
    if not isinstance(config, dict) or not _is_one_of(config.get("name", "dubbing"), {"dubbing"}):
        raise Invalid("configuration.name must be 'dubbing'")
    detect = config.get("detectLanguage", True)
    if not isinstance(detect, bool):
        raise Invalid("configuration.detectLanguage must be a boolean")
    title = _title(body.get("title", "Untitled"))
    length = body.get("contentLength")
    if length is not None and (
        isinstance(length, bool) or not isinstance(length, int) or length < 0
    ):
        raise Invalid("contentLength must be an integer >= 0 or null")
    md5 = body.get("contentMD5")
    if md5 is not None and not isinstance(md5, str):
        raise Invalid("contentMD5 must be a string or null")
    return {
        "title": title,
        "content_type": content_type,
        "detect_language": detect,
        "content_length": length,
        "content_md5": md5,
    }


def _dubbing_fields(body: Any) -> dict[str, Any]:
    """The Project fields (plus ``targets``) from a POST /v2/dubbing body, or Invalid."""
    if not isinstance(body, dict):
        raise Invalid("request body must be a JSON object")
    if "title" not in body:
        raise Invalid("title is required")
    title = _title(body["title"])
    targets = _targets(body.get("targetLanguages"))
    asset_id = body.get("sourceAssetId")
    if not isinstance(asset_id, str) or not asset_id:
        raise Invalid("sourceAssetId is required and must be a string")
    source = body.get("sourceLanguage")
    if not _is_one_of(source, INPUT_LANGUAGES):
        raise Invalid(f"sourceLanguage {source!r} is not a DubbingInputLanguage")
    return {
        "title": title,
        "targets": targets,
        "asset_id": asset_id,
        "source_language": source,
        **_options(body),
    }


def _options(body: dict[str, Any]) -> dict[str, Any]:
    """lipsyncEnabled / videoDuration / visibility with their defaults, or Invalid."""
    lipsync = body.get("lipsyncEnabled", False)
    if not isinstance(lipsync, bool):
        raise Invalid("lipsyncEnabled must be a boolean")
    duration = body.get("videoDuration", "adaptive")
    if not _is_one_of(duration, {"adaptive", "original"}):
        raise Invalid("videoDuration must be 'adaptive' or 'original'")
    visibility = body.get("visibility", "private")
    if not _is_one_of(visibility, {"private", "public"}):
        raise Invalid("visibility must be 'private' or 'public'")
    return {"lipsync_enabled": lipsync, "video_duration": duration, "visibility": visibility}


def _title(value: Any) -> str:
    if not isinstance(value, str) or len(value) > MAX_TITLE_LENGTH:
        raise Invalid(f"title must be a string of at most {MAX_TITLE_LENGTH} characters")
    return value


def _targets(value: Any) -> list[str]:
    """A non-empty, de-duplicated list of DubbingOutputLanguage, or Invalid naming the field."""
    if not isinstance(value, list) or not value:
        raise Invalid("targetLanguages must be a non-empty array of DubbingOutputLanguage")
    bad = [v for v in value if not _is_one_of(v, OUTPUT_LANGUAGES)]
    if bad:
        shown = ", ".join(v if isinstance(v, str) else json.dumps(v) for v in bad)
        raise Invalid(f"targetLanguages: not a DubbingOutputLanguage: {shown}")
    return list(dict.fromkeys(value))


def _md5_matches(claimed: str, digest: bytes) -> bool:
    """contentMD5 against the stored bytes' digest: base64 (as Content-MD5) or hex."""
    import base64

    return claimed.strip() in (base64.b64encode(digest).decode(), digest.hex())


def _is_one_of(value: Any, allowed: Collection[str]) -> bool:
    """Membership for JSON values: an object or array is never a member (and never hashed)."""
    return isinstance(value, str) and value in allowed


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _ranged(reply: Reply, header: str | None) -> Reply:
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
