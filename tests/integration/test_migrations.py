from __future__ import annotations

import asyncio
import uuid

import asyncpg

from userprov.db.connection import drop_database
from userprov.db.migrate import available_migrations, migrate

BASE = "postgresql://postgres:postgres@127.0.0.1:5432"


class TestMigrations:
    """Workers starting together migrate once: the advisory lock serialises them."""

    async def test_concurrent_migrate_on_a_new_database(self) -> None:
        url = f"{BASE}/userprov_migrate_{uuid.uuid4().hex[:8]}"
        try:
            applied = await asyncio.gather(*(migrate(url) for _ in range(4)))
            assert sorted(name for names in applied for name in names) == [name for _, name, _ in available_migrations()]
            conn = await asyncpg.connect(url)
            try:
                assert await conn.fetchval("SELECT count(*) FROM schema_migrations") == len(available_migrations())
            finally:
                await conn.close()
            assert await migrate(url) == []
        finally:
            await drop_database(url)
