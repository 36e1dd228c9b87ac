"""The cross-language check: a Node.js client (amqplib + ajv) written from the generated
documents alone adds users, asks queries and validates every message against the published
schemas; and the AsyncAPI document passes the AsyncAPI project's own parser."""
from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.infra import Infra, create_infra, declare_exchanges_without_workers, drop_vhost
from userprov_devtools.bus_client import BusClient
from userprov_devtools.runnable_docs import steps

NODE_CLIENT = Path(__file__).parents[1] / "node_client"
HOW_TO = Path(__file__).parents[2] / "docs" / "how-to" / "other-language.md"


@pytest.fixture(scope="module")
def node_client() -> Path:
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        pytest.fail("the cross-language test needs Node.js 20 and npm")
    if not (NODE_CLIENT / "node_modules").is_dir():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=NODE_CLIENT, check=True, timeout=600)
    return NODE_CLIENT


async def node(script: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120) -> str:
    process = await asyncio.create_subprocess_exec(
        "node", script, cwd=cwd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout)
    text = output.decode("utf-8", "replace")
    assert process.returncode == 0, f"node {script} failed:\n{text}"
    return text


class TestOtherLanguages:
    async def test_the_asyncapi_document_is_valid(self, node_client: Path) -> None:
        output = await node("validate-asyncapi.mjs", node_client)
        assert "is valid AsyncAPI 3.0.0" in output and "with a reply" in output

    async def test_a_node_client_from_the_documents_alone(self, node_client: Path, infra: Infra, bus: BusClient) -> None:
        output = await node("client.mjs", node_client, {**os.environ, "USERPROV_AMQP_URL": infra.amqp_url})
        assert "every step and every message valid" in output
        assert '"audit.list.reply":2' in output, output  # both pages of the audit trail, each valid against its schema

    async def test_the_how_to_s_first_users_add_from_node(self, node_client: Path, infra: Infra, bus: BusClient) -> None:
        """The program of docs/how-to/other-language.md, as it stands on the page."""
        [program] = [s.text for s in steps(HOW_TO) if s.kind == "js"]
        script = node_client / "first-users-add.generated.mjs"  # beside node_modules, where `import amqplib` finds it
        script.write_text(program, encoding="utf-8")
        try:
            output = await node(script.name, node_client, {**os.environ, "USERPROV_AMQP_URL": infra.amqp_url})
        finally:
            script.unlink()
        assert output.startswith("account.upserted\nusers.add.completed ")
        assert '"outcome":"accepted"' in output, output

    async def test_the_how_to_s_program_stops_waiting_when_no_outcome_comes(self, node_client: Path) -> None:
        """It once waited for ever on a vhost where no worker answers; it now says so, with status 2."""
        [program] = [s.text for s in steps(HOW_TO) if s.kind == "js"]
        assert "const TIMEOUT_SECONDS = 60;" in program
        script = node_client / "first-users-add-timeout.generated.mjs"
        script.write_text(program.replace("const TIMEOUT_SECONDS = 60;", "const TIMEOUT_SECONDS = 2;"), encoding="utf-8")
        infra = create_infra()
        try:
            await declare_exchanges_without_workers(infra.amqp_url)
            started = time.monotonic()
            process = await asyncio.create_subprocess_exec("node", script.name, cwd=node_client,
                                                           env={**os.environ, "USERPROV_AMQP_URL": infra.amqp_url},
                                                           stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            try:
                out, err = await asyncio.wait_for(process.communicate(), 60)
            except TimeoutError:
                process.kill()
                raise AssertionError("the program still waited after 60 s") from None
            assert process.returncode == 2 and not out, (out, err)
            assert b"no outcome of accounts.upsert within 2 s" in err, err
            assert time.monotonic() - started < 30
        finally:
            script.unlink()
            drop_vhost(infra.vhost)
