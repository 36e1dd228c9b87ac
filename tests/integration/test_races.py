from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest

from contracts import routing
from tests.integration.conftest import accounts_on, address
from tests.support.flows import active_accounts, add_active_member, add_users, assert_seats_consistent, emails_to, tokens_in
from tests.support.isolated import isolated_workers
from tests.support.smtp import RecordingSmtpServer
from tests.support.workers import WorkerProcess
from userprov.invitation_mailing import sql as mailing_sql
from userprov.invitation_mailing.scheduler import lease_seconds
from userprov.settings import Settings
from userprov.tokens import hash_token, new_token
from userprov_devtools.bus_client import BusClient
from userprov_devtools.waiting import eventually

ROUNDS = 3


async def pending_transfer(bus: BusClient, smtp: RecordingSmtpServer, account, targets: int = 1) -> tuple[str, str, list[str], list[str]]:
    """A person active in one account and invited to transfer to `targets` others: (person, old, new accounts, accept tokens)."""
    old = await account({"gotomeeting": 2})
    person = address("racer")
    await add_active_member(bus, smtp, old, person, products=["gotomeeting"])
    new_accounts, tokens = [], []
    for n in range(targets):
        new = await account({"gotomeeting": 2})
        await add_users(bus, {"account_id": new, "products": ["gotomeeting"], "users": [{"first_name": "R", "last_name": "C", "email": person}]})
        emails = await emails_to(smtp, person, count=2 + n)
        new_accounts.append(new)
        tokens.append(tokens_in(emails[-1])["accept"])
    return person, old, new_accounts, tokens


async def settled(bus: BusClient, *checks) -> None:  # noqa: ANN002
    await eventually(lambda: all(check() for check in checks), 30, what="both racing messages handled")


@pytest.mark.parametrize("round_", range(ROUNDS))
class TestRaces:
    """Two worker processes handle racing messages; every interleaving leaves consistent state."""

    async def test_accept_and_remove(self, round_: int, bus: BusClient, smtp: RecordingSmtpServer, db: asyncpg.Pool, account) -> None:
        person, old, [new], [token] = await pending_transfer(bus, smtp, account)
        await asyncio.gather(
            bus.publish(routing.INVITATION_ACCEPTED, {"token": token}, correlation_id=f"acc-{new}"),
            bus.publish(routing.USERS_REMOVE, {"account_id": new, "email": person}, correlation_id=f"rem-{new}"),
        )
        await settled(bus, lambda: bus.find(routing.USER_REMOVED, correlation_id=f"rem-{new}"),
                      lambda: bus.find(routing.USER_TRANSFERRED, correlation_id=f"acc-{new}")
                      or bus.find(routing.INVITATION_RESPONSE_REJECTED, correlation_id=f"acc-{new}"))
        if bus.find(routing.USER_TRANSFERRED, correlation_id=f"acc-{new}"):
            assert await active_accounts(db, person) == []  # moved to new, then removed there
        else:
            [refusal] = bus.find(routing.INVITATION_RESPONSE_REJECTED, correlation_id=f"acc-{new}")
            assert refusal.body["reason"] == "revoked"
            assert await active_accounts(db, person) == [old]
        await assert_seats_consistent(db, old, new)
        assert await db.fetchval("SELECT seats_used FROM account_licences WHERE account_id = $1", new) == 0

    async def test_two_transfers_accepted_at_once(self, round_: int, bus: BusClient, smtp: RecordingSmtpServer, db: asyncpg.Pool, account) -> None:
        person, old, news, tokens = await pending_transfer(bus, smtp, account, targets=2)
        await asyncio.gather(*(bus.publish(routing.INVITATION_ACCEPTED, {"token": t}, correlation_id=f"two-{t}") for t in tokens))
        await settled(bus, *(lambda t=t: bus.find(routing.USER_TRANSFERRED, correlation_id=f"two-{t}")
                             or bus.find(routing.INVITATION_RESPONSE_REJECTED, correlation_id=f"two-{t}") for t in tokens))
        active = await active_accounts(db, person)
        assert len(active) == 1 and active[0] in news
        await assert_seats_consistent(db, old, *news)
        seats = await db.fetchval("SELECT sum(seats_used) FROM account_licences WHERE account_id = ANY($1::text[])", [old, *news])
        assert seats == 1

    async def test_same_token_twice_at_once(self, round_: int, bus: BusClient, smtp: RecordingSmtpServer, db: asyncpg.Pool, account) -> None:
        person, old, [new], [token] = await pending_transfer(bus, smtp, account)
        correlations = [f"same-{new}-{n}" for n in range(2)]
        await asyncio.gather(*(bus.publish(routing.INVITATION_ACCEPTED, {"token": token}, correlation_id=c) for c in correlations))
        await settled(bus, *(lambda c=c: bus.find(routing.USER_TRANSFERRED, correlation_id=c)
                             or bus.find(routing.INVITATION_RESPONSE_REJECTED, correlation_id=c) for c in correlations))
        assert len(bus.find(routing.USER_TRANSFERRED, email=person)) == 1
        [refusal] = [e for c in correlations for e in bus.find(routing.INVITATION_RESPONSE_REJECTED, correlation_id=c)]
        assert refusal.body["reason"] == "already_used"
        assert await active_accounts(db, person) == [new]
        await assert_seats_consistent(db, old, new)

    async def test_resend_and_accept_at_once(self, round_: int, bus: BusClient, smtp: RecordingSmtpServer, db: asyncpg.Pool, account) -> None:
        person, old, [new], [token] = await pending_transfer(bus, smtp, account)
        await db.execute("UPDATE invitations SET created_at = created_at - interval '1 hour'")
        resend_id, _ = await asyncio.gather(
            bus.publish(routing.INVITATIONS_RESEND, {"account_id": new, "email": person}),
            bus.publish(routing.INVITATION_ACCEPTED, {"token": token}, correlation_id=f"ra-{new}"),
        )
        await settled(bus, lambda: bus.find(routing.USER_TRANSFERRED, correlation_id=f"ra-{new}")
                      or bus.find(routing.INVITATION_RESPONSE_REJECTED, correlation_id=f"ra-{new}"),
                      lambda: bus.find(routing.COMMAND_REJECTED, command_id=resend_id)
                      or [e for e in bus.find(routing.INVITATION_SENT, email=person, account_id=new) if e.body["sent_count"] == 2])
        if bus.find(routing.USER_TRANSFERRED, correlation_id=f"ra-{new}"):
            [refusal] = bus.find(routing.COMMAND_REJECTED, command_id=resend_id)
            assert refusal.body["reason"] == "not_resendable"
            assert await active_accounts(db, person) == [new]
        else:
            [refusal] = bus.find(routing.INVITATION_RESPONSE_REJECTED, correlation_id=f"ra-{new}")
            assert refusal.body["reason"] == "revoked"
            assert await active_accounts(db, person) == [old]
        await assert_seats_consistent(db, old, new)


