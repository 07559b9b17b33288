"""Retry policy, full-jitter backoff and server wait hints."""

from __future__ import annotations

import dataclasses
from email.utils import formatdate

import pytest

from synthesia_watchd.domain.retry import (
    MAX_SERVER_WAIT,
    RetryPolicy,
    backoff_delay,
    parse_retry_after,
)

NOW = 1_750_000_000.0


def test_increment_returns_new_policy_and_leaves_original() -> None:
    """increment() counts a try on a copy; the shared original is untouched."""
    policy = RetryPolicy(max_attempts=2)
    after = policy.increment()
    assert policy.attempts == 0
    assert after.attempts == 1
    assert after.max_attempts == 2


def test_policy_is_frozen() -> None:
    """A policy cannot be mutated in place."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        RetryPolicy().attempts = 3  # type: ignore[misc]


def test_exhausted_after_max_attempts() -> None:
    """exhausted turns true exactly when the tries made reach max_attempts."""
    policy = RetryPolicy(max_attempts=3)
    seen = []
    for _ in range(4):
        seen.append(policy.exhausted)
        policy = policy.increment()
    assert seen == [False, False, False, True]


def test_invalid_policy_rejected() -> None:
    """Zero attempts or negative delays are a construction error."""
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(base=-1)


def test_backoff_full_jitter_upper_bound_doubles_then_caps() -> None:
    """With rng() == 1 the delay is base * 2**attempts, capped at cap."""
    policy = RetryPolicy(base=0.5, cap=3.0)
    ceilings = []
    for _ in range(5):
        ceilings.append(policy.backoff(rng=lambda: 1.0))
        policy = policy.increment()
    assert ceilings == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_backoff_scales_with_rng() -> None:
    """The jitter is the rng value times the ceiling, down to zero."""
    assert backoff_delay(2, base=1.0, cap=100.0, rng=lambda: 0.25) == 1.0
    assert backoff_delay(2, base=1.0, cap=100.0, rng=lambda: 0.0) == 0.0


def test_backoff_huge_attempt_does_not_overflow() -> None:
    """An absurd attempt count still yields the cap, not an OverflowError."""
    assert backoff_delay(10_000, base=1.0, cap=7.0, rng=lambda: 1.0) == 7.0


def test_backoff_negative_attempt_rejected() -> None:
    """A negative attempt number is a programming error."""
    with pytest.raises(ValueError):
        backoff_delay(-1, base=1.0, cap=1.0)


def test_retry_after_delta_seconds() -> None:
    """Retry-After: 7 means seven seconds."""
    assert parse_retry_after({"Retry-After": "7"}, now=NOW) == 7.0


def test_retry_after_http_date() -> None:
    """An HTTP-date Retry-After is converted to seconds from now."""
    header = formatdate(NOW + 120, usegmt=True)
    assert parse_retry_after({"Retry-After": header}, now=NOW) == pytest.approx(120.0)


def test_headers_are_case_insensitive() -> None:
    """Header names match regardless of case, as HTTP requires."""
    assert parse_retry_after({"ratelimit-reset": "12"}, now=NOW) == 12.0
    assert parse_retry_after({"RETRY-AFTER": "3"}, now=NOW) == 3.0


def test_x_ratelimit_reset_timestamp_and_seconds() -> None:
    """X-RateLimit-Reset above 1e9 is a UNIX time, below it a number of seconds."""
    assert parse_retry_after({"X-RateLimit-Reset": str(NOW + 30)}, now=NOW) == 30.0
    assert parse_retry_after({"X-RateLimit-Reset": "45"}, now=NOW) == 45.0


def test_largest_hint_wins() -> None:
    """When several headers disagree, the longest wait is taken."""
    headers = {"Retry-After": "5", "RateLimit-Reset": "20", "X-RateLimit-Reset": "9"}
    assert parse_retry_after(headers, now=NOW) == 20.0


def test_garbage_is_ignored_and_absent_is_none() -> None:
    """Unparseable values are skipped; with nothing usable the answer is None."""
    assert parse_retry_after({}, now=NOW) is None
    assert parse_retry_after({"Retry-After": "soon", "RateLimit-Reset": "nan"}, now=NOW) is None
    assert parse_retry_after({"Retry-After": "soon", "RateLimit-Reset": "4"}, now=NOW) == 4.0


def test_past_dates_clamp_to_zero() -> None:
    """A reset already in the past means no wait, never a negative one."""
    past = formatdate(NOW - 300, usegmt=True)
    assert parse_retry_after({"Retry-After": past}, now=NOW) == 0.0
    assert parse_retry_after({"Retry-After": "-5"}, now=NOW) == 0.0


def test_capped_at_one_day() -> None:
    """A hint of a month is cut to one day."""
    assert parse_retry_after({"Retry-After": str(30 * 86_400)}, now=NOW) == MAX_SERVER_WAIT
