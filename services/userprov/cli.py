"""The `userprov` command."""
from __future__ import annotations

import asyncio
from enum import StrEnum
from typing import Annotated, Any

import typer

from contracts import routing
from userprov.cli_help import Typer
from userprov.logconfig import configure_logging
from userprov.settings import Settings

app = Typer(add_completion=False, no_args_is_help=True, help="userprov: adds users to organisation accounts.")


def _print_version(asked: bool) -> None:
    if asked:
        from userprov import __version__

        typer.echo(f"userprov {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.", callback=_print_version,
                                          is_eager=True)] = False,
) -> None:
    """userprov: adds users to organisation accounts."""


@app.command()
def migrate(
    create_database: Annotated[
        bool, typer.Option("--create-database", help="Create the database first when it does not exist (never done otherwise).")
    ] = False,
) -> None:
    """Create or upgrade the database schema."""
    from userprov.db.migrate import DatabaseMissing
    from userprov.db.migrate import migrate as apply

    settings = Settings()
    configure_logging(settings.log_level, settings.log_json)
    try:
        applied = asyncio.run(apply(settings.database_url, create_database=create_database))
    except DatabaseMissing as error:
        typer.echo(f"userprov migrate: {error}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else ""))


@app.command()
def run(
    services: Annotated[list[str] | None, typer.Argument(help=f"Any of {', '.join(routing.SERVICES)}; none runs all four.")] = None,
) -> None:
    """Run the named services in this process until SIGTERM.

    They take their work from RabbitMQ at USERPROV_AMQP_URL and keep it in PostgreSQL at
    USERPROV_DATABASE_URL (migrated at start unless USERPROV_MIGRATE_ON_START=false), and send
    invitations to the SMTP server at USERPROV_SMTP_HOST:USERPROV_SMTP_PORT (USERPROV_SMTP_USERNAME,
    USERPROV_SMTP_PASSWORD, USERPROV_SMTP_STARTTLS or USERPROV_SMTP_TLS); invitation links start
    with USERPROV_LINK_BASE_URL. Every setting: docs/reference/settings.md."""
    from userprov.app import run as run_services
    from userprov.runtime import event_loop

    names = list(dict.fromkeys(services or routing.SERVICES))
    unknown = [n for n in names if n not in routing.SERVICES]
    if unknown:
        raise typer.BadParameter(f"unknown service(s): {', '.join(unknown)}; choose from {', '.join(routing.SERVICES)}")
    settings = Settings()
    configure_logging(settings.log_level, settings.log_json)
    raise typer.Exit(event_loop.run(run_services(settings, names)))


def _listening(setting: str, host: str | None, port: int | None) -> Settings:
    """The settings, with the address the command line gave instead of the environment's."""
    given: dict[str, Any] = {f"{setting}_host": host, f"{setting}_port": port}
    return Settings(**{name: value for name, value in given.items() if value is not None})


@app.command()
def links(
    host: Annotated[str | None, typer.Option(help="Listen on this address instead of USERPROV_LINKS_HOST (default 127.0.0.1;"
                                             " 0.0.0.0: every interface).")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Listen on this port instead of USERPROV_LINKS_PORT"
                                             " (default 8080).")] = None,
) -> None:
    """Serve the invitation page, until SIGTERM.

    It answers the links of the invitation emails, which start with USERPROV_LINK_BASE_URL (its
    public address), and asks the workers through RabbitMQ at USERPROV_AMQP_URL. After an accept
    it leads to USERPROV_LINKS_SIGN_IN_URL; USERPROV_LINKS_FORM_SECRET signs its forms (the same
    on every replica). The rest: docs/reference/invitation-page.md."""
    from userprov.links.server import serve

    settings = _listening("links", host, port)
    configure_logging(settings.log_level, settings.log_json)
    serve(settings)


# the options `add` and `import` share: what each person added gets
Products = Annotated[list[str] | None, typer.Option("--product", "-p", help="A licence each person gets (repeatable).")]
Role = Annotated[str | None, typer.Option(help="admin or manager (none: plain users).")]
Language = Annotated[str | None, typer.Option(help="Their language, which their invitation is written in: one of"
                                              " en, fr, de, es, it, pt, nl, ja (en when not given).")]
