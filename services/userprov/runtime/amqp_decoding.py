"""Lets a frame with text that is not UTF-8 reach the edge instead of killing the connection.

pamqp decodes short strings (message_id, correlation_id, reply_to, type, routing keys) and
header-table keys as strict UTF-8; one message with a stray byte in a property raises inside
aiormq's frame reader, which closes the whole connection, and the broker redelivers it to the
next consumer to do the same. Decoding with `surrogateescape` keeps the bytes (as lone
surrogates) so the dispatcher can refuse and park that one message like any other bad input.
"""
from __future__ import annotations

import struct

from pamqp import common, decode


def _short_str(value: bytes) -> tuple[int, str]:
    try:
        length = common.Struct.byte.unpack(value[0:1])[0]
    except (struct.error, TypeError) as err:
        raise ValueError("Could not unpack short string value") from err
    return length + 1, value[1 : length + 1].decode("utf-8", "surrogateescape")


def _field_table(value: bytes) -> tuple[int, common.FieldTable]:
    try:
        length = common.Struct.integer.unpack(value[0:4])[0]
        offset = 4
        data: dict[str, common.FieldValue] = {}
        end = offset + length
        if end > len(value):
            raise ValueError("Field table length exceeds available data")
        while offset < end:
            key_length = common.Struct.byte.unpack_from(value, offset)[0]
            offset += 1
            if offset + key_length > end:
                raise ValueError("Field table key length exceeds data")
            key = value[offset : offset + key_length].decode("utf-8", "surrogateescape")
            offset += key_length
            consumed, result = decode.embedded_value(value[offset:])
            offset += consumed
            data[key] = result
        return end, data
    except (struct.error, TypeError) as err:
        raise ValueError("Could not unpack data") from err


def install() -> None:
    """Idempotent; called before the first connection is opened."""
    decode.short_str = _short_str
    decode.field_table = _field_table
    decode.METHODS["shortstr"] = _short_str
    decode.METHODS["table"] = _field_table
    decode.TABLE_MAPPING[b"F"] = _field_table
