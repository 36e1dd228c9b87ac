"""userprov behind a real PgBouncer in transaction mode (Debian's 1.18, which keeps no prepared
statement across transactions): migrations from several processes at once, and a worker whose
pool of 8 shares 3 server connections, with USERPROV_DATABASE_STATEMENT_CACHE_SIZE=0."""
from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import asyncpg

from contracts import routing
from tests.support.flows import add_users, emails_to, tokens_in
from tests.support.infra import POSTGRES
from tests.support.isolated import isolated_worker
from tests.support.pgbouncer import pgbouncer
from tests.support.smtp import RecordingSmtpServer
from userprov.db.connection import connect_creating_database, drop_database
from userprov.db.migrate import available_migrations, migrate
from userprov_devtools.waiting import eventually

BASE = POSTGRES


class TestMigrationsThroughPgBouncer:
    """Each migration holds a transaction-scoped lock: a session lock would be taken on one
    server connection and released on another, and two processes would apply the same one."""

    async def test_four_processes_migrate_a_new_database_at_once(self) -> None:
        url = f"{BASE}/userprov_pooled_{uuid.uuid4().hex[:8]}"
        try:
            # created on the server itself: PgBouncer waits server_login_retry (15 s) after a missing database
            (await connect_creating_database(url)).terminate()
            with pgbouncer(server_connections=2) as pooler:
                pooled = pooler.url_for(url)
                applied = await asyncio.gather(*(migrate(pooled) for _ in range(4)))
                assert sorted(name for names in applied for name in names) == [name for _, name, _ in available_migrations()]
                assert await migrate(pooled) == []
            conn = await asyncpg.connect(url)
            try:
                assert await conn.fetchval("SELECT count(*) FROM schema_migrations") == len(available_migrations())
            finally:
                await conn.close()
        finally:
            await drop_database(url)


class TestWorkerBehindPgBouncer:
    async def test_a_batch_a_single_add_an_accept_and_a_query(
        self, worker_env: dict[str, str], smtp: RecordingSmtpServer, tmp_path: Path
    ) -> None:
        with pgbouncer(server_connections=3) as pooler:
            async with isolated_worker("pooled", worker_env, tmp_path, reach=pooler.url_for, USERPROV_DATABASE_POOL_SIZE="8",
                                       USERPROV_DATABASE_STATEMENT_CACHE_SIZE="0") as (infra, worker, bus):
                assert f'"database": "127.0.0.1:{pooler.port}/' in "".join(worker.lines())  # its first line names where it connects
                await bus.publish(routing.ACCOUNTS_UPSERT, {"account_id": "pooled", "name": "Pooled", "licences": {"gotomeeting": 100}})
                await eventually(lambda: bus.find(routing.ACCOUNT_UPSERTED, account_id="pooled"), 30, what="account.upserted")

                domain = f"pooled-{uuid.uuid4().hex[:8]}.example.com"
                people = [f"person{n}@{domain}" for n in range(60)]
                batch = await add_users(bus, {"account_id": "pooled", "products": ["gotomeeting"],
                                              "pasted": "\n".join(f"Pooled Person{n} {p}" for n, p in enumerate(people))}, 60)
                single = await add_users(bus, {"account_id": "pooled", "users": [{"first_name": "One", "last_name": "Alone",
                                                                                  "email": f"alone@{domain}"}]})
                assert [r["outcome"] for r in batch.body["results"] + single.body["results"]] == ["accepted"] * 61
                await eventually(lambda: all(smtp.handler.to(p) for p in people), 60, what="an email to each of the batch")

                [email] = await emails_to(smtp, f"alone@{domain}")
                await bus.publish(routing.INVITATION_ACCEPTED, {"token": tokens_in(email)["link"]})
                await eventually(lambda: bus.find(routing.USER_ACTIVATED, email=f"alone@{domain}"), 30, what="user.activated")
                answer = await bus.query(routing.USERS_GET, {"account_id": "pooled", "email": f"alone@{domain}"})
                assert answer["status"] == "active", answer

                async with asyncpg.create_pool(infra.database_url, min_size=1, max_size=1) as db:
                    async def recorded() -> bool:  # each email's outcome is committed just after SMTP accepted it
                        counts = dict(await db.fetch("SELECT status, count(*) FROM invitations WHERE account_id = 'pooled' GROUP BY 1"))
                        return counts == {"sent": 60, "accepted": 1}
                    await eventually(recorded, 30, what="every email recorded as sent")
                    backends = await db.fetchval("SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                                                 infra.database_url.rsplit("/", 1)[1])
                    assert backends <= 3, f"{backends} server connections: the worker's pool of 8 did not go through PgBouncer"
                assert not any('"level": "error"' in line for line in worker.lines()), [
                    line for line in worker.lines() if '"level": "error"' in line][:3]
