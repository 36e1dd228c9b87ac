"""`userprov bench-hops`: where a single add's time goes, hop by hop.

The workers run with tracing on, exporting to a receiver in this process; each one-person
command carries a trace context of its own, so its spans say when each service held it:

    publish -> user-creation         the broker delivering the command
    user-creation                    validating, reserving seats, committing (the command's span)
    -> account-lookup                the hand-off: the memberships.created signal, scheduling
    account-lookup                   deciding welcome or transfer, committing (the decide span)
    -> invitation-mailing            the hand-off: the invitation.issued signal, the claim
    invitation-mailing               composing the email and the SMTP exchange, up to its arrival

With `--beside N`, another account's batch of N people is being mailed meanwhile. Tracing
costs a little time of its own: compare hops with each other, not with the untraced bench."""
from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass

from contracts import routing
from userprov.settings import Settings
from userprov_devtools.bench import Rig
from userprov_devtools.otlp import OtlpReceiver, ReceivedSpan
from userprov_devtools.waiting import eventually

INTERNAL, CONSUMER = 1, 5  # OTLP span kinds
HOPS = ("publish -> user-creation", "user-creation", "-> account-lookup", "account-lookup", "-> invitation-mailing",
        "invitation-mailing")


@dataclass(frozen=True)
class Add:
    trace_id: str
    published: float
    arrived: float


async def run_hops(settings: Settings, adds: int, processes: int, beside: int, lanes: bool = False) -> str:
    receiver = OtlpReceiver()
    receiver.start()
    env = {"USERPROV_TRACING": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "200"}
    try:
        async with Rig(settings, processes, env, lanes) as rig:
            account = await rig.account("hops", adds + 1)
            if beside:
                other = await rig.account("hops-batch", beside)
                people = [f"batch{n}.{other}@bench.example.com" for n in range(beside)]
                for start in range(0, beside, 10_000):
                    await rig.add(other, people[start : start + 10_000], start)
                await eventually(lambda: sum(p in rig.arrivals for p in people) >= min(200, beside), 120, what="the batch's emails")
            done = []
            for n in range(adds + 1):
                trace_id = secrets.token_hex(16)
                person = f"hop{n}.{account}@bench.example.com"
                arrival = rig.arrival(person)
                published = await rig.add(account, [person], headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"})
                await asyncio.wait_for(arrival, 60)
                if n:  # the first warms up
                    done.append(Add(trace_id, published, rig.arrivals[person]))
            await eventually(lambda: all(_timeline(receiver.in_trace(a.trace_id), a) for a in done), 30, 0.2, what="every add's spans")
    finally:
        receiver.stop()
    rows = [_timeline(receiver.in_trace(a.trace_id), a) for a in done]
    lines = [f"{adds} single adds{f' beside a batch of {beside}' if beside else ''}: each hop, ms",
             f"  {'':28} {'p50':>7} {'p90':>7} {'p99':>7}"]
    for n, hop in enumerate(HOPS):
        lines.append(f"  {hop:28} {_percentiles([row[n] for row in rows if row])}")
    lines.append(f"  {'total (publish -> email)':28} {_percentiles([a.arrived - a.published for a in done])}")
    slowest = sorted((r for r in rows if r), key=sum, reverse=True)[: max(1, len(rows) // 50)]
    lines.append(f"  the slowest {len(slowest)} adds (2 %), each hop: " + "; ".join(
        " ".join(f"{value * 1000:.1f}" for value in row) for row in slowest))
    return "\n".join(lines)


def _percentiles(seconds: list[float]) -> str:
    ordered = sorted(seconds)
    return " ".join(f"{ordered[int(q * (len(ordered) - 1))] * 1000:7.1f}" for q in (0.5, 0.9, 0.99))


def _timeline(spans: list[ReceivedSpan], add: Add) -> list[float] | None:
    def span(service: str, kind: int) -> ReceivedSpan | None:
        return next((s for s in spans if s.attributes.get("userprov.service") == service and s.kind == kind), None)

    creation, deciding = span(routing.USER_CREATION, CONSUMER), span(routing.ACCOUNT_LOOKUP, INTERNAL)
    sending = span(routing.INVITATION_MAILING, INTERNAL)
    if creation is None or deciding is None or sending is None:
        return None
    return [
        creation.start - add.published,
        creation.end - creation.start,
        deciding.start - creation.end,
        deciding.end - deciding.start,
        sending.start - deciding.end,
        add.arrived - sending.start,
    ]

