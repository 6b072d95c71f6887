"""Product: what licenses are sold for; its `key_prefix` starts every license key."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from typing import ClassVar
from uuid import UUID

from eventsourcing.domain import event

from ledger.domain.base import UNSET
from ledger.domain.base import LedgerAggregate
from ledger.domain.base import Unset
from ledger.domain.checks import Issues
from ledger.domain.checks import check_metadata
from ledger.domain.checks import check_optional_text
from ledger.domain.checks import check_text
from ledger.domain.checks import json_copy
from ledger.domain.timestamps import require_utc

PRODUCT_CODE = re.compile(r"[A-Za-z0-9_-]+")
KEY_PREFIX = re.compile(r"[A-Z]{2,10}")
DEFAULT_KEY_PREFIX = "LIC"


def check_product_fields(fields: Mapping[str, Any]) -> None:
    """Check the given (snake_case) fields; absent ones are not checked."""
    issues = Issues()
    if "name" in fields:
        check_text(issues, "name", fields["name"], min_len=1, max_len=255)
    if "code" in fields:
        check_text(issues, "code", fields["code"], min_len=1, max_len=50, pattern=PRODUCT_CODE)
    if "description" in fields:
        check_optional_text(issues, "description", fields["description"], max_len=1000)
    if "key_prefix" in fields:
        check_text(issues, "keyPrefix", fields["key_prefix"], max_len=10, pattern=KEY_PREFIX,
                   pattern_text="2-10 uppercase letters")  # fmt: skip
    if "metadata" in fields:
        check_metadata(issues, fields["metadata"])
    issues.raise_if_any()


class Product(LedgerAggregate):
    stream_type: ClassVar[str] = "product"

    @event("Created")
    def __init__(
        self,
        *,
        name: str,
        code: str,
        description: str | None,
        key_prefix: str,
        metadata: dict[str, Any],
        timestamp: datetime,
    ) -> None:
        self._start(metadata)
        self.name = name
        self.code = code
        self.description = description
        self.key_prefix = key_prefix

    @classmethod
    def create(
        cls,
        *,
        id: UUID,
        name: str,
        code: str,
        description: str | None = None,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        metadata: Mapping[str, Any] | None = None,
        at: datetime,
    ) -> Product:
        metadata = {} if metadata is None else metadata
        check_product_fields(
            {
                "name": name,
                "code": code,
                "description": description,
                "key_prefix": key_prefix,
                "metadata": metadata,
            }
        )
        return cls._create(
            cls.Created,
            id=id,
            name=name,
            code=code,
            description=description,
            key_prefix=key_prefix,
            metadata=json_copy(metadata),
            timestamp=require_utc(at),
        )

    def update(
        self,
        *,
        name: str | Unset = UNSET,
        code: str | Unset = UNSET,
        description: str | Unset | None = UNSET,
        key_prefix: str | Unset = UNSET,
        metadata: Mapping[str, Any] | Unset = UNSET,
        at: datetime,
    ) -> bool:
        """PATCH: only given fields change; returns False (no event) when nothing changes.

        A new `key_prefix` applies to keys issued afterwards; existing keys keep theirs.
        """
        self.check_not_deleted()
        changes = {
            key: value
            for key, value in {
                "name": name,
                "code": code,
                "description": description,
                "key_prefix": key_prefix,
                "metadata": metadata,
            }.items()
            if value is not UNSET
        }
        check_product_fields(changes)
        return self._record_changes(changes, at)
