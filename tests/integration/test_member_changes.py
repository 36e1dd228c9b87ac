"""What an identity provider changes of a member. users.deactivate and users.reactivate (SCIM's
`active: false` and `true`): a deactivated member keeps their membership, not its use; their
seats are released and their open invitations revoked. Reactivated, they are active again if
they had accepted, otherwise invited anew; with a seat of each product they held, or refused
when one has none free. users.add of a row with `active: false`: deactivated from the start, no
seat, never invited. users.update: names, external id, language and status in one transaction,
the values checked as a row's are."""
from __future__ import annotations

import asyncpg

from contracts import routing
from tests.integration.conftest import address
from tests.integration.test_lifecycle_refusals import refused
from tests.support.flows import add_active_member, add_users, assert_seats_consistent, emails_to, membership_status, tokens_in
from tests.support.smtp import RecordingSmtpServer
from userprov_devtools.bus_client import BusClient
from userprov_devtools.waiting import eventually


async def _deactivate(bus: BusClient, account_id: str, email: str) -> dict:
    message_id = await bus.publish(routing.USERS_DEACTIVATE, {"account_id": account_id, "email": email})
    [event] = await eventually(lambda: bus.find(routing.USER_DEACTIVATED, correlation_id=message_id), what="user.deactivated")
    return event.body


async def _reactivate(bus: BusClient, account_id: str, email: str) -> dict:
    message_id = await bus.publish(routing.USERS_REACTIVATE, {"account_id": account_id, "email": email})
    [event] = await eventually(lambda: bus.find(routing.USER_REACTIVATED, correlation_id=message_id), what="user.reactivated")
    return event.body


class TestDeactivation:
    async def test_an_active_member_deactivated_and_back(self, bus: BusClient, smtp: RecordingSmtpServer, db: asyncpg.Pool, account) -> None:
        account_id = await account({"gotomeeting": 2, "gotowebinar": 2})
        person = address("active")
        await add_active_member(bus, smtp, account_id, person, products=["gotomeeting", "gotowebinar"])

        deactivated = await _deactivate(bus, account_id, person)
        assert deactivated["released"] == {"gotomeeting": 1, "gotowebinar": 1}
        answer = await bus.query(routing.USERS_GET, {"account_id": account_id, "email": person})
        assert answer["status"] == "deactivated"
        await assert_seats_consistent(db, account_id)
        assert await db.fetchval("SELECT sum(seats_used) FROM account_licences WHERE account_id = $1", account_id) == 0
        assert await refused(bus, routing.USERS_DEACTIVATE, {"account_id": account_id, "email": person}) == "already_deactivated"
        # still a member: adding them again is no new membership
        again = await add_users(bus, {"account_id": account_id, "users": [{"first_name": "A", "last_name": "B", "email": person}]})
        assert again.body["results"][0]["outcome"] == "already_member"

        back = await _reactivate(bus, account_id, person)
        assert back["status"] == "active" and back["seats"] == {"gotomeeting": 1, "gotowebinar": 1}
        assert await membership_status(db, account_id, person) == "active"
        await assert_seats_consistent(db, account_id)
        assert len(smtp.handler.to(person)) == 1  # no new invitation for someone who had accepted
        assert await refused(bus, routing.USERS_REACTIVATE, {"account_id": account_id, "email": person}) == "not_deactivated"

    async def test_an_invited_member_loses_the_invitation_and_is_invited_anew(
        self, bus: BusClient, smtp: RecordingSmtpServer, db: asyncpg.Pool, account
    ) -> None:
        account_id = await account({"gotomeeting": 1})
        person = address("invited")
        await add_users(bus, {"account_id": account_id, "products": ["gotomeeting"],
                              "users": [{"first_name": "In", "last_name": "Vited", "email": person}]})
        [first] = await emails_to(smtp, person)
        await _deactivate(bus, account_id, person)

        await bus.publish(routing.INVITATION_ACCEPTED, {"token": tokens_in(first)["link"]})
        [rejected] = await eventually(lambda: bus.find(routing.INVITATION_RESPONSE_REJECTED, account_id=account_id), what="the old link refused")
        assert rejected.body["reason"] == "revoked"
        assert await membership_status(db, account_id, person) == "deactivated"

        back = await _reactivate(bus, account_id, person)
        assert back["status"] == "pending" and back["seats"] == {"gotomeeting": 1}
        _, second = await emails_to(smtp, person, count=2)
        await bus.publish(routing.INVITATION_ACCEPTED, {"token": tokens_in(second)["link"]})
        await eventually(lambda: bus.find(routing.USER_ACTIVATED, email=person, account_id=account_id), what="activation")
        await assert_seats_consistent(db, account_id)

    async def test_refusals(self, bus: BusClient, smtp: RecordingSmtpServer, db: asyncpg.Pool, account) -> None:
        account_id = await account({"gotomeeting": 1})
        admin, member, other = address("admin"), address("member"), address("other")
        await add_active_member(bus, smtp, account_id, admin, role="admin")
        await add_active_member(bus, smtp, account_id, member, products=["gotomeeting"])
        assert await refused(bus, routing.USERS_DEACTIVATE, {"account_id": account_id, "email": admin}) == "last_admin"
        assert await refused(bus, routing.USERS_DEACTIVATE, {"account_id": account_id, "email": address("nobody")}) == "unknown_user"
        assert await refused(bus, routing.USERS_REACTIVATE, {"account_id": account_id, "email": member}) == "not_deactivated"
        stranger = address("stranger")
        assert await refused(bus, routing.USERS_DEACTIVATE,
                             {"account_id": account_id, "email": member, "requested_by": stranger}) == "forbidden"

        await _deactivate(bus, account_id, member)
        # the freed seat goes to someone else: no seat to come back to
        await add_active_member(bus, smtp, account_id, other, products=["gotomeeting"])
        assert await refused(bus, routing.USERS_REACTIVATE, {"account_id": account_id, "email": member}) == "no_free_seat"
        assert await membership_status(db, account_id, member) == "deactivated"
        await assert_seats_consistent(db, account_id)


