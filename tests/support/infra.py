"""A fresh PostgreSQL database and a fresh RabbitMQ vhost per test session."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import aio_pika

from contracts import routing

SERVICES_ENV = Path(__file__).resolve().parents[2] / ".local" / "services.env"


def _dev_postgres() -> str:
    """The PostgreSQL server the tests make their databases on: USERPROV_DEV_POSTGRES, which
    scripts/services-up writes to .local/services.env (the machine's on 127.0.0.1:5432, or a
    cluster of userprov's own when the machine's asks for a password it does not have)."""
    if os.environ.get("USERPROV_DEV_POSTGRES"):
        return os.environ["USERPROV_DEV_POSTGRES"]
    if SERVICES_ENV.is_file():
        for line in SERVICES_ENV.read_text().splitlines():
            if line.startswith("USERPROV_DEV_POSTGRES="):
                return line.partition("=")[2].strip()
    return "postgresql://postgres:postgres@127.0.0.1:5432"


POSTGRES = _dev_postgres()


@dataclass(frozen=True)
class Infra:
    database_url: str
    amqp_url: str
    vhost: str


def rabbitmqctl(*args: str) -> str:
    executable = shutil.which("rabbitmqctl")
    if executable is None:
        raise RuntimeError("rabbitmqctl is needed to create the test vhost")
    done = subprocess.run([executable, *args], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {done.stderr or done.stdout}")
    return done.stdout


_in_background: list[tuple[tuple[str, ...], subprocess.Popen[str]]] = []


def rabbitmqctl_in_background(*args: str) -> None:
    """Starts `rabbitmqctl` for a clean-up nothing waits on (dropping a test's vhost, its user): each
    takes the best part of a second, mostly starting the Erlang VM. `finish_in_background` waits
    for them and fails if one did."""
    executable = shutil.which("rabbitmqctl")
    if executable is None:
        raise RuntimeError("rabbitmqctl is needed to clean up after a test")
    _collect(lambda process: process.poll() is not None)  # those that ended: no zombies pile up over a session
    _in_background.append((args, subprocess.Popen([executable, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)))


def finish_in_background() -> None:
    """Waits for every `rabbitmqctl_in_background` so far, and drops the vhost made ahead for a
    `create_infra` that did not come; fails with what those that failed said."""
    for vhost, making in _spares:
        making.communicate(timeout=60)
        if making.returncode == 0:
            rabbitmqctl_in_background("delete_vhost", vhost)
    _spares.clear()
    _collect(lambda _: True)
    failed, _failed[:] = list(_failed), []
    if failed:
        raise RuntimeError(f"clean-ups failed: {failed}")


_failed: list[str] = []


def _collect(chosen: Callable[[subprocess.Popen[str]], bool]) -> None:
    for entry in [e for e in _in_background if chosen(e[1])]:
        args, process = entry
        output, _ = process.communicate(timeout=60)
        if process.returncode != 0:
            _failed.append(f"rabbitmqctl {' '.join(args)}: {output}")
        _in_background.remove(entry)


# A vhost made ahead for the next create_infra (its two rabbitmqctl calls, about 0.8 s, in the
# background): a test that needs a vhost of its own takes it made, or waits only for what is left.
_spares: list[tuple[str, subprocess.Popen[str]]] = []
_MAKE_VHOST = '"$0" add_vhost "$1" && "$0" set_permissions -p "$1" guest ".*" ".*" ".*"'


def _make_spare() -> None:
    executable = shutil.which("rabbitmqctl")
    if executable is None:
        raise RuntimeError("rabbitmqctl is needed to create the test vhost")
    vhost = f"userprov_test_{uuid.uuid4().hex[:10]}"
    _spares.append((vhost, subprocess.Popen(["sh", "-c", _MAKE_VHOST, executable, vhost], stdout=subprocess.PIPE,
                                            stderr=subprocess.STDOUT, text=True)))


def _new_vhost() -> str:
    """A vhost of its own where guest may do anything: the one made ahead, or made now if that failed."""
    if not _spares:
        _make_spare()
    vhost, making = _spares.pop(0)
    making.communicate(timeout=60)
    _make_spare()  # for the next one
    if making.returncode != 0:  # made now, under another name: this one may exist half made (or not at all)
        subprocess.run([shutil.which("rabbitmqctl") or "rabbitmqctl", "delete_vhost", vhost], capture_output=True, timeout=60)
        vhost = f"userprov_test_{uuid.uuid4().hex[:10]}"
        rabbitmqctl("add_vhost", vhost)  # says why, if it fails again
        rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    return vhost


def create_infra(pg_base: str = POSTGRES, amqp_base: str = "amqp://guest:guest@127.0.0.1:5672") -> Infra:
    vhost = _new_vhost()
    suffix = vhost.removeprefix("userprov_test_")
    return Infra(f"{pg_base}/userprov_test_{suffix}", f"{amqp_base}/{vhost}", vhost)


def close_connections(vhost: str) -> None:
    rabbitmqctl("close_all_connections", "-p", vhost, "closed by a test")


def drop_vhost(vhost: str) -> None:
    rabbitmqctl("delete_vhost", vhost)


def drop_vhost_in_background(vhost: str) -> None:
    """drop_vhost without waiting for it (a test's own vhost, once its connections are closed)."""
    rabbitmqctl_in_background("delete_vhost", vhost)


async def declare_exchanges_without_workers(amqp_url: str) -> None:
    """userprov's two public exchanges on a vhost where no worker runs: commands are routed (to a
    queue nothing consumes) and confirmed, and nobody answers them."""
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        commands = await channel.declare_exchange(routing.COMMANDS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
        await channel.declare_exchange(routing.EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
        waiting = await channel.declare_queue("nobody-consumes", durable=True)
        await waiting.bind(commands, "#")
    finally:
        await connection.close()


def close_worker_connections(vhost: str) -> int:
    """Closes the workers' connections (`userprov <services> pid=N`), not the front doors'; returns how many."""
    return _close_connections(vhost, lambda name: name.startswith("userprov ") and " pid=" in name)


def close_connections_named(vhost: str, name: str) -> int:
    """Closes the vhost's connections with this client-given name (a front door's); returns how many."""
    return _close_connections(vhost, lambda given: given == name)


def _close_connections(vhost: str, chosen: Callable[[str], bool]) -> int:
    closed = 0
    # list_connections lists every vhost's connections whatever -p says: filter on the column
    for line in rabbitmqctl("list_connections", "-s", "pid", "vhost", "client_properties").splitlines():
        pid, on_vhost, properties = (line.split("\t", 2) + ["", ""])[:3]
        name = properties.split('{"connection_name","', 1)[1].split('"', 1)[0] if '{"connection_name","' in properties else ""
        if on_vhost == vhost and chosen(name):
            rabbitmqctl("close_connection", pid.strip(), "closed by a test")
            closed += 1
    return closed


def message_counts(vhost: str) -> dict[str, int]:
    listed = json.loads(rabbitmqctl("list_queues", "-p", vhost, "--formatter", "json", "name", "messages"))
    return {q["name"]: int(q["messages"]) for q in listed}


async def ready_messages(amqp_url: str, queue: str) -> int:
    """The messages ready in a queue as the broker counts them at this moment (a passive
    queue.declare); list_queues gives a quorum queue's counts from statistics a few seconds old.
    Unacknowledged messages are not counted: in a queue nothing consumes (a parking queue), all."""
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        return int(declared.declaration_result.message_count or 0)
    finally:
        await connection.close()


async def consumers_now(amqp_url: str, queues: Iterable[str]) -> dict[str, int]:
    """Each queue's consumers as the broker counts them at this moment (a passive queue.declare;
    0 for a queue that does not exist): list_queues counts a quorum queue's consumers from
    statistics a few seconds old."""
    connection = await aio_pika.connect(amqp_url)
    try:
        counts = {}
        for queue in queues:
            channel = await connection.channel()
            try:
                declared = await channel.declare_queue(queue, passive=True)
                counts[queue] = int(declared.declaration_result.consumer_count or 0)
            except aio_pika.exceptions.ChannelNotFoundEntity:
                counts[queue] = 0
            finally:
                if not channel.is_closed:
                    await channel.close()
        return counts
    finally:
        await connection.close()


def restart_broker() -> None:
    """Stops and starts the RabbitMQ application on this machine's node (every vhost's connections drop)."""
    rabbitmqctl("stop_app")
    rabbitmqctl("start_app")
    rabbitmqctl("await_startup", "--timeout", "120")


def delete_queue(vhost: str, queue: str) -> None:
    rabbitmqctl("delete_queue", "-p", vhost, queue)
