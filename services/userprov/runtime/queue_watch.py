"""Reads what waits every so often, for the metrics: the depth and consumer count of userprov's
queues (`userprov_queue_messages`, `userprov_queue_consumers`, `userprov_parked_messages`), and
how long the work its schedulers take from PostgreSQL has waited (`userprov_oldest_waiting_seconds`).
RabbitMQ's counts of quorum queues trail their dead-lettering by a moment: these are for
dashboards and alerts, not for decisions."""
from __future__ import annotations

import asyncio
from collections.abc import Sequence

import asyncpg
import structlog

from contracts import routing
from userprov.runtime import metrics
from userprov.runtime.broker import BrokerSession
from userprov.runtime.scheduling import Scheduler

log = structlog.get_logger()


async def watch_queues(session: BrokerSession, interval: float) -> None:
    work_queues = routing.work_queue_names()
    parking_queues = {routing.parking_queue_name(s): s for s in routing.SERVICES}
    while True:
        try:
            depths = await session.queue_depths([*work_queues, *parking_queues])
            for name, (messages, consumers) in depths.items():
                metrics.QUEUE_MESSAGES.labels(name).set(messages)
                if name in work_queues:
                    metrics.QUEUE_CONSUMERS.labels(name).set(consumers)
                else:
                    metrics.PARKED.labels(parking_queues[name]).set(messages)
        except Exception as error:  # noqa: BLE001 - the metrics must not stop a worker
            log.info("queue_watch_failed", error=repr(error))
        await asyncio.sleep(interval)


async def watch_waiting_work(pool: asyncpg.Pool, schedulers: Sequence[Scheduler], interval: float) -> None:
    """Every process that runs a scheduler reports it (the lanes' too: an interactive lane with no
    bulk lane beside it is how work waits unseen); alerts take the largest."""
    while True:
        for scheduler in schedulers:
            try:
                async with pool.acquire() as conn:
                    metrics.OLDEST_WAITING.labels(scheduler.name).set(await scheduler.oldest_waiting(conn))
            except Exception as error:  # noqa: BLE001 - the metrics must not stop a worker
                log.info("waiting_work_watch_failed", scheduler=scheduler.name, error=repr(error))
        await asyncio.sleep(interval)
