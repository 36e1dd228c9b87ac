"""USERPROV_AMQP_URL naming several nodes: a worker connects to the first that answers, says
which one, and after losing its connection connects again (trying the others first) and goes
on. One real broker here: the other node is a port nothing listens on. The three-node cluster
itself is issue 19's own proof, not in this suite."""
from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from contracts import routing
from tests.support.flows import add_users
from tests.support.health import probe
from tests.support.infra import close_connections
from tests.support.isolated import isolated_worker
from userprov_devtools.ports import free_port
from userprov_devtools.waiting import eventually


async def test_a_worker_uses_the_node_that_answers_and_comes_back_after_a_loss(worker_env: dict[str, str], tmp_path: Path) -> None:
    dead = free_port()

    def nodes(url: str) -> str:
        return urlunsplit(urlsplit(url)._replace(netloc=f"guest:guest@127.0.0.1:{dead}")) + "," + url

    health = free_port()
    async with isolated_worker("nodes", worker_env, tmp_path, brokers=nodes, USERPROV_HEALTH_PORT=str(health)) as (infra, worker, bus):
        ready = await eventually(lambda: (lambda s, b: b if s == 200 else None)(*probe(health, "/readyz")), 30, what="ready")
        assert ready["broker_node"] == "127.0.0.1:5672"
        await bus.publish(routing.ACCOUNTS_UPSERT, {"account_id": "nodes", "name": "Nodes", "licences": {"gotomeeting": 5}})
        await eventually(lambda: bus.find(routing.ACCOUNT_UPSERTED, account_id="nodes"), 30, what="account.upserted")

        close_connections(infra.vhost)  # the node drops every connection, as a node that dies does
        await asyncio.to_thread(worker.wait_for_log, '"broker_connected"', 30, 2)
        done = await add_users(bus, {"account_id": "nodes", "users": [{"first_name": "No", "last_name": "De", "email": "node@example.com"}]})
        assert done.body["results"][0]["outcome"] == "accepted"
        assert not [line for line in worker.lines() if "\"broker_connect_failed\"" in line]  # one node answering is no failure
