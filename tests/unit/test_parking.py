"""The parked copy's header format, as the dispatcher writes it and `userprov parked` reads it."""
from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import aio_pika
import structlog
from aiormq.abc import DeliveredMessage
from pamqp.commands import Basic
from pamqp.header import ContentHeader

from userprov.logconfig import mask_emails
from userprov.masking import mask_emails_in
from userprov.operations.parked import Selection, _shown
from userprov.runtime import envelope, handoff, parking
from userprov.runtime.envelope import Envelope
from userprov.runtime.parking import ParkedMessage, Why, park_headers, replay_copy
from userprov.runtime.publisher import judged

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def message(headers: dict | None = None, message_id: str | None = "m-1") -> aio_pika.Message:
    return aio_pika.Message(b'{"a": 1}', headers=headers or {}, message_id=message_id, correlation_id="c-1")


class TestParkHeaders:
    def test_say_why_where_from_and_since_when(self) -> None:
        original = message({"traceparent": "00-abc-def-01", "x-delivery-count": 5})
        headers = park_headers(original, "user-creation", Why("processing_failed", "KeyError", "'x'", 5), NOW, True)
        assert headers["traceparent"] == "00-abc-def-01" and "x-delivery-count" not in headers
        assert headers[parking.REASON] == "processing_failed" and headers[parking.ATTEMPTS] == 5
        assert headers[parking.FIRST_FAILURE] == headers[parking.LAST_FAILURE] == "2026-11-25T12:00:00.000+00:00"

    def test_a_replayed_message_that_parks_again_keeps_its_first_failure(self) -> None:
        earlier = "2026-11-01T08:00:00.000+00:00"
        headers = park_headers(message({parking.FIRST_FAILURE: earlier}), "s", Why("r", "E", "m", 1, NOW), NOW, True)
        assert headers[parking.FIRST_FAILURE] == earlier

    def test_a_first_failure_header_that_is_no_time_is_replaced(self) -> None:
        headers = park_headers(message({parking.FIRST_FAILURE: "\u202eyesterday"}), "s", Why("r", "E", "m", 1), NOW, True)
        assert headers[parking.FIRST_FAILURE] == "2026-11-25T12:00:00.000+00:00"

    def test_addresses_in_the_error_are_masked(self) -> None:
        headers = park_headers(message(), "s", Why("r", "E", "duplicate key (email)=(jane@example.com)", 1), NOW, True)
        assert headers[parking.ERROR_MESSAGE] == "duplicate key (email)=(j***@example.com)"

    def test_control_characters_and_length_are_bounded(self) -> None:
        headers = park_headers(message(), "s", Why("r", "E\x00", "\u202e" + "x" * 5000, 1), NOW, True)
        assert "\x00" not in headers[parking.ERROR_TYPE] and len(headers[parking.ERROR_MESSAGE]) == 1000


    def test_a_publishers_userprov_headers_are_dropped(self) -> None:
        forged = {parking.EXCHANGE: "userprov.internal", parking.ROUTING_KEY: "invitation.issued", parking.REASON: "x",
                  parking.SERVICE: "account-lookup", "x-userprov-taken-in-process": True, "x-userprov-anything": "y"}
        headers = park_headers(message(forged), "user-creation", Why("schema_invalid", "Rejected", "bad", 1), NOW, True)
        assert {k for k in headers if k.startswith(parking.PREFIX)} == {
            parking.SERVICE, parking.REASON, parking.ERROR_TYPE, parking.ERROR_MESSAGE, parking.ATTEMPTS,
            parking.FIRST_FAILURE, parking.LAST_FAILURE, parking.EXCHANGE, parking.ROUTING_KEY, envelope.ORIGINAL_TRUSTED}
        assert headers[parking.SERVICE] == "user-creation" and headers[parking.EXCHANGE] == ""


