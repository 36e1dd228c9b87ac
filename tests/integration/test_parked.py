"""`userprov parked` against real RabbitMQ and the real workers: every parked copy says why,
and list, show, replay and purge act on the parking queues without losing anything."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

import aio_pika
import asyncpg
import pytest

from contracts import routing
from tests.integration.conftest import accounts_on, address, unique
from tests.support.broker_users import WRITE, broker_user
from tests.support.hostile import publish_hostile
from tests.support.infra import Infra, drop_vhost, rabbitmqctl
from tests.support.isolated import isolated_workers
from tests.support.workers import WorkerProcess
from userprov.operations import parked as parked_operations
from userprov.operations.parked import Selection, list_parked, purge, replay, show
from userprov.runtime import parking
from userprov.runtime.parking import ParkedMessage
from userprov_devtools.bus_client import BusClient
from userprov_devtools.waiting import eventually

CREATION = [routing.USER_CREATION]


async def parked_with_id(infra: Infra, message_id: str, count: int = 1) -> list[ParkedMessage]:
    async def found() -> list[ParkedMessage]:
        matching = [p for p in await list_parked(infra.amqp_url, CREATION, 100_000) if p.id == message_id]
        return matching if len(matching) >= count else []

    return await eventually(found, 60, 0.3, what=f"{count} parked message(s) {message_id}")


@pytest.fixture
async def refusing_trigger(db: asyncpg.Pool) -> AsyncIterator[str]:
    """Makes upserts of one account fail inside PostgreSQL (a handler failure that is no
    refusal and not transient) until the test deletes the marker row: a bug, then its fix."""
    account_id = unique("broken")
    await db.execute(
        "CREATE TABLE IF NOT EXISTS test_broken_accounts (account_id text PRIMARY KEY);"
        " CREATE OR REPLACE FUNCTION test_refuse_account() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        "   IF EXISTS (SELECT 1 FROM test_broken_accounts WHERE account_id = NEW.account_id) THEN"
        "     RAISE EXCEPTION 'account % refused by the test trigger for owner@example.com', NEW.account_id;"
        "   END IF; RETURN NEW; END $$;"
        " CREATE OR REPLACE TRIGGER test_refuse_account BEFORE INSERT OR UPDATE ON accounts"
        "   FOR EACH ROW EXECUTE FUNCTION test_refuse_account();"
    )
    await db.execute("INSERT INTO test_broken_accounts VALUES ($1)", account_id)
    yield account_id
    await db.execute("DELETE FROM test_broken_accounts WHERE account_id = $1", account_id)


class TestWhyHeaders:
    async def test_a_refused_message_says_what_was_wrong(self, infra: Infra, bus: BusClient) -> None:
        correlation_id = unique("corr")
        message_id = await bus.publish_raw(routing.USERS_ADD, b"{not json", correlation_id=correlation_id)
        [parked] = await parked_with_id(infra, message_id)
        assert (parked.service, parked.reason, parked.error_type) == (routing.USER_CREATION, "malformed_json", "Rejected")
        assert parked.error_message.startswith("the body is not JSON")
        assert (parked.exchange, parked.routing_key) == (routing.COMMANDS_EXCHANGE, routing.USERS_ADD)
        assert parked.attempts == 1 and parked.correlation_id == correlation_id
        assert parked.first_failure == parked.last_failure and datetime.fromisoformat(parked.first_failure)

    async def test_a_failing_handler_parks_with_its_exception_then_a_replay_takes_effect_once(
        self, infra: Infra, bus: BusClient, db: asyncpg.Pool, refusing_trigger: str, workers: list[WorkerProcess]
    ) -> None:
        account_id = refusing_trigger
        body = {"account_id": account_id, "name": "Broken Ltd", "licences": {"gotomeeting": 5}}
        message_id = str(uuid.uuid4())
        # the same command twice (a client retrying): two parked copies of one message_id
        for _ in range(2):
            await bus.publish(routing.ACCOUNTS_UPSERT, body, message_id=message_id)
        copies = await parked_with_id(infra, message_id, count=2)
        for parked in copies:
            assert parked.reason == "processing_failed"
            assert parked.error_type == "asyncpg.exceptions.RaiseError"
            assert f"account {account_id} refused by the test trigger" in parked.error_message
            assert "owner@example.com" not in parked.error_message  # masked
            assert parked.attempts == 5  # the delivery limit of the test workers
            assert parked.first_failure < parked.last_failure
            assert (parked.exchange, parked.routing_key) == (routing.COMMANDS_EXCHANGE, routing.ACCOUNTS_UPSERT)
        assert await db.fetchval("SELECT count(*) FROM accounts WHERE account_id = $1", account_id) == 0

        dry = await replay(infra.amqp_url, CREATION, Selection(ids=frozenset({message_id})), dry_run=True)
        assert [o.result for o in dry.outcomes] == ["would replay", "would replay"]
        assert len(await parked_with_id(infra, message_id, count=2)) == 2  # a dry run changes nothing

        await db.execute("DELETE FROM test_broken_accounts WHERE account_id = $1", account_id)  # the fix
        done = await replay(infra.amqp_url, CREATION, Selection(ids=frozenset({message_id})), dry_run=False)
        assert [o.result for o in done.outcomes] == ["replayed", "replayed"]
        await eventually(lambda: bus.find(routing.ACCOUNT_UPSERTED, account_id=account_id), what="account.upserted")
        await eventually(
            lambda: any(message_id in line and '"duplicate"' in line for w in workers for line in w.lines()),
            what="the second copy handled as a duplicate",
        )
        assert len(bus.find(routing.ACCOUNT_UPSERTED, account_id=account_id)) == 1
        assert await db.fetchval("SELECT count(*) FROM accounts WHERE account_id = $1", account_id) == 1
        assert not [p for p in await list_parked(infra.amqp_url, CREATION, 100_000) if p.id == message_id]

    async def test_a_message_the_broker_dead_lettered_is_read_from_x_death(self, infra: Infra, bus: BusClient) -> None:
        """No why-headers of userprov's (the broker dead-lettered it): its x-death says where it
        came from and why, whatever its publisher wrote in userprov's headers, and it can be
        replayed there; never to a routing key its service does not take."""
        scratch = unique("userprov.dead-letter-test")
        connection = await aio_pika.connect(infra.amqp_url)
        try:
            channel = await connection.channel()
            queue = await channel.declare_queue(scratch, arguments={
                "x-dead-letter-exchange": routing.DEAD_LETTER_EXCHANGE, "x-dead-letter-routing-key": routing.USER_CREATION})
            commands = await channel.get_exchange(routing.COMMANDS_EXCHANGE, ensure=False)
            await queue.bind(commands, routing.USERS_ADD)
            message_id = str(uuid.uuid4())
            forged = {parking.EXCHANGE: routing.INTERNAL_EXCHANGE, parking.ROUTING_KEY: routing.INVITATION_ISSUED,
                      parking.REASON: "processing_failed", parking.SERVICE: routing.INVITATION_MAILING}
            # the workers refuse it too (no such account: acked, not parked); the scratch copy is dead-lettered
            body = json.dumps({"account_id": unique("nowhere"), "users": [{"first_name": "X", "last_name": "D",
                                                                            "email": address("xdeath")}]}).encode()
            await commands.publish(aio_pika.Message(body, message_id=message_id, headers=forged), routing_key=routing.USERS_ADD)
            delivered = await eventually(lambda: queue.get(no_ack=False, fail=False), 10, what="the message")
            await delivered.reject(requeue=False)
            [parked] = await parked_with_id(infra, message_id)
            assert (parked.service, parked.reason, parked.exchange, parked.routing_key) == (
                routing.USER_CREATION, "rejected", routing.COMMANDS_EXCHANGE, routing.USERS_ADD)
            assert parked.error_type == "" and parked.last_failure and parked.attempts == 1
            assert not (await replay(infra.amqp_url, CREATION, Selection(reason="processing_failed"), dry_run=True)).outcomes
            # a second one, first published to an exchange deleted since: it cannot go back there
            gone = await channel.declare_exchange(unique("userprov.gone"), aio_pika.ExchangeType.DIRECT)
            await queue.bind(gone, "k")
            orphan_id = str(uuid.uuid4())
            await gone.publish(aio_pika.Message(b"{}", message_id=orphan_id), routing_key="k")
            orphan = await eventually(lambda: queue.get(no_ack=False, fail=False), 10, what="the second message")
            await orphan.reject(requeue=False)
            await parked_with_id(infra, orphan_id)
            await gone.delete()

            both = Selection(ids=frozenset({orphan_id, message_id}))
            report = await replay(infra.amqp_url, CREATION, both, dry_run=False)
            results = {o.parked.id: o.result for o in report.outcomes}
            assert results == {message_id: "replayed",
                               orphan_id: f"failed: 'k' on {gone.name!r} is not a message {routing.USER_CREATION} takes"}
            assert await parked_with_id(infra, orphan_id)  # still parked
            await purge(infra.amqp_url, CREATION, Selection(ids=frozenset({orphan_id})), lambda n: True)
            back = await eventually(lambda: queue.get(no_ack=False, fail=False), 10, what="the message replayed")
            assert back.message_id == message_id and back.headers.get(parking.REPLAYS) == 1 and "x-death" not in back.headers
            assert not any(k in back.headers for k in forged)
            await back.ack()
            await queue.delete()
        finally:
            await connection.close()


async def given_back(amqp_url: str, queue_name: str, message_id: str, times: int) -> None:
    """Takes the message from the queue and gives it back `times` times, as a worker that dies on
    it does: the broker counts each return, delivers it once more after as many returns as the
    queue's delivery limit (a worker parks it then), and dead-letters it at the next."""
    returned = 0
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(queue_name, passive=True)

        async def give_back() -> bool:
            nonlocal returned
            message = await queue.get(no_ack=False, fail=False)
            if message is not None:
                assert message.message_id == message_id, "the test's message is alone in its queue"
                returned += 1
                await message.reject(requeue=True)
            return returned >= times

        await eventually(give_back, 60, 0.01, what=f"the message given back {times} times")
    finally:
        await connection.close()


