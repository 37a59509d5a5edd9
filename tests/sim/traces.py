"""Reading the recorded FreeSWITCH traces (tests/data/traces/*.jsonl).

A trace is one ESL connection: rows ``{"t", "dir": "C"|"S", "data"}`` with
``data`` as latin-1 text. :func:`load_trace` reads one into a :class:`Trace`
whose :attr:`Trace.steps` interleave what the client sent with the frames the
server answered (server rows are re-framed with the project's parser, so a
frame split across rows becomes one). Helpers pick out events, group them by
channel (``Unique-ID``) and reduce them to comparable signatures.

:class:`EslClient` is a small TCP client for tests, and :func:`replay` plays a
trace's commands against a (simulated) server, paced like the recording.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from switchy.esl.protocol import Frame, Parser
from switchy.sim.server import ESLServer
from switchy.sim.sofia import SipNetwork
from switchy.sim.switch import Node

TRACE_DIR = Path(__file__).resolve().parent.parent / "data" / "traces"
#: How long test waits last before failing (only reached when something is wrong).
WAIT = 5.0

#: The headers that identify a channel's progress through its life cycle.
KEY_HEADERS = (
    "Channel-State",
    "Channel-State-Number",
    "Channel-Call-State",
    "Answer-State",
    "Call-Direction",
    "Hangup-Cause",
    "Caller-Destination-Number",
    "Caller-Context",
)


@dataclass(frozen=True)
class TraceEvent:
    """One event frame: its headers in wire order (values decoded) and its body."""

    headers: tuple[tuple[str, str], ...]
    body: str = ""

    @property
    def name(self) -> str:
        """The event type: the last Event-Name.

        A PRIVATE_COMMAND starts with the headers of the event that was queued
        (``Event-Name: COMMAND`` for a broadcast), its own prefix comes after.
        """
        names = [value for key, value in self.headers if key == "Event-Name"]
        return names[-1] if names else ""

    @property
    def uuid(self) -> str | None:
        return self.get("Unique-ID")

    def get(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    @property
    def variable_names(self) -> frozenset[str]:
        return frozenset(key[9:] for key, _ in self.headers if key.startswith("variable_"))

    def signature(self, keys: Sequence[str] = KEY_HEADERS) -> tuple[str | None, ...]:
        """The event name and the ``keys`` headers' values, for comparing events."""
        return (self.name, *(self.get(key) for key in keys))


@dataclass(frozen=True)
class Step:
    """One item of a trace, in order: a client command or a server frame."""

    t: float
    command: str | None = None
    frame: Frame | None = None


@dataclass
class Trace:
    """A recorded connection."""

    name: str
    steps: list[Step] = field(default_factory=list)

    @property
    def commands(self) -> list[str]:
        """What the client sent, one packet per item, in order."""
        return [step.command for step in self.steps if step.command is not None]

    @property
    def events(self) -> list[TraceEvent]:
        return [event_of(step.frame) for step in self.steps if _is_event(step.frame)]

    def events_before(self, command_index: int) -> list[TraceEvent]:
        """The events the client had received when it sent command number ``command_index``."""
        events: list[TraceEvent] = []
        seen = 0
        for step in self.steps:
            if step.command is not None:
                if seen == command_index:
                    break
                seen += 1
            elif _is_event(step.frame):
                events.append(event_of(step.frame))
        return events

    @property
    def replies(self) -> list[Frame]:
        """``command/reply`` and ``api/response`` frames, in order."""
        return [step.frame for step in self.steps if step.frame is not None and step.frame.is_reply]


def load_trace(name: str) -> Trace:
    """Load ``tests/data/traces/<name>.jsonl`` (``name`` without the extension)."""
    parser = Parser()
    trace = Trace(name)
    with (TRACE_DIR / f"{name}.jsonl").open(encoding="utf-8") as rows:
        for line in rows:
            row = json.loads(line)
            if row["dir"] == "C":
                trace.steps.append(Step(row["t"], command=row["data"]))
                continue
            for frame in parser.feed(row["data"].encode("latin-1")):
                trace.steps.append(Step(row["t"], frame=frame))
    return trace


