"""A job's frozen per-watch options as one typed value, parsed once from the ledger's JSON."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from synthesia_watchd.config.model import PostAction
from synthesia_watchd.engine.jobspec import output_kinds, post_action
from synthesia_watchd.stores.ledger import Job

#: The poll interval a job frozen before the option existed uses.
DEFAULT_POLL_INTERVAL = 10.0


@dataclass(frozen=True)
class JobSettings:
    """What a job was started with; a reload never changes it for jobs in flight."""

    kinds: tuple[str, ...]
    lipsync: bool | None
    video_duration: str | None
    visibility: str | None
    poll_interval: float
    on_success: PostAction
    on_failure: PostAction
    content_type: str | None
    content_md5: str | None

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> JobSettings:
        """From the settings mapping the ledger stores (older jobs lack some keys)."""
        return cls(
            kinds=tuple(output_kinds(data)),
            lipsync=data.get("lipsync") or None,
            video_duration=data.get("video_duration"),
            visibility=data.get("visibility"),
            poll_interval=float(data.get("poll_interval", DEFAULT_POLL_INTERVAL)),
            on_success=post_action(data.get("on_success")),
            on_failure=post_action(data.get("on_failure")),
            content_type=data.get("content_type"),
            content_md5=data.get("content_md5"),
        )

    @classmethod
    def of(cls, job: Job) -> JobSettings:
        return cls.parse(job.settings)

    def dub_options(self) -> dict[str, Any]:
        """The options every dubbing request of this job carries."""
        return {
            "lipsync": self.lipsync,
            "video_duration": self.video_duration,
            "visibility": self.visibility,
        }