class TestReplayKeepsTheOriginalsTrust:
    """`userprov parked replay` publishes as the operator, a trusted user: a replay still acts with
    the trust of its original's publisher, however it was parked. Here before any authorization
    check: each delivery was given back unsettled (as by a worker that died on it), so that the
    worker parks it at the delivery limit without running its handler, or the broker dead-letters it."""

    @pytest.mark.parametrize(("lanes", "parked_by"), [(False, "worker"), (False, "broker"), (True, "worker")],
                             ids=["one-process", "dead-lettered", "lanes"])
    async def test_an_untrusted_command_stays_untrusted_and_a_trusted_one_runs(
        self, lanes: bool, parked_by: str, worker_env: dict[str, str], tmp_path: Path
    ) -> None:
        """In lanes, each add is large (12 people) and parked from the bulk queue, where its trust
        is the hand-off's word; its replay goes back through the interactive lane."""
        platform_user = f"platform-{uuid.uuid4().hex[:8]}"
        each = [{"USERPROV_LANE": "interactive"}, {"USERPROV_LANE": "bulk"}] if lanes else [{}]
        people, limit = 12 if lanes else 1, int(worker_env["USERPROV_DELIVERY_LIMIT"])
        queue = routing.bulk_queue_name(routing.USER_CREATION) if lanes else routing.queue_name(routing.USER_CREATION)
        async with isolated_workers("replay-trust", worker_env, tmp_path, each,
                                    USERPROV_TRUSTED_PUBLISHERS=f"guest, {platform_user}") as (infra, workers, bus):
            account_id = await accounts_on(bus)({"gotomeeting": 30})  # the test's client and the operator are guest: trusted
            judge = workers[-1]  # the process that would authorize the adds: the only one, or the bulk lane's
            assert judge.terminate() == 0
            ids: dict[str, str] = {}
            with broker_user(infra, "platform", WRITE, user=platform_user) as platform_url, \
                    broker_user(infra, "integrator", WRITE) as integrator_url:
                for who, url, user_id in (("integrator", integrator_url, unquote(urlsplit(integrator_url).username or "")),
                                          ("platform", platform_url, platform_user)):
                    users = [{"first_name": "Re", "last_name": "Play", "email": address(f"{who}{n}")} for n in range(people)]
                    ids[who] = str(uuid.uuid4())
                    connection = await aio_pika.connect(url)
                    try:
                        channel = await connection.channel()
                        commands = await channel.get_exchange(routing.COMMANDS_EXCHANGE, ensure=False)
                        body = json.dumps({"account_id": account_id, "users": users}).encode()  # no requested_by: as a platform service
                        await commands.publish(aio_pika.Message(body, message_id=ids[who], user_id=user_id), routing_key=routing.USERS_ADD)
                    finally:
                        await connection.close()
                    await given_back(infra.amqp_url, queue, ids[who], limit if parked_by == "worker" else limit + 1)
                    if parked_by == "worker":
                        await asyncio.to_thread(judge.start)
                    [parked] = await parked_with_id(infra, ids[who])
                    assert parked.reason == ("processing_failed" if parked_by == "worker" else "delivery_limit")
                    if parked_by == "worker":
                        assert judge.terminate() == 0
            await asyncio.to_thread(judge.start)
            report = await replay(infra.amqp_url, CREATION, Selection(ids=frozenset(ids.values())), dry_run=False)
            assert [o.result for o in report.outcomes] == ["replayed", "replayed"]

            await eventually(lambda: bus.find(routing.USERS_ADD_COMPLETED, command_id=ids["platform"]), what="the trusted add done")
            outcome = await eventually(lambda: bus.find(routing.COMMAND_REJECTED, command_id=ids["integrator"], reason="forbidden")
                                       or bus.find(routing.USERS_ADD_COMPLETED, command_id=ids["integrator"]), what="the untrusted add's outcome")
            assert outcome[0].routing_key == routing.COMMAND_REJECTED, "the untrusted add ran as a platform service"
            assert "USERPROV_TRUSTED_PUBLISHERS" in outcome[0].body["message"]


