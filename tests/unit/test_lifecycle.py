"""The rules that guard the lifecycle's arrows, without a database."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from userprov import lifecycle

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def invitation(**fields: object) -> dict[str, object]:
    return {"status": "sent", "kind": "transfer", "membership_status": "transfer_pending", "expires_at": NOW + timedelta(hours=1), **fields}


def refusal(state: dict[str, object], declining: bool) -> str | None:
    return lifecycle.response_refusal(**state, declining=declining, now=NOW)  # type: ignore[arg-type]


class TestDecide:
    def test_active_elsewhere_is_invited_to_transfer(self) -> None:
        assert lifecycle.invitation_kind("old-account") == "transfer"
        assert lifecycle.invitation_kind(None) == "welcome"


class TestResend:
    @pytest.mark.parametrize(("status", "kind"), [("invited", "welcome"), ("transfer_pending", "transfer"), ("suspended", "transfer"),
                                                   ("active", None), ("pending", None), ("removed", None)])
    def test_what_a_resend_issues(self, status: str, kind: str | None) -> None:
        assert lifecycle.resend_kind(status) == kind


class TestResponses:
    def test_an_open_invitation_can_be_answered(self) -> None:
        assert refusal(invitation(), declining=True) is None
        assert refusal(invitation(kind="welcome", membership_status="invited"), declining=False) is None

    @pytest.mark.parametrize(("fields", "declining", "reason"), [
        ({"status": "accepted"}, False, "already_used"),
        ({"status": "declined"}, False, "already_used"),
        ({"status": "revoked"}, False, "revoked"),
        ({"status": "failed"}, False, "revoked"),
        ({"status": "issued"}, False, "revoked"),
        ({"membership_status": "removed"}, False, "revoked"),
        ({"membership_status": "suspended"}, True, "revoked"),
        ({"expires_at": NOW}, False, "expired"),
        ({"expires_at": None}, False, "expired"),
        ({"kind": "welcome", "membership_status": "invited"}, True, "not_declinable"),
    ])
    def test_refusals(self, fields: dict[str, object], declining: bool, reason: str) -> None:
        assert refusal(invitation(**fields), declining=declining) == reason


class TestCooldownAndLastAdmin:
    @pytest.mark.parametrize(("age", "wait"), [(None, None), (0.0, 61), (59.5, 1), (60.0, None), (3600.0, None)])
    def test_resend_cooldown(self, age: float | None, wait: int | None) -> None:
        assert lifecycle.resend_wait_seconds(age, 60) == wait

    def test_no_cooldown_when_the_last_email_never_reached_them(self) -> None:
        assert lifecycle.resend_wait_seconds(1.0, 60, delivered=False) is None

    @pytest.mark.parametrize(("role", "status", "others", "leaves_none"), [
        ("admin", "active", 0, True), ("admin", "active", 1, False), ("admin", "invited", 0, False),
        ("manager", "active", 0, False), (None, "active", 0, False),
    ])
    def test_last_active_admin(self, role: str | None, status: str, others: int, leaves_none: bool) -> None:
        assert lifecycle.leaves_no_admin(role, status, others) is leaves_none


class TestReactivation:
    @pytest.mark.parametrize(("left", "active_elsewhere", "status"), [
        ("active", False, "active"),
        ("active", True, "pending"),  # active in one account at a time: invited to transfer back
        ("invited", False, "pending"),
        ("transfer_pending", False, "pending"),
        ("suspended", True, "pending"),
        ("pending", False, "pending"),
        (None, False, "pending"),
    ])
    def test_active_again_only_after_accepting(self, left: str | None, active_elsewhere: bool, status: str) -> None:
        assert lifecycle.reactivated_status(left, active_elsewhere) == status


def test_a_row_added_inactive_is_deactivated_as_if_it_had_left_pending() -> None:
    assert lifecycle.added_status(True) == "pending"
    assert lifecycle.added_status(False) == "deactivated"
    assert lifecycle.reactivated_status(lifecycle.ADDED_INACTIVE_FROM, active_elsewhere=False) == "pending", "invited when back"
