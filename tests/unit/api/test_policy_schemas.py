"""The policy body schema names exactly the tunable fields the domain knows."""

from __future__ import annotations

from api.schemas import policies
from ledger.domain.templates import DEFAULTS
from ledger.domain.templates import camel


def test_every_policy_setting_is_in_the_schemas() -> None:
    assert set(policies.SETTINGS) == {camel(name) for name in DEFAULTS}
    for schema in (policies.CREATE, policies.UPDATE, policies.POLICY):
        assert set(policies.SETTINGS) <= set(schema["properties"])


def test_the_product_of_a_policy_is_fixed() -> None:
    assert "productId" in policies.CREATE["required"]
    assert "productId" not in policies.UPDATE["properties"]
