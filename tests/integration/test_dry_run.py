"""users.add with `dry_run: true`: every row answered as a real add would answer it, nothing done."""
from __future__ import annotations

import time
from collections import Counter
from typing import Any

import asyncpg
import pytest

from contracts import routing
from tests.integration.conftest import address
from tests.support.flows import add_active_member, add_users, emails_to
from tests.support.smtp import RecordingSmtpServer
from userprov_devtools.bus_client import BusClient
from userprov_devtools.waiting import eventually


def row(first: str, email: str, **fields: Any) -> dict[str, Any]:
    return {"first_name": first, "last_name": "Row", "email": email, **fields}


def judged(results: list[dict[str, Any]]) -> list[tuple[int, str, str, list[str]]]:
    """What a dry run must foretell of each row: its outcome and error codes."""
    return [(r["row"], r["email"], r["outcome"], [e["code"] for e in r["errors"]]) for r in results]


class TestDryRun:
    async def test_a_mixed_list_is_foretold_row_by_row_and_nothing_happens(
        self, bus: BusClient, smtp: RecordingSmtpServer, db: asyncpg.Pool, account,
    ) -> None:
        elsewhere = await account()
        target = await account({"gotomeeting": 4})
        mover, member = address("mover"), address("member")
        await add_active_member(bus, smtp, elsewhere, mover)
        await add_users(bus, {"account_id": target, "products": ["gotomeeting"], "users": [row("Member", member)]})
        await emails_to(smtp, member)
        new = [address(f"new{n}") for n in range(4)]
        later = address("later")
        body = {
            "account_id": target, "products": ["gotomeeting"],
            "users": [row("New", new[0]), row("Mover", mover), row("Member", member), row("Bad", "not-an-address"),
                      row("Twice", new[0]), row("New", new[1]), row("New", new[2]), row("New", new[3]),
                      row("Later", later, active=False)],
            "pasted": "Only Two",
        }
        seats_before = await bus.query(routing.ACCOUNTS_GET, {"account_id": target})

        dry = await add_users(bus, {**body, "dry_run": True})

        assert dry.routing_key == routing.USERS_ADD_COMPLETED and dry.body["dry_run"] is True, dry.body
        results = dry.body["results"]
        assert judged(results) == [
            (1, new[0], "accepted", []), (2, mover, "accepted", []), (3, member, "already_member", []),
            (4, "not-an-address", "rejected", ["invalid_email"]), (5, new[0], "rejected", ["duplicate_in_command"]),
            (6, new[1], "accepted", []), (7, new[2], "rejected", ["no_free_seat"]), (8, new[3], "rejected", ["no_free_seat"]),
            (9, later, "accepted", []), (10, "", "rejected", ["entry_format"]),
        ]
        assert [r["invitation"] for r in results] == ["welcome", "transfer", None, None, None, "welcome", None, None, None, None]
        assert results[0]["user_id"] is None and results[1]["user_id"] is not None  # no profile is made; the mover has one
        assert dry.body["seats"] == [{"product": "gotomeeting", "needed": 5, "free": 3}]
        # recorded as any command (commands.get answers it), and nothing else published
        answer = await bus.query(routing.COMMANDS_GET, {"command_id": dry.body["command_id"]})
        assert answer["outcome"] == "done" and [e["type"] for e in answer["events"]] == [routing.USERS_ADD_COMPLETED]
        # nothing written: no one new, the seats as they were, no invitation
        for person in [*new, later]:
            assert (await bus.query(routing.USERS_GET, {"account_id": target, "email": person}))["found"] is False
        assert await db.fetchval("SELECT count(*) FROM profiles WHERE email = ANY($1::text[])", [*new, later]) == 0
        assert await bus.query(routing.ACCOUNTS_GET, {"account_id": target}) == seats_before
        assert await db.fetchval("SELECT count(*) FROM invitations WHERE account_id = $1", target) == 1  # the member's

        real = await add_users(bus, body)

        assert real.body["dry_run"] is False and real.body["seats"] is None
        assert judged(real.body["results"]) == judged(results)
        assert [r["invitation"] for r in real.body["results"]] == [r["invitation"] for r in results]
        kinds = {}
        for person in (new[0], mover, new[1]):
            [sent] = await eventually(lambda p=person: bus.find(routing.INVITATION_SENT, email=p, account_id=target), what="sent")
            kinds[person] = sent.body["kind"]
        assert kinds == {new[0]: "welcome", mover: "transfer", new[1]: "welcome"}
        # the dry run emailed no one: each has the one email of the real add (the mover two: its first welcome too)
        assert [len(await emails_to(smtp, p, count=n)) for p, n in ((new[0], 1), (mover, 2), (new[1], 1))] == [1, 2, 1]
        assert [len(smtp.handler.to(p)) for p in (new[0], mover, new[1], new[2], new[3], later)] == [1, 2, 1, 0, 0, 0]


@pytest.mark.bench
class TestDryRunBench:
    async def test_10000_rows(self, bus: BusClient, db: asyncpg.Pool, account) -> None:
        """A dry run of 10,000 pasted rows, half of them past the seats, in an account with a quota."""
        account_id = await account({"gotomeeting": 5_000}, invitation_quota_per_day=100_000)
        pasted = "\n".join(f"Bulk\tPerson {n}\t{address(f'dry{n}')}" for n in range(10_000))
        started = time.monotonic()
        done = await add_users(bus, {"account_id": account_id, "products": ["gotomeeting"], "pasted": pasted, "dry_run": True},
                               timeout=60)
        elapsed = time.monotonic() - started
        print(f"dry run of 10,000 rows answered in {elapsed:.2f} s")
        assert Counter(r["outcome"] for r in done.body["results"]) == {"accepted": 5_000, "rejected": 5_000}
        assert done.body["seats"] == [{"product": "gotomeeting", "needed": 10_000, "free": 5_000}]
        assert await db.fetchval("SELECT count(*) FROM memberships WHERE account_id = $1", account_id) == 0
        assert elapsed < 10
