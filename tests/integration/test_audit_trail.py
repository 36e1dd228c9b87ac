"""The audit trail written by the real workers: one entry per change, in the change's
transaction, with who acted through which door, chained per account."""
from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from contracts import routing
from tests.integration.conftest import address, unique
from tests.integration.scim.conftest import scim_base, tenant  # noqa: F401 - fixtures
from tests.integration.test_links_page import form_of
from tests.integration.test_parked import CREATION, parked_with_id
from tests.support.flows import add_active_member, add_users, emails_to, tokens_in
from tests.support.infra import Infra
from tests.support.smtp import RecordingSmtpServer
from tests.support.workers import WorkerProcess
from userprov.audit.chain import COLUMNS, GENESIS, first_break, from_row, link
from userprov.audit.expiry import audit_expired_invitations
from userprov.audit.retention import prune_audit
from userprov.operations.invitations import retry_failed
from userprov.operations.parked import Selection, replay
from userprov.runtime.unit_of_work import publish_nothing, transaction
from userprov_devtools.bus_client import BusClient
from userprov_devtools.waiting import eventually


async def entries(db: asyncpg.Pool, account_id: str) -> list[dict[str, Any]]:
    return [from_row(r) for r in await db.fetch(f"SELECT {COLUMNS} FROM audit_entries WHERE account_id = $1 ORDER BY seq", account_id)]


def said(found: list[dict[str, Any]], *actions: str) -> list[tuple[str, str, str | None, str, str | None]]:
    """(action, actor kind, actor id, via, target email) of the entries with these actions, in order."""
    return [(e["action"], e["actor"]["kind"], e["actor"]["id"], e["via"], e["target"]["email"])
            for e in found if e["action"] in actions]


async def audited(db: asyncpg.Pool, account_id: str, action: str, count: int = 1) -> list[dict[str, Any]]:
    async def found() -> list[dict[str, Any]]:
        matching = [e for e in await entries(db, account_id) if e["action"] == action]
        return matching if len(matching) >= count else []
    return await eventually(found, 30, what=f"{count} {action} entries")


@pytest.fixture
async def http() -> Any:
    async with httpx.AsyncClient(timeout=15) as client:
        yield client