Group = Annotated[str | None, typer.Option(help="A user group of the account.")]
SettingsTemplate = Annotated[str | None, typer.Option(help="A settings template of the account.")]
RequestedBy = Annotated[str | None, typer.Option(
    help="Email of the account's admin or manager who adds them. Needed unless the workers trust this RabbitMQ user as a"
         " platform service (USERPROV_TRUSTED_PUBLISHERS unset, or naming it).")]


@app.command()
def add(
    account: Annotated[str, typer.Argument(help="The account to add them to.")],
    people: Annotated[str, typer.Argument(
        help='The pasted list: entries "First Last email" separated by ";" or line breaks (or three tab-separated fields);'
             " - reads it from standard input.")],
    product: Products = None,
    role: Role = None,
    language: Language = None,
    group: Group = None,
    settings_template: SettingsTemplate = None,
    requested_by: RequestedBy = None,
    wait: Annotated[float, typer.Option(min=0, help="Seconds to wait for the outcome (0: send and do not wait).")] = 60.0,
    as_json: Annotated[bool, typer.Option("--json", help="Each row's result as one JSON object per line.")] = False,
) -> None:
    """Add people to an account (a `users.add` through RabbitMQ at USERPROV_AMQP_URL) and print
    each row's result.

    Exit status 0 when every row is in the account (accepted, or a member already), 1 when some
    row or the whole command was refused, 2 when it could not be sent or had no outcome in time.

    Example: `userprov add acme-42 "Ada Lovelace ada@example.com; Alan Turing alan@example.com" -p gotomeeting`"""
    import sys

    from pydantic import ValidationError

    from contracts.commands import UsersAdd
    from userprov.operations.users_add import add as send

    pasted = sys.stdin.read() if people == "-" else people
    given = {"products": product, "role": role, "language": language, "group": group, "settings_template": settings_template,
             "requested_by": requested_by}
    try:
        command = UsersAdd.model_validate({"account_id": account, "pasted": pasted, **{k: v for k, v in given.items() if v is not None}})
    except ValidationError as error:
        for problem in error.errors():
            typer.echo(f"userprov add: {'.'.join(map(str, problem['loc']))}: {problem['msg']}", err=True)
        raise typer.Exit(2) from None
    amqp_url = Settings().amqp_url
    outcome = _run_bus(send(amqp_url, command, wait))
    if outcome.refused is not None:
        _print_refusal(outcome.refused, account, requested_by, amqp_url)
        raise typer.Exit(1)
    if outcome.completed is None:
        typer.echo(f"users.add {outcome.command_id} sent; not waiting for its outcome", err=True)
        return
    results = outcome.completed.results
    if as_json:
        for row in results:
            typer.echo(row.model_dump_json())
    else:
        rows = [[r.row, r.outcome, r.email, "; ".join(f"{e.field}: {e.code} ({e.message})" for e in r.errors)] for r in results]
        _print_table(("row", "outcome", "email", "errors"), rows)
    sys.stdout.flush()
    counts = {kind: sum(r.outcome == kind for r in results) for kind in ("accepted", "already_member", "rejected")}
    typer.echo(f"users.add {outcome.command_id}: {counts['accepted']} accepted, {counts['already_member']} already member(s),"
               f" {counts['rejected']} rejected", err=True)
    raise typer.Exit(1 if counts["rejected"] else 0)


