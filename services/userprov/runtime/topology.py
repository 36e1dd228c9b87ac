"""Declares every exchange and queue of userprov; every process declares all of it at start,
so that an event is routable to a service's queue before that service ever ran."""
from __future__ import annotations

from typing import Any

from aio_pika import ExchangeType
from aio_pika.abc import AbstractChannel

from contracts import registry, routing


def service_queue_arguments(service: str, delivery_limit: int) -> dict[str, Any]:
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": delivery_limit,
        "x-dead-letter-exchange": routing.DEAD_LETTER_EXCHANGE,
        "x-dead-letter-routing-key": service,
    }


async def declare_topology(channel: AbstractChannel, delivery_limit: int) -> None:
    exchanges = {
        name: await channel.declare_exchange(name, ExchangeType.TOPIC, durable=True)
        for name in (routing.COMMANDS_EXCHANGE, routing.EVENTS_EXCHANGE, routing.INTERNAL_EXCHANGE)
    }
    dead_letters = await channel.declare_exchange(routing.DEAD_LETTER_EXCHANGE, ExchangeType.DIRECT, durable=True)
    for service in routing.SERVICES:
        queue = await channel.declare_queue(
            routing.queue_name(service), durable=True, arguments=service_queue_arguments(service, delivery_limit)
        )
        for exchange, routing_key in registry.subscriptions(service):
            await queue.bind(exchanges[exchange], routing_key)
        for routing_key in registry.INTERNAL_EVENTS:
            # versions before the internal exchange bound these on the public one: a door for
            # anyone who may publish events (RabbitMQ accepts unbinding what is not bound)
            await queue.unbind(exchanges[routing.EVENTS_EXCHANGE], routing_key)
        # The parking queue has no TTL and no length limit: nothing parked expires.
        parked = await channel.declare_queue(
            routing.parking_queue_name(service), durable=True, arguments={"x-queue-type": "quorum"}
        )
        await parked.bind(dead_letters, service)