def _is_event(frame: Frame | None) -> bool:
    return frame is not None and frame.is_event


def event_of(frame: Frame | None) -> TraceEvent:
    """The event an event frame carries, plain or JSON."""
    assert frame is not None
    assert frame.is_event
    if frame.content_type == "text/event-json":
        pairs: list[tuple[str, str]] = json.loads(frame.body, object_pairs_hook=list)
        body = next((v for k, v in pairs if k == "_body"), "")
        return TraceEvent(tuple((k, v) for k, v in pairs if k != "_body"), body)
    event = frame.event
    return TraceEvent(tuple(event.items()), event.body)


def by_channel(events: Iterable[TraceEvent]) -> dict[str, list[TraceEvent]]:
    """Channel events grouped by Unique-ID, in delivery order, channels in order of appearance."""
    legs: dict[str, list[TraceEvent]] = {}
    for event in events:
        uuid = event.uuid
        if uuid is not None:
            legs.setdefault(uuid, []).append(event)
    return legs


def leg_role(events: Sequence[TraceEvent]) -> tuple[str | None, str | None]:
    """(Call-Direction, Caller-Destination-Number) of a leg: how to match legs across runs."""
    destination = next(
        (e.get("Caller-Destination-Number") for e in events if e.get("Caller-Destination-Number")),
        None,
    )
    return events[0].get("Call-Direction"), destination


class EslClient:
    """A small ESL client for tests over real TCP: packets out, frames in.

    Every frame received is kept in :attr:`frames`; replies are matched to
    commands in order, as ESL guarantees one reply per command.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._parser = Parser()
        self.frames: list[Frame] = []
        self.replies: list[Frame] = []
        self.events: list[TraceEvent] = []
        self._changed = asyncio.Event()
        self._replies_taken = 0
        self._pump = asyncio.ensure_future(self._read())

    @classmethod
    async def connect(cls, host: str, port: int) -> EslClient:
        """Connect and wait for the greeting."""
        reader, writer = await asyncio.open_connection(host, port)
        client = cls(reader, writer)
        await client.wait_for(lambda: bool(client.frames))
        return client

    @classmethod
    async def login(cls, host: str, port: int, password: str = "ClueCon") -> EslClient:
        """Connect and authenticate."""
        client = await cls.connect(host, port)
        reply = await client.command(f"auth {password}\n\n")
        assert reply.reply_text == "+OK accepted", reply.reply_text
        return client

    async def _read(self) -> None:
        while data := await self._reader.read(65536):
            for frame in self._parser.feed(data):
                self.frames.append(frame)
                if frame.is_reply:
                    self.replies.append(frame)
                elif frame.is_event:
                    self.events.append(event_of(frame))
            self._changed.set()
        self._changed.set()

    @property
    def closed(self) -> bool:
        return self._pump.done()

    async def wait_for(self, predicate: Callable[[], object], timeout: float = WAIT) -> None:
        """Wait until ``predicate()`` is true, re-checking as frames arrive."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            self._changed.clear()
            remaining = deadline - loop.time()
            if remaining <= 0 or (self.closed and not predicate()):
                raise AssertionError(f"timed out waiting for {predicate}")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def command(self, packet: str) -> Frame:
        """Send one packet as is and return its reply."""
        index = self._replies_taken
        self._replies_taken += 1
        self._writer.write(packet.encode("latin-1"))
        await self.wait_for(lambda: len(self.replies) > index)
        return self.replies[index]

    async def api(self, line: str) -> str:
        """``api <line>``: the response body."""
        return (await self.command(f"api {line}\n\n")).body.decode("latin-1")

    async def bgapi(self, line: str) -> str:
        """``bgapi <line>``: the Job-UUID."""
        reply = await self.command(f"bgapi {line}\n\n")
        return reply.headers["Job-UUID"]

    async def job(self, job_uuid: str, timeout: float = WAIT) -> str:
        """The body of the BACKGROUND_JOB of ``job_uuid``."""

        def done() -> TraceEvent | None:
            return next(
                (
                    e
                    for e in self.events
                    if e.name == "BACKGROUND_JOB" and e.get("Job-UUID") == job_uuid
                ),
                None,
            )

        await self.wait_for(done, timeout)
        event = done()
        assert event is not None
        return event.body

    def channel_events(self, uuid: str) -> list[TraceEvent]:
        return [event for event in self.events if event.uuid == uuid]

    async def wait_event(
        self, name: str, uuid: str | None = None, count: int = 1, timeout: float = WAIT
    ) -> TraceEvent:
        """The ``count``-th event called ``name`` (of channel ``uuid`` if given)."""

        def found() -> list[TraceEvent]:
            return [e for e in self.events if e.name == name and (uuid is None or e.uuid == uuid)]

        await self.wait_for(lambda: len(found()) >= count, timeout)
        return found()[count - 1]

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(ConnectionError):
            await self._writer.wait_closed()
        self._pump.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await self._pump


