"""Every exchange, queue and binding of userprov, as data: declared by every process at start
(so that an event is routable to a service's queue before that service ever ran) and written
out as a RabbitMQ definitions file for operators who create the topology at broker boot."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import aiormq
import structlog
from aio_pika import ExchangeType
from aio_pika.abc import AbstractChannel, AbstractConnection

from contracts import registry, routing

log = structlog.get_logger()

# Nothing leaves a parking queue except by replay or purge. RabbitMQ 4 gives a quorum queue
# declared without a delivery limit a limit of 20, and `userprov parked` gives back what it read
# by closing its channel, which counts as a delivery: so a parking queue is declared with the
# highest limit, which no parked message reaches. (-1, RabbitMQ 4's "no limit", drops a
# message at its first return on RabbitMQ 3.10: checked.)
PARKING_DELIVERY_LIMIT = 2**31 - 1

# Each quorum queue has a leader and followers on this many nodes, or on every node of a smaller
# cluster (one, on a single broker). It counts only when a queue is created.
QUORUM_REPLICAS = 3
_REPLICAS = "x-quorum-initial-group-size"


@dataclass(frozen=True)
class Exchange:
    name: str
    type: ExchangeType
    arguments: dict[str, Any] = field(default_factory=dict)


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
        _REPLICAS: QUORUM_REPLICAS,
        "x-delivery-limit": delivery_limit,
        "x-dead-letter-exchange": routing.DEAD_LETTER_EXCHANGE,
        "x-dead-letter-routing-key": service,
    }


def topology(delivery_limit: int) -> Topology:
    exchanges = [
        Exchange(routing.UNROUTED_COMMANDS_EXCHANGE, ExchangeType.FANOUT),
        Exchange(routing.COMMANDS_EXCHANGE, ExchangeType.TOPIC, {"alternate-exchange": routing.UNROUTED_COMMANDS_EXCHANGE}),
        Exchange(routing.EVENTS_EXCHANGE, ExchangeType.TOPIC),
        Exchange(routing.RESPONSES_EXCHANGE, ExchangeType.TOPIC),
        Exchange(routing.INTERNAL_EXCHANGE, ExchangeType.TOPIC),
        Exchange(routing.DEAD_LETTER_EXCHANGE, ExchangeType.DIRECT),
    ]
    queues, bindings = [], [Binding(routing.UNROUTED_COMMANDS_EXCHANGE, routing.queue_name(routing.USER_CREATION), "")]
    for service in routing.SERVICES:
        queue = routing.queue_name(service)
        queues.append(Queue(queue, service_queue_arguments(service, delivery_limit)))
        bindings += [Binding(exchange, queue, key) for exchange, key in registry.subscriptions(service)]
        # The parking queue has no TTL and no length limit: nothing parked expires.
        parking = routing.parking_queue_name(service)
        queues.append(Queue(parking, {"x-queue-type": "quorum", _REPLICAS: QUORUM_REPLICAS, "x-delivery-limit": PARKING_DELIVERY_LIMIT}))
        bindings.append(Binding(routing.DEAD_LETTER_EXCHANGE, parking, service))
    for service, keys in routing.HANDED_TO_BULK.items():
        # like the service's queue: what fails there is parked beside the service's other messages
        bulk = routing.bulk_queue_name(service)
        queues.append(Queue(bulk, service_queue_arguments(service, delivery_limit)))
        bindings += [Binding(routing.INTERNAL_EXCHANGE, bulk, key) for key in keys]
    return Topology(tuple(exchanges), tuple(queues), tuple(bindings))


async def declare_topology(connection: AbstractConnection, delivery_limit: int) -> None:
    wanted = topology(delivery_limit)
    for e in wanted.exchanges:
        await _declared_unless_older(connection, e.name, partial(_declare_exchange, e))
    for q in wanted.queues:
        await _declared_unless_older(connection, q.name, partial(_declare_queue, q), partial(_declare_queue, _as_created_before_replicas(q)))
    async with connection.channel() as channel:
        exchanges = {e.name: await channel.get_exchange(e.name, ensure=False) for e in wanted.exchanges}
        queues = {q.name: await channel.get_queue(q.name, ensure=False) for q in wanted.queues}
        for binding in wanted.bindings:
            await queues[binding.queue].bind(exchanges[binding.exchange], binding.routing_key)
        for service in routing.SERVICES:
            for routing_key in registry.INTERNAL_EVENTS:
                # versions before the internal exchange bound these on the public one: a door for
                # anyone who may publish events (RabbitMQ accepts unbinding what is not bound)
                await queues[routing.queue_name(service)].unbind(exchanges[routing.EVENTS_EXCHANGE], routing_key)


async def _declared_unless_older(connection: AbstractConnection, name: str, *declarations: Callable[[AbstractChannel], Awaitable[object]]) -> None:
    """Declares on a channel of its own, trying each declaration in turn. One that an earlier
    version declared with other arguments (a parking queue without its delivery limit,
    userprov.commands without its alternate exchange) is refused by RabbitMQ (406): it is used as
    it is, and the log says so (docs/how-to/upgrade.md says what to do about it). A difference
    in the service queues' delivery limit is an operator's mistake, and stops the worker."""
    refusals: list[aiormq.exceptions.ChannelPreconditionFailed] = []
    for declare in declarations:
        async with connection.channel() as channel:
            try:
                await declare(channel)
                if refusals:
                    log.warning("declared_differently_by_an_earlier_version", name=name, error=str(refusals[0]))
                return
            except aiormq.exceptions.ChannelPreconditionFailed as error:
                refusals.append(error)
    if name in _SERVICE_QUEUES:
        raise refusals[-1]  # what differs from the declaration closest to how it was created
    log.warning("declared_differently_by_an_earlier_version", name=name, error=str(refusals[-1]))


def _as_created_before_replicas(queue: Queue) -> Queue:
    """As versions before QUORUM_REPLICAS declared it: RabbitMQ refuses to declare a queue again
    with a replica count it was not created with (`rabbitmq-queues grow` adds replicas to it)."""
    return Queue(queue.name, {k: v for k, v in queue.arguments.items() if k != _REPLICAS})


_SERVICE_QUEUES = frozenset(routing.work_queue_names())


async def _declare_exchange(exchange: Exchange, channel: AbstractChannel) -> None:
    await channel.declare_exchange(exchange.name, exchange.type, durable=True, arguments=exchange.arguments)


async def _declare_queue(queue: Queue, channel: AbstractChannel) -> None:
    await channel.declare_queue(queue.name, durable=True, arguments=queue.arguments)


def definitions(delivery_limit: int, vhost: str) -> dict[str, Any]:
    """The topology in RabbitMQ's definitions format (`load_definitions` or
    `rabbitmqctl import_definitions`). Users and permissions are the operator's to add."""
    wanted = topology(delivery_limit)
    return {
        "vhosts": [{"name": vhost}],
        "exchanges": [
            {"name": e.name, "vhost": vhost, "type": e.type.value, "durable": True, "auto_delete": False,
             "internal": False, "arguments": e.arguments}
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
