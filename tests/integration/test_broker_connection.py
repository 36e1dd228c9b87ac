from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from contracts import routing
from tests.integration.conftest import address
from tests.support.flows import add_users, emails_to, tokens_in
from tests.support.infra import Infra, close_worker_connections, consumers_now, delete_queue, restart_broker
from tests.support.smtp import RecordingSmtpServer
from tests.support.workers import WorkerProcess
from userprov_devtools.bus_client import BusClient
from userprov_devtools.ports import free_port
from userprov_devtools.waiting import eventually


async def _every_queue_consumed(infra: Infra, workers: int) -> dict[str, int] | None:
    """Each service queue's consumers, once every one has one per worker (counted by the broker at once)."""
    counts = await consumers_now(infra.amqp_url, [routing.queue_name(s) for s in routing.SERVICES])
    return counts if all(n == workers for n in counts.values()) else None


class TestConnectionLoss:
    """Workers whose connections the broker closes reconnect and resume consuming on every queue."""

    async def test_connections_closed_by_the_broker(
        self, bus: BusClient, smtp: RecordingSmtpServer, infra: Infra, workers: list[WorkerProcess], account
    ) -> None:
        before = [w.count_log('"broker_connected"') for w in workers]
        assert close_worker_connections(infra.vhost) == len(workers)
        for worker, count in zip(workers, before, strict=True):
            worker.wait_for_log('"broker_connected"', 30, at_least=count + 1)
        counts = await eventually(lambda: _every_queue_consumed(infra, len(workers)), 30, what="every queue consumed by every worker again")
        assert counts[routing.queue_name(routing.USER_CREATION)] == len(workers)
        account_id = await account()
        person = address("after-reconnect")
        done = await add_users(bus, {"account_id": account_id, "users": [{"first_name": "Re", "last_name": "Connected", "email": person}]})
        assert done.body["results"][0]["outcome"] == "accepted"
        await emails_to(smtp, person)


class TestBrokerRestart:
    """After RabbitMQ itself restarts, the workers reconnect, consume every queue again and nothing is lost."""

    async def test_restart(self, bus: BusClient, smtp: RecordingSmtpServer, infra: Infra, workers: list[WorkerProcess], account) -> None:
        account_id = await account()
        before_restart = address("before-restart")
        await add_users(bus, {"account_id": account_id, "users": [{"first_name": "Be", "last_name": "Fore", "email": before_restart}]})
        [email] = await emails_to(smtp, before_restart)
        before = [w.count_log('"broker_connected"') for w in workers]

        restart_broker()
        for worker, count in zip(workers, before, strict=True):
            worker.wait_for_log('"broker_connected"', 60, at_least=count + 1)
        await eventually(lambda: _every_queue_consumed(infra, len(workers)), 30, what="every queue consumed by every worker again")
        await bus.publish(routing.INVITATION_ACCEPTED, {"token": tokens_in(email)["link"]})
        await eventually(lambda: bus.find(routing.USER_ACTIVATED, email=before_restart), 30)
        after_restart = address("after-restart")
        await add_users(bus, {"account_id": account_id, "users": [{"first_name": "Af", "last_name": "Ter", "email": after_restart}]})
        await emails_to(smtp, after_restart)


class TestQueueDeleted:
    """A service queue deleted under the workers (its consumers cancelled by the broker) is
    declared again and consumed again."""

    async def test_queue_deleted(self, bus: BusClient, smtp: RecordingSmtpServer, infra: Infra, workers: list[WorkerProcess], account) -> None:
        before = [w.count_log('"broker_connected"') for w in workers]
        delete_queue(infra.vhost, routing.queue_name(routing.INVITATION_MAILING))
        for worker, count in zip(workers, before, strict=True):
            worker.wait_for_log('"broker_connected"', 30, at_least=count + 1)
        await eventually(lambda: _every_queue_consumed(infra, len(workers)), 30, what="every queue consumed by every worker again")
        account_id = await account()
        person = address("after-delete")
        await add_users(bus, {"account_id": account_id, "users": [{"first_name": "Af", "last_name": "Ter", "email": person}]})
        await emails_to(smtp, person)


class TestBrokerMisconfigured:
    """A vhost that does not exist, a wrong password, nothing listening: one clear line with the
    reason, not a line per retry."""

    @pytest.mark.parametrize(("url", "said"), [
        ("amqp://guest:guest@127.0.0.1:5672/userprov-no-such-vhost", "refused to open vhost 'userprov-no-such-vhost'"),
        ("amqp://guest:not-the-password@127.0.0.1:5672/", "refused the login"),
        (f"amqp://guest:guest@127.0.0.1:{free_port()}/", "nothing takes connections"),
    ])
    async def test_one_line_that_says_why(self, worker_env: dict[str, str], tmp_path: Path, url: str, said: str) -> None:
        env = {**worker_env, "USERPROV_AMQP_URL": url, "USERPROV_RECONNECT_BACKOFF_MAX_SECONDS": "0.2", "USERPROV_LOG_LEVEL": "DEBUG"}
        worker = WorkerProcess("misconfigured", [routing.ACCOUNT_LOOKUP], env, tmp_path)
        worker.start(wait_ready=False)
        try:
            # five tries, each at debug level: only the first says it at a level an operator sees
            await asyncio.to_thread(worker.wait_for_log, '"broker_connect_failed"', 30, 5)
            seen = [line for line in worker.lines() if '"level": "debug"' not in line and '"level": "info"' not in line]
            assert len(seen) == 1 and '"broker_connect_failed"' in seen[0] and said in seen[0], seen
            assert "not-the-password" not in "".join(worker.lines())
        finally:
            worker.kill()
