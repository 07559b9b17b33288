"""The simulator's records: assets, their upload credentials, dubbing projects and their items.

Statuses are computed from the injected clock on every read rather than advanced by a timer
thread, so a test that moves a fake clock sees the next status at once and nothing runs in
the background.
"""

from __future__ import annotations

import hashlib
import secrets
import string
import uuid
from dataclasses import dataclass, field

from synthesia_watchd.domain.media import sample_video

_KEY_ALPHABET = string.ascii_uppercase + string.digits


def new_id() -> str:
    """A fresh uuid4 string, the id format of assets, projects and dubbed assets."""
    return str(uuid.uuid4())


@dataclass
class Credentials:
    """Temporary S3 credentials scoped to one bucket/key; the secrets stay out of repr."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)
    bucket: str
    key: str
    asset_id: str
    expires_at: float

    @classmethod
    def issue(cls, bucket: str, key: str, asset_id: str, expires_at: float) -> Credentials:
        """New STS-looking credentials (``ASIA...`` key id, 40-char secret, long token)."""
        akid = "ASIA" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(16))
        return cls(
            access_key_id=akid,
            secret_access_key=secrets.token_urlsafe(30)[:40],
            session_token=secrets.token_urlsafe(96),
            bucket=bucket,
            key=key,
            asset_id=asset_id,
            expires_at=expires_at,
        )

    def as_json(self) -> dict[str, str]:
        """The ``uploadCredentials`` object of POST /v2/assets."""
        return {
            "accessKeyId": self.access_key_id,
            "secretAccessKey": self.secret_access_key,
            "sessionToken": self.session_token,
            "bucket": self.bucket,
            "key": self.key,
        }


@dataclass
class Asset:
    """An uploaded (or awaited) source video."""

    id: str
    title: str
    content_type: str
    detect_language: bool
    content_length: int | None
    content_md5: str | None
    created_at: float
    credentials: Credentials = field(repr=False)
    error_code: str | None = None  # from an asset_error fault: shown once processing ends
    uploaded_at: float | None = None
    size: int | None = None
    etag: str | None = None
    upload_content_type: str | None = None  # the Content-Type the object was stored with
    md5_ok: bool | None = None  # contentMD5 checked against the stored bytes (None: not sent)
    content_type_ok: bool = True  # False: strict mode and the object's type is not ours
    duration_s: float | None = None  # the uploaded video's length (mvhd), when dub_rate is set

    def status(self, now: float, processing_seconds: float) -> tuple[str, str | None]:
        """(status, errorCode) at ``now``."""
        if self.uploaded_at is None:
            return "awaiting_upload", None
        if now < self.uploaded_at + processing_seconds:
            return "processing", None
        if self.error_code is not None:
            return "error", self.error_code
        if self.content_length is not None and self.size != self.content_length:
            return "error", "asset_upload"
        if self.md5_ok is False or not self.content_type_ok:
            return "error", "asset_upload"
        return "ready", None

    def dubbing_refusal(self) -> tuple[str, str] | None:
        """Why POST /v2/dubbing refuses this asset (error, context), or None: not uploaded,
        fewer bytes than declared, a digest or type that does not match, a faulted asset."""
        if self.uploaded_at is None:
            return (
                "Asset is not uploaded",
                f"sourceAssetId {self.id}: no object at its upload key; "
                "upload the file with the asset's credentials first",
            )
        if self.content_length is not None and self.size != self.content_length:
            return (
                "Asset upload is incomplete",
                f"sourceAssetId {self.id}: the uploaded object has {self.size} bytes "
                f"but contentLength was {self.content_length}",
            )
        if self.md5_ok is False or not self.content_type_ok:
            what = "contentMD5" if self.md5_ok is False else "Content-Type"
            return (
                "Asset is not valid",
                f"sourceAssetId {self.id}: the uploaded object does not match its {what}",
            )
        if self.error_code is not None:
            return ("Asset is not valid", f"sourceAssetId {self.id}: {self.error_code}")
        return None


@dataclass
class DubbedItem:
    """One target language of a project; finishes at ``done_at`` as complete or error."""

    id: str
    language: str
    submitted_at: float
    done_at: float
    error_code: str | None = None

    def status(self, now: float) -> str:
        """``in_progress`` until ``done_at``, then ``complete`` or ``error``."""
        if now < self.done_at:
            return "in_progress"
        return "error" if self.error_code else "complete"


@dataclass
class Project:
    """A dubbing project created by POST /v2/dubbing (its id is ``createdImportedAsset.id``)."""

    id: str
    title: str
    asset_id: str
    source_language: str
    fingerprint: str  # what the source bytes were (S3 ETag): outputs derive from it
    created_at: float
    visibility: str = "private"
    lipsync_enabled: bool = False
    video_duration: str = "adaptive"
    items: list[DubbedItem] = field(default_factory=list)
    error_code: str | None = None  # from a project_error fault: the whole project fails
    error_at: float = 0.0

    @property
    def target_languages(self) -> list[str]:
        """Every language on the project, in the order it was requested."""
        return [item.language for item in self.items]

    def item(self, language: str) -> DubbedItem | None:
        """The item for ``language``, if the project has one."""
        return next((i for i in self.items if i.language == language), None)

    def status(self, now: float) -> str:
        """Project status at ``now``: ``error`` (fault), ``in_progress`` or ``complete``."""
        if self.error_code is not None and now >= self.error_at:
            return "error"
        if any(i.status(now) == "in_progress" for i in self.items):
            return "in_progress"
        if self.error_code is not None:
            return "in_progress"
        return "complete"

    def output_body(self, language: str, kind: str, video_size: int) -> bytes:
        """The exact bytes of one output, derived from the source's fingerprint (so identical
        sources dub to identical files); KeyError when the project has no such language."""
        if self.item(language) is None:
            raise KeyError(language)
        seed = f"{self.fingerprint}:{language}"
        if kind == "video":
            return sample_video(seed, video_size)
        if kind == "vtt":
            return f"WEBVTT\n\n00:00:00.000 --> 00:00:02.000\n[{language}] {self.title}\n".encode()
        if kind == "srt":
            return f"1\n00:00:00,000 --> 00:00:02,000\n[{language}] {self.title}\n".encode()
        digest = hashlib.sha256(seed.encode()).digest()
        if kind == "image":
            return (
                b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
                + digest
                + b"\xff\xd9"
            )
        return b"GIF89a\x01\x00\x01\x00\x00\x00\x00" + digest + b";"


def mp4_duration(head: bytes) -> float | None:
    """Seconds of video an mp4 declares in its ``moov/mvhd`` box, read from the file's first
    bytes (None: no such box there). Enough for sample videos, whose moov comes first."""
    pos = 0
    while pos + 8 <= len(head):
        size, kind = int.from_bytes(head[pos : pos + 4], "big"), head[pos + 4 : pos + 8]
        if kind == b"moov":
            pos += 8  # descend: mvhd is a child of moov
            continue
        if kind == b"mvhd":
            body = head[pos + 8 : pos + 40]
            wide = body[:1] == b"\x01"  # version 1: 64-bit times and duration
            scale_at = 20 if wide else 12
            scale = int.from_bytes(body[scale_at : scale_at + 4], "big")
            length = int.from_bytes(body[scale_at + 4 : scale_at + (12 if wide else 8)], "big")
            return length / scale if scale and length else None
        if size < 8:
            return None
        pos += size
    return None
