"""A token bucket per key (a client address), in bounded memory: the keys used longest ago are
forgotten first, which costs nothing, since a bucket left alone that long is full again anyway."""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True)
class Rate:
    per_second: float
    burst: float  # what a key may spend at once, after a pause


class TokenBuckets:
    def __init__(self, rate: Rate, keys: int, debt: float = 0.0) -> None:
        """`debt`: how far `charge` may take a bucket below empty (a key that spent more than it
        had waits longer)."""
        self._rate = rate
        self._keys = keys
        self._debt = debt
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, when)

    def level(self, key: str, now: float) -> float:
        tokens, when = self._buckets.get(key, (self._rate.burst, now))
        return min(self._rate.burst, tokens + max(0.0, now - when) * self._rate.per_second)

    def wait(self, key: str, now: float) -> float:
        """Seconds until the key has a token (0: it has one now). A key asked about is used: one
        that keeps asking while it waits is not forgotten (and back with a full bucket)."""
        if key in self._buckets:
            self._buckets.move_to_end(key)
        missing = 1.0 - self.level(key, now)
        if missing <= 0:
            return 0.0
        return missing / self._rate.per_second if self._rate.per_second > 0 else float("inf")

    def take(self, key: str, now: float) -> float:
        """Takes a token and returns 0; or, when there is none, takes nothing and returns the
        seconds until there is one."""
        wait = self.wait(key, now)
        if wait == 0:
            self._set(key, self.level(key, now) - 1.0, now)
        return wait

    def charge(self, key: str, now: float) -> None:
        """Takes a token whether there is one or not, down to `debt` below empty."""
        self._set(key, max(-self._debt, self.level(key, now) - 1.0), now)

    def __len__(self) -> int:
        return len(self._buckets)

    def _set(self, key: str, tokens: float, now: float) -> None:
        self._buckets[key] = (tokens, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self._keys:
            self._buckets.popitem(last=False)
