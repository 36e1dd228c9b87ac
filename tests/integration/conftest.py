from __future__ import annotations

import re
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from contracts import routing
from tests.support.broker_users import LINK_HANDLER_WRITE, broker_user
from tests.support.infra import Infra, create_infra, drop_vhost, finish_in_background
from tests.support.smtp import RecordingSmtpServer
from tests.support.workers import WorkerProcess
from userprov.db.connection import drop_database
from userprov.db.migrate import migrate
from userprov_devtools.bus_client import BusClient
from userprov_devtools.ports import free_port
from userprov_devtools.waiting import eventually

pytestmark = pytest.mark.integration
METRICS_PORT = free_port()
HEALTH_PORT = free_port()
UNMASKED_EMAIL = re.compile(r"[A-Za-z0-9._%+-]{2,}@[A-Za-z0-9-]+\.[A-Za-z]")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session", autouse=True)
def cleanups_in_background() -> Iterator[None]:
    """The tests' vhosts and broker users are dropped without waiting (rabbitmqctl_in_background):
    at the session's end, every such clean-up has ended, and succeeded."""
    yield
    finish_in_background()


@pytest.fixture(scope="session")
def smtp() -> Iterator[RecordingSmtpServer]:
    server = RecordingSmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
async def infra() -> AsyncIterator[Infra]:
    infra = create_infra()
    await migrate(infra.database_url, create_database=True)
    yield infra
    drop_vhost(infra.vhost)
    await drop_database(infra.database_url)


@pytest.fixture(scope="session")
def worker_env(infra: Infra, smtp: RecordingSmtpServer) -> dict[str, str]:
    return {
        "USERPROV_AMQP_URL": infra.amqp_url,
        "USERPROV_DATABASE_URL": infra.database_url,
        "USERPROV_SMTP_PORT": str(smtp.port),
        "USERPROV_LINK_BASE_URL": "https://links.example.com/invitation",
        "USERPROV_SMTP_BACKOFF_SECONDS": "0.05",
        "USERPROV_SMTP_BACKOFF_MAX_SECONDS": "0.2",
        "USERPROV_SMTP_ATTEMPTS": "3",
        "USERPROV_SMTP_TIMEOUT_SECONDS": "2",
        "USERPROV_DELIVERY_LIMIT": "5",
        "USERPROV_RESEND_COOLDOWN_SECONDS": "2",
        "USERPROV_TRANSFER_TOKEN_TTL_SECONDS": "259200",
        "USERPROV_DATABASE_POOL_SIZE": "8",
        "USERPROV_LOG_JSON": "true",
        "USERPROV_TRANSIENT_RETRY_SECONDS": "60",
        "USERPROV_SHUTDOWN_GRACE_SECONDS": "10",
        "USERPROV_LOG_LEVEL": "INFO",
        "USERPROV_QUEUE_WATCH_SECONDS": "1",
    }


@pytest.fixture(scope="session")
def workers(worker_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[WorkerProcess]]:
    """Two processes running all four services, sharing the queues."""
    log_dir: Path = tmp_path_factory.mktemp("worker-logs")
    processes = [
        WorkerProcess(
            "a", routing.SERVICES, {**worker_env, "USERPROV_METRICS_PORT": str(METRICS_PORT), "USERPROV_HEALTH_PORT": str(HEALTH_PORT)},
            log_dir,
        ),
        WorkerProcess("b", routing.SERVICES, worker_env, log_dir),
    ]
    for process in processes:
        process.start()
    yield processes
    for process in processes:
        if process.running:
            assert process.terminate() == 0, f"worker {process.name} did not exit cleanly on SIGTERM"
    leaks = [line for p in processes for line in p.lines() if UNMASKED_EMAIL.search(line) or "token=" in line]
    assert not leaks, f"personal data or tokens in the workers' logs: {leaks[:3]}"


@pytest.fixture(scope="session")
async def bus(infra: Infra, workers: list[WorkerProcess]) -> AsyncIterator[BusClient]:
    bus = BusClient(infra.amqp_url)
    await bus.start()
    yield bus
    await bus.stop()


@pytest.fixture(scope="session")
async def db(infra: Infra) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(infra.database_url, min_size=1, max_size=4)
    yield pool
    await pool.close()


