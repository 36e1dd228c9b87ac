"""An account's invitation_quota_per_day bounds its invitations in any rolling 24 hours."""
from __future__ import annotations

import asyncio

import asyncpg

from contracts import routing
from tests.integration.conftest import address
from tests.integration.test_lifecycle_refusals import refused
from tests.support.flows import add_users, emails_to
from tests.support.smtp import RecordingSmtpServer
from userprov_devtools.bus_client import BusClient
from userprov_devtools.waiting import eventually


def people(local: str, n: int) -> list[str]:
    return [address(f"{local}{i}") for i in range(n)]


def rows(emails: list[str]) -> list[dict[str, str]]:
    return [{"first_name": "Quota", "last_name": f"Row{i}", "email": e} for i, e in enumerate(emails)]


async def quota_of(bus: BusClient, account_id: str) -> tuple[int | None, int | None]:
    answer = await bus.query(routing.ACCOUNTS_GET, {"account_id": account_id})
    return answer["invitation_quota_per_day"], answer["invitations_left"]


async def upsert(bus: BusClient, body: dict) -> None:
    """An accounts.upsert, applied."""
    message_id = await bus.publish(routing.ACCOUNTS_UPSERT, body)
    await eventually(lambda: _done(bus, message_id), what="upsert applied")


async def _done(bus: BusClient, command_id: str) -> bool:
    answer = await bus.query(routing.COMMANDS_GET, {"command_id": command_id})
    assert answer.get("outcome") != "rejected", answer
    return bool(answer["found"])


class TestInvitationQuota:
    async def test_an_add_past_the_quota_then_a_resend(self, bus: BusClient, smtp: RecordingSmtpServer, account) -> None:
        account_id = await account(invitation_quota_per_day=10)
        assert await quota_of(bus, account_id) == (10, 10)
        emails = people("quota", 15)
        dry = await add_users(bus, {"account_id": account_id, "users": rows(emails), "dry_run": True})

        done = await add_users(bus, {"account_id": account_id, "users": rows(emails)})

        outcomes = [(r["outcome"], [e["code"] for e in r["errors"]]) for r in done.body["results"]]
        assert outcomes == [("accepted", [])] * 10 + [("rejected", ["invitation_quota_exceeded"])] * 5
        # a dry run foretold it, and reserved nothing
        assert [(r["outcome"], [e["code"] for e in r["errors"]]) for r in dry.body["results"]] == outcomes
        assert dry.body["invitations_left"] == 10 and done.body["invitations_left"] is None
        for person in emails[:10]:
            await emails_to(smtp, person)
        assert await quota_of(bus, account_id) == (10, 0)
        answer = await bus.query(routing.USERS_GET, {"account_id": account_id, "email": emails[10]})
        assert answer["found"] is False  # nothing was created for a row past the quota
        # a resend is refused with the same code (before its cooldown is judged)
        assert await refused(bus, routing.INVITATIONS_RESEND, {"account_id": account_id, "email": emails[0]}) == \
            "invitation_quota_exceeded"
        # an upsert without the field keeps the quota; null removes it
        await upsert(bus, {"account_id": account_id, "name": "Renamed"})
        assert await quota_of(bus, account_id) == (10, 0)
        await upsert(bus, {"account_id": account_id, "invitation_quota_per_day": None})
        assert await quota_of(bus, account_id) == (None, None)
        assert [len(smtp.handler.to(p)) for p in emails] == [1] * 10 + [0] * 5

    async def test_two_commands_racing_for_the_last_five(self, bus: BusClient, smtp: RecordingSmtpServer, db: asyncpg.Pool,
                                                         account) -> None:
        account_id = await account(invitation_quota_per_day=5)
        first, second = people("racea", 5), people("raceb", 5)

        done = await asyncio.gather(*(add_users(bus, {"account_id": account_id, "users": rows(group)}) for group in (first, second)))

        accepted = [r["email"] for d in done for r in d.body["results"] if r["outcome"] == "accepted"]
        refused_rows = [r for d in done for r in d.body["results"] if r["outcome"] == "rejected"]
        assert len(accepted) == 5 and len(refused_rows) == 5, [d.body for d in done]
        assert {e["code"] for r in refused_rows for e in r["errors"]} == {"invitation_quota_exceeded"}
        for person in accepted:
            await emails_to(smtp, person)
        await eventually(lambda: db.fetchval("SELECT count(*) = 5 FROM invitations WHERE account_id = $1 AND status = 'sent'",
                                             account_id), what="five invitations sent")
        assert await db.fetchval("SELECT count(*) FROM invitations WHERE account_id = $1", account_id) == 5
        assert sum(len(smtp.handler.to(p)) for p in first + second) == 5

    async def test_a_reactivation_that_invites_anew_counts(self, bus: BusClient, smtp: RecordingSmtpServer, db: asyncpg.Pool,
                                                           account) -> None:
        account_id = await account(invitation_quota_per_day=1)
        person = address("back")
        await add_users(bus, {"account_id": account_id, "users": rows([person])})
        await emails_to(smtp, person)
        member = {"account_id": account_id, "email": person}
        await bus.publish(routing.USERS_DEACTIVATE, member)
        await eventually(lambda: bus.find(routing.USER_DEACTIVATED, email=person), what="deactivated")

        assert await refused(bus, routing.USERS_REACTIVATE, member) == "invitation_quota_exceeded"
        assert (await bus.query(routing.USERS_GET, member))["status"] == "deactivated"  # nothing changed

        await upsert(bus, {"account_id": account_id, "invitation_quota_per_day": 2})
        await bus.publish(routing.USERS_REACTIVATE, member)
        [back] = await eventually(lambda: bus.find(routing.USER_REACTIVATED, email=person), what="reactivated")
        assert back.body["status"] == "pending"
        assert await quota_of(bus, account_id) == (2, 0)