class TestHostileParkedMessages:
    async def test_properties_that_are_not_utf8_are_listed_shown_and_purged(self, infra: Infra, bus: BusClient) -> None:
        """The tool reads what the workers park, including what a hostile publisher sent."""
        marker = unique("corr")
        await publish_hostile(infra.amqp_url, routing.USERS_ADD, b"{}", message_id="bad-\udcff-id", correlation_id=marker)

        async def parked() -> list[ParkedMessage]:
            return [p for p in await list_parked(infra.amqp_url, CREATION, 100_000) if p.correlation_id == marker]

        [found] = await eventually(parked, 60, 0.3, what="the hostile message parked")
        assert found.id == "bad-\ufffd-id" and found.reason in {"invalid_properties", "rejected"}
        [shown] = await show(infra.amqp_url, CREATION, found.id)
        json.dumps(shown, ensure_ascii=False).encode()  # printable: no lone surrogate left
        report = await replay(infra.amqp_url, CREATION, Selection(ids=frozenset({found.id})), dry_run=False)
        assert [o.result.split(":")[0] for o in report.outcomes] == ["failed"]  # cannot be re-encoded: stays parked
        gone = await purge(infra.amqp_url, CREATION, Selection(ids=frozenset({found.id})), lambda n: True)
        assert [o.result for o in gone.outcomes] == ["purged"]


    async def test_a_publishers_headers_do_not_steer_a_replay(self, infra: Infra, bus: BusClient) -> None:
        """A refused message with forged why-headers and a header key that is not UTF-8: its
        parked copy drops both (before, the key made the copy unencodable, and the broker
        dead-lettered the original with only x-death) and says why and where from itself; the
        replay goes only there, never to userprov.internal."""
        marker = unique("corr")
        forged = {"x-\udcff": "v", parking.EXCHANGE: routing.INTERNAL_EXCHANGE, parking.ROUTING_KEY: routing.INVITATION_ISSUED,
                  parking.REASON: "processing_failed"}
        message_id = f"steer-{marker}"
        await publish_hostile(infra.amqp_url, routing.USERS_ADD, b"{", message_id=message_id, correlation_id=marker, headers=forged)
        [found] = await parked_with_id(infra, message_id)
        assert (found.exchange, found.routing_key, found.reason) == (routing.COMMANDS_EXCHANGE, routing.USERS_ADD, "malformed_json")
        assert not (await replay(infra.amqp_url, CREATION, Selection(reason="processing_failed"), dry_run=True)).outcomes
        await purge(infra.amqp_url, CREATION, Selection(ids=frozenset({message_id})), lambda n: True)


