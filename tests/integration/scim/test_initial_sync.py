"""An identity provider's initial sync: for each person a lookup by userName, then a create with
Okta's default body (its attributes userprov does not keep included), 10 people at a time, as
Okta and Entra push an application's assignments. A benchmark
(`pytest -m bench tests/integration/scim/test_initial_sync.py -s`): it prints users/s and the
p50/p99 of one person's lookup-and-create."""
from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
from typing import Any

import asyncpg
import pytest

from tests.integration.conftest import unique
from tests.integration.scim.conftest import SCIM_JSON, Tenant
from tests.integration.scim.idp_bodies import okta_create
from tests.support.smtp import RecordingSmtpServer
from userprov_devtools.waiting import eventually

pytestmark = pytest.mark.bench
PEOPLE = int(os.environ.get("SCIM_SYNC_PEOPLE", "1000"))
IN_PARALLEL = 10


async def test_initial_sync(tenant: Any, db: asyncpg.Pool, smtp: RecordingSmtpServer) -> None:
    t: Tenant = await tenant({"gotomeeting": PEOPLE})
    run = unique("sync")
    people = [f"p{n}.{run}@sync.example.com" for n in range(PEOPLE)]
    waiting = asyncio.Queue[str]()
    for person in people:
        waiting.put_nowait(person)
    took: list[float] = []

    async def idp_worker() -> None:
        while not waiting.empty():
            person = waiting.get_nowait()
            started = time.monotonic()
            assert (await t.find(f'userName eq "{person}"'))["totalResults"] == 0
            body = {**okta_create(person), "externalId": person.split("@")[0]}
            created = await t.client.post("/Users", content=json.dumps(body), headers={"content-type": SCIM_JSON})
            assert created.status_code == 201, created.text
            took.append(time.monotonic() - started)

    started = time.monotonic()
    await asyncio.gather(*(idp_worker() for _ in range(IN_PARALLEL)))
    elapsed = time.monotonic() - started
    assert await db.fetchval("SELECT count(*) FROM memberships WHERE account_id = $1", t.account_id) == PEOPLE
    await eventually(lambda: all(smtp.handler.to(p) for p in people), timeout=120, what="every welcome email")
    emailed = time.monotonic() - started
    ordered = sorted(took)
    print(f"\nSCIM initial sync: {PEOPLE} people, {IN_PARALLEL} in parallel: {PEOPLE / elapsed:.0f} users/s"
          f" ({elapsed:.1f} s; every email in {emailed:.1f} s); lookup+create p50 {statistics.median(ordered) * 1000:.0f} ms,"
          f" p99 {ordered[int(0.99 * (len(ordered) - 1))] * 1000:.0f} ms")
