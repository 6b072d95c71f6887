"""`check_out` (ledger/commands/checkouts.py): an offline checkout decided from the read
models and recorded in one statement is the checkout the License aggregate would have
recorded — same event, same file, every read model equal to its rebuild — and it is
exact under concurrency like any command."""

from __future__ import annotations

import dataclasses
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any
from uuid import UUID
from uuid import uuid4

import psycopg
import pytest

from ledger.accounts import open_account
from ledger.application import LedgerApplication
from ledger.audit.auditor import auditor_role
from ledger.audit.auditor import list_tenants
from ledger.audit.verify import verify_tenant
from ledger.commands import licenses
from ledger.commands.base import change
from ledger.commands.base import load
from ledger.commands.checkouts import IssuedCheckout
from ledger.commands.checkouts import check_out
from ledger.domain.codes import EnvironmentName
from ledger.domain.errors import LicenseStateError
from ledger.domain.license import License
from ledger.offline.content import render_file
from ledger.store.tenancy import tenant_scope
from projections.checkout_facts import CheckoutFacts
from projections.checkout_facts import read_checkout_facts
from projections.offline import checkout_row
from projections.read_models import select
from projections.rebuild import rebuild
from tests.integration.audit.conftest import MASTER_KEY
from tests.integration.audit.conftest import PEPPER
from tests.support.licensing import context
from tests.support.licensing import issue
from tests.support.offline import OfflineLicense
from tests.support.offline import offline_license
from workers.resigner import Resigner


@pytest.fixture(scope="module")
def tenant(app: LedgerApplication) -> UUID:
    opened = open_account(
        app, name="checkout-facts", master_key=MASTER_KEY, pepper=PEPPER, at=datetime.now(UTC)
    )
    return opened.environments[EnvironmentName.LIVE].tenant_id


def checked_out(
    app: LedgerApplication,
    tenant: UUID,
    lic: OfflineLicense,
    *,
    ttl: int | None = None,
    at: datetime | None = None,
) -> IssuedCheckout[CheckoutFacts]:
    def read() -> CheckoutFacts | None:
        with app.autocommit() as curs:
            return read_checkout_facts(curs, tenant, lic.license_id)

    return check_out(
        app,
        context(tenant, at),
        lic.license_id,
        read,
        checkout_id=uuid4(),
        fingerprint=lic.fingerprint,
        ttl=ttl,
        master_key=MASTER_KEY,
        row=lambda checkout: checkout_row(lic.license_id, checkout),
    )


def stream_types(app: LedgerApplication, tenant: UUID, license_id: UUID) -> list[str]:
    with app.reading(tenant) as curs:
        rows = curs.execute(
            "SELECT event_type FROM events WHERE stream_id = %s ORDER BY version", (license_id,)
        ).fetchall()
    return [row["event_type"] for row in rows]


def test_it_records_what_the_aggregate_would_and_the_read_models_equal_their_rebuild(
    app: LedgerApplication, owner: psycopg.Connection[Any], tenant: UUID
) -> None:
    lic = offline_license(app, tenant, pepper=PEPPER, master_key=MASTER_KEY)
    before = load_license(app, tenant, lic.license_id)
    now = datetime.now(UTC)
    issued = [checked_out(app, tenant, lic, ttl=3600, at=now)]
    issued.append(checked_out(app, tenant, lic, at=now + timedelta(minutes=5)))
    # Two hours on, the first has expired: its row goes, as the projection drops it.
    issued.append(checked_out(app, tenant, lic, ttl=86400, at=now + timedelta(hours=2)))

    after = load_license(app, tenant, lic.license_id)
    expired = dataclasses.replace(issued[0].checkout, file=None)  # state keeps no file
    assert after.checkout(issued[0].checkout.id) == expired
    for one in issued:
        if one is not issued[0]:
            assert after.checkout(one.checkout.id) == one.checkout  # replays to the same
        # The file is what the aggregate renders for that checkout.
        from_aggregate = render_file(
            after, one.facts.rules, one.checkout, kid=one.checkout.kid, at=one.checkout.issued_at
        )
        assert from_aggregate.digest == one.checkout.file.digest  # type: ignore[union-attr]
        assert from_aggregate.expires_at == one.expires_at
    # Offline events leave the license itself as it was.
    assert after.updated_at == before.updated_at
    assert stream_types(app, tenant, lic.license_id)[-3:] == ["license.checked_out"] * 3

    with app.reading(tenant) as curs:
        rows = curs.execute(
            "SELECT id FROM offline_checkouts WHERE license_id = %s", (lic.license_id,)
        ).fetchall()
    assert {row["id"] for row in rows} == {issued[1].checkout.id, issued[2].checkout.id}

    licenses.suspend_license(app, context(tenant), lic.license_id)
    with pytest.raises(LicenseStateError):
        checked_out(app, tenant, lic)
    with auditor_role(owner):
        heads = list_tenants(owner, tenant_id=tenant)
        assert all(verify_tenant(owner, head).ok for head in heads)
    assert rebuild(owner, select(), verify=True, tenants=heads).differences == []


