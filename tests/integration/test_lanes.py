"""Lanes: the interactive lane answers every message and does small work, and hands large
commands and batches to the bulk lane, which does them at a lower CPU priority and answers no one."""
from __future__ import annotations

import asyncio
import json
import os
import re
import urllib.request
from collections import Counter
from pathlib import Path

import asyncpg

from contracts import routing
from tests.integration.conftest import accounts_on, address
from tests.support.flows import add_users, emails_to, publish_batch
from tests.support.hostile import publish_hostile
from tests.support.infra import message_counts, rabbitmqctl, ready_messages
from tests.support.isolated import isolated_workers
from tests.support.smtp import RecordingSmtpServer
from tests.support.workers import WorkerProcess
from userprov_devtools.ports import free_port
from userprov_devtools.waiting import eventually

POLL_SECONDS = 0.2


def consumers(vhost: str) -> Counter[str]:
    """Consumers per queue (list_queues counts a quorum queue's consumers late)."""
    listed = rabbitmqctl("list_consumers", "-q", "-p", vhost, "--no-table-headers", "queue_name")
    return Counter(line.strip() for line in listed.splitlines() if line.strip())


async def _exactly(amqp_url: str, queue: str, count: int) -> bool:
    return await ready_messages(amqp_url, queue) == count