class TestReading:
    def test_from_our_headers(self) -> None:
        headers = park_headers(message(), "user-creation", Why("schema_invalid", "Rejected", "bad", 1), NOW, True)
        parked = ParkedMessage.of(message(headers), "user-creation")
        assert (parked.id, parked.reason, parked.error_type, parked.attempts, parked.correlation_id) == (
            "m-1", "schema_invalid", "Rejected", 1, "c-1")

    def test_from_the_brokers_x_death(self) -> None:
        death = {"count": 3, "reason": "delivery_limit", "queue": "userprov.user-creation", "time": NOW,
                 "exchange": "userprov.commands", "routing-keys": ["users.add"]}
        parked = ParkedMessage.of(message({"x-death": [death]}), "user-creation")
        assert (parked.reason, parked.exchange, parked.routing_key, parked.attempts) == (
            "delivery_limit", "userprov.commands", "users.add", 3)
        assert parked.first_failure == parked.last_failure == "2026-11-25T12:00:00.000+00:00" and parked.replay_refusal() is None

    def test_the_brokers_x_death_wins_over_a_publishers_headers(self) -> None:
        """The broker dead-lettered the original: its userprov headers are the publisher's."""
        death = {"count": 1, "reason": "rejected", "queue": "userprov.user-creation", "time": NOW,
                 "exchange": "userprov.commands", "routing-keys": ["users.add"]}
        forged = {parking.EXCHANGE: "userprov.internal", parking.ROUTING_KEY: "invitation.issued",
                  parking.REASON: "processing_failed", parking.SERVICE: "invitation-mailing", "x-death": [death]}
        parked = ParkedMessage.of(message(forged), "user-creation")
        assert (parked.service, parked.reason, parked.exchange, parked.routing_key) == (
            "user-creation", "rejected", "userprov.commands", "users.add")
        assert parked.replay_refusal() is None

    def test_replayed_only_to_what_its_service_takes(self) -> None:
        headers = park_headers(message(), "user-creation", Why("schema_invalid", "Rejected", "bad", 1), NOW, True)
        headers.update({parking.EXCHANGE: "userprov.internal", parking.ROUTING_KEY: "invitation.issued"})
        assert ParkedMessage.of(message(headers), "user-creation").replay_refusal() == (
            "'invitation.issued' on 'userprov.internal' is not a message user-creation takes")
        assert ParkedMessage.of(message(headers), "invitation-mailing").replay_refusal() is None
        headers.update({parking.EXCHANGE: "", parking.ROUTING_KEY: "userprov.user-creation"})
        assert ParkedMessage.of(message(headers), "user-creation").replay_refusal() is not None

    def test_a_command_handed_to_the_bulk_lane_is_replayed_through_its_public_door(self) -> None:
        """Parked from the bulk queue, or dead-lettered there by the broker: the replay goes where
        the operator's user is trusted anew, never back on userprov.internal."""
        headers = park_headers(message(), "user-creation", Why("processing_failed", "KeyError", "x", 5), NOW, True)
        headers.update({parking.EXCHANGE: "userprov.internal", parking.ROUTING_KEY: "users.add"})
        death = {"count": 5, "reason": "delivery_limit", "queue": "userprov.user-creation.bulk", "time": NOW,
                 "exchange": "userprov.internal", "routing-keys": ["users.add"]}
        for parked in (ParkedMessage.of(message(headers), "user-creation"), ParkedMessage.of(message({"x-death": [death]}), "user-creation")):
            assert (parked.exchange, parked.routing_key, parked.replay_refusal()) == ("userprov.commands", "users.add", None)
        headers[parking.ROUTING_KEY] = "users.remove"  # not a command handed to the bulk lane
        assert ParkedMessage.of(message(headers), "user-creation").replay_refusal() is not None

    def test_a_copy_of_a_message_without_message_id_is_never_replayed(self) -> None:
        headers = park_headers(message(message_id=None), "user-creation", Why("missing_message_id", "Rejected", "m", 1), NOW, True)
        headers[parking.ROUTING_KEY], headers[parking.EXCHANGE] = "users.add", "userprov.commands"
        parked = ParkedMessage.of(message(headers, message_id="0123456789abcdef"), "user-creation")  # the id the client library gave it
        assert parked.id.startswith("sha256:") and not parked.had_message_id
        assert parked.replay_refusal() == "it had no message_id, so a replay could not be recognised as a duplicate: purge it"

    def test_without_message_id_or_origin(self) -> None:
        parked = ParkedMessage.of(message(message_id=None), "s")
        assert parked.id.startswith("sha256:") and parked.reason == "unknown"
        assert parked.replay_refusal() == "where it came from is unknown"

    def test_hostile_header_values_read_as_text(self) -> None:
        parked = ParkedMessage.of(message({parking.REASON: b"\xff\x00", parking.ATTEMPTS: True}), "s")
        assert "\x00" not in parked.reason and parked.attempts is None


