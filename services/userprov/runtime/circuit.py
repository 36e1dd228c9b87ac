"""Circuit breakers for the dependencies a worker cannot work without (PostgreSQL; SMTP for
mailing). A fault that may mean the dependency is down is reported; a probe then tries the
dependency, and only if the probe fails too does the circuit open. While it is open the
process takes no new work that needs the dependency (its consumers are paused, its schedulers
claim nothing), so an outage of any length parks nothing and uses up no message's deliveries;
the probe tries again every few seconds and closes the circuit when the dependency answers."""
from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Awaitable, Callable

import structlog

from userprov.runtime import metrics

log = structlog.get_logger()

Probe = Callable[[], Awaitable[None]]  # raises unless the dependency answers


class Circuit:
    def __init__(self, name: str, probe: Probe, probe_seconds: float, probe_timeout: float = 5.0) -> None:
        self.name = name
        self._probe = probe
        self._probe_seconds = probe_seconds
        self._probe_timeout = probe_timeout
        self._closed = asyncio.Event()
        self._closed.set()
        self._checking: asyncio.Task[None] | None = None
        self._verdict = asyncio.Event()
        self._listeners: list[Callable[[bool], None]] = []
        self.last_error = ""
        metrics.CIRCUIT_OPEN.labels(name).set(0)

    @property
    def is_open(self) -> bool:
        return not self._closed.is_set()

    def on_change(self, listener: Callable[[bool], None]) -> None:
        """`listener(True)` when the circuit opens, `listener(False)` when it closes again."""
        self._listeners.append(listener)

    def report(self, error: BaseException) -> None:
        """A fault that may mean the dependency is down: checked by a probe, unless one is under way."""
        if self._checking is None or self._checking.done():
            self.last_error = type(error).__name__
            self._verdict = asyncio.Event()
            # a context of its own: the probe's log lines are not about the message whose fault started it
            self._checking = asyncio.create_task(self._check(self._verdict), name=f"{self.name} circuit", context=contextvars.Context())

    async def down(self, error: BaseException) -> bool:
        """Reports the fault and waits for the probe's verdict: True when the dependency is down."""
        if self.is_open:
            return True
        self.report(error)
        await self._verdict.wait()
        return self.is_open

    async def wait_closed(self) -> None:
        await self._closed.wait()

    def stop(self) -> None:
        if self._checking is not None:
            self._checking.cancel()

    async def _answers(self) -> bool:
        try:
            async with asyncio.timeout(self._probe_timeout):
                await self._probe()
            return True
        except Exception as error:  # noqa: BLE001 - any failure of the probe means down
            self.last_error = type(error).__name__
            return False

    async def _check(self, verdict: asyncio.Event) -> None:
        try:
            answered = await self._answers()
            if not answered:
                self._closed.clear()
                metrics.CIRCUIT_OPEN.labels(self.name).set(1)
                log.warning("circuit_open", dependency=self.name, error=self.last_error)
                self._tell(True)
        finally:
            verdict.set()
        if answered:
            return
        opened = time.monotonic()
        while True:
            await asyncio.sleep(self._probe_seconds)
            if await self._answers():
                break
        self._closed.set()
        metrics.CIRCUIT_OPEN.labels(self.name).set(0)
        log.info("circuit_closed", dependency=self.name, open_seconds=round(time.monotonic() - opened, 1))
        self._tell(False)

    def _tell(self, is_open: bool) -> None:
        for listener in self._listeners:
            try:
                listener(is_open)
            except Exception:  # noqa: BLE001 - a listener's fault must not keep the circuit as it is
                log.exception("circuit_listener_failed", dependency=self.name)
