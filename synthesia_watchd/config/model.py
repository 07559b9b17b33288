"""The settings a checked config becomes: frozen dataclasses the rest of the daemon reads.

``Config`` (daemon-wide) holds a ``WatchConfig`` per drop folder, with defaults already folded
in. ``Secret`` keeps the API key (and other secrets) from ever printing; ``PostAction`` says
what happens to a source after its job. No checks live here: build.py fills these from values
the schema checked, so every ``Config`` in the daemon is a valid one.
"""

from __future__ import annotations

import hmac
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

#: How a secret shows wherever it would be printed.
MASK = "***"


# --- values --------------------------------------------------------------------------------------


class Secret:
    """A string that prints as ``***``: the API key can sit in a config object safely."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The value itself; call it only where the key is sent (the Authorization header)."""
        return self._value

    def __str__(self) -> str:
        return MASK

    def __repr__(self) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Secret):
            other = other._value
        if not isinstance(other, str):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other.encode())

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass(frozen=True)
class PostAction:
    """What happens to a source file after its job ends (on_success / on_failure)."""

    kind: Literal["keep", "delete", "move"]
    path: Path | None = None


# --- settings ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RateLimitSpec:
    """Request budget of one limit class (writes or reads) per endpoint; None means no window."""

    per_minute: int | None
    per_hour: int | None
    per_day: int | None


@dataclass(frozen=True)
class WatchConfig:
    """One drop folder and how its videos are dubbed, with defaults already folded in."""

    name: str
    input: Path
    output: Path | None
    recursive: bool
    source_language: str
    targets: tuple[str, ...]
    stable_seconds: float
    mode: str
    scan_interval: float
    poll_interval: float
    on_success: PostAction
    on_failure: PostAction
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    outputs: tuple[str, ...]
    lipsync: bool
    video_duration: str | None
    visibility: str | None
    title: str
    backfill_new_targets: bool
    incomplete_timeout: float = 3600.0
    #: Windows (local time) in which new paid work may start; empty: always.
    schedule: tuple[str, ...] = ()

    @property
    def output_root(self) -> Path:
        """Folder dubbed files go under: ``output``, or beside the source when unset."""
        return self.output if self.output is not None else self.input


@dataclass(frozen=True)
class Config:
    """The whole validated configuration; build it with ``load_config`` or ``build_config``."""

    source: Path | None
    api_url: str
    api_key: Secret | None
    api_key_source: str | None
    state_dir: Path
    ledger: Path
    max_uploads: int
    max_active_jobs: int
    max_downloads: int
    rate_limits: Mapping[str, RateLimitSpec]
    connect_timeout: float
    read_timeout: float
    allowed_download_hosts: tuple[str, ...]
    max_jobs_per_day: int | None
    max_bytes_per_day: int | None
    on_ambiguous_submit: str
    shutdown_timeout: float
    poll_interval_max: float
    metrics_listen: str | None
    log_level: str
    log_format: str
    watches: tuple[WatchConfig, ...]
    api_tier: str = "creator"
    web_listen: str | None = None
    web_token_file: Path | None = None
    web_allowed_hosts: tuple[str, ...] = ()
    notify_apprise: tuple[Secret, ...] = ()
    notify_webhook_url: str | None = None
    notify_webhook_secret_file: Path | None = None
    notify_events: tuple[str, ...] = ()
    #: Things that work but that the operator should hear about (shown by check-config).
    warnings: tuple[str, ...] = field(default=())
    #: Send contentMD5 on POST /v2/assets (opt-in; see schema.py).
    send_content_md5: bool = False
    #: A shared PostgreSQL ledger's URL (no password); None: the SQLite file ``ledger``.
    ledger_url: str | None = None
    #: That ledger's password when read from a file or credential (else libpq finds it).
    ledger_password: Secret | None = None
    #: This host's name in a shared ledger.
    node_name: str = field(default_factory=socket.gethostname)
    #: Seconds a claimed job stays this node's without a renewing heartbeat.
    lease_duration: float = 60.0
    #: This node's upload cap in bytes per second (upload.max_bandwidth); None: no cap.
    upload_max_bandwidth: int | None = None

    @property
    def ledger_location(self) -> Path | str:
        """The ledger as ``open_ledger`` takes it: the PostgreSQL URL, else the SQLite file."""
        return self.ledger_url or self.ledger

    def ledger_password_text(self) -> str | None:
        """The shared ledger's password as read from a file or credential (None: libpq's)."""
        return None if self.ledger_password is None else self.ledger_password.reveal()

    def watch(self, name: str) -> WatchConfig:
        """The watch called ``name``; KeyError when there is none."""
        for w in self.watches:
            if w.name == name:
                return w
        raise KeyError(name)
