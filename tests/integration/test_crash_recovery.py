from __future__ import annotations

import contextlib

import asyncpg

from contracts import routing
from tests.support.flows import emailed, invitation_statuses, publish_batch
from tests.support.smtp import RecordingSmtpServer
from tests.support.workers import WorkerProcess
from userprov_devtools.bus_client import BusClient
from userprov_devtools.waiting import eventually


class TestWorkerKilledMidBatch:
    """A worker killed with SIGKILL mid-batch loses nothing: redelivery and the inbox finish the work."""

    async def test_sigkill_during_a_300_user_batch(
        self, bus: BusClient, smtp: RecordingSmtpServer, db: asyncpg.Pool, workers: list[WorkerProcess], account
    ) -> None:
        account_id = await account({"gotomeeting": 300})
        message_id, people = await publish_batch(bus, account_id, "batch", 300)
        victim = workers[0]
        await eventually(lambda: emailed(smtp, people) >= 30, 60, what="30 emails")
        victim.kill()
        victim.start()
        await eventually(lambda: all(smtp.handler.to(p) for p in people), 120, what="an email to every person")

        [completed] = bus.find(routing.USERS_ADD_COMPLETED, command_id=message_id)
        assert all(r["outcome"] == "accepted" for r in completed.body["results"])
        assert await db.fetchval("SELECT seats_used FROM account_licences WHERE account_id = $1", account_id) == 300
        statuses = dict(await db.fetch(
            "SELECT status, count(*) FROM memberships WHERE account_id = $1 GROUP BY status", account_id))
        assert statuses == {"invited": 300}
        with contextlib.suppress(TimeoutError):
            await eventually(lambda: _all_sent(invitation_statuses(db, account_id)), 60, what="every invitation recorded as sent")
        assert await invitation_statuses(db, account_id) == {"sent": 300}
        # At most the few emails in flight at the kill are sent twice (accepted by SMTP, not yet recorded).
        duplicates = sum(len(smtp.handler.to(p)) - 1 for p in people)
        assert duplicates <= 32, duplicates


async def _all_sent(statuses, count: int = 300) -> dict[str, int] | None:  # noqa: ANN001
    found = await statuses
    return found if found == {"sent": count} else None


class TestWorkerStoppedMidBatch:
    """SIGTERM mid-batch: the worker stops taking messages, finishes those in hand, exits 0; nothing is lost."""

    async def test_sigterm_during_a_batch(
        self, bus: BusClient, smtp: RecordingSmtpServer, db: asyncpg.Pool, workers: list[WorkerProcess], account
    ) -> None:
        account_id = await account({"gotomeeting": 200})
        _, people = await publish_batch(bus, account_id, "term", 200)
        stopping = workers[1]
        await eventually(lambda: emailed(smtp, people) >= 20, 60, what="20 emails")
        assert stopping.terminate() == 0
        assert stopping.count_log('"drained": true') == 1
        stopping.start()
        await eventually(lambda: all(smtp.handler.to(p) for p in people), 120, what="an email to every person")
        assert all(len(smtp.handler.to(p)) == 1 for p in people)  # a clean stop sends nothing twice
        await eventually(lambda: _all_sent(invitation_statuses(db, account_id), 200), 30, what="every invitation recorded as sent")
