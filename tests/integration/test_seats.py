from __future__ import annotations

import asyncio

import asyncpg
import pytest

from tests.integration.conftest import address
from tests.support.flows import add_users
from userprov_devtools.bus_client import BusClient


class TestSeatsAreNeverOversold:
    """Seats cannot be oversold, whatever the concurrency."""

    async def test_commands_racing_for_the_last_seats(self, bus: BusClient, db: asyncpg.Pool, account) -> None:
        """Eight commands of three rows each race for ten seats across the two worker processes."""
        account_id = await account({"gotomeeting": 10, "openvoice": 40})
        commands = [
            {
                "account_id": account_id,
                "products": ["gotomeeting", "openvoice"],
                "users": [{"first_name": "Race", "last_name": f"{c}-{n}", "email": address(f"race{c}x{n}")} for n in range(3)],
            }
            for c in range(8)
        ]
        outcomes = await asyncio.gather(*(add_users(bus, body) for body in commands))
        rows = [r for o in outcomes for r in o.body["results"]]
        accepted = [r for r in rows if r["outcome"] == "accepted"]
        refused = [r for r in rows if r["outcome"] == "rejected"]
        assert len(accepted) == 10
        assert len(refused) == 14
        assert all(r["errors"][0]["code"] == "no_free_seat" and r["errors"][0]["field"] == "products" for r in refused)
        seats = dict(await db.fetch("SELECT product, seats_used FROM account_licences WHERE account_id = $1", account_id))
        assert seats == {"gotomeeting": 10, "openvoice": 10}
        assigned = await db.fetchval("SELECT count(*) FROM seat_assignments WHERE account_id = $1", account_id)
        assert assigned == 20

    async def test_the_database_refuses_an_oversell(self, db: asyncpg.Pool, account) -> None:
        """The counter's CHECK constraint is the last line: even a buggy statement cannot oversell."""
        account_id = await account({"gotomeeting": 1})
        with pytest.raises(asyncpg.CheckViolationError):
            await db.execute("UPDATE account_licences SET seats_used = 2 WHERE account_id = $1", account_id)