class TestUpdate:
    async def test_names_and_external_id(self, bus: BusClient, smtp: RecordingSmtpServer, account) -> None:
        account_id = await account()
        person = address("update")
        await add_users(bus, {"account_id": account_id, "users": [{"first_name": "Ada", "last_name": "Byron", "email": person,
                                                                    "external_id": "okta-1"}]})
        message_id = await bus.publish(routing.USERS_UPDATE, {"account_id": account_id, "email": person, "last_name": " Lovelace ",
                                                              "first_name": "Ada"})
        [updated] = await eventually(lambda: bus.find(routing.USER_UPDATED, correlation_id=message_id), what="user.updated")
        assert updated.body["changed"] == {"last_name": "Lovelace"}  # trimmed as a row is; the unchanged name is not reported
        message_id = await bus.publish(routing.USERS_UPDATE, {"account_id": account_id, "email": person, "external_id": None})
        [cleared] = await eventually(lambda: bus.find(routing.USER_UPDATED, correlation_id=message_id), what="user.updated")
        assert cleared.body["changed"] == {"external_id": None}
        answer = await bus.query(routing.USERS_GET, {"account_id": account_id, "email": person})
        assert (answer["first_name"], answer["last_name"], answer["external_id"]) == ("Ada", "Lovelace", None)

        message_id = await bus.publish(routing.USERS_UPDATE, {"account_id": account_id, "email": person, "first_name": "x" * 40,
                                                              "external_id": "bad\u202eid"})
        [refusal] = await eventually(lambda: bus.find(routing.COMMAND_REJECTED, command_id=message_id), what="the refusal")
        assert refusal.body["reason"] == "invalid_values"
        assert {(e["field"], e["code"]) for e in refusal.body["errors"]} == {("first_name", "too_long"), ("external_id", "invalid_characters")}
        assert await refused(bus, routing.USERS_UPDATE, {"account_id": account_id, "email": person, "last_name": None}) == "schema_invalid"
        assert await refused(bus, routing.USERS_UPDATE, {"account_id": account_id, "email": address("nobody"), "last_name": "X"}) == "unknown_user"



async def _invitations(db: asyncpg.Pool, account_id: str, email: str) -> list[str]:
    return [r["status"] for r in await db.fetch(
        "SELECT i.status FROM invitations i JOIN memberships m USING (membership_id) JOIN profiles p USING (profile_id)"
        " WHERE m.account_id = $1 AND p.email = $2", account_id, email)]


async def _seats(db: asyncpg.Pool, account_id: str, email: str) -> list[str]:
    return [r["product"] for r in await db.fetch(
        "SELECT s.product FROM seat_assignments s JOIN memberships m USING (membership_id) JOIN profiles p USING (profile_id)"
        " WHERE m.account_id = $1 AND p.email = $2", account_id, email)]


