"""The offline read models (checkouts with their current files, signing keys) equal a
rebuild from the events alone, after checkouts, regenerations, a rotation and a
suspension; a tampered file is reported and put right."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from typing import Any
from uuid import UUID
from uuid import uuid4

import psycopg

from ledger.accounts import open_account
from ledger.application import LedgerApplication
from ledger.audit.auditor import auditor_role
from ledger.audit.auditor import list_tenants
from ledger.commands import licenses
from ledger.commands.checkouts import checkout_license
from ledger.commands.checkouts import regenerate_files
from ledger.commands.signing_keys import rotate_signing_key
from ledger.domain.codes import EnvironmentName
from projections.read_models import select
from projections.rebuild import Difference
from projections.rebuild import rebuild
from tests.integration.audit.conftest import MASTER_KEY
from tests.integration.audit.conftest import PEPPER
from tests.support.offline import context
from tests.support.offline import offline_license

MODELS = ["offline_checkouts", "signing_keys"]


def test_offline_read_models_equal_their_rebuild(
    app: LedgerApplication, owner: psycopg.Connection[Any]
) -> None:
    opened = open_account(
        app, name="offline-rebuild", master_key=MASTER_KEY, pepper=PEPPER, at=datetime.now(UTC)
    )
    tenant = opened.environments[EnvironmentName.LIVE].tenant_id
    made = [offline_license(app, tenant, pepper=PEPPER, master_key=MASTER_KEY) for _ in range(3)]
    for index, lic in enumerate(made):
        for ttl in (3600, 86400):
            checkout_license(
                app, context(tenant), lic.license_id, checkout_id=uuid4(),
                fingerprint=lic.fingerprint, ttl=ttl, encrypt=index == 0,
                master_key=MASTER_KEY, pepper=PEPPER,
            )  # fmt: skip
    licenses.suspend_license(app, context(tenant), made[1].license_id)
    rotate_signing_key(app, context(tenant), master_key=MASTER_KEY)
    for lic in made:
        assert regenerate_files(app, context(tenant), lic.license_id, master_key=MASTER_KEY) == 2
    with auditor_role(owner):
        heads = list_tenants(owner, tenant_id=tenant)

    report = rebuild(owner, select(MODELS), verify=True, tenants=heads)
    assert report.differences == []

    with owner.transaction(), owner.cursor() as curs:
        curs.execute("SELECT set_config('app.tenant', %s, true)", (str(tenant),))
        forged = curs.execute(
            'UPDATE offline_checkouts SET doc = doc || \'{"certificate": "forged"}\''
            " WHERE license_id = %s RETURNING id",
            (made[2].license_id,),
        ).fetchall()
    assert len(forged) == 2
    report = rebuild(owner, select(MODELS), verify=True, tenants=heads)
    assert sorted(report.differences, key=lambda d: str(d.key)) == sorted(
        (Difference(tenant, "offline_checkouts", (tenant, UUID(str(row[0]))), "different")
         for row in forged),
        key=lambda d: str(d.key),
    )  # fmt: skip
    rebuild(owner, select(MODELS), verify=False, tenants=heads)
    assert rebuild(owner, select(MODELS), verify=True, tenants=heads).differences == []
