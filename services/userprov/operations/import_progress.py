"""How `userprov import` shows its progress: rows created and emails sent, as rich progress bars
on a terminal, as a plain line every few seconds otherwise (a log, a CI job, a pipe)."""
from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from userprov.operations.users_import import Import

PLAIN_EVERY_SECONDS = 5.0


class ImportProgress:
    """A context manager; call it with the import's state as often as it changes."""

    def __init__(self, dry_run: bool, out: TextIO | None = None) -> None:
        self._out = out or sys.stdout
        self._dry_run = dry_run
        self._bars: Progress | None = None
        self._last_line = ""
        self._last_at = 0.0
        if self._out.isatty():
            self._bars = Progress(TextColumn("{task.description:>8}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                  console=Console(file=self._out))
            self._created = self._bars.add_task("checked" if dry_run else "created", total=None)
            self._emailed = None if dry_run else self._bars.add_task("emailed", total=None)

    def __enter__(self) -> ImportProgress:
        if self._bars is not None:
            self._bars.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        if self._bars is not None:
            self._bars.stop()

    def __call__(self, state: Import) -> None:
        answered = sum(len(s.chunk.rows) for s in state.states if s.answered)
        if self._bars is not None:
            self._bars.update(self._created, total=state.rows, completed=answered if self._dry_run else state.created)
            if self._emailed is not None:
                self._bars.update(self._emailed, total=max(state.created, 1), completed=state.emailed)
            return
        line = (f"checked {answered}/{state.rows} rows" if self._dry_run else
                f"created {state.created}/{state.rows}, emailed {state.emailed}/{state.created}, failed {state.failed}")
        now = time.monotonic()
        if line != self._last_line and (now - self._last_at >= PLAIN_EVERY_SECONDS or state.settled or not self._last_line):
            self._out.write(line + "\n")
            self._out.flush()
            self._last_line, self._last_at = line, now
