"""Apply the numbered SQL migrations in `ledger/migrations/`, once each, as the owner.

Each file runs in its own transaction together with its row in `schema_migrations`,
so a failed migration leaves nothing half-applied and a re-run picks up where it stopped.
An advisory lock keeps two `licentric migrate` processes from racing.
"""

from __future__ import annotations

from importlib import resources

import psycopg

# Arbitrary constant: the advisory lock key that serializes concurrent migrators.
_MIGRATION_LOCK_KEY = 7_302_114_220


def migration_files() -> list[tuple[str, str]]:
    """(name, sql) of every migration, in order."""
    folder = resources.files("ledger") / "migrations"
    names = sorted(p.name for p in folder.iterdir() if p.name.endswith(".sql"))
    return [(name, (folder / name).read_text(encoding="utf-8")) for name in names]


def migrate(owner_url: str, partitions: int = 16) -> list[str]:
    """Apply pending migrations; return the names applied by this call."""
    if not 1 <= partitions <= 1024:
        msg = f"partitions must be within 1..1024, got {partitions}"
        raise ValueError(msg)
    applied: list[str] = []
    with psycopg.connect(owner_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK_KEY,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {row[0] for row in conn.execute("SELECT name FROM schema_migrations")}
            for name, sql in migration_files():
                if name in done:
                    continue
                with conn.transaction():
                    conn.execute(
                        "SELECT set_config('licentric.partitions', %s, true)", (str(partitions),)
                    )
                    conn.execute(sql.encode())
                    conn.execute("INSERT INTO schema_migrations (name) VALUES (%s)", (name,))
                applied.append(name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK_KEY,))
    return applied
