"""/livez and /readyz tell the truth: cut a dependency and readiness flips, restore it and it
comes back."""
from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import asyncpg

from tests.integration.conftest import HEALTH_PORT, scrape
from tests.support.health import probe as probe_port
from tests.support.infra import Infra, close_worker_connections, rabbitmqctl
from tests.support.workers import WorkerProcess
from userprov import __version__
from userprov.db.connection import APPLICATION_NAME
from userprov.db.urls import database_name
from userprov_devtools.bus_client import BusClient
from userprov_devtools.waiting import eventually

READY_METRIC = re.compile(r"^userprov_ready ([0-9.]+)$", re.MULTILINE)


def ready_metric() -> str | None:
    found = READY_METRIC.search(scrape())
    return found.group(1) if found else None


def probe(path: str) -> tuple[int, dict[str, Any]]:
    return probe_port(HEALTH_PORT, path)


async def readiness() -> tuple[int, dict[str, Any]]:
    return await asyncio.to_thread(probe, "/readyz")


class TestHealth:
    async def test_live_and_ready(self, bus: BusClient) -> None:
        assert probe("/livez") == (200, {"live": True})
        assert await eventually(lambda: _ready_now(), 30) == (200, {"ready": True, "broker_node": "127.0.0.1:5672"})
        assert probe("/nothing")[0] == 404
        metrics = scrape()
        assert f'userprov_build_info{{version="{__version__}"}} 1.0' in metrics
        assert 'userprov_broker_node{node="127.0.0.1:5672"} 1.0' in metrics

    def test_the_first_line_says_where_the_worker_connects(self, workers: list[WorkerProcess], infra: Infra) -> None:
        first = json.loads(workers[0].lines()[0])
        assert first["event"] == "worker_starting" and first["version"] == __version__
        assert first["broker"] == f"127.0.0.1:5672 vhost {infra.vhost}" and first["database"].endswith("/" + infra.vhost)
        assert "smtp" in first and "guest" not in json.dumps(first) and "postgres:postgres" not in json.dumps(first)

    async def test_database_gone_and_back(self, bus: BusClient, infra: Infra) -> None:
        await eventually(lambda: _ready_now(), 30)
        database = database_name(infra.database_url)
        admin = await asyncpg.connect(infra.database_url.rsplit("/", 1)[0] + "/postgres")
        try:
            await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = $2",
                database, APPLICATION_NAME)
            status, body = await eventually(lambda: _not_ready_because("database"), 30, 0.2, what="/readyz to say database")
            assert status == 503 and "database" in body["problems"]
        finally:
            await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
            await admin.close()
        await eventually(lambda: _ready_now(), 60, 0.2, what="/readyz to come back")

    async def test_broker_refused_and_back(self, bus: BusClient, infra: Infra) -> None:
        await eventually(lambda: _ready_now(), 30)
        rabbitmqctl("clear_permissions", "-p", infra.vhost, "guest")
        try:
            close_worker_connections(infra.vhost)
            status, body = await eventually(lambda: _not_ready_because("broker"), 30, 0.2, what="/readyz to say broker")
            assert status == 503
            await eventually(lambda: ready_metric() == "0.0", 30, 0.2, what="userprov_ready 0")
        finally:
            rabbitmqctl("set_permissions", "-p", infra.vhost, "guest", ".*", ".*", ".*")
        await eventually(lambda: _ready_now(), 60, 0.2, what="/readyz to come back")
        await eventually(lambda: ready_metric() == "1.0", 30, 0.2, what="userprov_ready 1")


async def _ready_now() -> tuple[int, dict[str, Any]] | None:
    status, body = await readiness()
    return (status, body) if status == 200 else None


async def _not_ready_because(problem: str) -> tuple[int, dict[str, Any]] | None:
    status, body = await readiness()
    return (status, body) if status == 503 and problem in body.get("problems", {}) else None


class TestHostileRequests:
    async def test_garbage_and_oversized_requests_leave_it_answering(self, bus: BusClient) -> None:
        for payload in (b"\x00\xff\xfe garbage\r\n\r\n", b"GET /" + b"A" * 20_000 + b" HTTP/1.1\r\n\r\n", b"GET /readyz"):
            reader, writer = await asyncio.open_connection("127.0.0.1", HEALTH_PORT)
            writer.write(payload)
            await writer.drain()
            writer.write_eof()
            await asyncio.wait_for(reader.read(), 10)  # answered or closed, never hung
            writer.close()
        assert probe("/livez") == (200, {"live": True})
