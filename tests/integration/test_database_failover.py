"""A PostgreSQL failover under a worker: a primary with a synchronous replica of its own (not
the machine's server), the worker given both hosts with target_session_attrs=read-write. In
the middle of a batch the primary is fenced (read-only, as a failover manager does before it
promotes), the replica promoted, the old primary stopped and rebuilt as the new replica. The
worker's writes fail with ReadOnlySQLTransaction, are retried, and its pool renews its
connections to the new primary: everything is done once, and nothing is lost."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg

from contracts import routing
from tests.support.flows import add_users, assert_seats_consistent, emailed, invitation_statuses, publish_batch
from tests.support.isolated import isolated_worker
from tests.support.postgres_servers import make_synchronous, postgres_pair
from tests.support.smtp import RecordingSmtpServer
from userprov_devtools.waiting import eventually

PEOPLE = 200


async def test_a_batch_survives_a_failover_to_the_replica(worker_env: dict[str, str], smtp: RecordingSmtpServer, tmp_path: Path) -> None:
    with postgres_pair() as pair:
        async with isolated_worker("failover", worker_env, tmp_path, database_url=pair.url("userprov"),
                                   USERPROV_TRANSIENT_RETRY_SECONDS="60") as (_infra, worker, bus):
            await bus.publish(routing.ACCOUNTS_UPSERT, {"account_id": "failover", "name": "Failover", "licences": {"gotomeeting": PEOPLE}})
            await eventually(lambda: bus.find(routing.ACCOUNT_UPSERTED, account_id="failover"), 30, what="account.upserted")
            message_id, people = await publish_batch(bus, "failover", "fo", PEOPLE)
            await eventually(lambda: emailed(smtp, people) >= 40, 60, what="the batch under way")

            old, new = pair.primary, pair.replica
            await old.fence()
            started = time.monotonic()
            await asyncio.sleep(0.5)  # the worker meets the fence before there is a new primary
            await asyncio.to_thread(new.promote)
            await asyncio.to_thread(make_synchronous, new, None)  # no standby until the old primary is rebuilt
            # the old primary stays up, read-only: only renewing its connections takes the worker away from it
            await eventually(lambda: emailed(smtp, people) == PEOPLE, 90, what="an email to every person")
            recovered = time.monotonic() - started
            async with asyncpg.create_pool(new.url("userprov"), min_size=1, max_size=1) as db:
                await eventually(lambda: _all_sent(db), 60, what="every invitation recorded as sent on the new primary")
                await eventually(lambda: _outbox_empty(db), 30, what="an empty outbox")
                await assert_seats_consistent(db, "failover")

            await asyncio.to_thread(old.stop)
            await asyncio.to_thread(old.init_replica_of, new)
            await asyncio.to_thread(old.start)
            await asyncio.to_thread(make_synchronous, new, old.name)
            done = await add_users(bus, {"account_id": "failover", "users": [{"first_name": "After", "last_name": "Rebuild",
                                                                                "email": "after.rebuild@example.com"}]})
            assert done.body["results"][0]["outcome"] == "accepted", done.body  # committed with the rebuilt replica in sync
            assert len(bus.find(routing.USERS_ADD_COMPLETED, command_id=message_id)) == 1
            duplicates = sum(len(smtp.handler.to(p)) for p in people) - PEOPLE
            assert duplicates <= 2, f"{duplicates} duplicate emails across the failover"
            assert any('"database_read_only"' in line for line in worker.lines()), "the pool never saw the fence"
            print(f"failover: every email out {recovered:.1f} s after the fence, {duplicates} duplicate(s)")


async def _all_sent(db: asyncpg.Pool) -> bool:
    return await invitation_statuses(db, "failover") == {"sent": PEOPLE}


async def _outbox_empty(db: asyncpg.Pool) -> bool:
    return await db.fetchval("SELECT count(*) FROM outbox") == 0
