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
import urllib.request
from dataclasses import dataclass
from functools import partial

from contracts import routing
from userprov.db.connection import drop_database
from userprov.db.migrate import migrate
from userprov.db.urls import database_name, with_database
from userprov.runtime.lanes import Lane
from userprov.settings import Settings
from userprov_devtools.bus_client import BusClient
from userprov_devtools.mail_catcher import CatchingHandler, start_mail_catcher
from userprov_devtools.ports import free_port
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


class Rig:
    """Worker processes, a mail catcher that notes when each email arrived, and a bus client."""

    def __init__(self, settings: Settings, processes: int, env: dict[str, str] | None = None, lanes: bool = False) -> None:
        """`processes`: how many processes run all four services; with USERPROV_BENCH_SERVICES set
        (e.g. "user-creation,account-lookup,invitation-mailing,invitation-mailing"), one process per
        name instead. `lanes`: one more process, in the interactive lane, and the others in the
        bulk lane (userprov.runtime.lanes)."""
        self._settings = settings
        self._processes = processes
        self._lanes = lanes
        self._database_url = settings.database_url
        self._env = env or {}
        self._lock = threading.Lock()
        self._waiters: dict[str, asyncio.Future[None]] = {}
        self.arrivals: dict[str, float] = {}
        self.bus = BusClient(settings.amqp_url, record=(routing.ACCOUNT_UPSERTED,))  # not every event: the bench measures the workers

    async def __aenter__(self) -> Rig:
        services = [[name] for name in os.environ.get("USERPROV_BENCH_SERVICES", "").split(",") if name]
        if services or self._processes:  # its own workers get a database of their own, made anew: earlier runs' rows slow each next one
            self._database_url = with_database(self._database_url, database_name(self._database_url) + "_bench")
            await drop_database(self._database_url)
        await migrate(self._database_url, create_database=True)
        loop = asyncio.get_running_loop()

        def arrived(address: str, at: float) -> None:  # in the SMTP server's thread
            with self._lock:
                self.arrivals.setdefault(address, at)
                waiter = self._waiters.pop(address, None)
            if waiter is not None:
                loop.call_soon_threadsafe(_settle, waiter)

        self._controller = start_mail_catcher(self._settings.smtp_host, self._settings.smtp_port, CatchingHandler(on_email=arrived))
        env = {**os.environ, "USERPROV_LOG_LEVEL": "WARNING", **self._env, "USERPROV_DATABASE_URL": self._database_url}
        lanes = [Lane.INTERACTIVE] + [Lane.BULK] * self._processes if self._lanes else [self._settings.lane] * self._processes
        runs = [(names, self._settings.lane) for names in services] or [([], lane) for lane in lanes]
        health_ports = [free_port() for _ in runs]
        self._workers = [
            subprocess.Popen([sys.executable, "-m", "userprov", "run", *names],
                             env={**env, "USERPROV_LANE": lane, "USERPROV_HEALTH_PORT": str(port)})
            for (names, lane), port in zip(runs, health_ports, strict=True)
        ]
        await self.bus.start()
        await self.bus.wait_for_workers()
        for port in health_ports:  # all of them: one still starting would take the cores from what is measured
            await eventually(partial(asyncio.to_thread, _ready, port), 60, 0.1, what=f"the worker with health port {port} ready")
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.bus.stop()
        for worker in self._workers:
            worker.terminate()
        for worker in self._workers:
            worker.wait(60)
        self._controller.stop()

    @property
    def database_url(self) -> str:
        return self._database_url

    async def account(self, name: str, seats: int) -> str:
        account_id = f"{name}-{int(time.time() * 1000)}"
        await self.bus.publish(routing.ACCOUNTS_UPSERT, {"account_id": account_id, "name": name, "licences": {"gotomeeting": seats}})
        await eventually(lambda: self.bus.find(routing.ACCOUNT_UPSERTED, account_id=account_id), 30, what="account.upserted")
        return account_id

    def arrival(self, address: str) -> asyncio.Future[None]:
        """Done when an email to the address has arrived (at once if one has)."""
        future = asyncio.get_running_loop().create_future()
        with self._lock:
            if address in self.arrivals:
                future.set_result(None)
            else:
                self._waiters[address] = future
        return future

    async def add(self, account_id: str, people: list[str], first: int = 0, headers: dict[str, str] | None = None) -> float:
        """One users.add of these people; the time it was published."""
        await self.bus.publish(routing.USERS_ADD, {
            "account_id": account_id, "products": ["gotomeeting"],
            "pasted": "\n".join(f"Bench User{n} {email}" for n, email in enumerate(people, first))}, headers=headers)
        return time.time()

    async def all_emailed(self, people: list[str]) -> float:
        """The arrival time of the last of their emails, once every one has arrived."""
        arrived = 0  # people[:arrived] have their email: each poll goes on from there, not from the start

        def every_one() -> bool:
            nonlocal arrived
            while arrived < len(people) and people[arrived] in self.arrivals:
                arrived += 1
            return arrived == len(people)

        await eventually(every_one, max(120, len(people) / 20), 0.2, what="every email")
        return max(self.arrivals[p] for p in people)


def _ready(health_port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{health_port}/readyz", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def run_bench(settings: Settings, load: Load, processes: int, lanes: bool = False) -> BenchResult:
    async with Rig(settings, processes, lanes=lanes) as rig:
        run = await rig.account("bench", load.users)
        people = [f"user{n}.{run}@bench.example.com" for n in range(load.users)]
        published: dict[str, float] = {}

        async def add(chunk: list[str], first: int) -> None:
            at = await rig.add(run, chunk, first)
            published.update((email, at) for email in chunk)

        started = time.time()
        if load.single and load.in_flight:
            queue = list(enumerate(people))

            async def one_at_a_time() -> None:
                while queue:
                    number, person = queue.pop()
                    arrival = rig.arrival(person)
                    await add([person], number)
                    await asyncio.wait_for(arrival, 60)

            await asyncio.gather(*(one_at_a_time() for _ in range(load.in_flight)))
        else:
            size = 1 if load.single else load.batch
            for number, start in enumerate(range(0, load.users, size)):
                if load.single:
                    await asyncio.sleep(max(0.0, started + number / load.rate - time.time()))
                await add(people[start : start + size], start)
        last = await rig.all_emailed(people)
        return BenchResult(load.users, last - started, [rig.arrivals[p] - published[p] for p in people])
