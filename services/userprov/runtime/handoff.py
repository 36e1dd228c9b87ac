"""A large command handed from the interactive lane to the bulk lane (userprov.runtime.lanes).

A process in the interactive lane that reads a command its route calls large publishes a copy
on userprov.internal, to the service's bulk queue, confirmed, and only then acks the original;
processes that take batches consume that queue. The copy keeps the body and the message_id (so
the inbox absorbs a second copy, should the interactive process die between the publication and
the ack), the correlation and reply_to, and the trace headers.

RabbitMQ sets the copy's publisher to the worker's own user, so the copy says in a header
whether the original's publisher was trusted (USERPROV_TRUSTED_PUBLISHERS). The header is read
only from the bulk queue, which only userprov.internal feeds, on which only the workers may
publish (the RabbitMQ permissions in docs/reference/wire.md); a publisher's own header of that name is dropped
from every copy, and ignored on every other queue."""
from __future__ import annotations

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractMessage

from contracts import routing
from userprov.runtime.envelope import TRUSTED_PUBLISHER
from userprov.runtime.parking import copy_of, publish_confirmed, publisher_headers, with_original_user


def handed_off_copy(message: AbstractMessage, trusted: bool) -> aio_pika.Message:
    headers = publisher_headers(message)
    headers[TRUSTED_PUBLISHER] = trusted
    with_original_user(message, headers)
    return copy_of(message, headers)


async def hand_off(channel: AbstractChannel, message: AbstractIncomingMessage, trusted: bool) -> None:
    """Publishes the copy for the bulk lane (confirmed and routed, else raises)."""
    await publish_confirmed(channel, routing.INTERNAL_EXCHANGE, message.routing_key or "", handed_off_copy(message, trusted))

