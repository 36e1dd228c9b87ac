from __future__ import annotations

import json
import time
import uuid

import asyncpg
import pytest

from contracts import routing
from tests.integration.conftest import address
from tests.support.flows import add_users
from tests.support.infra import Infra, ready_messages
from tests.support.workers import WorkerProcess
from userprov.app import service_run
from userprov.operations.parked import Selection, purge, replay
from userprov.runtime.dispatch import Dispatcher, Settle
from userprov.runtime.envelope import Envelope
from userprov.settings import Settings
from userprov_devtools.bus_client import BusClient
from userprov_devtools.waiting import eventually


class TestMalformedMessages:
    """A malformed message gets `command.rejected`, is parked, and the worker carries on."""

    async def test_malformed_json_is_parked_and_work_goes_on(self, bus: BusClient, infra: Infra, account) -> None:
        message_id = await bus.publish_raw(routing.USERS_ADD, b"{not json", correlation_id="corr-malformed")
        rejected = await eventually(lambda: bus.find(routing.COMMAND_REJECTED, command_id=message_id))
        assert rejected[0].body["reason"] == "malformed_json"
        assert rejected[0].body["type"] == routing.USERS_ADD
        assert rejected[0].correlation_id == "corr-malformed"
        await eventually(lambda: ready_messages(infra.amqp_url, "userprov.user-creation.parked"))  # nothing consumes it: all its messages
        account_id = await account()
        done = await add_users(bus, {"account_id": account_id, "users": [{"first_name": "Still", "last_name": "Working", "email": address("ok")}]})
        assert done.routing_key == routing.USERS_ADD_COMPLETED

    async def test_schema_error_names_the_fields(self, bus: BusClient) -> None:
        message_id = await bus.publish(routing.USERS_ADD, {"users": "nobody", "role": "owner"})
        [rejected] = await eventually(lambda: bus.find(routing.COMMAND_REJECTED, command_id=message_id))
        assert rejected.body["reason"] == "schema_invalid"
        fields = {e["field"] for e in rejected.body["errors"]}
        assert {"account_id", "users", "role"} <= fields

    async def test_missing_message_id(self, db: asyncpg.Pool, bus: BusClient) -> None:
        """aio-pika always sets a message_id, so this drives the shared edge directly, on the real database."""
        dispatcher = Dispatcher(routing.ACCOUNT_LOOKUP, service_run(Settings(), routing.ACCOUNT_LOOKUP).routes, db,
                                delivery_limit=5, transient_retry_seconds=1, transient_backoff_max=0.1)
        envelope = Envelope(routing.ACCOUNTS_GET, b'{"account_id": "x"}', None, "corr-no-id", None, 0)
        decision = await dispatcher._decide(envelope)
        assert (decision.settle, decision.outcome) == (Settle.PARK, "refused:missing_message_id")
        assert decision.why is not None and decision.why.reason == "missing_message_id"
        [rejected] = await eventually(lambda: bus.find(routing.COMMAND_REJECTED, correlation_id="corr-no-id"))
        assert rejected.body["reason"] == "missing_message_id"
        assert rejected.body["command_id"] is None


    async def test_a_refusal_that_cannot_be_recorded_does_not_spin(self, infra: Infra) -> None:
        """When the refusal cannot be written, the message is not handed straight back to the
        queue to fail again at once: a fault that is not transient parks it, a transient one
        backs off first."""
        pool = await asyncpg.create_pool(infra.database_url, min_size=1, max_size=1)
        await pool.close()  # every acquire now fails, and not transiently
        dispatcher = Dispatcher(routing.ACCOUNT_LOOKUP, service_run(Settings(), routing.ACCOUNT_LOOKUP).routes, pool,
                                delivery_limit=5, transient_retry_seconds=0.2, transient_backoff_max=0.05)
        settle = (await dispatcher._decide(Envelope(routing.ACCOUNTS_GET, b"{not json", "id-1", None, None, 0))).settle
        assert settle is Settle.PARK

        unreachable = await asyncpg.create_pool("postgresql://postgres@127.0.0.1:1/none", min_size=0, max_size=1)
        dispatcher = Dispatcher(routing.ACCOUNT_LOOKUP, service_run(Settings(), routing.ACCOUNT_LOOKUP).routes, unreachable,
                                delivery_limit=5, transient_retry_seconds=0.2, transient_backoff_max=0.05)
        started = time.monotonic()
        settle = (await dispatcher._decide(Envelope(routing.ACCOUNTS_GET, b"{not json", "id-2", None, None, 3))).settle
        assert settle is Settle.LATER and time.monotonic() - started >= 0.2 + 0.8  # the retries, then 0.1 * 2**3 s
        await unreachable.close()


