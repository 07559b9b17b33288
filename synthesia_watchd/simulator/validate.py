"""Request bodies checked the way the real API does: each failure names its field.

Every check raises ``Invalid``, which the service answers as a 400 with Synthesia's Error body;
the vocabularies come from the OpenAPI document through ``domain.contract``.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Collection
from typing import Any

from synthesia_watchd.domain.contract import (
    INPUT_LANGUAGES,
    MAX_TITLE_LENGTH,
    OUTPUT_LANGUAGES,
    VIDEO_CONTENT_TYPES,
)

from .replies import Invalid


def asset_fields(body: Any) -> dict[str, Any]:
    """The Asset constructor fields from a POST /v2/assets body, or Invalid."""
    if not isinstance(body, dict):
        raise Invalid("request body must be a JSON object")
    content_type = body.get("contentType")
    if not is_one_of(content_type, VIDEO_CONTENT_TYPES):
        raise Invalid(
            f"contentType must be one of {', '.join(sorted(VIDEO_CONTENT_TYPES))}",
            "Unsupported Media Type.",
        )
    config = body.get("configuration")
    if not isinstance(config, dict) or not is_one_of(config.get("name", "dubbing"), {"dubbing"}):
        raise Invalid("configuration.name must be 'dubbing'")
    detect = config.get("detectLanguage", True)
    if not isinstance(detect, bool):
        raise Invalid("configuration.detectLanguage must be a boolean")
    title = checked_title(body.get("title", "Untitled"))
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


def dubbing_fields(body: Any) -> dict[str, Any]:
    """The Project fields (plus ``targets``) from a POST /v2/dubbing body, or Invalid."""
    if not isinstance(body, dict):
        raise Invalid("request body must be a JSON object")
    if "title" not in body:
        raise Invalid("title is required")
    title = checked_title(body["title"])
    targets = target_languages(body.get("targetLanguages"))
    asset_id = body.get("sourceAssetId")
    if not isinstance(asset_id, str) or not asset_id:
        raise Invalid("sourceAssetId is required and must be a string")
    source = body.get("sourceLanguage")
    if not is_one_of(source, INPUT_LANGUAGES):
        raise Invalid(f"sourceLanguage {source!r} is not a DubbingInputLanguage")
    return {
        "title": title,
        "targets": targets,
        "asset_id": asset_id,
        "source_language": source,
        **dub_options(body),
    }


def dub_options(body: dict[str, Any]) -> dict[str, Any]:
    """lipsyncEnabled / videoDuration / visibility with their defaults, or Invalid."""
    lipsync = body.get("lipsyncEnabled", False)
    if not isinstance(lipsync, bool):
        raise Invalid("lipsyncEnabled must be a boolean")
    duration = body.get("videoDuration", "adaptive")
    if not is_one_of(duration, {"adaptive", "original"}):
        raise Invalid("videoDuration must be 'adaptive' or 'original'")
    visibility = body.get("visibility", "private")
    if not is_one_of(visibility, {"private", "public"}):
        raise Invalid("visibility must be 'private' or 'public'")
    return {"lipsync_enabled": lipsync, "video_duration": duration, "visibility": visibility}


def checked_title(value: Any) -> str:
    if not isinstance(value, str) or len(value) > MAX_TITLE_LENGTH:
        raise Invalid(f"title must be a string of at most {MAX_TITLE_LENGTH} characters")
    return value


def target_languages(value: Any) -> list[str]:
    """A non-empty, de-duplicated list of DubbingOutputLanguage, or Invalid naming the field."""
    if not isinstance(value, list) or not value:
        raise Invalid("targetLanguages must be a non-empty array of DubbingOutputLanguage")
    bad = [v for v in value if not is_one_of(v, OUTPUT_LANGUAGES)]
    if bad:
        shown = ", ".join(v if isinstance(v, str) else json.dumps(v) for v in bad)
        raise Invalid(f"targetLanguages: not a DubbingOutputLanguage: {shown}")
    return list(dict.fromkeys(value))


def md5_matches(claimed: str, digest: bytes) -> bool:
    """contentMD5 against the stored bytes' digest: base64 (as Content-MD5) or hex."""
    return claimed.strip() in (base64.b64encode(digest).decode(), digest.hex())


def is_one_of(value: Any, allowed: Collection[str]) -> bool:
    """Membership for JSON values: an object or array is never a member (and never hashed)."""
    return isinstance(value, str) and value in allowed


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
