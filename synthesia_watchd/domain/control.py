"""Operator holds (pause, drain) and schedule windows: what work may start now, as pure data.

A pause stops every step that leads to a charge: no upload of a queued file, no submit. Jobs
already dubbing at Synthesia (paid for) are still polled and downloaded, so paid work is never
wasted. A drain finishes everything already started (upload, submit, dubbing, download) and
takes nothing new from the queue: the state to reach before maintenance. A watch outside its
``schedule`` windows behaves as paused: files are queued, nothing is submitted.

The state is stored as JSON in the ledger's meta table (``CONTROL_KEY``), written by the
lifecycle operations and read by the daemon on every loop pass, so ``pause`` works against a
running daemon and survives a restart.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

CONTROL_KEY = "control"
PAUSE = "pause"
DRAIN = "drain"
MODES = (PAUSE, DRAIN)

#: Stage classes a hold applies to: ``new`` is a queued job (nothing done yet); ``started`` is a
#: job with an asset but no project (its next step is the paid submit).
NEW = "new"
STARTED = "started"

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WINDOW = re.compile(
    r"^\s*(?:(?P<days>[a-z,\-]+)\s*)?(?:(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2}))?\s*$"
)


class BadWindow(ValueError):
    """Raised when a schedule window cannot be parsed; the message says what is expected."""


@dataclass(frozen=True)
class Window:
    """Days of the week (0 = Monday) and minutes of the day in which new paid work may start.

    ``end <= start`` is a window over midnight: it belongs to the day it starts on.
    """

    days: frozenset[int]
    start: int
    end: int

    def contains(self, when: datetime) -> bool:
        minute = when.hour * 60 + when.minute
        day = when.weekday()
        if self.start < self.end:
            return day in self.days and self.start <= minute < self.end
        # Over midnight (or a whole day when start == end == 0).
        if self.start == self.end:
            return day in self.days
        return (day in self.days and minute >= self.start) or (
            (day - 1) % 7 in self.days and minute < self.end
        )


def _minutes(text: str) -> int:
    hours, minutes = (int(p) for p in text.split(":"))
    if not (0 <= hours <= 24 and 0 <= minutes < 60) or (hours == 24 and minutes):
        raise BadWindow(f"{text!r} is not a time of day (00:00 to 24:00)")
    return hours * 60 + minutes


def _days(text: str) -> frozenset[int]:
    out: set[int] = set()
    for part in text.split(","):
        ends = part.split("-")
        if len(ends) > 2 or any(e not in _DAYS for e in ends):
            raise BadWindow(
                f"{part!r} is not a day: days are {', '.join(_DAYS)} or ranges like mon-fri, "
                "in a window like 'mon-fri HH:MM-HH:MM'"
            )
        first, last = _DAYS.index(ends[0]), _DAYS.index(ends[-1])
        out.update((first + i) % 7 for i in range((last - first) % 7 + 1))
    return frozenset(out)


def parse_window(text: str) -> Window:
    """``"22:00-06:00"``, ``"mon-fri 22:00-06:00"``, ``"sat,sun"`` (whole days)."""
    match = _WINDOW.match(text.lower())
    if not match or not (match.group("days") or match.group("start")):
        raise BadWindow(
            f"expected '[days] HH:MM-HH:MM' such as '22:00-06:00' or 'mon-fri 22:00-06:00', "
            f"or days alone such as 'sat,sun'; got {text!r}"
        )
    days = _days(match.group("days")) if match.group("days") else frozenset(range(7))
    if match.group("start"):
        start, end = _minutes(match.group("start")), _minutes(match.group("end"))
        if start == end:
            raise BadWindow(f"{text!r} is an empty window (start equals end)")
        if end == 24 * 60:
            end = 0 if start else 24 * 60
        return Window(days, start, end)
    return Window(days, 0, 0)


def in_schedule(windows: Iterable[Window], when: datetime) -> bool:
    """Whether ``when`` (local time) falls in any window; no windows means always open."""
    windows = tuple(windows)
    return not windows or any(w.contains(when) for w in windows)


@dataclass(frozen=True)
class Hold:
    """One operator hold: pause or drain, since when, and a note for people."""

    mode: str
    since: float
    reason: str = ""

    def to_data(self) -> dict[str, Any]:
        return {"mode": self.mode, "since": self.since, "reason": self.reason}


@dataclass(frozen=True)
class Control:
    """Every operator hold: one global, one per watch name."""

    global_hold: Hold | None = None
    watches: Mapping[str, Hold] = field(default_factory=dict)

    @classmethod
    def from_json(cls, raw: str | None) -> Control:
        """Parse the stored state; anything unreadable is treated as no hold (and logged)."""
        if not raw:
            return cls()
        try:
            data = json.loads(raw)
            glob = data.get("global")
            return cls(
                Hold(**glob) if glob else None,
                {name: Hold(**h) for name, h in (data.get("watches") or {}).items()},
            )
        except (ValueError, TypeError, AttributeError):
            return cls()

    def to_json(self) -> str:
        return json.dumps(
            {
                "global": self.global_hold.to_data() if self.global_hold else None,
                "watches": {n: h.to_data() for n, h in sorted(self.watches.items())},
            }
        )

    def hold_of(self, watch: str) -> Hold | None:
        """The hold that applies to ``watch``: a pause wins over a drain, global over watch."""
        holds = [h for h in (self.global_hold, self.watches.get(watch)) if h is not None]
        for mode in MODES:
            for h in holds:
                if h.mode == mode:
                    return h
        return None


def blocked(mode: str | None, stage: str) -> bool:
    """Whether a hold of ``mode`` keeps a job of ``stage`` (NEW or STARTED) from its next step."""
    if mode == PAUSE:
        return True
    if mode == DRAIN:
        return stage == NEW
    return False


def held_watches(
    control: Control,
    watch_names: Iterable[str],
    closed: Iterable[str],
    stage: str,
) -> set[str]:
    """Watches whose jobs of ``stage`` may not start their next step now.

    ``closed`` are the watches outside their schedule windows (they act as paused).
    """
    out = set(closed)
    for name in watch_names:
        hold = control.hold_of(name)
        if blocked(hold.mode if hold else None, stage):
            out.add(name)
    return out


@dataclass(frozen=True)
class Gate:
    """What may take its next step now: per stage class, everything held or a set of watches.

    The scheduler reads it on every dispatch; jobs it holds keep their place in the queue.
    """

    all_new: bool = False
    all_started: bool = False
    new: frozenset[str] = frozenset()
    started: frozenset[str] = frozenset()
    #: Why each held watch is held (pause, drain, schedule), for status, metrics and the page.
    why: Mapping[str, str] = field(default_factory=dict)


def gate(control: Control, schedules: Mapping[str, Iterable[str]], when: datetime) -> Gate:
    """The gate for this moment: operator holds plus closed schedule windows (local time)."""
    closed = {name for name, ws in schedules.items() if not in_schedule(_parse_all(ws), when)}
    names = list(schedules)
    glob = control.global_hold.mode if control.global_hold else None
    why: dict[str, str] = {}
    for name in names:
        hold = control.hold_of(name)
        if hold is not None:
            why[name] = hold.mode
        elif name in closed:
            why[name] = "schedule"
    return Gate(
        all_new=blocked(glob, NEW),
        all_started=blocked(glob, STARTED),
        new=frozenset(held_watches(control, names, closed, NEW)),
        started=frozenset(held_watches(control, names, closed, STARTED)),
        why=why,
    )


def _parse_all(windows: Iterable[str]) -> tuple[Window, ...]:
    return tuple(_parse_cached(w) for w in windows)


@functools.lru_cache(maxsize=256)
def _parse_cached(text: str) -> Window:
    return parse_window(text)