class EmptyButPresent(str):
    """A message_id property sent empty: the client library fills in only one that is falsy."""

    def __bool__(self) -> bool:
        return True


class TestRefusalsAreNeverReplayedIntoEffect:
    async def test_a_message_without_message_id_stays_parked(self, infra: Infra, bus: BusClient, db: asyncpg.Pool, account) -> None:
        account_id = await account()
        marker = unique("corr")
        body = json.dumps({"account_id": account_id, "users": [{"first_name": "No", "last_name": "Id", "email": address("noid")}]})
        await publish_hostile(infra.amqp_url, routing.USERS_ADD, body.encode(), message_id=EmptyButPresent(""), correlation_id=marker)
        [rejected] = await eventually(lambda: bus.find(routing.COMMAND_REJECTED, correlation_id=marker))
        assert rejected.body["reason"] == "missing_message_id"

        async def parked() -> list[ParkedMessage]:
            return [p for p in await list_parked(infra.amqp_url, CREATION, 100_000) if p.correlation_id == marker]

        [found] = await eventually(parked, 60, 0.3, what="the message parked")
        assert found.id.startswith("sha256:")
        report = await replay(infra.amqp_url, CREATION, Selection(ids=frozenset({found.id})), dry_run=False)
        assert [o.result for o in report.outcomes] == [
            "failed: it had no message_id, so a replay could not be recognised as a duplicate: purge it"]
        assert await parked()
        assert await db.fetchval("SELECT count(*) FROM memberships WHERE account_id = $1", account_id) == 0
        await purge(infra.amqp_url, CREATION, Selection(ids=frozenset({found.id})), lambda n: True)


