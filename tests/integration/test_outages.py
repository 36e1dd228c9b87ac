"""A dependency down for longer than the delivery limit's retries last parks nothing and loses
nothing: while PostgreSQL (or, for mailing, the SMTP server) is down the worker takes no new
work (its circuit is open, and /readyz says so), and takes it again once it is back."""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from contracts import routing
from tests.integration.conftest import address, unique
from tests.support.flows import add_users, emails_to
from tests.support.health import probe
from tests.support.infra import Infra, ready_messages
from tests.support.isolated import isolated_worker
from tests.support.smtp import RecordingSmtpServer
from tests.support.workers import WorkerProcess
from userprov.db.connection import APPLICATION_NAME
from userprov.db.urls import database_name
from userprov_devtools.bus_client import BusClient
from userprov_devtools.ports import free_port
from userprov_devtools.waiting import eventually

# Shortened so that today's retries would be used up within seconds: 2 deliveries, each retried
# in process for half a second.
SHORT_LIMITS = {
    "USERPROV_DELIVERY_LIMIT": "2",
    "USERPROV_TRANSIENT_RETRY_SECONDS": "0.5",
    "USERPROV_TRANSIENT_BACKOFF_MAX_SECONDS": "0.2",
    "USERPROV_SMTP_ATTEMPTS": "2",
    "USERPROV_SMTP_RETRY_SECONDS": "1.5",
    "USERPROV_SMTP_BACKOFF_SECONDS": "0.05",
    "USERPROV_SMTP_BACKOFF_MAX_SECONDS": "0.1",
    "USERPROV_CIRCUIT_PROBE_SECONDS": "0.5",
    "USERPROV_READY_CHECK_SECONDS": "0.5",
}
# An outage is held this long: well past what the limits above allow (twice the longest, the
# SMTP retry window; 2 deliveries retried 0.5 s each last about 1.5 s).
OUTAGE_SECONDS = 3.0
assert OUTAGE_SECONDS >= 2 * float(SHORT_LIMITS["USERPROV_SMTP_RETRY_SECONDS"])


@pytest.fixture
def own_smtp() -> Iterator[RecordingSmtpServer]:
    server = RecordingSmtpServer()
    server.start()
    yield server
    try:
        server.stop()
    except Exception:  # noqa: BLE001 - stopped by the test already
        pass


@pytest.fixture
async def outage_worker(worker_env: dict[str, str], own_smtp: RecordingSmtpServer, tmp_path: Path) -> AsyncIterator[tuple[Infra, WorkerProcess, BusClient, int]]:
    port = free_port()  # a broker vhost and database of their own: the session's workers must not see the outage
    async with isolated_worker("outage", worker_env, tmp_path, **SHORT_LIMITS, USERPROV_SMTP_PORT=str(own_smtp.port),
                               USERPROV_HEALTH_PORT=str(port)) as (infra, worker, bus):
        yield infra, worker, bus, port


def readyz(port: int) -> tuple[int, dict[str, Any]]:
    return probe(port, "/readyz")


async def not_ready_because(port: int, dependency: str) -> dict[str, Any] | None:
    status, body = await asyncio.to_thread(readyz, port)
    return body if status == 503 and dependency in body.get("problems", {}) else None


async def create_account(bus: BusClient) -> str:
    account_id = unique("acct")
    await bus.publish(routing.ACCOUNTS_UPSERT, {"account_id": account_id, "name": "Outage", "licences": {"gotomeeting": 50}})
    await eventually(lambda: bus.find(routing.ACCOUNT_UPSERTED, account_id=account_id), what="account.upserted")
    return account_id


async def parked(infra: Infra) -> int:
    """The messages in the parking queues now: nothing consumes them, so every one is ready and a
    passive queue.declare counts it (list_queues counts a quorum queue's from statistics seconds old)."""
    return sum([await ready_messages(infra.amqp_url, routing.parking_queue_name(service)) for service in routing.SERVICES])


