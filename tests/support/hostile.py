"""Publishing what a well-behaved client library would refuse to: property bytes that are not
UTF-8, NUL characters, bodies of any bytes."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import aio_pika
from aio_pika.abc import AbstractConnection
from pamqp import common, encode
from pamqp.commands import Basic

from contracts.registry import exchange_of


def _short_string_any_bytes(value: str) -> bytes:
    raw = value.encode("utf-8", "surrogateescape")
    return common.Struct.byte.pack(len(raw)) + raw


def _table_value_any_bytes(item: object) -> bytes:
    if isinstance(item, str):  # a long string, its bytes as given
        raw = item.encode("utf-8", "surrogateescape")
        return b"S" + common.Struct.integer.pack(len(raw)) + raw
    return encode.encode_table_value(item)


def _field_table_any_bytes(value: dict[str, object]) -> bytes:
    data = b"".join(_short_string_any_bytes(key) + _table_value_any_bytes(item) for key, item in sorted(value.items()))
    return common.Struct.integer.pack(len(data)) + data


@contextlib.contextmanager
def _raw_short_strings() -> Iterator[None]:
    originals = encode.METHODS["shortstr"], encode.METHODS["table"]
    encode.METHODS["shortstr"], encode.METHODS["table"] = _short_string_any_bytes, _field_table_any_bytes
    try:
        yield
    finally:
        encode.METHODS["shortstr"], encode.METHODS["table"] = originals


async def publish_hostile(amqp_url: str, routing_key: str, body: bytes, **properties: Any) -> None:
    """publish_on, on a connection of its own."""
    connection = await aio_pika.connect(amqp_url)
    try:
        await publish_on(connection, routing_key, body, **properties)
    finally:
        await connection.close()


async def publish_on(
    connection: AbstractConnection,
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
    channel = await connection.channel()
    try:
        underlay = await channel.get_underlay_channel()
        properties = Basic.Properties(
            content_type="application/json",
            message_id=message_id,
            correlation_id=correlation_id,
            reply_to=reply_to,
            headers=headers or None,
            delivery_mode=2,
        )
        with _raw_short_strings():
            await underlay.basic_publish(body, exchange=exchange_of(routing_key), routing_key=routing_key, properties=properties)
    finally:
        await channel.close()
