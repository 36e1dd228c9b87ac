"""One handler transaction: the inbox claim, the handler's writes and its events commit together."""
from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, Self
from uuid import UUID

import asyncpg
import structlog

from contracts.base import Contract
from userprov.audit import writing
from userprov.audit.actors import SYSTEM, Cause
from userprov.db.connection import PLAN_GENERICALLY
from userprov.runtime import outbox, outcomes, trace_context
from userprov.runtime.envelope import Envelope
from userprov.runtime.errors import AlreadyProcessed

log = structlog.get_logger()

OnCommit = Callable[[Sequence[outbox.Committed]], None]  # the outbox rows a commit wrote: publish them now


def publish_nothing(_: Sequence[outbox.Committed]) -> None:
    pass


# The statement that ends a unit of work: the message recorded as processed (its claim in the
# inbox), the command's outcome, and the events, in one round trip. The inbox row comes last, not
# first: a second copy of a message does its work, finds the row (or waits on its lock) and rolls
# back, so a duplicate costs its own work, and the usual message saves a round trip.
_INBOX = "claimed AS (INSERT INTO inbox (service, message_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING true)"
_WRITTEN = "SELECT true AS claimed, NULL::bigint AS id, NULL AS message_id FROM claimed UNION ALL SELECT NULL, id, message_id FROM written"
CLOSE = f"WITH {_INBOX}, written AS ({outbox.insert_sql(3)}) {_WRITTEN}"
CLOSE_COMMAND = f"WITH {_INBOX}, {outcomes.record_cte(3)}, written AS ({outbox.insert_sql(7)}) {_WRITTEN}"
# the same, when the unit has audit entries: the statement appends them too (its Append runs the
# inbox claim first, the entries last, in every unit: the heads are the last locks a unit takes)
_WRITTEN_AUDITED = f"{_WRITTEN} UNION ALL SELECT NULL, NULL, NULL {writing.READ_AUDITED}"
CLOSE_AUDITED = f"WITH {_INBOX}, written AS ({outbox.insert_sql(3)}), {writing.append_sql(11)} {_WRITTEN_AUDITED}"
CLOSE_COMMAND_AUDITED = (f"WITH {_INBOX}, {outcomes.record_cte(3)}, written AS ({outbox.insert_sql(7)}),"
                         f" {writing.append_sql(15)} {_WRITTEN_AUDITED}")
WRITE_AUDITED = (f"WITH written AS ({outbox.insert_sql(1)}), {writing.append_sql(9)}"
                 f" SELECT id, message_id FROM written UNION ALL SELECT NULL, NULL {writing.READ_AUDITED}")


