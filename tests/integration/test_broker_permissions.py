"""The RabbitMQ permissions the README recommends for an integrator are enough to use every
public message, and keep userprov's internal exchange closed to them."""
from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import aio_pika
import aiormq
import pytest

from contracts import routing
from tests.integration.conftest import address, unique
from tests.support.broker_users import LINK_HANDLER_WRITE, WRITE, broker_user
from tests.support.flows import add_users, emails_to, tokens_in
from tests.support.infra import Infra, rabbitmqctl
from tests.support.isolated import isolated_workers
from tests.support.smtp import RecordingSmtpServer
from userprov.runtime import handoff
from userprov_devtools.bus_client import BusClient, RecordedEvent
from userprov_devtools.waiting import eventually


@pytest.fixture
def integrator_url(infra: Infra, bus: object) -> Iterator[str]:  # bus: the workers have declared the topology
    with broker_user(infra, "integrator", WRITE) as url:
        yield url


@pytest.fixture
def link_handler_url(infra: Infra, bus: object) -> Iterator[str]:
    with broker_user(infra, "links", LINK_HANDLER_WRITE) as url:
        yield url


async def publish(channel: aio_pika.abc.AbstractChannel, exchange: str, key: str, body: dict, **properties: Any) -> None:
    target = await channel.get_exchange(exchange, ensure=False)
    properties.setdefault("message_id", str(uuid.uuid4()))
    await target.publish(aio_pika.Message(json.dumps(body).encode(), **properties), routing_key=key)  # type: ignore[arg-type]


