"""`licentric audit verify|export|verify-export`: tampering with any event row (as the
owner, the append-only trigger disabled) is reported at that row's position; an export
verifies with the public key alone, and any changed byte makes it fail."""

from __future__ import annotations

import base64
import random
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from click.testing import CliRunner
from click.testing import Result
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from api.cli import cli
from ledger.application import LedgerApplication
from ledger.audit.auditor import auditor_role
from ledger.audit.auditor import list_tenants
from ledger.audit.export import ExportInvalidError
from ledger.audit.export import verify_export
from ledger.audit.verify import verify_tenant
from tests.integration.audit.conftest import MASTER_KEY
from tests.integration.audit.world import ACTIONS
from tests.integration.audit.world import World


def _world(app: LedgerApplication, seed: int, steps: int = 30) -> World:
    rnd = random.Random(seed)
    world = World.open(app)
    picks = [(rnd.choice(ACTIONS), rnd.randrange(1000), rnd.randrange(1000)) for _ in range(steps)]
    world.run([("issue", 0, 1), *picks])
    return world


@pytest.fixture(scope="module")
def world(app: LedgerApplication) -> World:
    return _world(app, 3)


@pytest.fixture(scope="module")
def runner(database: str, tmp_path_factory: pytest.TempPathFactory) -> CliRunner:
    return CliRunner(
        env={
            "DATABASE_URL": database,
            "LICENTRIC_MASTER_KEY": base64.b64encode(MASTER_KEY).decode(),
            "LICENTRIC_DATA_DIR": str(tmp_path_factory.mktemp("data")),
        }
    )


def _log_length(owner: psycopg.Connection[Any], world: World) -> int:
    with auditor_role(owner):
        (head,) = list_tenants(owner, account_id=world.account_id, environment="live")
    return head.position


# Each way of tampering with the row at `position` (the owner disabled the trigger).
# The tenant is named explicitly: the test database's owner is a superuser, whom
# row-level security does not restrict.
_ROW = " WHERE tenant_id = %(t)s AND position = %(p)s"
TAMPERING = {
    "alter data": "UPDATE events SET data = data || '{\"x\": 1}'" + _ROW,
    "alter metadata": "UPDATE events SET metadata = '{}'" + _ROW,
    "alter type": "UPDATE events SET event_type = 'license.banned'" + _ROW,
    "alter time": "UPDATE events SET occurred_at = occurred_at - interval '1 hour'" + _ROW,
    "delete": "DELETE FROM events" + _ROW,
    # Swap the row with its successor (through a free position: the key is per row).
    "reorder": "UPDATE events SET position = -1" + _ROW.replace("%(p)s", "%(p)s + 1") + ";"
    " UPDATE events SET position = %(p)s + 1" + _ROW + ";"
    " UPDATE events SET position = %(p)s" + _ROW.replace("%(p)s", "-1"),
}


def _first_break(owner: psycopg.Connection[Any], world: World) -> int | None:
    with auditor_role(owner):
        (head,) = list_tenants(owner, account_id=world.account_id, environment="live")
        broken = verify_tenant(owner, head, page=7).broken
    return None if broken is None else broken.position


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data(), how=st.sampled_from(sorted(TAMPERING)))
def test_tampering_with_any_row_breaks_the_chain_at_its_position(
    owner: psycopg.Connection[Any], world: World, data: st.DataObject, how: str
) -> None:
    length = _log_length(owner, world)
    last = length - 1 if how == "reorder" else length
    position = data.draw(st.integers(1, last), label="position")
    with owner.transaction(force_rollback=True), owner.cursor() as curs:
        curs.execute("SELECT set_config('app.tenant', %s, true)", (str(world.tenant_id),))
        curs.execute("SET LOCAL session_replication_role = replica")  # no triggers
        for statement in TAMPERING[how].split(";"):
            curs.execute(statement, {"p": position, "t": world.tenant_id})
        assert _first_break(owner, world) == position
    assert _first_break(owner, world) is None


