"""Steps that many integration tests take: add users and wait for the outcome, read tokens from emails."""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from contracts import routing
from tests.support.smtp import ReceivedEmail, RecordingSmtpServer
from userprov_devtools.bus_client import BusClient, RecordedEvent
from userprov_devtools.waiting import eventually

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


async def add_active_member(bus: BusClient, smtp: RecordingSmtpServer, account_id: str, email: str, **fields: Any) -> None:
    """Adds the person to the account and accepts their welcome invitation."""
    body = {"account_id": account_id, "users": [{"first_name": "Active", "last_name": "Member", "email": email}], **fields}
    done = await add_users(bus, body)
    assert done.body["results"][0]["outcome"] == "accepted", done.body
    [email_message] = await emails_to(smtp, email)
    await bus.publish(routing.INVITATION_ACCEPTED, {"token": tokens_in(email_message)["link"]})
    await eventually(lambda: bus.find(routing.USER_ACTIVATED, email=email, account_id=account_id), what="activation")


async def assert_seats_consistent(db: Any, *account_ids: str) -> None:
    """Every licence's counter equals its assignments, and nothing is oversold."""
    rows = await db.fetch(
        "SELECT l.account_id, l.product, l.seats_used, l.seats_total,"
        " (SELECT count(*) FROM seat_assignments s WHERE s.account_id = l.account_id AND s.product = l.product) AS assigned"
        " FROM account_licences l WHERE l.account_id = ANY($1::text[])",
        list(account_ids),
    )
    for row in rows:
        assert row["seats_used"] == row["assigned"] <= row["seats_total"], dict(row)


async def active_accounts(db: Any, email: str) -> list[str]:
    rows = await db.fetch(
        "SELECT m.account_id FROM memberships m JOIN profiles p USING (profile_id) WHERE p.email = $1 AND m.status = 'active'",
        email,
    )
    return sorted(r["account_id"] for r in rows)


async def membership_status(db: Any, account_id: str, email: str) -> str | None:
    return await db.fetchval(
        "SELECT m.status FROM memberships m JOIN profiles p USING (profile_id) WHERE p.email = $1 AND m.account_id = $2"
        " ORDER BY (m.status = 'removed'), m.created_at DESC LIMIT 1",
        email,
        account_id,
    )


async def publish_batch(bus: BusClient, account_id: str, local: str, size: int) -> tuple[str, list[str]]:
    """Publishes one users.add of `size` pasted people with one seat each: (message_id, their emails)."""
    people = [f"{local}{n}.{account_id}@example.com" for n in range(size)]
    message_id = await bus.publish(routing.USERS_ADD, {
        "account_id": account_id, "products": ["gotomeeting"],
        "pasted": "\n".join(f"Batch Person{n} {email}" for n, email in enumerate(people))})
    return message_id, people


def emailed(smtp: RecordingSmtpServer, people: list[str]) -> int:
    return sum(bool(smtp.handler.to(p)) for p in people)


async def invitation_statuses(db: Any, account_id: str) -> dict[str, int]:
    return dict(await db.fetch(
        "SELECT i.status, count(*) FROM invitations i JOIN memberships m USING (membership_id)"
        " WHERE m.account_id = $1 GROUP BY i.status", account_id))
