from __future__ import annotations

import asyncpg

from tests.support.flows import add_users
from tests.support.smtp import RecordingSmtpServer
from userprov_devtools.bus_client import BusClient
from userprov_devtools.waiting import eventually


class TestLargeCommand:
    """A users.add of 10,000 pasted rows completes, and every new person gets an email."""

    async def test_10000_rows(self, bus: BusClient, smtp: RecordingSmtpServer, db: asyncpg.Pool, account) -> None:
        account_id = await account({"gotomeeting": 10_000})
        people = [f"bulk{n}.{account_id}@example.com" for n in range(10_000)]
        pasted = "\n".join(f"Bulk\tPerson {n}\t{email}" for n, email in enumerate(people))
        done = await add_users(bus, {"account_id": account_id, "products": ["gotomeeting"], "pasted": pasted}, timeout=120)
        results = done.body["results"]
        assert len(results) == 10_000 and all(r["outcome"] == "accepted" for r in results)
        assert [r["row"] for r in results] == list(range(1, 10_001))
        assert await db.fetchval("SELECT seats_used FROM account_licences WHERE account_id = $1", account_id) == 10_000
        await eventually(lambda: all(smtp.handler.to(p) for p in people), 300, interval=0.1, what="10,000 emails")
