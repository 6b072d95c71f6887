"""A database of its own per module (tampering tests act as the owner), the ledger with
its inline read models, and an owner connection for the auditor's tools."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from ledger.application import LedgerApplication
from projections.inline import InlineProjections

MASTER_KEY = bytes(range(32))
PEPPER = bytes(range(32, 64))


@pytest.fixture(scope="module")
def database(fresh_database: Callable[[], str]) -> str:
    return fresh_database()


@pytest.fixture(scope="module")
def app(database: str) -> Iterator[LedgerApplication]:
    app = LedgerApplication(database, pool_size=4, projector=InlineProjections())
    yield app
    app.close()


@pytest.fixture(scope="module")
def owner(database: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database, autocommit=True) as conn:
        yield conn