@app.command("import")
def import_file(
    file: Annotated[str, typer.Argument(help="A CSV with the header first_name,last_name,email[,external_id] (UTF-8, with or without"
                                        " a byte order mark), or a text file in the pasted format.")],
    account: Annotated[str, typer.Option("--account", "-a", help="The account to add them to.")],
    product: Products = None,
    role: Role = None,
    language: Language = None,
    group: Group = None,
    settings_template: SettingsTemplate = None,
    requested_by: RequestedBy = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check every row against the account as it stands (outcome,"
                                          " invitation, seats): nothing is created or emailed.")] = False,
    results: Annotated[str | None, typer.Option("--results", help="Write a CSV with a line per row: row (the file's line),"
                                                " email, outcome, invitation, codes, message.")] = None,
    wait: Annotated[float, typer.Option(min=1, help="Seconds to follow the import: until every row has its outcome and every"
                                        " new member was emailed (or their email failed).")] = 3600.0,
    rows_per_command: Annotated[int, typer.Option(min=1, max=10_000, hidden=True,
                                                  help="Rows per users.add command (10,000).")] = 10_000,
) -> None:
    """Add the people of a file to an account: `users.add` commands of at most 10,000 rows through
    RabbitMQ at USERPROV_AMQP_URL, with a progress bar of the rows created and the emails sent,
    then a summary and, with --results, a results file.

    Run it again after a crash or a Ctrl-C, with the same file and options: the commands already
    sent are not sent again (their ids derive from the file and the options), and their outcomes
    are read. A file that cannot be read is refused with the line at fault, before anything is sent.

    Exit status 0 when every row is in the account (added, or a member already), 1 when some row or
    command was refused, 2 when the file is malformed or the import could not finish.

    Example: `userprov import people.csv -a acme-42 -p gotomeeting --dry-run --results check.csv`"""
    from pathlib import Path

    from pydantic import ValidationError

    from userprov.operations.import_file import MalformedFile, dialect, read_rows
    from userprov.operations.import_progress import ImportProgress
    from userprov.operations.import_results import outcomes, summary, unwritable, write_results
    from userprov.operations.users_import import ImportOptions, chunks, run_import

    if results is not None and (cannot := unwritable(Path(results), Path(file))) is not None:
        typer.echo(f"userprov import: --results {results} {cannot}; nothing was sent", err=True)
        raise typer.Exit(2)
    try:
        content = Path(file).read_bytes()
    except OSError as error:
        typer.echo(f"userprov import: {file}: {error.strerror}", err=True)
        raise typer.Exit(2) from None
    try:
        rows = read_rows(content)
    except MalformedFile as error:
        typer.echo(f"userprov import: {file}: {error}; nothing was sent", err=True)
        raise typer.Exit(2) from None
    options = ImportOptions(account, tuple(product or ()), role, language, group, settings_template, requested_by, dry_run)
    try:
        options.command(rows[:1])
    except ValidationError as error:
        for problem in error.errors():
            typer.echo(f"userprov import: {'.'.join(map(str, problem['loc']))}: {problem['msg']}", err=True)
        raise typer.Exit(2) from None
    commands = chunks(content, rows, options, rows_per_command)
    typer.echo(f"{file}: {len(rows)} row(s), {len(commands)} command(s){' (dry run)' if dry_run else ''}", err=True)
    try:
        with ImportProgress(dry_run) as show:
            state = _run_bus(run_import(Settings().amqp_url, commands, options, wait=wait, show=show))
    except KeyboardInterrupt:
        typer.echo("userprov import: interrupted; run the same command again to go on: no one is added twice", err=True)
        raise typer.Exit(2) from None
    for line in summary(state):
        typer.echo(line)
    if results is not None:
        write_results(Path(results), state, dialect(content))
        typer.echo(f"results: {results}", err=True)
    counted = outcomes(state)
    if not state.answered:
        typer.echo(f"userprov import: {counted['unknown']} row(s) without an outcome after {wait:g} s: the workers may still be at"
                   " it; run the same command again to follow them", err=True)
        raise typer.Exit(2)
    if not state.settled:
        typer.echo(f"userprov import: emails still going out after {wait:g} s; run the same command again to follow them", err=True)
    raise typer.Exit(1 if counted["rejected"] or counted["refused"] else 0)


def _print_refusal(refused, account: str, requested_by: str | None, amqp_url: str) -> None:  # noqa: ANN001
    from userprov.public_bus import amqp_user

    typer.echo(f"userprov add: refused: {refused.reason}: {refused.message}", err=True)
    for error in refused.errors:
        typer.echo(f"  {error.field}: {error.code}: {error.message}", err=True)
    if refused.reason == "forbidden" and requested_by is None:
        typer.echo(f"  The workers take a users.add without --requested-by only from a trusted platform service, and their"
                   f" USERPROV_TRUSTED_PUBLISHERS does not name RabbitMQ user {amqp_user(amqp_url)!r} (USERPROV_AMQP_URL's)."
                   " Name the admin or manager who adds them with --requested-by EMAIL, or publish as a trusted user.", err=True)
    elif refused.reason == "forbidden":
        typer.echo(f"  {requested_by} must be an active admin of account {account} (or a manager, to add people without a"
                   " role).", err=True)


