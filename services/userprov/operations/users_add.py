"""`userprov add`: a `users.add` sent through userprov's public interface, as any integrator
sends it, and its outcome: `users.add.completed` with each row's result, or `command.rejected`."""
from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass

from pydantic import ValidationError

from contracts import routing
from contracts.commands import UsersAdd
from contracts.events import CommandRejected, UsersAddCompleted
from contracts.queries import OutcomeEvent
from userprov.operations.bus import public_bus
from userprov.public_bus import NoAnswer, PublicBus, Received

OUTCOMES = (routing.USERS_ADD_COMPLETED, routing.COMMAND_REJECTED)


@dataclass(frozen=True)
class Outcome:
    command_id: str
    completed: UsersAddCompleted | None = None
    refused: CommandRejected | None = None  # neither when it was not waited for


async def add(amqp_url: str, command: UsersAdd, wait: float) -> Outcome:
    """Publishes the command (confirmed, mandatory) and, unless `wait` is 0, waits that many
    seconds for its outcome; NoAnswer after that."""
    async with public_bus(amqp_url, "userprov add", OUTCOMES) as bus:
        command_id = str(uuid.uuid4())
        announced = bus.expect(command_id)
        try:
            await bus.publish(routing.USERS_ADD, command, message_id=command_id)
            if wait <= 0:
                return Outcome(command_id)
            event = await _outcome(bus, command_id, announced, wait)
        finally:
            bus.forget(command_id)
    try:
        if event.type == routing.COMMAND_REJECTED:
            return Outcome(command_id, refused=CommandRejected.model_validate(event.body))
        return Outcome(command_id, completed=UsersAddCompleted.model_validate(event.body))
    except ValidationError as error:
        raise NoAnswer(f"the outcome of users.add {command_id} is not a valid {event.type}: {error}") from None


async def _outcome(bus: PublicBus, command_id: str, announced: asyncio.Future[Received], wait: float) -> OutcomeEvent:
    """The event that announced the outcome; or, when the connection dropped meanwhile (the event
    may have gone by unseen), the outcome as `commands.get` reads it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while (left := deadline - loop.time()) > 0:
        done, _ = await asyncio.wait({announced}, timeout=min(left, 1.0))
        if done:
            received = announced.result()
            try:
                return OutcomeEvent(type=received.type, body=json.loads(received.body))
            except ValueError:  # not JSON, or not an object (ValidationError is a ValueError)
                raise NoAnswer(f"the outcome of users.add {command_id} is not a JSON object") from None
        if not bus.connected:
            return await bus.outcome(command_id, max(deadline - loop.time(), 1.0))
    raise NoAnswer(f"no outcome of users.add {command_id} within {wait:g} s: the workers may still be at it (ask commands.get"
                   f" with command_id {command_id} later), or none is running on this vhost")