class TestReplayWhenTheChannelDies:
    async def test_the_channel_lost_between_the_confirm_and_the_ack_is_reported(
        self, infra: Infra, bus: BusClient, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        marker = unique("corr")
        message_id = f"lost-ack-{marker}"
        await bus.publish_raw(routing.USERS_ADD, b"{", message_id=message_id, correlation_id=marker)
        await parked_with_id(infra, message_id)
        confirmed = parked_operations.publish_confirmed

        async def confirmed_then_channel_lost(channel: aio_pika.abc.AbstractChannel, *args: object) -> None:
            await confirmed(channel, *args)
            await channel.close()

        monkeypatch.setattr(parked_operations, "publish_confirmed", confirmed_then_channel_lost)
        report = await replay(infra.amqp_url, CREATION, Selection(ids=frozenset({message_id})), dry_run=False)
        [outcome] = report.outcomes
        assert outcome.result.startswith("failed: replayed, but its parked copy is still parked") and report.failed == 1
        monkeypatch.undo()
        # the replayed copy was refused again and parked: with the copy kept, two
        await parked_with_id(infra, message_id, count=2)
        await purge(infra.amqp_url, CREATION, Selection(ids=frozenset({message_id})), lambda n: True)


class TestShowAndPurge:
    async def test_show_masks_emails_and_purge_asks_first(self, infra: Infra, bus: BusClient) -> None:
        person = address("parked.person")
        body = {"account_id": "acct", "users": [{"email": person}], "unexpected": person}
        message_id = await bus.publish(routing.USERS_ADD, body)
        await parked_with_id(infra, message_id)

        [shown] = await show(infra.amqp_url, CREATION, message_id)
        text = json.dumps(shown)
        assert person not in text and "p***@example.com" in text
        assert shown["properties"]["message_id"] == message_id
        assert shown["headers"][parking.REASON] == "schema_invalid"
        assert shown["body"]["account_id"] == "acct"

        kept = await purge(infra.amqp_url, CREATION, Selection(ids=frozenset({message_id})), lambda n: False)
        assert [o.result for o in kept.outcomes] == ["kept"]
        await parked_with_id(infra, message_id)
        asked: list[int] = []
        gone = await purge(infra.amqp_url, CREATION, Selection(ids=frozenset({message_id})), lambda n: asked.append(n) or True)
        assert asked == [1] and [o.result for o in gone.outcomes] == ["purged"]
        assert not await show(infra.amqp_url, CREATION, message_id)


class TestCommandLine:
    """The verbs as an operator types them."""

    def cli(self, infra: Infra, *args: str, stdin: str = "", url: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "userprov", "parked", *args],
            env={**os.environ, "USERPROV_AMQP_URL": url or infra.amqp_url},
            input=stdin, capture_output=True, text=True, timeout=60,
        )

    def test_a_vhost_without_userprov_says_so(self, infra: Infra) -> None:
        vhost = unique("userprov_empty")
        rabbitmqctl("add_vhost", vhost)
        try:
            rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
            done = self.cli(infra, "list", url=f"amqp://guest:guest@127.0.0.1:5672/{vhost}")
            assert done.returncode == 2 and "there is no queue userprov." in done.stderr and "Traceback" not in done.stderr
        finally:
            drop_vhost(vhost)

    @pytest.mark.parametrize(("url", "said"), [
        ("amqp://guest:guest@127.0.0.1:5672/userprov-no-such-vhost", "refused to open vhost"),
        ("amqp://guest:wrong-password@127.0.0.1:5672/", "refused the login"),
    ])
    def test_a_broker_it_cannot_use_is_one_line(self, infra: Infra, url: str, said: str) -> None:
        done = self.cli(infra, "list", url=url)
        assert done.returncode == 2 and said in done.stderr and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "wrong-password" not in done.stderr

    async def test_list_show_replay_purge(self, infra: Infra, bus: BusClient) -> None:
        message_id = await bus.publish_raw(routing.USERS_ADD, b"[1, 2", correlation_id="cli-corr")
        await parked_with_id(infra, message_id)

        listed = self.cli(infra, "list", "--service", routing.USER_CREATION, "--json")
        assert listed.returncode == 0, listed.stderr
        [row] = [json.loads(line) for line in listed.stdout.splitlines() if json.loads(line)["id"] == message_id]
        assert (row["reason"], row["routing_key"], row["correlation_id"]) == ("malformed_json", routing.USERS_ADD, "cli-corr")
        table = self.cli(infra, "list")
        assert table.returncode == 0 and table.stdout.startswith("ID") and message_id in table.stdout
        # the summary (on stderr) counts by reason; --reason and --routing-key choose as in replay and purge
        count = int(table.stderr.split(" parked message(s)")[0])
        lines = table.stdout.rstrip("\n").split("\n")  # a row per message, whatever its properties hold
        assert f"malformed_json {sum(1 for line in lines[1:] if '  malformed_json  ' in line)}" in table.stderr
        assert count == len(lines) - 1
        chosen = self.cli(infra, "list", "--reason", "malformed_json", "--routing-key", routing.USERS_ADD, "--json")
        rows = [json.loads(line) for line in chosen.stdout.splitlines()]
        assert message_id in {r["id"] for r in rows} and {(r["reason"], r["routing_key"]) for r in rows} == {
            ("malformed_json", routing.USERS_ADD)}
        assert self.cli(infra, "list", "--service", "no-such-service").returncode == 2

        shown = self.cli(infra, "show", message_id)
        assert shown.returncode == 0 and json.loads(shown.stdout)["body"] == "[1, 2"
        surrogate = await bus.publish_raw(routing.USERS_ADD, b'{"account_id": "\\ud800", "pasted": "x"}')
        await parked_with_id(infra, surrogate)
        printed = self.cli(infra, "show", surrogate)  # a lone surrogate in the body cannot be printed as it is
        assert printed.returncode == 0 and json.loads(printed.stdout)["body"]["account_id"] == "\ufffd"
        assert self.cli(infra, "purge", surrogate, "--yes").returncode == 0
        assert self.cli(infra, "show", "no-such-id").returncode == 1

        assert self.cli(infra, "replay").returncode == 2  # says which messages, or nothing happens
        dry = self.cli(infra, "replay", message_id, "--dry-run")
        assert dry.returncode == 0 and dry.stdout.startswith("would replay")
        assert "warning: it was refused as malformed_json; unchanged, it would be refused again" in dry.stdout

        refused = self.cli(infra, "purge", message_id, stdin="n\n")
        assert refused.returncode == 0 and "kept" in refused.stdout
        await parked_with_id(infra, message_id)
        purged = self.cli(infra, "purge", message_id, "--yes")
        assert purged.returncode == 0 and purged.stdout.startswith("purged")
        assert not await show(infra.amqp_url, CREATION, message_id)
