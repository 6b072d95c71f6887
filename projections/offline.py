"""Offline read models: checkouts with their current file, and the signing keys.

Written inline (same transaction as the events). A checkout row exists while its
checkout is unexpired as of the license's last event, and holds the file that checkout
currently publishes; the list also filters on the reader's clock. Licenses that never
went offline cost nothing here; others cost one indexed read of their rows' digests,
plus a write of the rows whose file changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from ledger.domain.environment import Environment
from ledger.domain.environment import SigningKey
from ledger.domain.license import License
from ledger.domain.license_checkouts import Checkout
from ledger.offline.rules import OfflinePolicy
from projections.licenses import license_document
from projections.licenses import license_view
from projections.licenses import machine_document
from projections.queries import Page
from projections.queries import UnknownCursorError
from projections.wire import iso_ms


def checkout_document(license_id: UUID, checkout: Checkout) -> dict[str, Any]:
    """A checkout and the file it publishes now (`certificate`, `file*` fields)."""
    file = checkout.file
    return {
        "id": str(checkout.id),
        "licenseId": str(license_id),
        "fingerprint": checkout.fingerprint,
        "machineId": None if checkout.machine_id is None else str(checkout.machine_id),
        "ttl": checkout.ttl,
        "encrypted": checkout.encrypted,
        "issuedAt": iso_ms(checkout.issued_at),
        "expiresAt": iso_ms(checkout.expires_at),
        "kid": checkout.kid,
        "certificate": None if file is None else file.certificate,
        "fileIssuedAt": None if file is None else iso_ms(file.issued_at),
        "fileExpiresAt": None if file is None else iso_ms(file.expires_at),
    }


def checkout_row(license_id: UUID, checkout: Checkout) -> tuple[str, dict[str, Any]]:
    """A checkout's row as `project_license_checkouts` writes it: its file's digest and
    its document (for a checkout recorded without the aggregate, `record_checkout`)."""
    assert checkout.file is not None
    return checkout.file.digest, checkout_document(license_id, checkout)


def project_license_checkouts(curs: Cursor[DictRow], tenant_id: UUID, license_: License) -> None:
    if not license_.checkout_count:
        return
    live = {} if license_.deleted else license_.file_digests(license_.modified_on)
    stored = {
        row["id"]: row["file_digest"]
        for row in curs.execute(
            "SELECT id, file_digest FROM offline_checkouts"
            " WHERE tenant_id = %s AND license_id = %s",
            (tenant_id, license_.id),
            prepare=True,
        ).fetchall()
    }
    # A file is never re-issued with the same content (ledger.commands.checkouts), so an
    # unchanged digest is an unchanged row.
    changed = [license_.checkout(i) for i, digest in live.items() if stored.get(i, "") != digest]
    if changed:
        curs.executemany(
            "INSERT INTO offline_checkouts"
            " (tenant_id, id, license_id, issued_at, expires_at, file_digest, doc)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (tenant_id, id) DO UPDATE"
            " SET file_digest = EXCLUDED.file_digest, doc = EXCLUDED.doc",
            [
                (
                    tenant_id,
                    c.id,
                    license_.id,
                    c.issued_at,
                    c.expires_at,
                    live[c.id],
                    Jsonb(checkout_document(license_.id, c)),
                )
                for c in changed
            ],
        )
    gone = set(stored) - set(live)
    if gone:
        curs.execute(
            "DELETE FROM offline_checkouts WHERE tenant_id = %s AND id = ANY(%s)",
            (tenant_id, sorted(gone)),
        )


def project_signing_keys(curs: Cursor[DictRow], tenant_id: UUID, env: Environment) -> None:
    curs.executemany(
        "INSERT INTO signing_keys"
        " (tenant_id, kid, public_key, status, created_at, encrypted_seed)"
        " VALUES (%s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (tenant_id, kid) DO UPDATE SET status = EXCLUDED.status"
        " WHERE signing_keys.status IS DISTINCT FROM EXCLUDED.status",
        [
            (tenant_id, k.kid, k.public_key, k.status, k.created_at, k.encrypted_seed)
            for k in env.signing_keys
        ],
    )


# Reads


def active_signing_key(curs: Cursor[DictRow]) -> SigningKey | None:
    """The key new files are signed with (its seed still sealed), as committed last."""
    row = curs.execute(
        "SELECT kid, public_key, encrypted_seed, status, created_at FROM signing_keys"
        " WHERE status = 'active'",
        prepare=True,
    ).fetchone()
    return None if row is None else SigningKey(**row)


@dataclass(frozen=True)
class CheckoutInputs:
    """What a checkout reads from the read models before it runs (see checkout_license)."""

    signing_key: SigningKey | None
    policy: dict[str, Any] | None  # the license's policy document

    @property
    def rules(self) -> OfflinePolicy | None:
        return None if self.policy is None else OfflinePolicy.from_document(self.policy)


def checkout_inputs(curs: Cursor[DictRow], license_id: UUID) -> CheckoutInputs:
    row = curs.execute(
        "SELECT p.doc FROM licenses l JOIN policies p"
        " ON p.tenant_id = l.tenant_id AND p.id = l.policy_id"
        " WHERE l.id = %s AND NOT l.deleted",
        (license_id,),
        prepare=True,
    ).fetchone()
    return CheckoutInputs(active_signing_key(curs), None if row is None else dict(row["doc"]))


def checked_out_license_view(
    license_: License, policy: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """`GET /licenses/{id}` of a license just saved, from the aggregate in hand and its
    policy's stored document, instead of reading it back."""
    machines = sorted(license_.active_machines, key=lambda m: (m.created_at, str(m.id)))
    return license_view(
        license_document(license_), policy, [machine_document(m) for m in machines], now
    )


