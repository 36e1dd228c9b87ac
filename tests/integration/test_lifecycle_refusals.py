from __future__ import annotations

import asyncpg

from contracts import routing
from tests.integration.conftest import address
from tests.support.flows import add_active_member, add_users, emails_to, membership_status, tokens_in
from tests.support.smtp import RecordingSmtpServer
from userprov_devtools.bus_client import BusClient
from userprov_devtools.waiting import eventually


async def refused(bus: BusClient, routing_key: str, body: dict) -> str:
    message_id = await bus.publish(routing_key, body)
    [event] = await eventually(lambda: bus.find(routing.COMMAND_REJECTED, command_id=message_id), what=f"{routing_key} refused")
    return event.body["reason"]


class TestResendAndRemoveRefusals:
    """Resend and remove follow the same rules as adding, and refuse what makes no sense."""

    async def test_refusals(self, bus: BusClient, smtp: RecordingSmtpServer, db: asyncpg.Pool, account) -> None:
        account_id = await account()
        admin, manager, member, invitee = address("admin"), address("manager"), address("member"), address("invitee")
        await add_active_member(bus, smtp, account_id, admin, role="admin")
        await add_active_member(bus, smtp, account_id, manager, role="manager")
        await add_active_member(bus, smtp, account_id, member)
        await add_users(bus, {"account_id": account_id, "users": [{"first_name": "I", "last_name": "N", "email": invitee}]})
        await emails_to(smtp, invitee)

        assert await refused(bus, routing.INVITATIONS_RESEND, {"account_id": account_id, "email": member}) == "not_resendable"
        assert await refused(bus, routing.INVITATIONS_RESEND, {"account_id": account_id, "email": address("nobody")}) == "unknown_user"
        assert await refused(bus, routing.INVITATIONS_RESEND, {"account_id": account_id, "email": invitee}) == "resend_cooldown"
        assert await refused(bus, routing.USERS_REMOVE, {"account_id": account_id, "email": address("nobody")}) == "unknown_user"
        assert await refused(bus, routing.USERS_REMOVE, {"account_id": "no-such-account", "email": member}) == "unknown_account"
        assert await refused(bus, routing.USERS_REMOVE, {"account_id": account_id, "email": admin, "requested_by": manager}) == "forbidden"
        assert await refused(bus, routing.USERS_REMOVE, {"account_id": account_id, "email": member, "requested_by": invitee}) == "forbidden"
        # a stranger learns nothing about who is a member: members and non-members are both "forbidden"
        stranger = address("stranger")
        for key in (routing.USERS_REMOVE, routing.INVITATIONS_RESEND):
            for target in (member, address("nobody")):
                assert await refused(bus, key, {"account_id": account_id, "email": target, "requested_by": stranger}) == "forbidden"
        assert await refused(bus, routing.USERS_REMOVE, {"account_id": account_id, "email": admin}) == "last_admin"
        assert await membership_status(db, account_id, admin) == "active"

        await bus.publish(routing.USERS_REMOVE, {"account_id": account_id, "email": member, "requested_by": manager})
        await eventually(lambda: bus.find(routing.USER_REMOVED, email=member))
        await db.execute("UPDATE invitations SET created_at = created_at - interval '1 hour'")
        await bus.publish(routing.INVITATIONS_RESEND, {"account_id": account_id, "email": invitee, "requested_by": manager})
        await emails_to(smtp, invitee, count=2)

    async def test_removed_user_can_be_added_again(self, bus: BusClient, smtp: RecordingSmtpServer, db: asyncpg.Pool, account) -> None:
        account_id = await account({"gotomeeting": 1})
        person = address("again")
        await add_active_member(bus, smtp, account_id, person, products=["gotomeeting"])
        await bus.publish(routing.USERS_REMOVE, {"account_id": account_id, "email": person})
        [removed] = await eventually(lambda: bus.find(routing.USER_REMOVED, email=person))
        assert removed.body["released"] == {"gotomeeting": 1}
        again = await add_users(bus, {"account_id": account_id, "products": ["gotomeeting"], "users": [{"first_name": "A", "last_name": "G", "email": person}]})
        assert again.body["results"][0]["outcome"] == "accepted"
        await emails_to(smtp, person, count=2)
        assert await membership_status(db, account_id, person) == "invited"

    async def test_asset_for_unknown_person_is_reported(self, bus: BusClient, account) -> None:
        account_id = await account()
        assert await refused(bus, routing.ASSET_RECORDED, {
            "account_id": account_id, "email": address("ghost"), "kind": "session_history", "ref": "x"}) == "unknown_user"
        assert await refused(bus, routing.ASSET_RECORDED, {
            "account_id": "no-such-account", "email": address("ghost"), "kind": "session_history", "ref": "x"}) == "unknown_account"


class TestExpiry:
    """Expired tokens are refused; an expired transfer leaves the user waiting until resent or removed."""

    async def test_expired_tokens(self, bus: BusClient, smtp: RecordingSmtpServer, db: asyncpg.Pool, account) -> None:
        old, new = await account(), await account()
        welcome_person, transfer_person = address("expw"), address("expt")
        await add_users(bus, {"account_id": new, "users": [{"first_name": "E", "last_name": "W", "email": welcome_person}]})
        await add_active_member(bus, smtp, old, transfer_person)
        await add_users(bus, {"account_id": new, "users": [{"first_name": "E", "last_name": "T", "email": transfer_person}]})
        [welcome] = await emails_to(smtp, welcome_person)
        _, transfer = await emails_to(smtp, transfer_person, count=2)
        await eventually(lambda: len(bus.find(routing.INVITATION_SENT, account_id=new)) == 2)
        await db.execute(
            "UPDATE invitations i SET expires_at = now() - interval '1 second' FROM memberships m"
            " WHERE m.membership_id = i.membership_id AND m.account_id = $1", new)

        for token, correlation in ((tokens_in(welcome)["link"], "w"), (tokens_in(transfer)["accept"], "ta"), (tokens_in(transfer)["decline"], "td")):
            await bus.publish(routing.INVITATION_ACCEPTED if correlation != "td" else routing.INVITATION_DECLINED,
                              {"token": token}, correlation_id=f"expired-{correlation}-{new}")
            [event] = await eventually(lambda: bus.find(routing.INVITATION_RESPONSE_REJECTED, correlation_id=f"expired-{correlation}-{new}"))
            assert event.body["reason"] == "expired"
        assert await membership_status(db, new, transfer_person) == "transfer_pending"
        assert await membership_status(db, new, welcome_person) == "invited"
        user = await bus.query(routing.USERS_GET, {"account_id": new, "email": transfer_person})
        assert user["invitation"]["status"] == "expired"
