"""Waiting for an outcome with a deadline, never a fixed sleep: for the demo, the benchmark and the tests."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(check: Callable[[], T | Awaitable[T]], timeout: float = 20.0, interval: float = 0.05, what: str = "") -> T:
    """Polls `check` until it returns something truthy; fails with the last value at the deadline."""
    deadline = time.monotonic() + timeout
    value: T | None = None
    while True:
        value = check()
        if asyncio.iscoroutine(value) or isinstance(value, Awaitable):
            value = await value  # type: ignore[misc]
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what or check}; last value: {value!r}")
        await asyncio.sleep(interval)
