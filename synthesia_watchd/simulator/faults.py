"""Scripted faults, pause gates and the request log of the simulator.

A fault fires on the next ``count`` matching requests, or with a seeded ``probability``, or
both; a fault with neither fires on every match. Faults are kept in insertion order and the
first one that fires wins, so tests can stack "three 429s, then a 503" deterministically.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from synthesia_watchd.domain.contract import (
    ASSET_ERROR_CODES,
    DUBBING_ERROR_CODES,
    OUTPUT_LANGUAGES,
)

#: Endpoint names faults, gates and the request log use.
ENDPOINTS: tuple[str, ...] = (
    "POST /v2/assets",
    "GET /v2/assets/{id}",
    "POST /v2/dubbing",
    "GET /v2/dubbing/{id}",
    "PUT /v2/dubbing/{id}",
    "GET /v2/videos",
    "DOWNLOAD",
    "S3",
)
ANY = "*"

#: Fault kinds, and the endpoints each may be attached to (None: any endpoint).
KINDS: dict[str, frozenset[str] | None] = {
    "429": None,
    "5xx": None,
    "drop_before": None,
    "drop_after": None,
    "slow": None,
    "expired_credentials": frozenset({"S3", ANY}),
    "expired_url": frozenset({"DOWNLOAD", ANY}),
    "truncate": frozenset({"DOWNLOAD", ANY}),
    "project_error": frozenset({"POST /v2/dubbing"}),
    "language_error": frozenset({"POST /v2/dubbing"}),
    "asset_error": frozenset({"POST /v2/assets"}),
    "unsafe_url": frozenset({"GET /v2/dubbing/{id}"}),
}
_PARAMS = frozenset(
    {"retry_after", "limit", "status", "seconds", "delay", "error_code", "language", "reset"}
)

#: Kinds that answer instead of the real handler (checked before processing).
PRE_KINDS = ("drop_before", "429", "5xx")


@dataclass
class Fault:
    """One scripted fault; ``remaining`` None means unlimited, ``fired`` counts how often."""

    endpoint: str
    kind: str
    remaining: int | None = None
    probability: float | None = None
    params: dict[str, Any] = field(default_factory=dict)
    fired: int = 0

    def param(self, name: str, default: Any) -> Any:
        """A parameter given to ``Faults.add``, or ``default``."""
        return self.params.get(name, default)

    def matches(self, endpoint: str, kinds: Iterable[str]) -> bool:
        """Whether this fault could fire for ``endpoint`` and one of ``kinds``."""
        if self.remaining == 0 or self.kind not in kinds:
            return False
        return self.endpoint in (endpoint, ANY)


class Faults:
    """The fault table of one simulator; thread-safe, seeded for reproducible runs."""

    def __init__(self, seed: int = 0) -> None:
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(
        self,
        endpoint: str,
        kind: str,
        *,
        count: int | None = None,
        probability: float | None = None,
        **params: Any,
    ) -> Fault:
        """Script a fault; see the package docstring for the kinds and their parameters."""
        if endpoint != ANY and endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}; one of {', '.join(ENDPOINTS)}")
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {', '.join(KINDS)}")
        allowed = KINDS[kind]
        if allowed is not None and endpoint not in allowed:
            raise ValueError(f"fault {kind!r} applies only to {', '.join(sorted(allowed))}")
        unknown = set(params) - _PARAMS
        if unknown:
            raise ValueError(f"unknown fault parameters: {', '.join(sorted(unknown))}")
        _check_params(kind, params)
        if count is not None and count < 0:
            raise ValueError("count must be >= 0")
        if probability is not None and not 0.0 <= probability <= 1.0:
            raise ValueError("probability must be within [0, 1]")
        fault = Fault(endpoint, kind, count, probability, dict(params))
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        """Remove every fault."""
        with self._lock:
            self._faults.clear()

    def __len__(self) -> int:
        with self._lock:
            return sum(1 for f in self._faults if f.remaining != 0)

    def take(
        self,
        endpoint: str,
        kinds: Iterable[str],
        applies: Callable[[Fault], bool] | None = None,
    ) -> Fault | None:
        """The first fault for ``endpoint`` among ``kinds`` that fires now (and is consumed).

        ``applies`` skips faults that cannot act on this request (a language_error for a
        language the project does not have), so they wait for one they can.
        """
        wanted = tuple(kinds)
        with self._lock:
            for fault in self._faults:
                if not fault.matches(endpoint, wanted):
                    continue
                if applies is not None and not applies(fault):
                    continue
                if fault.probability is not None and self._rng.random() >= fault.probability:
                    continue
                if fault.remaining is not None:
                    fault.remaining -= 1
                fault.fired += 1
                return fault
        return None


def _check_params(kind: str, params: dict[str, Any]) -> None:
    """Refuse error codes and languages the API could never send, at ``add`` time."""
    code = params.get("error_code")
    if code is not None:
        codes = ASSET_ERROR_CODES if kind == "asset_error" else DUBBING_ERROR_CODES
        if code not in codes:
            raise ValueError(f"error_code for {kind!r} must be one of {', '.join(sorted(codes))}")
    language = params.get("language")
    if language is not None and language not in OUTPUT_LANGUAGES:
        raise ValueError(f"language {language!r} is not a DubbingOutputLanguage")


class Gate:
    """A pause point: requests to ``endpoint`` record their arrival, then wait for release."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self._arrived = threading.Event()
        self._released = threading.Event()
        self._lock = threading.Lock()
        self.arrivals = 0

    def wait_arrived(self, timeout: float = 10.0) -> bool:
        """Whether a request reached the paused endpoint within ``timeout`` seconds."""
        return self._arrived.wait(timeout)

    def release(self) -> None:
        """Let the waiting request, and every later one, through."""
        self._released.set()

    @property
    def released(self) -> bool:
        """Whether ``release`` was called."""
        return self._released.is_set()

    def block(self) -> None:
        """Called by a handler: note the arrival, then wait until released."""
        with self._lock:
            self.arrivals += 1
        self._arrived.set()
        self._released.wait()


@dataclass
class Recorded:
    """One request as the simulator saw it; ``status`` is None while pending or when dropped."""

    method: str
    endpoint: str
    path: str
    query: str
    had_authorization: bool
    time: float
    status: int | None = None
    fault: str | None = None
    body: Any = None  # the parsed JSON body of an API request, when it had one
