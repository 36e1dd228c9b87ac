"""A RabbitMQ cluster of its own: three nodes of Debian's RabbitMQ on 127.0.0.1, each with its
own node name, ports and data directory, joined to one another and never to this machine's
broker (rabbit@localhost, which the test suite uses). Only the nodes these start are ever
stopped or killed, and their folder is removed at the end."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.processes import alive, pid_in
from userprov_devtools.ports import free_port

SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
RABBITMQ_HOME = "/var/lib/rabbitmq"  # its Erlang cookie, which the command-line tools use too


class RabbitNode:
    def __init__(self, folder: Path, name: str) -> None:
        self.node = f"{name}@localhost"
        self.port = free_port()
        self.dist_port = free_port()
        self.base = folder / name
        self.base.mkdir()
        (self.base / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = 127.0.0.1:{self.port}\n"
            "cluster_partition_handling = pause_minority\n"
            "log.file.level = warning\n"
        )
        (self.base / "enabled_plugins").write_text("[].\n")  # no management listener to clash with the machine's
        (self.base / "rabbitmq-env.conf").write_text("")  # not the machine's, which names rabbit@localhost
        _own(self.base)

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}"

    def _env(self) -> dict[str, str]:
        return {
            "HOME": RABBITMQ_HOME,
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "RABBITMQ_CONFIG_FILE": str(self.base / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
            "RABBITMQ_CONF_ENV_FILE": str(self.base / "rabbitmq-env.conf"),
            "RABBITMQ_PID_FILE": str(self.base / "node.pid"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_FLAGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def start(self, timeout: float = 120) -> None:
        command = [str(SERVER), "-detached"]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "rabbitmq", "--", *command]
        subprocess.run(command, env=self._env(), cwd=RABBITMQ_HOME, check=True, timeout=60,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # `wait` first: await_startup gives up at once on a node not yet registered with epmd
        self.ctl("wait", str(self.base / "node.pid"), "--timeout", str(int(timeout)), timeout=timeout + 30)
        self.ctl("await_startup", "--timeout", str(int(timeout)), timeout=timeout + 30)

    def kill(self) -> None:
        """SIGKILL to the node's Erlang VM, as a machine that dies."""
        known = self.pid
        for pid in [known] if known is not None else self._started_here():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 30
        while self.running and time.monotonic() < deadline:
            time.sleep(0.1)

    def stop(self) -> None:
        """A clean shutdown of the node (its VM included)."""
        if self.running:
            self.ctl("shutdown", timeout=120)

    def _started_here(self) -> list[int]:
        """Processes started with this node's data directory (before it wrote its pid file)."""
        mark = f"RABBITMQ_MNESIA_BASE={self.base / 'mnesia'}".encode()
        found = []
        for environ in Path("/proc").glob("[0-9]*/environ"):
            try:
                if mark in environ.read_bytes().split(b"\0"):
                    found.append(int(environ.parent.name))
            except OSError:
                continue
        return found

    @property
    def pid(self) -> int | None:
        return pid_in(self.base / "node.pid")

    @property
    def running(self) -> bool:
        return alive(self.pid)

    def ctl(self, *args: str, timeout: float = 60) -> str:
        done = subprocess.run(["rabbitmqctl", "-n", self.node, *args], capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl -n {self.node} {' '.join(args)} failed: {done.stderr or done.stdout}")
        return done.stdout

    def queues(self, vhost: str) -> list[dict[str, Any]]:
        """Each queue's name, messages, leader and members, as this node sees them."""
        return json.loads(self.ctl("list_queues", "-p", vhost, "--formatter", "json", "name", "messages", "leader", "members"))


def _own(path: Path) -> None:
    if os.geteuid() == 0:
        for folder, _, files in os.walk(path):
            shutil.chown(folder, "rabbitmq", "rabbitmq")
            for name in files:
                shutil.chown(Path(folder) / name, "rabbitmq", "rabbitmq")


class RabbitCluster:
    def __init__(self, nodes: list[RabbitNode]) -> None:
        self.nodes = nodes

    def url(self, vhost: str, first: int = 0) -> str:
        """Every node, starting from the `first`: processes spread over the nodes."""
        order = self.nodes[first:] + self.nodes[:first]
        return ",".join(f"{n.url}/{vhost}" for n in order)

    def any_running(self, besides: set[RabbitNode] | frozenset[RabbitNode] = frozenset()) -> RabbitNode:
        for node in self.nodes:
            if node.running and node not in besides:
                return node
        raise RuntimeError("no node of the cluster is running")

    def add_vhost(self, vhost: str) -> None:
        node = self.any_running()
        node.ctl("add_vhost", vhost)
        node.ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")


@contextmanager
def rabbit_cluster(size: int = 3, prefix: str = "userprov-cluster") -> Iterator[RabbitCluster]:
    """`size` nodes clustered together; all stopped and their folder removed at the end."""
    if not SERVER.exists():
        raise AssertionError("RabbitMQ is not installed (Debian package rabbitmq-server)")
    folder = Path(tempfile.mkdtemp(prefix=f"{prefix}-"))
    _own(folder)
    tag = folder.name.rsplit("-", 1)[-1].lower()
    nodes = [RabbitNode(folder, f"{prefix}-{tag}-{n + 1}") for n in range(size)]
    try:
        for node in nodes:
            node.start()
        for node in nodes[1:]:
            node.ctl("stop_app")
            node.ctl("join_cluster", nodes[0].node, timeout=120)
            node.ctl("start_app", timeout=120)
        yield RabbitCluster(nodes)
    finally:
        for node in nodes:
            node.kill()  # their data goes with the folder: nothing to shut down cleanly for
        shutil.rmtree(folder, ignore_errors=True)
