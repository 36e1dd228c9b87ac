"""The publish examples, which docs/how-to/other-language.md links, run as written against the
workers: examples/publish_users_add.py (aio-pika alone) and examples/node/publish-users-add.mjs
(amqplib), each adding people and printing their rows' outcome."""
from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import address, unique
from tests.support.infra import Infra
from tests.support.smtp import RecordingSmtpServer
from userprov_devtools.bus_client import BusClient

EXAMPLES = Path(__file__).parents[2] / "examples"


@pytest.fixture(scope="module")
def node_example() -> Path:
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        pytest.fail("the Node.js example needs Node.js and npm (scripts/test-deps installs them)")
    folder = EXAMPLES / "node"
    if not (folder / "node_modules" / "amqplib").is_dir():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=folder, check=True, timeout=600)
    return folder


async def run(command: list[str], cwd: Path, amqp_url: str, **env: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(*command, cwd=cwd, env={**os.environ, "USERPROV_AMQP_URL": amqp_url, **env},
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.fixture(params=["python", "node"])
def example(request: pytest.FixtureRequest) -> list[str]:
    """The command that runs one of the examples: both take the same arguments."""
    if request.param == "python":
        return [sys.executable, str(EXAMPLES / "publish_users_add.py")]
    return ["node", str(request.getfixturevalue("node_example") / "publish-users-add.mjs")]


class TestPublishExamples:
    """The Node.js example once took its products as positional arguments and its acting admin
    from REQUESTED_BY, while the Python one (and `userprov add`) take `--product X`, repeatable."""

    async def test_adds_people_and_prints_each_row(self, example: list[str], infra: Infra, bus: BusClient,
                                                   smtp: RecordingSmtpServer, account) -> None:
        account_id = await account({"gotomeeting": 5, "gotowebinar": 5})
        ada, emilie = address("ada"), address("emilie")
        status, out, err = await run([*example, account_id, f"Ada Lovelace {ada}\nÉmilie du Châtelet {emilie}",
                                      "--product", "gotomeeting", "-p", "gotowebinar", "--timeout", "60"], EXAMPLES, infra.amqp_url)
        assert status == 0, err
        assert out.splitlines() == [f"row 1: accepted       {ada}", f"row 2: accepted       {emilie}"]
        status, out, err = await run([*example, account_id, f"Ada Lovelace {ada}; broken"], EXAMPLES, infra.amqp_url)
        assert status == 1 and out.splitlines() == [f"row 1: already_member {ada}", "row 2: rejected        pasted: entry_format"]

    async def test_says_why_a_command_was_refused(self, example: list[str], infra: Infra, bus: BusClient, account) -> None:
        account_id = await account({"gotomeeting": 5})
        person = address("grace")
        status, out, err = await run([*example, unique("nobody"), f"Grace Hopper {person}"], EXAMPLES, infra.amqp_url)
        assert status == 1 and "refused: unknown_account" in err, out + err
        status, out, err = await run([*example, account_id, f"Grace Hopper {person}", "--product", "gotomeeting",
                                      "--product", "no-such-product"], EXAMPLES, infra.amqp_url)
        assert status == 1 and "refused: unknown_product" in err, out + err
        status, out, err = await run([*example, account_id, f"Grace Hopper {person}", "--product", "gotomeeting",
                                      "--requested-by", address("stranger")], EXAMPLES, infra.amqp_url)
        assert status == 1 and "refused: forbidden" in err, out + err

    async def test_refuses_arguments_it_does_not_take(self, example: list[str], infra: Infra) -> None:
        """Nothing is sent: a product given as a third argument is refused, as the other example refuses it."""
        status, out, err = await run([*example, "acme", "Ada Lovelace ada@example.com", "gotomeeting"], EXAMPLES, infra.amqp_url)
        assert status == 2 and "usage:" in err and not out, out + err