def _verify(runner: CliRunner, *args: str) -> Result:
    return runner.invoke(cli, ["audit", "verify", *args], catch_exceptions=False)


def test_cli_verify_reports_the_broken_environment_only(
    app: LedgerApplication, owner: psycopg.Connection[Any], runner: CliRunner
) -> None:
    intact, tampered = _world(app, 5, 10), _world(app, 6, 10)
    with owner.transaction(), owner.cursor() as curs:
        curs.execute("SELECT set_config('app.tenant', %s, true)", (str(tampered.tenant_id),))
        curs.execute("ALTER TABLE events DISABLE TRIGGER events_append_only")
        curs.execute(
            "UPDATE events SET data = data || '{\"x\": 1}' WHERE tenant_id = %s AND position = 4",
            (tampered.tenant_id,),
        )
        curs.execute("ALTER TABLE events ENABLE TRIGGER events_append_only")

    ok = _verify(runner, "--account", str(intact.account_id))
    assert ok.exit_code == 0, ok.output
    assert "OK" in ok.output
    assert "BROKEN" not in ok.output

    broken = _verify(runner, "--account", str(tampered.account_id), "--json")
    assert broken.exit_code == 1, broken.output
    lines = [orjson.loads(line) for line in broken.output.splitlines() if line.startswith("{")]
    by_env = {line["environment"]: line for line in lines}
    assert by_env["live"]["ok"] is False
    assert by_env["live"]["brokenAt"] == 4
    assert by_env["test"]["ok"] is True

    everyone = _verify(runner)
    assert everyone.exit_code == 1
    assert f"{tampered.tenant_id}" in everyone.output


def test_deleting_the_newest_row_is_caught_by_the_log_head(
    app: LedgerApplication, owner: psycopg.Connection[Any], runner: CliRunner
) -> None:
    world = _world(app, 8, 5)
    last = _log_length(owner, world)
    with owner.transaction(), owner.cursor() as curs:
        curs.execute("SELECT set_config('app.tenant', %s, true)", (str(world.tenant_id),))
        curs.execute("SET LOCAL session_replication_role = replica")
        curs.execute(
            "DELETE FROM events WHERE tenant_id = %s AND position = %s", (world.tenant_id, last)
        )
    result = _verify(runner, "--account", str(world.account_id), "--env", "live", "--json")
    assert result.exit_code == 1
    assert orjson.loads(result.output.splitlines()[-1])["brokenAt"] == last


@pytest.fixture(scope="module")
def export(runner: CliRunner, world: World, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("export") / "ledger.jsonl"
    args = ["audit", "export", "--account", str(world.account_id), "--env", "live", "-o", str(path)]
    result = runner.invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return path


def test_an_export_verifies_with_the_public_key_alone(
    runner: CliRunner, world: World, export: Path, owner: psycopg.Connection[Any]
) -> None:
    result = runner.invoke(
        cli,
        ["audit", "verify-export", str(export), "--public-key", world.public_key],
        # No database: whatever DATABASE_URL says is never used.
        env={"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"},
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    length = _log_length(owner, world)
    assert f"OK: {length} events" in result.output
    lines = export.read_bytes().splitlines()
    assert len(lines) == length + 1
    assert orjson.loads(lines[-1])["head"]["position"] == length


def test_an_export_does_not_verify_with_another_key(
    runner: CliRunner, app: LedgerApplication, export: Path
) -> None:
    other = World.open(app)
    result = runner.invoke(
        cli, ["audit", "verify-export", str(export), "--public-key", other.public_key]
    )
    assert result.exit_code == 1
    assert "INVALID" in result.output


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(where=st.floats(0, 1, exclude_max=True), byte=st.integers(0, 255))
def test_any_changed_byte_fails_verification(
    export: Path, world: World, where: float, byte: int
) -> None:
    original = export.read_bytes()
    index = int(where * len(original))
    if original[index] == byte:
        byte = (byte + 1) % 256
    changed = original[:index] + bytes([byte]) + original[index + 1 :]
    with pytest.raises(ExportInvalidError):
        verify_export(changed.splitlines(keepends=True), world.public_key)
