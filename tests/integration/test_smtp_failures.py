from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import asyncpg

from contracts import routing
from tests.integration.conftest import address
from tests.support.flows import add_users, emails_to
from tests.support.infra import Infra
from tests.support.smtp import RecordingSmtpServer
from userprov.settings import Settings
from userprov_devtools.bus_client import BusClient
from userprov_devtools.waiting import eventually


class TestSmtpFailures:
    """Temporary SMTP failures are retried; permanent ones are reported and the user stays."""

    async def test_451_then_250_sends_one_email(self, bus: BusClient, smtp: RecordingSmtpServer, account) -> None:
        account_id = await account()
        person = address("tempfail")
        await add_users(bus, {"account_id": account_id, "users": [{"first_name": "Temp", "last_name": "Fail", "email": person}]})
        await emails_to(smtp, person)
        [sent] = await eventually(lambda: bus.find(routing.INVITATION_SENT, email=person))
        assert sent.body["sent_count"] == 1
        assert [code for rcpt, code in smtp.handler.refusals if rcpt == person] == [451]
        assert len(smtp.handler.to(person)) == 1
        assert not bus.find(routing.INVITATION_FAILED, email=person)

    async def test_a_temporary_failure_is_retried_past_any_count_of_tries(self, bus: BusClient, smtp: RecordingSmtpServer,
                                                                          account) -> None:
        """Mail relays retry a 4xx for days: a greylisting or busy server answering 451 six times
        does not fail the invitation (the session's workers allow USERPROV_SMTP_ATTEMPTS=3 lapses,
        which no longer bound tries)."""
        account_id = await account()
        person = address("tempfail6x")
        await add_users(bus, {"account_id": account_id, "users": [{"first_name": "Grey", "last_name": "Listed", "email": person}]})
        await emails_to(smtp, person, timeout=30)
        assert [code for rcpt, code in smtp.handler.refusals if rcpt == person] == [451] * 6
        [sent] = await eventually(lambda: bus.find(routing.INVITATION_SENT, email=person))
        assert sent.body["sent_count"] == 1 and len(smtp.handler.to(person)) == 1
        assert not bus.find(routing.INVITATION_FAILED, email=person)

    async def test_550_reports_invitation_failed(self, bus: BusClient, smtp: RecordingSmtpServer, db: asyncpg.Pool, account) -> None:
        account_id = await account()
        person = address("reject")
        await add_users(bus, {"account_id": account_id, "users": [{"first_name": "Re", "last_name": "Ject", "email": person}]})
        [failed] = await eventually(lambda: bus.find(routing.INVITATION_FAILED, email=person))
        assert failed.body["account_id"] == account_id
        assert "550" in failed.body["reason"]
        assert not smtp.handler.to(person)
        row = await db.fetchrow(
            "SELECT m.status, i.status AS invitation FROM memberships m JOIN profiles p USING (profile_id)"
            " JOIN invitations i USING (membership_id) WHERE p.email = $1", person)
        assert dict(row) == {"status": "invited", "invitation": "failed"}

    async def test_a_failed_invitation_can_be_resent_at_once(self, bus: BusClient, smtp: RecordingSmtpServer, account) -> None:
        """The resend cooldown keeps a person from being flooded: it does not hold back a resend
        for someone whose last email never reached them."""
        account_id = await account()
        person = address("reject-then-resend")
        await add_users(bus, {"account_id": account_id, "users": [{"first_name": "Re", "last_name": "Send", "email": person}]})
        await eventually(lambda: bus.find(routing.INVITATION_FAILED, email=person))
        message_id = await bus.publish(routing.INVITATIONS_RESEND, {"account_id": account_id, "email": person})
        await eventually(lambda: len(bus.find(routing.INVITATION_FAILED, email=person)) == 2, what="the resend tried (550 again)")
        assert not bus.find(routing.COMMAND_REJECTED, command_id=message_id)


