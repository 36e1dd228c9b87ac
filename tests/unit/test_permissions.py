"""Who may manage whom: platform services and admins anyone, managers plain users, others no one."""
from __future__ import annotations

import pytest

from userprov.permissions import may_manage, permit
from userprov.runtime.errors import Rejected


@pytest.mark.parametrize(("actor", "target", "allowed"), [
    ("platform", "admin", True), ("platform", None, True), ("admin", "admin", True), ("admin", "manager", True),
    ("admin", None, True), ("manager", None, True), ("manager", "manager", False), ("manager", "admin", False),
    ("nobody", None, False), ("nobody", "admin", False),
])
def test_who_may_manage_whom(actor: str, target: str | None, allowed: bool) -> None:
    assert may_manage(actor, target) is allowed  # type: ignore[arg-type]
    if allowed:
        permit(actor, target)  # type: ignore[arg-type]
    else:
        with pytest.raises(Rejected) as refused:
            permit(actor, target)  # type: ignore[arg-type]
        assert refused.value.reason == "forbidden"
