"""`userprov import`: a file's rows sent as `users.add` commands of at most 10,000 rows, whose
message ids derive from the file's content, the options and the command's place in the file: a
second run of the same import (after a crash, a Ctrl-C, a lost connection) sends the same
commands, which the workers take once (their inbox), and reads what became of those already
handled with `commands.get` rather than sending them again. Progress comes from `commands.get`
too, polled without the events until a command's outcome is there."""
from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

from contracts import routing
from contracts.commands import UsersAdd
from contracts.events import CommandRejected, RowResult, UsersAddCompleted
from contracts.queries import AddProgress, CommandsGet, CommandsGetReply
from userprov.operations.bus import public_bus
from userprov.operations.import_file import FileRow
from userprov.public_bus import NoAnswer, PublicBus

ROWS_PER_COMMAND = 10_000  # UsersAdd.users' bound
_IDS = uuid.uuid5(uuid.NAMESPACE_URL, "userprov import")


@dataclass(frozen=True)
class ImportOptions:
    """What every command of the import says besides its rows."""

    account_id: str
    products: tuple[str, ...] = ()
    role: str | None = None
    language: str | None = None
    group: str | None = None
    settings_template: str | None = None
    requested_by: str | None = None
    dry_run: bool = False

    def command(self, rows: Sequence[FileRow]) -> UsersAdd:
        given = {k: v for k, v in asdict(self).items() if v is not None and k not in ("products", "dry_run")}
        return UsersAdd.model_validate({**given, "products": list(self.products), "users": [r.as_new_user() for r in rows],
                                        **({"dry_run": True} if self.dry_run else {})})


@dataclass(frozen=True)
class Chunk:
    message_id: str
    rows: list[FileRow]


def chunks(content: bytes, rows: Sequence[FileRow], options: ImportOptions, size: int = ROWS_PER_COMMAND) -> list[Chunk]:
    """The commands of the import, each with its message id: the same file with the same options
    always gives the same ids; a byte changed, or an option, gives others."""
    what = {"file": hashlib.sha256(content).hexdigest(), "options": {**asdict(options), "products": sorted(options.products)},
            "rows_per_command": size}
    key = hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()
    return [Chunk(str(uuid.uuid5(_IDS, f"{key}:{n}")), list(rows[start : start + size]))
            for n, start in enumerate(range(0, len(rows), size))]


@dataclass
class ChunkState:
    chunk: Chunk
    known_before: bool = False  # handled by an earlier run: not sent again
    completed: UsersAddCompleted | None = None
    refused: CommandRejected | None = None
    progress: AddProgress | None = None

    @property
    def answered(self) -> bool:
        return self.completed is not None or self.refused is not None

    @property
    def settled(self) -> bool:
        """Its outcome is known and, unless it was a dry run or refused, each new member was emailed, failed or left."""
        if self.refused is not None or (self.completed is not None and self.completed.dry_run):
            return True
        if self.completed is None or self.progress is None:
            return False
        return self.progress.done


@dataclass
class Import:
    states: list[ChunkState]
    resumed: int = 0  # commands an earlier run had sent already
    rows: int = field(init=False)

    def __post_init__(self) -> None:
        self.rows = sum(len(s.chunk.rows) for s in self.states)

    @property
    def created(self) -> int:
        return sum(s.progress.created if s.progress else 0 for s in self.states)

    @property
    def emailed(self) -> int:
        return sum(s.progress.emailed if s.progress else 0 for s in self.states)

    @property
    def failed(self) -> int:
        return sum(s.progress.failed if s.progress else 0 for s in self.states)

    @property
    def answered(self) -> bool:
        return all(s.answered for s in self.states)

    @property
    def settled(self) -> bool:
        return all(s.settled for s in self.states)

    def results(self) -> list[tuple[FileRow, RowResult | None, CommandRejected | None]]:
        """Each row of the file with its result, or its command's refusal; (None, None) when unknown."""
        found = []
        for state in self.states:
            by_row = {r.row: r for r in state.completed.results} if state.completed else {}
            found += [(row, by_row.get(n), state.refused) for n, row in enumerate(state.chunk.rows, start=1)]
        return found


Show = Callable[[Import], None]


async def run_import(amqp_url: str, chunks_: Sequence[Chunk], options: ImportOptions, *, wait: float, show: Show,
                     poll_seconds: float = 1.0) -> Import:
    """Sends the commands that no earlier run sent and follows them all until each has its
    outcome and (not a dry run) its emails went out or failed, or `wait` seconds passed; what
    was known then. `show` is called after each round of `commands.get`."""
    state = Import([ChunkState(c) for c in chunks_])
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    async with public_bus(amqp_url, "userprov import") as bus:
        for chunk_state in state.states:
            await _update(bus, chunk_state)
            chunk_state.known_before = chunk_state.answered
            if not chunk_state.answered:
                await bus.publish(routing.USERS_ADD, options.command(chunk_state.chunk.rows), message_id=chunk_state.chunk.message_id)
        state.resumed = sum(s.known_before for s in state.states)
        show(state)
        while not state.settled and loop.time() < deadline:
            await asyncio.sleep(poll_seconds)
            for chunk_state in state.states:
                if not chunk_state.settled:
                    await _update(bus, chunk_state)
            show(state)
    return state


async def _update(bus: PublicBus, state: ChunkState) -> None:
    """Its progress; its outcome, the first time it is there (asked once with the events)."""
    found = await _commands_get(bus, state.chunk.message_id, include_events=False)
    if not found.found:
        return
    state.progress = found.progress
    if state.answered:
        return
    found = await _commands_get(bus, state.chunk.message_id, include_events=True)
    for event in found.events:
        if event.type == routing.USERS_ADD_COMPLETED:
            state.completed = UsersAddCompleted.model_validate(event.body)
        elif event.type == routing.COMMAND_REJECTED:
            state.refused = CommandRejected.model_validate(event.body)
    state.progress = found.progress or state.progress


async def _commands_get(bus: PublicBus, command_id: str, *, include_events: bool, timeout: float = 30.0) -> CommandsGetReply:
    answer = await bus.ask(routing.COMMANDS_GET, CommandsGet(command_id=command_id, include_events=include_events), timeout)
    if answer.type == routing.COMMAND_REJECTED:
        raise NoAnswer(f"commands.get was refused: {answer.body.decode(errors='replace')}")
    return CommandsGetReply.model_validate_json(answer.body)
