"""The dub-time estimate learned from history (estimate.py)."""

from __future__ import annotations

import pytest

from synthesia_watchd.estimate import MIN_SECONDS, dub_rate, expected_dub_seconds


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
