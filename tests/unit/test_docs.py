"""The documentation: every setting, command, option, message, field and metric has a
description (the generated reference would show an empty one); the generated reference names
each of them; the membership arrows match the code; and the README stays short, keeps its quick
start and links only to pages and headings that exist. (The site itself is built strictly by
scripts/docs, which scripts/test runs.)"""
from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from contracts import routing
from contracts.base import MembershipStatus
from contracts.registry import COMMAND_MODELS, EVENT_MODELS, REPLY_MODELS, reply_type
from contracts.schema_export import message_schemas
from userprov import lifecycle
from userprov.settings import Settings
from userprov_devtools import reference_docs
from userprov_devtools.runnable_docs import Runner, Step

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


def _undescribed_schema_parts(name: str, schema: dict) -> list[str]:
    missing = [name] if not schema.get("description") else []
    for def_name, definition in schema.get("$defs", {}).items():
        if definition.get("type") == "object" and not definition.get("description"):
            missing.append(f"{name} $defs.{def_name}")
    for where, part in [(name, schema), *((f"{name} $defs.{d}", s) for d, s in schema.get("$defs", {}).items())]:
        for field, prop in part.get("properties", {}).items():
            target = schema.get("$defs", {}).get(prop.get("$ref", "").rsplit("/", 1)[-1], {})
            if not (prop.get("description") or target.get("description")):
                missing.append(f"{where}.{field}")
    return missing


class TestEverythingIsDescribed:
    def test_every_setting(self) -> None:
        assert [f for f, info in Settings.model_fields.items() if not (info.description or "").strip()] == []

    def test_every_command_option_and_argument(self) -> None:
        missing = []
        for name, command in reference_docs.commands():
            if not (command.help or "").strip():
                missing.append(name)
            missing += [f"{name} {p.name}" for p in reference_docs.parameters(command) if not (p.help or "").strip()]
        assert missing == []

    def test_every_message_and_each_of_its_fields(self) -> None:
        missing = [m for name, schema in message_schemas().items() for m in _undescribed_schema_parts(name, schema)]
        assert missing == []

    def test_every_metric(self) -> None:
        from prometheus_client import REGISTRY

        found = reference_docs.metrics()
        registered = {family.name for family in REGISTRY.collect() if family.name.startswith("userprov_")}
        assert len(found) >= 15 and {m._name for m in found} >= registered, "a metric was not found"
        assert [m._name for m in found if not m._documentation.strip()] == []

    def test_the_check_can_fail(self) -> None:
        assert _undescribed_schema_parts("x", {"properties": {"a": {"type": "string"}}}) == ["x", "x.a"]


class TestTheGeneratedReferenceNamesEverything:
    def test_every_setting(self) -> None:
        page = reference_docs.settings_page()
        for field in Settings.model_fields:
            assert f"```{{envvar}} USERPROV_{field.upper()}\n" in page

    def test_every_command_and_option(self) -> None:
        page = reference_docs.cli_page()
        names = [name for name, _ in reference_docs.commands()]
        assert {"userprov run", "userprov parked replay", "userprov scim token create", "userprov invitations retry-failed"} <= set(names)
        for name, command in reference_docs.commands():
            assert f"```{{program}} {name}\n" in page
            section = page.split(f"```{{program}} {name}\n", 1)[1].split("```{program}", 1)[0]
            for param in reference_docs.parameters(command):
                assert f"```{{option}} {reference_docs.parameter_target(param)}\n" in section, (name, param.name)

    def test_each_value_as_a_reader_writes_it(self) -> None:
        """The page once showed typer's Python names (`<list[str]>`, `<float range>`, `--product
        <list[str]>`) and `/ --stop` as the value of the flag pair `--keep-running/--stop`."""
        page = reference_docs.cli_page()
        values = re.findall(r"^\*\*Value:\*\* (.*)$", page, re.MULTILINE)
        assert len(values) >= 40
        for value in values:
            assert re.fullmatch(r"`(TEXT|INTEGER|FLOAT|PATH|[\w|-]+)`(, (\d+ to \d+|at least \d+|at most \d+))?"
                                r"( · (repeatable|argument|argument, any number))?", value), value

        def option(program: str, target: str) -> str:
            section = page.split(f"```{{program}} {program}\n", 1)[1].split("```{program}", 1)[0]
            return section.split(f"```{{option}} {target}\n", 1)[1].split("```", 1)[0]

        assert option("userprov add", "--product, -p").startswith("**Value:** `TEXT` · repeatable\n")
        assert option("userprov add", "--wait").startswith("**Value:** `FLOAT`, at least 0\n")
        assert option("userprov links", "--port").startswith("**Value:** `INTEGER`, 1 to 65535\n")
        assert option("userprov run", "SERVICES").startswith("**Value:** `TEXT` · argument, any number\n")
        assert "**Value:**" not in option("userprov demo", "--keep-running, --stop")
        assert "**Value:**" not in option("userprov add", "--json")

    def test_every_routing_key_and_answer(self) -> None:
        page = reference_docs.messages_page()
        for key in {*COMMAND_MODELS, *EVENT_MODELS, *(reply_type(k) for k in REPLY_MODELS)}:
            assert f"```{{message}} {key}\n" in page
        assert all(f"`{exchange}`" in page for exchange in (routing.COMMANDS_EXCHANGE, routing.EVENTS_EXCHANGE))

    def test_every_metric_and_alert(self) -> None:
        page = reference_docs.metrics_page()
        for metric in reference_docs.metrics():
            assert f"```{{metric}} {reference_docs.metric_name(metric)}\n" in page
        for rule in reference_docs.alert_rules():
            assert f"### {rule['alert']}\n" in page
        assert "userprov_scim_requests_total" in page and "userprov_messages_total" in page

    def test_the_scim_schema_and_the_lifecycle(self) -> None:
        scim = reference_docs.scim_page()
        assert "| `userName` | yes | immutable | default |" in scim and "| `title` | no | writeOnly | never |" in scim
        assert "| `employeeNumber` | no | writeOnly | never |" in scim, "the enterprise extension"
        page = reference_docs.lifecycle_page()
        assert '"pending" -> "invited"' in page and '"transfer_pending" -> "suspended"' in page


