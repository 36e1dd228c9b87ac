from __future__ import annotations

from contracts import routing
from tests.integration.conftest import address
from services.client import BusClient
from tests.support.flows import add_users, emails_to
from tests.support.infra import Infra, close_connections_named, consumer_counts
from tests.support.smtp import RecordingSmtpServer
from tests.support.wait import eventually
from tests.support.workers import WorkerProcess


class TestConnectionLoss:
    """Workers whose connections the broker closes reconnect and resume consuming on every queue."""

    async def test_connections_closed_by_the_broker(
        self, bus: BusClient, smtp: RecordingSmtpServer, infra: Infra, workers: list[WorkerProcess], account
    ) -> None:
        before = [w.count_log('"broker_connected"') for w in workers]
        assert close_connections_named(infra.vhost, "userprov ") == len(workers)
        for worker, count in zip(workers, before):
            worker.wait_for_log('"broker_connected"', 30, at_least=count + 1)
        counts = await eventually(
            lambda: (c := consumer_counts(infra.vhost)) and all(c[routing.queue_name(s)] == len(workers) for s in routing.SERVICES) and c,
            30, what="every queue consumed by every worker again",
        )
        assert counts[routing.queue_name(routing.USER_CREATION)] == len(workers)
        account_id = await account()
        person = address("after-reconnect")
        done = await add_users(bus, {"account_id": account_id, "users": [{"first_name": "Re", "last_name": "Connected", "email": person}]})
        assert done.body["results"][0]["outcome"] == "accepted"
        await emails_to(smtp, person)
