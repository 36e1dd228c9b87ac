"""Connections and pools to PostgreSQL."""
from __future__ import annotations

import asyncio
from urllib.parse import urlsplit, urlunsplit

import asyncpg


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/") or "postgres"


def host_of(url: str) -> str:
    """host:port of the URL, never its credentials."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}"


async def connect_once(url: str, timeout: float = 10) -> asyncpg.Connection:
    """A connection of its own for a few statements (migrations, probes): it prepares no named
    statement, so it works directly and through a pooler in transaction mode alike."""
    return await asyncpg.connect(url, timeout=timeout, statement_cache_size=0,
                                 server_settings={"application_name": APPLICATION_NAME})


def is_missing_database(error: BaseException) -> bool:
    """PostgreSQL says so with its own code; PgBouncer as a protocol violation."""
    return isinstance(error, asyncpg.InvalidCatalogNameError) or (
        isinstance(error, asyncpg.ProtocolViolationError) and str(error).startswith("database ") and str(error).endswith("does not exist")
    )


async def connect_creating_database(url: str) -> asyncpg.Connection:
    """Connects, first creating the database when it does not exist yet."""
    try:
        return await connect_once(url)
    except asyncpg.PostgresError as error:
        if not is_missing_database(error):
            raise
        await _create_database(url)
        return await connect_once(url)


async def _create_database(url: str, attempts: int = 20) -> None:
    quoted = '"' + database_name(url).replace('"', '""') + '"'
    admin = await connect_once(_with_database(url, "postgres"))
    try:
        for attempt in range(attempts):
            try:
                await admin.execute(f"CREATE DATABASE {quoted}")
                return
            except (asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
                return  # created meanwhile by another process
            except asyncpg.ObjectInUseError:
                # another process is creating a database from template1 at this very moment
                await asyncio.sleep(0.05 * (attempt + 1))
        raise RuntimeError(f"could not create database {quoted}")
    finally:
        await admin.close()


async def drop_database(url: str) -> None:
    admin = await asyncpg.connect(_with_database(url, "postgres"))
    try:
        quoted = '"' + database_name(url).replace('"', '""') + '"'
        await admin.execute(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
    finally:
        await admin.close()


APPLICATION_NAME = "userprov"


class PooledConnection(asyncpg.Connection):
    def get_reset_query(self) -> str:
        """Nothing to reset: userprov leaves no session state on pooled connections (no LISTEN,
        session SET, advisory lock or cursor), so asyncpg's RESET ALL round trip on every
        release is skipped. An open transaction is still rolled back on release."""
        return ""


async def create_pool(url: str, size: int, statement_cache_size: int = 100) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        url,
        min_size=1,
        max_size=size,
        command_timeout=60,
        statement_cache_size=statement_cache_size,
        server_settings={"application_name": APPLICATION_NAME},
        connection_class=PooledConnection,
    )
    assert pool is not None
    return pool


class DatabaseProbe:
    """Answers whether PostgreSQL takes queries, on a connection of its own (never one of the
    handlers' pool: a busy pool is no outage), opened again after any failure."""

    def __init__(self, url: str, timeout: float = 2.0) -> None:
        self._url = url
        self._timeout = timeout
        self._conn: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()

    async def __call__(self) -> None:
        async with self._lock:
            try:
                async with asyncio.timeout(self._timeout):
                    if self._conn is None or self._conn.is_closed():
                        self._conn = await connect_once(self._url, self._timeout)
                    await self._conn.fetchval("SELECT 1")
            except BaseException:
                await self.close()
                raise

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()
