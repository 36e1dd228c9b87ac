"""Chaos run: while thousands of users flow, SIGKILL worker processes, close broker connections,
restart RabbitMQ, terminate and restart PostgreSQL, and stop the SMTP server for 30 s; then
check every promise and print the figures.

    python -m tests.chaos --users 3000 --seconds 150
    python -m tests.chaos --users 3000 --seconds 60 --kill-every 10   # only: SIGKILL a random worker every 10 s
    python -m tests.chaos --lanes ...   # the workers in lanes: one interactive, two bulk (every add is handed off)

It needs this machine's RabbitMQ and PostgreSQL (it restarts both: run nothing else against
them meanwhile) and root for `rabbitmqctl` and `pg_ctlcluster`. Exit status 0 when every check
holds. Not part of the test suite: it takes minutes."""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import asyncpg

from contracts import routing
from tests.support.flows import tokens_in
from tests.support.infra import Infra, close_connections, create_infra, drop_vhost, message_counts, restart_broker
from tests.support.smtp import RecordingSmtpServer
from tests.support.workers import WorkerProcess
from userprov.db.connection import APPLICATION_NAME, drop_database
from userprov.db.migrate import migrate
from userprov.tokens import hash_token
from userprov_devtools.bus_client import BusClient
from userprov_devtools.waiting import eventually

PRODUCT = "gotomeeting"
SMTP_OUTAGE_SECONDS = 30


@dataclass
class Chaos:
    infra: Infra
    smtp: RecordingSmtpServer
    workers: list[WorkerProcess]
    rng: random.Random
    log: list[str] = field(default_factory=list)

    def note(self, what: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {what}"
        self.log.append(line)
        print(line, flush=True)

    async def kill_worker(self) -> None:
        victim = self.rng.choice(self.workers)
        self.note(f"SIGKILL worker {victim.name}")
        victim.kill()
        await asyncio.to_thread(victim.start, 60)

    async def close_broker_connections(self) -> None:
        self.note("close every broker connection of the vhost")
        await asyncio.to_thread(close_connections, self.infra.vhost)

    async def restart_rabbitmq(self) -> None:
        self.note("restart RabbitMQ (stop_app, start_app)")
        await asyncio.to_thread(restart_broker)

    async def terminate_database_backends(self) -> None:
        self.note("terminate the workers' PostgreSQL backends")
        conn = await asyncpg.connect(self.infra.database_url)
        try:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
                " AND application_name = $1", APPLICATION_NAME)
        finally:
            await conn.close()

    async def restart_postgresql(self) -> None:
        self.note("restart PostgreSQL")
        clusters = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True, check=True).stdout.split()
        await asyncio.to_thread(subprocess.run, ["pg_ctlcluster", clusters[0], clusters[1], "restart"], check=True)

    async def stop_smtp(self) -> None:
        self.note(f"stop the SMTP server for {SMTP_OUTAGE_SECONDS} s")
        self.smtp.stop()
        await asyncio.sleep(SMTP_OUTAGE_SECONDS)
        self.smtp.restart()
        self.note("SMTP server back")

    def faults(self) -> list:
        return [self.kill_worker, self.close_broker_connections, self.restart_rabbitmq, self.terminate_database_backends,
                self.restart_postgresql, self.stop_smtp]


async def publish_commands(bus: BusClient, accounts: list[str], users: int, batch: int, seconds: float) -> dict[str, list[str]]:
    """users.add commands spread over `seconds`: {message_id: emails}. Publishing retries through outages."""
    commands: dict[str, list[str]] = {}
    batches = (users + batch - 1) // batch
    for n in range(batches):
        account_id = accounts[n % len(accounts)]
        emails = [f"chaos{n}x{k}.{account_id}@example.com" for k in range(min(batch, users - n * batch))]
        body = {"account_id": account_id, "products": [PRODUCT], "pasted": "\n".join(f"Chaos Person{k} {e}" for k, e in enumerate(emails))}
        message_id = f"chaos-{account_id}-{n}"
        await retry_through_outage(lambda: bus.publish(routing.USERS_ADD, body, message_id=message_id))
        commands[message_id] = emails
        await asyncio.sleep(seconds / batches)
    return commands