@app.command()
def events(
    key: Annotated[list[str] | None, typer.Option(
        "--key", "-k", help="Only events with this routing key (repeatable; * and # as in RabbitMQ topics: user.*).")] = None,
    count: Annotated[int | None, typer.Option(min=1, help="Stop after this many events.")] = None,
    timeout: Annotated[float | None, typer.Option(min=0, help="Stop after this many seconds.")] = None,
) -> None:
    """Print the events on userprov.events (RabbitMQ at USERPROV_AMQP_URL) as they come, one JSON
    object per line (routing_key, message_id, correlation_id, type, timestamp, body), until
    Ctrl-C. The token of an accept or decline still published there is hidden.

    Only events published after it started are seen. Exit status 1 when --timeout passed before
    --count events came, 2 when RabbitMQ could not be reached or closed the connection.

    Example: `userprov events -k users.add.completed -k 'invitation.*' | jq .body`"""
    import os
    import signal
    import sys

    from userprov.operations.events import ConnectionLost, tail

    keys = key or []
    stop = asyncio.Event()

    def show(line: str) -> None:
        try:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        except BrokenPipeError:  # the reader went away (| head -1): stop, and leave nothing to flush at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            stop.set()

    def listening() -> None:
        typer.echo(f"listening to userprov.events for {', '.join(keys) if keys else 'every routing key'}: Ctrl-C to stop", err=True)

    async def until_stopped() -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        return await tail(Settings().amqp_url, keys, show, count=count, timeout=timeout, listening=listening, stop=stop,
                          on_waiting=lambda: typer.echo("waiting for the exchange userprov.events: userprov's workers declare it when"
                                                     " they start", err=True))

    try:
        shown = _run_bus(until_stopped())
    except ConnectionLost as error:
        typer.echo(f"userprov events: {error}", err=True)
        raise typer.Exit(2) from None
    if count is not None and shown < count and not stop.is_set():
        typer.echo(f"userprov events: {shown} of {count} event(s) within {timeout:g} s", err=True)
        raise typer.Exit(1)


@app.command()
def demo(
    mail_folder: Annotated[str, typer.Option(help="Where the mail catcher writes each email.")] = "demo-mail",
    keep_running: Annotated[bool | None, typer.Option(
        "--keep-running/--stop", help="After the story, keep the workers and the invitation page up until Ctrl-C or SIGTERM, and"
        " print an open invitation's link; or stop. By default they keep running when standard input is a terminal.",
        show_default=False)] = None,
) -> None:
    """Run the whole system locally: mail catcher, workers, an account, a pasted list of users.

    Each run drops and recreates its own database, `<database>_demo` (USERPROV_DATABASE_URL's
    database name with `_demo` added), so that people of an earlier run cannot change its story;
    it empties the mail folder of .eml files first. It uses RabbitMQ at USERPROV_AMQP_URL."""
    from pathlib import Path

    run_demo = _devtool("demo").run_demo

    settings = Settings()
    configure_logging("WARNING", settings.log_json)
    raise typer.Exit(asyncio.run(run_demo(settings, Path(mail_folder), keep_running)))


@app.command("mail-catcher")
def mail_catcher(
    folder: Annotated[str, typer.Option(help="Where each email is written (one .eml file each).")] = "demo-mail",
) -> None:
    """A development SMTP server that accepts every email and writes it to a folder, on
    USERPROV_SMTP_HOST and USERPROV_SMTP_PORT (what the workers send to): until Ctrl-C. It prints
    a line for each email: its recipient, subject and file.

    Files are named NUMBER-RECIPIENT.eml (an internationalised domain as its xn-- form), numbered
    on after the highest number already in the folder: it never overwrites an email, and keeps
    those of an earlier run."""
    import signal
    from pathlib import Path

    catcher = _devtool("mail_catcher")
    settings = Settings()
    handler = catcher.CatchingHandler(folder=Path(folder), on_written=catcher.announce)
    controller = catcher.start_mail_catcher(settings.smtp_host, settings.smtp_port, handler)
    typer.echo(f"catching emails on {settings.smtp_host}:{settings.smtp_port}, writing them to {Path(folder).resolve()}")
    stop = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)
    try:
        signal.sigwait(stop)
    finally:
        controller.stop()


