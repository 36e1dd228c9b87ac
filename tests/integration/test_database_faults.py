from __future__ import annotations

import asyncpg

from contracts import routing
from tests.support.flows import assert_seats_consistent, emailed, invitation_statuses, publish_batch
from tests.support.smtp import RecordingSmtpServer
from userprov.db.connection import APPLICATION_NAME
from userprov_devtools.bus_client import BusClient
from userprov_devtools.waiting import eventually


class TestDatabaseConnectionsLost:
    """Workers whose database connections are terminated mid-batch retry and finish the work."""

    async def test_connections_terminated_during_a_batch(self, bus: BusClient, smtp: RecordingSmtpServer, db: asyncpg.Pool, account) -> None:
        account_id = await account({"gotomeeting": 200})
        message_id, people = await publish_batch(bus, account_id, "dbfault", 200)
        terminated = 0
        for _ in range(3):
            await eventually(lambda: emailed(smtp, people) >= min(30 * (terminated + 1), len(people)), 60)
            terminated += 1
            await db.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
                " AND application_name = $1 AND pid <> pg_backend_pid()", APPLICATION_NAME)
        await eventually(lambda: all(smtp.handler.to(p) for p in people), 120, what="an email to every person")
        await eventually(lambda: _sent_to_all(db, account_id), 60, what="every invitation recorded as sent")
        assert len(bus.find(routing.USERS_ADD_COMPLETED, command_id=message_id)) == 1
        await assert_seats_consistent(db, account_id)


async def _sent_to_all(db: asyncpg.Pool, account_id: str) -> bool:
    return await invitation_statuses(db, account_id) == {"sent": 200}
