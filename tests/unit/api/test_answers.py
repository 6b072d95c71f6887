"""api/answers.py: a body made from its prefix is byte for byte the body serialized whole."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from api.answers import MAX_PER_LICENSE
from api.answers import body
from api.answers import body_prefix
from api.answers import remember

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
objects = st.dictionaries(st.text(max_size=12), json_values, max_size=6)


@given(data=objects, metadata=objects)
def test_prefix_and_metadata_make_the_whole_body(
    data: dict[str, Any], metadata: dict[str, Any]
) -> None:
    data.pop("metadata", None)
    whole = orjson.dumps({"data": {**data, "metadata": metadata}})
    assert body(body_prefix(data), metadata) == whole


def test_a_license_remembers_a_bounded_number_of_requests() -> None:
    answers: dict[Any, Any] = {}
    for n in range(3 * MAX_PER_LICENSE):
        remember(answers, (f"fp-{n}", ()), object())  # type: ignore[arg-type]
        assert len(answers) <= MAX_PER_LICENSE
