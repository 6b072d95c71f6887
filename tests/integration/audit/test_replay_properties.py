"""For random command sequences: every read model equals its rebuild from the events
(`projections rebuild --verify` finds no difference), and a license `asOf` each step's
time equals the live document captured at that step."""

from __future__ import annotations

from typing import Any

import psycopg
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from ledger.application import LedgerApplication
from ledger.audit.auditor import auditor_role
from ledger.audit.auditor import list_tenants
from projections.as_of import license_as_of
from projections.read_models import select
from projections.rebuild import rebuild
from tests.integration.audit.world import ACTIONS
from tests.integration.audit.world import World

STEPS = st.lists(
    st.tuples(st.sampled_from(ACTIONS), st.integers(0, 1000), st.integers(0, 1000)),
    min_size=1,
    max_size=24,
)


def _issue_first(steps: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    # Most actions need a license: start with one so sequences are rarely all refusals.
    return [("issue", 0, 1), *steps]


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=STEPS.map(_issue_first))
def test_read_models_equal_their_rebuild_and_as_of_equals_live(
    app: LedgerApplication, owner: psycopg.Connection[Any], steps: list[tuple[str, int, int]]
) -> None:
    world = World.open(app)
    world.run(steps)

    for at, license_id, live in world.captured:
        assert license_as_of(app, world.tenant_id, license_id, at) == live, (at, steps)

    with auditor_role(owner):
        tenants = list_tenants(owner, account_id=world.account_id)
    assert len(tenants) == 2  # live and test
    report = rebuild(owner, select(), verify=True, tenants=tenants)
    assert report.differences == []
    assert report.tenants == 2
