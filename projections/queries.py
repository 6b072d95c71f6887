"""Reads of the read models: one document, or a page in (createdAt, id) order.

Queries run in a transaction that set the tenant (row-level security adds
`tenant_id = current_tenant()`, which every index leads with). Table names come from a
fixed list, never from a request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from typing import Final
from uuid import UUID

from psycopg import Cursor
from psycopg import sql
from psycopg.rows import DictRow

from ledger.domain.codes import LicenseStatus
from projections.licenses import license_view

DOCUMENT_TABLES: Final = frozenset({"products", "policies", "entitlements"})

_LICENSE_SELECT = """
SELECT l.doc AS license, p.doc AS policy,
    COALESCE((SELECT jsonb_agg(m.doc ORDER BY m.created_at, m.id) FROM machines m
              WHERE m.tenant_id = l.tenant_id AND m.license_id = l.id AND m.active),
             '[]'::jsonb) AS machines
FROM licenses l JOIN policies p ON p.tenant_id = l.tenant_id AND p.id = l.policy_id
"""

_PRODUCT_SELECT = """
SELECT d.doc || jsonb_build_object('licensesCount',
    (SELECT count(*) FROM licenses l
     WHERE l.tenant_id = d.tenant_id AND l.product_id = d.id AND NOT l.deleted)) AS doc
FROM products d
"""


class UnknownCursorError(LookupError):
    """The `cursor` query parameter names no item of the list."""


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    has_more: bool

    def pagination(self) -> dict[str, Any]:
        next_cursor = self.items[-1]["id"] if self.has_more and self.items else None
        return {"nextCursor": next_cursor, "hasMore": self.has_more}


def _select(table: str) -> sql.Composable:
    if table == "products":
        return sql.SQL(_PRODUCT_SELECT)
    return sql.SQL("SELECT d.doc AS doc FROM {} d").format(sql.Identifier(table))


def get_document(curs: Cursor[DictRow], table: str, item_id: UUID) -> dict[str, Any] | None:
    """A live (not deleted) document of `table`, else None."""
    assert table in DOCUMENT_TABLES, table
    query = sql.SQL("{} WHERE d.id = %s AND NOT d.deleted").format(_select(table))
    row = curs.execute(query, (item_id,)).fetchone()
    return None if row is None else dict(row["doc"])


def _after(table: str, cursor: UUID | None, alias: str) -> tuple[sql.Composable, list[Any]]:
    if cursor is None:
        return sql.SQL(""), []
    clause = sql.SQL(
        " AND ({a}.created_at, {a}.id) > (SELECT c.created_at, c.id FROM {t} c WHERE c.id = %s)"
    ).format(a=sql.Identifier(alias), t=sql.Identifier(table))
    return clause, [cursor]


def _check_cursor(curs: Cursor[DictRow], table: str, cursor: UUID | None) -> None:
    if cursor is None:
        return
    query = sql.SQL("SELECT 1 FROM {} WHERE id = %s").format(sql.Identifier(table))
    if curs.execute(query, (cursor,)).fetchone() is None:
        raise UnknownCursorError(str(cursor))


def list_documents(
    curs: Cursor[DictRow],
    table: str,
    *,
    cursor: UUID | None,
    limit: int,
    equals: Mapping[str, Any] | None = None,
) -> Page:
    """A page of live documents; `equals` filters on (trusted) column names."""
    assert table in DOCUMENT_TABLES, table
    _check_cursor(curs, table, cursor)
    after, params = _after(table, cursor, "d")
    filters = sql.SQL("").join(
        sql.SQL(" AND d.{} = %s").format(sql.Identifier(column)) for column in equals or {}
    )
    query = sql.SQL("{} WHERE NOT d.deleted{}{} ORDER BY d.created_at, d.id LIMIT %s").format(
        _select(table), filters, after
    )
    rows = curs.execute(query, [*(equals or {}).values(), *params, limit + 1]).fetchall()
    return Page([dict(r["doc"]) for r in rows[:limit]], has_more=len(rows) > limit)


def _license_views(rows: list[DictRow], now: datetime) -> list[dict[str, Any]]:
    return [license_view(r["license"], r["policy"], r["machines"], now) for r in rows]


def get_license(curs: Cursor[DictRow], license_id: UUID, now: datetime) -> dict[str, Any] | None:
    row = curs.execute(
        _LICENSE_SELECT + " WHERE l.id = %s AND NOT l.deleted", (license_id,)
    ).fetchone()
    return None if row is None else _license_views([row], now)[0]


def get_license_by_key_hash(
    curs: Cursor[DictRow], key_hash: bytes, now: datetime
) -> dict[str, Any] | None:
    row = curs.execute(
        _LICENSE_SELECT + " WHERE l.key_hash = %s AND NOT l.deleted", (key_hash,)
    ).fetchone()
    return None if row is None else _license_views([row], now)[0]


def _status_filter(status: str) -> tuple[str, list[Any]]:
    """`expired` is derived from time, so `active` and `expired` split on `expires_at`."""
    if status == LicenseStatus.EXPIRED:
        return " AND l.status = 'active' AND l.expires_at <= %s", []
    if status == LicenseStatus.ACTIVE:
        return " AND l.status = 'active' AND (l.expires_at IS NULL OR l.expires_at > %s)", []
    return " AND l.status = %s", [status]


def list_licenses(
    curs: Cursor[DictRow],
    *,
    cursor: UUID | None,
    limit: int,
    now: datetime,
    product_id: UUID | None = None,
    policy_id: UUID | None = None,
    status: str | None = None,
    user_email: str | None = None,
) -> Page:
    _check_cursor(curs, "licenses", cursor)
    where = " WHERE NOT l.deleted"
    params: list[Any] = []
    for column, value in (("product_id", product_id), ("policy_id", policy_id),
                          ("user_email", user_email)):  # fmt: skip
        if value is not None:
            where += f" AND l.{column} = %s"
            params.append(value)
    if status is not None:
        clause, extra = _status_filter(status)
        where += clause
        params.extend(extra or [now])
    after, after_params = _after("licenses", cursor, "l")
    query = (
        sql.SQL(_LICENSE_SELECT + where) + after + sql.SQL(" ORDER BY l.created_at, l.id LIMIT %s")
    )
    rows = curs.execute(query, [*params, *after_params, limit + 1]).fetchall()
    return Page(_license_views(rows[:limit], now), has_more=len(rows) > limit)


def count_live(curs: Cursor[DictRow], table: str, column: str, value: UUID) -> int:
    """Live rows of `table` whose `column` is `value` (e.g. licenses of a policy)."""
    assert table in {"licenses", "policies"}, table
    query = sql.SQL("SELECT count(*) AS n FROM {} WHERE {} = %s AND NOT deleted").format(
        sql.Identifier(table), sql.Identifier(column)
    )
    row = curs.execute(query, (value,)).fetchone()
    assert row is not None
    return int(row["n"])


def missing_entitlement_codes(curs: Cursor[DictRow], codes: list[str]) -> list[str]:
    """The codes that name no live entitlement, in the order given."""
    if not codes:
        return []
    rows = curs.execute(
        "SELECT code FROM entitlements WHERE code = ANY(%s) AND NOT deleted", (codes,)
    ).fetchall()
    known = {r["code"] for r in rows}
    return [c for c in codes if c not in known]
