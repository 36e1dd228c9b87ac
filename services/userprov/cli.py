"""The `userprov` command."""
from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from contracts import routing
from userprov.logconfig import configure_logging
from userprov.settings import Settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help="userprov: adds users to organisation accounts.")


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema (creating the database when missing)."""
    from userprov.db.migrate import migrate as apply

    settings = Settings()
    configure_logging(settings.log_level, settings.log_json)
    applied = asyncio.run(apply(settings.database_url))
    typer.echo(f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else ""))


@app.command()
def run(
    services: Annotated[list[str] | None, typer.Argument(help=f"Any of {', '.join(routing.SERVICES)}; none runs all four.")] = None,
) -> None:
    """Run the named services in this process until SIGTERM."""
    from userprov.app import run as run_services
    from userprov.runtime import event_loop

    names = list(dict.fromkeys(services or routing.SERVICES))
    unknown = [n for n in names if n not in routing.SERVICES]
    if unknown:
        raise typer.BadParameter(f"unknown service(s): {', '.join(unknown)}; choose from {', '.join(routing.SERVICES)}")
    settings = Settings()
    configure_logging(settings.log_level, settings.log_json)
    raise typer.Exit(event_loop.run(run_services(settings, names)))


@app.command()
def demo(
    mail_folder: Annotated[str, typer.Option(help="Where the mail catcher writes each email.")] = "demo-mail",
) -> None:
    """Run the whole system locally: mail catcher, workers, an account, a pasted list of users."""
    from pathlib import Path

    run_demo = _devtool("demo").run_demo

    settings = Settings()
    configure_logging("WARNING", settings.log_json)
    raise typer.Exit(asyncio.run(run_demo(settings, Path(mail_folder))))


@app.command()
def bench(
    users: Annotated[int, typer.Option(help="New users to add.")] = 10_000,
    batch: Annotated[int, typer.Option(help="Rows per users.add command.")] = 1_000,
    single: Annotated[bool, typer.Option("--single", help="One-user commands at a fixed rate instead.")] = False,
    rate: Annotated[float, typer.Option(help="Commands per second with --single.")] = 50.0,
    in_flight: Annotated[
        int | None, typer.Option(help="With --single: keep this many commands in flight instead of a fixed rate.", min=1)
    ] = None,
    processes: Annotated[int, typer.Option(help="Worker processes to start (0: use workers already running).")] = 1,
) -> None:
    """Measure users/s end to end (publish to email accepted by SMTP) and per-user latency."""
    bench_tool = _devtool("bench")

    settings = Settings()
    configure_logging("WARNING", settings.log_json)
    load = bench_tool.Load(users=users, batch=batch, single=single, rate=rate, in_flight=in_flight)
    result = asyncio.run(bench_tool.run_bench(settings, load, processes))
    typer.echo(result.report())


def _devtool(name: str):  # noqa: ANN202
    """A module of the development tools, which the workers' image does not install."""
    import importlib

    try:
        return importlib.import_module(f"userprov_devtools.{name}")
    except ModuleNotFoundError as error:
        raise typer.BadParameter(f"`userprov {name}` needs the development tools: pip install -e '.[dev]'") from error


if __name__ == "__main__":
    app()
