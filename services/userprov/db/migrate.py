"""Versioned SQL migrations, each applied in a transaction of its own that holds an advisory
lock, so that workers may start together, directly or through a pooler in transaction mode
(a session-level lock there is taken on one server connection and released on another)."""
from __future__ import annotations

import asyncio
from importlib import resources

import asyncpg
import structlog

from userprov.db.connection import connect_creating_database, connect_once, is_missing_database
from userprov.db.urls import database_name, host_of

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


class DatabaseMissing(RuntimeError):
    """The database the URL names does not exist (a typo, most often): nothing creates it but an
    explicit `userprov migrate --create-database`."""

    def __init__(self, database_url: str) -> None:
        super().__init__(
            f"there is no database {database_name(database_url)!r} on {host_of(database_url)}: check USERPROV_DATABASE_URL,"
            " or create it (`userprov migrate --create-database`)"
        )


async def migrate(database_url: str, *, create_database: bool = False) -> list[str]:
    """Applies the migrations not yet applied; returns their names. A missing database is
    created only when asked: else DatabaseMissing."""
    if create_database:
        conn = await connect_creating_database(database_url)
    else:
        try:
            conn = await connect_once(database_url)
        except asyncpg.PostgresError as error:
            if is_missing_database(error):
                raise DatabaseMissing(database_url) from error
            raise
    try:
        return await _apply_pending(conn)
    finally:
        await conn.close()


async def _apply_pending(conn: asyncpg.Connection) -> list[str]:
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_KEY)
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
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_KEY)
            if await conn.fetchval("SELECT EXISTS (SELECT FROM schema_migrations WHERE version = $1)", version):
                continue  # applied by another process while this one waited for the lock
            await conn.execute(sql)
            await conn.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name)
        log.info("migration_applied", migration=name)
        done.append(name)
    return done


async def pending_migrations(database_url: str) -> list[str]:
    """The migrations this code has that the database has not applied (all, without a database)."""
    names = [name for _, name, _ in available_migrations()]
    conn = await connect_once(database_url)
    try:
        if not await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL"):
            return names
        applied = {row["version"] for row in await conn.fetch("SELECT version FROM schema_migrations")}
    finally:
        await conn.close()
    return [name for version, name, _ in available_migrations() if version not in applied]


async def wait_for_schema(database_url: str, poll_seconds: float = 2.0) -> None:
    """Returns once every migration is applied (by the migration job, where workers do not
    migrate); a worker does not consume before its schema is there."""
    while True:
        try:
            pending = await pending_migrations(database_url)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            if is_missing_database(error):
                log.warning("database_missing", error=str(DatabaseMissing(database_url)))
            else:
                log.warning("schema_check_failed", error=repr(error))
        else:
            if not pending:
                return
            log.warning("schema_not_current", pending=pending)
        await asyncio.sleep(poll_seconds)
