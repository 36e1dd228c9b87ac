"""HTTP health endpoints of a worker process, on USERPROV_HEALTH_PORT when it is set.

`/livez`: the event loop answers (a wedged loop cannot). `/readyz`: connected to RabbitMQ with
every consumer registered, the database pool usable, and the outbox relay keeping up; 503 with
the reasons otherwise. A worker that is draining after SIGTERM is not ready."""
from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg
import structlog

from userprov.runtime import metrics

log = structlog.get_logger()

DATABASE_PROBE_SECONDS = 2.0


@dataclass
class Readiness:
    consuming: Callable[[], bool]  # connected, every consumer registered, not draining
    pool: asyncpg.Pool
    outbox_lag: Callable[[], float]
    outbox_lag_bound: float

    async def problems(self) -> dict[str, str]:
        found = {}
        if not self.consuming():
            found["broker"] = "not connected to RabbitMQ with every consumer registered"
        try:
            async with asyncio.timeout(DATABASE_PROBE_SECONDS):
                await self.pool.fetchval("SELECT 1")
        except Exception as error:  # noqa: BLE001 - any failure of the probe means not ready
            found["database"] = f"the database pool is not usable: {type(error).__name__}"
        lag = self.outbox_lag()
        if lag > self.outbox_lag_bound:
            found["outbox"] = f"the oldest event waiting to be relayed is {lag:.0f} s old"
        return found


async def watch_readiness(readiness: Readiness, interval: float) -> None:
    """Keeps `userprov_ready` current, with or without anyone probing /readyz: an alert on it
    works where no kubelet probes (compose, a bare process)."""
    while True:
        try:
            found = await readiness.problems()
        except Exception as error:  # noqa: BLE001 - the metric must not stop a worker
            found = {"check": repr(error)}
        metrics.READY.set(0 if found else 1)
        await asyncio.sleep(interval)


async def serve_health(port: int, readiness: Readiness) -> asyncio.Server:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(5):
                request = await reader.readline()
                while (await reader.readline()).strip():  # the headers, unused
                    pass
                status, body = await _route(request.decode("latin-1").split(" "), readiness.problems)
            payload = json.dumps(body).encode()
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
                f"Connection: close\r\n\r\n".encode() + payload
            )
            await writer.drain()
        except (TimeoutError, ConnectionError, ValueError, asyncio.IncompleteReadError):  # ValueError: a line over the limit
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, host="0.0.0.0", port=port, limit=8192)
    log.info("health_serving", port=port)
    return server


async def _route(request_line: list[str], problems: Callable[[], Awaitable[dict[str, str]]]) -> tuple[str, dict[str, object]]:
    path = request_line[1] if len(request_line) > 1 else ""
    if path == "/livez":
        return "200 OK", {"live": True}
    if path == "/readyz":
        found = await problems()
        return ("503 Service Unavailable", {"ready": False, "problems": found}) if found else ("200 OK", {"ready": True})
    return "404 Not Found", {"error": "try /livez or /readyz"}