class TestTheWholeStory:
    """Each door's changes in the account's chain, in order, with who acted, through which door."""

    async def test_story(self, infra: Infra, links: Any, http: httpx.AsyncClient, bus: BusClient, smtp: RecordingSmtpServer,
                         db: asyncpg.Pool, tenant: Any) -> None:  # noqa: F811 - the fixture
        scim = await tenant()
        account_id = scim.account_id
        admin = address("auditadmin")
        await add_active_member(bus, smtp, account_id, admin, role="admin", products=["gotomeeting"])
        joining, leaving, bouncing = address("auditjoining"), address("auditleaving"), address("permfailaudit")
        people = [{"first_name": "Zoë", "last_name": "Ōtsuka", "email": joining},
                  {"first_name": "Lea", "last_name": "Ving", "email": leaving},
                  {"first_name": "Bou", "last_name": "Ncing", "email": bouncing}]
        # 1. an admin adds people over the bus
        added = await add_users(bus, {"account_id": account_id, "requested_by": admin, "products": ["gotomeeting"], "users": people})
        user_ids = {r["email"]: r["user_id"] for r in added.body["results"]}
        await eventually(lambda: bus.find(routing.INVITATION_FAILED, email=bouncing), what="the failed invitation")
        # 2. one accepts through the invitation page
        [email] = await emails_to(smtp, joining)
        shown = await http.get(f"{links[0]}?token={tokens_in(email)['link']}")
        accepted = await http.post(links[0], data={**form_of(shown, "accept"), "confirm": "yes"})
        assert accepted.status_code == 200, accepted.text
        # 3. a SCIM token deactivates another
        patched = await scim.patch(user_ids[leaving], {"op": "replace", "path": "active", "value": False})
        assert patched.status_code == 200, patched.text
        # 4. an operator retries the failed invitation
        assert (await retry_failed(infra.amqp_url, account_id)).retried == 1
        await emails_to(smtp, bouncing)  # the failed try was refused at RCPT: no email
        await audited(db, account_id, "invitation.sent", 4)
        # 5. an invitation expires, and the housekeeping sweep records it
        await db.execute("UPDATE invitations SET expires_at = now() - interval '1 second' WHERE status = 'sent'"
                         " AND membership_id IN (SELECT membership_id FROM memberships m JOIN profiles p USING (profile_id)"
                         " WHERE p.email = $1)", bouncing)
        assert await audit_expired_invitations(db) >= 1

        found = await entries(db, account_id)
        assert first_break(found) is None
        assert [e["seq"] for e in found] == list(range(1, len(found) + 1))
        token = str(scim.token_id)
        assert said(found, "account.upserted", "scim_token.added", "user.added", "user.activated", "user.deactivated",
                    "invitation.failed", "invitation.resent", "invitation.expired") == [
            ("account.upserted", "service", "guest", "bus", None),
            ("scim_token.added", "operator", "guest", "cli", None),
            ("user.added", "service", "guest", "bus", admin),
            ("user.activated", "service", "guest", "bus", admin),  # the test client accepted it on the bus
            ("user.added", "user", admin, "bus", joining),
            ("user.added", "user", admin, "bus", leaving),
            ("user.added", "user", admin, "bus", bouncing),
            ("invitation.failed", "system", None, "system", bouncing),
            ("user.activated", "invitee", user_ids[joining], "links", joining),
            ("user.deactivated", "scim_token", token, "scim", leaving),
            ("invitation.resent", "operator", "guest", "cli", bouncing),
            ("invitation.expired", "system", None, "system", bouncing),
        ]
        joined = next(e for e in found if e["action"] == "user.added" and e["target"]["email"] == joining)
        assert joined["changes"] == {"role": None, "products": ["gotomeeting"], "language": "en", "group": None,
                                     "settings_template": None, "first_name": "Zoë", "last_name": "Ōtsuka", "external_id": None,
                                     "active": True, "row": 1}
        assert joined["message_id"] == added.body["command_id"] and joined["target"]["user_id"] == uuid.UUID(user_ids[joining])
        sent = [e for e in found if e["action"] == "invitation.sent"]
        assert sorted(e["target"]["email"] for e in sent) == sorted([admin, joining, leaving, bouncing])
        assert all((e["actor"]["kind"], e["via"]) == ("system", "system") for e in sent)
        assert [e["at"] for e in found] == sorted(e["at"] for e in found)


@pytest.fixture
async def failing_at_commit(db: asyncpg.Pool) -> Any:
    """An account whose upserts fail at COMMIT (a deferred trigger): after the unit's closing
    statement wrote its audit entries, until the test deletes the marker row."""
    account_id = unique("commitfails")
    await db.execute(
        "CREATE TABLE IF NOT EXISTS test_commit_refused (account_id text PRIMARY KEY);"
        " CREATE OR REPLACE FUNCTION test_refuse_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        "   IF EXISTS (SELECT 1 FROM test_commit_refused WHERE account_id = NEW.account_id) THEN"
        "     RAISE EXCEPTION 'account % refused at commit by the test', NEW.account_id;"
        "   END IF; RETURN NEW; END $$;"
        " DROP TRIGGER IF EXISTS test_refuse_at_commit ON accounts;"
        " CREATE CONSTRAINT TRIGGER test_refuse_at_commit AFTER INSERT OR UPDATE ON accounts"
        "   DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_refuse_at_commit();"
    )
    await db.execute("INSERT INTO test_commit_refused VALUES ($1)", account_id)
    yield account_id
    await db.execute("DELETE FROM test_commit_refused WHERE account_id = $1", account_id)


