from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import asyncpg

from contracts import routing
from tests.support.workers import WorkerProcess
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


class TestWorkersThatDoNotMigrate:
    """With USERPROV_MIGRATE_ON_START=false (Kubernetes: the migration Job migrates), a worker
    waits for the schema and consumes nothing before it is there."""

    async def test_waits_for_the_migration_job(self, worker_env: dict[str, str], tmp_path: Path) -> None:
        url = f"{BASE}/userprov_wait_{uuid.uuid4().hex[:8]}"
        worker = WorkerProcess("no-migrate", [routing.ACCOUNT_LOOKUP],
                               {**worker_env, "USERPROV_DATABASE_URL": url, "USERPROV_MIGRATE_ON_START": "false"}, tmp_path)
        worker.start(wait_ready=False)
        try:
            await asyncio.to_thread(worker.wait_for_log, '"schema_not_current"', 30)
            assert not worker.count_log('"broker_connected"')
            await migrate(url)
            await asyncio.to_thread(worker.wait_for_log, '"broker_connected"', 30)
            assert worker.terminate() == 0
        finally:
            if worker.running:
                worker.kill()
            await drop_database(url)
