"""Lanes: the interactive lane answers every message and does small work, and leaves batches;
the bulk lane does the batches at a lower CPU priority and answers no one."""
from __future__ import annotations

import asyncio
import os
from collections import Counter
from pathlib import Path

import asyncpg

from contracts import routing
from tests.integration.conftest import accounts_on, address
from tests.support.flows import add_users, emails_to, publish_batch
from tests.support.infra import rabbitmqctl
from tests.support.isolated import isolated_workers
from tests.support.smtp import RecordingSmtpServer
from tests.support.workers import WorkerProcess
from userprov_devtools.waiting import eventually

POLL_SECONDS = 0.2


def consumers(vhost: str) -> Counter[str]:
    """Consumers per queue (list_queues counts a quorum queue's consumers late)."""
    listed = rabbitmqctl("list_consumers", "-q", "-p", vhost, "--no-table-headers", "queue_name")
    return Counter(line.strip() for line in listed.splitlines() if line.strip())


class TestLanes:
    async def test_the_interactive_lane_leaves_batches_to_the_bulk_lane(
        self, smtp: RecordingSmtpServer, worker_env: dict[str, str], tmp_path: Path
    ) -> None:
        """With the interactive lane alone, a one-person add is emailed while a 30-person add
        (a batch) waits, decided by no one, through many polls; a bulk process started then,
        at a CPU priority 10 lower, emails the 30 and consumes only the mailing queue (signals)."""
        env = {"USERPROV_SCHEDULER_POLL_SECONDS": str(POLL_SECONDS), "USERPROV_BULK_NICENESS": "10"}
        async with isolated_workers("lane", worker_env, tmp_path, [{"USERPROV_LANE": "interactive"}], **env) as (infra, _, bus):
            account_id = await accounts_on(bus)({"gotomeeting": 50})
            command_id, thirty = await publish_batch(bus, account_id, "batch", 30)
            await eventually(lambda: bus.find(routing.USERS_ADD_COMPLETED, command_id=command_id), what="the 30 created")
            one = address("single")
            await add_users(bus, {"account_id": account_id, "products": ["gotomeeting"],
                                  "users": [{"first_name": "One", "last_name": "Person", "email": one}]})
            await emails_to(smtp, one)
            await asyncio.sleep(10 * POLL_SECONDS)  # nothing to wait for: the batch must still be waiting after many polls
            async with asyncpg.create_pool(infra.database_url, min_size=1, max_size=1) as db:
                pending = await db.fetchval("SELECT count(*) FROM memberships WHERE account_id = $1 AND status = 'pending'", account_id)
            assert pending == 30 and not any(smtp.handler.to(p) for p in thirty)

            bulk = WorkerProcess("lane-bulk", routing.SERVICES, {**worker_env, **env, "USERPROV_LANE": "bulk",
                                 "USERPROV_AMQP_URL": infra.amqp_url, "USERPROV_DATABASE_URL": infra.database_url}, tmp_path)
            await asyncio.to_thread(bulk.start)
            try:
                for person in thirty:
                    await emails_to(smtp, person)
                assert os.getpriority(os.PRIO_PROCESS, bulk.pid) == os.getpriority(os.PRIO_PROCESS, 0) + 10
                queues = consumers(infra.vhost)
                assert queues[routing.queue_name(routing.INVITATION_MAILING)] == 2, queues
                assert all(queues[routing.queue_name(s)] == 1 for s in routing.SERVICES if s != routing.INVITATION_MAILING), queues
                assert bulk.terminate() == 0
            finally:
                if bulk.running:
                    bulk.kill()

    def test_a_bulk_lane_with_no_batches_to_take_refuses_to_start(self, worker_env: dict[str, str], tmp_path: Path) -> None:
        worker = WorkerProcess("bulk-creation", [routing.USER_CREATION], {**worker_env, "USERPROV_LANE": "bulk"}, tmp_path)
        worker.start(wait_ready=False)
        assert worker.wait_for_exit(30) == 2
        assert worker.count_log("bulk_lane_without_batches") == 1
