"""Small work runs generic plans: PostgreSQL would otherwise plan userprov's array statements at
every execution (their custom plans always look cheaper), half the SQL time of a one-person add."""
from __future__ import annotations

import uuid

import asyncpg

from userprov.db.connection import plan_generically

# the shape of userprov's statements: an array of ids, unnested and joined to a table
STATEMENT = "SELECT count(*) FROM unnest($1::uuid[]) AS t(id) JOIN memberships m ON m.membership_id = t.id"


async def _plans(conn: asyncpg.Connection) -> tuple[int, int]:
    generic, custom = await conn.fetchrow(
        "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement = $1", STATEMENT)
    return generic, custom


async def test_small_work_plans_a_statement_once_and_only_in_its_transaction(db: asyncpg.Pool) -> None:
    async with db.acquire() as conn:
        await conn.reload_schema_state()  # a statement of its own on this connection, counted from zero
        async with conn.transaction():
            for _ in range(8):
                await conn.fetchval(STATEMENT, [uuid.uuid4()])
        before = await _plans(conn)
        assert before[1] >= 5, "without it, PostgreSQL plans at least the first five executions (and ours for ever)"

        async with conn.transaction():
            await plan_generically(conn)
            for _ in range(8):
                await conn.fetchval(STATEMENT, [uuid.uuid4()])
        generic, custom = await _plans(conn)
        assert (generic - before[0], custom - before[1]) == (8, 0)

        assert await conn.fetchval("SHOW plan_cache_mode") == "auto", "the setting ends with the transaction"
