"""Small work first, within a process. Someone who adds a few people waits for the result; a
paste of thousands is measured in minutes. While any interactive work is in hand in this
process, bulk work holds before its next step (at most MAX_HOLD_SECONDS at a time), so that the
interactive work has the event loop, the database pool and the SMTP connections first. Work in
progress is never interrupted, only the next step of bulk work waits. Between processes the
kernel decides (userprov.runtime.lanes)."""
from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager

MAX_HOLD_SECONDS = 0.02


class Priority:
    def __init__(self) -> None:
        self._interactive = 0
        self._clear: asyncio.Event | None = None
        self._on_clear: list[Callable[[], None]] = []

    @property
    def busy(self) -> bool:
        """Interactive work is in hand: bulk work should hold."""
        return self._interactive > 0

    @contextmanager
    def interactive(self) -> Iterator[None]:
        self.announce()
        try:
            yield
        finally:
            self.done()

    def announce(self) -> None:
        """Interactive work is coming (announced, not yet started): bulk work holds from now."""
        self._interactive += 1

    def done(self) -> None:
        """An announced piece of interactive work is finished (or given up)."""
        self._interactive -= 1
        if not self._interactive:
            if self._clear is not None:
                self._clear.set()
            callbacks, self._on_clear = self._on_clear, []
            for callback in callbacks:
                callback()

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

    def when_clear(self, callback: Callable[[], None], hold: float = MAX_HOLD_SECONDS) -> None:
        """Calls `callback` once no interactive work is in hand, or after `hold` seconds."""
        self._on_clear.append(callback)
        asyncio.get_running_loop().call_later(hold, self._release, callback)

    def _release(self, callback: Callable[[], None]) -> None:
        if callback in self._on_clear:
            self._on_clear.remove(callback)
            callback()


priority = Priority()  # one per process: the event loop it guards is the process's
