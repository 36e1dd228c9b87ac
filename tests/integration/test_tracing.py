"""W3C trace context from a command to every event it causes, through the outbox and every
hand-off between the workers; and, with USERPROV_TRACING=true and the otel extra, one
CONSUMER span per message, exported over OTLP to a real HTTP receiver, chained
user-creation -> account-lookup -> invitation-mailing."""
from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from contracts import routing
from tests.integration.conftest import address, unique
from tests.support.flows import add_users, emails_to
from tests.support.isolated import isolated_worker
from tests.support.smtp import RecordingSmtpServer
from userprov_devtools.bus_client import BusClient
from userprov_devtools.otlp import OtlpReceiver, ReceivedSpan
from userprov_devtools.waiting import eventually

INTERNAL, PRODUCER, CONSUMER = 1, 4, 5  # SpanKind.SPAN_KIND_INTERNAL, _PRODUCER and _CONSUMER in OTLP
ERROR = 2


def new_traceparent() -> tuple[str, str, str]:
    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{parent_id}-01", trace_id, parent_id


class TestTraceContextPassesThrough:
    """The session's workers run without tracing: the caller's context reaches every event."""

    async def test_from_the_command_to_the_invitation_sent(self, bus: BusClient, smtp: RecordingSmtpServer, account) -> None:
        account_id = await account()
        person = address("traced")
        traceparent, trace_id, _ = new_traceparent()
        completed = await add_users(bus, {"account_id": account_id, "users": [{"first_name": "Trace", "last_name": "Able", "email": person}]},
                                    headers={"traceparent": traceparent, "tracestate": "vendor=abc"})
        assert completed.headers["traceparent"] == traceparent and completed.headers["tracestate"] == "vendor=abc"
        await emails_to(smtp, person)
        [sent] = await eventually(lambda: bus.find(routing.INVITATION_SENT, email=person), what="invitation.sent")
        assert sent.headers["traceparent"] == traceparent  # through lookup, internal events and mailing
        # a one-person add is decided beside its creation (each session worker runs both): no memberships.created
        assert any(e.headers.get("traceparent") == traceparent for e in bus.find(routing.INVITATION_ISSUED))

    async def test_a_malformed_context_is_not_passed_on(self, bus: BusClient, account) -> None:
        account_id = await account()
        completed = await add_users(bus, {"account_id": account_id, "users": [{"first_name": "No", "last_name": "Trace", "email": address("untraced")}]},
                                    headers={"traceparent": "00-" + "z" * 32 + "-00f067aa0ba902b7-01\x00"})
        assert completed.routing_key == routing.USERS_ADD_COMPLETED and "traceparent" not in completed.headers


@pytest.fixture
def otlp() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver()
    receiver.start()
    yield receiver
    receiver.stop()


