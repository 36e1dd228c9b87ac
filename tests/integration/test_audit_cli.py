"""`userprov audit verify` and `userprov audit export`, through audit.list like any integrator:
the chain re-computed holds, and an entry changed by hand in PostgreSQL, one deleted (in the
middle, or the newest) and two swapped are each named; the export's lines are the entries oldest
first, as JSON or as OCSF events valid against the OCSF schema."""
from __future__ import annotations

import asyncio
import json
import os
import shlex
import subprocess
import sys

import asyncpg
from typer.testing import CliRunner, Result

from contracts import routing
from tests.integration.test_cli_tools import userprov
from tests.support.audit_chains import append, base, pages
from tests.support.infra import Infra
from tests.support.ocsf_schema import ocsf_errors
from userprov.cli import app
from userprov.operations.audit import export, verify
from userprov_devtools.bus_client import BusClient


def in_process(amqp_url: str, *args: str) -> Result:
    """The command as `userprov` runs it, in this process (in a thread of its own: it runs its own
    event loop), without the seconds a new interpreter takes to import it."""
    return CliRunner().invoke(app, list(args), env={"USERPROV_AMQP_URL": amqp_url, "COLUMNS": "200"})


async def swap(db: asyncpg.Pool, account_id: str, a: int, b: int) -> None:
    """Two entries exchange their places (seq is the primary key's: through a free one)."""
    async with db.acquire() as conn, conn.transaction():
        for old, new in ((a, 10**9), (b, a), (10**9, b)):
            await conn.execute("UPDATE audit_entries SET seq = $3 WHERE account_id = $1 AND seq = $2", account_id, old, new)


class TestVerify:
    async def test_names_the_first_entry_changed_deleted_or_reordered(self, infra: Infra, bus: BusClient, db: asyncpg.Pool,
                                                                    account) -> None:
        """Each break is named by its first entry and kind, also where it straddles a page's end."""
        changed, deleted, newest_deleted, swapped = [await account() for _ in range(4)]
        for account_id in (changed, deleted, newest_deleted, swapped):
            await append(db, account_id, 1100)  # three pages: a break on a page's edge, too
        assert (await verify(infra.amqp_url, changed)).broken is None
        n = await base(db, changed) - 1100
        await db.execute("UPDATE audit_entries SET changes = '{\"n\": 1}' WHERE account_id = $1 AND seq = $2", changed, n + 700)
        await db.execute("DELETE FROM audit_entries WHERE account_id = $1 AND seq = $2", deleted, n + 500)
        await db.execute("DELETE FROM audit_entries WHERE account_id = $1 AND seq = $2", newest_deleted, n + 1100)
        await swap(db, swapped, n + 499, n + 501)
        found = {account_id: (await verify(infra.amqp_url, account_id)).broken for account_id in (changed, deleted, newest_deleted, swapped)}
        assert [(b.seq, b.kind) for b in found.values() if b is not None] == [
            (n + 700, "changed"), (n + 500, "deleted"), (n + 1100, "deleted"), (n + 499, "reordered")]

    async def test_from_the_checkpoint_retention_left(self, infra: Infra, bus: BusClient, db: asyncpg.Pool, account) -> None:
        """After the retention's statement pruned an account's oldest entries, audit.list gives its
        checkpoint, and the chain is verified from there: it holds, and a change after it is named."""
        from datetime import UTC, datetime, timedelta

        from userprov.audit.retention import PRUNE_BATCH

        account_id = await account()
        written = await append(db, account_id, 1100, start=datetime.now(UTC) - timedelta(days=60), step=timedelta(hours=1))
        old = [e for e in written if e["at"] < datetime.now(UTC) - timedelta(days=30)]
        assert await db.fetchval(PRUNE_BATCH, account_id, 30, 10_000) == len(old)  # the account's own: not the session's others
        pruned = old[-1]
        first = await bus.query(routing.AUDIT_LIST, {"account_id": account_id, "order": "oldest_first", "limit": 2})
        assert first["checkpoint"] == {"seq": pruned["seq"], "hash": pruned["hash"].hex()}
        assert (await verify(infra.amqp_url, account_id)).broken is None
        await db.execute("UPDATE audit_checkpoints SET hash = $2 WHERE account_id = $1", account_id, bytes(32))
        broken = (await verify(infra.amqp_url, account_id)).broken
        assert broken is not None and (broken.seq, broken.kind) == (pruned["seq"] + 1, "changed")

    async def test_its_exit_status_says_holds_broken_or_could_not_check(self, infra: Infra, bus: BusClient, db: asyncpg.Pool,
                                                                        account) -> None:
        """0 and the last entry when the chain holds, 1 naming the entry, 2 for an unknown account."""
        holds, broken = await account(), await account()
        await append(db, holds, 40)
        await append(db, broken, 40)
        await db.execute("UPDATE audit_entries SET target_email = 'mallory@example.com' WHERE account_id = $1 AND seq = 30", broken)
        ok, bad, unknown = [await asyncio.to_thread(in_process, infra.amqp_url, "audit", "verify", a)
                            for a in (holds, broken, "no-such-account")]
        assert ok.exit_code == 0 and f"account {holds}: the chain holds, from its first entry to entry" in ok.stdout, ok.output
        assert bad.exit_code == 1 and "broken at entry 30 (changed)" in bad.stdout, bad.output
        assert unknown.exit_code == 2 and "unknown_account" in unknown.stderr, unknown.output


