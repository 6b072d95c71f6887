"""Entitlement: a named feature code licenses and policies can carry."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from typing import ClassVar
from uuid import UUID

from eventsourcing.domain import event

from ledger.domain.base import UNSET
from ledger.domain.base import LedgerAggregate
from ledger.domain.base import Unset
from ledger.domain.checks import ENTITLEMENT_CODE
from ledger.domain.checks import Issues
from ledger.domain.checks import check_metadata
from ledger.domain.checks import check_optional_text
from ledger.domain.checks import check_text
from ledger.domain.checks import json_copy
from ledger.domain.timestamps import require_utc


def check_entitlement_fields(fields: Mapping[str, Any]) -> None:
    issues = Issues()
    if "code" in fields:
        check_text(issues, "code", fields["code"], min_len=1, max_len=100,
                   pattern=ENTITLEMENT_CODE, pattern_text="[a-z0-9_-]")  # fmt: skip
    if "name" in fields:
        check_text(issues, "name", fields["name"], min_len=1, max_len=255)
    if "description" in fields:
        check_optional_text(issues, "description", fields["description"], max_len=1000)
    if "metadata" in fields:
        check_metadata(issues, fields["metadata"])
    issues.raise_if_any()


class Entitlement(LedgerAggregate):
    stream_type: ClassVar[str] = "entitlement"

    @event("Created")
    def __init__(
        self,
        *,
        code: str,
        name: str,
        description: str | None,
        metadata: dict[str, Any],
        timestamp: datetime,
    ) -> None:
        self._start(metadata)
        self.code = code
        self.name = name
        self.description = description

    @classmethod
    def create(
        cls,
        *,
        id: UUID,
        code: str,
        name: str,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        at: datetime,
    ) -> Entitlement:
        metadata = {} if metadata is None else metadata
        check_entitlement_fields(
            {"code": code, "name": name, "description": description, "metadata": metadata}
        )
        return cls._create(
            cls.Created,
            id=id,
            code=code,
            name=name,
            description=description,
            metadata=json_copy(metadata),
            timestamp=require_utc(at),
        )

    def update(
        self,
        *,
        code: str | Unset = UNSET,
        name: str | Unset = UNSET,
        description: str | Unset | None = UNSET,
        metadata: Mapping[str, Any] | Unset = UNSET,
        at: datetime,
    ) -> bool:
        """PATCH: only given fields change; returns False (no event) when nothing changes."""
        self.check_not_deleted()
        given = {"code": code, "name": name, "description": description, "metadata": metadata}
        changes = {key: value for key, value in given.items() if value is not UNSET}
        check_entitlement_fields(changes)
        return self._record_changes(changes, at)
