"""What an operator does from the shell with a started system: `userprov add` (a users.add and
each row's result), `userprov events` (the public events as JSON lines), the example of both in
docs/how-to/run-workers.md, and the servers' `--host` and `--port`."""
from __future__ import annotations

import asyncio
import doctest
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import unquote, urlsplit

import aio_pika

from contracts import routing
from tests.integration.conftest import address, unique
from tests.support.broker_users import WRITE, broker_user
from tests.support.flows import add_active_member, emails_to
from tests.support.infra import Infra, create_infra, declare_exchanges_without_workers, drop_vhost
from tests.support.isolated import isolated_worker
from tests.support.smtp import RecordingSmtpServer
from tests.support.workers import WorkerProcess
from userprov_devtools.bus_client import BusClient
from userprov_devtools.ports import free_port
from userprov_devtools.runnable_docs import Runner, Step, steps
from userprov_devtools.waiting import eventually

RUN_WORKERS = Path(__file__).parents[2] / "docs" / "how-to" / "run-workers.md"


def userprov(amqp_url: str, *args: str, stdin: str | None = None, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "userprov", *args], env={**os.environ, "USERPROV_AMQP_URL": amqp_url},
                          input=stdin, capture_output=True, text=True, timeout=timeout)


def table(stdout: str) -> list[list[str]]:
    """The rows of a printed table, each cut into its columns (two spaces or more apart)."""
    import re

    lines = stdout.splitlines()
    assert lines and lines[0].split() == ["ROW", "OUTCOME", "EMAIL", "ERRORS"], stdout
    return [re.split(r"\s{2,}", line.strip()) for line in lines[1:]]


