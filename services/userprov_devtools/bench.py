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


async def run_bench(settings: Settings, users: int, batch: int, single: bool, rate: float, processes: int) -> BenchResult:
    await migrate(settings.database_url)
    arrivals: dict[str, float] = {}
    lock = threading.Lock()

    def arrived(address: str, at: float) -> None:
        with lock:
            arrivals.setdefault(address, at)

    controller = start_mail_catcher(settings.smtp_host, settings.smtp_port, CatchingHandler(on_email=arrived))
    env = {**os.environ, "USERPROV_LOG_LEVEL": "WARNING"}
    workers = [subprocess.Popen([sys.executable, "-m", "userprov", "run"], env=env) for _ in range(processes)]
    bus = BusClient(settings.amqp_url)
    try:
        await bus.start()
        await bus.wait_for_workers()
        run = f"bench-{int(time.time())}"
        await bus.publish(routing.ACCOUNTS_UPSERT, {"account_id": run, "name": "Benchmark", "licences": {"gotomeeting": users}})
        await eventually(lambda: bus.find(routing.ACCOUNT_UPSERTED, account_id=run), 30, what="account.upserted")
        people = [f"user{n}.{run}@bench.example.com" for n in range(users)]
        published: dict[str, float] = {}
        size = 1 if single else batch
        started = time.time()
        for number, start in enumerate(range(0, users, size)):
            chunk = people[start : start + size]
            if single:
                await asyncio.sleep(max(0.0, started + number / rate - time.time()))
            await bus.publish(routing.USERS_ADD, {
                "account_id": run, "products": ["gotomeeting"],
                "pasted": "\n".join(f"Bench User{n} {email}" for n, email in enumerate(chunk, start))})
            now = time.time()
            published.update((email, now) for email in chunk)
        await eventually(lambda: len(arrivals) >= users and all(p in arrivals for p in people), max(120, users / 20), 0.2,
                         what="every email")
        last = max(arrivals[p] for p in people)
        return BenchResult(users, last - started, [arrivals[p] - published[p] for p in people])
    finally:
        await bus.stop()
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(60)
        controller.stop()
