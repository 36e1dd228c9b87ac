"""What a front door process allows, from the settings."""
from __future__ import annotations

from dataclasses import dataclass

from userprov.front_doors.token_buckets import Rate


@dataclass(frozen=True)
class DoorLimits:
    requests: Rate  # per client address
    failures: Rate  # failed authentications per client address
    lookups: int  # token lookups in flight per process
    lookup_wait_seconds: float  # for a lookup's turn, past `lookups`
