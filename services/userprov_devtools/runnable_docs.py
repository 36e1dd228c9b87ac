"""The documentation's runnable examples, run as a reader would run them, in the order shown,
so that a page cannot show a command that fails or an output it does not give.

A page's fenced blocks are its steps: `sh` blocks run line by line in a shell (a line ending in
`\\` goes on on the next; a line ending in ` &` keeps running in the background, as it does in a
reader's shell, until `stop`), their output what the reader's terminal shows, standard output and
error together, and a command that exits other than 0 fails the page; `python` blocks run as
in `python -m asyncio` (one namespace for the whole page, `await` allowed at the top level, each
top-level statement compiled as the prompt compiles what is typed into it, so that the value of
a bare expression, such as `await bus.publish(...)`, is echoed as the prompt echoes it); a `text`
block right after one of them is the output it must print, where `...` stands for any text
(doctest's ELLIPSIS). Other blocks (`json`, `console`, ...) are shown, not
run. A MyST comment line `% test: NAME ARGS` is a step the test does the reader's way, by a hook
the test gives (say, clicking a button in a browser): it is not shown on the page."""
from __future__ import annotations

import ast
import contextlib
import doctest
import io
import os
import re
import signal
import subprocess
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RUN = frozenset({"sh", "python"})
FENCE = re.compile(r"^(?P<fence>`{3,})(?P<info>[^`]*)$")
HOOK = re.compile(r"^% test: (?P<name>[\w-]+)(?P<args>.*)$")


@dataclass(frozen=True)
class Step:
    kind: str  # sh, python, hook, or another block's language (shown, not run)
    text: str  # the block's code, or the hook's arguments
    line: int  # where it starts on the page (1-based)
    name: str = ""  # a hook's name
    output: str | None = None  # the output a runnable block must print


def steps(page: Path) -> list[Step]:
    """The page's blocks and hooks in order, each runnable block with the output shown after it."""
    found: list[Step] = []
    lines = page.read_text(encoding="utf-8").split("\n")
    n = 0
    while n < len(lines):
        line = lines[n]
        if hook := HOOK.match(line):
            found.append(Step("hook", hook["args"].strip(), n + 1, hook["name"]))
        elif fence := FENCE.match(line):
            end = next(i for i in range(n + 1, len(lines)) if lines[i].startswith(fence["fence"]) and not lines[i].strip("`"))
            kind = fence["info"].strip().split(" ")[0]
            body = "\n".join(lines[n + 1:end]) + "\n"
            if kind == "text" and found and found[-1].kind in RUN and found[-1].output is None:
                found[-1] = Step(found[-1].kind, found[-1].text, found[-1].line, output=body)
            else:
                found.append(Step(kind, body, n + 1))
            n = end
        n += 1
    return found


class ExampleFailed(AssertionError):
    pass


def check_output(step: Step, printed: str) -> None:
    if step.output is None:
        return
    checker = doctest.OutputChecker()
    if not checker.check_output(step.output, printed, doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE):
        raise ExampleFailed(f"the block at line {step.line} printed\n{printed}\nbut the page shows\n{step.output}")


Hook = Callable[[dict[str, Any], str], Awaitable[None]]


@dataclass
class Runner:
    """Runs a page's steps with `env` (added to this process's environment, for the shell and
    for the Python blocks alike) in the folder `cwd`."""

    env: Mapping[str, str]
    cwd: Path
    hooks: Mapping[str, Hook] = field(default_factory=dict)
    namespace: dict[str, Any] = field(default_factory=lambda: {"__name__": "__main__"})
    background: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    async def run(self, page_steps: list[Step]) -> None:
        for step in page_steps:
            if step.kind == "sh":
                self.shell(step)
            elif step.kind == "python":
                await self.python(step)
            elif step.kind == "hook":
                if step.name not in self.hooks:
                    raise ExampleFailed(f"line {step.line}: the test has no hook {step.name!r}")
                await self.hooks[step.name](self.namespace, step.text)

    def _environment(self) -> dict[str, str]:
        return {**os.environ, **self.env}

    def shell(self, step: Step) -> None:
        printed = []
        lines = step.text.replace("\\\n", " ").split("\n")  # a line ending in a backslash goes on on the next
        for command in [c for c in lines if c.strip() and not c.lstrip().startswith("#")]:
            command = command.split("  #", 1)[0].strip()  # a comment after the command
            if command.endswith("&"):
                log = self.cwd / f"background-{len(self.background)}.log"
                self.logs.append(log)
                with log.open("wb") as out:
                    self.background.append(subprocess.Popen(["bash", "-c", "exec " + command.rstrip("&").strip()], cwd=self.cwd,
                                                            env=self._environment(), stdout=out, stderr=subprocess.STDOUT,
                                                            start_new_session=True))
                continue
            done = subprocess.run(["bash", "-c", command], cwd=self.cwd, env=self._environment(), stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, timeout=300, stdin=subprocess.DEVNULL)
            if done.returncode != 0:
                raise ExampleFailed(f"line {step.line}: `{command}` exited {done.returncode}:\n{done.stdout}")
            printed.append(done.stdout)
        check_output(step, "".join(printed))

    async def python(self, step: Step) -> None:
        where = f"<block at line {step.line}>"
        statements = [compile(ast.Interactive(body=[statement]), where, "single", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
                      for statement in ast.parse(step.text, where).body]
        printed = io.StringIO()
        saved = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)
        cwd = Path.cwd()
        os.chdir(self.cwd)
        try:
            with contextlib.redirect_stdout(printed):  # sys.displayhook writes to sys.stdout too
                for code in statements:
                    result = eval(code, self.namespace)
                    if result is not None and hasattr(result, "__await__"):
                        await result
        finally:
            os.chdir(cwd)
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        check_output(step, printed.getvalue())

    def stop(self) -> str:
        """Stops what runs in the background (as Ctrl-C would); returns what it printed."""
        for process in self.background:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for process in self.background:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        return "\n".join(f"== {log.name}\n{log.read_text(errors='replace')[-3000:]}" for log in self.logs if log.exists())
