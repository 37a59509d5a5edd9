"""Events built from parts and runs encode exactly as their flat list of headers does."""

from __future__ import annotations

import asyncio
import gc
import weakref

from hypothesis import given
from hypothesis import strategies as st

from switchy.sim import wire
from switchy.sim.calling import At
from switchy.sim.channel import Channel
from switchy.sim.events import EventFactory, FieldRun, HeaderRun, NodeIdentity, SimEvent
from switchy.sim.sofia import SipNetwork
from switchy.sim.switch import Node

SERIALISERS = (wire.serialize_plain, wire.serialize_json, wire.serialize_xml)

# Header text with what the encoders treat specially: unsafe and non-ASCII
# characters, %XX pairs, CRLF lines (SDP), array values.
PIECES = ["a", "Z", "0", " ", "%", "%4A", "\r\n", "é", "\n", '"', "<", "ARRAY::", "|:"]
TEXT = st.lists(st.sampled_from(PIECES), max_size=8).map("".join)
HEADERS = st.lists(st.tuples(st.sampled_from(["A", "B", "variable_x"]), TEXT), max_size=4)


def flat(event: SimEvent) -> SimEvent:
    """The same event as one plain list of headers."""
    return SimEvent(event.name, list(event.headers), event.body)


def prefixed(factory: EventFactory) -> SimEvent:
    event = factory.create("CHANNEL_ANSWER", At.ANSWER)
    event.add("Before", "b 1")
    event.extend_run(HeaderRun((("Run-A", "x y"), ("Run-B", ""))))
    event.extend_run(FieldRun(("F-1", "F-2", "F-3"), ("1", "", 3)))
    event.extend([("After", "a/b"), ("Dropped", "")])
    return event


def test_an_event_in_parts_encodes_as_its_headers() -> None:
    factory = EventFactory(NodeIdentity("core"), clock=lambda: 1_700_000_000.5)
    for body in (None, "", "+OK\n"):
        event = prefixed(factory)
        event.body = body
        expected = flat(event.copy())  # the copy is flattened, the event stays in parts
        assert event.parts is not None
        for serialise in SERIALISERS:
            assert serialise(event) == serialise(expected)


@given(before=HEADERS, run=HEADERS, after=HEADERS, values=st.lists(TEXT, min_size=3, max_size=3))
def test_runs_encode_as_plain_headers_whatever_their_values(
    before: list[tuple[str, str]],
    run: list[tuple[str, str]],
    after: list[tuple[str, str]],
    values: list[str],
) -> None:
    event = SimEvent("X")
    event.extend(before)
    event.extend_run(HeaderRun(tuple(run)))
    event.extend_run(FieldRun(("F-1", "F-2", "F-3"), tuple(values)))
    event.extend(after)
    expected = flat(event.copy())
    assert event.parts is not None
    for serialise in SERIALISERS:
        assert serialise(event) == serialise(expected)


def test_a_field_run_reuses_lines_and_leaves_out_empty_values() -> None:
    names = ("N-1", "N-2", "N-3")
    first = FieldRun(names, ("a b", "", 7))
    second = FieldRun(names, ("a b", "c", 7), first)
    assert second.headers == (("N-1", "a b"), ("N-2", "c"), ("N-3", "7"))
    assert second.encoded["plain"] == b"N-1: a%20b\nN-2: c\nN-3: 7\n"
    assert second.lines[0] is first.lines[0]
    assert FieldRun(names, ("", "", "")).encoded["plain"] == b""


def test_a_copy_does_not_see_later_changes() -> None:
    event = SimEvent("X")
    event.add("A", "1")
    copy = event.copy()
    event.add("B", "2")
    assert copy.headers == [("A", "1")]
    assert event.headers == [("A", "1"), ("B", "2")]
    again = event.copy()  # of the flattened event
    event.headers.insert(0, ("C", "3"))
    assert again.headers == [("A", "1"), ("B", "2")]


def test_get_reads_the_parts_without_flattening_them() -> None:
    event = SimEvent("X")
    event.add("A", "1")
    event.extend_run(HeaderRun((("A", "2"), ("B", "3"))))
    assert (event.get("A"), event.get("B"), event.get("C", "none")) == ("1", "3", "none")
    assert event.parts is not None


async def call_legs(node: Node) -> list[weakref.ref[Channel]]:
    """Originate a call from ``node`` to itself and end it; weak references to its legs."""
    parked: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def on_event(event: SimEvent) -> None:
        inbound = event.get("Call-Direction") == "inbound"
        if event.name == "CHANNEL_PARK" and inbound and not parked.done():
            parked.set_result(event.get("Unique-ID") or "")

    node.events.declare_interest(on_event, frozenset({"CHANNEL_PARK"}))
    node.add_listener(on_event)
    job = asyncio.ensure_future(
        node.execute_api("originate", "{origination_uuid=a}sofia/external/1@127.0.0.1:5080 &park()")
    )
    b_uuid = await parked
    legs = [weakref.ref(channel) for channel in node.channels]
    assert await node.execute_api("uuid_answer", b_uuid) == "+OK\n"
    assert await job == "+OK a\n"
    assert await node.execute_api("uuid_kill", "a") == "+OK\n"
    await node.wait_channels_gone()
    node.remove_listener(on_event)
    node.events.withdraw_interest(on_event)
    return legs


async def test_variables_encode_in_the_order_the_channel_keeps_them() -> None:
    node = Node(network=SipNetwork())
    node.events.declare_interest(object(), None)
    seen: list[SimEvent] = []
    node.add_listener(seen.append)
    await call_legs(node)
    variable_events = [event for event in seen if event.get("variable_uuid")]
    assert variable_events
    for event in variable_events:
        assert wire.serialize_plain(event) == wire.serialize_plain(flat(event))
    await node.close()


async def test_a_finished_call_is_freed_without_the_garbage_collector() -> None:
    node = Node(network=SipNetwork())
    gc.disable()
    try:
        legs = await call_legs(node)
        assert len(legs) == 2
        assert [leg() for leg in legs] == [None, None]
    finally:
        gc.enable()
    await node.close()
