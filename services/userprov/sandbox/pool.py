"""The parent side of template rendering: a few long-lived child processes (userprov.sandbox.child),
each render bounded in time (the child is killed and replaced when it overruns), in memory
(the child's RLIMIT_AS) and in output size.

A template that hit the time or memory bound is remembered for a while (by its source), and
renders of it fail at once instead of occupying a child again: a hostile template costs its
tenant one bounded attempt per process, and the other tenants nothing but that attempt."""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

import structlog

log = structlog.get_logger()

QUARANTINE_SIZE = 1024
LIMIT_CODES = frozenset({"timeout", "memory", "crashed"})
START_SECONDS = 10.0  # an interpreter's start and imports, on a busy machine
# A rendered character is at most 12 bytes of the child's ASCII-only JSON (an astral character
# is two \uXXXX escapes); the rest of the line is a little JSON.
BYTES_PER_CHARACTER = 12


class RenderFailed(Exception):
    """`code`: syntax, unsafe, error, too_large, timeout, memory, crashed or too_slow; `part`: which template."""

    def __init__(self, code: str, message: str, part: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.part = part


@dataclass(frozen=True)
class SandboxLimits:
    renderers: int = 2
    timeout_seconds: float = 1.0
    memory_mb: int = 256
    max_output_chars: int = 100_000
    quarantine_seconds: float = 600.0
    slow_seconds: float = 0.5  # a template whose renders take longer than this SLOW_RENDERS times falls back
    slow_renders: int = 3


class _Child:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.requests = 0

    async def ask(self, request: dict[str, object]) -> dict[str, object]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(request).encode() + b"\n")
        await self.process.stdin.drain()
        line = await self.process.stdout.readline()
        if not line:
            raise EOFError("the renderer exited")
        return json.loads(line)

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()


class TemplateSandbox:
    def __init__(self, limits: SandboxLimits) -> None:
        self.limits = limits
        self._idle: list[_Child] = []
        self._slots = asyncio.Semaphore(limits.renderers)
        self._quarantine: OrderedDict[str, tuple[float, RenderFailed]] = OrderedDict()
        self._slow: dict[str, int] = {}  # slow renders so far, by template
        self._next_id = 0
        self._closed = False

    async def render(self, templates: Mapping[str, str], context: Mapping[str, object]) -> dict[str, str]:
        """Each template rendered with the context, or RenderFailed."""
        key = _key(templates)
        known = self._known_failure(key)
        if known is not None:
            raise known
        async with self._slots:
            known = self._known_failure(key)  # another render may have hit the bound meanwhile
            if known is not None:
                raise known
            started = time.monotonic()
            try:
                rendered = await self._render_in_child(templates, context)
            except RenderFailed as failure:
                if failure.code in LIMIT_CODES:
                    self._remember(key, failure)
                raise
            if time.monotonic() - started > self.limits.slow_seconds:
                self._note_slow(key)
            return rendered

    async def close(self) -> None:
        self._closed = True
        children, self._idle = self._idle, []
        for child in children:
            child.kill()
        await asyncio.gather(*(c.process.wait() for c in children), return_exceptions=True)

    async def _render_in_child(self, templates: Mapping[str, str], context: Mapping[str, object]) -> dict[str, str]:
        child = self._idle.pop() if self._idle else await self._spawn()
        self._next_id += 1
        request = {"id": self._next_id, "templates": dict(templates), "context": dict(context)}
        try:
            async with asyncio.timeout(self.limits.timeout_seconds):
                reply = await child.ask(request)
        except TimeoutError:
            child.kill()
            await child.process.wait()
            raise RenderFailed("timeout", f"rendering took longer than {self.limits.timeout_seconds} s") from None
        except (EOFError, ConnectionError, ValueError) as error:  # killed by the kernel, or its pipe broke
            child.kill()
            await child.process.wait()
            raise RenderFailed("crashed", f"the renderer stopped: {type(error).__name__}") from None
        except BaseException:
            child.kill()  # cancelled mid-render: its answer would be read by the next request
            raise
        if reply.get("exit"):
            await child.process.wait()
        elif not self._closed:
            self._idle.append(child)
        else:
            child.kill()
        if "parts" in reply:
            return dict(cast(dict[str, str], reply["parts"]))
        raise RenderFailed(str(reply["code"]), str(reply["message"]), str(reply.get("part")))

    async def _spawn(self) -> _Child:
        """A child that answered a first, empty request (a cold interpreter takes a while to
        import: that does not count against the first template), or RenderFailed."""
        child: _Child | None = None
        try:
            async with asyncio.timeout(START_SECONDS):
                child = _Child(await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "userprov.sandbox.child",
                    str(self.limits.memory_mb),
                    str(self.limits.max_output_chars),
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    env=child_environment(),
                    limit=BYTES_PER_CHARACTER * self.limits.max_output_chars + 65536,
                ))
                warm = await child.ask({"id": 0, "templates": {}, "context": {}})
            if "parts" not in warm:
                raise ValueError(f"it answered {warm!r}")
            return child
        except (OSError, EOFError, ValueError, TimeoutError) as error:
            if child is not None:
                child.kill()
                await child.process.wait()
            raise RenderFailed("crashed", f"the renderer did not start: {type(error).__name__}") from None
        except BaseException:
            if child is not None:
                child.kill()
            raise

    def _known_failure(self, key: str) -> RenderFailed | None:
        entry = self._quarantine.get(key)
        if entry is None:
            return None
        until, failure = entry
        if until < time.monotonic():
            del self._quarantine[key]
            return None
        return failure

    def _note_slow(self, key: str) -> None:
        """A template within the time bound but slow in practice holds the renderers that every
        tenant shares: after a few slow renders it is quarantined like one that hit the bound."""
        self._slow[key] = self._slow.pop(key, 0) + 1
        while len(self._slow) > QUARANTINE_SIZE:
            del self._slow[next(iter(self._slow))]
        if self._slow[key] >= self.limits.slow_renders:
            del self._slow[key]
            self._remember(key, RenderFailed(
                "too_slow", f"{self.limits.slow_renders} renders took longer than {self.limits.slow_seconds} s each"))

    def _remember(self, key: str, failure: RenderFailed) -> None:
        log.warning("template_quarantined", code=failure.code, seconds=self.limits.quarantine_seconds)
        self._quarantine[key] = (time.monotonic() + self.limits.quarantine_seconds, failure)
        while len(self._quarantine) > QUARANTINE_SIZE:
            self._quarantine.popitem(last=False)


def child_environment() -> dict[str, str]:
    """Nothing of the worker's environment (its database, AMQP and SMTP secrets among it): only
    where to find the code, and hash randomisation."""
    return {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p), "PYTHONHASHSEED": "random", "PYTHONUTF8": "1"}


def _key(templates: Mapping[str, str]) -> str:
    digest = hashlib.sha256()
    for part in sorted(templates):
        digest.update(part.encode() + b"\0" + templates[part].encode("utf-8", "surrogatepass") + b"\0")
    return digest.hexdigest()
