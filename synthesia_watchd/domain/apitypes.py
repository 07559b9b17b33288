"""What the Synthesia API answers, as plain frozen types: no third-party import needed.

``synthesia/answers.py`` builds these from the answers; the engine, the
dry run and the simulator's tests read them without pulling in the HTTP stack.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "AddLocalesResult",
    "AssetInfo",
    "CreatedAsset",
    "DownloadResult",
    "DubbedAsset",
    "Project",
    "UploadCredentials",
]


@dataclass(frozen=True)
class UploadCredentials:
    """Temporary S3 credentials for one asset; the secret parts stay out of repr."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)
    bucket: str
    key: str


@dataclass(frozen=True)
class CreatedAsset:
    """POST /v2/assets: where to upload the bytes."""

    id: str
    credentials: UploadCredentials
    upload_url: str | None


@dataclass(frozen=True)
class AssetInfo:
    """GET /v2/assets/{id}: the asset's processing state."""

    id: str
    status: str
    detected_language: str | None
    error_code: str | None
    title: str | None


@dataclass(frozen=True)
class DubbedAsset:
    """One target language of a project; ``status`` is lowercase in_progress/complete/error."""

    id: str
    language: str
    status: str
    download: str | None
    error_code: str | None
    captions: Mapping[str, str | None]
    thumbnail: Mapping[str, str | None]
    title: str | None


@dataclass(frozen=True)
class Project:
    """GET /v2/dubbing/{id}: project status (lowercase) and its dubbed assets."""

    id: str
    status: str
    error_code: str | None
    assets: tuple[DubbedAsset, ...]


@dataclass(frozen=True)
class AddLocalesResult:
    """PUT /v2/dubbing/{id}: created assets, per-language errors; 204 means nothing added."""

    created: tuple[DubbedAsset, ...]
    errors: tuple[tuple[str | None, str | None], ...]
    nothing_added: bool


@dataclass(frozen=True)
class DownloadResult:
    """A downloaded file, in place under its final name."""

    path: Path
    bytes: int
    sha256: str
