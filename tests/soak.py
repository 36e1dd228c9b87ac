"""Memory soak: one-user adds at a steady rate for many minutes; the workers' resident memory
must stay flat (under 10 % growth from the end of the warm-up to the end).

    python -m tests.soak --minutes 30 --rate 25

Run it alone on the machine (it is a measurement). Prints the RSS of each worker every
`--every` seconds and the growth; exit status 0 when memory stayed flat, every email arrived,
and the workers kept up with the rate."""
from __future__ import annotations

import argparse
import asyncio
import tempfile
import threading
import time
from pathlib import Path

from contracts import routing
from tests.support.infra import create_infra, drop_vhost
from tests.support.workers import WorkerProcess
from userprov.db.connection import drop_database
from userprov.db.migrate import migrate
from userprov_devtools.bus_client import BusClient
from userprov_devtools.mail_catcher import CatchingHandler, start_mail_catcher
from userprov_devtools.ports import free_port
from userprov_devtools.waiting import eventually

WARM_UP_SECONDS = 180
ALLOWED_GROWTH = 0.10


async def soak(minutes: float, rate: float, every: float) -> bool:
    infra = create_infra()
    await migrate(infra.database_url, create_database=True)
    arrived = 0
    lock = threading.Lock()

    def on_email(_address: str, _at: float) -> None:
        nonlocal arrived
        with lock:
            arrived += 1

    port = free_port()
    catcher = start_mail_catcher("127.0.0.1", port, CatchingHandler(on_email=on_email))
    env = {"USERPROV_AMQP_URL": infra.amqp_url, "USERPROV_DATABASE_URL": infra.database_url,
           "USERPROV_SMTP_PORT": str(port), "USERPROV_LOG_LEVEL": "WARNING", "USERPROV_LOG_JSON": "true"}
    workers = [WorkerProcess(name, routing.SERVICES, env, Path(tempfile.mkdtemp())) for name in ("a", "b")]
    bus = BusClient(infra.amqp_url, record=(routing.ACCOUNT_UPSERTED,))
    samples: list[tuple[float, list[int]]] = []
    try:
        for worker in workers:
            worker.start(wait_ready=False)  # WARNING level: ready when they answer
        await bus.start()
        await bus.wait_for_workers()
        account = "soak"
        await bus.publish(routing.ACCOUNTS_UPSERT, {"account_id": account, "name": "Soak", "licences": {"gotomeeting": 1_000_000}})
        await eventually(lambda: bus.find(routing.ACCOUNT_UPSERTED, account_id=account), 30)
        started = time.monotonic()
        end = started + minutes * 60
        sent = 0
        next_sample = started
        while time.monotonic() < end:
            now = time.monotonic()
            if now >= next_sample:
                samples.append((now - started, [w.rss_kib() for w in workers]))
                with lock:
                    behind = sent - arrived
                print(f"{(now - started) / 60:5.1f} min  sent {sent:6d}  emails behind {behind:4d}  RSS KiB "
                      + "  ".join(f"{w.name}={kib}" for w, kib in zip(workers, samples[-1][1], strict=True)), flush=True)
                next_sample += every
            await bus.publish(routing.USERS_ADD, {"account_id": account, "products": ["gotomeeting"],
                                                  "pasted": f"Soak User{sent} soak{sent}@soak.example.com"})
            sent += 1
            await asyncio.sleep(max(0.0, started + sent / rate - time.monotonic()))
        await eventually(lambda: arrived >= sent, 120, 0.5, what="every email")
        samples.append((time.monotonic() - started, [w.rss_kib() for w in workers]))
    finally:
        await bus.stop()
        for worker in workers:
            worker.terminate()
        catcher.stop()
        drop_vhost(infra.vhost)
        await drop_database(infra.database_url)
    after_warm_up = next(kib for at, kib in samples if at >= min(WARM_UP_SECONDS, samples[-1][0]))
    final = samples[-1][1]
    growth = [(f - b) / b for b, f in zip(after_warm_up, final, strict=True)]
    print(f"users {sent} in {minutes} min at {rate}/s; RSS after warm-up {after_warm_up} KiB, at the end {final} KiB; "
          f"growth {', '.join(f'{g:+.1%}' for g in growth)} (allowed {ALLOWED_GROWTH:.0%})")
    return all(g < ALLOWED_GROWTH for g in growth)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--rate", type=float, default=25, help="one-user users.add commands per second")
    parser.add_argument("--every", type=float, default=60, help="seconds between RSS samples")
    args = parser.parse_args()
    raise SystemExit(0 if asyncio.run(soak(args.minutes, args.rate, args.every)) else 1)


if __name__ == "__main__":
    main()