async def retry_through_outage(action, timeout: float = 120.0, attempt_timeout: float = 20.0):  # noqa: ANN001, ANN201
    """Each attempt given `attempt_timeout` (a publish waits for its confirm, which a cluster
    without a quorum gives only once it has one again)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await asyncio.wait_for(action(), attempt_timeout)
        except Exception:  # noqa: BLE001 - the broker is being restarted on purpose
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(1)


async def run(users: int, batch: int, seconds: float, seed: int, kill_every: float | None = None, lanes: bool = False) -> int:
    rng = random.Random(seed)
    infra = create_infra()
    await migrate(infra.database_url, create_database=True)
    smtp = RecordingSmtpServer()
    smtp.start()
    log_dir = Path(tempfile.mkdtemp(prefix="userprov-chaos-"))
    env = {
        "USERPROV_AMQP_URL": infra.amqp_url, "USERPROV_DATABASE_URL": infra.database_url,
        "USERPROV_SMTP_PORT": str(smtp.port), "USERPROV_LINK_BASE_URL": "https://links.example.com/invitation",
        # tries that outlast the 30 s SMTP outage
        "USERPROV_SMTP_ATTEMPTS": "12", "USERPROV_SMTP_BACKOFF_SECONDS": "0.5", "USERPROV_SMTP_BACKOFF_MAX_SECONDS": "5",
        "USERPROV_SMTP_TIMEOUT_SECONDS": "5", "USERPROV_LOG_JSON": "true", "USERPROV_LOG_LEVEL": "INFO",
        "USERPROV_DATABASE_POOL_SIZE": "8",
    }
    each = {"i": "interactive", "b1": "bulk", "b2": "bulk"} if lanes else {"a": "all", "b": "all"}
    workers = [WorkerProcess(name, routing.SERVICES, {**env, "USERPROV_LANE": lane}, log_dir) for name, lane in each.items()]
    for worker in workers:
        worker.start()
    chaos = Chaos(infra, smtp, workers, rng)
    bus = BusClient(infra.amqp_url)
    await bus.start()
    db = await asyncpg.create_pool(infra.database_url, min_size=1, max_size=4)
    started = time.monotonic()
    try:
        accounts = [f"chaos-{seed}-{n}" for n in range(4)]
        for account_id in accounts:
            await bus.publish(routing.ACCOUNTS_UPSERT, {"account_id": account_id, "name": account_id, "licences": {PRODUCT: users}})
        await eventually(lambda: all(bus.find(routing.ACCOUNT_UPSERTED, account_id=a) for a in accounts), 30)

        flow = asyncio.create_task(publish_commands(bus, accounts, users, batch, seconds * 0.8))
        if kill_every:
            await kill_until_done(chaos, flow, smtp, kill_every)
        else:
            faults = chaos.faults()
            rng.shuffle(faults)
            pause = seconds / (len(faults) + 1)
            for fault in faults:
                await asyncio.sleep(pause * rng.uniform(0.6, 1.2))
                await fault()
        commands = await flow
        chaos.note("faults over; waiting for the work to finish")
        people = [e for emails in commands.values() for e in emails]
        db = await reconnect_pool(db, infra)
        await eventually(lambda: all(smtp.handler.to(p) for p in people), 600, 1.0, what="an email to every person")
        queues = partial(message_counts, infra.vhost)
        await eventually(lambda: settled(db, queues), 300, 1.0, what="outbox and queues empty, every invitation recorded")
        report = await check(bus, db, queues, smtp, commands, accounts)
        report["fault_log"] = chaos.log
        report["seconds"] = round(time.monotonic() - started, 1)
        print(json.dumps(report, indent=2))
        return 0 if report["all_promises_held"] else 1
    finally:
        await stop_all(bus, db, workers, smtp)
        drop_vhost(infra.vhost)
        await drop_database(infra.database_url)
        shutil.rmtree(log_dir, ignore_errors=True)


async def stop_all(bus: BusClient, db: asyncpg.Pool, workers: list[WorkerProcess], smtp: RecordingSmtpServer) -> None:
    """What a run started, stopped: the checker's connections, the workers, the SMTP server."""
    await bus.stop()
    await db.close()
    for worker in workers:
        if worker.running:
            worker.terminate()
    smtp.stop()


async def kill_until_done(chaos: Chaos, flow: asyncio.Task, smtp: RecordingSmtpServer, every: float) -> None:  # type: ignore[type-arg]
    """SIGKILLs a random worker every `every` seconds while commands are published and until the
    emails stop arriving (each kill then lands among emails in flight)."""
    while True:
        await asyncio.sleep(every)
        before = len(smtp.handler.received)
        await chaos.kill_worker()
        if flow.done() and len(smtp.handler.received) == before:
            return


async def reconnect_pool(db: asyncpg.Pool, infra: Infra) -> asyncpg.Pool:
    """The checker's own pool, fresh after PostgreSQL restarts."""
    await db.close()
    return await asyncpg.create_pool(infra.database_url, min_size=1, max_size=4)


