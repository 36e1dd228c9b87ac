"""What `userprov ... --help` tells a newcomer: no value for a flag, and the settings each server
command reads."""
from __future__ import annotations

from collections.abc import Iterator

import click
import pytest
import typer.main
from typer.testing import CliRunner

from userprov.cli import app
from userprov.settings import Settings


def commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))
        else:
            yield (*path, name)


def help_of(*path: str) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


EVERY_COMMAND = list(commands(typer.main.get_command(app)))  # type: ignore[arg-type]


@pytest.mark.parametrize("path", EVERY_COMMAND, ids=[" ".join(p) or "userprov" for p in EVERY_COMMAND])
def test_a_flag_shows_no_value(path: tuple[str, ...]) -> None:
    """typer's help showed `<bool>` after every flag (`--help`, `--json`, `--yes`), as if it took one."""
    text = help_of(*path)
    assert "--help" in text and "<bool>" not in text


def test_flags_still_show_values_of_other_options() -> None:
    text = help_of("parked", "list")
    assert "--limit" in text and "<int range>" in text and "--routing-key" in text and "<str>" in text


@pytest.mark.parametrize("path, setting", [(("links",), "links"), (("scim", "serve"), "scim")])
def test_servers_take_host_and_port_and_name_their_settings(path: tuple[str, ...], setting: str) -> None:
    text = help_of(*path)
    assert "--host" in text and "--port" in text
    assert f"USERPROV_{setting.upper()}_HOST" in text and f"USERPROV_{setting.upper()}_PORT" in text
    assert "USERPROV_AMQP_URL" in text


def test_links_help_names_its_settings() -> None:
    text = help_of("links")
    for name in ("USERPROV_LINK_BASE_URL", "USERPROV_LINKS_SIGN_IN_URL", "USERPROV_LINKS_FORM_SECRET"):
        assert name in text


def test_run_help_names_the_database_broker_and_smtp_settings() -> None:
    text = help_of("run")
    for name in ("USERPROV_DATABASE_URL", "USERPROV_AMQP_URL", "USERPROV_SMTP_HOST", "USERPROV_SMTP_PORT", "USERPROV_SMTP_USERNAME",
                 "USERPROV_SMTP_PASSWORD", "USERPROV_SMTP_STARTTLS", "USERPROV_SMTP_TLS", "USERPROV_LINK_BASE_URL"):
        assert name in text


def test_every_setting_named_in_help_exists() -> None:
    """A setting a help text names is one userprov reads."""
    import re

    known = {f"USERPROV_{name.upper()}" for name in Settings.model_fields}
    for path in EVERY_COMMAND:
        named = set(re.findall(r"USERPROV_[A-Z_]+[A-Z]", help_of(*path)))
        assert named <= known, (path, named - known)


def test_demo_says_it_recreates_its_database() -> None:
    text = " ".join(help_of("demo").split())
    assert "drops and recreates its own database, <database>_demo" in text.replace("`", ""), text


@pytest.mark.parametrize("arguments", [["links", "--port", "0"], ["links", "--port", "65536"], ["scim", "serve", "--port", "x"]])
def test_a_port_out_of_range_is_refused_before_anything_starts(arguments: list[str]) -> None:
    result = CliRunner().invoke(app, arguments, env={"COLUMNS": "200"})
    assert result.exit_code == 2 and "Invalid value for '--port'" in result.output