class TestCommandLevelFaults:
    """Faults of the whole command reject it with a reason and change nothing."""

    @pytest.mark.parametrize(
        ("change", "reason"),
        [
            ({"account_id": "no-such-account"}, "unknown_account"),
            ({"group": "no-such-group"}, "unknown_group"),
            ({"settings_template": "nope"}, "unknown_settings_template"),
            ({"products": ["gotowebinar"]}, "unknown_product"),
            ({"language": "xx"}, "unsupported_language"),
            ({"requested_by": "stranger@example.com"}, "forbidden"),
            ({"users": [], "pasted": " ; \n "}, "no_users"),
        ],
    )
    async def test_rejected(self, bus: BusClient, db: asyncpg.Pool, account, change: dict, reason: str) -> None:
        account_id = await account({"gotomeeting": 3}, groups=["sales"], settings_templates=["default"])
        body = {"account_id": account_id, "users": [{"first_name": "No", "last_name": "Body", "email": address("nb")}], "products": ["gotomeeting"], **change}
        outcome = await add_users(bus, body)
        assert outcome.routing_key == routing.COMMAND_REJECTED
        assert outcome.body["reason"] == reason
        assert await db.fetchval("SELECT count(*) FROM memberships WHERE account_id = $1", account_id) == 0

    async def test_roles_decide_who_may_add(self, bus: BusClient, smtp, account) -> None:
        from tests.support.flows import emails_to, tokens_in

        account_id = await account({"gotomeeting": 10})
        admin, manager = address("admin"), address("manager")
        for email, role in ((admin, "admin"), (manager, "manager")):
            await add_users(bus, {"account_id": account_id, "role": role, "users": [{"first_name": "R", "last_name": role, "email": email}]})
            [mail] = await emails_to(smtp, email)
            await bus.publish(routing.INVITATION_ACCEPTED, {"token": tokens_in(mail)["link"]})
            await eventually(lambda: bus.find(routing.USER_ACTIVATED, email=email))

        def row(local: str) -> list[dict]:
            return [{"first_name": "New", "last_name": "Person", "email": address(local)}]

        by_manager_plain = await add_users(bus, {"account_id": account_id, "requested_by": manager.upper(), "users": row("p1")})
        assert by_manager_plain.body["results"][0]["outcome"] == "accepted"
        by_manager_admin = await add_users(bus, {"account_id": account_id, "requested_by": manager, "role": "admin", "users": row("p2")})
        assert by_manager_admin.body["reason"] == "forbidden"
        by_admin_admin = await add_users(bus, {"account_id": account_id, "requested_by": admin, "role": "admin", "users": row("p3")})
        assert by_admin_admin.body["results"][0]["outcome"] == "accepted"
        other = await account()
        from_elsewhere = await add_users(bus, {"account_id": other, "requested_by": admin, "users": row("p4")})
        assert from_elsewhere.body["reason"] == "forbidden"

    async def test_lowering_licences_below_use_is_refused(self, bus: BusClient, account) -> None:
        account_id = await account({"gotomeeting": 3})
        await add_users(bus, {"account_id": account_id, "products": ["gotomeeting"], "users": [
            {"first_name": "S", "last_name": str(n), "email": address(f"seat{n}")} for n in range(2)]})
        message_id = await bus.publish(routing.ACCOUNTS_UPSERT, {"account_id": account_id, "name": "x", "licences": {"gotomeeting": 1}})
        [rejected] = await eventually(lambda: bus.find(routing.COMMAND_REJECTED, command_id=message_id))
        assert rejected.body["reason"] == "seats_in_use"
        assert rejected.body["errors"][0]["field"] == "licences.gotomeeting"


