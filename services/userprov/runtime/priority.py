"""Small work first, within a process. Someone who adds a few people waits for the result; a
paste of thousands is measured in minutes. While a small command is in hand in this process, a
large one holds before its next slice of CPU work (at most MAX_HOLD_SECONDS at a time), so that
the small one has the event loop first. (The schedulers do not hold their batches: measured,
it cost a batch 5-10 % of its throughput beside a stream of small adds for no gain the express
lane did not already give.)"""
from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

MAX_HOLD_SECONDS = 0.02


class Priority:
    def __init__(self) -> None:
        self._interactive = 0
        self._clear: asyncio.Event | None = None

    @property
    def busy(self) -> bool:
        """Interactive work is in hand: bulk work should hold."""
        return self._interactive > 0

    @contextmanager
    def interactive(self) -> Iterator[None]:
        self._interactive += 1
        try:
            yield
        finally:
            self.done()

    def done(self) -> None:
        self._interactive -= 1
        if not self._interactive and self._clear is not None:
            self._clear.set()

    async def bulk_step(self) -> None:
        """Returns at once when no interactive work is in hand, else when there is none, or after
        MAX_HOLD_SECONDS (bulk work is slowed, never stopped)."""
        if not self._interactive:
            return
        if self._clear is None or self._clear.is_set():
            self._clear = asyncio.Event()
        try:
            await asyncio.wait_for(self._clear.wait(), MAX_HOLD_SECONDS)
        except TimeoutError:
            pass


priority = Priority()  # one per process: the event loop it guards is the process's
