"""Metadata numbers are accepted exactly when PostgreSQL `jsonb` gives them back unchanged.

The hash chain digests event data as written; verification re-digests what Postgres
returns. jsonb prints floats of 1e16 and more as integer digits and -0.0 as 0.0, and
orjson cannot write integers beyond 64 bits, so `check_metadata` refuses precisely
those numbers (docs/security.md, "Input limits").
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import psycopg
import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from ledger.domain.checks import Issues
from ledger.domain.checks import check_metadata


@pytest.fixture(scope="module")
def conn(pg_server_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(pg_server_url, autocommit=True) as connection:
        yield connection


def accepted(number: float) -> bool:
    issues = Issues()
    check_metadata(issues, {"n": number})
    return not issues.items


def round_trips(conn: psycopg.Connection[Any], number: float) -> bool:
    try:
        written = orjson.dumps({"n": number})
    except orjson.JSONEncodeError:
        return False
    row = conn.execute("SELECT %s::jsonb", (written.decode(),)).fetchone()
    assert row is not None
    try:
        return orjson.dumps(row[0]) == written
    except orjson.JSONEncodeError:  # a float that came back as a >64-bit integer
        return False


NUMBERS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([1e16, -1e16, 9.999999999999998e15, -0.0, 0.0, 2**63, 2**64, -(2**63) - 1]),
)


@settings(max_examples=400, deadline=None)
@given(number=NUMBERS)
def test_accepted_exactly_when_jsonb_round_trips(
    conn: psycopg.Connection[Any], number: float
) -> None:
    assert accepted(number) == round_trips(conn, number), number
