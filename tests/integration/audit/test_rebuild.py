"""`projections rebuild`: a verification finds every read-model row the events do not
justify, a rebuild puts them right, and neither is fooled by appends running meanwhile."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import psycopg
import pytest
from click.testing import CliRunner

from api.cli import cli
from ledger.application import LedgerApplication
from ledger.audit.auditor import TenantHead
from ledger.audit.auditor import auditor_role
from ledger.audit.auditor import list_tenants
from projections.queries import get_license
from projections.read_models import select
from projections.rebuild import rebuild
from projections.shadows import Difference
from tests.integration.audit.world import ACTIONS
from tests.integration.audit.world import World


def _steps(seed: int, count: int) -> list[tuple[str, int, int]]:
    rnd = random.Random(seed)
    picks = [(rnd.choice(ACTIONS), rnd.randrange(1000), rnd.randrange(1000)) for _ in range(count)]
    return [("issue", 0, 1), ("issue", 1, 2), *picks]


@pytest.fixture(scope="module")
def world(app: LedgerApplication) -> World:
    world = World.open(app)
    world.run(_steps(7, 40))
    return world


def _tenants(owner: psycopg.Connection[Any], world: World) -> list[TenantHead]:
    with auditor_role(owner):
        return list_tenants(owner, account_id=world.account_id)


# The tests' owner is a superuser, whom row-level security does not restrict: every
# tampering statement names its tenant.
@contextmanager
def _as_owner_in(owner: psycopg.Connection[Any], tenant: UUID) -> Iterator[psycopg.Cursor[Any]]:
    with owner.transaction(), owner.cursor() as curs:
        curs.execute("SELECT set_config('app.tenant', %s, true)", (str(tenant),))
        yield curs


def test_verification_reports_each_tampered_row_and_a_rebuild_repairs_them(
    app: LedgerApplication, owner: psycopg.Connection[Any], world: World
) -> None:
    tenant = world.tenant_id
    license_id = world.licenses[0]
    with app.reading(tenant) as curs:
        before = get_license(curs, license_id, world.captured[-1][0])
    with _as_owner_in(owner, tenant) as curs:
        curs.execute(
            'UPDATE licenses SET doc = doc || \'{"name": "forged"}\' WHERE id = %s',
            (license_id,),
        )
        curs.execute("DELETE FROM entitlements WHERE id = %s", (world.entitlement_ids[0],))
        curs.execute(
            "INSERT INTO products (tenant_id, id, code, created_at, deleted, doc)"
            " SELECT tenant_id, gen_random_uuid(), 'forged', created_at, false, doc"
            " FROM products WHERE id = %s RETURNING id",
            (world.product_id,),
        )
        forged_product = curs.fetchone()[0]
    tenants = _tenants(owner, world)

    report = rebuild(owner, select(), verify=True, tenants=tenants)
    assert sorted(report.differences, key=lambda d: d.table) == [
        Difference(tenant, "entitlements", (tenant, world.entitlement_ids[0]), "missing"),
        Difference(tenant, "licenses", (tenant, license_id), "different"),
        Difference(tenant, "products", (tenant, forged_product), "unexpected"),
    ]

    repaired = rebuild(owner, select(), verify=False, tenants=tenants)
    assert repaired.rows_replaced == 4  # a changed row is one delete and one insert
    assert rebuild(owner, select(), verify=True, tenants=tenants).differences == []
    with app.reading(tenant) as curs:
        assert get_license(curs, license_id, world.captured[-1][0]) == before


def test_a_named_rebuild_compares_only_its_own_rows(
    owner: psycopg.Connection[Any], world: World
) -> None:
    with _as_owner_in(owner, world.tenant_id) as curs:
        curs.execute(
            'UPDATE products SET doc = doc || \'{"name": "x"}\' WHERE tenant_id = %s',
            (world.tenant_id,),
        )
    try:
        tenants = _tenants(owner, world)
        machines = rebuild(owner, select(["machines"]), verify=True, tenants=tenants)
        assert machines.differences == []
        products = rebuild(owner, select(["products"]), verify=True, tenants=tenants)
        assert [d.table for d in products.differences] == ["products"]
    finally:
        rebuild(owner, select(["products"]), verify=False, tenants=_tenants(owner, world))
    assert rebuild(owner, select(), verify=True, tenants=_tenants(owner, world)).differences == []


def test_unknown_read_model_names_are_refused() -> None:
    with pytest.raises(LookupError, match="nope"):
        select(["licenses", "nope"])


def test_verification_while_commands_append_finds_no_difference(
    app: LedgerApplication, owner: psycopg.Connection[Any], world: World
) -> None:
    # The verification reads the head first; events appended after it are replayed
    # under the tenant's head lock before comparing.
    busy = World.open(app)
    busy.run(_steps(11, 5))
    stop = threading.Event()

    def write() -> None:
        seed = 0
        while not stop.is_set():
            seed += 1
            busy.run(_steps(seed, 3)[2:])

    writer = threading.Thread(target=write)
    writer.start()
    try:
        for _ in range(3):
            report = rebuild(owner, select(), verify=True, tenants=_tenants(owner, busy))
            assert report.differences == []
    finally:
        stop.set()
        writer.join()


def test_the_cli_verifies_and_repairs(
    database: str, owner: psycopg.Connection[Any], world: World, tmp_path: Any
) -> None:
    runner = CliRunner(env={"DATABASE_URL": database, "LICENTRIC_DATA_DIR": str(tmp_path)})
    account = ["--account", str(world.account_id)]
    clean = runner.invoke(cli, ["projections", "rebuild", "--verify", *account])
    assert clean.exit_code == 0, clean.output
    assert "0 difference(s)" in clean.output

    with _as_owner_in(owner, world.tenant_id) as curs:
        curs.execute(
            "UPDATE policies SET doc = doc || '{\"maxMachines\": 99}' WHERE tenant_id = %s",
            (world.tenant_id,),
        )
    dirty = runner.invoke(
        cli, ["projections", "rebuild", "--verify", "--name", "policies", *account]
    )
    assert dirty.exit_code == 1
    assert "different" in dirty.output
    assert "policies" in dirty.output

    in_parallel = ["projections", "rebuild", "--verify", "--jobs", "2"]
    found = runner.invoke(cli, in_parallel)
    assert found.exit_code == 1
    assert "2 difference(s)" in found.output  # both policies of the world

    repaired = runner.invoke(cli, ["projections", "rebuild", "--name", "policies", *account])
    assert repaired.exit_code == 0, repaired.output
    again = runner.invoke(cli, in_parallel)
    assert again.exit_code == 0, again.output
    assert "0 difference(s)" in again.output

    unknown = runner.invoke(cli, ["projections", "rebuild", "--name", "nope"])
    assert unknown.exit_code == 2
    assert "unknown read model" in unknown.output
