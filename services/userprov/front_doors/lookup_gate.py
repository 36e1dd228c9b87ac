"""A cap on the lookups a front door process has in flight: the query it asks userprov about a
token (`scim_tokens.resolve`, `invitations.peek`) before it knows whether the token is real.
Account lookup's queue carries every tenant's lookups too: however many requests arrive, one
process adds at most this many messages to it. Past the cap a lookup waits its turn, those of
tokens that were valid before first (a tenant's cached token coming due is not held behind a
flood of made-up ones), for a bounded time; then LookupsBusy, a 503 with Retry-After.
Concurrent lookups of one key are asked once."""
from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

from prometheus_client import Counter, Gauge

from userprov.public_bus import NoAnswer

T = TypeVar("T")

IN_FLIGHT = Gauge("userprov_front_door_lookups_in_flight", "Token lookups a front door process has asked and not had answered.")
BUSY = Counter("userprov_front_door_lookups_busy", "Token lookups refused (503) after waiting their turn for the whole wait.")


class LookupsBusy(NoAnswer):
    """Too many lookups in flight for the whole wait: the door answers 503 with Retry-After."""


class LookupGate:
    def __init__(self, in_flight: int, wait_seconds: float) -> None:
        self._cap = in_flight
        self._wait = wait_seconds
        self._busy = 0
        self._turns: tuple[deque[asyncio.Future[None]], deque[asyncio.Future[None]]] = (deque(), deque())  # known first
        self._asked: dict[Hashable, asyncio.Task[Any]] = {}

    async def ask(self, key: Hashable | None, lookup: Callable[[], Awaitable[T]], known: bool = False) -> T:
        """`lookup()` once its turn came; joined to the one in flight of the same `key` (None:
        never joined). `known`: the token was valid when last asked, its turn comes first."""
        if key is None:
            return await self._in_turn(lookup, known)
        task = self._asked.get(key)
        if task is None:
            task = self._asked[key] = asyncio.ensure_future(self._in_turn(lookup, known))
            task.add_done_callback(lambda done: self._done(key, done))
        return await asyncio.shield(task)  # a request that goes away does not cancel the others' answer

    def _done(self, key: Hashable, task: asyncio.Task[Any]) -> None:
        if self._asked.get(key) is task:
            del self._asked[key]
        if not task.cancelled():
            task.exception()  # retrieved: the requests that waited for it have it, or none waits any more

    async def _in_turn(self, lookup: Callable[[], Awaitable[T]], known: bool) -> T:
        await self._turn(known)
        IN_FLIGHT.inc()
        try:
            return await lookup()
        finally:
            IN_FLIGHT.dec()
            self._release()

    async def _turn(self, known: bool) -> None:
        if self._busy < self._cap:
            self._busy += 1
            return
        loop = asyncio.get_running_loop()
        turn: asyncio.Future[None] = loop.create_future()
        turns = self._turns[0 if known else 1]
        turns.append(turn)
        late = loop.call_later(self._wait, self._too_late, turn)
        try:
            await turn
        except LookupsBusy:
            BUSY.inc()
            raise
        except BaseException:
            if turn.done() and not turn.cancelled() and turn.exception() is None:
                self._release()  # handed a place just as it was cancelled: hand it on
            raise
        finally:
            late.cancel()
            if turn in turns:
                turns.remove(turn)

    def _too_late(self, turn: asyncio.Future[None]) -> None:
        if not turn.done():
            turn.set_exception(LookupsBusy(f"{self._cap} lookups in flight for {self._wait:g} s"))

    def _release(self) -> None:
        for turns in self._turns:
            while turns:
                turn = turns.popleft()
                if not turn.done():
                    turn.set_result(None)  # its place passes on: as many in flight as before
                    return
        self._busy -= 1
