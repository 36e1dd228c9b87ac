"""`userprov bench-neighbours`: what one account's large batch costs another account's single adds.

Four phases against the same workers: account B adds people one at a time alone; account A
adds a batch alone; then A adds the same batch again while B adds one person every `interval`
seconds until A's last email arrives; then A adds it alone once more. A's throughput alone is
the mean of the runs before and after, so that what changes over the run (the tables grow,
autovacuum starts) weighs on neither side. B's latency is from the publish of its one-person
command to its email's arrival; A's throughput from its first publish to its last email."""
from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass

import asyncpg

from userprov.settings import Settings
from userprov_devtools.bench import Rig

MAX_ROWS = 10_000  # per users.add


@dataclass(frozen=True)
class NeighbourResult:
    batch: int
    b_alone: list[float]
    b_beside: list[float]
    a_alone: tuple[float, float]  # users/s, before and after the run beside B
    a_beside: float

    def report(self) -> str:
        def pcts(values: list[float]) -> str:
            q = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else values * 99
            return f"p50 {q[49] * 1000:.0f} ms  p99 {q[98] * 1000:.0f} ms  max {max(values) * 1000:.0f} ms  (n={len(values)})"

        alone = statistics.fmean(self.a_alone)
        return (
            f"B alone:                {pcts(self.b_alone)}\n"
            f"B beside A's {self.batch}: {pcts(self.b_beside)}\n"
            f"A alone: {alone:.0f} users/s (before {self.a_alone[0]:.0f}, after {self.a_alone[1]:.0f})"
            f"   A beside B: {self.a_beside:.0f} users/s   ({100 * self.a_beside / alone:.0f} % of alone)"
        )


async def run_neighbours(settings: Settings, batch: int, processes: int, interval: float, singles_alone: int = 40,
                         lanes: bool = False) -> NeighbourResult:
    async with Rig(settings, processes, lanes=lanes) as rig:
        b = await rig.account("neighbour-b", singles_alone + int(300 / interval) + 1000)
        numbers = iter(range(10**9))

        async def one_b() -> float:
            person = f"b{next(numbers)}.{b}@bench.example.com"
            arrival = rig.arrival(person)
            published = await rig.add(b, [person])
            await asyncio.wait_for(arrival, 120)
            return rig.arrivals[person] - published

        await one_b()  # warm-up
        b_alone = [await one_b() for _ in range(singles_alone)]
        a_alone = await _batch(rig, batch)

        a_done = asyncio.Event()
        b_beside: list[float] = []
        in_flight: set[asyncio.Task[None]] = set()

        async def b_meanwhile() -> None:
            while not a_done.is_set():
                task = asyncio.create_task(_note(one_b(), b_beside))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
                await asyncio.sleep(interval)

        adding = asyncio.create_task(b_meanwhile())
        a_beside = await _batch(rig, batch)
        a_done.set()
        await adding
        await asyncio.gather(*in_flight)
        a_alone_after = await _batch(rig, batch)
        return NeighbourResult(batch, b_alone, b_beside, (a_alone, a_alone_after), a_beside)


async def _note(latency: object, into: list[float]) -> None:
    into.append(await latency)  # type: ignore[misc]


async def _batch(rig: Rig, size: int) -> float:
    """Adds `size` people to a new account in commands of at most MAX_ROWS; users/s. The
    database is vacuumed first, as autovacuum would have done between runs (where it is off,
    the dead rows of the runs before slow each next one)."""
    conn = await asyncpg.connect(rig.database_url)
    try:
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    account = await rig.account("neighbour-a", size)
    people = [f"a{n}.{account}@bench.example.com" for n in range(size)]
    started = time.time()
    for start in range(0, size, MAX_ROWS):
        await rig.add(account, people[start : start + MAX_ROWS], start)
    return size / (await rig.all_emailed(people) - started)
