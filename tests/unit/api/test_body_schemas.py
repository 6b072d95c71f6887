"""check_body's compiled fast path never accepts a body jsonschema refuses, for every
request-body schema the app declares (valid bodies drawn from each schema, then one
field replaced by arbitrary JSON)."""

from __future__ import annotations

import base64
import secrets
from typing import Any

import fastjsonschema
import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from jsonschema import Draft202012Validator

from api.app import create_app
from api.config import Config
from api.openapi import build_document
from api.operations import _formats
from api.operations import check_body
from api.operations import compiled_schema
from ledger.domain.errors import ValidationFailed


def body_schemas() -> dict[str, Any]:
    config = Config.from_env(
        {
            "DATABASE_URL": "postgresql://unused/unused",
            "LICENTRIC_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        }
    )
    document = build_document(create_app(config).routes)
    schemas: dict[str, Any] = {}
    for path, operations in document["paths"].items():
        for method, op in operations.items():
            body = op.get("requestBody")
            if body is not None:
                schemas[f"{method.upper()} {path}"] = body["content"]["application/json"]["schema"]
    return schemas


SCHEMAS = body_schemas()
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def accepted_by_jsonschema(schema: Any, body: Any) -> bool:
    return Draft202012Validator(schema, format_checker=_formats).is_valid(body)


def accepted_fast(schema: Any, body: Any) -> bool:
    try:
        compiled_schema(schema)(body)
    except fastjsonschema.JsonSchemaException:
        return False
    return True


@pytest.mark.parametrize("name", sorted(SCHEMAS))
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_the_fast_check_accepts_only_what_jsonschema_accepts(
    name: str, data: st.DataObject
) -> None:
    schema = SCHEMAS[name]
    body = data.draw(from_schema(schema), label="valid")
    if isinstance(body, dict) and body and data.draw(st.booleans(), label="mutate"):
        field = data.draw(st.sampled_from(sorted(body)), label="field")
        body = {**body, field: data.draw(JSON, label="value")}
    elif data.draw(st.booleans(), label="replace"):
        body = data.draw(JSON, label="body")
    if accepted_fast(schema, body):
        assert accepted_by_jsonschema(schema, body), (name, body)
        check_body(schema, body)  # no 400
    else:
        ok = accepted_by_jsonschema(schema, body)
        try:
            check_body(schema, body)
        except ValidationFailed:
            assert not ok
        else:
            assert ok


def test_no_default_is_written_into_the_body() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer", "default": 3}}}
    body: dict[str, Any] = {}
    check_body(schema, body)
    assert body == {}