class TestOnceAndOnlyOnCommit:
    """A redelivered or replayed command gives one set of entries; a failed one none."""

    async def test_a_users_add_published_three_times_gives_one_set(self, bus: BusClient, db: asyncpg.Pool, account: Any) -> None:
        account_id = await account({"gotomeeting": 5})
        message_id = str(uuid.uuid4())
        body = {"account_id": account_id, "products": ["gotomeeting"], "pasted": f"A One {address('once1')}; B Two {address('once2')}"}
        for _ in range(3):
            await bus.publish(routing.USERS_ADD, body, message_id=message_id)
        await eventually(lambda: bus.find(routing.USERS_ADD_COMPLETED, command_id=message_id), what="the add")
        await eventually(lambda: len(bus.find(routing.COMMAND_REJECTED, command_id=message_id)) == 0
                         and len(bus.find(routing.USERS_ADD_COMPLETED, command_id=message_id)) == 1, what="settled")
        await audited(db, account_id, "invitation.sent", 2)  # the copies are settled by then
        found = await entries(db, account_id)
        assert [e["action"] for e in found if e["message_id"] == message_id] == ["user.added", "user.added"]
        assert first_break(found) is None

    async def test_an_upsert_published_three_times_gives_one_entry(self, bus: BusClient, db: asyncpg.Pool, account: Any,
                                                                  workers: list[WorkerProcess]) -> None:
        """Each copy does the upsert again (and writes its entry) before its inbox claim finds the first's."""
        account_id = await account({"gotomeeting": 5})
        message_id = str(uuid.uuid4())
        for _ in range(3):
            await bus.publish(routing.ACCOUNTS_UPSERT, {"account_id": account_id, "licences": {"gotomeeting": 7}}, message_id=message_id)
        await eventually(lambda: sum(message_id in line and '"duplicate"' in line for w in workers for line in w.lines()) == 2,
                         what="two copies handled as duplicates")
        found = await entries(db, account_id)
        assert [e["changes"] for e in found if e["message_id"] == message_id] == [{"created": False, "licences": {"gotomeeting": 7}}]

    async def test_a_failing_command_leaves_none_and_its_replay_one(
        self, infra: Infra, bus: BusClient, db: asyncpg.Pool, failing_at_commit: str, workers: list[WorkerProcess],
    ) -> None:
        account_id = failing_at_commit
        message_id = str(uuid.uuid4())
        body = {"account_id": account_id, "name": "Broken Ltd", "licences": {"gotomeeting": 5}}
        for _ in range(2):  # two copies: both parked, both replayed
            await bus.publish(routing.ACCOUNTS_UPSERT, body, message_id=message_id, headers={"x-userprov-via": "cli"})
        await parked_with_id(infra, message_id, count=2)
        assert await entries(db, account_id) == []  # five failed tries each, rolled back with their entries
        await db.execute("DELETE FROM test_commit_refused WHERE account_id = $1", account_id)
        await replay(infra.amqp_url, CREATION, Selection(ids=frozenset({message_id})), dry_run=False)
        await audited(db, account_id, "account.upserted")
        await eventually(lambda: any(message_id in line and '"duplicate"' in line for w in workers for line in w.lines()),
                         what="the second copy handled as a duplicate")
        found = await entries(db, account_id)
        # the original's door kept through its parking and replay (its publisher and the operator are trusted)
        assert said(found, "account.upserted") == [("account.upserted", "operator", "guest", "cli", None)]
        assert found[0]["changes"] == {"created": True, "name": "Broken Ltd", "licences": {"gotomeeting": 5}}


