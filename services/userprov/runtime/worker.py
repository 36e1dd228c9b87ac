"""One worker process: wires settings, PostgreSQL and RabbitMQ to the routes it is handed
(by userprov.app, which knows the services), and runs them until SIGTERM."""
from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial

import structlog
from aio_pika.abc import AbstractIncomingMessage

from contracts import routing
from userprov import __version__
from userprov.db.connection import DatabaseProbe, create_pool
from userprov.db.migrate import DatabaseMissing, migrate, wait_for_schema
from userprov.runtime import tracing
from userprov.runtime.aio import finish_or_cancel
from userprov.runtime.broker import BrokerSession, ConsumerSpec
from userprov.runtime.circuit import Circuit
from userprov.runtime.dispatch import Dispatcher, Route, Signal
from userprov.runtime.health import Readiness, serve_health, watch_readiness
from userprov.runtime.housekeeping import run_housekeeping
from userprov.runtime.lanes import Lane, lower_cpu_priority
from userprov.runtime.metrics import serve_metrics
from userprov.runtime.outbox import Committed, OutboxRelay, OutgoingMessage
from userprov.runtime.parking import Why
from userprov.runtime.queue_watch import watch_queues, watch_waiting_work
from userprov.runtime.scheduling import Scheduler
from userprov.settings import Settings, removed_settings

log = structlog.get_logger()

# After the drain (settings.shutdown_grace_seconds): the outbox flush, then the pool's close.
OUTBOX_FLUSH_SECONDS = 10.0
POOL_CLOSE_SECONDS = 10.0


def stop_seconds(settings: Settings) -> float:
    """The longest a worker takes from SIGTERM to exit: what a container's grace period must allow."""
    return settings.shutdown_grace_seconds + OUTBOX_FLUSH_SECONDS + POOL_CLOSE_SECONDS


@dataclass(frozen=True)
class ServiceRun:
    """What a process runs of one service: its routes by routing key and its schedulers."""

    routes: Mapping[str, Route]
    schedulers: Sequence[Scheduler] = ()
    circuits: Sequence[Circuit] = ()

    @property
    def has_bulk_commands(self) -> bool:
        """Whether some of its commands can be bulk work, handed to the bulk lane through its bulk queue."""
        return any(route.large is not None for route in self.routes.values())


def local_signals(services: Iterable[ServiceRun]) -> Callable[[Sequence[Committed]], Sequence[Committed]]:
    """Hands each committed signal for a service of this process to it at once, beside its
    publication: work one service commits for another in the same process starts without a
    round trip through RabbitMQ. The published copy still wakes the other processes; when this
    process took the work at once (small work), the copy says so and they leave it (should this
    process die first, they find it at their next poll)."""
    handlers = {key: route for service in services for key, route in service.routes.items() if isinstance(route.handler, Signal)}

    def deliver(rows: Sequence[Committed]) -> Sequence[Committed]:
        delivered = []
        for row in rows:
            route = handlers.get(row.message.routing_key)
            if route is not None and row.message.exchange == routing.INTERNAL_EXCHANGE:
                try:
                    if route.handler.notify(route.model.model_validate_json(row.message.body)):
                        row = replace(row, message=replace(row.message, taken_in_process=True))
                except Exception as error:  # noqa: BLE001 - the published copy still announces it
                    log.warning("local_signal_failed", routing_key=row.message.routing_key, error=repr(error))
            delivered.append(row)
        return delivered

    return deliver