class TestRunnableDocs:
    """The documentation's Python blocks are run as `python -m asyncio` runs what a reader types:
    the tutorial once showed the output of `print` alone, while the prompt also echoes the value
    of every bare expression (an id for `await bus.publish(...)`)."""

    BLOCK = 'x = 1\nx\nawait asyncio.sleep(0, "slept")\nprint("hi")\nfor i in range(2):\n    i\n\ny = await asyncio.sleep(0, 3)\nNone\n'

    async def test_a_python_block_prints_what_the_asyncio_prompt_prints(self, tmp_path: Path) -> None:
        prompt = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "asyncio"], input="import asyncio\n" + self.BLOCK,
                                         capture_output=True, text=True, timeout=60)
        seen = re.sub(r">>> |\.\.\. ", "", prompt.stdout)
        assert seen == "1\n'slept'\nhi\n0\n1\n", prompt.stdout + prompt.stderr
        runner = Runner({}, tmp_path, namespace={"__name__": "__main__", "asyncio": asyncio})
        await runner.run([Step("python", self.BLOCK, 1, output=seen)])
        await runner.run([Step("python", "y\n", 10, output="3\n")])  # one namespace for the page


class TestLifecycleArrows:
    def test_each_arrow_joins_statuses_and_names_its_functions(self) -> None:
        statuses = set(typing.get_args(MembershipStatus))
        for arrow in (*lifecycle.ENTRIES, *lifecycle.ARROWS):
            assert set(arrow.sources) | {arrow.target} <= statuses, arrow
            for function in arrow.functions:
                assert callable(getattr(lifecycle, function, None)), function

    def test_every_status_is_reached_and_every_arrow_function_is_drawn(self) -> None:
        statuses = set(typing.get_args(MembershipStatus))
        assert {a.target for a in (*lifecycle.ENTRIES, *lifecycle.ARROWS)} == statuses
        assert {e.target for e in lifecycle.ENTRIES} == set(typing.get_args(lifecycle.Added))
        drawn = {f for a in lifecycle.ARROWS for f in a.functions}
        assert {"decide", "accept", "decline", "resend", "reissue", "end", "deactivate", "reactivate"} == drawn

    def test_the_table_has_a_row_for_every_arrow(self) -> None:
        page = reference_docs.lifecycle_page()
        for arrow in (*lifecycle.ENTRIES, *lifecycle.ARROWS):
            assert f" | {reference_docs.code(arrow.target)} | {reference_docs.cell(arrow.by)} | " in page, arrow.by


def _slug(heading: str) -> str:
    """MyST's and GitHub's anchor of a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


class TestReadme:
    TEXT = README.read_text(encoding="utf-8")

    def test_at_most_200_lines(self) -> None:
        assert len(self.TEXT.splitlines()) <= 200

    def test_the_quick_start_is_the_two_commands(self) -> None:
        block = self.TEXT.split("## Quick start", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
        assert [line.split("#")[0].strip() for line in block.strip().splitlines()] == ["./scripts/demo", "./scripts/test"]

    def test_a_drawn_picture_and_the_screenshot(self) -> None:
        assert "```mermaid\n" in self.TEXT
        [screenshot] = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", self.TEXT)
        assert (ROOT / screenshot).is_file()

    def test_every_link_resolves(self) -> None:
        links = re.findall(r"\]\(([^)#\s]+)(?:#([^)\s]+))?\)", self.TEXT)
        assert len(links) >= 20
        for path, anchor in links:
            if "://" in path:
                continue
            target = ROOT / path
            assert target.exists(), path
            if anchor:
                headings = re.findall(r"^#+ (.+)$", target.read_text(encoding="utf-8"), re.MULTILINE)
                assert anchor in {_slug(h) for h in headings}, f"{path}#{anchor}"

    @pytest.mark.parametrize("task, page", [
        ("connect Okta", "docs/how-to/okta.md"),
        ("scale a lane", "docs/how-to/lanes.md#scale-a-lane"),
        ("replay a parked message", "docs/how-to/replay-parked.md"),
        ("publish a first users.add from Node.js", "docs/how-to/other-language.md"),
    ])
    def test_a_newcomer_finds_each_task_in_one_link(self, task: str, page: str) -> None:
        assert f"]({page})" in self.TEXT, task
