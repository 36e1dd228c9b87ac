"""Every exchange, queue and binding of userprov, as data: declared by every process at start
(so that an event is routable to a service's queue before that service ever ran) and written
out as a RabbitMQ definitions file for operators who create the topology at broker boot."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aio_pika import ExchangeType
from aio_pika.abc import AbstractChannel

from contracts import registry, routing


@dataclass(frozen=True)
class Exchange:
    name: str
    type: ExchangeType


@dataclass(frozen=True)
class Queue:
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Binding:
    exchange: str
    queue: str
    routing_key: str


@dataclass(frozen=True)
class Topology:
    exchanges: tuple[Exchange, ...]
    queues: tuple[Queue, ...]
    bindings: tuple[Binding, ...]


def service_queue_arguments(service: str, delivery_limit: int) -> dict[str, Any]:
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": delivery_limit,
        "x-dead-letter-exchange": routing.DEAD_LETTER_EXCHANGE,
        "x-dead-letter-routing-key": service,
    }


def topology(delivery_limit: int) -> Topology:
    exchanges = [Exchange(name, ExchangeType.TOPIC)
                 for name in (routing.COMMANDS_EXCHANGE, routing.EVENTS_EXCHANGE, routing.INTERNAL_EXCHANGE)]
    exchanges.append(Exchange(routing.DEAD_LETTER_EXCHANGE, ExchangeType.DIRECT))
    queues, bindings = [], []
    for service in routing.SERVICES:
        queue = routing.queue_name(service)
        queues.append(Queue(queue, service_queue_arguments(service, delivery_limit)))
        bindings += [Binding(exchange, queue, key) for exchange, key in registry.subscriptions(service)]
        # The parking queue has no TTL and no length limit: nothing parked expires.
        parking = routing.parking_queue_name(service)
        queues.append(Queue(parking, {"x-queue-type": "quorum"}))
        bindings.append(Binding(routing.DEAD_LETTER_EXCHANGE, parking, service))
    return Topology(tuple(exchanges), tuple(queues), tuple(bindings))


async def declare_topology(channel: AbstractChannel, delivery_limit: int) -> None:
    wanted = topology(delivery_limit)
    exchanges = {e.name: await channel.declare_exchange(e.name, e.type, durable=True) for e in wanted.exchanges}
    queues = {q.name: await channel.declare_queue(q.name, durable=True, arguments=q.arguments) for q in wanted.queues}
    for binding in wanted.bindings:
        await queues[binding.queue].bind(exchanges[binding.exchange], binding.routing_key)
    for service in routing.SERVICES:
        for routing_key in registry.INTERNAL_EVENTS:
            # versions before the internal exchange bound these on the public one: a door for
            # anyone who may publish events (RabbitMQ accepts unbinding what is not bound)
            await queues[routing.queue_name(service)].unbind(exchanges[routing.EVENTS_EXCHANGE], routing_key)


def definitions(delivery_limit: int, vhost: str) -> dict[str, Any]:
    """The topology in RabbitMQ's definitions format (`load_definitions` or
    `rabbitmqctl import_definitions`). Users and permissions are the operator's to add."""
    wanted = topology(delivery_limit)
    return {
        "vhosts": [{"name": vhost}],
        "exchanges": [
            {"name": e.name, "vhost": vhost, "type": e.type.value, "durable": True, "auto_delete": False,
             "internal": False, "arguments": {}}
            for e in wanted.exchanges
        ],
        "queues": [
            {"name": q.name, "vhost": vhost, "durable": True, "auto_delete": False, "arguments": q.arguments}
            for q in wanted.queues
        ],
        "bindings": [
            {"source": b.exchange, "vhost": vhost, "destination": b.queue, "destination_type": "queue",
             "routing_key": b.routing_key, "arguments": {}}
            for b in wanted.bindings
        ],
    }
