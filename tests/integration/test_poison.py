from __future__ import annotations

import aio_pika
import asyncpg

from contracts import routing
from contracts.queries import AccountsGet
from tests.support.infra import Infra
from userprov.runtime.dispatch import Dispatcher, Route
from userprov.runtime.topology import service_queue_arguments
from userprov.runtime.unit_of_work import UnitOfWork
from userprov_devtools.bus_client import BusClient
from userprov_devtools.waiting import eventually

SERVICE = "poison-test"
LIMIT = 3


class TestPoisonMessage:
    """A message whose handler always fails is retried up to the delivery limit, then parked: it
    never blocks the queue and is never lost. Real RabbitMQ quorum queue, real PostgreSQL; the
    handler is one that always raises."""

    async def test_parked_after_the_delivery_limit(self, infra: Infra, db: asyncpg.Pool, bus: BusClient) -> None:
        calls: list[str] = []

        async def always_fails(query: AccountsGet, uow: UnitOfWork) -> None:
            calls.append(query.account_id)
            raise RuntimeError("a bug in the handler")

        async def succeeds(query: AccountsGet, uow: UnitOfWork) -> None:
            async with uow:
                calls.append("ok:" + query.account_id)

        queue_name = routing.queue_name(SERVICE)
        dispatcher = Dispatcher(
            SERVICE,
            {queue_name: Route(AccountsGet, always_fails), "healthy": Route(AccountsGet, succeeds)},
            db,
            delivery_limit=LIMIT,
            transient_retry_seconds=1,
            transient_backoff_max=0.1,
        )
        connection = await aio_pika.connect(infra.amqp_url)
        try:
            channel = await connection.channel()
            dead_letters = await channel.declare_exchange(routing.DEAD_LETTER_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True)
            queue = await channel.declare_queue(queue_name, durable=True, arguments=service_queue_arguments(SERVICE, LIMIT))
            parked = await channel.declare_queue(routing.parking_queue_name(SERVICE), durable=True, arguments={"x-queue-type": "quorum"})
            await parked.bind(dead_letters, SERVICE)
            exchange = await channel.declare_exchange("poison-test", aio_pika.ExchangeType.DIRECT, auto_delete=True)
            await queue.bind(exchange, "healthy")
            await queue.consume(dispatcher.on_message)

            await channel.default_exchange.publish(
                aio_pika.Message(b'{"account_id": "poison"}', message_id="poison-1"), routing_key=queue_name)
            await exchange.publish(aio_pika.Message(b'{"account_id": "after"}', message_id="healthy-1"), routing_key="healthy")

            parked_message = await eventually(lambda: parked.get(fail=False), 30, what="the poison message parked")
            assert parked_message.message_id == "poison-1"
            await parked_message.ack()
            assert calls.count("poison") == LIMIT
            assert "ok:after" in calls  # the queue was not blocked
            # not remembered as processed, so a replay after the fix takes effect
            assert await db.fetchval("SELECT count(*) FROM inbox WHERE service = $1 AND message_id = 'poison-1'", SERVICE) == 0
            [rejected] = await eventually(lambda: bus.find(routing.COMMAND_REJECTED, command_id="poison-1"))
            assert rejected.body["reason"] == "processing_failed"
        finally:
            await connection.close()
