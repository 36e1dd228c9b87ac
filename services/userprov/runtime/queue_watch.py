"""Reads the depth and consumer count of userprov's queues every so often, for the metrics
(`userprov_queue_messages`, `userprov_queue_consumers`, `userprov_parked_messages`). RabbitMQ's
counts of quorum queues trail their dead-lettering by a moment: these are for dashboards and
alerts, not for decisions."""
from __future__ import annotations

import asyncio

import structlog

from contracts import routing
from userprov.runtime import metrics
from userprov.runtime.broker import BrokerSession

log = structlog.get_logger()


async def watch_queues(session: BrokerSession, interval: float) -> None:
    service_queues = {routing.queue_name(s): s for s in routing.SERVICES} | {routing.bulk_queue_name(s): s for s in routing.HANDED_TO_BULK}
    parking_queues = {routing.parking_queue_name(s): s for s in routing.SERVICES}
    while True:
        try:
            depths = await session.queue_depths([*service_queues, *parking_queues])
            for name, (messages, consumers) in depths.items():
                metrics.QUEUE_MESSAGES.labels(name).set(messages)
                if name in service_queues:
                    metrics.QUEUE_CONSUMERS.labels(name).set(consumers)
                else:
                    metrics.PARKED.labels(parking_queues[name]).set(messages)
        except Exception as error:  # noqa: BLE001 - the metrics must not stop a worker
            log.info("queue_watch_failed", error=repr(error))
        await asyncio.sleep(interval)
