"""`userprov bench`: end-to-end throughput and latency against real workers and a local SMTP server.

Users/s counts from the first publish to the last email accepted by SMTP; a user's latency is
from the publish of the command that holds them to their email's arrival."""
from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from contracts import routing
from userprov.db.migrate import migrate
from userprov.settings import Settings
from userprov_devtools.bus_client import BusClient
from userprov_devtools.mail_catcher import CatchingHandler, start_mail_catcher
from userprov_devtools.waiting import eventually


@dataclass(frozen=True)
class BenchResult:
    users: int
    seconds: float
    latencies: list[float]

    def report(self) -> str:
        ordered = sorted(self.latencies)

        def pct(p: float) -> float:
            return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] * 1000

        return (
            f"users: {self.users}  cores: {os.cpu_count()}  wall: {self.seconds:.2f}s  "
            f"throughput: {self.users / self.seconds:.1f} users/s\n"
            f"latency ms  p50: {pct(50):.0f}  p90: {pct(90):.0f}  p99: {pct(99):.0f}  max: {ordered[-1] * 1000:.0f}  "
            f"mean: {statistics.fmean(ordered) * 1000:.0f}"
        )


@dataclass(frozen=True)
class Load:
    """Commands of `batch` users all at once; or, with `single`, one-user commands, either at
    `rate` per second (open loop) or `in_flight` at a time, each next one published when an
    earlier one's email arrived (closed loop)."""

    users: int
    batch: int = 1000
    single: bool = False
    rate: float = 50.0
    in_flight: int | None = None


async def run_bench(settings: Settings, load: Load, processes: int) -> BenchResult:
    await migrate(settings.database_url)
    loop = asyncio.get_running_loop()
    arrivals: dict[str, float] = {}
    waiters: dict[str, asyncio.Future[None]] = {}
    lock = threading.Lock()

    def arrived(address: str, at: float) -> None:  # in the SMTP server's thread
        with lock:
            arrivals.setdefault(address, at)
            waiter = waiters.pop(address, None)
        if waiter is not None:
            loop.call_soon_threadsafe(lambda: waiter.done() or waiter.set_result(None))

    controller = start_mail_catcher(settings.smtp_host, settings.smtp_port, CatchingHandler(on_email=arrived))
    env = {**os.environ, "USERPROV_LOG_LEVEL": "WARNING"}
    workers = [subprocess.Popen([sys.executable, "-m", "userprov", "run"], env=env) for _ in range(processes)]
    bus = BusClient(settings.amqp_url, record=(routing.ACCOUNT_UPSERTED,))  # not every event: the bench measures the workers
    try:
        await bus.start()
        await bus.wait_for_workers()
        run = f"bench-{int(time.time())}"
        await bus.publish(routing.ACCOUNTS_UPSERT, {"account_id": run, "name": "Benchmark", "licences": {"gotomeeting": load.users}})
        await eventually(lambda: bus.find(routing.ACCOUNT_UPSERTED, account_id=run), 30, what="account.upserted")
        people = [f"user{n}.{run}@bench.example.com" for n in range(load.users)]
        published: dict[str, float] = {}

        async def add(chunk: list[str], first: int) -> None:
            await bus.publish(routing.USERS_ADD, {
                "account_id": run, "products": ["gotomeeting"],
                "pasted": "\n".join(f"Bench User{n} {email}" for n, email in enumerate(chunk, first))})
            now = time.time()
            published.update((email, now) for email in chunk)

        started = time.time()
        if load.single and load.in_flight:
            queue = list(enumerate(people))

            async def one_at_a_time() -> None:
                while queue:
                    number, person = queue.pop()
                    with lock:
                        arrival = waiters[person] = loop.create_future()
                    await add([person], number)
                    await asyncio.wait_for(arrival, 60)

            await asyncio.gather(*(one_at_a_time() for _ in range(load.in_flight)))
        else:
            size = 1 if load.single else load.batch
            for number, start in enumerate(range(0, load.users, size)):
                if load.single:
                    await asyncio.sleep(max(0.0, started + number / load.rate - time.time()))
                await add(people[start : start + size], start)
        await eventually(lambda: len(arrivals) >= load.users and all(p in arrivals for p in people), max(120, load.users / 20), 0.2,
                         what="every email")
        last = max(arrivals[p] for p in people)
        return BenchResult(load.users, last - started, [arrivals[p] - published[p] for p in people])
    finally:
        await bus.stop()
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(60)
        controller.stop()