class TestAdd:
    async def test_prints_each_rows_result_and_says_so_in_its_exit_status(self, bus: BusClient, infra: Infra, smtp: RecordingSmtpServer,
                                                                          account) -> None:
        account_id = await account({"gotomeeting": 2})
        ada, alan, grace = address("ada"), address("alan"), address("grace")
        pasted = f"Ada Lovelace {ada}; Alan Mathison Turing {alan}\nNobody broken; Grace Hopper {grace}"
        done = await asyncio.to_thread(userprov, infra.amqp_url, "add", account_id, pasted, "--product", "gotomeeting")
        assert done.returncode == 1, done.stderr  # a row was refused
        rows = table(done.stdout)
        assert [r[:3] for r in rows[:2]] == [["1", "accepted", ada], ["2", "accepted", alan]]
        assert rows[2][:2] == ["3", "rejected"] and "pasted: entry_format" in rows[2][2]
        assert rows[3][:3] == ["4", "rejected", grace] and "products: no_free_seat" in rows[3][3]
        assert "2 accepted, 0 already member(s), 2 rejected" in done.stderr
        # it went through the workers as any users.add does: the outcome event, and invitations
        command_id = done.stderr.split("users.add ")[1].split(":")[0]
        [completed] = bus.find(routing.USERS_ADD_COMPLETED, command_id=command_id)
        assert [r["outcome"] for r in completed.body["results"]] == ["accepted", "accepted", "rejected", "rejected"]
        await emails_to(smtp, ada)

        # the list on standard input, each result as a JSON line: all in (Ada is a member already)
        again = await asyncio.to_thread(userprov, infra.amqp_url, "add", account_id, "-", "--json", stdin=f"Ada Lovelace {ada}\n")
        assert again.returncode == 0, again.stderr
        [row] = [json.loads(line) for line in again.stdout.splitlines()]
        assert row["row"] == 1 and row["outcome"] == "already_member" and row["email"] == ada and row["user_id"]

    async def test_a_refused_command_is_said_with_its_reason(self, infra: Infra, bus: BusClient) -> None:
        refused = await asyncio.to_thread(userprov, infra.amqp_url, "add", unique("nobody"), "Ada Lovelace ada@example.com")
        assert refused.returncode == 1 and "refused: unknown_account" in refused.stderr and not refused.stdout

    def test_bad_options_are_refused_before_anything_is_sent(self) -> None:
        done = userprov("amqp://guest:guest@127.0.0.1:1/", "add", "acme", "Ada Lovelace ada@example.com", "--role", "boss",
                        "--requested-by", "not-an-address", "--language", "en")
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert "role: Input should be 'admin' or 'manager'" in done.stderr and "requested_by:" in done.stderr

    def test_no_outcome_in_time_and_no_broker_are_one_line_and_status_2(self) -> None:
        infra = create_infra()  # a vhost where no worker runs: commands are routed, and nobody answers
        try:
            asyncio.run(declare_exchanges_without_workers(infra.amqp_url))
            started = time.monotonic()
            waited = userprov(infra.amqp_url, "add", "acme", "Ada Lovelace ada@example.com", "--wait", "1")
            assert waited.returncode == 2 and "no outcome of users.add" in waited.stderr and "Traceback" not in waited.stderr
            assert time.monotonic() - started < 30
        finally:
            drop_vhost(infra.vhost)
        unreachable = userprov(f"amqp://guest:guest@127.0.0.1:{free_port()}/", "add", "acme", "Ada Lovelace ada@example.com")
        assert unreachable.returncode == 2 and "is RabbitMQ running there?" in unreachable.stderr and "Traceback" not in unreachable.stderr

    async def test_an_untrusted_publisher_is_told_to_name_the_acting_admin(self, worker_env: dict[str, str], smtp: RecordingSmtpServer,
                                                                            tmp_path: Path) -> None:
        """With USERPROV_TRUSTED_PUBLISHERS set, a users.add without requested_by from another
        RabbitMQ user is refused: the command says why and what to do."""
        async with isolated_worker("add-trust", worker_env, tmp_path, USERPROV_TRUSTED_PUBLISHERS="guest") as (infra, _, bus):
            account_id = unique("trust")
            await bus.publish(routing.ACCOUNTS_UPSERT, {"account_id": account_id, "name": "Trust", "licences": {"gotomeeting": 5}})
            await eventually(lambda: bus.find(routing.ACCOUNT_UPSERTED, account_id=account_id), what="account.upserted")
            admin = address("admin")
            await add_active_member(bus, smtp, account_id, admin, role="admin")
            with broker_user(infra, "operator", WRITE) as operator_url:
                operator = unquote(urlsplit(operator_url).username or "")
                person = address("person")
                refused = await asyncio.to_thread(userprov, operator_url, "add", account_id, f"Per Son {person}")
                assert refused.returncode == 1 and "refused: forbidden" in refused.stderr, refused.stderr
                assert f"USERPROV_TRUSTED_PUBLISHERS does not name RabbitMQ user {operator!r}" in refused.stderr
                assert "--requested-by" in refused.stderr
                stranger = await asyncio.to_thread(userprov, operator_url, "add", account_id, f"Per Son {person}",
                                                   "--requested-by", address("stranger"))
                assert stranger.returncode == 1 and f"must be an active admin of account {account_id}" in stranger.stderr
                named = await asyncio.to_thread(userprov, operator_url, "add", account_id, f"Per Son {person}", "--requested-by", admin)
                assert named.returncode == 0, named.stderr
                assert table(named.stdout)[0][:3] == ["1", "accepted", person]


def section(page: Path, heading: str) -> list[Step]:
    """The steps of one `## heading` section of a page."""
    lines = page.read_text(encoding="utf-8").split("\n")
    start = lines.index(f"## {heading}") + 1
    end = next((n for n in range(start, len(lines)) if lines[n].startswith("## ")), len(lines))
    return [step for step in steps(page) if start < step.line <= end]


