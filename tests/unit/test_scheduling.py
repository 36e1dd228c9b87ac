"""The pure parts of the schedulers: the mailing hand, the express lane, priority, lanes, and what
an email's outcome makes of its invitation."""
from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from contracts import routing
from contracts.commands import UsersAdd
from contracts.events import InvitationIssued, IssuedInvitation, MembershipsCreated
from contracts.queries import UsersGet
from userprov.app import service_run
from userprov.invitation_mailing import scheduler as mailing_scheduler
from userprov.invitation_mailing import sql
from userprov.invitation_mailing.hand import Hand
from userprov.invitation_mailing.mailer import SmtpOutcome
from userprov.invitation_mailing.outcomes import Outcome, backoff, recorded
from userprov.invitation_mailing.rendering import RenderedEmail
from userprov.runtime import scheduling
from userprov.runtime.dispatch import Route, Signal
from userprov.runtime.lanes import Lane
from userprov.runtime.origin import Origin
from userprov.runtime.outbox import Committed, OutgoingMessage
from userprov.runtime.priority import MAX_HOLD_SECONDS, Priority
from userprov.runtime.scheduling import EXPRESS_MAX, ExpressQueue, Offered
from userprov.runtime.worker import local_signals
from userprov.settings import Settings


@dataclass(frozen=True)
class Held:
    account_id: str
    n: int


class TestHand:
    """Claimed emails leave round-robin across accounts."""

    def test_an_account_with_one_email_waits_for_one_email_of_each_other(self) -> None:
        hand: Hand[Held] = Hand()
        hand.add([Held("a", n) for n in range(5)])
        hand.add([Held("b", 0)])
        assert [hand.take() for _ in range(3)] == [Held("a", 0), Held("b", 0), Held("a", 1)]
        assert len(hand) == 3 and [h.n for h in hand.drain()] == [2, 3, 4] and not hand

    def test_small_work_goes_first(self) -> None:
        hand: Hand[Held] = Hand()
        hand.add([Held("a", n) for n in range(3)])
        hand.add([Held("b", 0)], first=True)
        assert hand.peek() == Held("b", 0) and hand.take() == Held("b", 0) and hand.take() == Held("a", 0)

    def test_small_work_goes_before_its_own_accounts_batch(self) -> None:
        hand: Hand[Held] = Hand()
        hand.add([Held("a", 0), Held("b", 0), Held("b", 1)])
        hand.add([Held("b", 2), Held("b", 3)], first=True)
        assert [hand.take() for _ in range(5)] == [Held("b", 2), Held("a", 0), Held("b", 3), Held("b", 0), Held("b", 1)]


class TestExpressQueue:
    """Small signals only, each item once, and never more than a bounded backlog."""

    def test_each_item_once(self) -> None:
        queue = ExpressQueue("s")
        assert [queue.offer(["x", "y"]), queue.offer(["x"]), queue.offer(["x", "z"])] == [Offered.QUEUED, Offered.SEEN, Offered.QUEUED]
        assert queue.take(10) == ["x", "y", "z"] and queue.take(10) == []

    def test_large_signals_and_overflow_are_refused(self) -> None:
        queue = ExpressQueue("s")
        assert queue.offer([str(n) for n in range(EXPRESS_MAX + 1)]) is queue.offer([]) is Offered.REFUSED
        for n in range(10):
            assert queue.offer([f"{n}-{k}" for k in range(EXPRESS_MAX)]) is Offered.QUEUED
        assert queue.offer(["one more"]) is Offered.REFUSED and len(queue) == EXPRESS_MAX * 10
        assert queue.offer(["0-0"]) is Offered.SEEN  # queued already: taken, full or not

    def test_forgets_the_oldest(self) -> None:
        queue = ExpressQueue("s", remember=3)
        for key in "abcd":
            queue.offer([key])
        queue.take(10)
        assert queue.offer(["a"]) is Offered.QUEUED and queue.offer(["d"]) is Offered.SEEN