QueueCounts = Callable[[], dict[str, int]]  # messages in each queue of the vhost, by name


async def settled(db: asyncpg.Pool, queue_counts: QueueCounts) -> bool:
    outbox = await db.fetchval("SELECT count(*) FROM outbox")
    unsent = await db.fetchval("SELECT count(*) FROM invitations WHERE status IN ('issued', 'sending')")
    counts = queue_counts()
    queued = sum(counts.get(name, 0) for name in routing.work_queue_names())
    return outbox == 0 and unsent == 0 and queued == 0


async def check(bus: BusClient, db: asyncpg.Pool, queue_counts: QueueCounts, smtp: RecordingSmtpServer, commands: dict[str, list[str]],
                accounts: list[str]) -> dict:
    people = [e for emails in commands.values() for e in emails]
    # every command completed once: processed, and exactly its rows became members
    processed = await db.fetchval(
        "SELECT count(*) FROM inbox WHERE service = $1 AND message_id = ANY($2::text[])", routing.USER_CREATION, list(commands))
    members_per_command = dict(await db.fetch(
        "SELECT added_by_command, count(*) FROM memberships WHERE added_by_command = ANY($1::text[]) GROUP BY 1", list(commands)))
    commands_complete = processed == len(commands) and all(members_per_command.get(c) == len(e) for c, e in commands.items())
    seats = await db.fetch(
        "SELECT l.account_id, l.seats_used, (SELECT count(*) FROM seat_assignments s WHERE s.account_id = l.account_id) AS assigned,"
        " (SELECT count(*) FROM memberships m WHERE m.account_id = l.account_id AND m.status <> 'removed') AS members"
        " FROM account_licences l WHERE l.account_id = ANY($1::text[])", accounts)
    seats_match = all(r["seats_used"] == r["assigned"] == r["members"] for r in seats)
    emails = {p: smtp.handler.to(p) for p in people}
    not_emailed = [p for p, got in emails.items() if not got]
    total_emails = sum(len(got) for got in emails.values())
    tokens = [tokens_in(email)["link"] for got in emails.values() for email in got]
    known = await db.fetchval("SELECT count(*) FROM invitation_tokens WHERE token_hash = ANY($1::bytea[])", [hash_token(t) for t in tokens])
    # accept them all: the first of each person activates, any later one is already_used (valid, used)
    for token in tokens:
        await bus.publish(routing.INVITATION_ACCEPTED, {"token": token}, correlation_id=f"chaos-accept-{hash_token(token).hex()[:16]}")
    active = await eventually(lambda: _active(db, commands, len(people)), 300, 1.0, what="every member active")
    refusals = {}
    for event in bus.find(routing.INVITATION_RESPONSE_REJECTED):
        refusals[event.body["reason"]] = refusals.get(event.body["reason"], 0) + 1
    counts = queue_counts()
    parked = {q: n for q, n in counts.items() if q.endswith(".parked") and n}
    outbox = await db.fetchval("SELECT count(*) FROM outbox")
    report = {
        "users": len(people), "commands": len(commands),
        "every_command_completed_once": commands_complete,
        "seats_equal_members": seats_match,
        "not_emailed": len(not_emailed),
        "emails": total_emails,
        "duplicate_emails_percent": round(100 * (total_emails - len(people)) / len(people), 3),
        "tokens_known": f"{known}/{len(tokens)}",
        "members_active_after_accepting": f"{active}/{len(people)}",
        "accept_refusals": refusals,
        "parked": parked,
        "outbox": outbox,
    }
    report["all_promises_held"] = (
        commands_complete and seats_match and not not_emailed and known == len(tokens) and active == len(people)
        and set(refusals) <= {"already_used"} and not parked and outbox == 0
        and report["duplicate_emails_percent"] < 1.0
    )
    return report


async def _active(db: asyncpg.Pool, commands: dict[str, list[str]], expected: int) -> int | None:
    active = await db.fetchval(
        "SELECT count(*) FROM memberships WHERE added_by_command = ANY($1::text[]) AND status = 'active'", list(commands))
    return active if active == expected else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=100, help="rows per users.add")
    parser.add_argument("--seconds", type=float, default=150, help="how long the faults go on")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--kill-every", type=float, default=None, help="only SIGKILL a random worker, every this many seconds")
    parser.add_argument("--lanes", action="store_true", help="one interactive worker and two bulk ones, instead of two that run all")
    args = parser.parse_args()
    print(f"chaos: seed {args.seed}", flush=True)
    sys.exit(asyncio.run(run(args.users, args.batch, args.seconds, args.seed, args.kill_every, args.lanes)))


if __name__ == "__main__":
    main()
