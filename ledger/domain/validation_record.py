"""ValidationRecord: the `validation.success` / `validation.failed` facts.

Each validation is its own one-event stream (a fresh id, version 1), created directly by
its outcome event. So appending validations never conflicts with license commands or
with each other, needs no read of a stream version, and a batch of them from many
requests is one append. A retry of a batch that did commit fails on the unique
(tenant, stream, version) key: the records are never stored twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from typing import ClassVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from ledger.domain.codes import ValidationCode
from ledger.domain.timestamps import require_utc


class ValidationRecord(Aggregate):
    stream_type: ClassVar[str] = "validation"

    class Success(Aggregate.Created):
        """A `valid: true` result (VALID, or EXPIRED under ALLOW_ACCESS)."""

        license_id: str
        machine_id: str | None
        fingerprint: str | None
        code: str
        missing: list[str]
        request_id: str | None

    class Failed(Aggregate.Created):
        """A `valid: false` result of a license that exists."""

        license_id: str
        machine_id: str | None
        fingerprint: str | None
        code: str
        missing: list[str]
        request_id: str | None

    def __init__(
        self,
        *,
        license_id: str,
        machine_id: str | None,
        fingerprint: str | None,
        code: str,
        missing: list[str],
        request_id: str | None,
    ) -> None:
        self.license_id = license_id
        self.machine_id = machine_id
        self.fingerprint = fingerprint
        self.code = ValidationCode(code)
        self.missing = missing
        self.request_id = request_id

    @classmethod
    def record(
        cls,
        *,
        id: UUID,
        valid: bool,
        license_id: UUID,
        code: ValidationCode,
        machine_id: UUID | None = None,
        fingerprint: str | None = None,
        missing: Sequence[str] = (),
        request_id: str | None = None,
        at: datetime,
    ) -> ValidationRecord:
        data = outcome_data(
            license_id,
            code=code,
            machine_id=machine_id,
            fingerprint=fingerprint,
            missing=missing,
            request_id=request_id,
        )
        return cls._create(
            cls.Success if valid else cls.Failed, id=id, timestamp=require_utc(at), **data
        )


def outcome_event_name(valid: bool) -> str:
    """The stable name `record` stores its event under (`validation.success`)."""
    return f"{ValidationRecord.stream_type}.{'success' if valid else 'failed'}"


def outcome_data(
    license_id: UUID,
    *,
    code: ValidationCode,
    machine_id: UUID | None,
    fingerprint: str | None,
    missing: Sequence[str],
    request_id: str | None,
) -> dict[str, Any]:
    """The event's fields, as `record` gives them: the batcher appends these directly
    (ledger.store.mapper.stored_event) instead of building one aggregate per validation."""
    return {
        "license_id": str(license_id),
        "machine_id": None if machine_id is None else str(machine_id),
        "fingerprint": fingerprint,
        "code": str(code),
        "missing": list(missing),
        "request_id": request_id,
    }
