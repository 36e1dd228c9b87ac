"""Made-up bearer tokens stay at the door: a flood of them neither slows a real tenant nor the
welcome of another account's person, its address gets 429 once past its limit, and a valid
token stays remembered however many made-up ones were asked about."""
from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import address
from tests.integration.scim.conftest import Tenant, scim_process
from tests.support.floods import FLOOD_ADDRESS, REAL_ADDRESS, RealUse, client_at, every, flood, made_up_token, welcome_seconds
from tests.support.infra import Infra
from tests.support.smtp import RecordingSmtpServer
from tests.support.workers import WorkerProcess
from userprov.front_doors.lookup_gate import LookupGate
from userprov.operations.scim_tokens import revoke as revoke_token
from userprov.public_bus import PublicBus
from userprov.scim import tenancy
from userprov.scim.tenancy import TokenResolver
from userprov.settings import Settings
from userprov_devtools.bus_client import BusClient
from userprov_devtools.waiting import eventually

# and 408: a flood connection the loaded machine left idle past the request deadline (2 s in these tests)
FLOOD_ANSWERS = {401, 408, 429, 503}
LISTED_DURING = 10  # the tenant's lists (one each 0.2 s) while the flood lasts: it is stopped after them


async def _flood_beside_a_tenant(t: Tenant, scim_base: str, bus: BusClient, smtp: RecordingSmtpServer, account: Any,
                                 sources: list[str], what: str, total: int = 1500) -> tuple[Any, Any]:
    other = await account()
    await welcome_seconds(bus, smtp, other, address("warmup"))  # the other account's first add is not the one timed
    async with client_at(REAL_ADDRESS, base_url=scim_base, headers={"Authorization": f"Bearer {t.token}"}) as idp:
        alone = await every(0.2, lambda: idp.get("/Users"), at_least=5)
        under_way, done = asyncio.Event(), asyncio.Event()
        flooding = asyncio.create_task(flood(f"{scim_base}/Users", sources, header="Authorization: Bearer {token}", total=total,
                                             under_way=under_way, until=done))
        await asyncio.wait_for(under_way.wait(), 30)
        during = RealUse()
        listing = asyncio.create_task(every(0.2, lambda: idp.get("/Users"), until=done, into=during))
        welcome = await welcome_seconds(bus, smtp, other, address("floodwelcome"))
        await eventually(lambda: len(during.seconds) >= LISTED_DURING, 30, what="the tenant's lists during the flood")
        done.set()
        flooded = await flooding
        await listing
    print(f"\nSCIM flood {what}: {flooded.summary()}; the tenant's list alone: {alone.summary()};"
          f" during the flood: {during.summary()}; another account's welcome {welcome:.2f} s")
    # the flood went on until the tenant had listed LISTED_DURING times and the welcome had arrived: all under it
    assert flooded.lasted, f"the flood ended before the tenant's requests did: {flooded.summary()}"
    assert not flooded.failures and set(flooded.statuses) <= FLOOD_ANSWERS, flooded.summary()
    assert set(during.statuses) == {200} and max(during.seconds) < 2.0, during.summary()
    assert welcome < 3.0
    return flooded, during