async def ask_as(url: str, user_id: str, queries: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    """Each query's answer (its AMQP type and body), asked as the given RabbitMQ user."""
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        replies = await channel.declare_queue(exclusive=True)
        answers = []
        for key, body in queries:
            await publish(channel, routing.COMMANDS_EXCHANGE, key, body, reply_to=replies.name, user_id=user_id)
            async with replies.iterator(timeout=10) as incoming:
                async for message in incoming:
                    await message.ack()
                    answers.append((message.type or "", json.loads(message.body)))
                    break
        return answers
    finally:
        await connection.close()


class TestInternalHops:
    def test_only_the_internal_exchange_reaches_userprovs_own_hand_offs(self, infra: Infra, bus: object) -> None:
        bindings = [line.split("\t") for line in rabbitmqctl(
            "list_bindings", "-q", "-p", infra.vhost, "source_name", "destination_name", "routing_key").splitlines()]
        internal_keys = {routing.MEMBERSHIPS_CREATED, routing.INVITATION_ISSUED}
        assert {(source, key) for source, _, key in bindings if key in internal_keys} == {
            (routing.INTERNAL_EXCHANGE, key) for key in internal_keys}
        bulk = routing.bulk_queue_name(routing.USER_CREATION)  # where large commands are handed to the bulk lane
        assert {(source, key) for source, queue, key in bindings if queue == bulk and source} == {(routing.INTERNAL_EXCHANGE, routing.USERS_ADD)}


class TestIntegratorPermissions:
    async def test_enough_for_commands_events_and_queries(self, integrator_url: str, account) -> None:
        account_id = await account()
        connection = await aio_pika.connect(integrator_url)
        try:
            channel = await connection.channel()
            events = await channel.declare_queue(exclusive=True)
            await events.bind(routing.EVENTS_EXCHANGE, routing.USERS_ADD_COMPLETED)
            replies = await channel.declare_queue(exclusive=True)
            await publish(channel, routing.COMMANDS_EXCHANGE, routing.USERS_ADD, {
                "account_id": account_id, "users": [{"first_name": "Ada", "last_name": "Perm", "email": address("perm")}]})
            completed = await _next(events)
            assert json.loads(completed.body)["account_id"] == account_id
            await publish(channel, routing.COMMANDS_EXCHANGE, routing.ACCOUNTS_GET, {"account_id": account_id},
                          reply_to=replies.name, correlation_id="perm-query")
            answer = await _next(replies)
            assert answer.type == "accounts.get.reply" and answer.correlation_id == "perm-query"
        finally:
            await connection.close()

    async def test_the_internal_exchange_is_closed(self, integrator_url: str) -> None:
        await assert_closed(integrator_url, routing.INTERNAL_EXCHANGE, routing.INVITATION_ISSUED,
                            {"invitations": [{"invitation_id": str(uuid.uuid4()), "kind": "welcome"}]})

    async def test_no_queue_of_userprov_is_reached_by_name(self, integrator_url: str) -> None:
        """The default exchange routes to any queue by its name: a bulk queue's commands are
        trusted as the interactive lane said, so it must be closed as userprov.internal is."""
        connection = await aio_pika.connect(integrator_url)
        try:
            channel = await connection.channel(publisher_confirms=False)
            with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
                await channel.default_exchange.publish(aio_pika.Message(b"{}", message_id="x"),
                                                       routing_key=routing.bulk_queue_name(routing.USER_CREATION))
                await channel.declare_queue(exclusive=True)  # the refusal closes the channel: seen on the next call
        finally:
            await connection.close()


async def assert_closed(url: str, exchange: str, routing_key: str, body: dict) -> None:
    """The user of `url` can neither bind a queue to the exchange nor publish to it."""
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel(publisher_confirms=False)
        with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
            queue = await channel.declare_queue(exclusive=True)
            await queue.bind(exchange, routing_key)
        channel = await connection.channel(publisher_confirms=False)
        with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
            await publish(channel, exchange, routing_key, body)
            await channel.declare_queue(exclusive=True)  # the refusal closes the channel: seen on the next call
    finally:
        await connection.close()


class TestResponses:
    """Accepts and declines carry a token: link handlers write them to userprov.responses, which an
    integrator can neither read nor write; the old path on userprov.events works for one version."""

    async def test_an_integrator_can_neither_read_nor_write_responses(self, integrator_url: str) -> None:
        await assert_closed(integrator_url, routing.RESPONSES_EXCHANGE, routing.INVITATION_ACCEPTED, {"token": "x" * 43})

    @pytest.mark.parametrize("exchange", [routing.RESPONSES_EXCHANGE, routing.EVENTS_EXCHANGE])
    async def test_a_link_handler_accepts(self, exchange: str, link_handler_url: str, integrator_url: str, bus: BusClient,
                                          smtp: RecordingSmtpServer, account) -> None:
        account_id = await account()
        person = address("responds")
        await add_users(bus, {"account_id": account_id, "users": [{"first_name": "Link", "last_name": "Handled", "email": person}]})
        [email] = await emails_to(smtp, person)
        url = link_handler_url if exchange == routing.RESPONSES_EXCHANGE else integrator_url  # the deprecated path: as before
        connection = await aio_pika.connect(url)
        try:
            channel = await connection.channel()
            await publish(channel, exchange, routing.INVITATION_ACCEPTED, {"token": tokens_in(email)["link"]})
        finally:
            await connection.close()
        await eventually(lambda: bus.find(routing.USER_ACTIVATED, email=person), what="user.activated")


async def _next(queue: aio_pika.abc.AbstractQueue, timeout: float = 10.0) -> aio_pika.abc.AbstractIncomingMessage:
    async with queue.iterator(timeout=timeout) as messages:
        async for message in messages:
            await message.ack()
            return message
    raise AssertionError("no message")


class TestTrustedPublishers:
    """A command without requested_by acts as a trusted platform service: with
    USERPROV_TRUSTED_PUBLISHERS set, only from those RabbitMQ users, known by the AMQP user_id
    property (which RabbitMQ refuses unless it is the connection's own user)."""

    @pytest.mark.parametrize("lanes", [False, True], ids=["one-process", "lanes"])
    async def test_only_listed_users_may_omit_requested_by(self, lanes: bool, worker_env: dict[str, str], smtp: RecordingSmtpServer,
                                                           tmp_path: Path) -> None:
        """In lanes, each add is large (12 people): the interactive process hands it to the bulk
        process, which must judge it by who published the original, not by a header anyone can set."""
        platform_user = f"platform-{uuid.uuid4().hex[:8]}"
        each = [{"USERPROV_LANE": "interactive"}, {"USERPROV_LANE": "bulk"}] if lanes else [{}]
        people = 12 if lanes else 1
        async with isolated_workers("trust", worker_env, tmp_path, each, USERPROV_TRUSTED_PUBLISHERS=f"guest, {platform_user}") as (
                infra, workers, bus):
            account_id = unique("trust")  # the test's own client is guest: trusted, and it says so in user_id
            await bus.publish(routing.ACCOUNTS_UPSERT, {"account_id": account_id, "name": "Trust", "licences": {"gotomeeting": 9}})
            await eventually(lambda: bus.find(routing.ACCOUNT_UPSERTED, account_id=account_id), what="account.upserted")
            admin = address("trust-admin")
            await add_users(bus, {"account_id": account_id, "role": "admin", "users": [{"first_name": "Ad", "last_name": "Min", "email": admin}]})
            [email] = await emails_to(smtp, admin)
            await bus.publish(routing.INVITATION_ACCEPTED, {"token": tokens_in(email)["link"]})
            await eventually(lambda: bus.find(routing.USER_ACTIVATED, email=admin), what="the admin active")

            async def add(url: str, local: str, user_id: str | None, headers: dict | None = None, **extra: str) -> RecordedEvent:
                message_id = str(uuid.uuid4())
                users = [{"first_name": "Tr", "last_name": "Ust", "email": address(f"{local}{n}")} for n in range(people)]
                body = {"account_id": account_id, "users": users, **extra}
                connection = await aio_pika.connect(url)
                try:
                    channel = await connection.channel()
                    await publish(channel, routing.COMMANDS_EXCHANGE, routing.USERS_ADD, body, message_id=message_id, user_id=user_id,
                                  headers=headers)
                finally:
                    await connection.close()
                found = await eventually(lambda: bus.find(routing.USERS_ADD_COMPLETED, command_id=message_id)
                                         or bus.find(routing.COMMAND_REJECTED, command_id=message_id), what="the outcome")
                return found[0]

            with broker_user(infra, "platform", WRITE, user=platform_user) as platform_url, \
                    broker_user(infra, "integrator", WRITE) as integrator_url:
                integrator = unquote(urlsplit(integrator_url).username or "")
                assert (await add(platform_url, "by-platform", platform_user)).routing_key == routing.USERS_ADD_COMPLETED
                for user_id in (integrator, None):  # not listed; or not saying who it is
                    refused = await add(integrator_url, "by-integrator", user_id)
                    assert refused.routing_key == routing.COMMAND_REJECTED and refused.body["reason"] == "forbidden"
                    assert "USERPROV_TRUSTED_PUBLISHERS" in refused.body["message"]
                # the header a hand-off says its publisher's trust in is userprov's alone
                forged = await add(integrator_url, "forging", integrator, {handoff.TRUSTED_PUBLISHER: True})
                assert forged.routing_key == routing.COMMAND_REJECTED and forged.body["reason"] == "forbidden"
                # naming an admin, the integrator acts under the permission rules as before
                named = await add(integrator_url, "for-admin", integrator, requested_by=admin)
                assert named.routing_key == routing.USERS_ADD_COMPLETED
                # members' data is the platform's to read: naming no one, the integrator is refused it;
                # a command's outcome answers whoever holds its id
                refusals = await ask_as(integrator_url, integrator, [
                    (routing.USERS_GET, {"account_id": account_id, "email": admin}),
                    (routing.USERS_LIST, {"account_id": account_id}),
                    (routing.ACCOUNTS_GET, {"account_id": account_id}),
                    (routing.INVITATIONS_FAILED, {"account_id": account_id}),
                    (routing.SCIM_TOKENS_RESOLVE, {"token_hash": "0" * 64}),
                    (routing.COMMANDS_GET, {"command_id": named.body["command_id"]}),
                ])
                assert [(t, b.get("reason")) for t, b in refusals[:-1]] == [(routing.COMMAND_REJECTED, "forbidden")] * 5, refusals
                assert refusals[-1][0] == "commands.get.reply" and refusals[-1][1]["found"], refusals[-1]
                assert [(t, b.get("found", b.get("reason"))) for t, b in await ask_as(platform_url, platform_user, [
                    (routing.USERS_GET, {"account_id": account_id, "email": admin})])] == [("users.get.reply", True)]
                # it cannot pass itself off as the platform: RabbitMQ refuses a user_id that is not the connection's
                connection = await aio_pika.connect(integrator_url)
                try:
                    channel = await connection.channel()
                    with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed):
                        await publish(channel, routing.COMMANDS_EXCHANGE, routing.USERS_ADD, {}, user_id=platform_user)
                        await channel.declare_queue(exclusive=True)
                finally:
                    await connection.close()
            # in lanes, each of the five adds above went through a hand-off
            assert sum(w.count_log('"handed_off"') for w in workers) == (5 if lanes else 0)