class TestWhoMayAddIsJudgedFirst:
    async def test_a_forbidden_large_add_is_refused_before_its_rows_are_validated_or_the_account_locked(
        self, bus: BusClient, db: asyncpg.Pool, workers: list[WorkerProcess], account
    ) -> None:
        """A stranger's 10,000 rows: refused while another transaction holds the account's lock
        (an add waits for it before creating anyone), and without validating a row, which takes
        the workers a second or more."""
        account_id = await account()
        tag = uuid.uuid4().hex[:8]
        users = [{"first_name": "Big", "last_name": "Paste", "email": f"row{n}.{tag}@example.com"} for n in range(10_000)]
        async with db.acquire() as conn, conn.transaction():
            await conn.execute("SELECT FROM accounts WHERE account_id = $1 FOR UPDATE", account_id)
            message_id = await bus.publish(routing.USERS_ADD, {"account_id": account_id, "requested_by": address("stranger"), "users": users})
            refused = await eventually(lambda: bus.find(routing.COMMAND_REJECTED, command_id=message_id), 15,
                                       what="the refusal, while the account is locked")
        assert refused[0].body["reason"] == "forbidden"
        [handled] = [json.loads(line) for w in workers for line in w.lines() if message_id in line and '"message_handled"' in line]
        assert handled["outcome"] == "rejected:forbidden"
        print(f"a forbidden 10,000-row add refused in {handled['duration_ms']} ms")  # for pytest -s


class TestMistypedRoutingKeys:
    """A command published to a routing key nothing is bound to does not vanish: userprov.commands'
    alternate exchange takes it to user-creation, which refuses it as unknown_type."""

    async def test_a_mistyped_command_is_refused_and_parked(self, bus: BusClient, infra: Infra) -> None:
        message_id = await bus.publish_raw("users.ad", b'{"account_id": "x"}', exchange=routing.COMMANDS_EXCHANGE)
        [rejected] = await eventually(lambda: bus.find(routing.COMMAND_REJECTED, command_id=message_id))
        assert rejected.body["reason"] == "unknown_type" and rejected.body["type"] == "users.ad"
        parked = routing.parking_queue_name(routing.USER_CREATION)
        await eventually(lambda: ready_messages(infra.amqp_url, parked), what="the mistyped command parked")
        # no fix makes it a message userprov takes: a replay is refused, and purge is the way out (docs/how-to/replay-parked.md)
        mine = Selection(ids=frozenset({message_id}))
        report = await replay(infra.amqp_url, [routing.USER_CREATION], mine, dry_run=True)
        assert [o.result for o in report.outcomes] == [
            f"failed: 'users.ad' on {routing.COMMANDS_EXCHANGE!r} is not a message {routing.USER_CREATION} takes"]
        purged = await purge(infra.amqp_url, [routing.USER_CREATION], mine, lambda count: count == 1)
        assert [o.result for o in purged.outcomes] == ["purged"]

    async def test_a_mistyped_query_is_answered(self, bus: BusClient) -> None:
        answer = await bus.ask("accounts.gett", b'{"account_id": "x"}', exchange=routing.COMMANDS_EXCHANGE)
        assert answer.routing_key == routing.COMMAND_REJECTED and answer.body["reason"] == "unknown_type"
