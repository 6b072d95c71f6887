"""The re-signer's view of the log: which tenants have new events, which of those
events change what an offline file says, and its stored position per tenant."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from typing import Final
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import DictRow

# Events that can change what a license's offline file says (ledger.offline.content):
# the license itself, its bound machine, its policy's rules and entitlements, the key.
LICENSE_TRIGGERS: Final = frozenset(
    {
        "license.renewed",
        "license.suspended",
        "license.reinstated",
        "license.revoked",
        "license.banned",
        "license.expired",
        "license.updated",
        "license.entitlements_attached",
        "license.entitlements_detached",
        "license.machine_deactivated",
        "license.machine_died",
        "license.machine_updated",
    }
)
POLICY_TRIGGERS: Final = frozenset(
    {"policy.updated", "policy.entitlements_attached", "policy.entitlements_detached"}
)
KEY_ROTATED: Final = "environment.signing_key_rotated"
# A checkout signed with a key that is no longer active (it raced a rotation the
# re-signer had already handled) is re-signed too.
CHECKED_OUT: Final = "license.checked_out"


@dataclass(frozen=True)
class Behind:
    tenant_id: UUID
    position: int


@dataclass
class Triggers:
    """What a run of events asks the re-signer to look at, and how far it read."""

    last_position: int
    licenses: set[UUID] = field(default_factory=set)
    policies: set[UUID] = field(default_factory=set)
    key_rotated: bool = False
    # License -> the kids its new checkouts were signed with.
    checkout_kids: dict[UUID, set[str]] = field(default_factory=dict)
    # License -> the last version a checkout brought to a multiple of the snapshot
    # interval: checkouts append without saving an aggregate, so nothing else snapshots it.
    snapshots_due: dict[UUID, int] = field(default_factory=dict)

    @property
    def any(self) -> bool:
        return bool(self.licenses or self.policies or self.key_rotated or self.checkout_kids)

    def signed_with_other_than(self, kid: str | None) -> set[UUID]:
        return {lic for lic, kids in self.checkout_kids.items() if kids - {kid}}


def tenants_behind(curs: Cursor[DictRow], limit: int) -> list[Behind]:
    """Across tenants, through the one SECURITY DEFINER function of migration 0008."""
    rows = curs.execute(
        'SELECT tenant_id, "position" FROM resigner_tenants_behind(%s)', (limit,)
    ).fetchall()
    return [Behind(r["tenant_id"], int(r["position"])) for r in rows]


def read_triggers(
    curs: Cursor[DictRow], *, after: int, limit: int, snapshot_every: int | None = None
) -> Triggers | None:
    """The next `limit` events of the tenant set on `curs`; None when there are none.
    `snapshot_every`: the License snapshot interval, for `Triggers.snapshots_due`."""
    rows = curs.execute(
        "SELECT position, stream_id, event_type, version,"
        " CASE WHEN event_type = %s THEN data->>'kid' END AS kid FROM events"
        " WHERE tenant_id = current_tenant() AND position > %s ORDER BY position LIMIT %s",
        (CHECKED_OUT, after, limit),
        prepare=True,
    ).fetchall()
    if not rows:
        return None
    triggers = Triggers(last_position=int(rows[-1]["position"]))
    for row in rows:
        event_type = row["event_type"]
        if event_type in LICENSE_TRIGGERS:
            triggers.licenses.add(row["stream_id"])
        elif event_type in POLICY_TRIGGERS:
            triggers.policies.add(row["stream_id"])
        elif event_type == KEY_ROTATED:
            triggers.key_rotated = True
        elif event_type == CHECKED_OUT:
            if row["kid"] is not None:
                triggers.checkout_kids.setdefault(row["stream_id"], set()).add(row["kid"])
            if snapshot_every and row["version"] % snapshot_every == 0:
                triggers.snapshots_due[row["stream_id"]] = int(row["version"])
    return triggers


def store_position(curs: Cursor[DictRow], tenant_id: UUID, position: int) -> None:
    # GREATEST: two workers on one tenant never move it back.
    curs.execute(
        "INSERT INTO resigner_positions (tenant_id, position, updated_at)"
        " VALUES (%s, %s, now()) ON CONFLICT (tenant_id) DO UPDATE"
        " SET position = GREATEST(resigner_positions.position, EXCLUDED.position),"
        " updated_at = now()",
        (tenant_id, position),
        prepare=True,
    )
