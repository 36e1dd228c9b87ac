"""A real PgBouncer (Debian's package) in transaction mode in front of the machine's PostgreSQL,
with fewer server connections than its clients open, so that their transactions share them."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from tests.support.infra import POSTGRES
from userprov_devtools.ports import free_port

BINARY = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


class PgBouncer:
    def __init__(self, port: int) -> None:
        self.port = port

    def url_for(self, database_url: str) -> str:
        """The same database, reached through this PgBouncer."""
        parts = urlsplit(database_url)
        credentials = parts.netloc.rpartition("@")[0]
        return urlunsplit(parts._replace(netloc=f"{credentials}@127.0.0.1:{self.port}" if credentials else f"127.0.0.1:{self.port}"))


@contextmanager
def pgbouncer(server_connections: int = 3) -> Iterator[PgBouncer]:
    """Runs PgBouncer on a free port until the block ends; every database of the tests' server
    is reachable through it, as user postgres."""
    if not os.access(BINARY, os.X_OK):
        raise AssertionError("PgBouncer is not installed: scripts/services-up installs it (Debian package pgbouncer)")
    port, server = free_port(), urlsplit(POSTGRES)
    login = "user=postgres" + (f" password={server.password}" if server.password else "")
    with tempfile.TemporaryDirectory(prefix="userprov-pgbouncer-") as folder:
        config = Path(folder) / "pgbouncer.ini"
        config.write_text(
            "[databases]\n"
            f"* = host=127.0.0.1 port={server.port or 5432} {login}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
            "auth_type = any\n"  # PgBouncer checks no client's password: the server is told the tests' own
            "pool_mode = transaction\n"
            f"default_pool_size = {server_connections}\nmin_pool_size = 0\nreserve_pool_size = 0\n"
            "max_client_conn = 500\n",
        )
        # PgBouncer refuses to run as root: as root it reads its file, then becomes postgres
        command = [BINARY, *(["-u", "postgres"] if os.geteuid() == 0 else []), str(config)]
        log = Path(folder) / "pgbouncer.log"
        with log.open("wb") as output:
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=output)
        try:
            _wait_until_listening(port, process, log)
            yield PgBouncer(port)
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def _wait_until_listening(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"PgBouncer exited with {process.returncode}: {log.read_text(errors='replace')[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"PgBouncer did not listen on {port} within {timeout} s")
