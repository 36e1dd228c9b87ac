"""A front door's bus connection, kept up for as long as it serves."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import aiormq
import structlog
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from userprov.public_bus import NoAnswer, PublicBus

log = structlog.get_logger()

# what a front door answers with 503 and Retry-After: userprov could not be asked, or did not answer
# (a channel closed under a publish, as when the broker restarts, is aiormq's RuntimeError of its own)
BUS_ERRORS = (NoAnswer, aiormq.exceptions.AMQPError, aiormq.exceptions.ChannelInvalidStateError, ConnectionError, OSError,
              TimeoutError)


async def keep_connected(bus: PublicBus, name: str, every: float = 2.0) -> None:
    """Connects, and again whenever the connection was lost; meanwhile requests get 503. Says
    when RabbitMQ blocks publishing (an alarm) and when it stops."""
    blocked = False
    while True:
        if not bus.connected:
            try:
                await bus.start()
                log.info(f"{name}_broker_connected")
            except BUS_ERRORS as error:
                log.warning(f"{name}_broker_unreachable", error=type(error).__name__)
        if bus.blocked != blocked:
            blocked = bus.blocked
            if blocked:
                log.warning(f"{name}_broker_blocked", consequence="RabbitMQ blocks publishing (a memory or disk alarm):"
                            " requests get 503 with Retry-After until it ends")
            else:
                log.info(f"{name}_broker_unblocked")
        await asyncio.sleep(every)


def bus_lifespan(bus: PublicBus, name: str) -> Callable[[Any], AbstractAsyncContextManager[None]]:
    """A Starlette lifespan: the bus kept connected while the app serves, closed after."""

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        keeping = asyncio.create_task(keep_connected(bus, name), name=f"{name}-bus")
        try:
            yield
        finally:
            keeping.cancel()
            await bus.close()

    return lifespan


def health_routes(bus: PublicBus) -> list[Route]:
    """`/livez`, and `/readyz`: 503 while there is no broker connection or RabbitMQ blocks
    publishing on it. It names no host or port: the port may be public."""

    async def livez(_: Request) -> Response:
        return PlainTextResponse("ok")

    async def readyz(_: Request) -> Response:
        if not bus.connected:
            return PlainTextResponse("not ready: no broker connection", 503)
        if bus.blocked:
            return PlainTextResponse("not ready: the broker blocks publishing (a resource alarm)", 503)
        return PlainTextResponse("ready")

    return [Route("/livez", livez), Route("/readyz", readyz)]
