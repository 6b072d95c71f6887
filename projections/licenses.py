"""Read models of licenses and their machines, and the license-key lookup row.

The license row carries the stored status; `expired` is derived from `expires_at` when
read (`wire_status`), since time passing is not an event until the timer records it.
Machines live in the license stream, so projecting a license projects its machines.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from ledger.domain.codes import HeartbeatStatus
from ledger.domain.codes import LicenseStatus
from ledger.domain.codes import Platform
from ledger.domain.license import License
from ledger.domain.machine import Machine
from projections.timers import project_license_timers
from projections.wire import iso_ms


def license_document(license_: License) -> dict[str, Any]:
    """The license as stored: `status` is the stored one, `entitlements` its own codes.

    `license_view` turns this into the wire document (derived status, effective
    entitlements, policy, machines).
    """
    return {
        "id": str(license_.id),
        "name": license_.name,
        "status": str(license_.stored_status),
        "productId": license_.product_id,
        "policyId": license_.policy_id,
        "userEmail": license_.user_email,
        "userName": license_.user_name,
        "expiresAt": iso_ms(license_.expires_at),
        "maxMachinesOverride": license_.max_machines_override,
        "maxUsesOverride": license_.max_uses_override,
        "usesCount": license_.uses_count,
        "machineCount": license_.machine_count,
        "entitlements": list(license_.entitlements),
        "suspendedAt": iso_ms(license_.suspended_at),
        "revokedAt": iso_ms(license_.revoked_at),
        "bannedAt": iso_ms(license_.banned_at),
        "metadata": license_.metadata,
        "createdAt": iso_ms(license_.created_at),
        "updatedAt": iso_ms(license_.updated_at),
    }


def machine_document(machine: Machine) -> dict[str, Any]:
    return {
        "id": str(machine.id),
        "licenseId": str(machine.license_id),
        "fingerprint": machine.fingerprint,
        "name": machine.name,
        "platform": None if machine.platform is None else str(machine.platform),
        "hostname": machine.hostname,
        "cores": machine.cores,
        "ipAddress": machine.ip_address,
        "heartbeatStatus": str(machine.heartbeat_status),
        "lastHeartbeatAt": iso_ms(machine.last_heartbeat_at),
        "metadata": machine.metadata,
        "createdAt": iso_ms(machine.created_at),
        "updatedAt": iso_ms(machine.updated_at),
    }


def machine_from_document(license_id: UUID, doc: dict[str, Any]) -> Machine:
    """The inverse of `machine_document` for an active machine (its times in the
    document's milliseconds)."""
    return Machine(
        id=UUID(doc["id"]),
        license_id=license_id,
        fingerprint=doc["fingerprint"],
        name=doc["name"],
        platform=None if doc["platform"] is None else Platform(doc["platform"]),
        hostname=doc["hostname"],
        cores=doc["cores"],
        metadata=dict(doc["metadata"]),
        ip_address=doc["ipAddress"],
        heartbeat_status=HeartbeatStatus(doc["heartbeatStatus"]),
        last_heartbeat_at=None
        if doc["lastHeartbeatAt"] is None
        else datetime.fromisoformat(doc["lastHeartbeatAt"]),
        created_at=datetime.fromisoformat(doc["createdAt"]),
        updated_at=datetime.fromisoformat(doc["updatedAt"]),
        deactivated_at=None,
    )


def wire_status(stored: str, expires_at: str | None, now: datetime) -> str:
    """Mirror of `License.status_at` on a stored document (ISO strings compare as UTC)."""
    if stored != LicenseStatus.ACTIVE:
        return stored
    if expires_at is not None and datetime.fromisoformat(expires_at) <= now:
        return str(LicenseStatus.EXPIRED)
    return stored


def license_view(
    doc: dict[str, Any],
    policy: dict[str, Any],
    machines: list[dict[str, Any]],
    now: datetime,
) -> dict[str, Any]:
    """The wire document of API.md §4 Licenses (never the key, never a hash)."""
    view = dict(doc)
    view["status"] = wire_status(doc["status"], doc["expiresAt"], now)
    view["entitlements"] = list(dict.fromkeys([*policy["entitlements"], *doc["entitlements"]]))
    view["policy"] = policy
    view["machines"] = machines
    return view


def project_license(curs: Cursor[DictRow], tenant_id: UUID, license_: License) -> None:
    key_hash = bytes.fromhex(license_.key_hash)
    curs.execute(
        "INSERT INTO licenses (tenant_id, id, key_hash, product_id, policy_id, status,"
        " expires_at, user_email, created_at, deleted, doc, activated_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (tenant_id, id) DO UPDATE SET policy_id = EXCLUDED.policy_id,"
        " status = EXCLUDED.status, expires_at = EXCLUDED.expires_at,"
        " user_email = EXCLUDED.user_email, deleted = EXCLUDED.deleted, doc = EXCLUDED.doc,"
        " activated_at = EXCLUDED.activated_at",
        (
            tenant_id,
            license_.id,
            key_hash,
            UUID(license_.product_id),
            UUID(license_.policy_id),
            str(license_.stored_status),
            license_.expires_at,
            license_.user_email,
            license_.created_at,
            license_.deleted,
            Jsonb(license_document(license_)),
            # Validation reads it to know whether a `valid: true` is the first ever.
            license_.activated_at,
        ),
        prepare=True,
    )
    _project_machines(curs, tenant_id, license_)
    project_license_timers(curs, tenant_id, license_)
    if license_.deleted:
        # A deleted license's key no longer resolves: validation says NOT_FOUND and the
        # `License` credential is refused.
        curs.execute("DELETE FROM credential_lookup WHERE key_hash = %s", (key_hash,))
        return
    curs.execute(
        "INSERT INTO credential_lookup (key_hash, tenant_id, kind, ref_id)"
        " VALUES (%s, %s, 'license', %s) ON CONFLICT DO NOTHING",
        (key_hash, tenant_id, license_.id),
        prepare=True,
    )


def _project_machines(curs: Cursor[DictRow], tenant_id: UUID, license_: License) -> None:
    rows = [
        (
            tenant_id,
            machine.id,
            license_.id,
            machine.fingerprint,
            machine.active and not license_.deleted,
            machine.created_at,
            Jsonb(machine_document(machine)),
            machine.fingerprint_scope,
        )
        for machine in license_.machines
    ]
    if not rows:
        return
    # `fingerprint_scope` is fixed at activation (migration 0007's unique index).
    curs.executemany(
        "INSERT INTO machines (tenant_id, id, license_id, fingerprint, active, created_at, doc,"
        " fingerprint_scope) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (tenant_id, id) DO UPDATE SET active = EXCLUDED.active, doc = EXCLUDED.doc"
        " WHERE machines.active IS DISTINCT FROM EXCLUDED.active"
        " OR machines.doc IS DISTINCT FROM EXCLUDED.doc",
        rows,
    )