class TestAFullExpressLane:
    """A signal committed in this process for a service it runs is handed to it at once; when that
    service's express lane is full, the work is not taken in process, so the published copy must
    not say it was: other processes (another lane's) take it then, not only this one's next poll."""

    @pytest.mark.parametrize("service", [routing.INVITATION_MAILING, routing.ACCOUNT_LOOKUP])
    def test_the_signal_is_published_as_not_taken(self, service: str, monkeypatch: pytest.MonkeyPatch) -> None:
        for module in (scheduling, mailing_scheduler):  # a priority of the test's own: announced work is never done here
            monkeypatch.setattr(module, "priority", Priority())
        run = service_run(Settings(), service)
        deliver = local_signals([run])

        def signal(n: int) -> Committed:
            ids = [uuid.uuid4() for _ in range(EXPRESS_MAX)]
            event = (InvitationIssued(invitations=[IssuedInvitation(invitation_id=i, kind="welcome") for i in ids])
                     if service == routing.INVITATION_MAILING else MembershipsCreated(account_id="acct", membership_ids=ids))
            return Committed(n, OutgoingMessage.event(event, None))

        full = REGISTRY.get_sample_value("userprov_express_full_total", {"service": service}) or 0.0
        with capture_logs() as logs:
            delivered = deliver([signal(n) for n in range(12)])
        assert [row.message.taken_in_process for row in delivered] == [True] * 10 + [False] * 2
        assert REGISTRY.get_sample_value("userprov_express_full_total", {"service": service}) == full + 2
        assert [entry["event"] for entry in logs if entry["log_level"] == "warning"] == ["express_lane_full"]  # once


class TestPriority:
    """Bulk work holds while interactive work is in hand, for a bounded time."""

    async def test_bulk_holds_until_interactive_work_is_done(self) -> None:
        priority = Priority()
        priority.announce()
        released: list[str] = []
        priority.when_clear(lambda: released.append("resumed"))

        async def finish_soon() -> None:
            await asyncio.sleep(0.005)
            priority.done()

        started = time.monotonic()
        await asyncio.gather(priority.bulk_step(), finish_soon())
        assert time.monotonic() - started < MAX_HOLD_SECONDS and released == ["resumed"] and not priority.busy

    async def test_bulk_is_slowed_never_stopped(self) -> None:
        priority = Priority()
        with priority.interactive():
            started = time.monotonic()
            await priority.bulk_step()
            assert MAX_HOLD_SECONDS * 0.9 <= time.monotonic() - started < MAX_HOLD_SECONDS * 5
        started = time.monotonic()
        await priority.bulk_step()
        assert time.monotonic() - started < 0.01


SETTINGS = Settings(smtp_retry_seconds=3600, smtp_backoff_seconds=1.0, smtp_backoff_max_seconds=3.0)
EMAIL = RenderedEmail(subject="s", text="t", html="h")


def claimed(attempts: int = 1, retried_for: float | None = None) -> sql.ClaimedInvitation:
    return sql.ClaimedInvitation(
        invitation_id=uuid.uuid4(), token_hash=b"h" * 32, kind="welcome", expires_at=datetime(2030, 1, 1, tzinfo=UTC),
        sent_count=2, attempts=attempts, retried_for=retried_for, from_account_id=None, account_id="acct", profile_id=uuid.uuid4(), first_name="A",
        last_name="B", language="en", account_name="Acct", from_account_name=None, email="a@example.com",
        template_subject=None, template_body=None, origin=Origin("corr", None, None),
    )


