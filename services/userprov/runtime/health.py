"""HTTP health endpoints of a worker process, on USERPROV_HEALTH_PORT when it is set.

`/livez`: the event loop answers (a wedged loop cannot). `/readyz`: connected to RabbitMQ with
every consumer registered, PostgreSQL answering, no dependency down (its circuit open), and the
outbox relay keeping up; 503 with the reasons otherwise. A worker that is draining after
SIGTERM is not ready."""
from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import structlog

from userprov.runtime import metrics
from userprov.runtime.circuit import Circuit

log = structlog.get_logger()

@dataclass
class Readiness:
    """Checked in the background every few seconds (`watch_readiness`); /readyz answers from the
    last check, so that a burst of probes costs nothing and waits for nothing."""

    consuming: Callable[[], bool]  # connected, every consumer registered, not draining
    database: Callable[[], Awaitable[None]]  # raises unless PostgreSQL answers (userprov.db.connection.DatabaseProbe)
    outbox_lag: Callable[[], float]
    outbox_lag_bound: float
    circuits: Sequence[Circuit] = ()
    broker_node: Callable[[], str | None] = lambda: None  # host:port of the RabbitMQ node connected to now
    stale_after: float = 10.0  # a last check older than this is no answer
    _checked: dict[str, str] | None = field(default=None, init=False)
    _checked_at: float = field(default=0.0, init=False)

    async def check(self) -> dict[str, str]:
        found = {}
        try:
            await self.database()
        except Exception as error:  # noqa: BLE001 - any failure of the probe means not ready
            found["database"] = f"the database cannot be reached: {type(error).__name__}"
        for circuit in self.circuits:
            if circuit.is_open:
                found[circuit.name] = f"{circuit.name} is down ({circuit.last_error}): no new work is taken until it is back"
        lag = self.outbox_lag()
        if lag > self.outbox_lag_bound:
            found["outbox"] = f"the oldest event waiting to be relayed is {lag:.0f} s old"
        self._checked, self._checked_at = found, time.monotonic()
        return found

    def problems(self) -> dict[str, str]:
        """What /readyz answers: the last check, and whether the process consumes now."""
        if self._checked is None:
            found = {"check": "no readiness check has finished yet"}
        elif time.monotonic() - self._checked_at > self.stale_after:
            found = {"check": f"the last readiness check is {time.monotonic() - self._checked_at:.0f} s old"}
        else:
            found = dict(self._checked)
        if not self.consuming():
            found["broker"] = "not connected to RabbitMQ with every consumer registered"
        return found


async def watch_readiness(readiness: Readiness, interval: float) -> None:
    """Keeps the readiness check and `userprov_ready` current, with or without anyone probing
    /readyz: an alert on the metric works where no kubelet probes (compose, a bare process)."""
    while True:
        try:
            await readiness.check()
            found = readiness.problems()
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
                if body.get("ready") is not None:
                    body["broker_node"] = readiness.broker_node()
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


async def _route(request_line: list[str], problems: Callable[[], dict[str, str]]) -> tuple[str, dict[str, object]]:
    path = request_line[1] if len(request_line) > 1 else ""
    if path == "/livez":
        return "200 OK", {"live": True}
    if path == "/readyz":
        found = problems()
        return ("503 Service Unavailable", {"ready": False, "problems": found}) if found else ("200 OK", {"ready": True})
    return "404 Not Found", {"error": "try /livez or /readyz"}
