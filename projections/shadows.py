"""Shadow tables for rebuilds, and comparing or replacing live rows with theirs.

A shadow is a session-local temporary table with the live table's name: temporary tables
come first in the search path, so the writers' unqualified SQL writes the shadow. It has
the live table's columns, defaults, checks, unique indexes (the writers' ON CONFLICT
targets) and row-level security, so those statements behave and plan as they do live.
Comparisons and replacements name both sides explicitly (`public.` / `pg_temp.`), for
one tenant and the part of the table a read model owns (`Table.scope`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql

from projections.read_models import Table

# `CREATE UNIQUE INDEX name ON public.` of pg_get_indexdef, to put a copy on a shadow.
_UNIQUE_INDEX = re.compile(r"^CREATE UNIQUE INDEX \S+ ON (?:ONLY )?public\.")


@dataclass(frozen=True)
class Difference:
    """A row where the live read model and its rebuild disagree.

    `kind`: "missing" (the events make a row the live table lacks), "unexpected" (a live
    row no event justifies) or "different" (same key, other content).
    """

    tenant_id: UUID
    table: str
    key: tuple[Any, ...]
    kind: str


def create_shadows(conn: psycopg.Connection[Any], names: Sequence[str]) -> None:
    """Each shadow: the live table's columns, defaults and checks, its unique indexes
    (the writers' ON CONFLICT targets), and its row-level security, so the writers'
    statements behave and plan as on the live table (`WHERE id = …` finds the
    tenant's row through the index that leads with tenant_id)."""
    for name in names:
        shadow, live = sql.Identifier("pg_temp", name), sql.Identifier("public", name)
        conn.execute(
            sql.SQL(
                "CREATE TEMPORARY TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING GENERATED"
                " INCLUDING IDENTITY INCLUDING CONSTRAINTS)"
            ).format(sql.Identifier(name), live)
        )
        rows = conn.execute(
            "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i"
            " WHERE i.indrelid = %s::regclass AND i.indisunique",
            (f"public.{name}",),
        ).fetchall()
        for (definition,) in rows:
            conn.execute(_UNIQUE_INDEX.sub("CREATE UNIQUE INDEX ON pg_temp.", definition))
        for statement in (
            "ALTER TABLE {} ENABLE ROW LEVEL SECURITY",
            "ALTER TABLE {} FORCE ROW LEVEL SECURITY",
            "CREATE POLICY tenant_isolation ON {} USING (tenant_id = current_tenant())",
        ):
            conn.execute(sql.SQL(statement).format(shadow))


def drop_shadows(conn: psycopg.Connection[Any], names: Sequence[str]) -> None:
    for name in names:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier("pg_temp", name)))


def reset_shadows(
    curs: psycopg.Cursor[Any], tenant_id: UUID, names: Sequence[str], copied: Sequence[str]
) -> None:
    """Empty the shadows, then copy the tenant's live rows of the tables in `copied`
    (tables the writers touch but the rebuild does not own), in the caller's transaction
    for that tenant."""
    for name in names:
        curs.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier("pg_temp", name)))
    for name in copied:
        curs.execute(
            sql.SQL("INSERT INTO {} SELECT * FROM {} WHERE tenant_id = %s").format(
                sql.Identifier("pg_temp", name), sql.Identifier("public", name)
            ),
            (tenant_id,),
        )


def _sides(table: Table) -> tuple[sql.Composable, sql.Composable]:
    where = sql.SQL(" WHERE tenant_id = %(tenant)s AND ({})").format(sql.SQL(table.scope))
    live = sql.SQL("SELECT * FROM {}").format(sql.Identifier("public", table.name)) + where
    shadow = sql.SQL("SELECT * FROM {}").format(sql.Identifier("pg_temp", table.name)) + where
    return live, shadow


def differences(curs: psycopg.Cursor[Any], tenant_id: UUID, table: Table) -> list[Difference]:
    live, shadow = _sides(table)
    keys = sql.SQL(", ").join(sql.Identifier(k) for k in table.key)
    query = sql.SQL(
        "SELECT {keys}, 'live' FROM ({live} EXCEPT {shadow}) d"
        " UNION ALL SELECT {keys}, 'rebuilt' FROM ({shadow} EXCEPT {live}) d"
    ).format(keys=keys, live=live, shadow=shadow)
    sides: dict[tuple[Any, ...], set[str]] = {}
    for *key, side in curs.execute(query, {"tenant": tenant_id}).fetchall():
        sides.setdefault(tuple(key), set()).add(side)
    kinds = {frozenset({"live"}): "unexpected", frozenset({"rebuilt"}): "missing"}
    return [
        Difference(tenant_id, table.name, key, kinds.get(frozenset(found), "different"))
        for key, found in sides.items()
    ]


def replace_rows(curs: psycopg.Cursor[Any], tenant_id: UUID, table: Table) -> int:
    """Make the live owned rows equal the rebuilt ones; the number of rows changed."""
    live, shadow = _sides(table)
    keys = sql.SQL(", ").join(sql.Identifier(k) for k in table.key)
    target = sql.Identifier("public", table.name)
    deleted = curs.execute(
        sql.SQL(
            "DELETE FROM {target} WHERE tenant_id = %(tenant)s AND ({keys}) IN"
            " (SELECT {keys} FROM ({live} EXCEPT {shadow}) d)"
        ).format(target=target, keys=keys, live=live, shadow=shadow),
        {"tenant": tenant_id},
    ).rowcount
    inserted = curs.execute(
        sql.SQL("INSERT INTO {target} {shadow} EXCEPT {live}").format(
            target=target, live=live, shadow=shadow
        ),
        {"tenant": tenant_id},
    ).rowcount
    return deleted + inserted
