from __future__ import annotations

import uuid

from contracts.commands import UsersAdd
from userprov.user_creation.plan import Known, answered, candidates_of, plan_rows
from userprov.user_creation.validation import validate_rows


class TestPlan:
    """Row numbering, already-members and all-or-nothing seats per row."""

    def test_structured_rows_are_numbered_before_pasted_ones(self) -> None:
        command = UsersAdd(
            account_id="a",
            users=[{"first_name": "S", "last_name": "One", "email": "s1@example.com"}],
            pasted="P One p1@example.com; P Two p2@example.com",
        )
        assert [(c.row, c.email) for c in candidates_of(command)] == [(1, "s1@example.com"), (2, "p1@example.com"), (3, "p2@example.com")]

    def test_outcomes(self) -> None:
        member = uuid.uuid4()
        checked = validate_rows(candidates_of(UsersAdd(account_id="a", pasted=(
            "A A member@example.com; B B bad-email; C C c@example.com; D D d@example.com; E E e@example.com"))))
        plan = plan_rows(checked, {"member@example.com": member}, free_seats=2)
        assert [(r.row, r.outcome) for r in plan.results] == [
            (1, "already_member"), (2, "rejected"), (3, "accepted"), (4, "accepted"), (5, "rejected")]
        assert plan.results[0].user_id == member
        assert plan.results[4].errors[0].code == "no_free_seat"
        assert [r.email for r in plan.accepted] == ["c@example.com", "d@example.com"]

    def test_a_row_added_inactive_takes_no_seat(self) -> None:
        command = UsersAdd(account_id="a", users=[
            {"first_name": "A", "last_name": "A", "email": "a@example.com", "active": False},
            {"first_name": "B", "last_name": "B", "email": "b@example.com"},
            {"first_name": "C", "last_name": "C", "email": "c@example.com", "active": False},
            {"first_name": "D", "last_name": "D", "email": "d@example.com"}])
        plan = plan_rows(validate_rows(candidates_of(command)), {}, free_seats=1)
        assert [(r.row, r.outcome) for r in plan.results] == [(1, "accepted"), (2, "accepted"), (3, "accepted"), (4, "rejected")]
        assert [(r.email, r.active) for r in plan.accepted] == [("a@example.com", False), ("b@example.com", True), ("c@example.com", False)]

    def test_no_products_needs_no_seats(self) -> None:
        checked = validate_rows(candidates_of(UsersAdd(account_id="a", pasted="C C c@example.com")))
        assert plan_rows(checked, {}, free_seats=None).results[0].outcome == "accepted"
        assert plan_rows(checked, {}, free_seats=0).results[0].outcome == "rejected"

    def test_the_invitation_quota_in_row_order_after_the_seats(self) -> None:
        command = UsersAdd(account_id="a", users=[
            {"first_name": "A", "last_name": "A", "email": "a@example.com"},
            {"first_name": "B", "last_name": "B", "email": "b@example.com", "active": False},
            {"first_name": "C", "last_name": "C", "email": "c@example.com"},
            {"first_name": "D", "last_name": "D", "email": "d@example.com"},
            {"first_name": "M", "last_name": "M", "email": "m@example.com"}])
        plan = plan_rows(validate_rows(candidates_of(command)), {"m@example.com": uuid.uuid4()}, free_seats=3, invitations_left=2)
        assert [(r.outcome, [e.code for e in r.errors]) for r in plan.results] == [
            ("accepted", []), ("accepted", []), ("accepted", []), ("rejected", ["invitation_quota_exceeded"]), ("already_member", [])]
        # past the seats first: a row short of a seat takes no invitation either
        plan = plan_rows(validate_rows(candidates_of(command)), {}, free_seats=1, invitations_left=1)
        assert [[e.code for e in r.errors] for r in plan.results] == [[], [], ["no_free_seat"], ["no_free_seat"], ["no_free_seat"]]

    def test_answered_rows_say_their_invitation(self) -> None:
        command = UsersAdd(account_id="a", users=[
            {"first_name": "A", "last_name": "A", "email": "a@example.com"},
            {"first_name": "B", "last_name": "B", "email": "b@example.com", "active": False},
            {"first_name": "C", "last_name": "C", "email": "c@example.com"}])
        plan = plan_rows(validate_rows(candidates_of(command)), {}, free_seats=None)
        mover = uuid.uuid4()
        results = answered(plan, {"c@example.com": Known(mover, "elsewhere")})
        assert [(r.user_id, r.invitation) for r in results] == [(None, "welcome"), (None, None), (mover, "transfer")]
