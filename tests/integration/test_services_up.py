"""scripts/services-up never sets a password: when the machine's PostgreSQL does not take
postgres/postgres over TCP (a fresh install), the demo and the tests get a PostgreSQL cluster of
userprov's own, made with initdb, and find it in .local/services.env. Here it is asked for with
USERPROV_OWN_POSTGRES=1, in a copy of the scripts, on a free port."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
import uuid
from pathlib import Path

import asyncpg

from userprov.db.connection import drop_database
from userprov.db.migrate import available_migrations, migrate
from userprov_devtools.ports import free_port

SCRIPTS = Path(__file__).parents[2] / "scripts"


def as_postgres(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def machine_password_hash() -> str:
    """The machine's postgres user's password hash, read over its Unix socket (not over TCP,
    whose authentication may be the very problem)."""
    return subprocess.run(as_postgres(["psql", "-qAt", "-c", "SELECT coalesce(rolpassword, '-') FROM pg_authid WHERE rolname = 'postgres'"]),
                          capture_output=True, text=True, check=True, timeout=30).stdout


async def test_a_cluster_of_its_own_changes_nothing_of_the_machines(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    for name in ("services-up", "install-missing"):
        shutil.copy2(SCRIPTS / name, checkout / "scripts" / name)
    data = Path(tempfile.mkdtemp(prefix="userprov-own-postgres-"))  # under /tmp: user postgres reaches it (tmp_path it may not)
    env = {**os.environ, "USERPROV_OWN_POSTGRES": "1", "USERPROV_OWN_POSTGRES_DIR": str(data),
           "USERPROV_OWN_POSTGRES_PORT": str(free_port())}
    env.pop("USERPROV_DATABASE_URL", None)
    before = machine_password_hash()
    try:
        first = subprocess.run([str(checkout / "scripts" / "services-up")], env=env, capture_output=True, text=True, timeout=300)
        assert first.returncode == 0, first.stdout + first.stderr
        assert "making a PostgreSQL cluster of userprov's own" in first.stdout and "PostgreSQL and RabbitMQ are running" in first.stdout
        written = checkout / ".local" / "services.env"
        assert stat.S_IMODE(written.stat().st_mode) == 0o600  # it holds the cluster's password
        [server] = [line.split("=", 1)[1] for line in written.read_text().splitlines() if line.startswith("USERPROV_DEV_POSTGRES=")]
        password = (data / "password").read_text()
        assert server == f"postgresql://postgres:{password}@127.0.0.1:{env['USERPROV_OWN_POSTGRES_PORT']}"
        assert password not in first.stdout + first.stderr and "postgres:***@" in first.stdout

        # the workers' schema goes on it (its lower() is the machine's, Unicode-aware: emails are checked with it)
        url = f"{server}/userprov_own_{uuid.uuid4().hex[:8]}"
        assert await migrate(url, create_database=True) == [name for _, name, _ in available_migrations()]
        connection = await asyncpg.connect(url)
        try:
            assert await connection.fetchval("SELECT lower('ÉMILIE')") == "émilie"
        finally:
            await connection.close()
        await drop_database(url)
        with_wrong_password = server.replace(password, "postgres")
        try:
            await asyncpg.connect(f"{with_wrong_password}/postgres")
            raise AssertionError("the cluster took a wrong password")
        except asyncpg.InvalidPasswordError:
            pass

        again = subprocess.run([str(checkout / "scripts" / "services-up")], env=env, capture_output=True, text=True, timeout=300)
        assert again.returncode == 0 and "making" not in again.stdout and "starting" not in again.stdout, again.stdout + again.stderr
        assert server in written.read_text()
        assert machine_password_hash() == before
    finally:
        binaries = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name))
        subprocess.run(as_postgres([str(binaries[-1]), "-D", str(data / "data"), "-m", "immediate", "-w", "stop"]),
                       capture_output=True, timeout=60)
        shutil.rmtree(data, ignore_errors=True)