LanesOption = Annotated[bool, typer.Option("--lanes", help="Start one more process, in the interactive lane, and these in the bulk lane.")]


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
    lanes: LanesOption = False,
) -> None:
    """Measure users/s end to end (publish to email accepted by SMTP) and per-user latency."""
    bench_tool = _devtool("bench")

    settings = Settings()
    configure_logging("WARNING", settings.log_json)
    load = bench_tool.Load(users=users, batch=batch, single=single, rate=rate, in_flight=in_flight)
    result = asyncio.run(bench_tool.run_bench(settings, load, processes, lanes))
    typer.echo(result.report())


@app.command("bench-neighbours")
def bench_neighbours(
    batch: Annotated[int, typer.Option(help="Account A's batch (in commands of at most 10,000 rows).")] = 20_000,
    interval: Annotated[float, typer.Option(help="Seconds between account B's one-person commands.")] = 0.2,
    processes: Annotated[int, typer.Option(help="Worker processes to start (0: use workers already running).")] = 2,
    lanes: LanesOption = False,
) -> None:
    """Account B's single adds alone and beside account A's batch, and A's throughput with and without B."""
    neighbours = _devtool("neighbours")

    settings = Settings()
    configure_logging("WARNING", settings.log_json)
    typer.echo(asyncio.run(neighbours.run_neighbours(settings, batch, processes, interval, lanes=lanes)).report())


@app.command("bench-hops")
def bench_hops(
    adds: Annotated[int, typer.Option(help="One-person commands, one at a time.")] = 100,
    beside: Annotated[int, typer.Option(help="Another account's batch being mailed meanwhile (0: none).")] = 0,
    processes: Annotated[int, typer.Option(help="Worker processes to start.")] = 2,
    lanes: LanesOption = False,
) -> None:
    """Where a single add's time goes, hop by hop, from the workers' OpenTelemetry spans (needs the otel extra)."""
    hops = _devtool("hops")

    settings = Settings()
    configure_logging("WARNING", settings.log_json)
    typer.echo(asyncio.run(hops.run_hops(settings, adds, processes, beside, lanes)))


parked_app = Typer(no_args_is_help=True, help="Parked messages: list, show, replay, purge.")
app.add_typer(parked_app, name="parked")

ServiceOption = Annotated[
    list[str] | None, typer.Option("--service", "-s", help=f"Only this service's parking queue (repeatable): {', '.join(routing.SERVICES)}.")
]
IdsArgument = Annotated[list[str] | None, typer.Argument(help="Ids of parked messages, as `parked list` shows them.")]
RoutingKeyOption = Annotated[str | None, typer.Option(help="Only messages first published with this routing key.")]
ReasonOption = Annotated[str | None, typer.Option(help="Only messages parked for this reason (e.g. processing_failed).")]
AllOption = Annotated[bool, typer.Option("--all", help="Every parked message (of the services chosen).")]


def _run_parked(operation):  # noqa: ANN001, ANN202
    """Runs one parked-messages operation; a missing parking queue or an unreachable broker is
    one line and exit status 2, not a traceback."""
    import aiormq

    from userprov.operations.parked import NoParkingQueue
    from userprov.runtime.broker import broker_failure

    try:
        return asyncio.run(operation)
    except NoParkingQueue as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from error
    except (aiormq.exceptions.AMQPError, ConnectionError, OSError) as error:
        typer.echo(f"userprov parked: {broker_failure(error, Settings().amqp_url)}", err=True)
        raise typer.Exit(2) from None


def _services(chosen: list[str] | None) -> list[str]:
    unknown = [s for s in chosen or [] if s not in routing.SERVICES]
    if unknown:
        raise typer.BadParameter(f"unknown service(s): {', '.join(unknown)}; choose from {', '.join(routing.SERVICES)}")
    return list(dict.fromkeys(chosen or routing.SERVICES))


def _selection(ids: list[str] | None, routing_key: str | None, reason: str | None, everything: bool):  # noqa: ANN202
    from userprov.operations.parked import Selection

    selection = Selection(frozenset(ids or ()), routing_key, reason, everything)
    if not selection.says_which:
        raise typer.BadParameter("say which messages: ids, --routing-key, --reason, or --all")
    return selection