def load_license(app: LedgerApplication, tenant: UUID, license_id: UUID) -> License:
    with tenant_scope(tenant):
        return load(app, License, license_id)


def test_concurrent_checkouts_of_one_license_all_land_in_order(
    app: LedgerApplication, tenant: UUID
) -> None:
    lic = offline_license(app, tenant, pepper=PEPPER, master_key=MASTER_KEY)
    with ThreadPoolExecutor(8) as pool:
        issued = list(pool.map(lambda _: checked_out(app, tenant, lic), range(40)))
    types = stream_types(app, tenant, lic.license_id)
    assert types.count("license.checked_out") == 40
    ids = {one.checkout.id for one in issued}
    assert ids == {c.id for c in load_license(app, tenant, lic.license_id).checkouts()}


def test_a_checkout_racing_a_suspension_is_never_recorded_after_it(
    app: LedgerApplication, tenant: UUID
) -> None:
    lic = offline_license(app, tenant, pepper=PEPPER, master_key=MASTER_KEY)
    refused: list[bool] = []

    stop = threading.Event()

    def check_out_flat_out() -> None:
        # As fast as four threads can: the suspension still lands, because after a few
        # lost races it takes the license's lock, which checkouts wait for.
        while not stop.is_set():
            try:
                checked_out(app, tenant, lic)
            except LicenseStateError:
                refused.append(True)
                return

    with ThreadPoolExecutor(4) as pool:
        workers = [pool.submit(check_out_flat_out) for _ in range(4)]
        time.sleep(0.02)
        try:
            licenses.suspend_license(app, context(tenant), lic.license_id)
        except BaseException:
            stop.set()  # do not wait for workers that would never be refused
            raise
        for worker in workers:
            worker.result(timeout=60)
    types = stream_types(app, tenant, lic.license_id)
    assert "license.checked_out" in types
    assert "license.checked_out" not in types[types.index("license.suspended") :]
    assert len(refused) == 4


def test_read_model_rows_render_the_file_the_aggregate_renders(
    app: LedgerApplication, tenant: UUID
) -> None:
    """Every field a file states, set: the rows and the aggregate say the same."""
    issued = issue(
        app,
        PEPPER,
        tenant,
        policy={"max_machines": 4, "offline_max_days": 30, "require_heartbeat": True},
        policy_entitlements=["pro", "export"],
        entitlements=["beta", "pro"],
        name="Seat 7",
        max_machines_override=3,
        max_uses_override=99,
        metadata={"crm": {"id": 42}, "tier": "gold"},
        expires_at=datetime.now(UTC) + timedelta(days=10, microseconds=123),
    )
    change(
        app, context(tenant), License, issued.license_id,
        lambda lic: lic.activate_machine(
            machine_id=uuid4(), fingerprint="fp-rich-machine-01", name="Build box",
            platform="linux", hostname="ci-7", cores=16, metadata={"rack": 3},
            max_machines=None, at=datetime.now(UTC),
        ),
    )  # fmt: skip
    with app.autocommit() as curs:
        facts = read_checkout_facts(curs, tenant, issued.license_id)
    assert facts is not None
    aggregate = load_license(app, tenant, issued.license_id)
    for at in (datetime.now(UTC), aggregate.expires_at + timedelta(minutes=1)):  # type: ignore[operator]
        plan = aggregate.plan_checkout(
            checkout_id=uuid4(), fingerprint="fp-rich-machine-01", ttl=86400, kid="k1",
            offline_allowed=True, offline_max_days=30, require_fingerprint=True,
            expired_blocks=False, at=at,
        )  # fmt: skip
        ours = render_file(facts.license, facts.rules, plan, kid="k1", at=at)
        theirs = render_file(aggregate, facts.rules, plan, kid="k1", at=at)
        assert (ours.header, ours.payload, ours.expires_at) == (
            theirs.header,
            theirs.payload,
            theirs.expires_at,
        )


