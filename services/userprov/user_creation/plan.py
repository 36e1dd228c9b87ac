"""Decides each row's outcome of a `users.add`: pure, so every rule is testable without a database."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from uuid import UUID

from contracts.base import RowError
from contracts.commands import UsersAdd
from contracts.events import RowResult
from userprov import lifecycle
from userprov.runtime.scheduling import EXPRESS_MAX
from userprov.user_creation.paste import parse_pasted
from userprov.user_creation.validation import Candidate, InvalidRow, ValidRow

MAX_ROWS = 10_000


class TooManyRows(ValueError):
    pass


def candidates_of(command: UsersAdd) -> list[Candidate]:
    """Structured rows first, then pasted entries, numbered from 1 in input order. Raises
    TooManyRows as soon as row MAX_ROWS + 1 is read: the rest of a long paste is never parsed."""
    rows: list[tuple[str, str, str, tuple[RowError, ...], str | None, bool]] = [
        (u.first_name, u.last_name, u.email, (), u.external_id, u.active) for u in command.users]
    for entry in parse_pasted(command.pasted or ""):
        if len(rows) >= MAX_ROWS:
            raise TooManyRows(f"more than {MAX_ROWS} rows; at most {MAX_ROWS} per command.")
        rows.append((entry.first_name, entry.last_name, entry.email, entry.errors, None, True))
    if len(rows) > MAX_ROWS:
        raise TooManyRows(f"{len(rows)} rows; at most {MAX_ROWS} per command.")
    return [Candidate(n, *fields) for n, fields in enumerate(rows, start=1)]


def is_large(command: UsersAdd) -> bool:
    """Whether the command names more people than express work holds (bulk work): reads at
    most that many pasted entries."""
    room = EXPRESS_MAX - len(command.users)
    return room < 0 or sum(1 for _ in islice(parse_pasted(command.pasted or ""), room + 1)) > room


@dataclass(frozen=True)
class Plan:
    results: list[RowResult]  # in row order; accepted ones get their user_id once created
    accepted: list[ValidRow]


def plan_rows(
    checked: Sequence[ValidRow | InvalidRow], members: Mapping[str, UUID], free_seats: int | None,
    invitations_left: int | None = None,
) -> Plan:
    """`members` maps emails already in the account to their user id; `free_seats` is the
    smallest number of free seats over the requested products (None: no product requested);
    `invitations_left` what the account's invitation quota allows (None: no quota). In row
    order, each new row added active takes a seat and an invitation; a row added inactive takes
    neither, so it is never short of one."""
    results: list[RowResult] = []
    accepted: list[ValidRow] = []
    invited = 0  # rows accepted active: each has taken a seat of every product and an invitation
    for row in checked:
        if isinstance(row, InvalidRow):
            results.append(RowResult(row=row.row, email=row.email, outcome="rejected", errors=list(row.errors)))
        elif row.email in members:
            results.append(RowResult(row=row.row, email=row.email, outcome="already_member", user_id=members[row.email]))
        elif row.active and free_seats is not None and invited >= free_seats:
            results.append(RowResult(row=row.row, email=row.email, outcome="rejected", errors=[NO_FREE_SEAT]))
        elif row.active and invitations_left is not None and invited >= invitations_left:
            results.append(RowResult(row=row.row, email=row.email, outcome="rejected", errors=[QUOTA_EXCEEDED]))
        else:
            accepted.append(row)
            invited += row.active
            results.append(RowResult(row=row.row, email=row.email, outcome="accepted"))
    return Plan(results, accepted)


def seats_needed(checked: Sequence[ValidRow | InvalidRow], members: Mapping[str, UUID]) -> int:
    """The seats of each product the rows would take with seats and invitations enough: the
    valid rows of people not yet members, added active."""
    return sum(1 for row in checked if isinstance(row, ValidRow) and row.active and row.email not in members)


NO_FREE_SEAT = RowError(
    field="products", code="no_free_seat", message="Not every requested product has a free seat left for this row."
)
QUOTA_EXCEEDED = RowError(
    field="email", code="invitation_quota_exceeded",
    message="The account's invitation quota for the rolling 24 hours is spent: nothing was created for this row.",
)


@dataclass(frozen=True)
class Known:
    """Someone with a profile already."""

    profile_id: UUID
    home_account_id: str | None  # where they are active now, other than the account


def answered(plan: Plan, known: Mapping[str, Known]) -> list[RowResult]:
    """The plan's results with, for each accepted row, the person's user id (a dry run's new
    person has none: no profile is made) and, if added active, the invitation the decision
    gives them as things stand (lifecycle.invitation_kind)."""
    active = {row.email for row in plan.accepted if row.active}
    results = []
    for r in plan.results:
        if r.outcome == "accepted":
            person = known.get(r.email)
            r = r.model_copy(update={
                "user_id": person.profile_id if person else None,
                "invitation": lifecycle.invitation_kind(person.home_account_id if person else None) if r.email in active else None,
            })
        results.append(r)
    return results
