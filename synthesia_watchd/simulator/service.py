"""What the simulated Synthesia does with each request, as in CONTRACT.md.

Everything here is plain Python over the injected clock: the HTTP layer (``server.py``) parses
requests and sends ``Reply`` objects (``replies.py``), the S3 gateway reports written objects.
Bodies are checked by ``validate.py``, download URLs signed by ``signed.py``. One lock guards
the state, so any number of clients may call at once.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import parse_qs

from synthesia_watchd.domain.contract import DETECTED_LANGUAGES

from . import validate
from .faults import Faults
from .model import Asset, Credentials, DubbedItem, Project, mp4_duration, new_id
from .render import Render
from .replies import Headers, Invalid, Reply, error_reply, json_reply
from .signed import SignedUrls

_EXTENSIONS = {"video/mp4": "mp4", "video/webm": "webm", "video/quicktime": "mov"}


class ObjectInfo(NamedTuple):
    """What the simulator's S3 holds at an upload key."""

    size: int
    etag: str
    content_type: str | None


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

    def __post_init__(self) -> None:
        """Refuse a knob value no variant of the API has (a typo must not pass silently)."""
        if self.status_case not in ("lower", "upper"):
            raise ValueError("status_case must be 'lower' or 'upper'")
        if self.filter_encoding not in ("repeated", "comma", "both"):
            raise ValueError("filter_encoding must be 'repeated', 'comma' or 'both'")
        if self.detected_language not in DETECTED_LANGUAGES:
            raise ValueError(f"detected_language {self.detected_language!r} is not a LanguageBCP47")
        if self.dub_size < 32:
            raise ValueError("dub_size must be at least 32 bytes (an mp4 header)")


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
        self.head_object: Callable[[str, str], ObjectInfo | None] = lambda b, k: None
        self.object_md5: Callable[[str, str], bytes | None] = lambda b, k: None
        #: The first bytes of an object (to read a video's length when dub_rate is set).
        self.object_head: Callable[[str, str], bytes] = lambda b, k: b""
        self._jitter = random.Random(0)
        self._lock = threading.RLock()
        self.assets: dict[str, Asset] = {}
        self.projects: dict[str, Project] = {}
        self._creds: dict[str, Credentials] = {}  # by access key id
        self.urls = SignedUrls(options.download_ttl, clock, epoch)
        self.render = Render(options, faults, self.urls, epoch)

    # -- assets ---------------------------------------------------------------------------------

    def create_asset(self, body: Any) -> Reply:
        """POST /v2/assets: validate, issue scoped credentials, 201."""
        try:
            fields = validate.asset_fields(body)
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
            md5_ok = digest is not None and validate.md5_matches(asset.content_md5, digest)
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
            fields = validate.dubbing_fields(body)
        except Invalid as exc:
            return error_reply(400, exc.error, exc.context)
        with self._lock:
            asset = self.assets.get(fields["asset_id"])
        if asset is None:
            return error_reply(404, "Asset ID was not found.")
        refusal = asset.dubbing_refusal()
        if refusal is not None:
            return error_reply(400, *refusal)
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
        if not validate.is_uuid(project_id):
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
                {
                    "id": project.id,
                    "status": self.render.case(status),
                    "errorCode": project.error_code,
                },
            )
        wanted = self.render.wanted(query)
        if wanted and self.options.bare_language_codes and any("-" in w for w in wanted):
            return error_reply(
                400,
                "Invalid dubbing project",
                "targetLanguages filters by language code (e.g. 'es'), not by locale",
            )
        items = [
            i for i in project.items if wanted is None or self.render.matches(i.language, wanted)
        ]
        if not items:
            return error_reply(404, "Feature disabled or target languages not found")
        return json_reply(
            200,
            {
                "id": project.id,
                "status": self.render.case(status),
                "dubbedAssets": [self.render.item(project, i, now) for i in items],
            },
        )

    def add_locales(self, project_id: str, body: Any) -> Reply:
        """PUT /v2/dubbing/{id}: add new target languages (202), or 204 if all exist."""
        if not validate.is_uuid(project_id):
            return error_reply(400, "Invalid dubbing project", f"{project_id!r} is not a uuid")
        try:
            if not isinstance(body, dict):
                raise Invalid("request body must be a JSON object")
            targets = validate.target_languages(body.get("targetLanguages"))
            validate.dub_options(body)
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
                "createdDubbedAssets": [self.render.item(project, i, now) for i in created],
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

    # -- signed URLs ----------------------------------------------------------------------------

    def download(self, path: str, query: str, headers: Headers) -> Reply:
        """A signed URL's request, answered with the output's bytes (or S3's error)."""
        return self.urls.download(path, query, headers, self.output_bytes)

    def output_bytes(self, project_id: str, language: str, kind: str = "video") -> bytes:
        """The exact bytes of one output; KeyError when the project has no such language."""
        with self._lock:
            project = self.projects[project_id]
        return project.output_body(language, kind, self.options.dub_size)
