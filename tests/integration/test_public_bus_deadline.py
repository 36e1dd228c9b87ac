"""A call of the public bus client has one deadline, connecting included: a broker that takes
the TCP connection and then never speaks (a hung node, a half-dead load balancer) costs a front
door's request its deadline, not the 10 s of a connection attempt plus the wait for an answer.
(The publish, confirm and answer parts under a real blocked broker: scim/test_blocked_broker.py.)"""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from contracts import routing
from contracts.commands import ScimTokensRevoke
from contracts.queries import InvitationsPeek
from tests.support.infra import Infra
from userprov.front_doors.connection import BUS_ERRORS
from userprov.public_bus import NoAnswer, PublicBus

DEADLINE = 1.0


@pytest.fixture
async def silent_broker() -> AsyncIterator[str]:
    """The AMQP URL of a TCP server that accepts connections, reads, and never answers."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        while await reader.read(4096):
            pass

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"amqp://guest:guest@127.0.0.1:{port}/"
    finally:
        server.close()
        for writer in held:
            writer.close()


class TestOneDeadline:
    async def test_ask_command_and_publish_give_up_connecting_at_their_deadline(self, silent_broker: str) -> None:
        bus = PublicBus(silent_broker, "userprov deadline test")
        try:
            calls = {
                "ask": lambda: bus.ask(routing.INVITATIONS_PEEK, InvitationsPeek(token="t" * 43), DEADLINE),
                "command": lambda: bus.command(routing.SCIM_TOKENS_REVOKE, ScimTokensRevoke(token_id="5f0c6b1e-0000-4000-8000-000000000001"),
                                               DEADLINE),
                "publish": lambda: bus.publish(routing.SCIM_TOKENS_REVOKE, ScimTokensRevoke(token_id="5f0c6b1e-0000-4000-8000-000000000001"),
                                               timeout=DEADLINE),
            }
            for what, call in calls.items():
                started = time.monotonic()
                with pytest.raises(NoAnswer):
                    await call()
                took = time.monotonic() - started
                assert DEADLINE <= took < DEADLINE + 1.0, (what, took)
                assert not bus.connected
        finally:
            await bus.close()


class TestAChannelClosedUnderIt:
    async def test_is_an_error_the_front_doors_answer_with_503(self, infra: Infra) -> None:
        """As when RabbitMQ restarts: the channel closes before the connection's loss is heard."""
        bus = PublicBus(infra.amqp_url, "userprov closed channel test")
        try:
            await bus.start()
            assert bus._channel is not None
            await bus._channel.close()
            with pytest.raises(BUS_ERRORS):
                await bus.ask(routing.INVITATIONS_PEEK, InvitationsPeek(token="t" * 43), DEADLINE)
        finally:
            await bus.close()
