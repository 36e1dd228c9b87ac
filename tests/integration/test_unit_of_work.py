"""A unit of work against PostgreSQL: what it sends, what a failed part of it undoes, and that a
transaction PostgreSQL rolled back is never taken for committed."""
from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from contracts import routing
from tests.support.infra import Infra
from userprov.db.connection import create_pool
from userprov.runtime.envelope import Envelope
from userprov.runtime.outbox import Committed
from userprov.runtime.unit_of_work import TransactionAborted, UnitOfWork, transaction

SERVICE = "uow-test"


@pytest.fixture
async def logged(infra: Infra) -> AsyncIterator[tuple[asyncpg.Pool, list[str]]]:
    """The workers' pool, of one connection, and every statement it sends (one per round trip)."""
    sent: list[str] = []
    pool = await create_pool(infra.database_url, 1)
    async with pool.acquire() as conn:
        conn.add_query_logger(lambda record: sent.append(record.query))
        await conn.execute("CREATE TABLE IF NOT EXISTS uow_test (n int, tag text)")
    sent.clear()
    yield pool, sent
    await pool.close()


def unit(pool: asyncpg.Pool) -> UnitOfWork:
    return UnitOfWork(pool, SERVICE, Envelope(routing.ACCOUNTS_GET, b"{}", str(uuid.uuid4()), None, None, 0))


async def test_small_work_sends_its_settings_with_begin_and_never_releases_its_savepoint(
    logged: tuple[asyncpg.Pool, list[str]],
) -> None:
    """A one-person add's transaction: its setting and its BEGIN one round trip, its attempt one
    SAVEPOINT and no RELEASE (asyncpg's Transaction sends both apart: two round trips more)."""
    pool, sent = logged
    tag = uuid.uuid4().hex
    async with unit(pool):  # the first on the connection: asyncpg asks for the types of its statements
        pass
    sent.clear()
    uow = unit(pool)
    uow.plan_generically()
    async with uow:
        await uow.conn.execute("INSERT INTO uow_test VALUES (1, $1)", tag)
        async with uow.attempt():
            await uow.conn.execute("INSERT INTO uow_test VALUES (2, $1)", tag)
    assert sent[0] == "BEGIN; SET LOCAL plan_cache_mode = force_generic_plan"
    assert sent[2].startswith("SAVEPOINT ")
    assert sent[-1] == "COMMIT"
    assert len(sent) == 6, sent  # begin, insert, savepoint, insert, the inbox claim, commit
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT array_agg(n ORDER BY n) FROM uow_test WHERE tag = $1", tag) == [1, 2]
        assert await conn.fetchval("SHOW plan_cache_mode") == "auto", "the setting ends with the transaction"


async def test_a_failed_attempt_undoes_its_own_writes_and_the_unit_commits_the_rest(
    logged: tuple[asyncpg.Pool, list[str]],
) -> None:
    pool, _ = logged
    tag = uuid.uuid4().hex
    uow = unit(pool)
    async with uow:
        await uow.conn.execute("INSERT INTO uow_test VALUES (1, $1)", tag)
        with pytest.raises(asyncpg.DivisionByZeroError):
            async with uow.attempt():
                await uow.conn.execute("INSERT INTO uow_test VALUES (2, $1)", tag)
                await uow.conn.execute("SELECT 1 / 0")
        async with uow.attempt():
            await uow.conn.execute("INSERT INTO uow_test VALUES (3, $1)", tag)
    assert uow.committed
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT array_agg(n ORDER BY n) FROM uow_test WHERE tag = $1", tag) == [1, 3]
        assert await conn.fetchval("SELECT count(*) FROM inbox WHERE service = $1 AND message_id = $2", SERVICE, uow.message_id) == 1


async def test_a_transaction_postgresql_rolled_back_is_not_taken_for_committed(
    logged: tuple[asyncpg.Pool, list[str]],
) -> None:
    """A statement failed and its error was caught without a savepoint: PostgreSQL answers the
    COMMIT with a rollback. That is an error, and the commit's callbacks never run."""
    pool, _ = logged
    tag = uuid.uuid4().hex
    committed: list[object] = []

    def on_commit(rows: object) -> None:
        committed.append(rows)

    with pytest.raises(TransactionAborted):
        async with transaction(pool, on_commit) as tx:
            await tx.conn.execute("INSERT INTO uow_test VALUES (1, $1)", tag)
            tx.after_commit.append(lambda: committed.append("after"))
            try:
                await tx.conn.execute("SELECT 1 / 0")
            except asyncpg.DivisionByZeroError:
                pass
    assert committed == []
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM uow_test WHERE tag = $1", tag) == 0
        assert not conn.is_in_transaction()


async def test_a_transaction_commits_and_hands_over_what_it_wrote(logged: tuple[asyncpg.Pool, list[str]]) -> None:
    pool, sent = logged
    tag = uuid.uuid4().hex
    written: list[list[Committed]] = []
    async with transaction(pool, lambda rows: written.append(list(rows)), generic_plans=True) as tx:
        await tx.conn.execute("INSERT INTO uow_test VALUES (1, $1)", tag)
    assert sent[0] == "BEGIN; SET LOCAL plan_cache_mode = force_generic_plan" and sent[-1] == "COMMIT"
    assert written == [[]]
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM uow_test WHERE tag = $1", tag) == 1
