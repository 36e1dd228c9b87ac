"""Cluster run (issue 19): userprov on a three-node RabbitMQ cluster and a PostgreSQL primary
with a synchronous replica, all of their own (never this machine's broker or server). While
thousands of people go through the welcome path, in random order and at random moments:

- the RabbitMQ node that leads the busiest queues is killed (SIGKILL) and started again later;
- a second node is stopped for 20 s;
- PostgreSQL fails over: the primary is fenced (read-only), the replica promoted, the old
  primary stopped and rebuilt as the new replica.

Then every promise is checked (each command completed once, seats equal members, everyone
emailed with at most 1 % duplicates, every link accepted, nothing parked, an empty outbox) and
the time each recovery took is printed: a canary, one person added just after each fault, is
emailed after so many seconds; a node or server is back after so many.

    python -m tests.cluster                       # 3,000 people, every fault
    python -m tests.cluster --users 300 --short   # one broker node killed while 300 people flow
    pytest -m cluster                             # the short one, as a test

Root is needed (the nodes run as user rabbitmq, the servers as postgres). Exit status 0 when
every check holds. It takes minutes: not part of the normal suite."""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from contracts import routing
from tests.chaos import check, publish_commands, retry_through_outage, settled, stop_all
from tests.support.postgres_servers import PostgresPair, make_synchronous, postgres_pair
from tests.support.rabbit_cluster import RabbitCluster, RabbitNode, rabbit_cluster
from tests.support.smtp import RecordingSmtpServer
from tests.support.workers import WorkerProcess
from userprov.db.connection import create_pool
from userprov.db.migrate import migrate
from userprov_devtools.bus_client import BusClient
from userprov_devtools.waiting import eventually

PRODUCT = "gotomeeting"
VHOST = "userprov"
DATABASE = "userprov"
KILLED_NODE_DOWN_SECONDS = 15
STOPPED_NODE_DOWN_SECONDS = 20


@dataclass
class Recovery:
    fault: str
    canary_emailed_after: float | None = None  # seconds from the fault until a person added just after it was emailed
    back_after: float | None = None  # seconds the node or server took to come back once started again

    def row(self) -> dict[str, object]:
        return {"fault": self.fault, "canary_emailed_after_s": self.canary_emailed_after, "back_after_s": self.back_after}


