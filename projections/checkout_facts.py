"""What an offline checkout reads, in one statement (`checkout_facts`, migration 0016).

A checkout decides and renders its file from the read models instead of the License
aggregate: the license row and its active machines hold everything the file says
(`StoredLicense` is a `ledger.offline.content.LicenseContent` and a
`ledger.domain.license_checkouts.CheckoutSubject`), and the stream's version read with
them lets the append be exact (ledger.commands.checkouts). A test renders the same file
from these rows as from the aggregate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import DictRow

from ledger.domain.checks import unique_codes
from ledger.domain.codes import LicenseStatus
from ledger.domain.environment import SigningKey
from ledger.domain.license import status_at
from ledger.domain.machine import Machine
from ledger.offline.rules import OfflinePolicy
from projections.licenses import license_view
from projections.licenses import machine_from_document


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


@dataclass(frozen=True)
class StoredLicense:
    """A license as its read-model rows hold it. Times the file states come from the
    document (milliseconds, as the file states them); the expiry, which decisions compare
    with the clock, from the row's own column (full precision, as the aggregate's)."""

    doc: dict[str, Any]
    stored_status: LicenseStatus
    expires_at: datetime | None
    machine_docs: Sequence[dict[str, Any]]  # its active machines

    @property
    def id(self) -> UUID:
        return UUID(self.doc["id"])

    @property
    def name(self) -> str | None:
        name: str | None = self.doc["name"]
        return name

    @property
    def product_id(self) -> str:
        return str(self.doc["productId"])

    @property
    def policy_id(self) -> str:
        return str(self.doc["policyId"])

    @property
    def max_machines_override(self) -> int | None:
        value: int | None = self.doc["maxMachinesOverride"]
        return value

    @property
    def max_uses_override(self) -> int | None:
        value: int | None = self.doc["maxUsesOverride"]
        return value

    @property
    def suspended_at(self) -> datetime | None:
        return _time(self.doc["suspendedAt"])

    @property
    def revoked_at(self) -> datetime | None:
        return _time(self.doc["revokedAt"])

    @property
    def banned_at(self) -> datetime | None:
        return _time(self.doc["bannedAt"])

    @property
    def metadata(self) -> dict[str, Any]:
        metadata: dict[str, Any] = self.doc["metadata"]
        return metadata

    @property
    def created_at(self) -> datetime:
        return datetime.fromisoformat(self.doc["createdAt"])

    def status_at(self, now: datetime) -> LicenseStatus:
        return status_at(self.stored_status, self.expires_at, now)

    def effective_entitlements(self, policy_codes: Sequence[str]) -> list[str]:
        return unique_codes([*policy_codes, *self.doc["entitlements"]])

    def machine_by_fingerprint(self, fingerprint: str) -> Machine | None:
        doc = next((m for m in self.machine_docs if m["fingerprint"] == fingerprint), None)
        return None if doc is None else machine_from_document(self.id, doc)


@dataclass(frozen=True)
class CheckoutFacts:
    license: StoredLicense
    policy_doc: dict[str, Any]
    signing_key: SigningKey | None  # the environment's active key (seed still sealed)
    version: int  # of the license's stream, as of these facts

    @cached_property
    def rules(self) -> OfflinePolicy:
        return OfflinePolicy.from_document(self.policy_doc)

    def license_view(self, now: datetime) -> dict[str, Any]:
        """`GET /licenses/{id}` as of these facts (a checkout changes none of it)."""
        return license_view(self.license.doc, self.policy_doc, list(self.license.machine_docs), now)


def read_checkout_facts(
    curs: Cursor[DictRow], tenant_id: UUID, license_id: UUID
) -> CheckoutFacts | None:
    """None: no live license of that id in the tenant. One autocommit statement."""
    row = curs.execute(
        "SELECT * FROM checkout_facts(%s, %s)", (tenant_id, license_id), prepare=True
    ).fetchone()
    if row is None:
        return None
    key = None
    if row["kid"] is not None:
        key = SigningKey(
            kid=row["kid"],
            public_key=row["public_key"],
            encrypted_seed=row["encrypted_seed"],
            status="active",
            created_at=row["key_created_at"],
        )
    return CheckoutFacts(
        license=StoredLicense(
            doc=row["license_doc"],
            stored_status=LicenseStatus(row["status"]),
            expires_at=row["expires_at"],
            machine_docs=row["machines"],
        ),
        policy_doc=row["policy_doc"],
        signing_key=key,
        version=int(row["version"]),
    )
