from __future__ import annotations

import asyncio
import random
import uuid

import asyncpg

from contracts import routing
from tests.integration.conftest import address
from tests.support.flows import add_users, emailed, invitation_statuses, publish_batch, tokens_in
from tests.support.smtp import RecordingSmtpServer
from tests.support.workers import WorkerProcess, restarted_with
from userprov.invitation_mailing import sql as mailing_sql
from userprov.tokens import hash_token
from userprov_devtools.bus_client import BusClient
from userprov_devtools.waiting import eventually


class TestWorkersKilledMidBatch:
    """Worker processes SIGKILLed three times during a 200-person batch lose nothing, and each kill
    re-sends at most the emails in flight at that moment: every email is recorded as sent as soon
    as SMTP accepts it (chunks recorded at their end sent 45 again).

    In flight means accepted by the SMTP server but not yet recorded, at most one per SMTP
    connection of the killed process. The processes here use one connection each, so that bound
    is exactly 1 per kill: with 8, the slow RCPT below keeps the connections in step, their
    emails are accepted within the same millisecond, and a kill just after a wave re-sends up
    to 8 (that is the documented bound, 'at most USERPROV_SMTP_CONNECTIONS per kill')."""

    async def test_three_sigkills_during_a_200_person_batch(
        self, bus: BusClient, smtp: RecordingSmtpServer, db: asyncpg.Pool, workers: list[WorkerProcess], account
    ) -> None:
        # a shorter claim (lease_seconds: 0.5 + 1.5 + 5 s rather than 8 s) hands the last victim's
        # emails to the others sooner; an exchange here takes about 0.1 s, well within 1.5 s
        with restarted_with(workers, USERPROV_SMTP_CONNECTIONS="1", USERPROV_SMTP_TIMEOUT_SECONDS="1.5",
                            USERPROV_TEMPLATE_TIMEOUT_SECONDS="0.5"):
            await self._three_sigkills(bus, smtp, db, workers, account)

    async def _three_sigkills(
        self, bus: BusClient, smtp: RecordingSmtpServer, db: asyncpg.Pool, workers: list[WorkerProcess], account
    ) -> None:
        account_id = await account({"gotomeeting": 200})
        # each RCPT takes 0.1 s: with one connection a process, 200 emails take 10 s, and the 55 between two kills
        # about 2.75 s, longer than the restart of the one killed (the test fails if the third kill came too late)
        message_id, people = await publish_batch(bus, account_id, "slowrcpt", 200)
        for victim, after in ((workers[0], 20), (workers[1], 75), (workers[0], 130)):
            await eventually(lambda: emailed(smtp, people) >= after, 120, 0.005, what=f"{after} emails")  # noqa: B023
            await asyncio.sleep(random.uniform(0, 0.1))  # at any moment of an email's exchange, not just after one arrived
            victim.kill()
            await asyncio.to_thread(victim.start)
        assert emailed(smtp, people) < 200, "the batch ended before the third kill"
        await eventually(lambda: all(smtp.handler.to(p) for p in people), 120, what="an email to every person")

        [completed] = bus.find(routing.USERS_ADD_COMPLETED, command_id=message_id)
        assert all(r["outcome"] == "accepted" for r in completed.body["results"])
        assert await db.fetchval("SELECT seats_used FROM account_licences WHERE account_id = $1", account_id) == 200
        await eventually(lambda: _all_sent(invitation_statuses(db, account_id), 200), 60, what="every invitation recorded as sent")
        duplicates = {p: len(smtp.handler.to(p)) for p in people if len(smtp.handler.to(p)) > 1}
        assert sum(duplicates.values()) - len(duplicates) <= 3, duplicates
        # every link sent works: each email's token is one of its invitation's valid tokens
        tokens = [tokens_in(email)["link"] for p in people for email in smtp.handler.to(p)]
        valid = await db.fetchval(
            "SELECT count(*) FROM invitation_tokens t JOIN invitations i USING (invitation_id)"
            " WHERE t.token_hash = ANY($1::bytea[]) AND i.account_id = $2 AND i.status = 'sent'",
            [hash_token(t) for t in tokens], account_id)
        assert valid == len(tokens)


async def _all_sent(statuses, count: int) -> dict[str, int] | None:  # noqa: ANN001
    found = await statuses
    return found if found == {"sent": count} else None


class TestWorkerStoppedMidBatch:
    """SIGTERM mid-batch: the worker stops taking messages, finishes those in hand, exits 0; nothing is lost."""

    async def test_sigterm_during_a_batch(
        self, bus: BusClient, smtp: RecordingSmtpServer, db: asyncpg.Pool, workers: list[WorkerProcess], account
    ) -> None:
        account_id = await account({"gotomeeting": 200})
        _, people = await publish_batch(bus, account_id, "term", 200)
        stopping = workers[1]
        await eventually(lambda: emailed(smtp, people) >= 20, 60, what="20 emails")
        assert stopping.terminate() == 0
        assert stopping.count_log('"drained": true') == 1
        stopping.start()
        await eventually(lambda: all(smtp.handler.to(p) for p in people), 120, what="an email to every person")
        assert all(len(smtp.handler.to(p)) == 1 for p in people)  # a clean stop sends nothing twice
        await eventually(lambda: _all_sent(invitation_statuses(db, account_id), 200), 30, what="every invitation recorded as sent")


class TestLapsedClaims:
    """A claim whose worker died lapses and the invitation goes back in the queue; after
    USERPROV_SMTP_ATTEMPTS lapses (an email that kills its worker) it fails. Tries answered by
    the SMTP server do not count as lapses: they have the retry window."""

    async def test_the_last_lapse_fails_the_invitation(self, bus: BusClient, smtp: RecordingSmtpServer, db: asyncpg.Pool, account) -> None:
        account_id = await account()
        person = address("lapsing")
        await add_users(bus, {"account_id": account_id, "users": [{"first_name": "Lap", "last_name": "Sing", "email": person}]})
        [sent] = await eventually(lambda: bus.find(routing.INVITATION_SENT, email=person))
        invitation_id = uuid.UUID(sent.body["invitation_id"])
        lapse = ("UPDATE invitations SET status = 'sending', token_hash = $2, claimed_until = now() - interval '1 second',"
                 " attempts = attempts + 1 WHERE invitation_id = $1")
        async with db.acquire() as conn:
            tx = conn.transaction()
            await tx.start()
            try:  # rolled back: the session's workers never see it
                await conn.execute("UPDATE invitations SET attempts = 40 WHERE invitation_id = $1", invitation_id)  # many SMTP tries
                await conn.execute(lapse, invitation_id, b"a" * 32)
                assert await mailing_sql.end_lapsed_claims(conn, 2) == []
                row = await conn.fetchrow("SELECT status, lapses, token_hash FROM invitations WHERE invitation_id = $1", invitation_id)
                assert dict(row) == {"status": "issued", "lapses": 1, "token_hash": None}
                await conn.execute(lapse, invitation_id, b"b" * 32)
                [failed] = await mailing_sql.end_lapsed_claims(conn, 2)
                assert failed.invitation_id == invitation_id and failed.email == person
                row = await conn.fetchrow("SELECT status, lapses, failure_reason, failed_at IS NOT NULL AS stamped FROM invitations"
                                          " WHERE invitation_id = $1", invitation_id)
                assert dict(row) == {"status": "failed", "lapses": 2, "failure_reason": mailing_sql.WORKER_STOPPED, "stamped": True}
            finally:
                await tx.rollback()