def snapshot_versions(app: LedgerApplication, tenant: UUID, license_id: UUID) -> list[int]:
    with tenant_scope(tenant):
        return [s.originator_version for s in app.snapshots.get(license_id)]  # type: ignore[union-attr]


def checkouts_until(
    app: LedgerApplication, tenant: UUID, lic: OfflineLicense, version: int
) -> None:
    while load_version(app, tenant, lic.license_id) < version:
        checked_out(app, tenant, lic)


def load_version(app: LedgerApplication, tenant: UUID, license_id: UUID) -> int:
    with app.reading(tenant) as curs:
        row = curs.execute(
            "SELECT max(version) AS v FROM events WHERE stream_id = %s", (license_id,)
        ).fetchone()
    assert row is not None
    return int(row["v"])


def test_checkouts_are_snapshotted_by_the_resigner_or_the_next_long_load_not_the_request(
    app: LedgerApplication, tenant: UUID
) -> None:
    lic = offline_license(app, tenant, pepper=PEPPER, master_key=MASTER_KEY)
    checkouts_until(app, tenant, lic, 205)
    assert snapshot_versions(app, tenant, lic.license_id) == []  # none on the request path

    # The re-signer reads the tenant's log: the last multiple of 100 a checkout reached.
    resigner = Resigner(app, master_key=MASTER_KEY, clock=lambda: datetime.now(UTC))
    resigner.catch_up(tenant, after=0)
    assert snapshot_versions(app, tenant, lic.license_id) == [200]
    resigner.catch_up(tenant, after=0)  # a replayed batch stores nothing new
    assert snapshot_versions(app, tenant, lic.license_id) == [200]

    # No worker ran since: a load that replays a whole interval snapshots what it built.
    checkouts_until(app, tenant, lic, 301)
    assert load_license(app, tenant, lic.license_id).version == 301  # 101 events replayed
    assert snapshot_versions(app, tenant, lic.license_id) == [200, 301]
    loaded = load_license(app, tenant, lic.license_id)
    replayed: Any = None
    with tenant_scope(tenant):
        for event in app.events.get(lic.license_id):
            replayed = event.mutate(replayed)
    assert vars(loaded) == vars(replayed)


def test_a_checkout_is_stored_in_its_rows_not_moved_to_toast(
    app: LedgerApplication, owner: psycopg.Connection[Any], tenant: UUID
) -> None:
    """Migration 0019: the event and the checkouts row carry the file (past the default
    2 KB TOAST threshold) and stay in their heap pages."""
    lic = offline_license(app, tenant, pepper=PEPPER, master_key=MASTER_KEY)
    checked_out(app, tenant, lic)
    row = owner.execute(
        "SELECT tableoid::regclass::text FROM events WHERE tenant_id = %s LIMIT 1", (tenant,)
    ).fetchone()
    assert row is not None
    toast_tables = [
        owner.execute(
            "SELECT reltoastrelid::regclass::text FROM pg_class WHERE oid = %s::regclass", (table,)
        ).fetchone()[0]  # type: ignore[index]
        for table in (row[0], "offline_checkouts")
    ]

    def toasted() -> list[int]:
        return [owner.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in toast_tables]  # type: ignore[index]

    before = toasted()
    issued = checked_out(app, tenant, lic)
    assert toasted() == before
    sizes = owner.execute(
        "SELECT (SELECT pg_column_size(e.*) FROM events e WHERE e.tenant_id = %s"
        "  AND e.stream_id = %s ORDER BY e.version DESC LIMIT 1),"
        " (SELECT pg_column_size(o.*) FROM offline_checkouts o WHERE o.id = %s)",
        (tenant, lic.license_id, issued.checkout.id),
    ).fetchone()
    assert sizes is not None
    assert min(sizes) > 2032  # each past the default threshold (TOAST_TUPLE_THRESHOLD)
