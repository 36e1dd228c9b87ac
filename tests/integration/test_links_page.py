"""The invitation page (`userprov links`) over real HTTP, against the session's workers: GET and
HEAD change nothing, only a POST with a ticked confirmation acts, and every hostile request gets
a clear answer, never a 500."""
from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import AsyncIterator
from html import unescape

import aio_pika
import asyncpg
import httpx
import pytest

from contracts import routing
from tests.integration.conftest import SIGN_IN, address
from tests.integration.test_transfer import record_assets
from tests.support.flows import add_active_member, add_users, emails_to, membership_status, tokens_in
from tests.support.infra import create_infra, drop_vhost
from tests.support.smtp import RecordingSmtpServer
from tests.support.workers import WorkerProcess
from userprov.runtime.topology import declare_topology
from userprov_devtools.bus_client import BusClient
from userprov_devtools.ports import free_port
from userprov_devtools.waiting import eventually


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=15) as client:
        yield client


def state_of(page: httpx.Response) -> str:
    found = re.search(r'data-state="([a-z_]+)"', page.text)
    assert found, page.text[:500]
    return found.group(1)


def form_of(page: httpx.Response, action: str) -> dict[str, str]:
    """The form for `action` as it stands: its hidden fields, the confirmation box unticked."""
    forms = re.findall(r"<form .*?</form>", page.text, re.S)
    [form] = [f for f in forms if f'name="action" value="{action}"' in f]
    return {name: unescape(value) for name, value in re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form)}


