"""What the dispatcher makes of one attempt's outcome."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime

import pytest

from ledger.webhooks.retries import MAX_ATTEMPTS
from workers.webhook_http import HttpOutcome
from workers.webhooks import decide

NOW = datetime(2026, 1, 15, tzinfo=UTC)


def outcome(status: int | None, error: str | None = None, retry_after: str | None = None):  # type: ignore[no-untyped-def]
    return HttpOutcome(status, 12, "ok", error, retry_after)


@pytest.mark.parametrize("status", [200, 201, 204, 299])
def test_2xx_is_delivered(status: int) -> None:
    result = decide(1, outcome(status), now=NOW, jitter=0.0, retry_scale=1.0)
    assert (result.state, result.retry_in, result.http_status) == ("delivered", None, status)


@pytest.mark.parametrize("status", [None, 301, 400, 404, 429, 500, 503])
def test_anything_else_is_retried_on_the_schedule(status: int | None) -> None:
    error = "timed out" if status is None else None
    result = decide(1, outcome(status, error), now=NOW, jitter=0.0, retry_scale=1.0)
    assert (result.state, result.retry_in) == ("pending", 5.0)
    assert result.error


def test_retry_after_is_honoured() -> None:
    result = decide(1, outcome(429, retry_after="120"), now=NOW, jitter=0.0, retry_scale=1.0)
    assert result.retry_in == 120.0


def test_gone_fails_at_once_and_the_last_attempt_fails() -> None:
    assert decide(1, outcome(410), now=NOW, jitter=0.0, retry_scale=1.0).state == "failed"
    last = decide(MAX_ATTEMPTS, outcome(500), now=NOW, jitter=0.0, retry_scale=1.0)
    assert (last.state, last.retry_in) == ("failed", None)


def test_a_slow_2xx_is_not_a_success() -> None:
    result = decide(2, outcome(200, "response too slow"), now=NOW, jitter=0.0, retry_scale=1.0)
    assert result.state == "pending"