@dataclass
class ClusterRun:
    cluster: RabbitCluster
    pair: PostgresPair
    smtp: RecordingSmtpServer
    bus: BusClient
    rng: random.Random
    log: list[str] = field(default_factory=list)
    recoveries: list[Recovery] = field(default_factory=list)
    canaries: dict[str, list[str]] = field(default_factory=dict)  # message_id: [email]
    busy: set[RabbitNode] = field(default_factory=set)  # nodes a fault has taken down

    def note(self, what: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {what}"
        self.log.append(line)
        print(line, flush=True)

    async def canary(self, recovery: Recovery, started: float) -> None:
        """One person added just after the fault: how long until their email arrives."""
        n = len(self.canaries)
        email = f"canary{n}@example.com"
        message_id = f"canary-{n}"
        body = {"account_id": "canary", "products": [PRODUCT], "users": [{"first_name": "Canary", "last_name": str(n), "email": email}]}
        await retry_through_outage(lambda: self.bus.publish(routing.USERS_ADD, body, message_id=message_id), timeout=300)
        self.canaries[message_id] = [email]
        await eventually(lambda: bool(self.smtp.handler.to(email)), 300, 0.1, what=f"the canary after {recovery.fault}")
        recovery.canary_emailed_after = round(time.monotonic() - started, 1)

    def busiest_leader(self) -> tuple[RabbitNode, list[str]]:
        """The node leading the service queues that hold the most messages (the most of them, on
        a tie), and the queues it leads."""
        load: dict[str, float] = {}
        led: dict[str, list[str]] = {}
        for queue in self.cluster.any_running(besides=self.busy).queues(VHOST):
            if str(queue["name"]).count(".") == 1 and queue.get("leader"):  # userprov.<service>, not .parked
                leader = str(queue["leader"])
                load[leader] = load.get(leader, 0) + int(queue["messages"] or 0) + 0.001
                led.setdefault(leader, []).append(f"{queue['name']} ({queue['messages']} messages)")
        nodes = {n.node: n for n in self.cluster.nodes if n not in self.busy}
        ranked = sorted((weight, name) for name, weight in load.items() if name in nodes)
        name = ranked[-1][1] if ranked else next(iter(nodes))
        return nodes[name], led.get(name, [])

    async def kill_leader(self) -> None:
        node, leads = self.busiest_leader()
        await self._take_down(node, f"SIGKILL {node.node.split('@')[0]}, leader of {', '.join(leads) or 'no service queue'}",
                              node.kill, KILLED_NODE_DOWN_SECONDS)

    async def stop_second(self) -> None:
        node = self.rng.choice([n for n in self.cluster.nodes if n not in self.busy])
        await self._take_down(node, f"stop {node.node.split('@')[0]} for {STOPPED_NODE_DOWN_SECONDS} s", node.stop,
                              STOPPED_NODE_DOWN_SECONDS)

    async def _take_down(self, node: RabbitNode, fault: str, how: Callable[[], None], seconds: float) -> None:
        """`how` takes the node down; a canary is added at once; the node starts again `seconds` later."""
        self.busy.add(node)
        recovery = Recovery(fault)
        self.recoveries.append(recovery)
        self.note(fault)
        started = time.monotonic()
        await asyncio.to_thread(how)
        canary = asyncio.create_task(self.canary(recovery, started))
        await asyncio.sleep(seconds)
        restarted = time.monotonic()
        await asyncio.to_thread(node.start)
        recovery.back_after = round(time.monotonic() - restarted, 1)
        self.busy.discard(node)
        self.note(f"{node.node.split('@')[0]} back in the cluster after {recovery.back_after} s")
        await canary

    async def fail_over_database(self) -> None:
        old, new = self.pair.primary, self.pair.replica
        recovery = Recovery(f"PostgreSQL fail-over from {old.name} to {new.name}")
        self.recoveries.append(recovery)
        self.note(recovery.fault + ": fence, promote, rebuild")
        started = time.monotonic()
        await old.fence()
        canary = asyncio.create_task(self.canary(recovery, started))
        await asyncio.to_thread(new.promote)
        await asyncio.to_thread(make_synchronous, new, None)  # until the old primary streams from it
        await asyncio.to_thread(old.stop)
        rebuilt = time.monotonic()
        await asyncio.to_thread(old.init_replica_of, new)
        await asyncio.to_thread(old.start)
        await asyncio.to_thread(make_synchronous, new, old.name)
        self.pair.primary, self.pair.replica = new, old
        recovery.back_after = round(time.monotonic() - rebuilt, 1)
        self.note(f"{old.name} rebuilt as the synchronous replica of {new.name} in {recovery.back_after} s")
        await canary


def queue_counts(cluster: RabbitCluster) -> dict[str, int]:
    return {str(q["name"]): int(q["messages"] or 0) for q in cluster.any_running().queues(VHOST)}


async def run(users: int, batch: int, seconds: float, seed: int, short: bool) -> int:
    rng = random.Random(seed)
    started = time.monotonic()
    with rabbit_cluster() as cluster, postgres_pair() as pair:
        print(f"cluster: 3 nodes and a PostgreSQL pair up in {time.monotonic() - started:.0f} s", flush=True)
        cluster.add_vhost(VHOST)
        database_url = pair.url(DATABASE)
        await migrate(database_url, create_database=True)
        smtp = RecordingSmtpServer()
        smtp.start()
        log_dir = Path(tempfile.mkdtemp(prefix="userprov-cluster-logs-"))
        env = {
            "USERPROV_DATABASE_URL": database_url, "USERPROV_SMTP_PORT": str(smtp.port),
            "USERPROV_LINK_BASE_URL": "https://links.example.com/invitation", "USERPROV_LOG_JSON": "true", "USERPROV_LOG_LEVEL": "INFO",
            "USERPROV_DATABASE_POOL_SIZE": "8",
        }
        workers = [WorkerProcess(name, routing.SERVICES, {**env, "USERPROV_AMQP_URL": cluster.url(VHOST, n)}, log_dir)
                   for n, name in enumerate(("a", "b"))]
        for worker in workers:
            worker.start(60)
        bus = BusClient(cluster.url(VHOST, 2))
        await bus.start()
        db = await create_pool(database_url, 4)
        chaos = ClusterRun(cluster, pair, smtp, bus, rng)
        try:
            accounts = [f"cluster-{seed}-{n}" for n in range(4)]
            for account_id in [*accounts, "canary"]:
                await bus.publish(routing.ACCOUNTS_UPSERT, {"account_id": account_id, "name": account_id, "licences": {PRODUCT: users}})
            await eventually(lambda: all(bus.find(routing.ACCOUNT_UPSERTED, account_id=a) for a in [*accounts, "canary"]), 60)

            flow = asyncio.create_task(publish_commands(bus, accounts, users, batch, seconds))
            faults: list[Callable[[], Awaitable[None]]] = (
                [chaos.kill_leader] if short else [chaos.kill_leader, chaos.stop_second, chaos.fail_over_database])
            rng.shuffle(faults)
            # each fault at a random moment of the flow: they may overlap (two nodes down at once: no quorum for a while)
            moments = sorted(rng.uniform(0.15, 0.6) * seconds for _ in faults)
            tasks = [asyncio.create_task(_after(moment, fault)) for moment, fault in zip(moments, faults, strict=True)]
            commands = await flow
            await asyncio.gather(*tasks)
            chaos.note("faults over; waiting for the work to finish")
            commands.update(chaos.canaries)
            people = [e for emails in commands.values() for e in emails]
            await eventually(lambda: all(smtp.handler.to(p) for p in people), 600, 1.0, what="an email to every person")
            await eventually(lambda: settled(db, lambda: queue_counts(cluster)), 300, 1.0,
                             what="outbox and queues empty, every invitation recorded")
            report = await check(bus, db, lambda: queue_counts(cluster), smtp, commands, [*accounts, "canary"])
            report["replicas_per_queue"] = {str(q["name"]): len(q["members"]) for q in cluster.any_running().queues(VHOST)
                                            if str(q["name"]).startswith("userprov.")}
            report["recoveries"] = [r.row() for r in chaos.recoveries]
            report["fault_log"] = chaos.log
            report["seconds"] = round(time.monotonic() - started, 1)
            held = (report["all_promises_held"] and all(r.canary_emailed_after is not None for r in chaos.recoveries)
                    and set(report["replicas_per_queue"].values()) == {3})
            report["all_promises_held"] = held
            print(json.dumps(report, indent=2), flush=True)
            if held:
                shutil.rmtree(log_dir, ignore_errors=True)
            else:
                print(f"the workers' logs are in {log_dir}", flush=True)
            return 0 if held else 1
        finally:
            await stop_all(bus, db, workers, smtp)


async def _after(seconds: float, fault: Callable[[], Awaitable[None]]) -> None:
    await asyncio.sleep(seconds)
    await fault()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=20, help="rows per users.add")
    parser.add_argument("--seconds", type=float, default=90, help="how long the commands are published for")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--short", action="store_true", help="only: kill the node leading the busiest queues")
    args = parser.parse_args()
    print(f"cluster: seed {args.seed}", flush=True)
    sys.exit(asyncio.run(run(args.users, args.batch, args.seconds, args.seed, args.short)))


if __name__ == "__main__":
    main()
