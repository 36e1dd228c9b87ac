from __future__ import annotations

import asyncpg

from contracts import routing
from tests.integration.conftest import address
from tests.support.flows import (
    active_accounts,
    add_active_member,
    add_users,
    assert_seats_consistent,
    emails_to,
    membership_status,
    tokens_in,
)
from tests.support.smtp import RecordingSmtpServer
from userprov_devtools.bus_client import BusClient
from userprov_devtools.waiting import eventually

ASSETS = [("session_history", "s1"), ("session_history", "s2"), ("scheduled_session", "m1"), ("upcoming_recording", "r1")]


async def record_assets(bus: BusClient, db: asyncpg.Pool, account_id: str, email: str) -> None:
    """Records ASSETS, the first twice; each is confirmed by asset.counted, the repeat as not new."""
    for kind, ref in ASSETS + [ASSETS[0]]:  # the repeat is idempotent on (account, kind, ref)
        await bus.publish(routing.ASSET_RECORDED, {"account_id": account_id, "email": email, "kind": kind, "ref": f"{account_id}-{ref}"})
    await eventually(lambda: db.fetchval("SELECT count(*) = 4 FROM assets WHERE account_id = $1", account_id), what="assets")
    counted = await eventually(lambda: len(bus.find(routing.ASSET_COUNTED, account_id=account_id)) == 5
                               and bus.find(routing.ASSET_COUNTED, account_id=account_id), what="asset.counted")
    assert sorted((c.body["kind"], c.body["ref"].rpartition("-")[2], c.body["new"]) for c in counted) == sorted(
        [(kind, ref, True) for kind, ref in ASSETS] + [(ASSETS[0][0], ASSETS[0][1], False)])


class TestTransfer:
    """A person with a profile elsewhere is invited to transfer; accept moves their data and seats."""

    async def test_accept_moves_everything(self, bus: BusClient, smtp: RecordingSmtpServer, db: asyncpg.Pool, account) -> None:
        old = await account({"gotomeeting": 5, "openvoice": 5}, name="Old Corp")
        new = await account({"gotowebinar": 3}, name="New Corp")
        person = address("mover")
        await add_active_member(bus, smtp, old, person, products=["gotomeeting", "openvoice"], language="de")
        await record_assets(bus, db, old, person)
        # the new account already knows one of them (same kind and ref): merged, not a conflict
        await db.execute("INSERT INTO assets (account_id, kind, ref, profile_id) SELECT $1, kind, ref, profile_id"
                         " FROM assets WHERE account_id = $2 AND kind = 'upcoming_recording'", new, old)

        done = await add_users(bus, {"account_id": new, "products": ["gotowebinar"], "language": "de",
                                     "users": [{"first_name": "Mo", "last_name": "Ver", "email": person}]})
        assert done.body["results"][0]["outcome"] == "accepted"
        [sent] = await eventually(lambda: bus.find(routing.INVITATION_SENT, email=person, account_id=new))
        assert sent.body["kind"] == "transfer"
        _, transfer_email = await emails_to(smtp, person, count=2)
        links = tokens_in(transfer_email)
        assert set(links) == {"accept", "decline"} and links["accept"] == links["decline"]
        assert "Old Corp" in transfer_email.text and "New Corp" in transfer_email.subject
        assert "Einladung annehmen" in transfer_email.text  # the person's language
        assert await membership_status(db, new, person) == "transfer_pending"
        assert await db.fetchval("SELECT seats_used FROM account_licences WHERE account_id = $1", new) == 1

        await bus.publish(routing.INVITATION_ACCEPTED, {"token": links["accept"]})
        [moved] = await eventually(lambda: bus.find(routing.USER_TRANSFERRED, email=person))
        assert moved.body["from_account_id"] == old and moved.body["to_account_id"] == new
        assert moved.body["moved"] == {"session_history": 2, "scheduled_sessions": 1, "upcoming_recordings": 1}
        assert await active_accounts(db, person) == [new]
        assert await membership_status(db, old, person) == "removed"
        assert dict(await db.fetch("SELECT product, seats_used FROM account_licences WHERE account_id = $1", old)) == {
            "gotomeeting": 0, "openvoice": 0}
        assert await db.fetchval("SELECT count(*) FROM assets WHERE account_id = $1", new) == 4
        user = await bus.query(routing.USERS_GET, {"account_id": new, "email": person})
        assert (user["status"], user["products"], user["invitation"]["status"]) == ("active", ["gotowebinar"], "accepted")
        await assert_seats_consistent(db, old, new)

    async def test_expired_account_still_counts(self, bus: BusClient, smtp: RecordingSmtpServer, db: asyncpg.Pool, account) -> None:
        old = await account(name="Lapsed Inc")
        person = address("lapsed")
        await add_active_member(bus, smtp, old, person)
        await account(account_id=old, name="Lapsed Inc", status="expired")
        new = await account()
        await add_users(bus, {"account_id": new, "users": [{"first_name": "La", "last_name": "Psed", "email": person}]})
        [sent] = await eventually(lambda: bus.find(routing.INVITATION_SENT, email=person, account_id=new))
        assert sent.body["kind"] == "transfer"
        assert await membership_status(db, new, person) == "transfer_pending"

    async def test_accept_after_leaving_the_old_account(self, bus: BusClient, smtp: RecordingSmtpServer, db: asyncpg.Pool, account) -> None:
        old, new = await account(), await account()
        person = address("left")
        await add_active_member(bus, smtp, old, person)
        await add_users(bus, {"account_id": new, "users": [{"first_name": "Le", "last_name": "Ft", "email": person}]})
        _, transfer_email = await emails_to(smtp, person, count=2)
        await bus.publish(routing.USERS_REMOVE, {"account_id": old, "email": person})
        await eventually(lambda: bus.find(routing.USER_REMOVED, email=person, account_id=old))
        await bus.publish(routing.INVITATION_ACCEPTED, {"token": tokens_in(transfer_email)["accept"]})
        [moved] = await eventually(lambda: bus.find(routing.USER_TRANSFERRED, email=person))
        assert moved.body["from_account_id"] is None
        assert moved.body["moved"] == {"session_history": 0, "scheduled_sessions": 0, "upcoming_recordings": 0}
        assert await active_accounts(db, person) == [new]

    async def test_transfer_token_lifetime_is_its_own(self, bus: BusClient, smtp: RecordingSmtpServer, db: asyncpg.Pool, account) -> None:
        old, new = await account(), await account()
        person = address("ttl")
        await add_active_member(bus, smtp, old, person)
        await add_users(bus, {"account_id": new, "users": [{"first_name": "T", "last_name": "TL", "email": person}]})
        await eventually(lambda: bus.find(routing.INVITATION_SENT, email=person, account_id=new))
        lifetimes = dict(await db.fetch(
            "SELECT i.kind, round(extract(epoch FROM i.expires_at - i.sent_at) / 3600) FROM invitations i"
            " JOIN memberships m USING (membership_id) JOIN profiles p USING (profile_id) WHERE p.email = $1", person))
        assert lifetimes == {"welcome": 168, "transfer": 72}


