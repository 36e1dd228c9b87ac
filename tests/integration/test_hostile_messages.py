"""Every message ends in exactly one settle decision within seconds, whatever its bytes and
properties, with a `command.rejected` that itself can be serialised; the workers never drop
their connection or stop over one message."""
from __future__ import annotations

import json
import uuid

import pytest

from contracts import routing
from tests.integration.conftest import address
from tests.support.flows import add_users
from tests.support.hostile import publish_hostile
from tests.support.infra import Infra, message_counts, ready_messages
from tests.support.workers import WorkerProcess
from userprov_devtools.bus_client import BusClient
from userprov_devtools.waiting import eventually

SETTLE_SECONDS = 10


async def assert_settled(infra: Infra, service: str) -> None:
    """Nothing left in the service's queue, ready or unacked."""
    await eventually(lambda: message_counts(infra.vhost).get(routing.queue_name(service), 0) == 0, SETTLE_SECONDS,
                     what=f"{service}'s queue to be empty")


async def _more_than(amqp_url: str, queue: str, before: int) -> bool:
    return await ready_messages(amqp_url, queue) > before


def connections_made(workers: list[WorkerProcess]) -> int:
    return sum(w.count_log('"broker_connected"') for w in workers)


class TestPropertiesThatCannotBeUsed:
    @pytest.mark.parametrize(
        ("properties", "field"),
        [
            ({"message_id": "not-utf8-\udcff\udcfe"}, "message_id"),
            ({"message_id": "nul-\x00-inside"}, "message_id"),
            ({"message_id": "ok-id", "correlation_id": "corr-\x00"}, "correlation_id"),
            ({"message_id": "ok-id", "correlation_id": "corr-\udcc3"}, "correlation_id"),
            ({"message_id": "ok-id", "reply_to": "queue-\x00"}, "reply_to"),
            ({"message_id": "bell-\x07"}, "message_id"),
        ],
    )
    async def test_refused_parked_and_the_connection_survives(
        self, bus: BusClient, infra: Infra, workers: list[WorkerProcess], properties: dict[str, str], field: str
    ) -> None:
        marker = uuid.uuid4().hex
        if field == "message_id":
            properties = {**properties, "correlation_id": f"corr-{marker}"}
        else:
            properties = {**properties, "message_id": f"id-{marker}"}
        parking = routing.parking_queue_name(routing.ACCOUNT_LOOKUP)
        parked_before = await ready_messages(infra.amqp_url, parking)
        connections_before = connections_made(workers)
        await publish_hostile(infra.amqp_url, routing.ACCOUNTS_GET, b'{"account_id": "x"}', **properties)

        def rejected() -> list:
            return bus.find(routing.COMMAND_REJECTED, correlation_id=f"corr-{marker}") or bus.find(
                routing.COMMAND_REJECTED, command_id=f"id-{marker}"
            )

        [event] = await eventually(rejected, SETTLE_SECONDS, what="command.rejected")
        assert event.body["reason"] == "invalid_properties"
        assert [e["field"] for e in event.body["errors"]] == [field]
        await eventually(lambda: _more_than(infra.amqp_url, parking, parked_before), SETTLE_SECONDS, what="the message parked")
        await assert_settled(infra, routing.ACCOUNT_LOOKUP)
        assert connections_made(workers) == connections_before, "a worker lost its broker connection over one message"

    async def test_a_header_key_that_is_not_utf8(self, bus: BusClient, infra: Infra, workers: list[WorkerProcess]) -> None:
        """userprov reads no such header: the message is handled as if it were not there."""
        connections_before = connections_made(workers)
        account_id = f"hdr-{uuid.uuid4().hex[:8]}"
        await publish_hostile(infra.amqp_url, routing.ACCOUNTS_UPSERT, json.dumps({"account_id": account_id, "name": "H"}).encode(),
                              message_id=f"id-{account_id}", headers={"x-\udcff": "value"})
        await eventually(lambda: bus.find(routing.ACCOUNT_UPSERTED, account_id=account_id), SETTLE_SECONDS)
        assert connections_made(workers) == connections_before