def list_signing_keys(curs: Cursor[DictRow]) -> list[dict[str, Any]]:
    """Every key of the tenant, oldest first: active and retired (files keep verifying)."""
    rows = curs.execute(
        "SELECT kid, public_key, status, created_at FROM signing_keys ORDER BY created_at, kid"
    ).fetchall()
    return [
        {
            "kid": r["kid"],
            "publicKey": r["public_key"],
            "status": r["status"],
            "createdAt": iso_ms(r["created_at"]),
        }
        for r in rows
    ]


def list_checkouts(
    curs: Cursor[DictRow], license_id: UUID, *, now: datetime, cursor: UUID | None, limit: int
) -> Page:
    """Unexpired checkouts of a license with their current files, in issue order."""
    params: list[Any] = [license_id, now]
    after = ""
    if cursor is not None:
        row = curs.execute(
            "SELECT issued_at FROM offline_checkouts WHERE license_id = %s AND id = %s",
            (license_id, cursor),
        ).fetchone()
        if row is None:
            raise UnknownCursorError(str(cursor))
        after = " AND (issued_at, id) > (%s, %s)"
        params += [row["issued_at"], cursor]
    rows = curs.execute(
        "SELECT doc FROM offline_checkouts WHERE license_id = %s AND expires_at > %s"  # noqa: S608
        + after
        + " ORDER BY issued_at, id LIMIT %s",
        [*params, limit + 1],
    ).fetchall()
    return Page([dict(r["doc"]) for r in rows[:limit]], has_more=len(rows) > limit)


def licenses_with_unexpired_checkouts(
    curs: Cursor[DictRow],
    *,
    now: datetime,
    license_ids: list[UUID] | None = None,
    policy_ids: list[UUID] | None = None,
) -> list[UUID]:
    """The licenses (among `license_ids`, or on `policy_ids`, or all) whose files the
    re-signer keeps current."""
    query = (
        "SELECT DISTINCT c.license_id FROM offline_checkouts c"
        " JOIN licenses l ON l.tenant_id = c.tenant_id AND l.id = c.license_id"
        " WHERE c.expires_at > %s"
    )
    params: list[Any] = [now]
    if license_ids is not None:
        query += " AND c.license_id = ANY(%s)"
        params.append(license_ids)
    if policy_ids is not None:
        query += " AND l.policy_id = ANY(%s)"
        params.append(policy_ids)
    return [r["license_id"] for r in curs.execute(query, params).fetchall()]