class TestTheHowTosShellExample:
    async def test_it_runs_as_written(self, infra: Infra, bus: BusClient, account, tmp_path: Path) -> None:
        """docs/how-to/run-workers.md's example: `userprov events` in a shell of its own, `userprov
        add` of a pasted list and of a tab-separated one on standard input, each with the output
        the page shows. The section once showed no command at all."""
        page = section(RUN_WORKERS, "Add people and watch the events from a shell")
        listen, add = [s for s in page if s.kind == "sh"]
        [shown] = [s for s in page if s.kind == "json"]
        assert listen.text.startswith("userprov events ") and " -k " in listen.text and listen.text.rstrip().endswith("Ctrl-C")
        assert "userprov add acme " in add.text and "| userprov add acme - " in add.text
        await account({"gotomeeting": 10}, account_id="acme")
        runner = Runner({"USERPROV_AMQP_URL": infra.amqp_url,
                         "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}, tmp_path)  # the reader's venv
        try:
            await runner.run([listen])
            [log] = runner.logs
            await eventually(lambda: "listening to userprov.events" in log.read_text(), 30, what="userprov events listening")
            await runner.run([add])
            checker = doctest.OutputChecker()
            await eventually(lambda: any(checker.check_output(shown.text, line + "\n", doctest.ELLIPSIS)
                                         for line in log.read_text().splitlines()), 30, what="the event line the page shows")
        except (AssertionError, TimeoutError) as failure:
            raise AssertionError(f"{failure}\n\nuserprov events printed:\n{runner.stop()}") from None
        finally:
            runner.stop()


class EventsTail:
    """`userprov events ...` running, its lines read as they come."""

    def __init__(self, amqp_url: str, *args: str) -> None:
        self.args = ["events", *args]
        self.amqp_url = amqp_url
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "userprov", *self.args, env={**os.environ, "USERPROV_AMQP_URL": self.amqp_url},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        assert self.process.stderr is not None
        listening = await asyncio.wait_for(self.process.stderr.readline(), 30)
        assert b"listening to userprov.events" in listening, listening

    async def lines(self, timeout: float = 30) -> list[dict]:
        """Every line it printed until it exited; its exit status in `returncode`."""
        assert self.process is not None
        out, self.stderr = await asyncio.wait_for(self.process.communicate(), timeout)
        self.returncode = self.process.returncode
        return [json.loads(line) for line in out.decode().splitlines()]


class TestEvents:
    async def test_started_before_the_workers_it_waits_for_their_exchange(self) -> None:
        """As the tutorial starts it, beside `userprov run`: on a vhost where no worker has
        declared userprov.events yet, it says it waits, and shows the events once it exists."""
        fresh = create_infra()
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "userprov", "events", "--count", "1", "--timeout", "60",
                env={**os.environ, "USERPROV_AMQP_URL": fresh.amqp_url}, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            assert process.stderr is not None and process.stdout is not None
            said = await asyncio.wait_for(process.stderr.readline(), 30)
            assert b"waiting for the exchange userprov.events" in said, said
            await declare_exchanges_without_workers(fresh.amqp_url)
            listening = await asyncio.wait_for(process.stderr.readline(), 30)
            assert b"listening to userprov.events" in listening, listening
            connection = await aio_pika.connect(fresh.amqp_url)
            try:
                channel = await connection.channel()
                events = await channel.get_exchange(routing.EVENTS_EXCHANGE, ensure=False)
                await events.publish(aio_pika.Message(b'{"hello": 1}', message_id="m-1"), "user.activated")
            finally:
                await connection.close()
            out, err = await asyncio.wait_for(process.communicate(), 30)
            assert process.returncode == 0, err
            assert json.loads(out)["body"] == {"hello": 1}
        finally:
            drop_vhost(fresh.vhost)

    async def test_prints_the_events_of_the_keys_asked_for_as_json_lines(self, bus: BusClient, infra: Infra, account) -> None:
        account_id = await account()
        tail = EventsTail(infra.amqp_url, "--key", routing.USERS_ADD_COMPLETED, "--key", "invitation.*", "--count", "3", "--timeout", "60")
        await tail.start()
        ada, alan = address("ada"), address("alan")
        message_id = await bus.publish(routing.USERS_ADD, {"account_id": account_id, "pasted": f"Ada Lovelace {ada}; Alan Turing {alan}"})
        lines = await tail.lines(90)
        assert tail.returncode == 0, tail.stderr
        assert sorted(line["routing_key"] for line in lines) == [routing.INVITATION_SENT, routing.INVITATION_SENT,
                                                                  routing.USERS_ADD_COMPLETED]
        assert all(line["correlation_id"] == message_id and line["message_id"] and line["timestamp"] for line in lines)
        [completed] = [line for line in lines if line["routing_key"] == routing.USERS_ADD_COMPLETED]
        assert completed["type"] == routing.USERS_ADD_COMPLETED and completed["body"]["command_id"] == message_id
        assert {line["body"]["email"] for line in lines if line["routing_key"] == routing.INVITATION_SENT} == {ada, alan}

    async def test_stops_after_the_timeout_and_says_how_many_came(self, infra: Infra, bus: BusClient) -> None:
        tail = EventsTail(infra.amqp_url, "--key", "no.such.event", "--count", "1", "--timeout", "1")
        await tail.start()
        assert await tail.lines() == []
        assert tail.returncode == 1 and b"0 of 1 event(s) within 1 s" in tail.stderr

    async def test_hostile_bodies_are_shown_safely_and_tokens_hidden(self, infra: Infra, bus: BusClient) -> None:
        """Anyone allowed to publish on userprov.events can send anything: what is not JSON is
        shown as text, control characters never reach the terminal raw, and a token (of an
        accept on the deprecated path) is not copied out."""
        tail = EventsTail(infra.amqp_url, "--key", "hostile.#", "--key", routing.INVITATION_ACCEPTED, "--count", "3", "--timeout", "60")
        await tail.start()
        token = uuid.uuid4().hex
        connection = await aio_pika.connect(infra.amqp_url)
        try:
            channel = await connection.channel()
            events = await channel.get_exchange(routing.EVENTS_EXCHANGE, ensure=False)
            await events.publish(aio_pika.Message(b"\xff\xfenot json \x1b[31m"), "hostile.bytes")
            await events.publish(aio_pika.Message(json.dumps({"name": "\x9b31m\u202eevil", "x": "\ud800"}).encode()), "hostile.json")
            await events.publish(aio_pika.Message(json.dumps({"token": token}).encode(), message_id=str(uuid.uuid4())),
                                 routing.INVITATION_ACCEPTED)
        finally:
            await connection.close()
        assert tail.process is not None
        raw = await asyncio.wait_for(tail.process.stdout.read(), 60)  # type: ignore[union-attr]
        await tail.process.wait()
        assert tail.process.returncode == 0
        text = raw.decode("utf-8")  # valid UTF-8, whatever came
        assert not any(c in text for c in "\x1b\x9b\u202e") and token not in text
        by_key = {line["routing_key"]: line for line in map(json.loads, text.splitlines())}
        assert "body" not in by_key["hostile.bytes"] and "not json" in by_key["hostile.bytes"]["body_text"]
        assert by_key["hostile.json"]["body"]["name"] == "\x9b31m\u202eevil"  # escaped in the line, the same once parsed
        assert by_key[routing.INVITATION_ACCEPTED]["body"] == {"token": "<hidden>"}

    async def test_sigterm_stops_it_cleanly(self, infra: Infra, bus: BusClient) -> None:
        tail = EventsTail(infra.amqp_url)
        await tail.start()
        assert tail.process is not None
        tail.process.send_signal(signal.SIGTERM)
        assert await tail.lines() == [] and tail.returncode == 0, tail.stderr


class TestServersListenWhereTheCommandLineSays:
    async def test_links_and_scim_serve_take_host_and_port(self, infra: Infra, bus: BusClient, worker_env: dict[str, str],
                                                          tmp_path: Path) -> None:
        for command, setting, ready in ((["links"], "LINKS", "links"), (["scim", "serve"], "SCIM", "scim")):
            port, ignored = free_port(), free_port()
            server = WorkerProcess(f"{ready}-port", [], {**worker_env, f"USERPROV_{setting}_PORT": str(ignored),
                                                         f"USERPROV_{setting}_HOST": "192.0.2.1"},  # unreachable: must not be used
                                   tmp_path, command=[*command, "--host", "127.0.0.1", "--port", str(port)],
                                   ready_log=f'"{ready}_broker_connected"')
            server.start()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/livez", timeout=5) as answer:
                    assert answer.status == 200
                assert any(f'"port": {port}' in line and '"host": "127.0.0.1"' in line for line in server.lines())
            finally:
                assert server.terminate() == 0