class TestDatabaseOutage:
    async def test_longer_than_the_delivery_limit_allows(self, outage_worker: tuple[Infra, WorkerProcess, BusClient, int],
                                                         own_smtp: RecordingSmtpServer) -> None:
        infra, worker, bus, port = outage_worker
        account_id = await create_account(bus)
        database = database_name(infra.database_url)
        admin = await asyncpg.connect(infra.database_url.rsplit("/", 1)[0] + "/postgres")
        people = [address(f"db-outage{n}") for n in range(12)]
        try:
            await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
            await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = $2",
                                database, APPLICATION_NAME)
            commands = [await bus.publish(routing.USERS_ADD, {"account_id": account_id, "users": [
                {"first_name": "Out", "last_name": f"Age{n}", "email": person}]}) for n, person in enumerate(people)]
            held_until = time.monotonic() + OUTAGE_SECONDS
            while time.monotonic() < held_until:  # the outage lasts; nothing may park meanwhile
                assert await parked(infra) == 0
                await asyncio.sleep(0.5)
            await asyncio.to_thread(worker.wait_for_log, '"circuit_open"', 10)
            body = await eventually(lambda: not_ready_because(port, "database"), 10, 0.2, what="/readyz to say the database is down")
            assert "no new work is taken" in body["problems"]["database"]
        finally:
            await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
            await admin.close()
        for command_id in commands:
            await eventually(lambda c=command_id: bus.find(routing.USERS_ADD_COMPLETED, command_id=c), 60,
                             what="every command completed after the outage")
        for person in people:
            await emails_to(own_smtp, person)
        await asyncio.to_thread(worker.wait_for_log, '"circuit_closed"', 30)
        await eventually(lambda: asyncio.to_thread(lambda: readyz(port)[0] == 200), 30, 0.2, what="ready again")
        assert await parked(infra) == 0
        assert not bus.find(routing.COMMAND_REJECTED)


class TestSmtpOutage:
    async def test_longer_than_the_smtp_retry_window(self, outage_worker: tuple[Infra, WorkerProcess, BusClient, int],
                                                       own_smtp: RecordingSmtpServer) -> None:
        infra, worker, bus, port = outage_worker
        account_id = await create_account(bus)
        own_smtp.stop()
        people = [address(f"smtp-outage{n}") for n in range(8)]
        try:
            for n, person in enumerate(people):
                await bus.publish(routing.USERS_ADD, {"account_id": account_id, "users": [
                    {"first_name": "Mail", "last_name": f"Down{n}", "email": person}]})
            held_until = time.monotonic() + OUTAGE_SECONDS
            while time.monotonic() < held_until:  # no invitation may fail meanwhile
                assert not bus.find(routing.INVITATION_FAILED, account_id=account_id)
                await asyncio.sleep(0.5)
            body = await eventually(lambda: not_ready_because(port, "smtp"), 10, 0.2, what="/readyz to say SMTP is down")
            assert "no new work is taken" in body["problems"]["smtp"]
            # the other services of the process go on: users are added, queries answered
            late = address("smtp-outage-late")
            completed = await add_users(bus, {"account_id": account_id, "users": [{"first_name": "Late", "last_name": "Comer", "email": late}]})
            assert completed.body["results"][0]["outcome"] == "accepted"
            assert (await bus.query(routing.ACCOUNTS_GET, {"account_id": account_id}, timeout=10))["found"]
            people.append(late)
        finally:
            own_smtp.restart()
        for person in people:
            await emails_to(own_smtp, person)
        await eventually(lambda: asyncio.to_thread(lambda: readyz(port)[0] == 200), 30, 0.2, what="ready again")
        assert not bus.find(routing.INVITATION_FAILED, account_id=account_id)
        assert len(bus.find(routing.INVITATION_SENT, account_id=account_id)) == len(people)
        assert await parked(infra) == 0
