"""Hostile bytes, both ways: a garbage-spewing server, and garbage sent to the simulator."""

from __future__ import annotations

import asyncio
import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from switchy.errors import APIError, CommandTimeout, ConnectError, ConnectionLost
from switchy.esl.connection import connect
from switchy.esl.protocol import Parser
from switchy.sim.server import ESLServer
from switchy.sim.switch import Node

GREETING = b"Content-Type: auth/request\n\n"
ACCEPTED = b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n"


def api_response(text: str) -> bytes:
    body = text.encode()
    return b"Content-Type: api/response\nContent-Length: %d\n\n" % len(body) + body


garbage = st.one_of(
    st.binary(min_size=1, max_size=200),
    st.sampled_from(
        [
            b"\n\n\n",
            b"Content-Type: api/response\nContent-Length: 99999\n\n",
            b"Content-Type: command/reply\n\n",
            b"Content-Length: 3\nContent-Type: text/event-plain\n\nabc",
            b"Content-Type: text/disconnect-notice\nContent-Length: 5\n\nbye!\n",
            b"Content-Length: -1\n\n",
            b"no colon here\n\n",
            b"Content-Type: api/response\nContent-Length: 4\n\n%0A\n\n",
        ]
    ),
)
# What the server answers to each command: the right reply, or garbage instead.
answers = st.lists(st.one_of(st.just(None), garbage), min_size=1, max_size=6)


async def scripted_server(script: list[bytes | None], cut: int) -> tuple[asyncio.Server, int]:
    """A server that greets, accepts any auth, then answers each ``api echo N`` with
    ``N`` or with the script's next garbage, written in pieces of ``cut`` bytes."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def send(data: bytes) -> None:
            for start in range(0, len(data), cut):
                writer.write(data[start : start + cut])
                await writer.drain()

        try:
            await send(GREETING)
            await reader.readuntil(b"\n\n")
            await send(ACCEPTED)
            for item in script:
                command = (await reader.readuntil(b"\n\n")).decode(errors="replace")
                word = command.strip().rsplit(" ", 1)[-1]
                await send(api_response(word) if item is None else item)
            writer.close()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def talk_to_a_hostile_server(script: list[bytes | None], cut: int) -> None:
    server, port = await scripted_server(script, cut)
    try:
        try:
            conn = await connect("127.0.0.1", port, timeout=2, command_timeout=0.5)
        except ConnectError:
            return  # garbage can only come after the login here, but a refusal is clean too
        calls = [asyncio.ensure_future(conn.api(f"echo {i}")) for i in range(len(script) + 1)]
        _, pending = await asyncio.wait(calls, timeout=5)
        assert not pending, "a command hung"
        for index, call in enumerate(calls):
            error = call.exception()
            if error is None:
                # Replies are matched in order; garbage framed as a reply can take a
                # command's place, so only the type is certain.
                assert isinstance(call.result(), str)
                if all(item is None for item in script[: index + 1]):
                    assert call.result() == str(index)  # no garbage yet: exact
            else:
                assert isinstance(error, (APIError, CommandTimeout, ConnectionLost)), repr(error)
        await conn.close(timeout=1)
        assert not conn.connected
        assert not conn._replies, "a reply slot leaked"
        assert not conn._jobs
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await server.wait_closed()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(answers, st.integers(min_value=1, max_value=64))
def test_a_hostile_server_never_hangs_or_leaks(script: list[bytes | None], cut: int) -> None:
    asyncio.run(asyncio.wait_for(talk_to_a_hostile_server(script, cut), 20))


async def hostile_client(payload: bytes, cut: int) -> None:
    node = Node()
    async with ESLServer(node, first_packet_timeout=1.0) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        parser = Parser()
        received: list[bytes] = []

        async def read_all() -> None:
            while chunk := await reader.read(65536):
                received.append(chunk)

        reading = asyncio.ensure_future(read_all())
        for start in range(0, len(payload), cut):
            writer.write(payload[start : start + cut])
        with contextlib.suppress(ConnectionError):
            await writer.drain()
            writer.write(b"\n\nexit\n\n")  # whatever state it is in, end the session
            await writer.drain()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(reading, 5)
        writer.close()
        reading.cancel()
        # Everything the server sent is well-formed ESL.
        parser.feed(b"".join(received))
        # And the server still serves everyone else.
        conn = await connect("127.0.0.1", server.port)
        assert (await conn.api("echo alive")) == "alive"
        await conn.close()


client_bytes = st.one_of(
    st.binary(max_size=300),
    st.lists(
        st.sampled_from(
            [
                b"auth ClueCon\n\n",
                b"auth wrong\n\n",
                b"api echo hi\n\n",
                b"bgapi status\nJob-UUID: x\n\n",
                b"event plain ALL\n\n",
                b"filter Unique-ID /(/\n\n",
                b"sendevent CUSTOM\nContent-Length: 999999999\n\n",
                b"api\n\n",
                b"\r\n\r\n",
                b"Content-Length: 5\n\n",
                b"\x00\xff\xfe",
                b"myevents not-a-uuid json\n\n",
                b"nixevent\n\n",
                b"log 99\n\n",
            ]
        ),
        max_size=8,
    ).map(b"".join),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(client_bytes, st.integers(min_value=1, max_value=50))
def test_the_simulator_survives_any_client_bytes(payload: bytes, cut: int) -> None:
    asyncio.run(asyncio.wait_for(hostile_client(payload, cut), 30))