class TestTwoWelcomes:
    """A new person added to two accounts at once gets two welcomes; accepting both leaves them in one account."""

    async def test_accept_both_welcomes(self, bus: BusClient, smtp: RecordingSmtpServer, db: asyncpg.Pool, account) -> None:
        first, second = await account({"gotomeeting": 1}), await account({"gotomeeting": 1})
        person = address("twice-welcomed")
        body = {"products": ["gotomeeting"], "users": [{"first_name": "Two", "last_name": "Welcomes", "email": person}]}
        await asyncio.gather(add_users(bus, {"account_id": first, **body}), add_users(bus, {"account_id": second, **body}))
        emails = await emails_to(smtp, person, count=2)
        assert all("link" in tokens_in(e) for e in emails)  # both welcomes: neither was active anywhere
        for n, email in enumerate(emails):
            await bus.publish(routing.INVITATION_ACCEPTED, {"token": tokens_in(email)["link"]}, correlation_id=f"tw-{n}-{first}")
            await eventually(lambda: bus.find(routing.USER_ACTIVATED, correlation_id=f"tw-{n}-{first}")
                             or bus.find(routing.USER_TRANSFERRED, correlation_id=f"tw-{n}-{first}"))
        [moved] = bus.find(routing.USER_TRANSFERRED, correlation_id=f"tw-1-{first}")
        assert len(await active_accounts(db, person)) == 1
        assert await active_accounts(db, person) == [moved.body["to_account_id"]]
        await assert_seats_consistent(db, first, second)
        seats = await db.fetchval("SELECT sum(seats_used) FROM account_licences WHERE account_id = ANY($1::text[])", [first, second])
        assert seats == 1


