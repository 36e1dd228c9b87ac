"""Connections and pools to PostgreSQL.

A URL may name several hosts (`postgresql://u@db-1:5432,db-2:5432/userprov?target_session_attrs=read-write`):
asyncpg connects to the first that takes writes, so after a failover new connections find the new
primary. A pooled connection whose server stopped taking writes (demoted or fenced) makes the
pool renew all its connections."""
from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import structlog

from userprov.db.urls import database_name, with_database

log = structlog.get_logger()


def takes_writes(conn: asyncpg.Connection) -> bool:
    """Whether the server took writes when it last said (PostgreSQL 14 and later report both
    settings to every session whenever they change): what `target_session_attrs=read-write`
    checks when it connects, checked again on a connection in use."""
    reported = conn.get_settings()
    return getattr(reported, "default_transaction_read_only", "off") != "on" and getattr(reported, "in_hot_standby", "off") != "on"


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
    admin = await connect_once(with_database(url, "postgres"))
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
    admin = await asyncpg.connect(with_database(url, "postgres"))
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


class PrimaryPool(asyncpg.Pool):
    """A pool that follows a failover. A connection given back after its server stopped taking
    writes (a primary demoted, or fenced with default_transaction_read_only) expires every
    connection of the pool: each is closed when next given back or taken, and the new ones
    connect to whichever host takes writes now. The write that failed (ReadOnlySQLTransaction)
    is a transient fault, retried on a new connection."""

    async def release(self, connection: Any, *, timeout: float | None = None) -> None:
        if not connection.is_closed() and not takes_writes(connection):
            log.warning("database_read_only", action="renewing the pool's connections")
            await self.expire_connections()
        await super().release(connection, timeout=timeout)


async def create_pool(url: str, size: int, statement_cache_size: int = 100) -> asyncpg.Pool:
    # asyncpg.create_pool with a class of its own: its defaults, given as create_pool gives them
    pool = PrimaryPool(
        url,
        min_size=1,
        max_size=size,
        max_queries=50000,
        max_inactive_connection_lifetime=300.0,
        setup=None,
        init=None,
        loop=None,
        command_timeout=60,
        statement_cache_size=statement_cache_size,
        server_settings={"application_name": APPLICATION_NAME},
        connection_class=PooledConnection,
        record_class=asyncpg.Record,
    )
    await pool
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
                    if self._conn is None or self._conn.is_closed() or not takes_writes(self._conn):
                        await self.close()
                        self._conn = await connect_once(self._url, self._timeout)
                    await self._conn.fetchval("SELECT 1")
            except BaseException:
                await self.close()
                raise

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()


# For the rest of a transaction, a prepared statement runs its generic plan, planned once per
# connection. userprov's statements take arrays (unnest), whose custom plans always look cheaper to
# PostgreSQL than a generic one, so it would plan every execution again: half the SQL time of a
# one-person add. Only for small work: a batch's rows are better planned with their numbers known
# (a generic plan for every statement cost about a tenth of the throughput).
PLAN_GENERICALLY = "SET LOCAL plan_cache_mode = force_generic_plan"
