"""One handler transaction: the inbox claim, the handler's writes and its events commit together."""
from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Self

import asyncpg
import structlog

from contracts.base import Contract
from userprov.runtime import outbox, outcomes
from userprov.runtime.envelope import Envelope
from userprov.runtime.errors import AlreadyProcessed

log = structlog.get_logger()


class UnitOfWork:
    """Given to every handler. `async with uow:` opens the transaction that records the message
    as processed; events emitted inside it are written to the outbox and committed with it."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        service: str,
        envelope: Envelope,
        on_commit: Callable[[], None] = lambda: None,
        outcome_of: str | None = None,
    ) -> None:
        """`outcome_of`: the id of the command whose outcome the events committed here are
        (stored for `commands.get`); None for events and queries."""
        self._pool = pool
        self._outcome_of = outcome_of
        self._on_commit = on_commit  # after a commit that wrote events: the relay sends them at once
        self._service = service
        self._envelope = envelope
        self._conn: asyncpg.Connection | None = None
        self._transaction: asyncpg.transaction.Transaction | None = None
        self._pending: list[outbox.OutgoingMessage] = []
        self.committed = False

    @property
    def conn(self) -> asyncpg.Connection:
        if self._conn is None:
            raise RuntimeError("the unit of work is not open")
        return self._conn

    @property
    def message_id(self) -> str:
        return self._envelope.message_id or ""

    def emit(self, event: Contract) -> None:
        self._pending.append(outbox.OutgoingMessage.event(event, self._envelope.causation_id))

    def reply(self, answer: Contract, message_type: str) -> None:
        """Answers the message's caller, when it named a queue in reply_to."""
        if self._envelope.reply_to:
            self._pending.append(
                outbox.OutgoingMessage.reply(answer, self._envelope.reply_to, self._envelope.causation_id, message_type)
            )

    async def __aenter__(self) -> Self:
        if self.committed:
            raise RuntimeError("a unit of work commits once")
        self._conn = await self._pool.acquire()
        self._transaction = self._conn.transaction()
        try:
            await self._transaction.start()
            claimed = await self._conn.fetchval(
                "INSERT INTO inbox (service, message_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING true",
                self._service,
                self.message_id,
            )
        except BaseException:
            await self._finish(commit=False)
            raise
        if not claimed:
            await self._finish(commit=False)
            raise AlreadyProcessed(self.message_id)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is not None:
            await self._finish(commit=False)
            return
        try:
            await outbox.write(self.conn, self._pending)
            if self._outcome_of is not None:
                await outcomes.record(self.conn, self._outcome_of, self._envelope.routing_key, self._pending)
        except BaseException:
            await self._finish(commit=False)
            raise
        wrote_events = bool(self._pending)
        await self._finish(commit=True)
        self.committed = True
        if wrote_events:
            self._on_commit()

    async def _finish(self, *, commit: bool) -> None:
        conn, transaction = self._conn, self._transaction
        self._conn = self._transaction = None
        self._pending = []
        if conn is None or transaction is None:
            return
        try:
            if commit:
                await transaction.commit()
            else:
                await _roll_back(conn, transaction)
        finally:
            await self._pool.release(conn)

    @asynccontextmanager
    async def separate_transaction(self) -> AsyncIterator[SeparateTransaction]:
        """A transaction of its own, committed at once, before the unit of work opens, with the
        events emitted in it.

        For work that must be durable before or after a side effect outside the database (the
        token hash before the email that carries it; the email's outcome right after it). It
        records nothing in the inbox: the handler's work must be safe to repeat up to there."""
        if self._conn is not None:
            raise RuntimeError("open a separate transaction before the unit of work, never inside it")
        async with self._pool.acquire() as conn:
            async with conn.transaction():
                separate = SeparateTransaction(conn, self._envelope.causation_id)
                yield separate
                await outbox.write(conn, separate.pending)
            if separate.pending:
                self._on_commit()


class SeparateTransaction:
    def __init__(self, conn: asyncpg.Connection, causation_id: str | None) -> None:
        self.conn = conn
        self._causation_id = causation_id
        self.pending: list[outbox.OutgoingMessage] = []

    def emit(self, event: Contract) -> None:
        self.pending.append(outbox.OutgoingMessage.event(event, self._causation_id))


async def _roll_back(conn: asyncpg.Connection, transaction: asyncpg.transaction.Transaction) -> None:
    """Rolls back what can be; never masks the error that caused the rollback."""
    if conn.is_closed():  # the fault closed it: no transaction is left on the server
        return
    try:
        await transaction.rollback()
    except (asyncpg.InterfaceError, asyncpg.PostgresError, OSError) as error:
        log.info("rollback_failed", error=repr(error))
