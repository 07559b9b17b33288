"""How the simulated API shows a dubbing project: status case, language codes, URL fields.

The knobs that make the simulator answer like the real API's variants (upper-case statuses,
bare language codes, the ``targetLanguages`` filter's encodings, field aliases) act here only,
so the service's state rules stay the same whatever the answer's shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from .faults import Faults
from .model import DubbedItem, Project
from .signed import SignedUrls

if TYPE_CHECKING:
    from .service import Options

#: What an ``unsafe_url`` fault answers as a download: plain http to the cloud metadata address.
UNSAFE_URL = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"


class Render:
    """Projects and items as JSON, in the configured dialect."""

    def __init__(
        self,
        options: Options,
        faults: Faults,
        urls: SignedUrls,
        epoch: Callable[[float], float],
    ) -> None:
        self.options = options
        self.faults = faults
        self.urls = urls
        self.epoch = epoch

    def item(self, project: Project, item: DubbedItem, now: float) -> dict[str, Any]:
        """One ``dubbedAssets`` entry in the shape its status calls for."""
        status = item.status(now)
        out: dict[str, Any] = {
            "id": item.id,
            "language": self.spoken(item.language),
            "status": status,
        }
        if status == "error":
            out["errorCode"] = item.error_code
        if status == "complete":
            urls = self.urls.bundle(project.id, item.language, now)
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
        out["status"] = self.case(status)
        return out

    def spoken(self, language: str) -> str:
        """A language as answers name it: the locale, or its bare code in that mode."""
        return language.split("-", 1)[0] if self.options.bare_language_codes else language

    def case(self, status: str) -> str:
        return status.upper() if self.options.status_case == "upper" else status

    def wanted(self, query: str) -> list[str] | None:
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

    def matches(self, language: str, wanted: list[str]) -> bool:
        if language in wanted or self.spoken(language) in wanted:
            return True
        if not self.options.filter_base_match:
            return False
        return any("-" not in w and language.split("-", 1)[0] == w for w in wanted)
