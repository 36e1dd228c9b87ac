"""RabbitMQ blocks publishing (a memory alarm): SCIM and the invitation page answer 503 with
Retry-After within their deadline, are not ready meanwhile, and work again once it ends.

BROKER-WIDE: the alarm (`rabbitmqctl set_vm_memory_high_watermark`) blocks every publisher on
this broker, other test sessions' too, for the few seconds the test holds it; the previous
watermark is restored in any case (`tests/support/broker_alarm.py`)."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.integration.conftest import address, unique
from tests.integration.scim.conftest import Tenant, scim_process
from tests.integration.test_links_page import form_of, state_of
from tests.support.broker_alarm import memory_alarm
from tests.support.broker_users import LINK_HANDLER_WRITE, broker_user
from tests.support.flows import add_users, emails_to, tokens_in
from tests.support.infra import Infra
from tests.support.smtp import RecordingSmtpServer
from tests.support.workers import WorkerProcess
from userprov_devtools.bus_client import BusClient
from userprov_devtools.ports import free_port
from userprov_devtools.waiting import eventually

WAIT = 3.0  # USERPROV_SCIM_WAIT_SECONDS and USERPROV_LINKS_WAIT_SECONDS here: each request's deadline
SLACK = 2.0  # beyond it, for a loaded 2-core machine


@contextmanager
def page_process(amqp_url: str, worker_env: dict[str, str], log_dir: Path) -> Iterator[str]:
    """`userprov links` with a deadline of WAIT: its base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}/invitation"
    process = WorkerProcess("links-blocked", [], {**worker_env, "USERPROV_AMQP_URL": amqp_url, "USERPROV_LINK_BASE_URL": base,
                                                  "USERPROV_LINKS_PORT": str(port), "USERPROV_LINKS_FORM_SECRET": "s3cret-for-tests",
                                                  "USERPROV_LINKS_WAIT_SECONDS": str(WAIT)},
                            log_dir, command=["links"], ready_log='"links_broker_connected"')
    process.start()
    try:
        yield base
    finally:
        assert process.terminate() == 0


async def timed(call: Awaitable[httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await call
    return response, time.monotonic() - started


async def readiness(http: httpx.AsyncClient, url: str) -> int:
    return (await http.get(url)).status_code


@pytest.mark.broker_alarm
class TestBrokerBlocksPublishing:
    async def test_503_with_retry_after_within_the_deadline_not_ready_and_back_after(
            self, tenant: Any, infra: Infra, bus: BusClient, smtp: RecordingSmtpServer, db: asyncpg.Pool, account: Any,
            worker_env: dict[str, str], tmp_path: Path) -> None:
        t = await tenant()
        account_id = await account()
        person = address(unique("blockedpage"))
        await add_users(bus, {"account_id": account_id, "users": [{"first_name": "Blo", "last_name": "Cked", "email": person}]})
        [email] = await emails_to(smtp, person)
        token = tokens_in(email)["link"]
        created_email = address(unique("blockedscim"))

        with (broker_user(infra, "links", LINK_HANDLER_WRITE) as link_handler_url,
              page_process(link_handler_url, worker_env, tmp_path) as page,
              scim_process(worker_env, tmp_path, USERPROV_SCIM_WAIT_SECONDS=str(WAIT)) as scim_base):
            scim_ready, page_ready = scim_base.removesuffix("/scim/v2") + "/readyz", page.rsplit("/", 1)[0] + "/readyz"
            async with (httpx.AsyncClient(base_url=scim_base, headers={"Authorization": f"Bearer {t.token}"}, timeout=WAIT + SLACK + 2) as client,
                        httpx.AsyncClient(timeout=WAIT + SLACK + 2) as http):
                scim = Tenant(t.account_id, t.token, t.token_id, client)
                shown = await http.get(page, params={"token": token})
                assert state_of(shown) == "welcome"
                form = {**form_of(shown, "accept"), "confirm": "yes"}
                assert (await scim.client.get("/Users")).status_code == 200
                assert (await readiness(http, scim_ready), await readiness(http, page_ready)) == (200, 200)

                async with memory_alarm():
                    # each door's first publish: RabbitMQ takes it, says connection.blocked, and holds it
                    (listed, listed_seconds), (posted, posted_seconds) = await asyncio.gather(
                        timed(scim.client.get("/Users")), timed(http.post(page, data=form)))
                    assert listed.status_code == 503 and listed.headers["retry-after"] == "5", listed.text
                    assert listed.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
                    assert (posted.status_code, state_of(posted), posted.headers["retry-after"]) == (503, "busy", "5")
                    assert listed_seconds < WAIT + SLACK and posted_seconds < WAIT + SLACK, (listed_seconds, posted_seconds)
                    assert await eventually(lambda: readiness(http, scim_ready), 5, what="SCIM not ready") == 503
                    assert await eventually(lambda: readiness(http, page_ready), 5, what="the page not ready") == 503
                    assert "blocks publishing" in (await http.get(scim_ready)).text
                    # now the doors know: nothing is published, the answer comes at once
                    refused, refused_seconds = await timed(scim.post_user(created_email))
                    assert refused.status_code == 503 and refused.headers["retry-after"] == "5", refused.text
                    assert refused_seconds < WAIT / 2, refused_seconds
                    again, again_seconds = await timed(http.post(page, data=form))
                    assert again.status_code == 503 and again_seconds < WAIT / 2, again_seconds

                await eventually(lambda: _both_ready(http, scim_ready, page_ready), 30, 0.2, what="both ready once the alarm ended")
                created = await scim.post_user(created_email)
                assert created.status_code == 201, created.text
                assert await db.fetchval("SELECT count(*) FROM memberships m JOIN profiles p USING (profile_id)"
                                         " WHERE m.account_id = $1 AND p.email = $2", t.account_id, created_email) == 1
                done = await http.post(page, data=form)
                assert (done.status_code, state_of(done)) == (200, "activated")


async def _both_ready(http: httpx.AsyncClient, *urls: str) -> bool:
    return all([await readiness(http, url) == 200 for url in urls])
