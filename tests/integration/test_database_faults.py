from __future__ import annotations

import asyncpg

from contracts import routing
from services.client import BusClient
from services.db.connection import APPLICATION_NAME
from tests.integration.conftest import address
from tests.support.flows import assert_seats_consistent
from tests.support.smtp import RecordingSmtpServer
from tests.support.wait import eventually


class TestDatabaseConnectionsLost:
    """Workers whose database connections are terminated mid-batch retry and finish the work."""

    async def test_connections_terminated_during_a_batch(self, bus: BusClient, smtp: RecordingSmtpServer, db: asyncpg.Pool, account) -> None:
        account_id = await account({"gotomeeting": 200})
        people = [address(f"dbfault{n}") for n in range(200)]
        message_id = await bus.publish(routing.USERS_ADD, {
            "account_id": account_id, "products": ["gotomeeting"],
            "pasted": "\n".join(f"Db Fault{n} {email}" for n, email in enumerate(people))})
        terminated = 0
        for _ in range(3):
            await eventually(lambda: sum(bool(smtp.handler.to(p)) for p in people) >= 30 * (terminated + 1) or
                             all(smtp.handler.to(p) for p in people), 60)
            terminated += 1
            await db.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
                " AND application_name = $1 AND pid <> pg_backend_pid()", APPLICATION_NAME)
        await eventually(lambda: all(smtp.handler.to(p) for p in people), 120, what="an email to every person")
        await eventually(lambda: db.fetchval(
            "SELECT count(*) = 200 FROM invitations i JOIN memberships m USING (membership_id)"
            " WHERE m.account_id = $1 AND i.status = 'sent'", account_id), 60, what="every invitation recorded as sent")
        assert len(bus.find(routing.USERS_ADD_COMPLETED, command_id=message_id)) == 1
        await assert_seats_consistent(db, account_id)
