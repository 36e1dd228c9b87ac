"""Made-up link tokens stay at the door: a flood of them against the invitation page neither
slows a person opening and accepting their invitation nor another account's welcome, and its
address gets 429 once past its limit."""
from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg

from tests.integration.conftest import address
from tests.integration.test_links_page import form_of, state_of
from tests.support.floods import FLOOD_ADDRESS, REAL_ADDRESS, RealUse, client_at, every, flood, welcome_seconds
from tests.support.flows import add_users, emails_to, membership_status, tokens_in
from tests.support.smtp import RecordingSmtpServer
from userprov_devtools.bus_client import BusClient
from userprov_devtools.waiting import eventually

# and 408: a flood connection the loaded machine left idle past the request deadline (2 s in these tests)
FLOOD_ANSWERS = {404, 408, 429, 503}
VIEWED_DURING = 10  # the person's views of the page (one each 0.2 s) while the flood lasts: it is stopped after them


class TestFloodOfMadeUpLinks:
    async def test_a_person_accepts_meanwhile_and_the_address_gets_429(
        self, links_with_default_limits: Any, bus: BusClient, smtp: RecordingSmtpServer, db: asyncpg.Pool, account: Any
    ) -> None:
        base, _ = links_with_default_limits
        inviting, other = await account(name="Flood Page Corp"), await account()
        person = address("floodaccept")
        await add_users(bus, {"account_id": inviting, "users": [{"first_name": "Flo", "last_name": "Od", "email": person}]})
        [email] = await emails_to(smtp, person)
        url = f"{base}?token={tokens_in(email)['link']}"
        await welcome_seconds(bus, smtp, other, address("warmup"))  # the other account's first add is not the one timed

        async with client_at(REAL_ADDRESS) as browser:
            alone = await every(0.2, lambda: browser.get(url), at_least=5)
            under_way, done = asyncio.Event(), asyncio.Event()
            flooding = asyncio.create_task(flood(f"{base}?token={{token}}", [FLOOD_ADDRESS], under_way=under_way, until=done))
            await asyncio.wait_for(under_way.wait(), 30)
            during = RealUse()
            viewing = asyncio.create_task(every(0.2, lambda: browser.get(url), until=done, into=during))
            started = time.monotonic()
            shown = await browser.get(url)
            accepted = await browser.post(base, data={**form_of(shown, "accept"), "confirm": "yes"})
            accepting = time.monotonic() - started
            welcome = await welcome_seconds(bus, smtp, other, address("floodwelcome"))
            await eventually(lambda: len(during.seconds) >= VIEWED_DURING, 30, what="the person's views during the flood")
            done.set()
            flooded = await flooding
            await viewing
        print(f"\nInvitation page flood from one address: {flooded.summary()}; the person's page alone: {alone.summary()};"
              f" during the flood: {during.summary()}; show and accept {accepting:.2f} s; another account's welcome {welcome:.2f} s")
        # the flood went on until the person had viewed VIEWED_DURING times, accepted, and the welcome had arrived
        assert flooded.lasted, f"the flood ended before the person's requests did: {flooded.summary()}"
        assert not flooded.failures and set(flooded.statuses) <= FLOOD_ANSWERS, flooded.summary()
        assert set(during.statuses) == {200} and max(during.seconds) < 2.0, during.summary()
        assert (shown.status_code, accepted.status_code, state_of(accepted)) == (200, 200, "activated") and accepting < 4.0
        assert await membership_status(db, inviting, person) == "active"
        assert welcome < 3.0
        assert flooded.refused_body is not None, "the flooding address was never refused"
        assert int(flooded.refused_headers["retry-after"]) >= 1 and 'data-state="busy"' in flooded.refused_body
        assert flooded.refused_headers["cache-control"] == "no-store" and "content-security-policy" in flooded.refused_headers

    async def test_what_a_browser_asks_besides_the_page_is_no_failure(self, links_with_default_limits: Any, bus: BusClient, smtp: RecordingSmtpServer,
                                                                      account: Any) -> None:
        """A browser asks for /favicon.ico with every page (404): more of those than the
        failures an address may have, and its person still sees their invitation."""
        base, _ = links_with_default_limits
        account_id = await account()
        person = address("favicon")
        await add_users(bus, {"account_id": account_id, "users": [{"first_name": "Fa", "last_name": "Vicon", "email": person}]})
        [email] = await emails_to(smtp, person)
        root = base.rsplit("/", 1)[0]
        async with client_at("127.0.0.5") as browser:
            assert {(await browser.get(f"{root}/favicon.ico")).status_code for _ in range(30)} == {404}
            shown = await browser.get(f"{base}?token={tokens_in(email)['link']}")
        assert (shown.status_code, state_of(shown)) == (200, "welcome")