class TestAddedInactive:
    async def test_deactivated_from_the_start_without_a_seat_or_an_invitation_until_reactivated(
        self, bus: BusClient, smtp: RecordingSmtpServer, db: asyncpg.Pool, account
    ) -> None:
        account_id = await account({"gotomeeting": 1})
        hire, colleague = address("future-hire"), address("colleague")
        body = {"account_id": account_id, "products": ["gotomeeting"], "language": "fr",
                "users": [{"first_name": "Future", "last_name": "Hire", "email": hire, "active": False},
                          {"first_name": "Col", "last_name": "League", "email": colleague}]}
        message_id = "users-add-inactive-" + account_id
        for _ in range(2):  # redelivered: one effect
            await bus.publish(routing.USERS_ADD, body, message_id=message_id)
        [done] = await eventually(lambda: bus.find(routing.USERS_ADD_COMPLETED, command_id=message_id), what="users.add.completed")
        assert [r["outcome"] for r in done.body["results"]] == ["accepted", "accepted"], "the inactive row needs no free seat"
        await emails_to(smtp, colleague)
        assert await membership_status(db, account_id, hire) == "deactivated"
        assert await _seats(db, account_id, hire) == [] and await _invitations(db, account_id, hire) == []
        assert not bus.find(routing.USER_DEACTIVATED, account_id=account_id), "never active: nothing was taken away"
        await assert_seats_consistent(db, account_id)
        assert await refused(bus, routing.USERS_REACTIVATE, {"account_id": account_id, "email": hire}) == "no_free_seat"

        await bus.publish(routing.USERS_REMOVE, {"account_id": account_id, "email": colleague})
        await eventually(lambda: bus.find(routing.USER_REMOVED, email=colleague), what="the colleague removed")
        back = await _reactivate(bus, account_id, hire)
        assert back["status"] == "pending" and back["seats"] == {"gotomeeting": 1}
        [invitation] = await emails_to(smtp, hire)
        assert "Future" in invitation.text and tokens_in(invitation)["link"]
        assert await _seats(db, account_id, hire) == ["gotomeeting"]
        await assert_seats_consistent(db, account_id)
        assert await db.fetchval("SELECT count(*) FROM memberships m JOIN profiles p USING (profile_id)"
                                 " WHERE m.account_id = $1 AND p.email = $2", account_id, hire) == 1


class TestUpdateAllOrNothing:
    async def test_names_language_and_status_in_one_command(self, bus: BusClient, smtp: RecordingSmtpServer, db: asyncpg.Pool,
                                                            account) -> None:
        account_id = await account({"gotomeeting": 1})
        person = address("changes")
        await add_active_member(bus, smtp, account_id, person, products=["gotomeeting"])
        message_id = await bus.publish(routing.USERS_UPDATE, {"account_id": account_id, "email": person, "first_name": "Grace",
                                                              "language": "de", "active": False})
        [updated] = await eventually(lambda: bus.find(routing.USER_UPDATED, correlation_id=message_id), what="user.updated")
        [deactivated] = bus.find(routing.USER_DEACTIVATED, correlation_id=message_id)
        assert updated.body["changed"] == {"first_name": "Grace", "language": "de"}
        assert deactivated.body["released"] == {"gotomeeting": 1}
        answer = await bus.query(routing.USERS_GET, {"account_id": account_id, "email": person})
        assert (answer["first_name"], answer["language"], answer["status"]) == ("Grace", "de", "deactivated")

        same = await bus.publish(routing.USERS_UPDATE, {"account_id": account_id, "email": person, "active": False})
        [unchanged] = await eventually(lambda: bus.find(routing.USER_UPDATED, correlation_id=same), what="user.updated")
        assert unchanged.body["changed"] == {} and not bus.find(routing.USER_DEACTIVATED, correlation_id=same), "the same value: no change"

    async def test_a_refused_status_change_leaves_every_other_change_undone(
        self, bus: BusClient, smtp: RecordingSmtpServer, db: asyncpg.Pool, account
    ) -> None:
        account_id = await account({"gotomeeting": 1})
        admin, member, other = address("admin"), address("member"), address("other")
        await add_active_member(bus, smtp, account_id, admin, role="admin")
        await add_active_member(bus, smtp, account_id, member, products=["gotomeeting"])
        await _deactivate(bus, account_id, member)
        await add_active_member(bus, smtp, account_id, other, products=["gotomeeting"])  # takes the freed seat

        back = {"account_id": account_id, "email": member, "first_name": "Changed", "external_id": "x-1", "language": "it", "active": True}
        assert await refused(bus, routing.USERS_UPDATE, back) == "no_free_seat"
        leave = {"account_id": account_id, "email": admin, "last_name": "Changed", "active": False}
        assert await refused(bus, routing.USERS_UPDATE, leave) == "last_admin"
        for person, status in ((member, "deactivated"), (admin, "active")):
            answer = await bus.query(routing.USERS_GET, {"account_id": account_id, "email": person})
            assert (answer["first_name"], answer["last_name"], answer["external_id"], answer["language"], answer["status"]) == (
                "Active", "Member", None, "en", status), person
        assert not bus.find(routing.USER_UPDATED, account_id=account_id)
        await assert_seats_consistent(db, account_id)

        unsupported = {"account_id": account_id, "email": member, "language": "xx"}
        assert await refused(bus, routing.USERS_UPDATE, unsupported) == "unsupported_language"
        assert await refused(bus, routing.USERS_UPDATE, {**unsupported, "language": None}) == "schema_invalid"
        assert await refused(bus, routing.USERS_UPDATE, {**unsupported, "language": "fr", "active": None}) == "schema_invalid"
