"""Product and Entitlement: field rules and PATCH."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from typing import Any
from uuid import uuid4

import pytest

from ledger.domain.entitlement import Entitlement
from ledger.domain.errors import NotFound
from ledger.domain.errors import ValidationFailed
from ledger.domain.product import Product

T0 = datetime(2026, 1, 15, tzinfo=UTC)


def test_product_defaults_key_prefix_to_lic() -> None:
    product = Product.create(id=uuid4(), name="App", code="app_1", at=T0)
    assert (product.key_prefix, product.description, product.metadata) == ("LIC", None, {})


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"name": ""}, "name"),
        ({"code": "has space"}, "code"),
        ({"code": "x" * 51}, "code"),
        ({"key_prefix": "lic"}, "keyPrefix"),
        ({"key_prefix": "A"}, "keyPrefix"),
        ({"description": "d" * 1001}, "description"),
        ({"metadata": {str(i): i for i in range(65)}}, "metadata"),
        ({"metadata": {"big": "x" * 17000}}, "metadata"),
    ],
)
def test_product_fields_are_validated(fields: dict[str, Any], path: str) -> None:
    args: dict[str, Any] = {"name": "App", "code": "app", **fields}
    with pytest.raises(ValidationFailed) as caught:
        Product.create(id=uuid4(), at=T0, **args)
    assert caught.value.details["issues"][0]["path"] == [path]


def test_product_patch_and_delete() -> None:
    product = Product.create(id=uuid4(), name="App", code="app", at=T0)
    assert product.update(description="new", key_prefix="ACME", at=T0)
    assert (product.description, product.key_prefix) == ("new", "ACME")
    product.delete(at=T0)
    names = [type(e).__name__ for e in product.collect_events()]
    assert names == ["Created", "Updated", "Deleted"]
    with pytest.raises(NotFound):
        product.update(name="x", at=T0)


def test_entitlement_code_is_lowercase() -> None:
    with pytest.raises(ValidationFailed):
        Entitlement.create(id=uuid4(), code="Export", name="Export", at=T0)
    entitlement = Entitlement.create(id=uuid4(), code="export-pdf_2", name="Export", at=T0)
    assert entitlement.update(name="PDF export", at=T0)
    assert entitlement.name == "PDF export"
