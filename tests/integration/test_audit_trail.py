"""The audit trail written by the real workers: one entry per change, in the change's
transaction, with who acted through which door, chained per account."""
from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from typing import Any

import asyncpg
import pytest

from contracts import routing
from contracts.events import AccountUpserted
from tests.integration.conftest import address, unique
from tests.integration.test_parked import CREATION, parked_with_id
from tests.support.flows import add_active_member, add_users, emails_to, tokens_in
from tests.support.infra import Infra
from tests.support.smtp import RecordingSmtpServer
from tests.support.workers import WorkerProcess
from userprov.audit.actors import SYSTEM
from userprov.audit.chain import COLUMNS, GENESIS, first_break, from_row, link
from userprov.audit.retention import prune_audit
from userprov.audit.writing import Entry
from userprov.invitation_mailing import sql as mailing_sql
from userprov.operations.parked import Selection, replay
from userprov.runtime.outbox import OutgoingMessage
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
        nowhere = f"nowhere-{uuid.uuid4().hex[:8]}"  # anyone may name a made-up account: no entry, no head
        made_up = await add_users(bus, {"account_id": nowhere, "requested_by": plain,
                                        "users": [{"first_name": "N", "last_name": "O", "email": address("nope")}]})
        assert made_up.body["reason"] == "forbidden"
        rejected = await audited(db, account_id, routing.COMMAND_REJECTED, 2)
        assert await db.fetchval("SELECT count(*) FROM audit_heads WHERE account_id = $1", nowhere) == 0
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

    async def test_four_processes_writing_to_one_account(self, infra: Infra, db: asyncpg.Pool, account: Any) -> None:
        account_id = await account()
        processes = [await asyncio.create_subprocess_exec(sys.executable, "-c", CONCURRENT_WRITER, infra.database_url, account_id,
                                                          str(w), stderr=subprocess.PIPE) for w in range(4)]
        for process in processes:
            _, error = await process.communicate()
            assert process.returncode == 0, error.decode()[-2000:]
        found = await entries(db, account_id)
        assert [e["seq"] for e in found] == list(range(1, 242))  # the account's own account.upserted, then the 240
        assert first_break(found, head=(241, found[-1]["hash"])) is None

    async def test_what_the_database_chains_verifies_whatever_the_entries_hold(self, db: asyncpg.Pool, account: Any) -> None:
        """The database numbers and chains (audit_append); `audit verify` re-computes in Python."""
        first, second = await account(), await account()
        odd = ["Zoë \u2028 \u2029", "\U0001f600 大塚", 'quote " back \\ slash', "\x01\x1f\t\n", ',"seq":0,"at":"']
        async with transaction(db, publish_nothing) as tx:
            for n, text in enumerate(odd):
                tx.audit("user.updated", second if n % 2 else first, uuid.uuid4(), f"p{n}@example.com",
                         {"first_name": {"before": text, "after": text[::-1]}, "seq": 0, "at": "", text: [n, None, True]})
            tx.audit("user.updated", unique("nosuchaccount"), None, "nobody@example.com", {})
        for account_id, count in ((first, 3), (second, 2)):
            found = await entries(db, account_id)
            assert [e["seq"] for e in found] == list(range(1, count + 2))  # after the account's own account.upserted
            head = await db.fetchrow("SELECT seq, hash FROM audit_heads WHERE account_id = $1", account_id)
            assert first_break(found, head=(head["seq"], bytes(head["hash"]))) is None
            assert found[-1]["at"] >= found[0]["at"]
        assert await db.fetchval("SELECT count(*) FROM audit_entries WHERE target_email = 'nobody@example.com'") == 0

    async def test_an_email_outcome_whose_claim_was_lost_writes_no_entry(self, bus: BusClient, db: asyncpg.Pool,
                                                                         account: Any) -> None:
        """The mailer's one statement: an outcome's entry (and event) only where it changed the invitation."""
        account_id = await account({"gotomeeting": 3})
        kept, lost = address("auditkept"), address("auditlost")
        await add_users(bus, {"account_id": account_id, "products": ["gotomeeting"], "pasted": f"K Ept {kept}; L Ost {lost}"})
        await audited(db, account_id, "invitation.sent", 2)
        rows = await db.fetch("SELECT i.invitation_id, p.email FROM invitations i JOIN memberships m USING (membership_id)"
                              " JOIN profiles p USING (profile_id) WHERE i.account_id = $1", account_id)
        claims = {r["invitation_id"]: uuid.uuid4().bytes * 2 for r in rows}
        await db.executemany("UPDATE invitations SET status = 'sending', token_hash = $2 WHERE invitation_id = $1", claims.items())
        outcomes = [
            mailing_sql.Recorded(r["invitation_id"], claims[r["invitation_id"]] if r["email"] == kept else bytes(32), "sent",
                                 event=OutgoingMessage.event(AccountUpserted(account_id=account_id), None),
                                 entry=Entry(account_id, "invitation.sent", SYSTEM, None, r["email"], {"again": True}))
            for r in rows]
        async with db.acquire() as conn:
            written = await mailing_sql.record(conn, outcomes)
        assert len(written) == 1
        found = await entries(db, account_id)
        assert [e["target"]["email"] for e in found if e["changes"] == {"again": True}] == [kept]
        assert first_break(found) is None

    async def test_retention_prunes_a_prefix_and_the_rest_verifies_from_the_checkpoint(self, db: asyncpg.Pool, account: Any) -> None:
        account_id = await account()
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
        assert [e["seq"] for e in left] == list(range(26, 62))
        assert first_break(left, checkpoint["seq"], bytes(checkpoint["hash"])) is None
        assert first_break(left) is not None  # without the checkpoint, what is left starts with a gap
        assert await prune_audit(db, 400) == 0


