"""Small work first, within a process. Someone who adds a few people waits for the result; a
paste of thousands is measured in minutes. While any interactive work is in hand in this
process, bulk work holds before its next step (at most MAX_HOLD_SECONDS at a time), so that the
interactive work has the event loop, the database pool and the SMTP connections first. Work in
progress is never interrupted, only the next step of bulk work waits. In lanes, the same holds
across the processes of a host (userprov.runtime.host_priority)."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from userprov.runtime.host_priority import HostPriority
from userprov.runtime.metrics import BULK_HELD_FOR_HOST

MAX_HOLD_SECONDS = 0.02
# Held for another process, bulk work waits longer: a small add beside a batch takes 15-30 ms
# there, and what the bulk lane starts meanwhile competes with it in PostgreSQL and the SMTP server.
HOST_MAX_HOLD_SECONDS = 0.05
# Holds for other processes take at most this share of each second, summed over this process's
# holds: a stream of small adds slows a batch by at most about a quarter, and never starves it.
HOST_HOLD_SHARE = 0.25
HOST_POLL_SECONDS = 0.001  # how often a bulk step held for another process looks again
# How long an interactive process still says it is busy once its work in hand is done: a small
# add's steps (its transaction, then its email) follow one another with a moment between, in
# which the bulk lane would otherwise start a step of its own.
HOST_LINGER_SECONDS = 0.005


class Priority:
    def __init__(self) -> None:
        self._interactive = 0
        self._clear: asyncio.Event | None = None
        self._on_clear: list[Callable[[], None]] = []
        self._tells: HostPriority | None = None  # an interactive lane's: says when it has work in hand
        self._hears: HostPriority | None = None  # a bulk lane's: holds for the interactive processes
        self._clearing: asyncio.TimerHandle | None = None
        self._window_start = 0.0  # of the second whose host holds are summed in _held_in_window
        self._held_in_window = 0.0

    def tell_host(self, host: HostPriority) -> None:
        """In an interactive process: the bulk processes of the host hold while it has work in hand."""
        self._tells = host

    def hear_host(self, host: HostPriority) -> None:
        """In a bulk process: bulk work holds while an interactive process of the host has work in hand."""
        self._hears = host

    @property
    def busy(self) -> bool:
        """Interactive work is in hand: bulk work should hold."""
        return self._interactive > 0 or self._elsewhere()

    def _tell_clear(self) -> None:
        self._clearing = None
        if self._tells is not None:
            self._tells.clear()

    def _elsewhere(self) -> bool:
        """Whether to hold for another process's work in hand: if this second's share of holds is
        not spent."""
        if self._hears is None:
            return False
        now = time.monotonic()
        if now - self._window_start >= 1.0:
            self._window_start, self._held_in_window = now, 0.0
        return self._held_in_window < HOST_HOLD_SHARE and self._heard_busy()

    def _heard_busy(self) -> bool:
        """An interactive process of the host has work in hand (the share aside: a hold begun goes on)."""
        return self._hears is not None and self._hears.interactive_elsewhere()

    def _held_for_host(self, seconds: float) -> None:
        self._held_in_window += seconds
        BULK_HELD_FOR_HOST.inc(seconds)

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
        if self._tells is not None:
            if self._clearing is not None:
                self._clearing.cancel()
                self._clearing = None
            self._tells.busy()  # each piece renews the mark: a stream of them is never taken for stale

    def done(self) -> None:
        """An announced piece of interactive work is finished (or given up)."""
        self._interactive -= 1
        if not self._interactive:
            if self._tells is not None:
                self._clearing = asyncio.get_running_loop().call_later(HOST_LINGER_SECONDS, self._tell_clear)
            if self._clear is not None:
                self._clear.set()
            callbacks, self._on_clear = self._on_clear, []
            for callback in callbacks:
                callback()

    async def bulk_step(self) -> None:
        """Returns at once when no interactive work is in hand, else when there is none, or after
        MAX_HOLD_SECONDS (HOST_MAX_HOLD_SECONDS for another process's): bulk work is slowed,
        never stopped."""
        if not self._interactive:
            if self._elsewhere():
                await self._hold_for_host()
            return
        if self._clear is None or self._clear.is_set():
            self._clear = asyncio.Event()
        try:
            await asyncio.wait_for(self._clear.wait(), MAX_HOLD_SECONDS)
        except TimeoutError:
            pass

    async def _hold_for_host(self) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        while self._heard_busy() and loop.time() < started + HOST_MAX_HOLD_SECONDS:
            await asyncio.sleep(HOST_POLL_SECONDS)
        self._held_for_host(loop.time() - started)

    def when_clear(self, callback: Callable[[], None], hold: float = MAX_HOLD_SECONDS) -> None:
        """Calls `callback` once no interactive work is in hand, or after `hold` seconds."""
        loop = asyncio.get_running_loop()
        if not self._interactive:  # held for another process: looked at again until clear
            self._watch_host(callback, loop.time(), loop.time() + HOST_MAX_HOLD_SECONDS)
            return
        self._on_clear.append(callback)
        loop.call_later(hold, self._release, callback)

    def _watch_host(self, callback: Callable[[], None], started: float, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        if self._heard_busy() and loop.time() < deadline:
            loop.call_later(HOST_POLL_SECONDS, self._watch_host, callback, started, deadline)
        else:
            self._held_for_host(loop.time() - started)
            callback()

    def _release(self, callback: Callable[[], None]) -> None:
        if callback in self._on_clear:
            self._on_clear.remove(callback)
            callback()


priority = Priority()  # one per process: the event loop it guards is the process's
