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


class TestPublishExamples:
    async def test_python(self, infra: Infra, bus: BusClient, smtp: RecordingSmtpServer, account) -> None:
        account_id = await account({"gotomeeting": 5})
        ada, alan = address("ada"), address("alan")
        script = str(EXAMPLES / "publish_users_add.py")
        status, out, err = await run([sys.executable, script, account_id, f"Ada Lovelace {ada}; Alan Turing {alan}",
                                      "--product", "gotomeeting"], EXAMPLES, infra.amqp_url)
        assert status == 0, err
        assert out.splitlines() == [f"row 1: accepted       {ada}", f"row 2: accepted       {alan}"]
        status, out, err = await run([sys.executable, script, account_id, f"Ada Lovelace {ada}; broken"], EXAMPLES, infra.amqp_url)
        assert status == 1 and out.splitlines() == [f"row 1: already_member {ada}", "row 2: rejected        pasted: entry_format"]
        status, _, err = await run([sys.executable, script, unique("nobody"), f"Ada Lovelace {ada}"], EXAMPLES, infra.amqp_url)
        assert status == 1 and "refused: unknown_account" in err

    async def test_node(self, node_example: Path, infra: Infra, bus: BusClient, account) -> None:
        account_id = await account({"gotomeeting": 5})
        grace, emilie = address("grace"), address("emilie")
        status, out, err = await run(["node", "publish-users-add.mjs", account_id, f"Grace Hopper {grace}\nÉmilie du Châtelet {emilie}",
                                      "gotomeeting"], node_example, infra.amqp_url)
        assert status == 0, err
        assert out.splitlines() == [f"row 1: accepted       {grace}", f"row 2: accepted       {emilie}"]
        status, out, err = await run(["node", "publish-users-add.mjs", account_id, f"Grace Hopper {grace}", "no-such-product"],
                                     node_example, infra.amqp_url)
        assert status == 1 and "refused: unknown_product" in err, out + err
