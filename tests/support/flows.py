"""Steps that many integration tests take: add users and wait for the outcome, read tokens from emails."""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from contracts import routing
from services.client import BusClient, RecordedEvent
from tests.support.smtp import ReceivedEmail, RecordingSmtpServer
from tests.support.wait import eventually

LINK = re.compile(r"https://links\.example\.com/invitation\?\S+")


async def add_users(bus: BusClient, body: dict[str, Any], timeout: float = 30.0, **publish: Any) -> RecordedEvent:
    message_id = await bus.publish(routing.USERS_ADD, body, **publish)

    def outcome() -> RecordedEvent | None:
        done = bus.find(routing.USERS_ADD_COMPLETED, command_id=message_id)
        refused = bus.find(routing.COMMAND_REJECTED, command_id=message_id)
        return (done or refused or [None])[0]

    return await eventually(outcome, timeout, what=f"users.add {message_id} to complete")


async def emails_to(smtp: RecordingSmtpServer, address: str, count: int = 1, timeout: float = 30.0) -> list[ReceivedEmail]:
    return await eventually(lambda: len(smtp.handler.to(address)) >= count and smtp.handler.to(address), timeout, what=f"{count} email(s)")


def tokens_in(email: ReceivedEmail) -> dict[str, str]:
    """The token of each link in the text part, by its `action` (`link` for a plain link)."""
    found = {}
    for url in LINK.findall(email.text):
        query = parse_qs(urlsplit(url).query)
        found[query.get("action", ["link"])[0]] = query["token"][0]
    return found
