"""The public bus client, open for one operator's command."""
from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from contracts.queries import OutcomeEvent
from userprov.public_bus import PublicBus


@asynccontextmanager
async def public_bus(amqp_url: str, name: str, events: Sequence[str] = ()) -> AsyncIterator[PublicBus]:
    """`events`: the routing keys whose messages the command waits for (PublicBus.expect)."""
    bus = PublicBus(amqp_url, name, events, door="cli")
    await bus.start()
    try:
        yield bus
    finally:
        await bus.close()


def refusal_of(event: OutcomeEvent) -> str:
    """A `command.rejected` outcome, in one line: its reason and message."""
    return f"{event.body.get('reason')}: {event.body.get('message')}"