@pytest.fixture(scope="module")
def scim_with_default_limits(workers: list[WorkerProcess], worker_env: dict[str, str],
                             tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`userprov scim serve` of its own, with the per-address limits a deployment has by default (the
    session's SCIM service has them raised: all its tests come from 127.0.0.1)."""
    with scim_process(worker_env, tmp_path_factory.mktemp("scim-default-limits")) as base:
        yield base


class TestFloodOfMadeUpTokens:
    async def test_from_one_address_the_tenant_does_not_notice_and_the_address_gets_429(
        self, tenant: Any, scim_with_default_limits: str, bus: BusClient, smtp: RecordingSmtpServer, account: Any
    ) -> None:
        t: Tenant = await tenant()
        flooded, _ = await _flood_beside_a_tenant(t, scim_with_default_limits, bus, smtp, account, [FLOOD_ADDRESS],
                                                  "from one address")
        assert flooded.refused_body is not None, "the flooding address was never refused"
        assert int(flooded.refused_headers["retry-after"]) >= 1 and json.loads(flooded.refused_body)["status"] == "429"
        assert flooded.refused_headers["content-type"] == "application/scim+json"

    async def test_from_100_addresses_the_tenant_does_not_notice(
        self, tenant: Any, scim_with_default_limits: str, bus: BusClient, smtp: RecordingSmtpServer, account: Any
    ) -> None:
        """Each address stays under its own limit: the cap on lookups in flight is what holds."""
        t: Tenant = await tenant()
        sources = [f"127.0.1.{n}" for n in range(1, 101)]
        under_the_limit = len(sources) * (Settings().front_door_failure_burst - 1)  # at most, before it is stopped
        await _flood_beside_a_tenant(t, scim_with_default_limits, bus, smtp, account, sources, "from 100 addresses", under_the_limit)


REMEMBERED = 500  # tokens of each kind a resolver remembers, in the test below
FLOOD = 600


class TestTokenCache:
    async def test_a_flood_of_made_up_tokens_does_not_push_a_valid_one_out(self, tenant: Any, infra: Infra,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
        """A valid token, then more made-up ones than a process remembers (its 10,000 made 500 here,
        to keep the test short), asked of the session's workers. Revoked after the flood, the
        valid token still has its account: it was remembered, not asked again (a lookup would
        find it revoked)."""
        monkeypatch.setattr(tenancy, "REMEMBERED", REMEMBERED)
        monkeypatch.setattr(tenancy, "REMEMBERED_UNKNOWN", REMEMBERED)
        t: Tenant = await tenant()
        bus = PublicBus(infra.amqp_url, "userprov scim flood test")
        await bus.start()
        try:
            tokens = TokenResolver(bus, 10, 600, LookupGate(8, 10))
            assert await tokens.account_of(f"Bearer {t.token}") == t.account_id
            answers: Counter[str | None] = Counter()
            made_up = iter(range(FLOOD))

            async def asking() -> None:
                for _ in made_up:
                    answers[await tokens.account_of(f"Bearer {made_up_token()}")] += 1

            started = time.monotonic()
            await asyncio.gather(*(asking() for _ in range(100)))
            took = time.monotonic() - started
            print(f"\n{FLOOD} made-up tokens asked, 100 at a time: {took:.1f} s ({FLOOD / took:.0f}/s)")
            assert answers == {None: FLOOD}
            assert await revoke_token(infra.amqp_url, t.token_id) is None
            assert await tokens.account_of(f"Bearer {t.token}") == t.account_id, "the valid token was pushed out"
        finally:
            await bus.close()


class TestClientAddress:
    async def test_only_a_trusted_proxy_names_the_client(self, workers: list[WorkerProcess], worker_env: dict[str, str],
                                                         tmp_path: Path) -> None:
        """Three failures per address here, then 429. Behind the trusted proxy each forwarded
        address has its own limit; the client is the last address the proxy did not add.
        Anyone else's X-Forwarded-For is not believed, nor by default a local client's."""
        strict = {"USERPROV_FRONT_DOOR_FAILURE_BURST": "3", "USERPROV_FRONT_DOOR_FAILURES_PER_MINUTE": "0.1"}
        (tmp_path / "trusted").mkdir()
        (tmp_path / "default").mkdir()
        with scim_process(worker_env, tmp_path / "trusted", USERPROV_TRUSTED_PROXIES="127.0.0.3, 192.0.2.0/24", **strict) as base:
            async with client_at("127.0.0.3", base_url=base) as proxy, client_at("127.0.0.4", base_url=base) as direct:
                assert await _made_up(proxy, *(["198.51.100.1"] * 4)) == [401, 401, 401, 429]
                assert await _made_up(proxy, "198.51.100.2", "198.51.100.7, 198.51.100.1", "198.51.100.1, 192.0.2.9",
                                      "::ffff:198.51.100.1", "198.51.100.1:8080") == [401, 429, 429, 429, 429]
                assert await _made_up(direct, *(f"203.0.113.{n}" for n in range(4))) == [401, 401, 401, 429]
                hostile: list[str | bytes] = ["", ",,,", "garbage", "[::1", "[2001:db8::1]:99999999999999999999", "1.2.3.4:-1",
                                              "x" * 8000, b"\xff\xfe\x80 \xc3\xa9", "2001:db8::1, unknown, _hidden", "::"]
                answers = await _made_up(proxy, *hostile)
                assert set(answers) <= {401, 429}, dict(zip(map(str, hostile), answers, strict=True))
        with scim_process(worker_env, tmp_path / "default", **strict) as base:
            async with client_at("127.0.0.1", base_url=base) as local:
                assert await _made_up(local, *(f"203.0.113.{n}" for n in range(4))) == [401, 401, 401, 429]


async def _made_up(client: httpx.AsyncClient, *forwarded_for: str | bytes) -> list[int]:
    """The statuses of a made-up token's requests, one with each X-Forwarded-For."""
    return [(await client.get("/Users", headers={"Authorization": f"Bearer {made_up_token()}", "X-Forwarded-For": value})).status_code
            for value in forwarded_for]