class TestLanes:
    async def test_the_interactive_lane_hands_large_adds_to_the_bulk_lane(
        self, smtp: RecordingSmtpServer, worker_env: dict[str, str], tmp_path: Path
    ) -> None:
        """With the interactive lane alone, a one-person add is emailed while a 30-person add
        (bulk work) waits in the bulk queue, created by no one; a bulk process started then, at a
        CPU priority 10 lower, creates and emails the 30, and consumes only the bulk queue and the
        mailing queue (signals), so that no one's query or small command waits in it. Both run as
        an upgraded deployment may, with the removed USERPROV_LANE_PRIORITY_DIR still set: they
        work, and say once that it is gone."""
        env = {"USERPROV_SCHEDULER_POLL_SECONDS": str(POLL_SECONDS), "USERPROV_BULK_NICENESS": "10",
               "USERPROV_LANE_PRIORITY_DIR": str(tmp_path)}
        async with isolated_workers("lane", worker_env, tmp_path, [{"USERPROV_LANE": "interactive"}], **env) as (infra, [interactive], bus):
            account_id = await accounts_on(bus)({"gotomeeting": 50})
            command_id, thirty = await publish_batch(bus, account_id, "batch", 30)
            bulk_queue = routing.bulk_queue_name(routing.USER_CREATION)
            # nothing consumes the bulk queue yet: its ready messages are all of them, counted at once
            await eventually(lambda: _exactly(infra.amqp_url, bulk_queue, 1), what="the 30-person add in the bulk queue")
            one = address("single")
            await add_users(bus, {"account_id": account_id, "products": ["gotomeeting"],
                                  "users": [{"first_name": "One", "last_name": "Person", "email": one}]})
            await emails_to(smtp, one)
            assert not bus.find(routing.USERS_ADD_COMPLETED, command_id=command_id)
            await eventually(lambda: interactive.count_log('"handed_off"') == 1, what="the hand-off logged")

            bulk = WorkerProcess("lane-bulk", routing.SERVICES, {**worker_env, **env, "USERPROV_LANE": "bulk",
                                 "USERPROV_AMQP_URL": infra.amqp_url, "USERPROV_DATABASE_URL": infra.database_url}, tmp_path)
            await asyncio.to_thread(bulk.start)
            try:
                await eventually(lambda: bus.find(routing.USERS_ADD_COMPLETED, command_id=command_id), what="the 30 created")
                for person in thirty:
                    await emails_to(smtp, person)
                assert os.getpriority(os.PRIO_PROCESS, bulk.pid) == os.getpriority(os.PRIO_PROCESS, 0) + 10
                queues = Counter({name: n for name, n in consumers(infra.vhost).items() if name.startswith("userprov.")})
                assert queues == Counter({routing.queue_name(routing.INVITATION_MAILING): 2, bulk_queue: 1, **{
                    routing.queue_name(s): 1 for s in routing.SERVICES if s != routing.INVITATION_MAILING}}), queues
                assert [w.count_log('"setting_removed"') for w in (interactive, bulk)] == [1, 1]
                assert interactive.count_log("USERPROV_LANE_PRIORITY_DIR") == 1
                assert bulk.terminate() == 0
            finally:
                if bulk.running:
                    bulk.kill()

    async def test_a_large_add_handed_off_twice_takes_effect_once(
        self, smtp: RecordingSmtpServer, worker_env: dict[str, str], tmp_path: Path
    ) -> None:
        """The same message_id twice (as when the interactive process dies between the hand-off
        and its ack): two copies reach the bulk lane, and the inbox lets one take effect."""
        lanes = [{"USERPROV_LANE": "interactive"}, {"USERPROV_LANE": "bulk"}]
        async with isolated_workers("twice", worker_env, tmp_path, lanes) as (infra, [interactive, _], bus):
            account_id = await accounts_on(bus)({"gotomeeting": 50})
            people = [address(f"twice{n}") for n in range(12)]
            body = {"account_id": account_id, "products": ["gotomeeting"],
                    "users": [{"first_name": "Twice", "last_name": f"P{n}", "email": p} for n, p in enumerate(people)]}
            command_id = await bus.publish(routing.USERS_ADD, body)
            await bus.publish(routing.USERS_ADD, body, message_id=command_id)
            for person in people:
                await emails_to(smtp, person)
            await eventually(lambda: interactive.count_log('"handed_off"') == 2, what="both copies handed off")
            await eventually(lambda: message_counts(infra.vhost).get(routing.bulk_queue_name(routing.USER_CREATION)) == 0,
                             what="both copies settled")
            assert len(bus.find(routing.USERS_ADD_COMPLETED, command_id=command_id)) == 1
            async with asyncpg.create_pool(infra.database_url, min_size=1, max_size=1) as db:
                assert await db.fetchval("SELECT count(*) FROM memberships WHERE account_id = $1", account_id) == 12
            assert all(len(smtp.handler.to(p)) == 1 for p in people)

    async def test_hostile_large_adds_are_handed_off_and_settled(
        self, smtp: RecordingSmtpServer, worker_env: dict[str, str], tmp_path: Path
    ) -> None:
        """What a publisher may put in a large add reaches its outcome through the hand-off as it
        would in one process: a header key or value that is not UTF-8 (the copy cannot carry it),
        headers of every AMQP type, hostile Unicode in the rows, 10,000 rows; none is parked."""
        lanes = [{"USERPROV_LANE": "interactive"}, {"USERPROV_LANE": "bulk"}]
        async with isolated_workers("hostile", worker_env, tmp_path, lanes) as (infra, [interactive, _], bus):
            account_id = await accounts_on(bus)({"gotomeeting": 20_000})

            def rows(tag: str, n: int, first: str = "Ho") -> str:
                return "\n".join(f"{first} Stile{k} {tag}{k}.{account_id}@example.com" for k in range(n))

            cases = {
                "key-not-utf8": ({"x-\udcff": "value"}, rows("key", 12)),
                "value-not-utf8": ({"x-short": "\udcfe\udcfd"}, rows("value", 12)),
                "every-type": ({"int": 7, "neg": -2**40, "float": 1.5, "bool": False, "none": None, "list": [1, "a", [2]],
                                "table": {"nested": {"deeper": "x" * 1000}}, "long": "y" * 100_000},
                               rows("types", 12)),
                "unicode-rows": ({}, rows("uni", 12, first="A\u202eB\u200d\x00")),
                "ten-thousand": ({}, rows("big", 10_000)),
            }
            for name, (headers, pasted) in cases.items():
                body = json.dumps({"account_id": account_id, "products": ["gotomeeting"], "pasted": pasted}).encode()
                await publish_hostile(infra.amqp_url, routing.USERS_ADD, body, message_id=f"{name}-{account_id}", headers=headers)
            for name in cases:
                await eventually(lambda: bus.find(routing.USERS_ADD_COMPLETED, command_id=f"{name}-{account_id}")  # noqa: B023
                                 or bus.find(routing.COMMAND_REJECTED, command_id=f"{name}-{account_id}"), 60, what=name)
            assert not any(bus.find(routing.COMMAND_REJECTED, command_id=f"{name}-{account_id}") for name in cases)
            assert interactive.count_log('"handed_off"') == len(cases)
            counts = message_counts(infra.vhost)
            assert not any(counts.get(routing.parking_queue_name(s)) for s in routing.SERVICES), counts

    async def test_work_no_lane_takes_is_seen_waiting(
        self, smtp: RecordingSmtpServer, worker_env: dict[str, str], tmp_path: Path
    ) -> None:
        """An interactive lane takes no batch: what waits in PostgreSQL for want of a bulk lane
        shows in `userprov_oldest_waiting_seconds`, stage by stage, and is 0 again once taken."""
        port = free_port()
        env = {"USERPROV_QUEUE_WATCH_SECONDS": "0.2", "USERPROV_SCHEDULER_POLL_SECONDS": str(POLL_SECONDS)}
        each = [{"USERPROV_LANE": "interactive", "USERPROV_METRICS_PORT": str(port)}]
        async with isolated_workers("waiting", worker_env, tmp_path, each, **env) as (infra, _, bus):
            shared = {**worker_env, **env, "USERPROV_LANE": "bulk", "USERPROV_AMQP_URL": infra.amqp_url,
                      "USERPROV_DATABASE_URL": infra.database_url}

            def waited(service: str) -> float:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                    text = response.read().decode()
                found = re.search(rf'^userprov_oldest_waiting_seconds{{service="{service}"}} (\S+)$', text, re.MULTILINE)
                return float(found.group(1)) if found else -1.0

            account_id = await accounts_on(bus)({"gotomeeting": 50})
            command_id, thirty = await publish_batch(bus, account_id, "waiting", 30)
            stages = [([routing.USER_CREATION], routing.ACCOUNT_LOOKUP), ([routing.ACCOUNT_LOOKUP], routing.INVITATION_MAILING)]
            bulk = []
            try:
                for services, waiting in stages:  # a bulk process for each stage in turn: the next one's work waits
                    bulk.append(WorkerProcess(f"bulk-{services[0]}", services, shared, tmp_path))
                    await asyncio.to_thread(bulk[-1].start)
                    await eventually(lambda: waited(waiting) > 1.0, what=f"the work for {waiting} seen waiting")  # noqa: B023
                assert bus.find(routing.USERS_ADD_COMPLETED, command_id=command_id) and not any(smtp.handler.to(p) for p in thirty)
                bulk.append(WorkerProcess("bulk-mailing", [routing.INVITATION_MAILING], shared, tmp_path))
                await asyncio.to_thread(bulk[-1].start)
                for person in thirty:
                    await emails_to(smtp, person)
                await eventually(lambda: waited(routing.ACCOUNT_LOOKUP) == waited(routing.INVITATION_MAILING) == 0,
                                 what="nothing waiting")
                assert [worker.terminate() for worker in bulk] == [0] * len(bulk)
            finally:
                for worker in bulk:
                    if worker.running:
                        worker.kill()

    def test_a_bulk_lane_with_no_batches_to_take_refuses_to_start(self, worker_env: dict[str, str], tmp_path: Path) -> None:
        worker = WorkerProcess("bulk-response", [routing.INVITATION_RESPONSE], {**worker_env, "USERPROV_LANE": "bulk"}, tmp_path)
        worker.start(wait_ready=False)
        assert worker.wait_for_exit(30) == 2
        assert worker.count_log("bulk_lane_without_batches") == 1
