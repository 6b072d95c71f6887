"""The sliding window and the client-IP rule, without I/O."""

from __future__ import annotations

import falcon.testing
import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.client_ip import client_ip
from api.client_ip import parse_networks
from api.ratelimit import MemoryLimiter
from api.ratelimit import Rate


def test_rate_parses_the_documented_forms() -> None:
    assert Rate.parse("60/minute") == Rate(60, 60.0)
    assert Rate.parse("5/second") == Rate(5, 1.0)
    with pytest.raises(ValueError, match="bad rate"):
        Rate.parse("60 per minute")


@given(
    limit=st.integers(1, 50),
    gaps=st.lists(st.floats(0, 5, allow_nan=False), min_size=1, max_size=200),
)
def test_no_window_ever_admits_more_than_the_limit(limit: int, gaps: list[float]) -> None:
    limiter = MemoryLimiter()
    rate = Rate(limit, 10.0)
    now, admitted = 1000.0, []
    for gap in gaps:
        now += gap
        if limiter.check("k", rate, now).allowed:
            admitted.append(now)
    for i, start in enumerate(admitted):
        inside = [t for t in admitted[i:] if t < start + rate.window]
        assert len(inside) <= limit


def test_a_burst_admits_exactly_the_limit_and_says_when_to_retry() -> None:
    limiter = MemoryLimiter()
    rate = Rate(60, 60.0)
    verdicts = [limiter.check("k", rate, 1000.0 + i * 0.001) for i in range(200)]
    assert sum(v.allowed for v in verdicts) == 60
    refused = verdicts[-1]
    assert refused.remaining == 0
    assert refused.retry_after(1000.2) == 60


def _request(peer: str, forwarded: str | None = None) -> falcon.Request:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    env = falcon.testing.create_environ(headers=headers, remote_addr=peer)
    return falcon.Request(env)


def test_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy() -> None:
    proxies = parse_networks(["10.0.0.0/8"])
    assert client_ip(_request("203.0.113.9", "1.2.3.4"), proxies) == "203.0.113.9"
    assert client_ip(_request("10.1.1.1", "1.2.3.4"), proxies) == "1.2.3.4"
    # A client-supplied left part cannot hide the real client behind the proxy chain.
    assert client_ip(_request("10.1.1.1", "6.6.6.6, 1.2.3.4, 10.2.2.2"), proxies) == "1.2.3.4"
    assert client_ip(_request("10.1.1.1", "1.2.3.4"), ()) == "10.1.1.1"