class UnitOfWork:
    """Given to every handler. `async with uow:` opens the transaction that records the message
    as processed; events emitted inside it are written to the outbox and committed with it.
    A message processed already raises AlreadyProcessed when the unit of work closes (nothing it
    did is committed)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        service: str,
        envelope: Envelope,
        on_commit: OnCommit = publish_nothing,
        outcome_of: str | None = None,
        cause: Cause = SYSTEM,
    ) -> None:
        """`outcome_of`: the id of the command whose outcome the events committed here are
        (stored for `commands.get`); None for events and queries. `cause`: who acts through which
        door, what the unit's audit entries say (userprov.audit.actors)."""
        self.cause = cause
        self._pool = pool
        self._outcome_of = outcome_of
        self._on_commit = on_commit  # after a commit that wrote events: the relay sends them at once
        self._service = service
        self._envelope = envelope
        self._conn: asyncpg.Connection | None = None
        self._generic_plans = False
        self._savepoints = itertools.count()
        self._pending: list[outbox.OutgoingMessage] = []
        self._entries: list[writing.Entry] = []
        self._after_commit: list[Callable[[], None]] = []
        self.committed = False

    @property
    def conn(self) -> asyncpg.Connection:
        if self._conn is None:
            raise RuntimeError("the unit of work is not open")
        return self._conn

    @property
    def message_id(self) -> str:
        return self._envelope.message_id or ""

    @property
    def correlation_id(self) -> str | None:
        """What the events this message causes carry as their correlation id."""
        return self._envelope.causation_id

    def plan_generically(self) -> None:
        """Before it opens: this unit is small work, whose statements run their generic plans
        (see PLAN_GENERICALLY), set as the transaction begins."""
        if self._conn is not None:
            raise RuntimeError("the unit of work is open already")
        self._generic_plans = True

    @asynccontextmanager
    async def read_before(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection for a read before the unit opens, outside its transaction: what is read
        there may change before the unit commits (the caller says why that does not matter)."""
        if self._conn is not None:
            raise RuntimeError("the unit of work is open already: read in it")
        async with self._pool.acquire() as conn:
            yield conn

    @asynccontextmanager
    async def attempt(self) -> AsyncIterator[None]:
        """A part of this unit that may fail alone: should it raise, what it wrote is undone and
        the error raised, and the rest of the unit goes on. Its savepoint is never released (the
        commit does that): a round trip less."""
        name = f"attempt_{next(self._savepoints)}"
        await self.conn.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            if not self.conn.is_closed():
                await self.conn.execute(f"ROLLBACK TO SAVEPOINT {name}")
            raise

    def emit(self, event: Contract) -> None:
        self._pending.append(outbox.OutgoingMessage.event(event, self._envelope.causation_id))

    def audit(self, action: str, account_id: str, user_id: UUID | None = None, email: str | None = None,
              changes: Mapping[str, Any] | None = None, cause: Cause | None = None) -> None:
        """An audit entry of a change this unit makes, by the unit's cause unless told otherwise:
        chained and written when the unit closes, so it exists only if the change commits."""
        self._entries.append(writing.Entry(account_id, action, cause or self.cause, user_id, email, changes or {},
                                           self._envelope.message_id, self.correlation_id))

    def record(self, entry: writing.Entry) -> None:
        """An audit entry made elsewhere, written like `audit`'s."""
        self._entries.append(entry)

    def carry(self, tx: Transaction) -> None:
        """Work done on this unit's connection as a Transaction (another service's step, in this
        process): its events and audit entries commit with this unit, and its callbacks run once it has."""
        self._pending.extend(tx.pending)
        self._entries.extend(tx.entries)
        self._after_commit.extend(tx.after_commit)

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
        try:
            await _begin(self._conn, self._generic_plans)
        except BaseException:
            await self._finish(commit=False)
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is not None:
            await self._finish(commit=False)
            return
        try:
            rows = await self._close()
        except BaseException:
            await self._finish(commit=False)
            raise
        if not any(r["claimed"] for r in rows):
            await self._finish(commit=False)
            raise AlreadyProcessed(self.message_id)
        pending, then = self._pending, self._after_commit
        await self._finish(commit=True)
        self.committed = True
        for callback in then:
            callback()
        self._on_commit(outbox.written([r for r in rows if r["id"] is not None], pending))

    async def _close(self) -> list[asyncpg.Record]:
        inbox = [self._service, self.message_id]
        events = outbox.parameters(self._pending)
        entries = writing.parameters(self._entries) if self._entries else []
        if self._outcome_of is None:
            return await self.conn.fetch(CLOSE_AUDITED if entries else CLOSE, *inbox, *events, *entries)
        outcome = outcomes.parameters(self._outcome_of, self._envelope.routing_key, self._pending)
        return await self.conn.fetch(CLOSE_COMMAND_AUDITED if entries else CLOSE_COMMAND, *inbox, *outcome, *events, *entries)

    async def _finish(self, *, commit: bool) -> None:
        conn, self._conn = self._conn, None
        self._pending, self._entries, self._after_commit = [], [], []
        if conn is None:
            return
        try:
            if commit:
                await _commit(conn)
            else:
                await _roll_back(conn)
        finally:
            await self._pool.release(conn)


class Transaction:
    """A transaction's connection, and the events and audit entries to commit with it."""

    def __init__(self, conn: asyncpg.Connection, correlation_id: str | None, cause: Cause = SYSTEM,
                 message_id: str | None = None) -> None:
        """`cause` and `message_id`: those of its audit entries (by default, userprov's own work)."""
        self.conn = conn
        self._correlation_id = correlation_id
        self._cause = cause
        self._message_id = message_id
        self.pending: list[outbox.OutgoingMessage] = []
        self.entries: list[writing.Entry] = []
        self.after_commit: list[Callable[[], None]] = []  # called once it commits, before its events are published

    def audit(self, action: str, account_id: str, user_id: UUID | None = None, email: str | None = None,
              changes: Mapping[str, Any] | None = None, correlation_id: str | None = None, cause: Cause | None = None) -> None:
        """An audit entry of a change this transaction makes (see UnitOfWork.audit); `correlation_id`:
        that of the work it is about, when it was not caused by the message being processed now."""
        self.entries.append(writing.Entry(account_id, action, cause or self._cause, user_id, email, changes or {},
                                          self._message_id, correlation_id or self._correlation_id))

    def emit(self, event: Contract, correlation_id: str | None = None, trace: trace_context.Carrier | None = None) -> None:
        """`correlation_id` and `trace`: those of the work the event is about, when it was not
        caused by the message being processed now."""
        self.pending.append(outbox.OutgoingMessage.event(event, correlation_id or self._correlation_id, trace))


@asynccontextmanager
async def transaction(pool: asyncpg.Pool, on_commit: OnCommit, correlation_id: str | None = None, *,
                      generic_plans: bool = False) -> AsyncIterator[Transaction]:
    """A transaction whose emitted events are written to the outbox and commit with it, then are
    published at once: for work that no one message stands for (what a scheduler takes from
    PostgreSQL), or that must commit apart from the message's unit of work. `generic_plans`: small
    work (see PLAN_GENERICALLY)."""
    async with pool.acquire() as conn:
        await _begin(conn, generic_plans)
        try:
            tx = Transaction(conn, correlation_id)
            yield tx
            written = await write(conn, tx.pending, tx.entries)
        except BaseException:
            await _roll_back(conn)
            raise
        await _commit(conn)
        for then in tx.after_commit:
            then()
        on_commit(written)


async def write(conn: asyncpg.Connection, messages: Sequence[outbox.OutgoingMessage],
                entries: Sequence[writing.Entry]) -> list[outbox.Committed]:
    """Outbox rows and audit entries in the caller's transaction, in one statement; hand the
    result to `OutboxRelay.committed` once it commits."""
    if not entries:
        return await outbox.write(conn, messages)
    return outbox.written(await conn.fetch(WRITE_AUDITED, *outbox.parameters(messages), *writing.parameters(entries)), messages)


class TransactionAborted(Exception):
    """The server rolled back at COMMIT: a statement of the transaction had failed, and the error
    was caught without rolling back to a savepoint."""


async def _begin(conn: asyncpg.Connection, generic_plans: bool = False) -> None:
    """Opens a transaction, its settings in the same round trip. Transactions here are begun and
    ended in SQL, not with asyncpg's Transaction: that sends each setting and each savepoint's
    release as a round trip of its own, several of a one-person add's dozen."""
    await conn.execute(f"BEGIN; {PLAN_GENERICALLY}" if generic_plans else "BEGIN")


async def _commit(conn: asyncpg.Connection) -> None:
    if await conn.execute("COMMIT") != "COMMIT":
        raise TransactionAborted("the transaction had failed: nothing of it was committed")


async def _roll_back(conn: asyncpg.Connection) -> None:
    """Rolls back what can be; never masks the error that caused the rollback."""
    if conn.is_closed():  # the fault closed it: no transaction is left on the server
        return
    try:
        await conn.execute("ROLLBACK")
    except (asyncpg.InterfaceError, asyncpg.PostgresError, OSError) as error:
        log.info("rollback_failed", error=repr(error))