def scrape() -> str:
    """The Prometheus text of worker a."""
    with urllib.request.urlopen(f"http://127.0.0.1:{METRICS_PORT}/metrics", timeout=5) as response:
        return response.read().decode()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def address(local: str) -> str:
    return f"{local}.{uuid.uuid4().hex[:8]}@example.com"


@pytest.fixture
async def account(bus: BusClient) -> Any:
    """Creates accounts through `accounts.upsert` and waits until they exist."""
    return accounts_on(bus)


def accounts_on(bus: BusClient) -> Any:
    """What the `account` fixture gives, on another bus (an isolated worker's vhost)."""

    async def create(licences: dict[str, int] | None = None, **fields: Any) -> str:
        account_id = fields.pop("account_id", None) or unique("acct")
        body = {
            "account_id": account_id,
            "name": fields.pop("name", f"Account {account_id}"),
            "licences": licences if licences is not None else {"gotomeeting": 50},
            **fields,
        }
        message_id = await bus.publish(routing.ACCOUNTS_UPSERT, body)
        await eventually(lambda: bus.find(routing.ACCOUNT_UPSERTED, account_id=account_id)
                         or bus.find(routing.COMMAND_REJECTED, command_id=message_id), what="account.upserted")
        refused = bus.find(routing.COMMAND_REJECTED, command_id=message_id)
        assert not refused, refused[0].body  # say why, rather than wait for an event that will not come
        return account_id

    return create


SIGN_IN = "https://signin.example.com/login"


@pytest.fixture(scope="session")
def links(infra: Infra, workers: list[WorkerProcess], worker_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory,
          ) -> Iterator[tuple[str, WorkerProcess]]:
    """`userprov links` on a free port, a link handler of the session's vhost (once the workers declared it): its base URL and process."""
    port = free_port()
    base = f"http://127.0.0.1:{port}/invitation"
    with broker_user(infra, "links", LINK_HANDLER_WRITE) as link_handler_url:  # the wire reference's row for a link handler is enough
        yield from _links_process(base, port, {**worker_env, "USERPROV_AMQP_URL": link_handler_url, **UNLIMITED_CLIENT},
                                  tmp_path_factory)


# Every test of a session's front door comes from 127.0.0.1, and many send made-up tokens on purpose:
# under the per-address limits of a deployment they would lock each other out. The tests of the
# limits start a front door of their own with the defaults.
UNLIMITED_CLIENT = {"USERPROV_FRONT_DOOR_FAILURE_BURST": "1000000", "USERPROV_FRONT_DOOR_FAILURES_PER_MINUTE": "1000000",
                    "USERPROV_FRONT_DOOR_REQUEST_BURST": "1000000", "USERPROV_FRONT_DOOR_REQUESTS_PER_SECOND": "1000000"}


@pytest.fixture(scope="module")
def links_with_default_limits(infra: Infra, workers: list[WorkerProcess], worker_env: dict[str, str],
                              tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, WorkerProcess]]:
    """`userprov links` of its own, with the per-address limits a deployment has by default."""
    port = free_port()
    with broker_user(infra, "links-default-limits", LINK_HANDLER_WRITE) as link_handler_url:
        yield from _links_process(f"http://127.0.0.1:{port}/invitation", port, {**worker_env, "USERPROV_AMQP_URL": link_handler_url},
                                  tmp_path_factory)


def _links_process(base: str, port: int, worker_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory,
                   ) -> Iterator[tuple[str, WorkerProcess]]:
    process = WorkerProcess("links", [], {**worker_env, "USERPROV_LINK_BASE_URL": base, "USERPROV_LINKS_PORT": str(port),
                                          "USERPROV_LINKS_SIGN_IN_URL": SIGN_IN, "USERPROV_LINKS_FORM_SECRET": "s3cret-for-tests",
                                          "USERPROV_LINKS_WAIT_SECONDS": "10", "USERPROV_LINKS_REQUEST_SECONDS": "2"},
                            tmp_path_factory.mktemp("links-log"), command=["links"], ready_log='"links_broker_connected"')
    process.start()
    yield base, process
    assert process.terminate() == 0
    assert not [line for line in process.lines() if "token=" in line], "a link's token in the page's logs"