class TestLastAdmin:
    """An account never loses its last active admin, whether by removal or by that admin
    accepting an invitation elsewhere; refused accepts leave the invitation open."""

    async def admin_invited_elsewhere(self, bus: BusClient, smtp: RecordingSmtpServer, account) -> tuple[str, str, str, str]:
        old = await account({"gotomeeting": 5})
        admin = address("lastadmin")
        await add_active_member(bus, smtp, old, admin, role="admin", products=["gotomeeting"])
        new = await account({"gotomeeting": 5})
        await add_users(bus, {"account_id": new, "users": [{"first_name": "L", "last_name": "A", "email": admin}]})
        emails = await emails_to(smtp, admin, count=2)
        return admin, old, new, tokens_in(emails[-1])["accept"]

    async def test_the_only_admin_cannot_transfer_away(self, bus: BusClient, smtp: RecordingSmtpServer, db: asyncpg.Pool, account) -> None:
        admin, old, new, token = await self.admin_invited_elsewhere(bus, smtp, account)
        await bus.publish(routing.INVITATION_ACCEPTED, {"token": token}, correlation_id=f"acc-{new}")
        [refusal] = await eventually(lambda: bus.find(routing.INVITATION_RESPONSE_REJECTED, correlation_id=f"acc-{new}"))
        assert refusal.body["reason"] == "last_admin"
        assert await active_accounts(db, admin) == [old]
        # once there is another admin, the same link works
        await add_active_member(bus, smtp, old, address("second-admin"), role="admin")
        await bus.publish(routing.INVITATION_ACCEPTED, {"token": token}, correlation_id=f"again-{new}")
        await eventually(lambda: bus.find(routing.USER_TRANSFERRED, correlation_id=f"again-{new}"))
        assert await active_accounts(db, admin) == [new]

    @pytest.mark.parametrize("round_", range(ROUNDS))
    async def test_transfer_of_one_admin_races_removal_of_the_other(
        self, round_: int, bus: BusClient, smtp: RecordingSmtpServer, db: asyncpg.Pool, account
    ) -> None:
        admin, old, new, token = await self.admin_invited_elsewhere(bus, smtp, account)
        other = address("otheradmin")
        await add_active_member(bus, smtp, old, other, role="admin")
        await asyncio.gather(
            bus.publish(routing.INVITATION_ACCEPTED, {"token": token}, correlation_id=f"acc-{new}"),
            bus.publish(routing.USERS_REMOVE, {"account_id": old, "email": other}, correlation_id=f"rem-{old}"),
        )
        await settled(bus, lambda: bus.find(routing.USER_TRANSFERRED, correlation_id=f"acc-{new}")
                      or bus.find(routing.INVITATION_RESPONSE_REJECTED, correlation_id=f"acc-{new}"),
                      lambda: bus.find(routing.USER_REMOVED, correlation_id=f"rem-{old}")
                      or bus.find(routing.COMMAND_REJECTED, correlation_id=f"rem-{old}"))
        transferred = bool(bus.find(routing.USER_TRANSFERRED, correlation_id=f"acc-{new}"))
        removed = bool(bus.find(routing.USER_REMOVED, correlation_id=f"rem-{old}"))
        assert transferred != removed, "exactly one of the two may happen"
        admins = await db.fetchval(
            "SELECT count(*) FROM memberships WHERE account_id = $1 AND role = 'admin' AND status = 'active'", old)
        assert admins == 1


