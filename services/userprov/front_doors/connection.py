"""A front door's bus connection, kept up for as long as it serves."""
from __future__ import annotations

import asyncio

import aiormq
import structlog

from userprov.public_bus import NoAnswer, PublicBus

log = structlog.get_logger()

# what a front door answers with 503 and Retry-After: userprov could not be asked, or did not answer
BUS_ERRORS = (NoAnswer, aiormq.exceptions.AMQPError, ConnectionError, OSError, TimeoutError)


async def keep_connected(bus: PublicBus, name: str, every: float = 2.0) -> None:
    """Connects, and again whenever the connection was lost; meanwhile requests get 503."""
    while True:
        if not bus.connected:
            try:
                await bus.start()
                log.info(f"{name}_broker_connected")
            except BUS_ERRORS as error:
                log.warning(f"{name}_broker_unreachable", error=type(error).__name__)
        await asyncio.sleep(every)
