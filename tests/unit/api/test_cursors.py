"""Feed cursors: opaque, bound to their environment, impossible to forge or shift."""

from __future__ import annotations

from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.cursors import BadCursorError
from api.cursors import decode_cursor
from api.cursors import encode_cursor

PEPPER = b"p" * 32


@given(position=st.integers(0, 2**63 - 1))
def test_a_cursor_round_trips(position: int) -> None:
    tenant = uuid4()
    cursor = encode_cursor(PEPPER, tenant, position)
    assert len(cursor) == 27
    assert decode_cursor(PEPPER, tenant, cursor) == position


def test_a_cursor_is_refused_elsewhere_or_altered() -> None:
    tenant = uuid4()
    cursor = encode_cursor(PEPPER, tenant, 42)
    with pytest.raises(BadCursorError):
        decode_cursor(PEPPER, uuid4(), cursor)
    with pytest.raises(BadCursorError):
        decode_cursor(b"q" * 32, tenant, cursor)
    shifted = encode_cursor(PEPPER, tenant, 43)
    with pytest.raises(BadCursorError):
        decode_cursor(PEPPER, tenant, shifted[:11] + cursor[11:])
    for junk in ("", "!!!", "A" * 27, cursor + "A"):
        with pytest.raises(BadCursorError):
            decode_cursor(PEPPER, tenant, junk)
