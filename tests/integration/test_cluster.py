"""The short cluster run as a test (pytest -m cluster, about two minutes): one RabbitMQ node,
the leader of the busiest queues, killed while 300 people flow, on a three-node cluster and a
PostgreSQL pair of their own (tests/cluster.py says what is checked)."""
from __future__ import annotations

import time

import pytest

from tests.cluster import run

pytestmark = pytest.mark.cluster


async def test_a_node_killed_while_300_people_flow() -> None:
    assert await run(users=300, batch=20, seconds=30, seed=int(time.time()), short=True) == 0
