"""Processes the test tools started as daemons, known by their pid file."""
from __future__ import annotations

import os
from pathlib import Path


def pid_in(path: Path) -> int | None:
    """The pid on the file's first line (PostgreSQL's postmaster.pid, RabbitMQ's pid file)."""
    try:
        return int(path.read_text().split("\n", 1)[0].strip())
    except (OSError, ValueError):
        return None


def alive(pid: int | None) -> bool:
    """Running, and not a zombie (killed, not yet reaped by init)."""
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False
