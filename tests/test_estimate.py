"""The dub-time estimate learned from history (estimate.py)."""

from __future__ import annotations

import pytest

from synthesia_watchd.domain.estimate import MIN_SECONDS, dub_rate, expected_dub_seconds, predict


def test_rate_is_the_median_of_seconds_per_video_second() -> None:
    """One dub stuck for an hour does not move the rate; samples without a length are skipped."""
    history = [(60.0, 60.0), (120.0, 240.0), (30.0, 3600.0), (None, 5.0), (60.0, 90.0)]
    assert dub_rate(history) == pytest.approx(1.75)
    assert dub_rate([(None, 10.0)]) is None


def test_known_length_scales_the_learned_rate() -> None:
    """A 10-minute video at 2 s of dubbing per video second is expected to take 20 minutes."""
    assert expected_dub_seconds([(60.0, 120.0)], 600.0) == pytest.approx(1200.0)


def test_unknown_length_uses_the_median_dub_time_and_a_floor() -> None:
    """Without a length the median dub time serves; without history, the floor."""
    assert expected_dub_seconds([(None, 100.0), (60.0, 300.0), (None, 200.0)], None) == 200.0
    assert expected_dub_seconds([], None) == MIN_SECONDS
    assert expected_dub_seconds([], 1.0) == MIN_SECONDS
    assert expected_dub_seconds([], 600.0) == pytest.approx(600.0)


def test_prediction_spread_comes_from_history() -> None:
    """Ten dubs at 0.8-1.2 s per video second: a 100 s video is expected near 100 s, within
    a window at least 0.8-1.25 wide; few samples widen it."""
    history = [(100.0, float(s)) for s in (80, 90, 95, 100, 100, 100, 105, 110, 115, 120)]
    pred = predict(history, 100.0)
    assert pred is not None
    assert pred.seconds == pytest.approx(100.0)
    assert pred.early <= 0.8 and pred.late >= 1.25
    assert pred.opens == pytest.approx(pred.seconds * pred.early)
    few = predict(history[:2], 100.0)
    assert few is not None and few.early <= 0.7 and few.late >= 1.5


def test_prediction_without_history_or_length_is_none() -> None:
    """Nothing known: no prediction; a length alone: the published rate, widely spread."""
    assert predict([], None) is None
    alone = predict([], 120.0)
    assert alone is not None and alone.seconds == pytest.approx(120.0) and alone.samples == 0
    times = predict([(None, 2.0)] * 6, None)
    assert times is not None and times.seconds == pytest.approx(2.0)  # no 20 s floor here
