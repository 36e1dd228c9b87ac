"""PostgreSQL servers of their own (Debian's binaries), each in its own data directory and on
its own port: a primary and a synchronous streaming replica, to fail over between. Only what
these start is ever stopped, and their folder is removed at the end."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg

from tests.support.processes import alive, pid_in
from userprov_devtools.ports import free_port


def _bin_dir() -> Path:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if not versions:
        raise AssertionError("PostgreSQL's server binaries are not installed (Debian package postgresql)")
    return versions[-1].parent


def _as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, its commands run as user postgres."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _run(command: list[str], timeout: float = 60) -> None:
    done = subprocess.run(_as_postgres(command), capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise AssertionError(f"{Path(command[0]).name} failed ({done.returncode}): {done.stderr[-2000:] or done.stdout[-2000:]}")


class PostgresServer:
    """One server: `data` its data directory, `port` on 127.0.0.1."""

    def __init__(self, folder: Path, name: str, port: int) -> None:
        self.name = name
        self.port = port
        self.data = folder / name
        self._folder = folder
        self._bin = _bin_dir()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@{self.host}/{database}"

    def init_primary(self) -> None:
        _run([str(self._bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8",
              "--locale=C"])
        self._configure(
            "wal_level = replica\nmax_wal_senders = 10\nwal_keep_size = '512MB'\nhot_standby = on\n"
            "max_connections = 200\nshared_buffers = '128MB'\n"
            # the machine may crash only as a process here: the OS keeps what was written
            "fsync = off\nfull_page_writes = off\n"
            "wal_sender_timeout = '5s'\nwal_receiver_timeout = '5s'\nwal_receiver_status_interval = '1s'\n"
        )

    def init_replica_of(self, primary: PostgresServer) -> None:
        """A base backup of `primary` that streams from it (its data directory made anew)."""
        shutil.rmtree(self.data, ignore_errors=True)
        _run([str(self._bin / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres", "-D", str(self.data),
              "-R", "-X", "stream", "-c", "fast", "--no-sync"], timeout=120)
        # streaming as this name: the primary's synchronous_standby_names may name it
        with (self.data / "postgresql.auto.conf").open("a") as conf:
            conf.write(f"primary_conninfo = 'host=127.0.0.1 port={primary.port} user=postgres application_name={self.name}'\n")
        self._configure("")

    def _configure(self, settings: str) -> None:
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{self._folder}'\n"
                       "logging_collector = off\n" + settings)

    def start(self) -> None:
        _run([str(self._bin / "pg_ctl"), "-D", str(self.data), "-l", str(self._folder / f"{self.name}.log"), "-w", "-t", "60", "start"],
             timeout=90)

    def stop(self, mode: str = "fast") -> None:
        if self.running:
            _run([str(self._bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop"], timeout=90)

    def kill(self) -> None:
        """SIGKILL to the postmaster, as a machine that dies (its backends exit when they notice)."""
        pid = self.pid
        if pid is not None:
            os.kill(pid, signal.SIGKILL)

    def promote(self) -> None:
        _run([str(self._bin / "pg_ctl"), "-D", str(self.data), "-w", "-t", "60", "promote"], timeout=90)

    @property
    def pid(self) -> int | None:
        return pid_in(self.data / "postmaster.pid")

    @property
    def running(self) -> bool:
        return alive(self.pid)

    async def fence(self) -> None:
        """Read-only from now on, for every session (as a failover manager fences a primary)."""
        conn = await asyncpg.connect(self.url())
        try:
            await conn.execute("ALTER SYSTEM SET default_transaction_read_only = on")
            await conn.execute("SELECT pg_reload_conf()")
        finally:
            await conn.close()

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return (self._folder / f"{self.name}.log").read_text(errors="replace")[-chars:]
        except OSError:
            return ""


class PostgresPair:
    """A primary and a synchronous replica; after `fail_over`, the roles are swapped."""

    def __init__(self, primary: PostgresServer, replica: PostgresServer) -> None:
        self.primary = primary
        self.replica = replica

    def url(self, database: str) -> str:
        """Both hosts, for whichever takes writes: what a deployment gives the workers."""
        return f"postgresql://postgres@{self.primary.host},{self.replica.host}/{database}?target_session_attrs=read-write"

    @property
    def servers(self) -> list[PostgresServer]:
        return [self.primary, self.replica]


def make_synchronous(server: PostgresServer, standby: str | None) -> None:
    """Commits on `server` wait for `standby` to have the WAL (None: for no standby)."""
    value = f"'{standby}'" if standby else "''"
    _run([str(server._bin / "psql"), "-h", "127.0.0.1", "-p", str(server.port), "-U", "postgres", "-d", "postgres", "-qAt", "-c",
          f"ALTER SYSTEM SET synchronous_standby_names = {value}", "-c", "SELECT pg_reload_conf()"])


@contextmanager
def postgres_pair() -> Iterator[PostgresPair]:
    """A primary on a free port with a replica on another, streaming synchronously; both are
    stopped and their folder removed when the block ends."""
    folder = Path(tempfile.mkdtemp(prefix="userprov-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    servers = [PostgresServer(folder, "pg_a", free_port()), PostgresServer(folder, "pg_b", free_port())]
    try:
        primary, replica = servers
        primary.init_primary()
        primary.start()
        replica.init_replica_of(primary)
        replica.start()
        make_synchronous(primary, replica.name)
        yield PostgresPair(primary, replica)
    finally:
        for server in servers:
            try:
                server.stop("immediate")
            except Exception:  # noqa: BLE001 - the folder goes whatever the server did
                server.kill()
        shutil.rmtree(folder, ignore_errors=True)