class TestRefusalsAboutTheActor:
    """`forbidden` and `last_admin` refusals are audited with the refusal; other refusals are not."""

    async def test_forbidden_and_last_admin(self, bus: BusClient, smtp: RecordingSmtpServer, db: asyncpg.Pool, account: Any) -> None:
        account_id = await account({"gotomeeting": 5})
        admin, plain = address("lastadmin"), address("plainuser")
        await add_active_member(bus, smtp, account_id, admin, role="admin", products=["gotomeeting"])
        await add_active_member(bus, smtp, account_id, plain, products=["gotomeeting"])
        refused = await add_users(bus, {"account_id": account_id, "requested_by": plain,
                                        "users": [{"first_name": "N", "last_name": "O", "email": address("nope")}]})
        assert refused.body["reason"] == "forbidden"
        removal = await bus.publish(routing.USERS_REMOVE, {"account_id": account_id, "email": admin})
        await eventually(lambda: bus.find(routing.COMMAND_REJECTED, command_id=removal), what="the last_admin refusal")
        await bus.publish(routing.USERS_REMOVE, {"account_id": account_id, "email": address("nobody")})  # unknown_user: not audited
        rejected = await audited(db, account_id, routing.COMMAND_REJECTED, 2)
        assert [(e["actor"]["kind"], e["actor"]["id"], e["target"]["email"], e["changes"]) for e in rejected] == [
            ("user", plain, None, {"command": "users.add", "reason": "forbidden"}),
            ("service", "guest", admin, {"command": "users.remove", "reason": "last_admin"}),
        ]


CONCURRENT_WRITER = """
import asyncio, sys
import asyncpg
from userprov.runtime.unit_of_work import transaction

async def main(url, account_id, writer):
    pool = await asyncpg.create_pool(url, min_size=4, max_size=4)
    async def one(n):
        async with transaction(pool, lambda _: None, f"writer-{writer}") as tx:
            tx.audit("user.updated", account_id, None, f"p{writer}-{n}@example.com", {"n": n})
    await asyncio.gather(*(one(n) for n in range(60)))
    await pool.close()

asyncio.run(main(*sys.argv[1:]))
"""


class TestTheChain:
    """Concurrent writers keep one account's chain linear; retention keeps it verifiable."""

    async def test_four_processes_writing_to_one_account(self, infra: Infra, db: asyncpg.Pool) -> None:
        account_id = f"chained-{uuid.uuid4().hex[:8]}"
        processes = [await asyncio.create_subprocess_exec(sys.executable, "-c", CONCURRENT_WRITER, infra.database_url, account_id,
                                                          str(w), stderr=subprocess.PIPE) for w in range(4)]
        for process in processes:
            _, error = await process.communicate()
            assert process.returncode == 0, error.decode()[-2000:]
        found = await entries(db, account_id)
        assert [e["seq"] for e in found] == list(range(1, 241))
        assert first_break(found, head=(240, found[-1]["hash"])) is None

    async def test_retention_prunes_a_prefix_and_the_rest_verifies_from_the_checkpoint(self, db: asyncpg.Pool) -> None:
        account_id = f"pruned-{uuid.uuid4().hex[:8]}"
        for n in range(60):
            async with transaction(db, publish_nothing) as tx:
                tx.audit("user.updated", account_id, None, f"p{n}@example.com", {"n": n})
        # the first 25 entries are made old (their hashes cover `at`: the chain is re-made for the test)
        await db.execute("UPDATE audit_entries SET at = at - interval '500 days' WHERE account_id = $1 AND seq <= 25", account_id)
        found = await entries(db, account_id)
        previous = GENESIS
        for e in found:
            e["hash"] = previous = link(previous, e)
        await db.executemany("UPDATE audit_entries SET hash = $3 WHERE account_id = $1 AND seq = $2",
                             [(account_id, e["seq"], e["hash"]) for e in found])
        assert await prune_audit(db, 400, batch=10) == 25
        checkpoint = await db.fetchrow("SELECT seq, hash FROM audit_checkpoints WHERE account_id = $1", account_id)
        assert (checkpoint["seq"], bytes(checkpoint["hash"])) == (25, found[24]["hash"])
        left = await entries(db, account_id)
        assert [e["seq"] for e in left] == list(range(26, 61))
        assert first_break(left, checkpoint["seq"], bytes(checkpoint["hash"])) is None
        assert first_break(left) is not None  # without the checkpoint, what is left starts with a gap
        assert await prune_audit(db, 400) == 0