class TestOutcomes:
    """What an email's outcome makes of its invitation, and the event it writes."""

    def test_delivered_is_sent_with_the_next_count(self) -> None:
        record = recorded(Outcome(claimed(), SmtpOutcome("delivered"), EMAIL), SETTINGS)
        assert record.result == "sent" and record.event is not None and record.event.routing_key == "invitation.sent"
        assert b'"sent_count":3' in record.event.body and record.event.correlation_id == "corr"

    def test_a_temporary_failure_goes_back_with_backoff_until_the_retry_window_is_over(self) -> None:
        later = SmtpOutcome("temporary", "temporary failure: 451 later")
        first = recorded(Outcome(claimed(attempts=1), later), SETTINGS)
        assert first.result == "again" and first.event is None and 1.0 <= first.delay <= 2.0
        many = recorded(Outcome(claimed(attempts=40, retried_for=1800.0), later), SETTINGS)  # tries do not end it, time does
        assert many.result == "again" and 3.0 <= many.delay <= 4.0
        near_the_end = recorded(Outcome(claimed(attempts=41, retried_for=3599.5), later), SETTINGS)
        assert near_the_end.result == "again" and near_the_end.delay == 0.5  # the last try falls at the window's end
        last = recorded(Outcome(claimed(attempts=42, retried_for=3600.0), later), SETTINGS)
        assert last.result == "failed" and last.reason == "temporary failure, retries exhausted (42 tries in 1 h): 451 later"
        assert last.event is not None and last.event.routing_key == "invitation.failed"

    def test_without_a_retry_window_a_temporary_failure_ends_the_first_try(self) -> None:
        record = recorded(Outcome(claimed(), SmtpOutcome("temporary", "temporary failure: 451 later")),
                          Settings(smtp_retry_seconds=0))
        assert record.result == "failed" and record.reason == "temporary failure, retries exhausted (1 try in 0 s): 451 later"

    def test_a_permanent_failure_fails_at_once(self) -> None:
        record = recorded(Outcome(claimed(), SmtpOutcome("permanent", "permanent failure: 550 no such user")), SETTINGS)
        assert record.result == "failed" and record.reason == "permanent failure: 550 no such user"

    def test_an_email_given_back_untried_is_due_at_once_and_not_counted(self) -> None:
        record = recorded(Outcome(claimed(attempts=3), SmtpOutcome("not_tried", "the worker is stopping")), SETTINGS)
        assert record.result == "untried" and record.delay == 0.0 and record.event is None

    def test_backoff_grows_to_its_bound(self) -> None:
        assert [round(backoff(n, Settings(smtp_backoff_seconds=1.0, smtp_backoff_max_seconds=3.0)) // 1) for n in (1, 2, 3, 9)] == [
            1, 2, 3, 3]


class TestLanes:
    """Which queues a process consumes, and whether it takes batches, by lane."""

    ROUTES_OF = {
        "signals only (mailing)": {routing.INVITATION_ISSUED: Route(InvitationIssued, Signal(lambda _: True))},
        "signals and queries (lookup)": {routing.MEMBERSHIPS_CREATED: Route(MembershipsCreated, Signal(lambda _: True)),
                                         routing.USERS_GET: Route(UsersGet, lambda *_: None, "user")},
        "commands (user-creation)": {routing.USERS_ADD: Route(UsersAdd, lambda *_: None)},
    }

    def test_the_bulk_lane_consumes_wake_up_signals_only(self) -> None:
        consumed = {name: Lane.BULK.consumes(routes, Signal) for name, routes in self.ROUTES_OF.items()}
        assert consumed == {"signals only (mailing)": True, "signals and queries (lookup)": False, "commands (user-creation)": False}

    def test_the_other_lanes_consume_every_queue(self) -> None:
        for lane in (Lane.ALL, Lane.INTERACTIVE):
            assert all(lane.consumes(routes, Signal) for routes in self.ROUTES_OF.values())

    def test_only_the_interactive_lane_leaves_batches(self) -> None:
        assert [lane.takes_batches for lane in Lane] == [True, False, True]

    def test_the_lane_and_niceness_come_from_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("USERPROV_LANE", "bulk")
        assert Settings().lane is Lane.BULK and Settings().bulk_niceness == 10
        for name, wrong in (("USERPROV_LANE", "batch"), ("USERPROV_BULK_NICENESS", "20")):
            monkeypatch.setenv(name, wrong)
            with pytest.raises(ValueError, match=name.removeprefix("USERPROV_").lower()):
                Settings()
            monkeypatch.delenv(name)
