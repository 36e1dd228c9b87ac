"""Publishing what a well-behaved client library would refuse to: property bytes that are not
UTF-8, NUL characters, bodies of any bytes."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import aio_pika
from pamqp import common, encode

from contracts.registry import exchange_of


def _short_string_any_bytes(value: str) -> bytes:
    raw = value.encode("utf-8", "surrogateescape")
    return common.Struct.byte.pack(len(raw)) + raw


def _field_table_any_bytes(value: dict[str, object]) -> bytes:
    data = b"".join(_short_string_any_bytes(key) + encode.encode_table_value(item) for key, item in sorted(value.items()))
    return common.Struct.integer.pack(len(data)) + data


@contextlib.contextmanager
def _raw_short_strings() -> Iterator[None]:
    originals = encode.METHODS["shortstr"], encode.METHODS["table"]
    encode.METHODS["shortstr"], encode.METHODS["table"] = _short_string_any_bytes, _field_table_any_bytes
    try:
        yield
    finally:
        encode.METHODS["shortstr"], encode.METHODS["table"] = originals


async def publish_hostile(
    amqp_url: str,
    routing_key: str,
    body: bytes,
    *,
    message_id: str | None,
    correlation_id: str | None = None,
    reply_to: str | None = None,
    headers: dict[str, object] | None = None,
) -> None:
    """Publishes with the properties as given; a lone surrogate `\\udcXX` in one becomes the raw
    byte XX on the wire (so `"\\udcff"` sends the byte 0xFF, which is not UTF-8)."""
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        exchange = await channel.get_exchange(exchange_of(routing_key), ensure=False)
        message = aio_pika.Message(
            body, message_id=message_id, correlation_id=correlation_id, reply_to=reply_to, headers=headers or {}
        )
        with _raw_short_strings():
            await exchange.publish(message, routing_key=routing_key)
    finally:
        await connection.close()
