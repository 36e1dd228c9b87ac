"""Services whose work waits in PostgreSQL: a scheduler per such service takes it from there in
a fair order, woken by a Signal message or by its own polling."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

import asyncpg
import structlog

from userprov.runtime import metrics
from userprov.runtime.circuit import Circuit
from userprov.runtime.errors import is_transient
from userprov.runtime.priority import priority
from userprov.runtime.unit_of_work import OnCommit, Transaction, transaction

log = structlog.get_logger()


class Scheduler(Protocol):
    name: str

    async def run(self, pool: asyncpg.Pool, on_commit: OnCommit) -> None:
        """Takes and does work until `stop`; returns once what it holds is finished or given back."""

    def stop(self) -> None:
        """Takes no more work."""

    async def oldest_waiting(self, conn: asyncpg.Connection) -> float:
        """Seconds the longest-waiting work due next has waited in PostgreSQL (0: none waits)."""


@dataclass(frozen=True)
class Service:
    """What one service runs in a process: its handlers by routing key, and its schedulers."""

    handlers: Mapping[str, Any]  # Handler | QueryHandler | Signal (userprov.runtime.dispatch)
    schedulers: Sequence[Scheduler] = field(default_factory=tuple)
    circuits: Sequence[Circuit] = field(default_factory=tuple)  # dependencies of its own (SMTP), for readiness
    # commands that can be bulk work, by routing key: what says whether one is (see userprov.runtime.handoff)
    large: Mapping[str, Callable[[Any], bool]] = field(default_factory=dict)


class Wakeup:
    """Wakes a scheduler when work was announced, or after `poll_seconds` at the latest (work
    whose announcement was lost, or left by a process that died)."""

    def __init__(self, poll_seconds: float) -> None:
        self._poll_seconds = poll_seconds
        self._event = asyncio.Event()

    def set(self, *_: object) -> None:
        self._event.set()

    async def wait(self, seconds: float | None = None) -> None:
        try:
            await asyncio.wait_for(self._event.wait(), self._poll_seconds if seconds is None else seconds)
        except TimeoutError:
            pass
        self._event.clear()


class Batch(Protocol):
    """One kind of work a BatchScheduler does, a transaction per batch."""

    async def take(self, conn: asyncpg.Connection, limit: int, skip: Sequence[Any]) -> Sequence[Any]:
        """Up to `limit` waiting items, in the order they are due, locked for this transaction;
        none of `skip` (items that failed alone)."""

    def key(self, item: Any) -> Any:
        """What names the item in `skip`."""

    def announced(self, signal: Any) -> Sequence[Any]:
        """The keys of the items a signal message announces."""

    async def take_these(self, conn: asyncpg.Connection, keys: Sequence[Any]) -> Sequence[Any]:
        """Those of the items named that still wait, locked for this transaction."""

    async def act(self, tx: Transaction, items: Sequence[Any], express: bool = False) -> None:
        """Does the items' work in `tx`, emitting the events it causes; `express`: small work."""

    async def oldest_waiting(self, conn: asyncpg.Connection) -> float:
        """As Scheduler.oldest_waiting."""


EXPRESS_MAX = 10  # a signal announcing at most this many items is small work: done at once, beside the batches


class Offered(Enum):
    QUEUED = "queued"  # keys not seen before are queued
    SEEN = "seen"  # every key was queued or taken already
    REFUSED = "refused"  # not small work, or the queue is full: not taken


class ExpressQueue:
    """Items announced by small signals, each once: a signal comes twice when the process that
    committed it also runs its consumer (handed over in process, then through RabbitMQ). At most
    EXPRESS_MAX * 10 wait: beyond, a signal is refused, and its work waits for the batches."""

    def __init__(self, service: str, remember: int = 10_000) -> None:
        self._service = service
        self._waiting: list[Any] = []
        self._seen: dict[Any, None] = {}  # insertion-ordered: the oldest are forgotten first
        self._limit = remember
        self._full = False  # since the last refusal for being full: logged once, until a signal is queued again

    def __len__(self) -> int:
        return len(self._waiting)

    def offer(self, keys: Sequence[Any]) -> Offered:
        """Queues the keys of a small signal not seen before."""
        if not 0 < len(keys) <= EXPRESS_MAX:
            return Offered.REFUSED
        new = [key for key in keys if key not in self._seen]
        if not new:
            return Offered.SEEN
        if len(self._waiting) >= EXPRESS_MAX * 10:
            metrics.EXPRESS_FULL.labels(self._service).inc()
            if not self._full:
                self._full = True
                log.warning("express_lane_full", service=self._service, waiting=len(self._waiting),
                            consequence="small work waits for the batches, here or in another process")
            return Offered.REFUSED
        self._full = False
        self._remember(new)
        self._waiting.extend(new)
        return Offered.QUEUED

    def take(self, at_most: int) -> list[Any]:
        taken, self._waiting = self._waiting[:at_most], self._waiting[at_most:]
        return taken

    def seen(self, keys: Sequence[Any]) -> None:
        """Keys taken by other means: a signal that announces them later is not queued."""
        self._remember(keys)
        gone = set(keys)
        self._waiting = [key for key in self._waiting if key not in gone]

    def _remember(self, keys: Sequence[Any]) -> None:
        for key in keys:
            self._seen[key] = None
        while len(self._seen) > self._limit:
            del self._seen[next(iter(self._seen))]


