"""Every exchange, queue and binding of userprov, as data: declared by every process at start
(so that an event is routable to a service's queue before that service ever ran) and written
out as a RabbitMQ definitions file for operators who create the topology at broker boot."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiormq
import structlog
from aio_pika import ExchangeType
from aio_pika.abc import AbstractConnection

from contracts import registry, routing

log = structlog.get_logger()

# Nothing leaves a parking queue except by replay or purge. RabbitMQ 4 gives a quorum queue
# declared without a delivery limit a limit of 20, and `userprov parked` gives back what it read
# by closing its channel, which counts as a delivery: so a parking queue is declared with the
# highest limit, which no parked message reaches. (-1, RabbitMQ 4's "no limit", drops a
# message at its first return on RabbitMQ 3.10: checked.)
PARKING_DELIVERY_LIMIT = 2**31 - 1


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
        queues.append(Queue(parking, {"x-queue-type": "quorum", "x-delivery-limit": PARKING_DELIVERY_LIMIT}))
        bindings.append(Binding(routing.DEAD_LETTER_EXCHANGE, parking, service))
    return Topology(tuple(exchanges), tuple(queues), tuple(bindings))


async def declare_topology(connection: AbstractConnection, delivery_limit: int) -> None:
    wanted = topology(delivery_limit)
    async with connection.channel() as channel:
        exchanges = {e.name: await channel.declare_exchange(e.name, e.type, durable=True) for e in wanted.exchanges}
        for q in wanted.queues:
            if q.name in _PARKING_QUEUES:
                await _declare_parking_queue(connection, q)
            else:
                await channel.declare_queue(q.name, durable=True, arguments=q.arguments)
        queues = {q.name: await channel.get_queue(q.name, ensure=False) for q in wanted.queues}
        for binding in wanted.bindings:
            await queues[binding.queue].bind(exchanges[binding.exchange], binding.routing_key)
        for service in routing.SERVICES:
            for routing_key in registry.INTERNAL_EVENTS:
                # versions before the internal exchange bound these on the public one: a door for
                # anyone who may publish events (RabbitMQ accepts unbinding what is not bound)
                await queues[routing.queue_name(service)].unbind(exchanges[routing.EVENTS_EXCHANGE], routing_key)


_PARKING_QUEUES = frozenset(routing.parking_queue_name(s) for s in routing.SERVICES)


async def _declare_parking_queue(connection: AbstractConnection, queue: Queue) -> None:
    """A parking queue declared by a version before PARKING_DELIVERY_LIMIT differs in its
    arguments (RabbitMQ refuses the declaration with 406): it is used as it is, and the log says
    what to do about it (the README's "Parking queues")."""
    async with connection.channel() as channel:
        try:
            await channel.declare_queue(queue.name, durable=True, arguments=queue.arguments)
            return
        except aiormq.exceptions.ChannelPreconditionFailed as error:
            log.warning("parking_queue_without_delivery_limit", queue=queue.name, error=str(error),
                        fix="on RabbitMQ 4 apply a policy with delivery-limit to it, or re-create it after replaying or moving"
                            " what it holds")
    async with connection.channel() as channel:
        await channel.declare_queue(queue.name, passive=True)


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
