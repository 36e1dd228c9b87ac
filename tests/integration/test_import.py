"""`userprov import FILE`: a CSV or a pasted-format file sent as users.add commands whose ids
derive from the file, so that a run killed mid-way and started again adds no one twice; its
progress, summary, results file and exit status; a file refused before anything is sent; a dry run."""
from __future__ import annotations

import asyncio
import csv
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from contracts import routing
from tests.integration.conftest import address
from tests.support.infra import Infra
from tests.support.smtp import RecordingSmtpServer
from userprov_devtools.bus_client import BusClient
from userprov_devtools.waiting import eventually

HEADER = ["row", "email", "outcome", "invitation", "codes", "message"]


def import_command(amqp_url: str, *args: str) -> tuple[list[str], dict[str, str]]:
    return [sys.executable, "-m", "userprov", "import", *args], {**os.environ, "USERPROV_AMQP_URL": amqp_url}


def run_import(amqp_url: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    command, env = import_command(amqp_url, *args)
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)


def results_of(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as f:  # with the imported file's byte order mark, if it had one
        rows = list(csv.reader(f))
    assert rows[0] == HEADER
    return [dict(zip(HEADER, r, strict=True)) for r in rows[1:]]


def people_csv(path: Path, people: list[str]) -> Path:
    path.write_text("first_name,last_name,email\r\n" + "".join(f"Im,Port {n},{p}\r\n" for n, p in enumerate(people)), encoding="utf-8")
    return path


class TestKilledAndRunAgain:
    """An import interrupted (SIGINT) and killed (SIGKILL) mid-way, then run again, emails each person once."""

    async def test_interrupted_then_killed_then_finished(self, infra: Infra, smtp: RecordingSmtpServer, account, tmp_path: Path) -> None:
        await self._killed_and_run_again(infra, smtp, account, tmp_path, rows=1_200, per_command=300)

    @pytest.mark.soak
    async def test_20000_rows(self, infra: Infra, smtp: RecordingSmtpServer, account, tmp_path: Path) -> None:
        await self._killed_and_run_again(infra, smtp, account, tmp_path, rows=20_000, per_command=10_000)

    async def _killed_and_run_again(self, infra: Infra, smtp: RecordingSmtpServer, account, tmp_path: Path, rows: int,
                                    per_command: int) -> None:
        account_id = await account({"gotomeeting": rows})
        people = [f"import{n}.{account_id}@example.com" for n in range(rows)]
        file, results = people_csv(tmp_path / "people.csv", people), tmp_path / "results.csv"
        args = (str(file), "--account", account_id, "-p", "gotomeeting", "--results", str(results),
                "--rows-per-command", str(per_command))
        command, env = import_command(infra.amqp_url, *args)

        def emailed() -> int:
            return sum(bool(smtp.handler.to(p)) for p in people)

        for stop, after in ((signal.SIGINT, rows // 10), (signal.SIGKILL, rows // 3)):
            process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            await eventually(lambda: emailed() >= after, 120, interval=0.02, what=f"{after} emails")  # noqa: B023
            process.send_signal(stop)
            _, err = await asyncio.to_thread(process.communicate, timeout=30)
            assert process.returncode == (2 if stop == signal.SIGINT else -signal.SIGKILL), err
            assert emailed() < rows, "the import finished before it was stopped: nothing was tested"
            assert not results.exists()

        done = await asyncio.to_thread(run_import, infra.amqp_url, *args, timeout=300)
        assert done.returncode == 0, done.stderr
        assert [len(smtp.handler.to(p)) for p in people] == [1] * rows  # each person emailed once
        found = results_of(results)
        assert len(found) == rows
        assert [r["row"] for r in found] == [str(n) for n in range(2, rows + 2)]  # each row's line in the file
        assert {r["outcome"] for r in found} == {"accepted"} and [r["email"] for r in found] == people
        assert "command(s) had been sent by an earlier run" in done.stdout
        assert f"created {rows}/{rows}, emailed {rows}/{rows}" in done.stdout  # plain progress lines: stdout is no terminal


class TestFiles:
    """What Excel and Google Sheets export is read; a file with a bad line is refused before anything is sent."""

    async def test_a_csv_with_a_byte_order_mark(self, infra: Infra, bus: BusClient, smtp: RecordingSmtpServer, account,
                                                tmp_path: Path) -> None:
        account_id = await account({"gotomeeting": 5})
        ada, alan = address("ada"), address("alan")
        file = tmp_path / "excel.csv"
        file.write_bytes(("\ufefffirst_name,last_name,email,external_id\r\n"
                          f'Ada,"Lovelace, Countess",{ada},E-1\r\nAlan,Turing,{alan},\r\n\r\n').encode())
        done = await asyncio.to_thread(run_import, infra.amqp_url, str(file), "-a", account_id, "-p", "gotomeeting",
                                       "--results", str(tmp_path / "out.csv"))
        assert done.returncode == 0, done.stderr
        found = await bus.query(routing.USERS_GET, {"account_id": account_id, "email": ada})
        assert (found["first_name"], found["last_name"], found["external_id"]) == ("Ada", "Lovelace, Countess", "E-1")
        assert [(r["row"], r["outcome"]) for r in results_of(tmp_path / "out.csv")] == [("2", "accepted"), ("3", "accepted")]
        assert (tmp_path / "out.csv").read_bytes().startswith(b"\xef\xbb\xbfrow,")  # so that Excel reads it as UTF-8

    async def test_a_bad_line_is_named_and_nothing_is_sent(self, tmp_path: Path) -> None:
        file = tmp_path / "pasted.txt"
        file.write_text("Ada Lovelace ada@example.com\nAlan Turing alan@example.com\nGrace\n", encoding="utf-8")
        # an address where no broker listens: had it tried to send, it would say so
        done = await asyncio.to_thread(run_import, "amqp://guest:guest@127.0.0.1:1/", str(file), "-a", "acme", timeout=30)
        assert done.returncode == 2
        assert "line 3: Cannot read this entry" in done.stderr and "nothing was sent" in done.stderr, done.stderr
        assert "RabbitMQ" not in done.stderr and "connect" not in done.stderr.lower(), done.stderr


class TestDryRun:
    """--dry-run answers each row with what would happen, and adds and emails no one."""

    async def test_dry_run(self, infra: Infra, bus: BusClient, smtp: RecordingSmtpServer, account, tmp_path: Path) -> None:
        account_id = await account({"gotomeeting": 2})
        people = [address(f"dry{n}") for n in range(3)]
        file = tmp_path / "pasted.txt"
        file.write_text("".join(f"Dry Run{n} {p}\n" for n, p in enumerate(people)), encoding="utf-8")
        done = await asyncio.to_thread(run_import, infra.amqp_url, str(file), "-a", account_id, "-p", "gotomeeting", "--dry-run",
                                       "--results", str(tmp_path / "out.csv"))
        assert done.returncode == 1, done.stderr  # the third row has no free seat
        found = results_of(tmp_path / "out.csv")
        assert [(r["row"], r["outcome"], r["invitation"], r["codes"]) for r in found] == [
            ("1", "accepted", "welcome", ""), ("2", "accepted", "welcome", ""), ("3", "rejected", "", "no_free_seat")]
        assert "dry run: 3 row(s): 2 would be added" in done.stdout
        assert "seats of gotomeeting: 3 needed, 2 free (too few)" in done.stdout
        account_now = await bus.query(routing.ACCOUNTS_GET, {"account_id": account_id})
        assert account_now["licences"]["gotomeeting"]["used"] == 0 and not account_now["members"]
        assert not any(smtp.handler.to(p) for p in people)


@pytest.mark.bench
class TestImportThroughput:
    """`userprov import` of 10,000 rows against a plain users.add of the same rows, each until every email is sent."""

    async def test_import_against_a_plain_users_add(self, infra: Infra, bus: BusClient, smtp: RecordingSmtpServer, account,
                                                    tmp_path: Path) -> None:
        rows = 10_000
        plain_account, import_account = await account({"gotomeeting": rows}), await account({"gotomeeting": rows})
        plain = [f"plain{n}.{plain_account}@example.com" for n in range(rows)]
        imported = [f"import{n}.{import_account}@example.com" for n in range(rows)]
        loop = asyncio.get_running_loop()

        started = loop.time()
        done = await asyncio.to_thread(run_import, infra.amqp_url, str(people_csv(tmp_path / "people.csv", imported)),
                                       "-a", import_account, "-p", "gotomeeting", "--results", str(tmp_path / "out.csv"), timeout=900)
        import_seconds = loop.time() - started
        assert done.returncode == 0, done.stderr
        assert all(smtp.handler.to(p) for p in imported)

        started = loop.time()
        command_id = await bus.publish(routing.USERS_ADD, {"account_id": plain_account, "products": ["gotomeeting"],
                                              "users": [{"first_name": "Im", "last_name": f"Port {n}", "email": p}
                                                        for n, p in enumerate(plain)]})
        await eventually(lambda: all(smtp.handler.to(p) for p in plain), 600, interval=0.2, what="the plain add's emails")
        plain_seconds = loop.time() - started

        started = loop.time()
        for _ in range(20):
            await bus.query(routing.COMMANDS_GET, {"command_id": command_id, "include_events": False})
        polled = (loop.time() - started) / 20
        started = loop.time()
        for _ in range(5):
            await bus.query(routing.COMMANDS_GET, {"command_id": command_id})
        whole = (loop.time() - started) / 5
        print(f"\ncommands.get of a 10,000-row users.add: {polled * 1000:.0f} ms polled without its events,"
              f" {whole * 1000:.0f} ms with them")
        print(f"\n{rows} rows until every email: users.add {plain_seconds:.1f} s ({rows / plain_seconds:.0f}/s),"
              f" userprov import {import_seconds:.1f} s ({rows / import_seconds:.0f}/s)")
