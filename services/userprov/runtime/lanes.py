"""Lanes: processes that let the operating system keep interactive work ahead of bulk work.

Within a process small work goes first (userprov.runtime.priority), but the kernel shares the
cores between all runnable processes at equal weight. Beside a paste that keeps the cores busy,
each hop of a one-person add (the worker, its PostgreSQL backend, the SMTP server) waits for a
slice: measured here, four busy loops at equal priority took a one-person add alone from p50 12
to 35 ms; at nice 19, to 15 ms. A process in the bulk lane runs at a lower CPU priority, so the
kernel gives a slice to interactive work first.

- `all` (the default): everything, as before lanes.
- `interactive`: consumes every service's queue and does their small work at once (the express
  lanes); hands large commands to the bulk lane (userprov.runtime.handoff) and takes no batch
  from PostgreSQL.
- `bulk`: at `niceness`, does the large commands handed to it (their bulk queues) and takes the
  batches; of the service queues it consumes only those that carry nothing but wake-up signals,
  so that no one's small command, query or answer waits in it. A signal that reaches another
  lane still wakes it at its next poll.

Niceness orders the processes of one cgroup. Where each lane runs in a container of its own (a
Kubernetes pod), the kernel weighs the containers' cgroups first, by their cpu.weight, which
Kubernetes derives from the pods' CPU requests: there the requests rank the lanes
(docs/how-to/lanes.md, "On Kubernetes")."""
from __future__ import annotations

import os
from collections.abc import Mapping
from enum import StrEnum
from typing import Any


class Lane(StrEnum):
    ALL = "all"
    INTERACTIVE = "interactive"
    BULK = "bulk"

    @property
    def takes_batches(self) -> bool:
        return self is not Lane.INTERACTIVE

    def consumes(self, routes: Mapping[str, Any], is_signal: type) -> bool:
        """Whether a process in this lane consumes the queue of a service with these routes
        (`is_signal`: the handler type of a wake-up signal)."""
        return self is not Lane.BULK or all(isinstance(route.handler, is_signal) for route in routes.values())


def lower_cpu_priority(niceness: int) -> int:
    """Adds `niceness` to this process's (allowed without privileges); the new value."""
    return os.nice(niceness)
