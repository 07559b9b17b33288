"""How long a dub will take, learned from the ledger's own history.

Synthesia's dub time grows with the video's length, so the estimate is a rate: seconds of
dubbing per second of video, the median over recent finished dubs (the median, because one
dub stuck in a queue for an hour must not move every estimate). Used to show an operator
"about N min left" and to plan when a job's first status poll is worth its read.
"""

from __future__ import annotations

from collections.abc import Sequence
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
