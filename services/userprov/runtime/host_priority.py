"""Interactive work in hand, told across the processes of one host: the bulk lane holds for it.

`nice` gives the interactive lane's own process the cores first, but not the work the bulk lane
keeps handing to PostgreSQL, RabbitMQ and the SMTP server, which serve both lanes at one
priority. Measured in the noisy-neighbour test, a one-person add beside another account's
lookup or mailing took 2-6x its latency alone with the bulk processes running, and 1.2-1.5x with
them stopped while it was in hand: what slows it is the bulk lane's next steps, not the work
already in flight. So an interactive process says when it has work in hand, and a bulk process
on the same host holds before its next step, as bulk work holds for interactive work within a
process (userprov.runtime.priority): at most MAX_HOLD_SECONDS at a time, so slowed, never
stopped.

The word is a small shared file (memory-mapped; under /dev/shm by default): one slot per
interactive process, which holds the time.time() its latest piece of work in hand began, or 0. A bulk process
reads every slot before each step; a slot busy for longer than STALE_SECONDS is ignored (its
process died with work in hand, or is stuck). Lanes order processes that share a kernel, and so
does this: processes on other hosts, or in containers that do not share the directory, do not
hear each other, and each lane still works alone."""
from __future__ import annotations

import hashlib
import mmap
import os
import time
from pathlib import Path

import structlog

from userprov.db.urls import database_name, host_of

log = structlog.get_logger()

SLOTS = 256
STALE_SECONDS = 5.0
_SLOT_BYTES = 8


def path_for(directory: Path, database_url: str) -> Path:
    deployment = f"{host_of(database_url)}/{database_name(database_url)}"
    return directory / ("userprov-lanes-" + hashlib.sha256(deployment.encode()).hexdigest()[:16])


class HostPriority:
    def __init__(self, path: Path, slot: int, stale_seconds: float = STALE_SECONDS) -> None:
        # the directory is shared (/dev/shm): a link planted at the name must not make this write elsewhere
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            if os.fstat(fd).st_size < SLOTS * _SLOT_BYTES:
                os.ftruncate(fd, SLOTS * _SLOT_BYTES)
            self._map = mmap.mmap(fd, SLOTS * _SLOT_BYTES)
        finally:
            os.close(fd)
        self._slots = memoryview(self._map).cast("d")
        self._slot = slot % SLOTS
        self._stale = stale_seconds
        self.path = path

    @classmethod
    def open(cls, directory: Path, database_url: str) -> HostPriority | None:
        """The file that the processes of one deployment (named by its database: host and name)
        share in `directory`; None, and a warning, when it cannot be opened."""
        try:
            return cls(path_for(directory, database_url), os.getpid())
        except OSError as error:
            log.warning("host_priority_unavailable", directory=str(directory), error=repr(error),
                        action="lanes still work, but the bulk lane does not hold for interactive work in other processes")
            return None

    def busy(self) -> None:
        """This (interactive) process has work in hand from now."""
        self._slots[self._slot] = time.time()

    def clear(self) -> None:
        """This process has no interactive work in hand."""
        self._slots[self._slot] = 0.0

    def interactive_elsewhere(self) -> bool:
        """Whether an interactive process of the host has work in hand (for a bulk process)."""
        # a torn or garbled slot reads as some number: one out of range is ignored. Read on every
        # step of the bulk lane: the slots are copied out at once, and the idle ones (0) dropped first.
        now = time.time()
        recent = now - self._stale
        return any(since <= now + 1 for since in self._slots.tolist() if since > recent)
