"""Settled files whose container is not whole yet: held, re-checked on change, given up late.

The stability tracker says a file stopped changing; the completeness check says whether what
stopped is a whole video. A file that settled but is structurally short (a copy that stalled,
a recorder that has not written its ``moov`` yet) is *incomplete*: it is not taken, it is
checked again whenever it changes, and only after ``timeout`` seconds without any change is
it handed on anyway, marked so intake fails it with the reason instead of dubbing it.
Pure: the check and the clocks are injected.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from .completeness import Structure, describe, inspect
from .sourcefile import NotRegularFile


class Decision(Enum):
    """What to do with a settled file."""

    TAKE = "take"  # whole (or not a container we know: intake's content check decides)
    HOLD = "hold"  # incomplete, or unreadable right now: wait for a change
    GIVE_UP = "give_up"  # incomplete and unchanged for the whole timeout: fail it
    DROP = "drop"  # no longer a regular file (a FIFO or device took its name)


@dataclass(frozen=True)
class Held:
    """One incomplete file as ``status`` shows it."""

    path: Path
    ident: tuple[int, int]  # (size, mtime_ns) of the version judged
    since: float  # monotonic time this version was first found incomplete
    since_wall: float  # the same moment as UNIX time, for people
    detail: str  # what is wrong and where the structure ends


@dataclass(frozen=True)
class Verdict:
    """A decision, the structure it rests on (if the file was read) and a log-worthy note."""

    decision: Decision
    structure: Structure | None = None
    detail: str | None = None
    new: bool = False  # a newly held version (log it once)


class IncompleteFiles:
    """Per-watch bookkeeping of held files; ``judge`` is called for each settled file."""

    def __init__(
        self,
        timeout: float,
        *,
        inspect: Callable[[Path], Structure] = inspect,
        now: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.timeout = timeout
        self._inspect = inspect
        self._now = now
        self._wall = wall
        self._held: dict[Path, Held] = {}

    def judge(self, path: Path, ident: tuple[int, int], now: float | None = None) -> Verdict:
        """Take, hold, give up on or drop a file that just settled with identity ``ident``."""
        t = self._now() if now is None else now
        held = self._held.get(path)
        if held is not None and held.ident == ident:
            if t - held.since >= self.timeout:
                del self._held[path]
                return Verdict(Decision.GIVE_UP, detail=held.detail)
            return Verdict(Decision.HOLD, detail=held.detail)
        try:
            s = self._inspect(path)
        except NotRegularFile:
            self._held.pop(path, None)
            return Verdict(Decision.DROP)
        except OSError as exc:
            return Verdict(Decision.HOLD, detail=f"cannot read: {exc.strerror or exc}")
        if s.size != ident[0]:
            # It changed under us: the tracker sees the new version and asks again.
            self._held.pop(path, None)
            return Verdict(Decision.HOLD, detail="changed while being checked")
        if s.complete or s.kind is None:
            # Whole; or not a container at all (intake rejects it with the content check).
            self._held.pop(path, None)
            return Verdict(Decision.TAKE, structure=s, detail=s.note)
        detail = describe(s)
        self._held[path] = Held(path, ident, t, self._wall(), detail)
        return Verdict(Decision.HOLD, structure=s, detail=detail, new=True)

    def forget(self, path: Path) -> None:
        """The file was deleted, moved away, or the watch paused."""
        self._held.pop(path, None)

    def clear(self) -> None:
        self._held.clear()

    def paths(self) -> list[Path]:
        return list(self._held)

    def held(self) -> list[Held]:
        """Every held file, oldest first."""
        return sorted(self._held.values(), key=lambda h: h.since)

    def due(self, now: float | None = None) -> list[Path]:
        """Held files whose timeout has passed (look at them again now)."""
        t = self._now() if now is None else now
        return [p for p, h in self._held.items() if t - h.since >= self.timeout]

    def next_due(self) -> float | None:
        """When the first held file times out, or None."""
        return min((h.since + self.timeout for h in self._held.values()), default=None)