class TestReplayCopy:
    def test_as_first_published_plus_a_replay_count(self) -> None:
        headers = park_headers(message({"traceparent": "t"}), "s", Why("r", "E", "m", 2), NOW, True)
        headers["x-death"] = [{"count": 1}]
        parked = message(headers)
        copy = replay_copy(parked, replace(ParkedMessage.of(parked, "s"), replays=1))
        assert copy.message_id == "m-1" and copy.correlation_id == "c-1"
        assert set(copy.headers) == {"traceparent", parking.FIRST_FAILURE, parking.REPLAYS, envelope.ORIGINAL_PUBLISHER}
        assert copy.headers[parking.REPLAYS] == 2 and copy.delivery_mode == aio_pika.DeliveryMode.PERSISTENT


def delivered(sent: aio_pika.Message, routing_key: str = "users.add") -> Envelope:
    """What a worker reads of the message as the broker delivers it."""
    header = ContentHeader(properties=sent.properties, body_size=len(sent.body))
    deliver = Basic.Deliver(consumer_tag="c", delivery_tag=1, redelivered=False, exchange="userprov.commands", routing_key=routing_key)
    return Envelope.of(aio_pika.IncomingMessage(DeliveredMessage(deliver, header, sent.body, channel=None)))  # type: ignore[arg-type]


class TestReplayKeepsTheOriginalsTrust:
    """A replay is published by the operator: it says how trusted its original's publisher was, in
    headers that can only lower the trust its own publisher has (userprov.runtime.publisher)."""

    TRUSTED = frozenset({"operator", "platform"})

    def replayed(self, parked_copy: aio_pika.Message, replayer: str = "operator") -> Envelope:
        return delivered(replay_copy(parked_copy, ParkedMessage.of(parked_copy, "user-creation"), replayer))

    def test_a_parked_copy_says_what_the_worker_judged_and_a_replay_keeps_it(self) -> None:
        for trusted in (False, True):
            headers = park_headers(message(), "user-creation", Why("processing_failed", "KeyError", "x", 5), NOW, trusted)
            assert headers[envelope.ORIGINAL_TRUSTED] is trusted
            replay = self.replayed(message({**headers, parking.EXCHANGE: "userprov.commands", parking.ROUTING_KEY: "users.add"}))
            assert judged(replay, self.TRUSTED, handed_off=False) is trusted
            assert not judged(replay, frozenset({"platform"}), handed_off=False)  # an untrusted replayer lends no trust

    def test_a_copy_the_broker_dead_lettered_is_judged_by_its_original_user(self) -> None:
        """Its headers are its publisher's, a forged trust header among them: only the broker's
        x-death and the user_id it checked count."""
        death = {"count": 5, "reason": "delivery_limit", "queue": "userprov.user-creation", "time": NOW,
                 "exchange": "userprov.commands", "routing-keys": ["users.add"]}
        forged = {"x-death": [death], envelope.ORIGINAL_TRUSTED: True, handoff.TRUSTED_PUBLISHER: True}
        for user_id, trusted in (("integrator", False), (None, False), ("platform", True)):
            dead = aio_pika.Message(b"{}", headers=forged, message_id="m-1", user_id=user_id)
            parked = ParkedMessage.of(dead, "user-creation")
            assert (parked.original_trusted, parked.original_publisher) == (None, user_id or "")
            assert judged(self.replayed(dead), self.TRUSTED, handed_off=False) is trusted
            assert judged(self.replayed(dead), None, handed_off=False)  # every publisher trusted

    def test_from_a_bulk_queue_by_the_hand_offs_word(self) -> None:
        death = {"count": 5, "reason": "delivery_limit", "queue": "userprov.user-creation.bulk", "time": NOW,
                 "exchange": "userprov.internal", "routing-keys": ["users.add"]}
        for trusted in (False, True):
            dead = aio_pika.Message(b"{}", headers={"x-death": [death], handoff.TRUSTED_PUBLISHER: trusted}, message_id="m-1")
            assert judged(self.replayed(dead), self.TRUSTED, handed_off=False) is trusted

    def test_a_publisher_gains_nothing_by_the_headers(self) -> None:
        for headers in ({envelope.ORIGINAL_TRUSTED: True}, {envelope.ORIGINAL_PUBLISHER: "platform"},
                        {envelope.ORIGINAL_TRUSTED: "yes", envelope.ORIGINAL_PUBLISHER: ""}):
            sent = delivered(aio_pika.Message(b"{}", headers=headers, message_id="m-1", user_id="integrator"))
            assert not judged(sent, self.TRUSTED, handed_off=False), headers
        for headers in ({envelope.ORIGINAL_TRUSTED: False}, {envelope.ORIGINAL_TRUSTED: 1}, {envelope.ORIGINAL_PUBLISHER: "integrator"}):
            lowered = delivered(aio_pika.Message(b"{}", headers=headers, message_id="m-1", user_id="platform"))
            assert not judged(lowered, self.TRUSTED, handed_off=False), headers
        assert judged(delivered(aio_pika.Message(b"{}", message_id="m-1", user_id="platform")), self.TRUSTED, handed_off=False)


