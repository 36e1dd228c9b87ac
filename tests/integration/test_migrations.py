from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

from contracts import routing
from tests.support.infra import POSTGRES
from tests.support.workers import WorkerProcess
from userprov.db.connection import drop_database
from userprov.db.migrate import available_migrations, migrate

BASE = POSTGRES


class TestMigrations:
    """Workers starting together migrate once: the advisory lock serialises them."""

    async def test_concurrent_migrate_on_a_new_database(self) -> None:
        url = f"{BASE}/userprov_migrate_{uuid.uuid4().hex[:8]}"
        try:
            applied = await asyncio.gather(*(migrate(url, create_database=True) for _ in range(4)))
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
            await asyncio.to_thread(worker.wait_for_log, '"database_missing"', 30)  # the database is not even there yet
            admin = await asyncpg.connect(f"{BASE}/postgres")
            try:
                await admin.execute(f'CREATE DATABASE "{url.rsplit("/", 1)[1]}"')
            finally:
                await admin.close()
            await asyncio.to_thread(worker.wait_for_log, '"schema_not_current"', 30)
            assert not worker.count_log('"broker_connected"')
            await migrate(url)
            await asyncio.to_thread(worker.wait_for_log, '"broker_connected"', 30)
            assert worker.terminate() == 0
        finally:
            if worker.running:
                worker.kill()
            await drop_database(url)


class TestNoDatabaseIsCreatedByMistake:
    """A typo in the database name must not start a worker on a new, empty database (every link
    would then answer unknown_token): only `userprov migrate --create-database` creates one."""

    async def test_a_worker_refuses_to_start_on_a_missing_database(self, worker_env: dict[str, str], tmp_path: Path) -> None:
        url = f"{BASE}/userprov_typo_{uuid.uuid4().hex[:8]}"
        worker = WorkerProcess("typo", [routing.ACCOUNT_LOOKUP], {**worker_env, "USERPROV_DATABASE_URL": url}, tmp_path)
        worker.start(wait_ready=False)
        try:
            assert await asyncio.to_thread(worker.wait_for_exit, 30) == 2
            [line] = [line for line in worker.lines() if '"database_missing"' in line]
            assert "userprov_typo_" in line and "--create-database" in line and f":{urlsplit(BASE).password}@" not in line
            assert not await database_exists(url)
        finally:
            if worker.running:
                worker.kill()
            await drop_database(url)

    def test_migrate_creates_a_database_only_when_asked(self) -> None:
        url = f"{BASE}/userprov_cli_{uuid.uuid4().hex[:8]}"
        env = {**os.environ, "USERPROV_DATABASE_URL": url, "USERPROV_LOG_JSON": "true"}
        command = [sys.executable, "-m", "userprov", "migrate"]
        try:
            refused = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
            assert refused.returncode == 2 and "there is no database" in refused.stderr and "Traceback" not in refused.stderr
            assert not asyncio.run(database_exists(url))
            created = subprocess.run([*command, "--create-database"], env=env, capture_output=True, text=True, timeout=60)
            assert created.returncode == 0 and asyncio.run(database_exists(url))
        finally:
            asyncio.run(drop_database(url))


async def database_exists(url: str) -> bool:
    admin = await asyncpg.connect(f"{BASE}/postgres")
    try:
        return bool(await admin.fetchval("SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", url.rsplit("/", 1)[1]))
    finally:
        await admin.close()