class TestDecline:
    """Decline suspends the member in the new account, keeping its seats; resend and remove follow."""

    async def test_decline_resend_remove(self, bus: BusClient, smtp: RecordingSmtpServer, db: asyncpg.Pool, account) -> None:
        old, new = await account(), await account({"gotomeeting": 2})
        person = address("decliner")
        await add_active_member(bus, smtp, old, person)
        await add_users(bus, {"account_id": new, "products": ["gotomeeting"], "users": [{"first_name": "D", "last_name": "C", "email": person}]})
        _, first = await emails_to(smtp, person, count=2)
        first_token = tokens_in(first)["decline"]

        await bus.publish(routing.INVITATION_DECLINED, {"token": first_token})
        [suspended] = await eventually(lambda: bus.find(routing.USER_SUSPENDED, email=person))
        assert suspended.body["account_id"] == new
        assert await membership_status(db, new, person) == "suspended"
        assert await active_accounts(db, person) == [old]
        assert await db.fetchval("SELECT seats_used FROM account_licences WHERE account_id = $1", new) == 1

        await db.execute("UPDATE invitations SET created_at = created_at - interval '1 hour'")  # past the cooldown
        await bus.publish(routing.INVITATIONS_RESEND, {"account_id": new, "email": person})
        resent = await eventually(lambda: [e for e in bus.find(routing.INVITATION_SENT, email=person, account_id=new) if e.body["sent_count"] == 2])
        assert resent[0].body["kind"] == "transfer"
        assert await membership_status(db, new, person) == "transfer_pending"
        _, _, second = await emails_to(smtp, person, count=3)
        second_token = tokens_in(second)["accept"]
        assert second_token != first_token

        await bus.publish(routing.INVITATION_ACCEPTED, {"token": first_token}, correlation_id="old-token-" + new)
        [old_refused] = await eventually(lambda: bus.find(routing.INVITATION_RESPONSE_REJECTED, correlation_id="old-token-" + new))
        assert old_refused.body["reason"] == "already_used"

        await bus.publish(routing.USERS_REMOVE, {"account_id": new, "email": person})
        [removed] = await eventually(lambda: bus.find(routing.USER_REMOVED, email=person, account_id=new))
        assert removed.body["released"] == {"gotomeeting": 1}
        assert await db.fetchval("SELECT seats_used FROM account_licences WHERE account_id = $1", new) == 0
        await bus.publish(routing.INVITATION_ACCEPTED, {"token": second_token}, correlation_id="resent-token-" + new)
        [dead] = await eventually(lambda: bus.find(routing.INVITATION_RESPONSE_REJECTED, correlation_id="resent-token-" + new))
        assert dead.body["reason"] == "revoked"
        assert await active_accounts(db, person) == [old]
        await assert_seats_consistent(db, old, new)

    async def test_resend_revokes_the_earlier_token(self, bus: BusClient, smtp: RecordingSmtpServer, db: asyncpg.Pool, account) -> None:
        account_id = await account()
        person = address("resend")
        await add_users(bus, {"account_id": account_id, "users": [{"first_name": "R", "last_name": "S", "email": person}]})
        [first] = await emails_to(smtp, person)
        await db.execute("UPDATE invitations SET created_at = created_at - interval '1 hour'")
        await bus.publish(routing.INVITATIONS_RESEND, {"account_id": account_id, "email": person})
        _, second = await emails_to(smtp, person, count=2)
        await bus.publish(routing.INVITATION_ACCEPTED, {"token": tokens_in(first)["link"]}, correlation_id="first-" + account_id)
        [refused] = await eventually(lambda: bus.find(routing.INVITATION_RESPONSE_REJECTED, correlation_id="first-" + account_id))
        assert refused.body["reason"] == "revoked"
        await bus.publish(routing.INVITATION_ACCEPTED, {"token": tokens_in(second)["link"]})
        await eventually(lambda: bus.find(routing.USER_ACTIVATED, email=person))
        user = await bus.query(routing.USERS_GET, {"account_id": account_id, "email": person})
        assert user["invitation"]["sent_count"] == 2 and user["status"] == "active"
