"""asyncio helpers."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


async def first_of(*awaitables: Awaitable[object]) -> None:
    """Returns when the first of them is done; the others are cancelled."""
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def finish_or_cancel(tasks: Iterable[asyncio.Task[Any]], timeout: float) -> bool:
    """Waits up to `timeout` for the tasks, then cancels those still running; True when all
    finished in time."""
    pending = set(tasks)
    if not pending:
        return True
    _, not_done = await asyncio.wait(pending, timeout=timeout)
    for task in not_done:
        task.cancel()
    await asyncio.gather(*not_done, return_exceptions=True)
    return not not_done


async def map_in_slices(
    function: Callable[[T], R], items: Sequence[T], pause: Callable[[], Awaitable[None]], slice_size: int = 100
) -> list[R]:
    """`function` of each item, awaiting `pause` after each slice: CPU work on a 10,000-row command
    must not hold the event loop (and every other account's messages) for a third of a second."""
    results: list[R] = []
    for start in range(0, len(items), slice_size):
        results += [function(item) for item in items[start : start + slice_size]]
        if start + slice_size < len(items):
            await pause()
    return results
