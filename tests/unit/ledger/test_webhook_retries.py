"""The retry schedule of API.md §6 as pure functions."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.webhooks.retries import MAX_ATTEMPTS
from ledger.webhooks.retries import MAX_RETRY_AFTER
from ledger.webhooks.retries import RETRY_DELAYS
from ledger.webhooks.retries import parse_retry_after
from ledger.webhooks.retries import retry_delay

NOW = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)


def test_schedule_is_the_documented_one() -> None:
    hours = 3600
    assert (
        5,
        300,
        1800,
        2 * hours,
        5 * hours,
        10 * hours,
        14 * hours,
        20 * hours,
        24 * hours,
    ) == RETRY_DELAYS
    assert MAX_ATTEMPTS == 10


def test_without_jitter_each_failure_waits_its_step() -> None:
    delays = [retry_delay(n, jitter=0.0) for n in range(1, MAX_ATTEMPTS)]
    assert delays == [float(d) for d in RETRY_DELAYS]


def test_the_last_attempt_has_no_retry() -> None:
    assert retry_delay(MAX_ATTEMPTS, jitter=0.0) is None
    assert retry_delay(MAX_ATTEMPTS + 3, jitter=0.5) is None


@given(attempt=st.integers(1, MAX_ATTEMPTS - 1), jitter=st.floats(-1.0, 1.0))
def test_jitter_stays_within_twenty_percent(attempt: int, jitter: float) -> None:
    delay = retry_delay(attempt, jitter=jitter)
    step = RETRY_DELAYS[attempt - 1]
    assert delay is not None
    assert step * 0.8 - 1e-9 <= delay <= step * 1.2 + 1e-9


@given(attempt=st.integers(1, MAX_ATTEMPTS - 1), retry_after=st.floats(0, 10 * 86400))
def test_a_larger_retry_after_wins_up_to_a_day(attempt: int, retry_after: float) -> None:
    delay = retry_delay(attempt, jitter=0.0, retry_after=retry_after)
    assert delay is not None
    assert delay == max(float(RETRY_DELAYS[attempt - 1]), min(retry_after, MAX_RETRY_AFTER))


def test_scale_shrinks_the_schedule_for_tests() -> None:
    assert retry_delay(1, jitter=0.0, scale=0.01) == pytest.approx(0.05)
    assert retry_delay(9, jitter=0.0, scale=0.0) == 0.0


@pytest.mark.parametrize("attempt", [0, -1])
def test_attempts_start_at_one(attempt: int) -> None:
    with pytest.raises(ValueError, match="start at 1"):
        retry_delay(attempt, jitter=0.0)


def test_jitter_must_be_a_unit_draw() -> None:
    with pytest.raises(ValueError, match="jitter"):
        retry_delay(1, jitter=1.5)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("120", 120.0),
        (" 7 ", 7.0),
        ("Thu, 15 Jan 2026 10:31:00 GMT", 60.0),
        ("Thu, 15 Jan 2026 10:00:00 GMT", 0.0),
        ("soon", None),
        ("-5", None),
    ],
)
def test_retry_after_is_seconds_or_an_http_date(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, NOW) == seconds
