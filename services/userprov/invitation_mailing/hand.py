"""The invitations a mailing process has claimed and not yet started to send, served round-robin
across accounts: an account with one email in hand waits for at most one email of each other
account, however many of theirs are in hand."""
from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from typing import Generic, Protocol, TypeVar


class Claimed(Protocol):
    @property
    def account_id(self) -> str: ...


C = TypeVar("C", bound=Claimed)


class Hand(Generic[C]):
    def __init__(self) -> None:
        self._by_account: dict[str, deque[C]] = {}
        self._turns: deque[str] = deque()  # accounts, in the order they are served next

    def __len__(self) -> int:
        return sum(len(claims) for claims in self._by_account.values())

    def __bool__(self) -> bool:
        return bool(self._turns)

    def add(self, claims: Iterable[C], first: bool = False) -> None:
        """`first`: they are served before every other (small work, announced by name)."""
        for claim in reversed(list(claims)) if first else claims:
            waiting = self._by_account.get(claim.account_id)
            if waiting is None:
                waiting = self._by_account[claim.account_id] = deque()
                self._turns.appendleft(claim.account_id) if first else self._turns.append(claim.account_id)
            elif first:
                self._turns.remove(claim.account_id)
                self._turns.appendleft(claim.account_id)
            waiting.appendleft(claim) if first else waiting.append(claim)

    def peek(self) -> C:
        """The claim `take` would return."""
        return self._by_account[self._turns[0]][0]

    def take(self) -> C:
        """The next claim: the first of the account whose turn it is; that account then goes last."""
        account = self._turns.popleft()
        waiting = self._by_account[account]
        claim = waiting.popleft()
        if waiting:
            self._turns.append(account)
        else:
            del self._by_account[account]
        return claim

    def items(self) -> list[C]:
        """Every claim in hand, in no particular order."""
        return [claim for claims in self._by_account.values() for claim in claims]

    def drain(self) -> Iterator[C]:
        while self:
            yield self.take()
