"""Versioned SQL migrations, applied under an advisory lock so that workers may start together."""
from __future__ import annotations

from importlib import resources

import asyncpg
import structlog

from userprov.db.connection import connect_creating_database

log = structlog.get_logger()

MIGRATION_LOCK_KEY = 0x75736572_70726F76 & 0x7FFFFFFFFFFFFFFF  # "userprov"


def available_migrations() -> list[tuple[int, str, str]]:
    folder = resources.files("userprov.db") / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append((version, entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


async def migrate(database_url: str) -> list[str]:
    """Applies the migrations not yet applied; returns their names."""
    conn = await connect_creating_database(database_url)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
        try:
            return await _apply_pending(conn)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
    finally:
        await conn.close()


async def _apply_pending(conn: asyncpg.Connection) -> list[str]:
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
    )
    applied = {row["version"] for row in await conn.fetch("SELECT version FROM schema_migrations")}
    done = []
    for version, name, sql in available_migrations():
        if version in applied:
            continue
        async with conn.transaction():
            await conn.execute(sql)
            await conn.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name)
        log.info("migration_applied", migration=name)
        done.append(name)
    return done
