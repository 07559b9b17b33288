"""How long a dub will take, learned from the ledger's own history.

Synthesia's dub time grows with the video's length, so the estimate is a rate: seconds of
dubbing per second of video, the median over recent finished dubs (the median, because one
dub stuck in a queue for an hour must not move every estimate). Used to show an operator
"about N min left" and to plan when a job's first status poll is worth its read.

``predict`` adds how far actual dubs strayed from such an estimate (low and high quantiles of
actual / expected over the same history), the window in which a poll is likely to find a dub
finished; pollplan.py polls closely inside that window and sparingly outside it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median

#: With no history at all: a rough published figure, about a minute of dubbing per minute of
#: video, and never less than this many seconds.
DEFAULT_RATE = 1.0
MIN_SECONDS = 20.0


def dub_rate(history: Sequence[tuple[float | None, float]]) -> float | None:
    """Median seconds of dubbing per second of video over ``(video_s, dub_s)`` samples."""
    rates = [dub / video for video, dub in history if video and video > 0 and dub >= 0]
    return median(rates) if rates else None


def expected_dub_seconds(
    history: Sequence[tuple[float | None, float]], video_seconds: float | None
) -> float:
    """The expected dubbing time of a video of ``video_seconds`` (None: length unknown).

    With a known length, length x the learned rate (or DEFAULT_RATE); with an unknown one, the
    median of all recent dub times; with no history either, MIN_SECONDS.
    """
    if video_seconds is not None and video_seconds > 0:
        rate = dub_rate(history)
        return max(MIN_SECONDS, video_seconds * (DEFAULT_RATE if rate is None else rate))
    times = [dub for _, dub in history if dub >= 0]
    return max(MIN_SECONDS, median(times)) if times else MIN_SECONDS


#: The spread a prediction keeps at least, however alike its few samples were: a handful of
#: dubs says little about the next one.
MIN_EARLY, MIN_LATE = 0.8, 1.25
#: Below this many samples the spread is widened further, to at least FEW_SPREAD.
FEW_SAMPLES, FEW_SPREAD = 5, (0.7, 1.5)
#: With a known length but no history: the published rate, within a factor of two.
NO_HISTORY_SPREAD = (0.5, 2.0)
#: The quantiles of actual / expected that bound the window.
LOW_Q, HIGH_Q = 0.1, 0.9


@dataclass(frozen=True)
class Prediction:
    """When a dub will probably finish: ``seconds`` after submit, most likely between
    ``early`` x seconds and ``late`` x seconds (``samples``: how many finished dubs taught it)."""

    seconds: float
    early: float
    late: float
    samples: int

    @property
    def opens(self) -> float:
        """Seconds after submit where close polling starts."""
        return self.seconds * self.early

    @property
    def closes(self) -> float:
        """Seconds after submit where close polling ends (and backs off)."""
        return self.seconds * self.late


def _quantile(values: Sequence[float], q: float) -> float:
    """Nearest-rank quantile of a non-empty sequence."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))]


def predict(
    history: Sequence[tuple[float | None, float]], video_seconds: float | None
) -> Prediction | None:
    """How long a dub of ``video_seconds`` (None: unknown) will take, with its likely spread.

    Unlike ``expected_dub_seconds`` there is no floor (a poll planner must not wait 20 s for
    a dub that history says takes 2), and None when nothing at all is known: neither history
    nor a length.
    """
    known = video_seconds is not None and video_seconds > 0
    rated = [dub / video for video, dub in history if video and video > 0 and dub >= 0]
    if known and rated:
        samples = rated
        scale = float(video_seconds or 0.0)
    elif known:
        early, late = NO_HISTORY_SPREAD
        return Prediction(float(video_seconds or 0.0) * DEFAULT_RATE, early, late, 0)
    else:
        samples = [dub for _, dub in history if dub >= 0]
        scale = 1.0
        if not samples:
            return None
    mid = median(samples)
    if mid <= 0:
        return None
    early = min(MIN_EARLY, _quantile(samples, LOW_Q) / mid)
    late = max(MIN_LATE, _quantile(samples, HIGH_Q) / mid)
    if len(samples) < FEW_SAMPLES:
        early, late = min(early, FEW_SPREAD[0]), max(late, FEW_SPREAD[1])
    return Prediction(mid * scale, early, late, len(samples))
