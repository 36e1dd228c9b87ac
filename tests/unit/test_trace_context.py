from __future__ import annotations

import pytest

from userprov.runtime.trace_context import TRACEPARENT, TRACESTATE, incoming, trace_id

VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


class TestIncomingTraceContext:
    def test_a_well_formed_context_is_taken(self) -> None:
        carrier = incoming({TRACEPARENT: VALID, TRACESTATE: "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"})
        assert carrier == {TRACEPARENT: VALID, TRACESTATE: "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"}
        assert trace_id(carrier) == "4bf92f3577b34da6a3ce929d0e0e4736"
        assert incoming({TRACEPARENT: VALID.encode()}) == {TRACEPARENT: VALID}

    @pytest.mark.parametrize("value", [
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # all-zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # all-zero parent id
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # the forbidden version
        VALID.upper(), VALID + "\x00", VALID[:-1], "\u202e" + VALID, "x" * 10_000, 42, None, b"\xff" * 55, [VALID],
    ])
    def test_anything_else_is_dropped(self, value: object) -> None:
        assert incoming({TRACEPARENT: value}) is None

    @pytest.mark.parametrize("state", ["a=b\x00", "a=" + "b" * 600, "no-equals", "a=b,\u00e9=c", 7])
    def test_a_bad_tracestate_is_dropped_and_the_traceparent_kept(self, state: object) -> None:
        assert incoming({TRACEPARENT: VALID, TRACESTATE: state}) == {TRACEPARENT: VALID}

    def test_no_headers(self) -> None:
        assert incoming(None) is None and incoming({}) is None and incoming({TRACESTATE: "a=b"}) is None
