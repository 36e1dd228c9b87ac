"""Typer for the `userprov` command, with help that shows no value for a flag.

typer's rich help has a column for the value each option takes, and it fills it for a flag too,
which takes none: every flag, `--help` included, showed `<bool>`. (Its plain help leaves flags
out of that column.) The column shows an option's metavar when it has one, so a flag is given
an empty one. Help is markdown: a docstring's paragraphs are reflowed, not cut where its source
lines end."""
from __future__ import annotations

from typing import Any

import typer
from pydantic import ValidationError
from typer.core import TyperCommand, TyperGroup


def _flags_take_no_value(params: list[Any]) -> list[Any]:
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class Command(TyperCommand):
    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_take_no_value(super().get_params(ctx))


class Group(TyperGroup):
    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_take_no_value(super().get_params(ctx))


class Typer(typer.Typer):
    """A typer.Typer whose commands and groups are the classes above."""

    def __init__(self, **options: Any) -> None:
        super().__init__(cls=Group, rich_markup_mode="markdown", **options)

    def command(self, *args: Any, **options: Any) -> Any:
        return super().command(*args, cls=options.pop("cls", Command), **options)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """A setting the environment gets wrong, whichever command reads it: one line each, exit 2."""
        try:
            return super().__call__(*args, **kwargs)
        except ValidationError as error:
            if error.title != "Settings":
                raise
            for problem in error.errors():
                typer.echo(f"userprov: {setting_problem(problem)}", err=True)
            raise SystemExit(2) from None


def setting_problem(problem: Any) -> str:
    """A Settings validation error as `USERPROV_NAME: what is wrong`."""
    name = "USERPROV_" + "_".join(str(part) for part in problem["loc"]).upper()
    message = str(problem["msg"]).removeprefix("Value error, ")
    return message if message.startswith(name) else f"{name}: {message}"
