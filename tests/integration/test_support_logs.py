"""What support reads: the log line of each message says what became of it, and the metrics
count the responses."""
from __future__ import annotations

import json
import re

from contracts import routing
from tests.integration.conftest import address, scrape, unique
from tests.support.flows import add_users
from tests.support.workers import WorkerProcess
from userprov_devtools.bus_client import BusClient
from userprov_devtools.waiting import eventually


def handled(workers: list[WorkerProcess], message_id: str) -> dict | None:
    """The line of that message itself (a message it caused carries its id as correlation_id)."""
    for worker in workers:
        for line in worker.lines():
            if '"message_handled"' in line and message_id in line:
                parsed = json.loads(line)
                if parsed.get("message_id") == message_id:
                    return parsed
    return None


def refused_accepts() -> float:
    found = re.search(r'^userprov_responses_total\{outcome="refused",reason="unknown_token",response="accept"\} ([0-9.]+)$',
                      scrape(), re.MULTILINE)
    return float(found.group(1)) if found else 0.0


class TestLogLines:
    async def test_a_users_add_line_names_the_account_and_counts_the_rows(
        self, bus: BusClient, workers: list[WorkerProcess], account
    ) -> None:
        account_id = await account()
        member = address("counted-member")
        await add_users(bus, {"account_id": account_id, "users": [{"first_name": "M", "last_name": "Ember", "email": member}]})
        completed = await add_users(bus, {"account_id": account_id, "users": [
            {"first_name": "N", "last_name": "Ew", "email": address("counted-new")},
            {"first_name": "M", "last_name": "Ember", "email": member},
            {"first_name": "B", "last_name": "Ad", "email": "not an address"},
        ]})
        line = await eventually(lambda: handled(workers, completed.body["command_id"]), what="the users.add log line")
        assert (line["account_id"], line["accepted"], line["already_members"], line["rejected_rows"]) == (account_id, 1, 1, 1)

    async def test_a_refused_accept_says_why_in_its_line_and_the_metrics(self, bus: BusClient, workers: list[WorkerProcess]) -> None:
        before = refused_accepts()
        ids = [await bus.publish(routing.INVITATION_ACCEPTED, {"token": unique("no-such-token") + "x" * 30}) for _ in range(4)]
        lines = [await eventually(lambda m=m: handled(workers, m), what="the accept's log line") for m in ids]
        assert all(line["refused"] == "unknown_token" and line["outcome"] == "done" for line in lines)
        await eventually(lambda: refused_accepts() > before, 30, 0.5, what="userprov_responses_total to count it")