@parked_app.command("list")
def parked_list(
    service: ServiceOption = None,
    routing_key: RoutingKeyOption = None,
    reason: ReasonOption = None,
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many.")] = 1000,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Parked messages: id, routing key, reason, first and last failure, attempts, correlation id;
    then how many, by reason."""
    import dataclasses
    import json
    import sys
    from collections import Counter

    from userprov.operations.parked import Selection, list_parked

    selection = Selection(routing_key=routing_key, reason=reason)
    found = _run_parked(list_parked(Settings().amqp_url, _services(service), limit, selection))
    if as_json:
        for parked in found:
            typer.echo(json.dumps(dataclasses.asdict(parked), ensure_ascii=False))
    else:
        columns = ("id", "service", "routing_key", "reason", "first_failure", "last_failure", "attempts", "correlation_id")
        _print_table(columns, [[getattr(p, c) for c in columns] for p in found])
    sys.stdout.flush()  # the summary follows the whole table, never inside it
    by_reason = Counter(p.reason for p in found).most_common()
    typer.echo(f"{len(found)} parked message(s)" + (": " + ", ".join(f"{r} {n}" for r, n in by_reason) if by_reason else ""), err=True)


@parked_app.command("show")
def parked_show(message_id: Annotated[str, typer.Argument(help="The id `parked list` shows.")], service: ServiceOption = None) -> None:
    """A parked message's properties, headers and body, with email addresses masked."""
    import json

    from userprov.operations.parked import show

    found = _run_parked(show(Settings().amqp_url, _services(service), message_id))
    if not found:
        typer.echo(f"no parked message {message_id!r}", err=True)
        raise typer.Exit(1)
    typer.echo(json.dumps(found if len(found) > 1 else found[0], indent=2, ensure_ascii=False))


@parked_app.command("replay")
def parked_replay(
    ids: IdsArgument = None,
    service: ServiceOption = None,
    routing_key: RoutingKeyOption = None,
    reason: ReasonOption = None,
    everything: AllOption = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be replayed; change nothing.")] = False,
) -> None:
    """Publish parked messages again where they were first published, with their message ids."""
    from userprov.operations.parked import replay

    report = _run_parked(replay(Settings().amqp_url, _services(service), _selection(ids, routing_key, reason, everything), dry_run=dry_run))
    _print_report(report)
    raise typer.Exit(1 if report.failed else 0)


@parked_app.command("purge")
def parked_purge(
    ids: IdsArgument = None,
    service: ServiceOption = None,
    routing_key: RoutingKeyOption = None,
    reason: ReasonOption = None,
    everything: AllOption = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete parked messages for good, after a confirmation."""
    from userprov.operations.parked import purge

    def confirm(count: int) -> bool:
        return yes or typer.confirm(f"Delete {count} parked message(s) for good?", default=False)

    report = _run_parked(purge(Settings().amqp_url, _services(service), _selection(ids, routing_key, reason, everything), confirm))
    _print_report(report)


def _print_table(columns: tuple[str, ...], rows: list[list[object]]) -> None:
    """One line per row, whatever its values hold (a parked message's properties may hold newlines)."""
    from contracts.text import printable

    cells = [[printable(str(v), 200).replace("\n", "\\n").replace("\t", " ") if v is not None else "-" for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[n]) for r in cells]) for n, c in enumerate(columns)]
    for row in [[c.upper() for c in columns], *cells]:
        typer.echo("  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)).rstrip())


def _print_report(report) -> None:  # noqa: ANN001
    import sys

    for outcome in report.outcomes:
        parked = outcome.parked
        typer.echo(f"{outcome.result}\t{parked.service}\t{parked.id}\t{parked.routing_key}\t{parked.reason}")
    sys.stdout.flush()
    typer.echo(f"{len(report.outcomes)} message(s) selected, {report.failed} failed", err=True)


invitations_app = Typer(no_args_is_help=True, help="Failed invitations: list them, send them again.")
app.add_typer(invitations_app, name="invitations")
AccountOption = Annotated[str | None, typer.Option("--account", "-a", help="Only this account.")]


def _run_bus(operation):  # noqa: ANN001, ANN202
    """Runs one operation over the bus; an unreachable broker or no answer is one line and exit 2."""
    import aiormq

    from userprov.public_bus import NoAnswer
    from userprov.runtime.broker import broker_failure

    try:
        return asyncio.run(operation)
    except NoAnswer as error:
        typer.echo(f"userprov: {error}", err=True)
        raise typer.Exit(2) from None
    except BrokenPipeError:  # standard output's reader went away: the caller's to say
        raise
    except (aiormq.exceptions.AMQPError, ConnectionError, OSError) as error:
        typer.echo(f"userprov: {broker_failure(error, Settings().amqp_url)}", err=True)
        raise typer.Exit(2) from None


@invitations_app.command("failed")
def invitations_failed(
    account: AccountOption = None,
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many.")] = 1000,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """People whose latest invitation failed and who still wait for one, oldest failure first."""
    from userprov.operations.invitations import failed

    found = _run_bus(failed(Settings().amqp_url, account, limit))
    if as_json:
        for invitation in found:
            typer.echo(invitation.model_dump_json())
    else:
        columns = ("failed_at", "account_id", "email", "kind", "reason")
        _print_table(columns, [[getattr(i, c) for c in columns] for i in found])
    typer.echo(f"{len(found)} failed invitation(s)", err=True)


@invitations_app.command("retry-failed")
def invitations_retry_failed(
    account: AccountOption = None,
    every_account: Annotated[bool, typer.Option("--every-account", help="The failed invitations of every account.")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation (with --every-account).")] = False,
) -> None:
    """Send a fresh invitation to everyone whose latest one failed, in an account or in every account."""
    from userprov.operations.invitations import retry_failed

    if (account is None) == (not every_account):
        raise typer.BadParameter("say which: --account ACCOUNT or --every-account")
    if every_account and not yes and not typer.confirm("Send fresh invitations to everyone whose invitation failed, in every account?"):
        raise typer.Exit(1)
    outcome = _run_bus(retry_failed(Settings().amqp_url, account))
    if outcome.retried is None:
        typer.echo(f"refused ({outcome.command_id}): {outcome.refusal}", err=True)
        raise typer.Exit(1)
    typer.echo(f"{outcome.retried} invitation(s) issued again ({outcome.command_id}); each is announced by invitation.sent or .failed")


scim_app = Typer(no_args_is_help=True, help="SCIM 2.0 for identity providers (Okta, Microsoft Entra).")
app.add_typer(scim_app, name="scim")
scim_token_app = Typer(no_args_is_help=True, help="Bearer tokens of SCIM clients, one account each.")
scim_app.add_typer(scim_token_app, name="token")


@scim_app.command("serve")
def scim_serve(
    host: Annotated[str | None, typer.Option(help="Listen on this address instead of USERPROV_SCIM_HOST (default 127.0.0.1;"
                                             " 0.0.0.0: every interface).")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Listen on this port instead of USERPROV_SCIM_PORT"
                                             " (default 8090).")] = None,
) -> None:
    """Serve SCIM 2.0 at /scim/v2, until SIGTERM.

    Identity providers authenticate with a bearer token (`userprov scim token create`); it asks
    the workers through RabbitMQ at USERPROV_AMQP_URL. USERPROV_SCIM_WAIT_SECONDS,
    USERPROV_SCIM_BODY_BYTES and docs/reference/scim.md say the rest."""
    from userprov.scim.server import serve

    settings = _listening("scim", host, port)
    configure_logging(settings.log_level, settings.log_json)
    serve(settings)


@scim_token_app.command("create")
def scim_token_create(account: Annotated[str, typer.Argument(help="The account the token acts on.")]) -> None:
    """Makes a bearer token for an identity provider and prints it once: userprov keeps only its hash."""
    from userprov.operations.scim_tokens import create

    created = _run_bus(create(Settings().amqp_url, account))
    if created.token is None:
        typer.echo(f"refused: {created.refusal}", err=True)
        raise typer.Exit(1)
    typer.echo(created.token)
    typer.echo(f"token id {created.token_id} for account {account}: give the token to the identity provider now, it is not"
               " shown again; `userprov scim token revoke` takes its id", err=True)


@scim_token_app.command("revoke")
def scim_token_revoke(token_id: Annotated[str, typer.Argument(help="The id `create` printed.")]) -> None:
    """Stops a token from working."""
    import uuid

    from userprov.operations.scim_tokens import revoke

    try:
        parsed = uuid.UUID(token_id)
    except ValueError:
        raise typer.BadParameter(f"{token_id!r} is not a token id") from None
    refusal = _run_bus(revoke(Settings().amqp_url, parsed))
    if refusal is not None:
        typer.echo(f"refused: {refusal}", err=True)
        raise typer.Exit(1)
    typer.echo(f"token {parsed} revoked", err=True)


audit_app = Typer(no_args_is_help=True, help="An account's audit trail: export it for a SIEM, verify its hash chain.")
app.add_typer(audit_app, name="audit")
AuditAccount = Annotated[str, typer.Argument(help="The account.")]


class ExportFormat(StrEnum):
    jsonl = "jsonl"
    ocsf = "ocsf"


def _time(option: str, value: str | None):  # noqa: ANN202
    """An ISO 8601 time; without a time zone, UTC."""
    from datetime import UTC, datetime

    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is no ISO 8601 time (e.g. 2026-11-30 or 2026-11-30T09:30:00Z)",
                                 param_hint=option) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


@audit_app.command("export")
def audit_export(
    account: AuditAccount,
    since: Annotated[str | None, typer.Option(
        help="Only entries at or after this ISO 8601 time (UTC when it names no zone).")] = None,
    until: Annotated[str | None, typer.Option(
        help="Only entries before this ISO 8601 time (UTC when it names no zone).")] = None,
    output_format: Annotated[ExportFormat, typer.Option(
        "--format", help="jsonl: each entry as audit.list gives it, with its account_id; ocsf: each entry as an OCSF"
        " 1.8.0 event.")] = ExportFormat.jsonl,
) -> None:
    """Print an account's audit entries to standard output, oldest first, one JSON object per line
    (through the audit.list query, at RabbitMQ at USERPROV_AMQP_URL): for a SIEM, whose ingestion
    keeps the order of the lines. Exit status 2 when they could not be read (RabbitMQ
    unreachable, no answer, an unknown account, or a RabbitMQ user the workers do not trust), or
    the reader closed its end before the last one."""
    import os
    import sys

    from userprov.operations.audit import export

    written = 0

    def write(line: str) -> None:
        nonlocal written
        sys.stdout.write(line + "\n")
        written += 1

    started, ended = _time("--since", since), _time("--until", until)
    if started is not None and ended is not None and started > ended:
        raise typer.BadParameter("--since is after --until")
    try:
        _run_bus(export(Settings().amqp_url, account, write, since=started, until=ended, format=output_format.value))
        sys.stdout.flush()
    except BrokenPipeError:  # the reader went away (| head, a forwarder that died): not every entry reached it
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing left to flush at exit
        typer.echo(f"userprov audit export: the reader closed standard output after {written} entries: the export is"
                   " incomplete", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{written} audit entr{'y' if written == 1 else 'ies'} of account {account}", err=True)


@audit_app.command("verify")
def audit_verify(account: AuditAccount) -> None:
    """Re-compute an account's hash chain from its checkpoint (the last entry retention removed),
    reading every entry through audit.list (RabbitMQ at USERPROV_AMQP_URL).

    Exit status 0 when the chain holds; 1 when it does not, naming the first entry changed,
    deleted or reordered; 2 when it could not be checked (RabbitMQ unreachable, no answer, an
    unknown account, or a RabbitMQ user the workers do not trust)."""
    from userprov.operations.audit import verify

    verified = _run_bus(verify(Settings().amqp_url, account))
    if verified.broken is not None:
        broken = verified.broken
        typer.echo(f"account {account}: the chain is broken at entry {broken.seq} ({broken.kind}): {broken.message}")
        raise typer.Exit(1)
    since = f"from checkpoint {verified.checkpoint}" if verified.checkpoint else "from its first entry"
    typer.echo(f"account {account}: the chain holds, {since} to entry {verified.head} (hash {verified.head_hash.hex()})")


def _devtool(name: str):  # noqa: ANN202
    """A module of the development tools, which the workers' image does not install."""
    import importlib

    try:
        return importlib.import_module(f"userprov_devtools.{name}")
    except ModuleNotFoundError as error:
        raise typer.BadParameter(f"`userprov {name}` needs the development tools: pip install -e '.[dev]'") from error


if __name__ == "__main__":
    app()
