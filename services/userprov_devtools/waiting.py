"""Waiting for an outcome with a deadline, never a fixed sleep: for the demo, the benchmark and the tests."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

# Without an interval given, the polls come fast at first and slow down to this: most outcomes
# arrive within tens of milliseconds, and a wait that lasts polls no more often than before.
FIRST_INTERVAL, LONGEST_INTERVAL, GROWTH = 0.005, 0.05, 1.25


async def eventually(check: Callable[[], T | Awaitable[T]], timeout: float = 20.0, interval: float | None = None,
                     what: str = "") -> T:
    """Polls `check` until it returns something truthy; fails with the last value at the deadline.
    `interval`: between polls (by default from 5 ms, growing by a quarter each poll, up to 50 ms)."""
    deadline = time.monotonic() + timeout
    pause = interval if interval is not None else FIRST_INTERVAL
    value: T | None = None
    while True:
        value = check()
        if asyncio.iscoroutine(value) or isinstance(value, Awaitable):
            value = await value  # type: ignore[misc]
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what or check}; last value: {value!r}")
        await asyncio.sleep(pause)
        if interval is None:
            pause = min(pause * GROWTH, LONGEST_INTERVAL)
