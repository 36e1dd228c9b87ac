"""A worker process on a broker vhost and a database of its own: for tests whose messages or
faults the session's workers must not see."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

from contracts import routing
from tests.support.infra import Infra, create_infra, drop_vhost_in_background
from tests.support.workers import WorkerProcess
from userprov.db.connection import drop_database
from userprov.db.migrate import migrate
from userprov_devtools.bus_client import BusClient


@asynccontextmanager
async def isolated_worker(
    name: str, worker_env: Mapping[str, str], log_dir: Path, reach: Callable[[str], str] = str,
    brokers: Callable[[str], str] = str, database_url: str | None = None, **env: str
) -> AsyncIterator[tuple[Infra, WorkerProcess, BusClient]]:
    """One process running the four services with `worker_env` and `env`, and a bus client on
    its vhost; the worker reaches its database at `reach(url)` (through a pooler, say) and its
    broker at `brokers(url)` (several nodes, say); `database_url`: a database on another server
    than the machine's (the caller removes it); it must stop cleanly on SIGTERM at the end;
    vhost and database are dropped."""
    async with isolated_workers(name, worker_env, log_dir, [{}], reach, brokers, database_url, **env) as (infra, [worker], bus):
        yield infra, worker, bus


@asynccontextmanager
async def isolated_workers(
    name: str, worker_env: Mapping[str, str], log_dir: Path, each: Sequence[Mapping[str, str]],
    reach: Callable[[str], str] = str, brokers: Callable[[str], str] = str, database_url: str | None = None,
    record: tuple[str, ...] = ("#",), **env: str
) -> AsyncIterator[tuple[Infra, list[WorkerProcess], BusClient]]:
    """As isolated_worker, with a process for each of `each`, its own settings added to `env`
    (`name`-0, `name`-1, ...), started in that order. `record`: the events the bus records."""
    infra = create_infra()
    if database_url is not None:
        infra = replace(infra, database_url=database_url)
    await migrate(infra.database_url, create_database=True)
    shared = {**worker_env, **env, "USERPROV_AMQP_URL": brokers(infra.amqp_url), "USERPROV_DATABASE_URL": reach(infra.database_url)}
    workers = [WorkerProcess(f"{name}-{n}" if len(each) > 1 else name, routing.SERVICES, {**shared, **own}, log_dir)
               for n, own in enumerate(each)]
    bus = BusClient(infra.amqp_url, record)
    try:
        for worker in workers:
            await asyncio.to_thread(worker.start)
        await bus.start()
        yield infra, workers, bus
        assert [worker.terminate() for worker in workers] == [0] * len(workers)
    finally:
        for worker in workers:
            if worker.running:
                worker.kill()
        await bus.stop()
        drop_vhost_in_background(infra.vhost)  # the session's `infra` waits for it at its end
        if database_url is None:
            await drop_database(infra.database_url)
