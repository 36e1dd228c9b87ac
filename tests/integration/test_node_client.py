"""The cross-language check: a Node.js client (amqplib + ajv) written from the generated
documents alone adds users, asks queries and validates every message against the published
schemas; and the AsyncAPI document passes the AsyncAPI project's own parser."""
from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.infra import Infra
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
