"""Small work runs generic plans: PostgreSQL would otherwise plan userprov's array statements at
every execution (their custom plans always look cheaper), half the SQL time of a one-person add."""
from __future__ import annotations

import uuid

import asyncpg

from userprov.db.connection import PLAN_GENERICALLY
from userprov.user_creation import sql

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
            await conn.execute(PLAN_GENERICALLY)
            for _ in range(8):
                await conn.fetchval(STATEMENT, [uuid.uuid4()])
        generic, custom = await _plans(conn)
        assert (generic - before[0], custom - before[1]) == (8, 0)

        assert await conn.fetchval("SHOW plan_cache_mode") == "auto", "the setting ends with the transaction"


async def _rows_read(conn: asyncpg.Connection) -> int:
    """Rows this transaction has read from memberships and profiles so far (its own statistics,
    counted before they are reported)."""
    return await conn.fetchval(
        "SELECT sum(coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0)) FROM pg_stat_xact_user_tables"
        " WHERE relname IN ('memberships', 'profiles')")


async def test_a_small_add_reads_the_people_it_names_not_the_whole_account(db: asyncpg.Pool) -> None:
    """A generic plan does not know how many members the account has: the lookup of who is a
    member already must go from the emails, or a one-person add grows with the account."""
    account = f"big-{uuid.uuid4().hex[:12]}"
    members = 20_000
    async with db.acquire() as conn:
        transaction = conn.transaction()  # rolled back: the big account is this test's alone
        await transaction.start()
        try:
            await conn.execute("INSERT INTO accounts (account_id, name, status) VALUES ($1, 'Big', 'active')", account)
            await conn.execute("INSERT INTO account_licences (account_id, product, seats_total) VALUES ($1, 'gotomeeting', $2)",
                               account, members + 10)
            await conn.execute(
                "WITH p AS (INSERT INTO profiles (profile_id, email, first_name, last_name)"
                "  SELECT gen_random_uuid(), 'm' || n || '@' || $1 || '.example', 'M', 'N' FROM generate_series(1, $2) n"
                "  RETURNING profile_id)"
                " INSERT INTO memberships (membership_id, account_id, profile_id, first_name, last_name, language, status)"
                " SELECT gen_random_uuid(), $1, profile_id, 'M', 'N', 'en', 'active' FROM p", account, members)
            await conn.execute(  # and, as on a platform, thousands of small accounts beside it
                "WITH a AS (INSERT INTO accounts (account_id, name, status)"
                "  SELECT $1 || '-' || n, 'Small', 'active' FROM generate_series(1, 4000) n RETURNING account_id),"
                " p AS (INSERT INTO profiles (profile_id, email, first_name, last_name)"
                "  SELECT gen_random_uuid(), 's' || n || '@' || $1 || '.example', 'S', 'N' FROM generate_series(1, 12000) n"
                "  RETURNING profile_id)"
                " INSERT INTO memberships (membership_id, account_id, profile_id, first_name, last_name, language, status)"
                " SELECT gen_random_uuid(), $1 || '-' || (abs(hashtext(profile_id::text)) % 4000 + 1), profile_id, 'S', 'N', 'en', 'active'"
                " FROM p", account)
            await conn.execute("ANALYZE accounts, memberships, profiles")
            await conn.execute(PLAN_GENERICALLY)
            before = await _rows_read(conn)
            for n in range(6):
                named = [f"new{n}@{account}.example", f"m{n + 1}@{account}.example"]  # one new, one a member
                adding = await sql.lock_for_adding(conn, account, ["gotomeeting"], named)
                assert adding is not None and list(adding.members) == [named[1]]
            read = await _rows_read(conn) - before
            assert read <= 6 * 4, f"{read} rows of memberships and profiles read for 6 adds of 2 people"
        finally:
            await transaction.rollback()