async def replay(
    trace: Trace, client: EslClient, rewrite: Callable[[str], str] = lambda packet: packet
) -> dict[str, str]:
    """Send ``trace``'s commands to ``client``'s server, pacing them like the recording.

    Before each command the simulator must have sent, for every channel, as
    many events as the trace shows before that command; channel uuids in the
    command are replaced by those of the matching simulated channels (matched
    by :func:`leg_role`), then ``rewrite`` adjusts the packet. Returns the
    mapping of trace uuids to simulated ones once every channel has sent as
    many events as the trace holds.
    """
    for index, packet in enumerate(trace.commands):
        expected = by_channel(trace.events_before(index))
        await client.wait_for(lambda expected=expected: _caught_up(expected, client))
        for trace_uuid, sim_uuid in match_legs(trace.events, client.events).items():
            packet = packet.replace(trace_uuid, sim_uuid)
        await client.command(rewrite(packet))
    every_leg = by_channel(trace.events)
    await client.wait_for(lambda: _caught_up(every_leg, client))
    return match_legs(trace.events, client.events)


def match_legs(recorded: Iterable[TraceEvent], simulated: Iterable[TraceEvent]) -> dict[str, str]:
    """Recorded uuid -> simulated uuid, pairing legs of the same role in order of appearance."""
    sim_legs = by_channel(simulated)
    mapping: dict[str, str] = {}
    taken: set[str] = set()
    for trace_uuid, events in by_channel(recorded).items():
        role = leg_role(events)
        for sim_uuid, sim_events in sim_legs.items():
            if sim_uuid not in taken and leg_role(sim_events) == role:
                mapping[trace_uuid] = sim_uuid
                taken.add(sim_uuid)
                break
    return mapping


def _caught_up(expected: dict[str, list[TraceEvent]], client: EslClient) -> bool:
    mapping = match_legs((e for events in expected.values() for e in events), client.events)
    sim_legs = by_channel(client.events)
    return all(
        uuid in mapping and len(sim_legs[mapping[uuid]]) >= len(events)
        for uuid, events in expected.items()
    )


@dataclass
class Simulation:
    """A simulated node, its event socket, and a client subscribed to every event."""

    node: Node
    server: ESLServer
    client: EslClient

    @property
    def sip_address(self) -> str:
        return self.node.sip_profiles["external"].address


@contextlib.asynccontextmanager
async def simulation(**knobs: Any) -> AsyncIterator[Simulation]:
    """A node on a private SIP network at 127.0.0.1:5080, served over TCP.

    ``knobs`` are :class:`Node` arguments. The client has sent ``event plain ALL``.
    ``fsctl shutdown`` closes the server, as in a cluster.
    """
    node = Node(network=SipNetwork(), **knobs)
    server = ESLServer(node)
    await server.start()
    node.add_shutdown_hook(server.close)
    node.start()
    client = await EslClient.login(server.host, server.port)
    await client.command("event plain ALL\n\n")
    try:
        yield Simulation(node, server, client)
    finally:
        await client.close()
        await server.close()
        await node.close()