class TestFailedInvitations:
    """Operators find who failed and send them fresh invitations in one step (invitations.failed,
    invitations.retry_failed), for one account or for every account."""

    async def test_list_page_and_retry_the_failed_of_one_account(self, bus: BusClient, smtp: RecordingSmtpServer, account) -> None:
        mine, other = await account(), await account()
        failing = [address("permfail-a"), address("permfail-b")]
        elsewhere = address("reject-elsewhere")
        fine = address("fine")
        await add_users(bus, {"account_id": mine, "users": [{"first_name": "Perm", "last_name": f"Fail{n}", "email": p}
                                                           for n, p in enumerate([*failing, fine])]})
        await add_users(bus, {"account_id": other, "users": [{"first_name": "Re", "last_name": "Ject", "email": elsewhere}]})
        for person in [*failing, elsewhere]:
            await eventually(lambda p=person: bus.find(routing.INVITATION_FAILED, email=p), what=f"{person} failed")
        await emails_to(smtp, fine)

        listed = await bus.query(routing.INVITATIONS_FAILED, {"account_id": mine})
        assert sorted(i["email"] for i in listed["invitations"]) == sorted(failing) and listed["next_after"] is None
        assert all(i["account_id"] == mine and "550" in i["reason"] and i["kind"] == "welcome" for i in listed["invitations"])
        first = await bus.query(routing.INVITATIONS_FAILED, {"account_id": mine, "limit": 1})
        second = await bus.query(routing.INVITATIONS_FAILED, {"account_id": mine, "limit": 1, "after": first["next_after"]})
        assert first["next_after"] == first["invitations"][0]["invitation_id"]
        assert [i["email"] for i in first["invitations"] + second["invitations"]] == [i["email"] for i in listed["invitations"]]
        everywhere = await bus.query(routing.INVITATIONS_FAILED, {"limit": 1000})
        assert {elsewhere, *failing} <= {i["email"] for i in everywhere["invitations"]}

        command_id = await bus.publish(routing.INVITATIONS_RETRY_FAILED, {"account_id": mine})
        [retried] = await eventually(lambda: bus.find(routing.INVITATIONS_RETRIED, command_id=command_id))
        assert retried.body == {"command_id": command_id, "account_id": mine, "retried": 2}
        for person in failing:
            [sent] = await eventually(lambda p=person: bus.find(routing.INVITATION_SENT, email=p), what=f"{person} sent")
            assert len(smtp.handler.to(person)) == 1 and sent.body["sent_count"] == 1
        assert (await bus.query(routing.INVITATIONS_FAILED, {"account_id": mine}))["invitations"] == []
        assert [i["email"] for i in (await bus.query(routing.INVITATIONS_FAILED, {"account_id": other}))["invitations"]] == [elsewhere]
        again = await bus.publish(routing.INVITATIONS_RETRY_FAILED, {"account_id": mine})  # nothing left: retried 0
        [none] = await eventually(lambda: bus.find(routing.INVITATIONS_RETRIED, command_id=again))
        assert none.body["retried"] == 0 and len(smtp.handler.to(fine)) == 1

    async def test_the_operators_verbs(self, bus: BusClient, smtp: RecordingSmtpServer, infra: Infra, account) -> None:
        account_id = await account()
        person = address("permfail-cli")
        await add_users(bus, {"account_id": account_id, "users": [{"first_name": "Cli", "last_name": "Fail", "email": person}]})
        await eventually(lambda: bus.find(routing.INVITATION_FAILED, email=person))

        def cli(*args: str, url: str = infra.amqp_url) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "userprov", "invitations", *args], env={**os.environ, "USERPROV_AMQP_URL": url},
                                  capture_output=True, text=True, timeout=90)

        listed = await asyncio.to_thread(cli, "failed", "--account", account_id, "--json")
        assert listed.returncode == 0 and "1 failed invitation(s)" in listed.stderr
        [row] = [json.loads(line) for line in listed.stdout.splitlines()]
        assert row["email"] == person and row["account_id"] == account_id and "550 5.2.1" in row["reason"]
        table = await asyncio.to_thread(cli, "failed", "--account", account_id)
        assert table.stdout.splitlines()[0].split() == ["FAILED_AT", "ACCOUNT_ID", "EMAIL", "KIND", "REASON"] and person in table.stdout
        unsaid = await asyncio.to_thread(cli, "retry-failed")
        assert unsaid.returncode == 2 and "--account ACCOUNT or --every-account" in unsaid.stderr
        retried = await asyncio.to_thread(cli, "retry-failed", "--account", account_id)
        assert retried.returncode == 0 and retried.stdout.startswith("1 invitation(s) issued again"), retried.stderr
        await emails_to(smtp, person)
        nowhere = await asyncio.to_thread(cli, "failed", url="amqp://guest:guest@127.0.0.1:1/")
        assert nowhere.returncode == 2 and "nothing takes connections at 127.0.0.1:1" in nowhere.stderr and "Traceback" not in nowhere.stderr

    async def test_every_account_is_for_a_platform_service_only(self, bus: BusClient, account) -> None:
        account_id = await account()
        await add_users(bus, {"account_id": account_id, "users": [
            {"first_name": "Ad", "last_name": "Min", "email": address("admin"), "role": "admin"}]})
        command_id = await bus.publish(routing.INVITATIONS_RETRY_FAILED, {"requested_by": address("admin")})
        [rejected] = await eventually(lambda: bus.find(routing.COMMAND_REJECTED, command_id=command_id))
        assert rejected.body["reason"] == "forbidden"
        stranger = await bus.publish(routing.INVITATIONS_RETRY_FAILED, {"account_id": account_id, "requested_by": address("nobody")})
        [refused] = await eventually(lambda: bus.find(routing.COMMAND_REJECTED, command_id=stranger))
        assert refused.body["reason"] == "forbidden"