class TestBodiesThatCannotBeRead:
    @pytest.mark.parametrize(
        ("body", "reason"),
        [
            (b"[" * 100_000 + b"]" * 100_000, "malformed_json"),
            (b'{"account_id": ' + b"7" * 5000 + b"}", "malformed_json"),
            (b"\xff\xfe not utf-8", "malformed_json"),
            (json.dumps({"account_id": "acct", "name": "surrogate \ud800 here"}).encode(), "schema_invalid"),
            (b'{"account_id": "acct", "name": "n", "licences": {"nul\\u0000key": 1}}', "schema_invalid"),
            (b'{"account_id": "acct", "name": "n", "licences": {"\\ud800": 1}}', "schema_invalid"),
            (json.dumps({"account_id": "acct", "name": "x" * 2_000_000}).encode(), "schema_invalid"),
        ],
        ids=["deep", "long-int", "not-utf8", "surrogate-value", "nul-key", "surrogate-key", "2mb-string"],
    )
    async def test_refused_with_a_serialisable_rejection(self, bus: BusClient, infra: Infra, body: bytes, reason: str) -> None:
        message_id = await bus.publish_raw(routing.ACCOUNTS_UPSERT, body)
        [event] = await eventually(lambda: bus.find(routing.COMMAND_REJECTED, command_id=message_id), SETTLE_SECONDS,
                                   what="command.rejected")
        assert event.body["reason"] == reason
        json.dumps(event.body).encode("utf-8")  # the event as published is valid UTF-8 JSON
        await assert_settled(infra, routing.USER_CREATION)

    async def test_a_flood_of_bad_messages_does_not_stop_good_work(self, bus: BusClient, infra: Infra, account) -> None:
        """More bad messages than the prefetch of every process: each one must be settled, or
        good commands behind them would wait for the broker's consumer timeout."""
        for n in range(40):
            await bus.publish_raw(routing.USERS_ADD, b"[" * 50_000 if n % 2 else b'{"account_id": ' + b"9" * 9000 + b"}")
        account_id = await account()
        done = await add_users(bus, {"account_id": account_id, "users": [{"first_name": "Still", "last_name": "Here", "email": address("good")}]},
                               timeout=SETTLE_SECONDS * 2)
        assert done.body["results"][0]["outcome"] == "accepted"


class TestForgedDeliveryCount:
    """`x-delivery-count` is a header any publisher can set: only a redelivery's count is the
    broker's (a quorum queue passes a publisher's value through on the first delivery)."""

    async def test_a_forged_count_does_not_rewrite_a_finished_commands_outcome(self, bus: BusClient, infra: Infra, account) -> None:
        account_id = await account()
        body = {"account_id": account_id, "users": [{"first_name": "For", "last_name": "Ged", "email": address("forged-count")}]}
        completed = await add_users(bus, body)
        command_id = completed.body["command_id"]
        await bus.publish(routing.USERS_ADD, body, message_id=command_id, headers={"x-delivery-count": 99})
        await assert_settled(infra, routing.USER_CREATION)
        answer = await bus.query(routing.COMMANDS_GET, {"command_id": command_id})
        assert answer["outcome"] == "done", answer
        assert not bus.find(routing.COMMAND_REJECTED, command_id=command_id)

    async def test_a_fresh_command_with_a_forged_count_is_handled(self, bus: BusClient, account) -> None:
        account_id = await account()
        body = {"account_id": account_id, "users": [{"first_name": "Fresh", "last_name": "Forged", "email": address("forged-fresh")}]}
        completed = await add_users(bus, body, headers={"x-delivery-count": 99})
        assert completed.routing_key == routing.USERS_ADD_COMPLETED, completed.body