class TestExport:
    async def test_jsonl_and_ocsf_oldest_first(self, infra: Infra, bus: BusClient, db: asyncpg.Pool, account) -> None:
        """jsonl is audit.list's entries oldest first; ocsf keeps --since and --until, and each event is valid OCSF."""
        account_id = await account()
        written = await append(db, account_id, 30)
        entries, _ = await pages(bus, {"account_id": account_id, "order": "oldest_first"})
        since, until = written[5]["at"].isoformat(), written[25]["at"].isoformat()
        jsonl = await asyncio.to_thread(userprov, infra.amqp_url, "audit", "export", account_id)  # as a shell runs it
        ocsf = await asyncio.to_thread(in_process, infra.amqp_url, "audit", "export", account_id, "--format", "ocsf", "--since", since,
                                       "--until", until)
        assert jsonl.returncode == 0, jsonl.stderr
        assert [json.loads(line) for line in jsonl.stdout.splitlines()] == [{"account_id": account_id, **e} for e in entries]
        assert jsonl.stderr.strip().endswith(f"{len(entries)} audit entries of account {account_id}")
        assert ocsf.exit_code == 0, ocsf.output
        events = [json.loads(line) for line in ocsf.stdout.splitlines()]
        assert [e["metadata"]["sequence"] for e in events] == [w["seq"] for w in written[5:25]]
        assert [error for event in events for error in ocsf_errors(event)] == []
        assert {e["class_uid"] for e in events} == {3001, 3006}


class TestAsAShellRunsThem:
    async def test_a_reader_that_goes_away_is_no_success_and_neither_prints_a_traceback(
            self, infra: Infra, bus: BusClient, db: asyncpg.Pool, account) -> None:
        """`export | head -1`: the export is incomplete, so not exit 0 (a SIEM forwarder that died
        looked like success), and a verify that finds a break (leaving its pages early) closes its
        connection before its event loop ends: no traceback on either's standard error."""
        account_id = await account()
        await append(db, account_id, 1_200)  # three pages of audit.list
        await db.execute("UPDATE audit_entries SET target_email = 'mallory@example.com' WHERE account_id = $1 AND seq = 7", account_id)
        command = f"set -o pipefail; {shlex.quote(sys.executable)} -m userprov audit export {shlex.quote(account_id)} | head -1"
        piped = await asyncio.to_thread(subprocess.run, ["bash", "-c", command], capture_output=True, text=True, timeout=90,
                                        env={**os.environ, "USERPROV_AMQP_URL": infra.amqp_url})
        assert piped.returncode == 2 and len(piped.stdout.splitlines()) == 1, (piped.returncode, piped.stderr)
        assert "the export is incomplete" in piped.stderr and "Traceback" not in piped.stderr, piped.stderr
        broken = await asyncio.to_thread(userprov, infra.amqp_url, "audit", "verify", account_id)
        assert broken.returncode == 1 and "broken at entry 7 (changed)" in broken.stdout, broken.stderr
        assert broken.stderr.strip() == "", broken.stderr


class TestThroughTheWorkers:
    async def test_the_workers_entries_list_verify_and_export(self, infra: Infra, bus: BusClient, db: asyncpg.Pool, account) -> None:
        """Entries the workers wrote in the transactions of their changes: audit.list gives them in
        order with their actor and door, the chain holds, the OCSF export is valid; an entry
        changed by hand is named."""
        from tests.integration.conftest import address
        from tests.support.flows import add_users
        from userprov_devtools.waiting import eventually

        account_id = await account()
        ada, alan = address("ada"), address("alan")
        added = await add_users(bus, {"account_id": account_id, "users": [{"first_name": "Ada", "last_name": "Lovelace", "email": ada},
                                                                          {"first_name": "Alan", "last_name": "Turing", "email": alan}]})
        assert [r["outcome"] for r in added.body["results"]] == ["accepted", "accepted"]
        for key, body, event in ((routing.USERS_UPDATE, {"email": alan, "last_name": "Mathison"}, routing.USER_UPDATED),
                                 (routing.USERS_DEACTIVATE, {"email": ada}, routing.USER_DEACTIVATED),
                                 (routing.USERS_REMOVE, {"email": alan}, routing.USER_REMOVED)):
            await bus.publish(key, {"account_id": account_id, **body})
            await eventually(lambda: bus.find(event, account_id=account_id), what=event)  # noqa: B023
        mine = ["account.upserted", "user.added", "user.updated", "user.deactivated", "user.removed"]
        entries, _ = await pages(bus, {"account_id": account_id, "order": "oldest_first", "actions": mine})
        assert [(e["action"], e["target"]["email"]) for e in entries] == [
            ("account.upserted", None), ("user.added", ada), ("user.added", alan), ("user.updated", alan), ("user.deactivated", ada),
            ("user.removed", alan)]
        assert {(e["actor"]["kind"], e["actor"]["id"], e["via"]) for e in entries} == {("service", "guest", "bus")}
        assert entries[3]["changes"]["last_name"] == {"before": "Turing", "after": "Mathison"}
        assert (await verify(infra.amqp_url, account_id)).broken is None
        lines: list[str] = []
        await export(infra.amqp_url, account_id, lines.append, format="ocsf")
        events = [json.loads(line) for line in lines]
        assert len(events) >= len(entries) and [error for event in events for error in ocsf_errors(event)] == []
        removed = entries[-1]["seq"]
        await db.execute("UPDATE audit_entries SET actor_id = 'someone-else' WHERE account_id = $1 AND seq = $2", account_id, removed)
        broken = (await verify(infra.amqp_url, account_id)).broken
        assert broken is not None and (broken.seq, broken.kind) == (removed, "changed")