class TestHandOff:
    def test_the_copy_says_whether_its_publisher_was_trusted_and_nothing_a_publisher_said(self) -> None:
        forged = {"traceparent": "t", "x-delivery-count": 4, handoff.TRUSTED_PUBLISHER: True, parking.REASON: "x"}
        for trusted in (False, True):
            copy = handoff.handed_off_copy(message(forged), trusted)
            assert copy.headers == {"traceparent": "t", handoff.TRUSTED_PUBLISHER: trusted}
            assert (copy.message_id, copy.correlation_id, copy.body, copy.user_id) == ("m-1", "c-1", b'{"a": 1}', None)


class TestPublisherHeaders:
    def test_what_cannot_be_sent_again_is_dropped_from_every_copy(self) -> None:
        """A header key or text that was not UTF-8 arrives as lone surrogates; kept, it would make
        the copy unencodable and the hand-off, the park or the replay fail as a whole."""
        hostile = {"x-\udcff": "v", "short": "\udcfe", "nested": {"k": "\udcfd"}, "traceparent": "t", "n": [1, "a"]}
        assert parking.publisher_headers(message(hostile)) == {"traceparent": "t", "n": [1, "a"]}
        assert set(handoff.handed_off_copy(message(hostile), True).headers) == {"traceparent", "n", handoff.TRUSTED_PUBLISHER}


class TestSelection:
    parked = ParkedMessage("m-1", "s", "x", "users.add", "schema_invalid", "", "", "", "", 1, "", 0)

    def test_filters_combine_and_nothing_selects_nothing(self) -> None:
        assert not Selection().says_which
        assert Selection(ids=frozenset({"m-1"}), reason="schema_invalid").matches(self.parked)
        assert not Selection(ids=frozenset({"m-1"}), routing_key="users.remove").matches(self.parked)
        assert Selection(everything=True).matches(self.parked)


class TestMasking:
    def test_addresses_in_text_and_json(self) -> None:
        assert mask_emails_in("Key (email)=(jane.doe@example.com) exists") == "Key (email)=(j***@example.com) exists"
        shown = _shown({"users": [{"email": "bob@corp.example"}], "bob@corp.example": 1, "s": "\ud800\x00", "b": b"\xff"})
        assert json.dumps(shown, ensure_ascii=False).encode() == (
            '{"users": [{"email": "b***@corp.example"}], "b***@corp.example": 1, "s": "\ufffd\ufffd", "b": "\ufffd"}'.encode())

    def test_log_lines_carry_no_address(self) -> None:
        event = mask_emails(structlog.get_logger(), "error", {"event": "x", "exception": "...(jane@example.com)...", "n": 1})
        assert event["exception"] == "...(j***@example.com)..." and event["n"] == 1
