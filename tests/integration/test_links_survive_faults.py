"""Every link ever sent works until it is used, revoked by a resend, or expires; and a database
fault after the SMTP server accepted an email does not send it again."""
from __future__ import annotations

import uuid

import asyncpg

from contracts import routing
from tests.integration.conftest import address
from tests.support.flows import add_users, emails_to, tokens_in
from tests.support.smtp import RecordingSmtpServer
from tests.support.workers import WorkerProcess
from userprov_devtools.bus_client import BusClient
from userprov_devtools.waiting import eventually

FAIL_ONCE = """
CREATE TABLE IF NOT EXISTS test_fail_recording_once (email text PRIMARY KEY, counter text NOT NULL);
CREATE OR REPLACE FUNCTION test_fail_recording_once() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE counter text;
BEGIN
    SELECT f.counter INTO counter FROM test_fail_recording_once f
      JOIN profiles p ON p.email = f.email JOIN memberships m ON m.profile_id = p.profile_id
     WHERE m.membership_id = NEW.membership_id;
    -- a sequence is not rolled back with the failing transaction: the fault happens once
    IF NEW.status = 'sent' AND counter IS NOT NULL AND nextval(counter::regclass) = 1 THEN
        RAISE EXCEPTION 'injected fault while recording the email as sent' USING ERRCODE = 'serialization_failure';
    END IF;
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS test_fail_recording_once ON invitations;
CREATE TRIGGER test_fail_recording_once BEFORE UPDATE ON invitations
    FOR EACH ROW EXECUTE FUNCTION test_fail_recording_once();
"""


class TestDatabaseFaultAfterSmtpAccepted:
    async def test_one_email_and_its_link_works(self, bus: BusClient, smtp: RecordingSmtpServer, db: asyncpg.Pool, account) -> None:
        """The transaction that records `sent` fails once (a serialization failure, as a real
        fault would): only the recording is retried, the email is not sent again."""
        account_id = await account()
        person = address("commitfault")
        counter = f"fault_{abs(hash(person))}"
        await db.execute(FAIL_ONCE)
        await db.execute(f"CREATE SEQUENCE {counter}")
        await db.execute("INSERT INTO test_fail_recording_once VALUES ($1, $2)", person, counter)
        try:
            await add_users(bus, {"account_id": account_id, "users": [{"first_name": "Commit", "last_name": "Fault", "email": person}]})
            await eventually(lambda: bus.find(routing.INVITATION_SENT, email=person), 60, what="invitation.sent")
            assert await db.fetchval(f"SELECT last_value FROM {counter}") >= 2, "the fault was not injected"
        finally:
            await db.execute("DROP TRIGGER test_fail_recording_once ON invitations")
        [email] = smtp.handler.to(person)
        await bus.publish(routing.INVITATION_ACCEPTED, {"token": tokens_in(email)["link"]})
        await eventually(lambda: bus.find(routing.USER_ACTIVATED, email=person), 30, what="the link to work")
        assert len(smtp.handler.to(person)) == 1


class TestWorkerKilledAfterSmtpAccepted:
    async def test_both_emails_links_work(self, bus: BusClient, smtp: RecordingSmtpServer, workers: list[WorkerProcess], account) -> None:
        """The one window for a duplicate: SMTP accepted, the worker dies before recording it.
        The invitation is sent again once the claim runs out, and the first link still works."""
        account_id = await account()
        person = address("killedaftersmtp")

        async def kill_workers() -> None:
            for worker in workers:
                worker.kill()

        smtp.handler.before_accepting[person] = kill_workers
        await add_users(bus, {"account_id": account_id, "users": [{"first_name": "Killed", "last_name": "After", "email": person}]})
        await eventually(lambda: not any(w.running for w in workers), 30, what="the workers to be killed")
        for worker in workers:
            worker.start()
        first, second = await emails_to(smtp, person, count=2, timeout=90)
        first_token, second_token = tokens_in(first)["link"], tokens_in(second)["link"]
        assert first_token != second_token
        await bus.publish(routing.INVITATION_ACCEPTED, {"token": first_token})
        await eventually(lambda: bus.find(routing.USER_ACTIVATED, email=person), 30, what="the first email's link to work")
        marker = f"second-{uuid.uuid4().hex}"
        await bus.publish(routing.INVITATION_ACCEPTED, {"token": second_token}, correlation_id=marker)
        [refused] = await eventually(lambda: bus.find(routing.INVITATION_RESPONSE_REJECTED, correlation_id=marker), 30)
        assert refused.body["reason"] == "already_used"