class BatchScheduler:
    """Takes waiting work from PostgreSQL a batch per transaction until none is left, then waits
    for a Signal or its poll. A transient fault is retried with backoff. Any other fault halves
    the batch until it is one item, and an item that fails alone is set aside for a while (and
    logged), so that one bad row never stops the work behind it.

    Small work (a signal announcing at most EXPRESS_MAX items: someone added a few people) is
    also taken by name at once, in a transaction of its own beside the batch in progress, one at
    a time: an interactive add never waits for the batch another account's paste is in. What the
    express lane misses (a fault, a row locked by a batch) the batches take in turn."""

    def __init__(self, name: str, batch: Batch, size: int, poll_seconds: float, backoff_max: float, set_aside_seconds: float = 60.0,
                 takes_batches: bool = True):
        """`takes_batches`: False in the interactive lane (userprov.runtime.lanes), which does the express lane only."""
        self.name = name
        self._takes_batches = takes_batches
        self._batch = batch
        self._size = size
        self._backoff_max = backoff_max
        self._set_aside_seconds = set_aside_seconds
        self._set_aside: dict[Any, float] = {}  # key: until (monotonic)
        self._stopping = False
        self._express = ExpressQueue(name)
        self._express_wakeup = asyncio.Event()
        self._express_announced = False
        self.wakeup = Wakeup(poll_seconds)

    def notify(self, signal: object = None) -> bool:
        """True when the express lane took the work (small work; it wakes the batches if it fails);
        else the batches are woken and take it, here or in another process."""
        keys = self._batch.announced(signal) if signal is not None else ()
        offered = self._express.offer(keys)
        if offered is Offered.QUEUED:
            if not self._express_announced:  # bulk work in this process holds until the express lane is done
                self._express_announced = True
                priority.announce()
            self._express_wakeup.set()
        if offered is Offered.REFUSED:
            self.wakeup.set()
            return False
        return True

    def stop(self) -> None:
        self._stopping = True
        self.wakeup.set()
        self._express_wakeup.set()

    async def oldest_waiting(self, conn: asyncpg.Connection) -> float:
        return await self._batch.oldest_waiting(conn)

    async def run(self, pool: asyncpg.Pool, on_commit: OnCommit) -> None:
        express = asyncio.create_task(self._run_express(pool, on_commit), name=f"{self.name} express")
        try:
            if self._takes_batches:
                await self._run_batches(pool, on_commit)
        finally:
            await express

    async def _run_express(self, pool: asyncpg.Pool, on_commit: OnCommit) -> None:
        try:
            while not self._stopping:
                await self._express_wakeup.wait()
                self._express_wakeup.clear()
                keys = self._express.take(EXPRESS_MAX * 10)
                if keys and not self._stopping:
                    await self._express_transaction(pool, on_commit, keys)
                if not len(self._express) and self._express_announced:
                    self._express_announced = False
                    priority.done()
        finally:
            if self._express_announced:
                self._express_announced = False
                priority.done()

    async def _express_transaction(self, pool: asyncpg.Pool, on_commit: OnCommit, keys: Sequence[Any]) -> None:
        try:
            async with transaction(pool, on_commit, generic_plans=True) as tx:
                taken = await self._batch.take_these(tx.conn, keys)
                if taken:
                    await self._batch.act(tx, taken, express=True)
        except Exception as error:  # noqa: BLE001 - the batches take what the express lane could not
            log.warning("express_work_failed", scheduler=self.name, error=repr(error))
            self.wakeup.set()
            # an item not taken is done already, or held (so being done) by another transaction

    async def _run_batches(self, pool: asyncpg.Pool, on_commit: OnCommit) -> None:
        limit, failures = self._size, 0
        while not self._stopping:
            taken: Sequence[Any] = ()
            await priority.bulk_step()
            try:
                async with transaction(pool, on_commit) as tx:
                    taken = await self._batch.take(tx.conn, limit, self._skipped())
                    if taken:
                        await self._batch.act(tx, taken)
            except Exception as error:  # noqa: BLE001 - the scheduler outlives any fault
                failures += 1
                if is_transient(error):
                    log.warning("scheduler_transient_fault", scheduler=self.name, error=repr(error), failures=failures)
                elif len(taken) > 1:
                    limit = max(1, len(taken) // 2)
                    log.warning("scheduler_batch_failed", scheduler=self.name, error=repr(error), next_batch=limit)
                    continue
                elif taken:
                    self._set_aside[self._batch.key(taken[0])] = time.monotonic() + self._set_aside_seconds
                    log.error("work_item_failed", scheduler=self.name, item=str(self._batch.key(taken[0])), error=repr(error),
                              retry_in_seconds=self._set_aside_seconds)
                    limit = self._size
                    continue
                else:
                    log.error("scheduler_take_failed", scheduler=self.name, error=repr(error))
                await self.wakeup.wait(min(0.1 * 2**failures, self._backoff_max))
                continue
            failures, limit = 0, self._size
            if not taken:  # fewer than asked may only mean that another process holds the rest
                await self.wakeup.wait()

    def _skipped(self) -> list[Any]:
        now = time.monotonic()
        self._set_aside = {key: until for key, until in self._set_aside.items() if until > now}
        return list(self._set_aside)