class TestClaimLeases:
    """A mailing process's claim holds an invitation for one lease from when it was made, however
    long its transaction had waited before (a `users.add` that waited for the account's lock), and
    it keeps only the leases it renewed: another process never takes an invitation whose email is
    under way, and no one gets two emails."""

    async def test_a_lease_runs_from_the_claim_and_a_renewal_says_what_it_renewed(
        self, bus: BusClient, smtp: RecordingSmtpServer, db: asyncpg.Pool, account
    ) -> None:
        account_id = await account()
        held, gone = address("held"), address("gone")
        await add_users(bus, {"account_id": account_id, "users": [{"first_name": "Le", "last_name": "Ase", "email": e} for e in (held, gone)]})
        invitation = {e: uuid.UUID((await eventually(lambda: bus.find(routing.INVITATION_SENT, email=e)))[0].body["invitation_id"])  # noqa: B023
                      for e in (held, gone)}
        lease = 30.0
        async with db.acquire() as conn:
            tx = conn.transaction()
            await tx.start()
            try:  # rolled back: the session's workers never see it
                await conn.execute("UPDATE invitations SET status = 'issued', token_hash = NULL WHERE invitation_id = $1", invitation[held])
                # the transaction began 0.2 s ago, as one that waited for a lock: a lease from its start would end 0.2 s
                # before the bound below (clock_timestamp() after the sleep), far more than the clock's microseconds
                await conn.execute("SELECT pg_sleep(0.2)")
                before = await conn.fetchval("SELECT clock_timestamp()")
                [claim] = await mailing_sql.claim(conn, [hash_token(new_token())], 3600, 3600, lease, [invitation[held]])
                until = await conn.fetchval("SELECT claimed_until FROM invitations WHERE invitation_id = $1", invitation[held])
                assert until >= before + timedelta(seconds=lease), "the lease ran from the transaction's start"

                await conn.execute("SELECT pg_sleep(0.2)")  # a renewal from the transaction's start or the claim would end before the bound
                before = await conn.fetchval("SELECT clock_timestamp()")
                renewed = await mailing_sql.renew_claims(conn, {invitation[held]: claim.token_hash, invitation[gone]: b"g" * 32}, lease)
                assert renewed == {invitation[held]}  # the other was sent already: no longer a claim of this process
                until = await conn.fetchval("SELECT claimed_until FROM invitations WHERE invitation_id = $1", invitation[held])
                assert until >= before + timedelta(seconds=lease)
            finally:
                await tx.rollback()

    async def test_an_add_that_waited_for_the_account_past_a_lease_sends_one_email_each(
        self, worker_env: dict[str, str], smtp: RecordingSmtpServer, tmp_path: Path
    ) -> None:
        """One process runs every service (the add's people are decided and claimed in its
        transaction), a second only mailing; the test holds the account's lock past a lease while
        the add waits for it. While each email is in the SMTP exchange, its claim must still hold
        the invitation (else any process's sweep gives it back, and another claim sends it again):
        the server answers after a few seconds, or as soon as a second email to the person came."""
        # a short claim (0.5 + 2 + 1.5 s): the lock is held past it, and a sweep comes while the server holds its answer
        smtp_timeout = 2.0
        settings = {"USERPROV_SMTP_TIMEOUT_SECONDS": str(smtp_timeout), "USERPROV_TEMPLATE_TIMEOUT_SECONDS": "0.5",
                    "USERPROV_CLAIM_SLACK_SECONDS": "1.5"}
        lease = lease_seconds(Settings(smtp_timeout_seconds=smtp_timeout, template_timeout_seconds=0.5, claim_slack_seconds=1.5))
        answer_within = 1.5  # under the SMTP timeout; longer than a sweep's interval (a quarter lease: 1 s)
        assert lease / 4 < answer_within < smtp_timeout
        async with isolated_workers("lease", worker_env, tmp_path, [{}], **settings) as (infra, _, bus):
            mailing = WorkerProcess("lease-mailing", [routing.INVITATION_MAILING],
                                    {**worker_env, **settings, "USERPROV_AMQP_URL": infra.amqp_url, "USERPROV_DATABASE_URL": infra.database_url},
                                    tmp_path)
            people = [address("lease") for _ in range(2)]
            lease_left: dict[str, float | None] = {}
            await asyncio.to_thread(mailing.start)
            try:
                account_id = await accounts_on(bus)()

                def answered_late(person: str) -> Callable[[], Awaitable[None]]:
                    async def hook() -> None:  # in the SMTP server's loop, before it answers the first email to `person`
                        conn = await asyncpg.connect(infra.database_url)
                        try:
                            lease_left[person] = await conn.fetchval(
                                "SELECT extract(epoch FROM i.claimed_until - clock_timestamp())::float8 FROM invitations i"
                                " JOIN memberships m USING (membership_id) JOIN profiles p USING (profile_id)"
                                " WHERE p.email = $1 AND i.status = 'sending'", person)
                        finally:
                            await conn.close()
                        deadline = time.monotonic() + answer_within
                        while not smtp.handler.to(person) and time.monotonic() < deadline:
                            await asyncio.sleep(0.05)
                    return hook

                for person in people:
                    smtp.handler.before_accepting[person] = answered_late(person)
                pool = await asyncpg.create_pool(infra.database_url, min_size=1, max_size=2)
                try:
                    async with pool.acquire() as conn, conn.transaction():
                        await conn.execute("SELECT FROM accounts WHERE account_id = $1 FOR UPDATE", account_id)
                        message_id = await bus.publish(routing.USERS_ADD, {
                            "account_id": account_id, "users": [{"first_name": "Lo", "last_name": "Cked", "email": p} for p in people]})
                        holder = await conn.fetchval("SELECT pg_backend_pid()")
                        await eventually(lambda: pool.fetchval(
                            "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid)))", holder),
                            what="the add waiting for the account")
                        await asyncio.sleep(lease + 1)  # the lock held past a lease from the add's transaction's start
                    await eventually(lambda: bus.find(routing.USERS_ADD_COMPLETED, command_id=message_id), what="the add done")
                    await eventually(lambda: pool.fetchval(
                        "SELECT count(*) = $2 FROM invitations WHERE account_id = $1 AND status = 'sent'", account_id, len(people)),
                        30, what="every invitation sent")
                finally:
                    await pool.close()
                assert {p: len(smtp.handler.to(p)) for p in people} == dict.fromkeys(people, 1)
                assert all(left is not None and left > 0 for left in lease_left.values()) and len(lease_left) == len(people), (
                    f"the claims had lapsed when their emails went out (seconds left: {lease_left})")
            finally:
                for person in people:
                    smtp.handler.before_accepting.pop(person, None)
                assert mailing.terminate() == 0
