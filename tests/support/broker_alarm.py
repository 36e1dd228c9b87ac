"""A RabbitMQ memory alarm for a few seconds, with `rabbitmqctl set_vm_memory_high_watermark`.

BROKER-WIDE: while it lasts, RabbitMQ blocks every connection on the broker that publishes,
other test sessions' included. Keep it short; the previous watermark is restored in any case
and the alarm waited out before the block ends."""
from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from tests.support.infra import rabbitmqctl
from userprov_devtools.waiting import eventually

LOWEST = "0.000001"  # of the machine's memory: a few kilobytes, so the alarm goes off at once


def _watermark_arguments(value: str) -> list[str]:
    """`set_vm_memory_high_watermark`'s arguments for what `get_vm_memory_high_watermark()` said:
    a fraction (0.4) or `{absolute,1073741824}`."""
    value = value.strip()
    absolute = re.fullmatch(r"\{absolute,\s*(\d+)\}", value)
    if absolute:
        return ["absolute", absolute.group(1)]
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return [value]
    raise RuntimeError(f"an unexpected memory watermark: {value!r}")


async def _memory_alarm_on() -> bool:
    return "memory" in await asyncio.to_thread(rabbitmqctl, "eval", "rabbit_alarm:get_alarms().")


@asynccontextmanager
async def memory_alarm(timeout: float = 30) -> AsyncIterator[None]:
    previous = _watermark_arguments(await asyncio.to_thread(rabbitmqctl, "eval", "vm_memory_monitor:get_vm_memory_high_watermark()."))
    assert not await _memory_alarm_on(), "a memory alarm is on already"
    try:
        await asyncio.to_thread(rabbitmqctl, "set_vm_memory_high_watermark", LOWEST)
        await eventually(_memory_alarm_on, timeout, 0.1, what="the memory alarm")
        yield
    finally:
        await asyncio.to_thread(rabbitmqctl, "set_vm_memory_high_watermark", *previous)
        await eventually(lambda: _alarm_off(), timeout, 0.1, what="the memory alarm to clear")


async def _alarm_off() -> bool:
    return not await _memory_alarm_on()