class TestPooledConnections:
    """Emails go over a few reused connections; a connection that drops or is closed with a 421
    in the middle of a chunk loses no email and doubles none."""

    async def test_a_chunk_goes_over_a_few_reused_connections(self, bus: BusClient, smtp: RecordingSmtpServer, account) -> None:
        account_id = await account()
        people = [address(f"pooled{n}") for n in range(40)]
        await add_users(bus, {"account_id": account_id, "pasted": "\n".join(f"Pool Member{n} {p}" for n, p in enumerate(people))})
        emails = [e for p in people for e in await emails_to(smtp, p)]
        connections = {e.connection for e in emails}
        # 2 worker processes with at most USERPROV_SMTP_CONNECTIONS (and one kept for small work) each;
        # a connection per email would be 40
        assert len(connections) <= 2 * (Settings().smtp_connections + 1) < 40, f"{len(connections)} connections for 40 emails"

    async def test_dropped_connection_and_421_mid_chunk(self, bus: BusClient, smtp: RecordingSmtpServer, account) -> None:
        account_id = await account()
        people = [address(f"chunk{n}") for n in range(12)]
        people[3] = address("dropconn")
        people[8] = address("busy421")
        await add_users(bus, {"account_id": account_id, "pasted": "\n".join(f"Chunk Member{n} {p}" for n, p in enumerate(people))})
        for person in people:
            await emails_to(smtp, person)
        sent = await eventually(lambda: [e for e in bus.find(routing.INVITATION_SENT, account_id=account_id)]
                                if len(bus.find(routing.INVITATION_SENT, account_id=account_id)) >= len(people) else None)
        assert sorted(e.body["email"] for e in sent) == sorted(people)
        assert {(rcpt, code) for rcpt, code in smtp.handler.refusals if rcpt in (people[3], people[8])} == {
            (people[3], 0), (people[8], 421)}
        assert [len(smtp.handler.to(p)) for p in people] == [1] * len(people)
        assert not bus.find(routing.INVITATION_FAILED, account_id=account_id)