async def run_worker(settings: Settings, services: Mapping[str, ServiceRun]) -> int:
    """`services`: each service to run in this process."""
    trusted = settings.trusted()
    log.info("worker_starting", version=__version__, services=list(services), lane=str(settings.lane), **settings.endpoints(),
             # who may act without requested_by: unset trusts every publisher (set USERPROV_TRUSTED_PUBLISHERS)
             trusted_publishers=sorted(trusted) if trusted is not None else "every publisher")
    for name, action in removed_settings(os.environ).items():
        log.warning("setting_removed", setting=name, action=action)
    if settings.lane is Lane.BULK:
        if not any(service.schedulers or service.has_bulk_commands for service in services.values()):
            log.error("bulk_lane_without_batches", services=list(services),
                      action="run user-creation, account-lookup or invitation-mailing in the bulk lane: it takes no other work")
            return 2
        log.info("bulk_lane", niceness=lower_cpu_priority(settings.bulk_niceness))
    elif settings.lane is Lane.INTERACTIVE:
        log.info("interactive_lane", batches="left to processes in the bulk lane: run at least one")
    tracing.setup(settings.tracing, "userprov-" + "-".join(services) if len(services) == 1 else "userprov")
    if settings.migrate_on_start:
        try:
            await migrate(settings.database_url)  # never creates the database: a typo must not start on an empty one
        except DatabaseMissing as error:
            log.error("database_missing", error=str(error))
            return 2
    else:
        await wait_for_schema(settings.database_url)
    pool = await create_pool(settings.database_url, settings.database_pool_size, settings.database_statement_cache_size)
    session: BrokerSession | None = None

    async def publish(messages: Sequence[OutgoingMessage]) -> None:
        assert session is not None
        await session.publish(messages)

    async def park(message: AbstractIncomingMessage, service: str, why: Why, trusted: bool) -> None:
        assert session is not None
        await session.park(message, service, why, trusted)

    async def hand_off(message: AbstractIncomingMessage, trusted: bool) -> None:
        assert session is not None
        await session.hand_off(message, trusted)

    database = DatabaseProbe(settings.database_url)
    database_circuit = Circuit("database", database, settings.circuit_probe_seconds)
    relay = OutboxRelay(pool, publish, settings.outbox_batch_size, settings.outbox_poll_seconds, settings.outbox_handover_seconds)
    signals_here = local_signals(services.values())

    def committed(rows: Sequence[Committed]) -> None:
        relay.committed(signals_here(rows))
    dispatcher = partial(
        Dispatcher,
        pool=pool,
        delivery_limit=settings.delivery_limit,
        transient_retry_seconds=settings.transient_retry_seconds,
        transient_backoff_max=settings.transient_backoff_max_seconds,
        on_commit=committed,
        publish=publish,
        park=park,
        database=database_circuit,
        trusted=trusted,
    )
    consumed = [  # (dispatcher, whether this lane consumes its queue)
        (dispatcher(name, service.routes,
                    hand_off=hand_off if settings.lane is Lane.INTERACTIVE and service.has_bulk_commands else None),
         settings.lane.consumes(service.routes, Signal))
        for name, service in services.items()
    ]
    consumed += [(dispatcher(name, service.routes, queue=routing.bulk_queue_name(name)), True)
                 for name, service in services.items() if settings.lane.takes_batches and service.has_bulk_commands]
    dispatchers = [d for d, _ in consumed]
    schedulers = [scheduler for service in services.values() for scheduler in service.schedulers]
    session = BrokerSession(
        settings.amqp_url,
        [ConsumerSpec(d.queue, settings.prefetch(d.service), d.on_message) for d, consumes in consumed if consumes],
        settings.delivery_limit,
        settings.reconnect_backoff_max_seconds,
    )

    circuits = [database_circuit, *(c for service in services.values() for c in service.circuits)]
    # Every handler needs PostgreSQL: while it is down the process takes no delivery. A service's
    # own dependency (SMTP, for mailing) is its scheduler's to wait for: the other services of the
    # process, and their queries, go on (readiness still says it is down).
    database_circuit.on_change(partial(session.pause, database_circuit.name))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    serve_metrics(settings.metrics_port)
    readiness = Readiness(lambda: session.consuming, database, lambda: relay.lag_seconds, settings.ready_outbox_lag_seconds,
                          circuits, broker_node=lambda: session.node, stale_after=settings.ready_check_seconds * 3 + 5)
    health = await serve_health(settings.health_port, readiness) if settings.health_port else None
    session_task = asyncio.create_task(session.run(), name="broker")
    relay_task = asyncio.create_task(relay.run(), name="outbox-relay")
    queue_watch = asyncio.create_task(watch_queues(session, settings.queue_watch_seconds), name="queue-watch")
    waiting_watch = asyncio.create_task(watch_waiting_work(pool, schedulers, settings.queue_watch_seconds), name="waiting-watch")
    ready_watch = asyncio.create_task(watch_readiness(readiness, settings.ready_check_seconds), name="ready-watch")
    scheduling = [asyncio.create_task(s.run(pool, committed), name=s.name) for s in schedulers]
    housekeeping = asyncio.create_task(
        run_housekeeping(pool, settings.inbox_retention_days, settings.housekeeping_interval_seconds,
                         settings.audit_retention_days), name="housekeeping"
    )
    log.info("worker_started", services=list(services))
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({stopper, session_task, relay_task, *scheduling}, return_when=asyncio.FIRST_COMPLETED)
    failed = [t for t in done if t is not stopper]
    for task in failed:
        log.error("worker_component_stopped", component=task.get_name(), error=repr(task.exception()))

    log.info("worker_stopping")
    await session.stop_consuming()
    for scheduler in schedulers:
        scheduler.stop()
    drained = all([await d.drain(settings.shutdown_grace_seconds) for d in dispatchers])
    # what the schedulers do not finish in time lapses and is taken by other processes
    drained = await finish_or_cancel(scheduling, settings.shutdown_grace_seconds) and drained
    relay.stop()
    await asyncio.gather(relay_task, return_exceptions=True)
    flushed = await relay.flush(timeout=OUTBOX_FLUSH_SECONDS)
    await session.close()
    await asyncio.gather(session_task, return_exceptions=True)
    stopper.cancel()
    housekeeping.cancel()
    queue_watch.cancel()
    waiting_watch.cancel()
    ready_watch.cancel()
    await asyncio.gather(housekeeping, queue_watch, waiting_watch, ready_watch, return_exceptions=True)
    for circuit in circuits:
        circuit.stop()
    await database.close()
    try:
        await asyncio.wait_for(pool.close(), POOL_CLOSE_SECONDS)
    except TimeoutError:
        log.warning("database_pool_close_timed_out")
        pool.terminate()
    if health is not None:
        health.close()
    tracing.shutdown()
    log.info("worker_stopped", drained=drained, outbox_flushed=flushed)
    return 1 if failed else 0
