"""Helpers resources share for reading read models in the caller's tenant."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from typing import TypeVar

import falcon
from psycopg import Cursor
from psycopg.rows import DictRow

from api.auth import principal_of
from api.errors import validation_error
from api.services import Services
from ledger.domain.errors import NotFound
from projections.queries import Page
from projections.queries import UnknownCursorError

T = TypeVar("T")


@contextmanager
def reading(services: Services, req: falcon.Request) -> Iterator[Cursor[DictRow]]:
    """A read transaction under row-level security for the caller's tenant."""
    with services.ledger.reading(principal_of(req).tenant_id) as curs:
        try:
            yield curs
        except UnknownCursorError:
            raise validation_error(
                "cursor does not name an item of this list", ["cursor"]
            ) from None


def found(item: T | None, what: str) -> T:
    """404 NOT_FOUND for absent, deleted and other tenants' items alike."""
    if item is None:
        raise NotFound(f"{what} not found")
    return item


def respond_one(resp: falcon.Response, item: dict[str, Any], status: int = 200) -> None:
    resp.status = status
    resp.media = {"data": item}


def respond_page(resp: falcon.Response, page: Page) -> None:
    resp.media = {"data": page.items, "pagination": page.pagination()}