class TestMemberChanges:
    """Updates with their before and after, a decline, a transfer in both accounts, a removal."""

    async def test_update_decline_transfer_remove(self, bus: BusClient, smtp: RecordingSmtpServer, db: asyncpg.Pool,
                                                  account: Any) -> None:
        old, new = await account({"gotomeeting": 3}), await account({"gotomeeting": 3})
        mover, decliner = address("auditmover"), address("auditdecliner")
        for person in (mover, decliner):
            await add_active_member(bus, smtp, old, person, products=["gotomeeting"])
        await bus.publish(routing.USERS_UPDATE, {"account_id": old, "email": mover, "first_name": "Björn", "language": "de"})
        await add_users(bus, {"account_id": new, "products": ["gotomeeting"], "users": [
            {"first_name": "Mo", "last_name": "Ver", "email": mover}, {"first_name": "De", "last_name": "Cline", "email": decliner}]})
        [_, moving] = await emails_to(smtp, mover, count=2)
        [_, declining] = await emails_to(smtp, decliner, count=2)
        await bus.publish(routing.INVITATION_ACCEPTED, {"token": tokens_in(moving)["accept"]})
        await bus.publish(routing.INVITATION_DECLINED, {"token": tokens_in(declining)["decline"]})
        await bus.publish(routing.USERS_REMOVE, {"account_id": old, "email": decliner})
        for account_id, action in ((old, "user.updated"), (old, "user.transferred"), (old, "user.removed"), (new, "user.suspended")):
            await audited(db, account_id, action)  # each message is handled on its own: the entries come in any order

        in_old = await entries(db, old)
        [updated] = [e for e in in_old if e["action"] == "user.updated"]
        assert updated["changes"] == {"first_name": {"before": "Active", "after": "Björn"}, "language": {"before": "en", "after": "de"}}
        [left] = [e for e in in_old if e["action"] == "user.transferred"]
        assert left["changes"] == {"from_account_id": old, "to_account_id": new,
                                   "moved": {"session_history": 0, "scheduled_sessions": 0, "upcoming_recordings": 0}}
        [removed] = [e for e in in_old if e["action"] == "user.removed"]
        assert removed["target"]["email"] == decliner and removed["changes"]["status"] == ["active", "removed"]
        in_new = await entries(db, new)
        [arrived] = [e for e in in_new if e["action"] == "user.transferred"]
        assert arrived["target"]["email"] == mover and arrived["changes"]["kind"] == "transfer"
        assert arrived["correlation_id"] == left["correlation_id"] and arrived["at"] == left["at"]
        assert [e["target"]["email"] for e in in_new if e["action"] == "user.suspended"] == [decliner]
        assert first_break(in_old) is None and first_break(in_new) is None


@pytest.mark.bench
class TestAuditBench:
    async def test_10000_person_add(self, bus: BusClient, db: asyncpg.Pool, account: Any) -> None:
        """A 10,000-person paste: its time, and the audit's own share (10,000 entries chained and
        written in one transaction, as the add's closing statement does)."""
        account_id = await account({"gotomeeting": 10_000})
        pasted = "\n".join(f"Bulk\tPerson {n}\t{address(f'auditbench{n}')}" for n in range(10_000))
        started = time.monotonic()
        await add_users(bus, {"account_id": account_id, "products": ["gotomeeting"], "pasted": pasted}, timeout=120)
        elapsed = time.monotonic() - started
        assert await db.fetchval("SELECT count(*) FROM audit_entries WHERE account_id = $1 AND action = 'user.added'",
                                 account_id) == 10_000
        other = await account()
        started = time.monotonic()
        async with transaction(db, publish_nothing) as tx:
            for n in range(10_000):
                tx.audit("user.added", other, uuid.uuid4(), f"p{n}@example.com", {"first_name": "Bulk", "last_name": f"Person {n}",
                                                                                 "products": ["gotomeeting"], "row": n + 1})
        audited_alone = time.monotonic() - started
        print(f"10,000-person add in {elapsed:.2f} s; 10,000 entries chained and written alone in {audited_alone:.2f} s"
              f" ({10_000 / audited_alone:.0f} entries/s)")
