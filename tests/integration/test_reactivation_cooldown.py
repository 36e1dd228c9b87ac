"""An identity provider that flaps (or a bus client looping users.deactivate and users.reactivate)
cannot flood a person's inbox: the invitations that reactivation issues within
USERPROV_RESEND_COOLDOWN_SECONDS of the last email that reached the person wait for the cooldown,
and only the latest of them, if the member is still waiting for it, is sent."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg

from contracts import routing
from tests.integration.conftest import accounts_on, address
from tests.integration.test_peek import peek
from tests.support.flows import add_users, emails_to, tokens_in
from tests.support.isolated import isolated_worker
from tests.support.smtp import RecordingSmtpServer
from userprov_devtools.bus_client import BusClient
from userprov_devtools.waiting import eventually

COOLDOWN = 6  # long enough for the cycles below (about a second) to fit in it on a busy machine
CYCLES = 5


async def _switch(bus: BusClient, command: str, event: str, account_id: str, email: str) -> None:
    message_id = await bus.publish(command, {"account_id": account_id, "email": email})
    await eventually(lambda: bus.find(event, correlation_id=message_id), what=event)


async def _open_invitations(db: asyncpg.Connection, account_id: str, email: str) -> list[str]:
    return [r["status"] for r in await db.fetch(
        "SELECT i.status FROM invitations i JOIN memberships m USING (membership_id) JOIN profiles p USING (profile_id)"
        " WHERE m.account_id = $1 AND p.email = $2 AND i.status IN ('issued', 'sending')", account_id, email)]


async def test_deactivate_reactivate_cycles_send_one_email_per_cooldown(
    worker_env: dict[str, str], smtp: RecordingSmtpServer, tmp_path: Path
) -> None:
    async with isolated_worker("cooldown", worker_env, tmp_path, USERPROV_RESEND_COOLDOWN_SECONDS=str(COOLDOWN),
                               USERPROV_SCHEDULER_POLL_SECONDS="0.2") as (infra, _, bus):
        account_id = await accounts_on(bus)({"gotomeeting": 5})
        flapping, leaving = address("flapping"), address("leaving")  # one ends reactivated, one deactivated
        added_at = time.time()
        await add_users(bus, {"account_id": account_id, "products": ["gotomeeting"],
                              "users": [{"first_name": "Flap", "last_name": "Ping", "email": flapping},
                                        {"first_name": "Lea", "last_name": "Ving", "email": leaving}]})
        [first] = await emails_to(smtp, flapping)
        await emails_to(smtp, leaving)
        assert first.received_at - added_at < COOLDOWN  # a first invitation is never held
        # the cooldown runs from an email recorded as sent: the cycles start once both are (not in the
        # moment between the SMTP server's acceptance and that record, when a revocation leaves it unrecorded)
        for person in (flapping, leaving):
            await eventually(lambda: bus.find(routing.INVITATION_SENT, email=person), what="invitation.sent")  # noqa: B023

        for n in range(CYCLES):
            await asyncio.gather(*(_switch(bus, routing.USERS_DEACTIVATE, routing.USER_DEACTIVATED, account_id, p)
                                   for p in (flapping, leaving)))
            await asyncio.gather(*(_switch(bus, routing.USERS_REACTIVATE, routing.USER_REACTIVATED, account_id, p)
                                   for p in ((flapping, leaving) if n < CYCLES - 1 else (flapping,))))
        cycles_done = time.time()
        assert cycles_done < first.received_at + COOLDOWN, "the cycles outlasted the cooldown: the test proves nothing"
        assert len(smtp.handler.to(flapping)) == 1, "an invitation emailed within the cooldown of the last one"

        _, second = await emails_to(smtp, flapping, count=2, timeout=COOLDOWN + 20)
        assert second.received_at >= first.received_at + COOLDOWN - 0.5  # (the database's clock and this one's may differ a little)
        assert (await peek(bus, tokens_in(second)["link"]))["status"] == "open"  # the latest invitation, its link works
        db = await asyncpg.connect(infra.database_url)
        try:
            assert await _open_invitations(db, account_id, flapping) == []  # nothing else will be sent
            assert await _open_invitations(db, account_id, leaving) == []  # left deactivated: nothing waits for them
        finally:
            await db.close()
        assert len(smtp.handler.to(flapping)) == 2
        assert len(smtp.handler.to(leaving)) == 1
