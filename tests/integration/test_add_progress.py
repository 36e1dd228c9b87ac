from __future__ import annotations

import asyncio
from datetime import datetime

from contracts import routing
from tests.support.smtp import RecordingSmtpServer
from userprov_devtools.bus_client import BusClient
from userprov_devtools.waiting import eventually

COUNTS = ("rows", "created", "invited", "emailed", "failed")


class TestAddProgress:
    """commands.get answers a users.add's progress, whose counts only grow, and users.add.progress
    events come at most once a second while its invitations are emailed, the last one `done`."""

    async def test_2500_pasted_rows_polled(self, bus: BusClient, smtp: RecordingSmtpServer, account) -> None:
        """2,500 rows: their emails take seconds (about 3 here), so that progress is seen between
        the start and the end, and more than one event is published (both asserted below)."""
        account_id = await account({"gotomeeting": 2_500})
        people = [f"progress{n}.{account_id}@example.com" for n in range(2_500)]
        pasted = "\n".join(f"Pro\tGress {n}\t{email}" for n, email in enumerate(people[:-1])) + "\nnot-a-row"
        command_id = await bus.publish(routing.USERS_ADD, {"account_id": account_id, "products": ["gotomeeting"], "pasted": pasted})
        seen: list[dict[str, int]] = []

        async def poll() -> dict[str, int] | None:
            answer = await bus.query(routing.COMMANDS_GET, {"command_id": command_id})
            if answer["found"]:
                seen.append(answer["progress"])
                if answer["progress"]["emailed"] == 2_499:
                    return answer["progress"]
            await asyncio.sleep(0.2)
            return None

        final = await eventually(poll, 180, interval=0, what="every email of the 2,500 rows")
        assert {c: final[c] for c in COUNTS} == {"rows": 2_500, "created": 2_499, "invited": 2_499, "emailed": 2_499, "failed": 1}
        for earlier, later in zip(seen, seen[1:], strict=False):
            assert all(later[c] >= earlier[c] for c in COUNTS), (earlier, later)
        assert len({s["emailed"] for s in seen}) > 2, "progress seen only at its start and end"

        events = await eventually(lambda: [e for e in bus.find(routing.USERS_ADD_PROGRESS, command_id=command_id)
                                           if e.body["done"]] and bus.find(routing.USERS_ADD_PROGRESS, command_id=command_id),
                                  10, what="the last users.add.progress")
        events.sort(key=lambda e: datetime.fromisoformat(e.body["published_at"]))  # several processes publish them: in any order
        assert events[-1].body["done"] and events[-1].body["progress"] == {**final, "done": True}
        assert sum(e.body["done"] for e in events) == 1 and len(events) >= 2
        assert all(e.correlation_id == command_id for e in events)
        published = [datetime.fromisoformat(e.body["published_at"]) for e in events]
        gaps = [(later - earlier).total_seconds() for earlier, later in zip(published, published[1:], strict=False)]
        assert min(gaps) >= 1.0, gaps  # at most one a second (the database's clock: their receipt here jitters with the relay)
        emailed = [e.body["progress"]["emailed"] for e in events]
        assert emailed == sorted(emailed)

    async def test_members_added_deactivated_settle_it(
            self, bus: BusClient, smtp: RecordingSmtpServer, account) -> None:
        """No email is coming for a member added deactivated (nor, by the same rule, for one removed
        before theirs went out): the command is done without them (an import waited an hour)."""
        account_id = await account({"gotomeeting": 20})
        users = [{"first_name": "Pro", "last_name": f"Gress {n}", "email": f"settle{n}.{account_id}@example.com",
                  **({"active": False} if n < 2 else {})} for n in range(12)]
        command_id = await bus.publish(routing.USERS_ADD, {"account_id": account_id, "products": ["gotomeeting"], "users": users})

        async def progress() -> dict | None:
            answer = await bus.query(routing.COMMANDS_GET, {"command_id": command_id, "include_events": False})
            return answer["progress"] if answer["found"] and answer["progress"]["done"] else None

        done = await eventually(progress, 30, what="the command done")
        assert {c: done[c] for c in COUNTS} == {"rows": 12, "created": 12, "invited": 10, "emailed": 10, "failed": 0}
        last = await eventually(lambda: [e for e in bus.find(routing.USERS_ADD_PROGRESS, command_id=command_id) if e.body["done"]],
                                10, what="the last users.add.progress")
        assert last[0].body["progress"]["emailed"] == 10
