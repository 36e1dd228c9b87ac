"""Connections and pools to PostgreSQL."""
from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import asyncpg


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/") or "postgres"


async def connect_creating_database(url: str) -> asyncpg.Connection:
    """Connects, first creating the database when it does not exist yet."""
    try:
        return await asyncpg.connect(url)
    except asyncpg.InvalidCatalogNameError:
        admin = await asyncpg.connect(_with_database(url, "postgres"))
        try:
            name = database_name(url)
            quoted = '"' + name.replace('"', '""') + '"'
            try:
                await admin.execute(f"CREATE DATABASE {quoted}")
            except asyncpg.DuplicateDatabaseError:
                pass
        finally:
            await admin.close()
        return await asyncpg.connect(url)


async def drop_database(url: str) -> None:
    admin = await asyncpg.connect(_with_database(url, "postgres"))
    try:
        quoted = '"' + database_name(url).replace('"', '""') + '"'
        await admin.execute(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
    finally:
        await admin.close()


async def create_pool(url: str, size: int) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(url, min_size=1, max_size=size, command_timeout=60)
    assert pool is not None
    return pool