class TestOpenTelemetry:
    async def test_one_span_per_message_chained_across_the_workers(
        self, otlp: OtlpReceiver, smtp: RecordingSmtpServer, worker_env: dict[str, str], tmp_path: Path
    ) -> None:
        env = {"USERPROV_TRACING": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100"}
        # a broker and database of its own: the session's workers must not take these messages
        async with isolated_worker("traced", worker_env, tmp_path, **env) as (_, _, bus):
            account_id = unique("acct")
            await bus.publish(routing.ACCOUNTS_UPSERT, {"account_id": account_id, "name": "Traced", "licences": {"gotomeeting": 5}})
            await eventually(lambda: bus.find(routing.ACCOUNT_UPSERTED, account_id=account_id), what="account.upserted")
            person = address("spanned")
            traceparent, trace_id, caller_span = new_traceparent()
            completed = await add_users(bus, {"account_id": account_id, "users": [{"first_name": "Trace", "last_name": "Able", "email": person}]},
                                        headers={"traceparent": traceparent})
            await emails_to(smtp, person)

            def chain() -> dict[tuple[object, int], ReceivedSpan] | None:
                found = {(s.attributes.get("userprov.service"), s.kind): s for s in otlp.in_trace(trace_id)}
                wanted = [(routing.USER_CREATION, CONSUMER), (routing.ACCOUNT_LOOKUP, INTERNAL),
                          (routing.INVITATION_MAILING, CONSUMER), (routing.INVITATION_MAILING, INTERNAL)]
                return found if all(key in found for key in wanted) else None

            spans = await eventually(chain, 30, 0.1, what="spans of the three workers in the caller's trace")
            creation = spans[(routing.USER_CREATION, CONSUMER)]
            deciding = spans[(routing.ACCOUNT_LOOKUP, INTERNAL)]
            mailing_signal, mailing = spans[(routing.INVITATION_MAILING, CONSUMER)], spans[(routing.INVITATION_MAILING, INTERNAL)]

            async def send(span_id: str) -> ReceivedSpan:
                # a send span is exported in its own batch, possibly after the consumer spans that follow it
                found = await eventually(lambda: [s for s in otlp.in_trace(trace_id) if s.kind == PRODUCER and s.span_id == span_id],
                                         what=f"send span {span_id}")
                return found[0]

            assert creation.parent_span_id == caller_span
            # the work waits in PostgreSQL with the context of the span that made it: each scheduler's span is its child
            assert deciding.parent_span_id == creation.span_id and deciding.name == "decide invitations"
            assert mailing.parent_span_id == deciding.span_id and mailing.name == "send invitation"
            # a one-person add is decided in the creation's transaction (this process runs both): no
            # memberships.created; the signal's consumer span is a child of the relay's send span, a
            # child of the span that committed it
            handed_to_mailing = await send(mailing_signal.parent_span_id)
            assert handed_to_mailing.parent_span_id == deciding.span_id
            assert handed_to_mailing.name == f"send {routing.INTERNAL_EXCHANGE}"
            assert handed_to_mailing.attributes["messaging.operation.type"] == "send"
            assert handed_to_mailing.attributes["messaging.rabbitmq.destination.routing_key"] == routing.INVITATION_ISSUED
            assert not [s for s in otlp.in_trace(trace_id) if s.attributes.get("messaging.rabbitmq.destination.routing_key")
                        == routing.MEMBERSHIPS_CREATED]
            sent = await eventually(lambda: bus.find(routing.INVITATION_SENT, email=person), what="invitation.sent")
            assert (await send(sent[0].headers["traceparent"].split("-")[2])).parent_span_id == mailing.span_id
            completed_send = await send(completed.headers["traceparent"].split("-")[2])
            assert completed_send.parent_span_id == creation.span_id
            assert completed_send.attributes["messaging.message.id"] == completed.message_id
            assert creation.kind == CONSUMER and creation.name == f"process {routing.COMMANDS_EXCHANGE}"
            assert creation.schema_url == "https://opentelemetry.io/schemas/1.27.0" and creation.service == "userprov"
            assert creation.attributes["messaging.system"] == "rabbitmq"
            assert creation.attributes["messaging.operation.type"] == "process"
            assert creation.attributes["messaging.destination.name"] == routing.COMMANDS_EXCHANGE
            assert creation.attributes["messaging.rabbitmq.destination.routing_key"] == routing.USERS_ADD
            assert creation.attributes["messaging.consumer.group.name"] == routing.queue_name(routing.USER_CREATION)
            assert creation.attributes["userprov.outcome"] == "done" and creation.status_code != ERROR

            refused_id = await bus.publish_raw(routing.USERS_ADD, b"{nope", headers={"traceparent": new_traceparent()[0]})
            refused = await eventually(lambda: [s for s in otlp.spans if s.attributes.get("messaging.message.id") == refused_id],
                                       what="the refused message's span")
            assert refused[0].status_code == ERROR and refused[0].attributes["error.type"] == "malformed_json"