class TestWelcome:
    async def test_get_and_head_show_only_and_a_confirmed_post_activates(
        self, links, http: httpx.AsyncClient, bus: BusClient, smtp: RecordingSmtpServer, db: asyncpg.Pool, account
    ) -> None:
        base, _ = links
        account_id = await account(name="Café <Crème> & Co")
        person = address("pageperson")
        await add_users(bus, {"account_id": account_id, "language": "de",
                              "users": [{"first_name": "Page", "last_name": "Person", "email": person}]})
        [email] = await emails_to(smtp, person)
        url = f"{base}?token={tokens_in(email)['link']}"

        for _ in range(3):
            shown = await http.get(url)
        assert (shown.status_code, state_of(shown)) == (200, "welcome")
        assert '<html lang="de">' in shown.text and "Café &lt;Crème&gt; &amp; Co" in shown.text and "Einladung annehmen" in shown.text
        assert (await http.head(url)).status_code == 200
        assert shown.headers["cache-control"] == "no-store" and shown.headers["referrer-policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in shown.headers["content-security-policy"] and "script" not in shown.text
        # a scanner submitting the form as it stands: the box is not ticked
        scanned = await http.post(base, data=form_of(shown, "accept"))
        assert (scanned.status_code, state_of(scanned)) == (422, "welcome") and 'role="alert"' in scanned.text
        assert await membership_status(db, account_id, person) == "invited"
        assert not bus.find(routing.USER_ACTIVATED, email=person)

        done = await http.post(base, data={**form_of(shown, "accept"), "confirm": "yes"})
        assert (done.status_code, state_of(done)) == (200, "activated")
        assert f'href="{SIGN_IN}?login_hint={person.replace("@", "%40")}"' in done.text
        assert await membership_status(db, account_id, person) == "active"
        again = await http.post(base, data={**form_of(shown, "accept"), "confirm": "yes"})  # a double submit
        assert (again.status_code, state_of(again)) == (200, "already_in") and SIGN_IN in again.text
        assert len(bus.find(routing.USER_ACTIVATED, email=person)) == 1
        assert state_of(await http.get(url)) == "already_in"


class TestTransfer:
    async def test_the_counts_then_a_confirmed_accept_moves_them(
        self, links, http: httpx.AsyncClient, bus: BusClient, smtp: RecordingSmtpServer, db: asyncpg.Pool, account
    ) -> None:
        base, _ = links
        old, new = await account(name="Old Page Corp"), await account(name="New Page Corp")
        person = address("pagemover")
        await add_active_member(bus, smtp, old, person)
        await record_assets(bus, db, old, person)
        await add_users(bus, {"account_id": new, "users": [{"first_name": "Mo", "last_name": "Ver", "email": person}]})
        _, transfer = await emails_to(smtp, person, count=2)
        shown = await http.get(f"{base}?token={tokens_in(transfer)['accept']}")
        assert state_of(shown) == "transfer" and "Old Page Corp" in shown.text
        assert all(f"{label}: {n}" in shown.text for label, n in
                   (("Session history", 2), ("Scheduled sessions", 1), ("Upcoming recordings", 1)))
        unconfirmed = await http.post(base, data=form_of(shown, "decline"))
        assert unconfirmed.status_code == 422 and await membership_status(db, new, person) == "transfer_pending"

        moved = await http.post(base, data={**form_of(shown, "accept"), "confirm": "yes"})
        assert (moved.status_code, state_of(moved)) == (200, "transferred") and "Session history: 2" in moved.text
        assert await membership_status(db, new, person) == "active" and await membership_status(db, old, person) == "removed"
        assert await db.fetchval("SELECT count(*) FROM assets WHERE account_id = $1", new) == 4

    async def test_a_confirmed_decline_suspends(
        self, links, http: httpx.AsyncClient, bus: BusClient, smtp: RecordingSmtpServer, db: asyncpg.Pool, account
    ) -> None:
        base, _ = links
        old, new = await account(), await account()
        person = address("pagedecliner")
        await add_active_member(bus, smtp, old, person)
        await add_users(bus, {"account_id": new, "users": [{"first_name": "De", "last_name": "Cline", "email": person}]})
        _, transfer = await emails_to(smtp, person, count=2)
        shown = await http.get(f"{base}?token={tokens_in(transfer)['decline']}")
        declined = await http.post(base, data={**form_of(shown, "decline"), "confirm": "yes"})
        assert (declined.status_code, state_of(declined)) == (200, "suspended")
        assert await membership_status(db, new, person) == "suspended" and await membership_status(db, old, person) == "active"


class TestLinksThatCannotBeUsed:
    async def test_revoked_and_expired_each_have_their_page(
        self, links, http: httpx.AsyncClient, bus: BusClient, smtp: RecordingSmtpServer, db: asyncpg.Pool, account
    ) -> None:
        base, _ = links
        account_id = await account(name="Gone Corp")
        removed, lapsed = address("pageremoved"), address("pagelapsed")
        await add_users(bus, {"account_id": account_id, "users": [{"first_name": "Re", "last_name": "Moved", "email": removed},
                                                                  {"first_name": "La", "last_name": "Psed", "email": lapsed}]})
        [removed_email], [lapsed_email] = await emails_to(smtp, removed), await emails_to(smtp, lapsed)
        removed_page = await http.get(f"{base}?token={tokens_in(removed_email)['link']}")
        await bus.publish(routing.USERS_REMOVE, {"account_id": account_id, "email": removed})
        await eventually(lambda: bus.find(routing.USER_REMOVED, email=removed), what="user.removed")
        await db.execute("UPDATE invitations SET expires_at = now() - interval '1 second' WHERE invitation_id IN"
                         " (SELECT i.invitation_id FROM invitations i JOIN memberships m USING (membership_id)"
                         "  JOIN profiles p USING (profile_id) WHERE p.email = $1)", lapsed)

        revoked = await http.get(f"{base}?token={tokens_in(removed_email)['link']}")
        assert (revoked.status_code, state_of(revoked)) == (410, "revoked") and "Gone Corp" in revoked.text
        expired = await http.get(f"{base}?token={tokens_in(lapsed_email)['link']}")
        assert (expired.status_code, state_of(expired)) == (410, "expired") and "new invitation" in expired.text
        # a form shown before the removal acts no more: the page looks again first
        late = await http.post(base, data={**form_of(removed_page, "accept"), "confirm": "yes"})
        assert (late.status_code, state_of(late)) == (410, "revoked")
        assert await membership_status(db, account_id, removed) == "removed"


class TestUserprovAway:
    async def test_the_page_says_to_retry_and_comes_back_by_itself(
        self, worker_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory, http: httpx.AsyncClient
    ) -> None:
        """A vhost where no worker ever ran: no exchange to bind to, no answer. The page stays up,
        answers 503 with Retry-After, and is ready once userprov's topology is there."""
        infra = create_infra()
        port = free_port()
        base = f"http://127.0.0.1:{port}/invitation"
        try:
            process = WorkerProcess("links-away", [], {**worker_env, "USERPROV_AMQP_URL": infra.amqp_url, "USERPROV_LINK_BASE_URL": base,
                                                       "USERPROV_LINKS_PORT": str(port), "USERPROV_LINKS_WAIT_SECONDS": "1"},
                                    tmp_path_factory.mktemp("links-away"), command=["links"], ready_log='"links_starting"')
            process.start()
            try:
                away = await eventually(lambda: _answer(http, f"{base}?token=q2Xh0v3mZ8r5Jk1LwN4pT7yB6cE9fA0sD2gH5jK8lM1"), 20,
                                        what="the page answering")
                assert (away.status_code, state_of(away), away.headers["retry-after"]) == (503, "busy", "5")
                assert (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 503
                connection = await aio_pika.connect(infra.amqp_url)  # as the workers declare it when they start
                try:
                    await declare_topology(connection, 5)
                finally:
                    await connection.close()
                await eventually(lambda: _ready(http, f"http://127.0.0.1:{port}/readyz"), 20, what="ready once userprov is there")
            finally:
                assert process.terminate() == 0
            # no form secret, on loopback: one process of this machine, where a random secret is enough
            assert not [line for line in process.lines() if "links_form_secret_unset" in line]
        finally:
            drop_vhost(infra.vhost)


async def _answer(http: httpx.AsyncClient, url: str) -> httpx.Response | None:
    try:
        return await http.get(url)
    except httpx.TransportError:
        return None


async def _ready(http: httpx.AsyncClient, url: str) -> bool:
    return (await http.get(url)).status_code == 200


class TestHostileRequests:
    async def test_each_gets_a_clear_answer(
        self, links, http: httpx.AsyncClient, bus: BusClient, smtp: RecordingSmtpServer, db: asyncpg.Pool, account
    ) -> None:
        base, _ = links
        account_id = await account()
        person = address("pagehostile")
        await add_users(bus, {"account_id": account_id, "users": [{"first_name": "Hos", "last_name": "Tile", "email": person}]})
        [email] = await emails_to(smtp, person)
        token = tokens_in(email)["link"]
        shown = await http.get(f"{base}?token={token}")
        form = {**form_of(shown, "accept"), "confirm": "yes"}

        answers = {
            "no form key": await http.post(base, data={k: v for k, v in form.items() if k != "form_key"}),
            "a wrong form key": await http.post(base, data={**form, "form_key": "A" * 36}),
            "another token's form key": await http.post(base, data={**form, "token": "x" * 43}),
            "a cross-site post": await http.post(base, data=form, headers={"sec-fetch-site": "cross-site"}),
            "an unknown action": await http.post(base, data={**form, "action": "delete"}),
            "a form too large": await http.post(base, data={**form, "padding": "p" * 10_000}),
            "a 10 KB token": await http.get(base, params={"token": "t" * 10_000}),
            "a non-ASCII token": await http.get(base, params={"token": "jeton-été-🎉" * 3}),
            "a token with NUL": await http.get(f"{base}?token=abc%00defghijklmnopqrstuvwxyz"),
            "a surrogate": await http.get(f"{base}?token=%ED%A0%80abcdefghijklmnopqrstu"),
            "no token": await http.get(base),
            "an unknown token": await http.get(base, params={"token": "q2Xh0v3mZ8r5Jk1LwN4pT7yB6cE9fA0sD2gH5jK8lM1"}),
            "PUT": await http.put(base, content=b"x"),
            "DELETE": await http.delete(base),
            "PATCH": await http.patch(base, content=b"x"),
        }
        statuses = {what: answer.status_code for what, answer in answers.items()}
        assert statuses == {
            "no form key": 403, "a wrong form key": 403, "another token's form key": 403, "a cross-site post": 403,
            "an unknown action": 403, "a form too large": 413, "a 10 KB token": 404, "a non-ASCII token": 404,
            "a token with NUL": 404, "a surrogate": 404, "no token": 404, "an unknown token": 404,
            "PUT": 405, "DELETE": 405, "PATCH": 405,
        }
        assert await membership_status(db, account_id, person) == "invited"  # none of them acted

    async def test_500_idle_connections_and_a_slow_client_leave_the_page_answering_and_the_slow_one_gets_408(self, links, http: httpx.AsyncClient) -> None:
        base, _ = links
        port = int(base.split(":")[2].split("/")[0])
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(500)]
        slow = socket.create_connection(("127.0.0.1", port))
        try:
            slow.sendall(b"GET /invitation?token=")  # and never the rest
            answer = await http.get(base, params={"token": "q2Xh0v3mZ8r5Jk1LwN4pT7yB6cE9fA0sD2gH5jK8lM1"})
            assert answer.status_code == 404 and state_of(answer) == "unknown"
            slow.settimeout(10)  # USERPROV_LINKS_REQUEST_SECONDS is 2 here
            started = time.monotonic()
            told = await asyncio.to_thread(slow.recv, 1000)
            assert told.startswith(b"HTTP/1.1 408 ") and time.monotonic() - started < 5, told
            assert await asyncio.to_thread(slow.recv, 1000) == b""  # and closed
        finally:
            for connection in [*idle, slow]:
                connection.close()

    async def test_readiness_and_static_files(self, links, http: httpx.AsyncClient) -> None:
        base, _ = links
        root = base.rsplit("/", 1)[0]
        assert (await http.get(f"{root}/readyz")).status_code == 200
        css = await http.get(f"{base}/static/page.css")
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
        assert (await http.get(f"{base}/static/../../etc/passwd")).status_code == 404
