"""The simulator's event socket over real loopback TCP, against ESL_PROTOCOL.md §1–§2, §7."""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from collections.abc import AsyncIterator

import pytest

from switchy.esl.protocol import Frame, Parser
from switchy.sim import wire
from switchy.sim.api import COMMANDS
from switchy.sim.events import SimEvent
from switchy.sim.server import ESLServer, UserAuth, event_type
from switchy.sim.sofia import SipNetwork
from switchy.sim.switch import Node

TIMEOUT = 2.0  # only ever reached when a test fails
QUIET = 0.1  # how long a test waits to show that nothing arrives


class Client:
    """A raw ESL client: bytes out, frames in (read with the project's parser).

    Like any ESL client it matches replies to commands in order and keeps the
    events that arrive meanwhile for :meth:`event`.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.parser = Parser()
        self.frames: deque[Frame] = deque()
        self.events: deque[Frame] = deque()

    @classmethod
    async def connect(cls, server: ESLServer, sock: socket.socket | None = None) -> Client:
        if sock is None:
            reader, writer = await asyncio.open_connection(server.host, server.port)
        else:
            reader, writer = await asyncio.open_connection(sock=sock)
        return cls(reader, writer)

    @classmethod
    async def login(cls, server: ESLServer, password: str = "ClueCon") -> Client:
        client = await cls.connect(server)
        assert (await client.recv()).content_type == "auth/request"
        assert await client.reply(f"auth {password}") == "+OK accepted"
        return client

    def send(self, data: str | bytes) -> None:
        self.writer.write(data.encode() if isinstance(data, str) else data)

    async def recv(self, timeout: float = TIMEOUT) -> Frame:
        """The next frame, whatever it is."""
        while not self.frames:
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
            assert data, "connection closed"
            self.frames.extend(self.parser.feed(data))
        return self.frames.popleft()

    async def response(self) -> Frame:
        """The next reply frame; events before it are kept for :meth:`event`."""
        frame = await self.recv()
        while frame.is_event:
            self.events.append(frame)
            frame = await self.recv()
        return frame

    async def reply(self, line: str) -> str:
        self.send(line + "\n\n")
        frame = await self.response()
        assert frame.content_type == "command/reply"
        return frame.reply_text

    async def api(self, line: str) -> str:
        self.send(f"api {line}\n\n")
        frame = await self.response()
        assert frame.content_type == "api/response"
        return frame.text

    async def event(self) -> ReceivedEvent:
        frame = self.events.popleft() if self.events else await self.recv()
        assert frame.is_event, frame
        return ReceivedEvent(frame)

    async def rest(self) -> list[Frame]:
        """Every frame left (kept events first) until the server closes the connection."""
        data = await asyncio.wait_for(self.reader.read(), TIMEOUT)
        frames = [*self.events, *self.frames, *self.parser.feed(data)]
        self.events.clear()
        self.frames.clear()
        assert self.parser.buffered == 0
        return frames

    async def silent(self) -> None:
        """Nothing arrives for a while."""
        with pytest.raises(asyncio.TimeoutError):
            await self.recv(QUIET)

    def close(self) -> None:
        self.writer.close()


class ReceivedEvent:
    """An event frame's decoded headers, for assertions."""

    def __init__(self, frame: Frame) -> None:
        self.frame = frame
        self.event = frame.event
        self.name = self.event.name

    def __getitem__(self, name: str) -> str:
        return self.event[name]


def fire(node: Node, name: str, subclass: str | None = None, **headers: str) -> SimEvent:
    event = node.events.create(name, ("test.c", "fire", 1), subclass)
    for key, value in headers.items():
        event.add(key.replace("_", "-"), value)
    node.fire(event)
    return event


def channel_event(node: Node, name: str, channel_uuid: str) -> SimEvent:
    return fire(node, name, Channel_Name="sofia/external/1000", Unique_ID=channel_uuid)


async def originate(client: Client, channel_uuid: str) -> None:
    """A call the node's own profile answers at once: two real channels."""
    dial = f"{{origination_uuid={channel_uuid}}}sofia/external/1000@127.0.0.1:5080 &park()"
    assert await client.api(f"originate {dial}") == f"+OK {channel_uuid}\n"


@pytest.fixture
async def node() -> AsyncIterator[Node]:
    simulated = Node(network=SipNetwork(), heartbeat_interval=None, answer_delay=0)
    yield simulated
    await simulated.close()


@pytest.fixture
async def server(node: Node) -> AsyncIterator[ESLServer]:
    async with ESLServer(node) as running:
        yield running


@pytest.fixture
async def client(server: ESLServer) -> AsyncIterator[Client]:
    connected = await Client.login(server)
    yield connected
    connected.close()


# -- login ----------------------------------------------------------------------------


async def test_greeting_and_login(server: ESLServer) -> None:
    client = await Client.connect(server)
    assert await client.reader.readexactly(len(wire.GREETING)) == wire.GREETING
    client.send("auth ClueCon\n\n")
    expected = b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n"
    assert await client.reader.readexactly(len(expected)) == expected
    assert server.connection_count == 1
    client.close()


async def test_a_wrong_password_gets_the_goodbye_and_a_close(server: ESLServer) -> None:
    client = await Client.connect(server)
    await client.recv()
    client.send("auth ClueCon \n\n")  # compared untrimmed
    data = await asyncio.wait_for(client.reader.read(), TIMEOUT)
    assert data == (
        b"Content-Type: command/reply\nReply-Text: -ERR invalid\n\n"
        b"Content-Type: text/disconnect-notice\nContent-Length: 67\n\n" + wire.GOODBYE.encode()
    )
    assert server.connection_count == 0


async def test_commands_before_login_are_refused_and_login_stays_possible(
    server: ESLServer,
) -> None:
    client = await Client.connect(server)
    await client.recv()
    assert await client.reply("api status") == "-ERR command not found"
    assert await client.reply("api bgapi unload mod_event_socket") == "-ERR command not found"
    assert await client.reply("auth ClueCon") == "+OK accepted"
    client.close()


@pytest.mark.parametrize("line", ["exit", "exitnow", "...", "EXIT please"])
async def test_exit_before_and_after_login(server: ESLServer, line: str) -> None:
    for logged_in in (False, True):
        client = await Client.login(server) if logged_in else await Client.connect(server)
        if not logged_in:
            await client.recv()
        assert await client.reply(line) == "+OK bye"
        (notice,) = await client.rest()
        assert notice.content_type == "text/disconnect-notice"
        assert notice.text == wire.GOODBYE


async def test_a_silent_client_times_out_on_its_first_packet(node: Node) -> None:
    async with ESLServer(node, first_packet_timeout=0.05) as server:
        client = await Client.connect(server)
        assert (await client.recv()).content_type == "auth/request"
        (notice,) = await client.rest()
        assert notice.text == wire.GOODBYE


async def test_only_the_first_packet_has_a_timeout(node: Node) -> None:
    async with ESLServer(node, first_packet_timeout=0.05) as server:
        client = await Client.connect(server)
        await client.recv()
        assert await client.reply("hello") == "-ERR command not found"
        await client.silent()  # longer than the timeout: still connected
        assert await client.reply("auth ClueCon") == "+OK accepted"
        client.close()


async def test_userauth_with_restrictions(node: Node) -> None:
    users = {
        "alice@example.com": UserAuth(
            "pw",
            allowed_events="BACKGROUND_JOB CHANNEL_CREATE",
            allowed_api="status,echo,bgapi",
            allowed_log=False,
        )
    }
    async with ESLServer(node, users=users) as server:
        client = await Client.connect(server)
        await client.recv()
        client.send("userauth alice@example.com:pw\n\n")
        expected = (
            b"Content-Type: command/reply\nReply-Text: +OK accepted\n"
            b"Allowed-Events: BACKGROUND_JOB CHANNEL_CREATE\nAllowed-API: status,echo,bgapi\n"
            b"Allowed-LOG: false\n\n"
        )
        assert await client.reader.readexactly(len(expected)) == expected
        assert await client.api("echo hi") == "hi"
        # Refused even for `api`, as a command/reply.
        assert await client.reply("api version") == "-ERR permission denied"
        assert await client.reply("api bgapi version") == "-ERR permission denied"
        assert await client.reply("bgapi version") == "-ERR permission denied"
        assert (await client.reply("bgapi echo x")).startswith("+OK Job-UUID: ")
        assert await client.reply("event plain CHANNEL_ANSWER") == "-ERR permission denied"
        assert await client.reply("event plain BACKGROUND_JOB") == (
            "+OK event listener enabled plain"
        )
        assert await client.reply("log debug") == "-ERR permission denied"
        client.close()


async def test_userauth_without_restrictions_and_failures(node: Node) -> None:
    async with ESLServer(node, users={"bob@example.com": UserAuth("secret")}) as server:
        client = await Client.connect(server)
        await client.recv()
        client.send("userauth bob:secret@example.com\n\n")
        frame = await client.recv()
        assert frame.headers == {
            "Content-Type": "command/reply",
            "Reply-Text": "+OK accepted",
            "Allowed-Events": "all",
            "Allowed-API": "all",
            "Allowed-LOG": "true",
        }
        assert await client.reply("log info") == "+OK log level info [6]"
        client.close()
        for line in ("userauth bob@example.com:wrong", "userauth bob:secret", "userauth x@y:z"):
            client = await Client.connect(server)
            await client.recv()
            assert await client.reply(line) == "-ERR invalid"
            assert (await client.rest())[0].text == wire.GOODBYE


async def test_the_acl_rejects_before_the_greeting(node: Node) -> None:
    seen: list[str] = []

    def deny(peer_ip: str) -> bool:
        seen.append(peer_ip)
        return False

    async with ESLServer(node, acl=deny) as server:
        client = await Client.connect(server)
        data = await asyncio.wait_for(client.reader.read(), TIMEOUT)
        assert data == wire.rude_rejection() + wire.disconnect_notice()
        assert seen == ["127.0.0.1"]
        assert server.connection_count == 0


# -- api and bgapi -----------------------------------------------------------------------


async def test_api_replies(client: Client) -> None:
    assert await client.api("echo hello  world ") == "hello  world"
    assert await client.api("not_a_command") == "-ERR not_a_command Command not found!\n"
    assert await client.api("echo") == "-ERR no reply\n"
    assert await client.api(" echo x") == "-ERR  Command not found!\n"
    client.send("api echo x\rb\n\n")
    assert (await client.recv()).text == "x"
    client.send("api echo mixed\nJob-UUID: q\r\n\r\n")
    assert (await client.recv()).text == "mixed\nJob-UUID: q"


async def test_unknown_and_prefix_matched_commands(client: Client) -> None:
    assert await client.reply("not_a_socket_command") == "-ERR command not found"
    assert await client.reply("api") == "-ERR command not found"
    assert await client.reply("events plain HEARTBEAT") == "+OK event listener enabled plain"
    assert await client.reply("logout") == "-ERR invalid log level"


async def test_the_api_event_follows_the_api_response(node: Node, client: Client) -> None:
    assert await client.reply("event plain API") == "+OK event listener enabled plain"
    assert await client.api("echo hi") == "hi"
    event = await client.event()
    assert event.name == "API"
    assert event["API-Command"] == "echo"
    assert event["API-Command-Argument"] == "hi"
    assert event["Event-Calling-File"] == "switch_loadable_module.c"
    assert event["Event-Calling-Function"] == "switch_api_execute"
    assert event["Event-Calling-Line-Number"] == "2954"
    assert event["Core-UUID"] == node.identity.core_uuid


async def test_bgapi_reply_then_api_event_then_background_job(client: Client) -> None:
    await client.reply("event plain BACKGROUND_JOB API")
    client.send("bgapi echo hello world\n\n")
    frame = await client.recv()
    job_uuid = frame.headers["Job-UUID"]
    assert frame.reply_text == f"+OK Job-UUID: {job_uuid}"
    api = await client.event()
    assert (api.name, api["API-Command-Argument"]) == ("API", "hello world")
    job = await client.event()
    assert job.name == "BACKGROUND_JOB"
    assert job["Job-UUID"] == job_uuid
    assert (job["Job-Command"], job["Job-Command-Arg"]) == ("echo", "hello world")
    assert "Job-Owner-UUID" not in job.event
    assert (job["Event-Calling-File"], job["Event-Calling-Function"]) == (
        "mod_event_socket.c",
        "api_exec",
    )
    assert job.event.body == "hello world"


async def test_bgapi_honours_the_client_job_uuid_and_keeps_empty_output(client: Client) -> None:
    await client.reply("event json BACKGROUND_JOB")
    client.send("bgapi echo\nJob-UUID: my-own-job-id\n\n")
    frame = await client.recv()
    assert frame.headers["Job-UUID"] == "my-own-job-id"
    job = await client.recv()
    assert job.body.endswith(
        b'"Job-UUID":"my-own-job-id","Job-Command":"echo","Content-Length":"0","_body":""}'
    )
    client.send("bgapi not_a_command\n\n")
    await client.recv()
    assert (await client.event()).event.body == "-ERR not_a_command Command not found!\n"


async def test_a_long_job_uuid_is_cut_to_255_and_overflows_the_reply(client: Client) -> None:
    await client.reply("event plain BACKGROUND_JOB")
    long_id = "j" * 300
    client.send(f"bgapi echo x\nJob-UUID: {long_id}\n\n")
    expected = wire.raw_command_reply(
        f"Reply-Text: +OK Job-UUID: {'j' * 255}\nJob-UUID: {'j' * 255}\n\n"
    )
    # The 512-byte reply buffer loses the frame's end, exactly as FreeSWITCH does.
    assert not expected.endswith(b"\n\n")
    assert await client.reader.readexactly(len(expected)) == expected
    rest = await client.reader.readuntil(b"\n\n")
    assert rest.endswith(b"Content-Type: text/event-plain\n\n")


async def test_api_bgapi_is_mod_commands_bgapi(client: Client) -> None:
    await client.reply("event plain BACKGROUND_JOB")
    text = await client.api("bgapi echo hi there")
    assert text.startswith("+OK Job-UUID: ")
    assert text.endswith("\n")
    job = await client.event()
    assert job["Job-UUID"] == text.removeprefix("+OK Job-UUID: ").strip()
    assert (job["Job-Command"], job["Job-Command-Arg"]) == ("echo", "hi there")
    assert job["Event-Calling-File"] == "mod_commands.c"
    assert job.event.body == "hi there"
    assert await client.api("bgapi") == "-ERR Invalid syntax\n"
    await client.api("bgapi nope")
    assert (await client.event()).event.body == "nope: Command not found!\n"


async def test_api_blocks_the_connection_until_it_returns() -> None:
    started = asyncio.Event()
    release = asyncio.Event()

    async def slow(node: Node, args: str) -> str:
        started.set()
        await release.wait()
        return "slow done\n"

    node = Node(commands={**COMMANDS, "slow": slow})
    async with ESLServer(node) as server:
        client = await Client.login(server)
        await client.reply("event plain HEARTBEAT")
        client.send("api slow\n\napi echo next\n\n")
        await asyncio.wait_for(started.wait(), TIMEOUT)
        fire(node, "HEARTBEAT")
        await client.silent()
        release.set()
        assert (await client.recv()).text == "slow done\n"
        # Pipelined bytes are read before queued events are written.
        assert (await client.recv()).text == "next"
        assert (await client.event()).name == "HEARTBEAT"
        client.close()


async def test_no_event_is_written_while_a_packet_is_half_received(
    node: Node, client: Client
) -> None:
    await client.reply("event plain HEARTBEAT")
    # Sent in one write, so the half packet is in when the first reply comes.
    client.send("api echo first\n\napi ec")
    assert (await client.recv()).text == "first"
    fire(node, "HEARTBEAT")
    await client.silent()
    client.send("ho x\n\n")
    assert (await client.recv()).text == "x"
    assert (await client.event()).name == "HEARTBEAT"


# -- subscriptions and filters -------------------------------------------------------------


def test_event_names_resolve_like_switch_name_event() -> None:
    assert event_type("channel_answer") == "CHANNEL_ANSWER"
    assert event_type("SWITCH_EVENT_CHANNEL_ANSWER") == "CHANNEL_ANSWER"
    assert event_type("xxxxxxxxxxxxxall") == "ALL"
    assert event_type("CHANNEL_ANSWERS") is None
    assert event_type("") is None


async def test_event_command_replies_and_format(node: Node, client: Client) -> None:
    assert await client.reply("event json") == "-ERR no keywords supplied"
    # The format stuck although the command failed.
    assert await client.reply("event nonsense heartbeat") == "+OK event listener enabled json"
    fire(node, "HEARTBEAT")
    frame = await client.recv()
    assert frame.content_type == "text/event-json"
    assert await client.reply("event xml SWITCH_EVENT_HEARTBEAT") == (
        "+OK event listener enabled xml"
    )
    fire(node, "HEARTBEAT")
    frame = await client.recv()
    assert frame.content_type == "text/event-xml"
    assert frame.body.startswith(b"<event>\n  <headers>\n    <Event-Name>HEARTBEAT</Event-Name>")


async def test_tokens_after_custom_are_subclasses(node: Node, client: Client) -> None:
    await client.reply("event plain CUSTOM sofia::register CHANNEL_ANSWER")
    await client.reply("event plain HEARTBEAT")
    fire(node, "CUSTOM", "sofia::expire")
    fire(node, "CHANNEL_ANSWER")
    fire(node, "CUSTOM", "sofia::register")
    fire(node, "HEARTBEAT")
    event = await client.event()
    assert (event.name, event["Event-Subclass"]) == ("CUSTOM", "sofia::register")
    assert event.frame.body.startswith(b"Event-Subclass: sofia%3A%3Aregister\nEvent-Name: CUSTOM\n")
    assert (await client.event()).name == "HEARTBEAT"


async def test_all_nixevent_and_custom_subclasses(node: Node, client: Client) -> None:
    await client.reply("event plain ALL")
    assert await client.reply("nixevent CUSTOM a::b") == "+OK events nixed"
    fire(node, "CUSTOM", "a::b")  # ALL is still set, so it still passes
    assert (await client.event())["Event-Subclass"] == "a::b"
    assert await client.reply("nixevent HEARTBEAT") == "+OK events nixed"
    fire(node, "HEARTBEAT")
    fire(node, "CUSTOM", "a::b")
    fire(node, "CUSTOM", "c::d")
    assert (await client.event())["Event-Subclass"] == "c::d"
    assert await client.reply("nixevent ALL") == "+OK events nixed"
    assert await client.reply("nixevent nothing") == "-ERR no keywords supplied"


async def test_noevents_drops_queued_events() -> None:
    started = asyncio.Event()
    release = asyncio.Event()

    async def slow(node: Node, args: str) -> str:
        started.set()
        await release.wait()
        return "done"

    node = Node(commands={**COMMANDS, "slow": slow}, network=SipNetwork())
    async with ESLServer(node) as server:
        client = await Client.login(server)
        await client.reply("event plain HEARTBEAT TRAP")
        client.send("api slow\n\nnoevents\n\n")
        await asyncio.wait_for(started.wait(), TIMEOUT)
        fire(node, "HEARTBEAT")  # queued while `api slow` holds the connection
        release.set()
        assert (await client.recv()).text == "done"
        assert (await client.recv()).reply_text == "+OK no longer listening for events"
        assert await client.reply("noevents") == "-ERR not listening for events"
        await client.reply("event plain TRAP")
        fire(node, "TRAP")
        assert (await client.event()).name == "TRAP"
        client.close()


async def test_filters(node: Node, client: Client) -> None:
    await client.reply("event plain ALL")
    assert await client.reply("filter Event-Name HEARTBEAT") == (
        "+OK filter added. [Event-Name]=[HEARTBEAT]"
    )
    assert (
        await client.reply("filter event-name /^TRA/") == "+OK filter added. [event-name]=[/^TRA/]"
    )
    fire(node, "SHUTDOWN")
    fire(node, "heartbeat")  # compared case-insensitively
    fire(node, "TRAP")
    assert (await client.event()).name == "heartbeat"
    assert (await client.event()).name == "TRAP"
    assert await client.reply("filter Event-Name -TRAP") == "+OK filter added. [Event-Name]=[-TRAP]"
    fire(node, "TRAP")
    fire(node, "HEARTBEAT")
    assert (await client.event()).name == "HEARTBEAT"
    assert await client.reply("filter delete Event-Name HEARTBEAT") == (
        "+OK filter deleted. [Event-Name][HEARTBEAT]"
    )
    assert await client.reply("filter delete all") == "+OK filter deleted. [all][]"
    assert await client.reply("filter Event-Name") == "-ERR invalid syntax"
    assert await client.reply("filter delete") == "-ERR invalid syntax"
    assert await client.reply("filter add X") == "+OK filter added. [X]=[(null)]"
    assert await client.reply("filter add A b c") == "+OK filter added. [A]=[b c]"
    assert await client.reply("filter delete A") == "+OK filter deleted. [A][]"


async def test_negative_only_filters_block_everything(node: Node, client: Client) -> None:
    await client.reply("event plain HEARTBEAT TRAP")
    await client.reply("filter Event-Name -TRAP")
    fire(node, "HEARTBEAT")
    await client.reply("filter Event-Name TRAP")
    fire(node, "TRAP")
    await client.reply("filter delete Event-Name -TRAP")
    fire(node, "HEARTBEAT")
    fire(node, "TRAP")
    assert (await client.event()).name == "TRAP"


async def test_a_unique_id_filter_hides_background_jobs(client: Client) -> None:
    await client.reply("event plain BACKGROUND_JOB API")
    await client.reply("filter Unique-ID some-channel")
    await client.reply("filter Event-Name API")
    await client.reply("bgapi echo x")
    assert (await client.event()).name == "API"
    await client.reply("filter Event-Name BACKGROUND_JOB")
    await client.reply("bgapi echo y")
    assert (await client.event()).name == "API"
    assert (await client.event()).name == "BACKGROUND_JOB"


# -- other socket commands ----------------------------------------------------------------


async def test_log_commands(client: Client) -> None:
    assert await client.reply("nolog") == "-ERR not loging"
    assert await client.reply("log") == "+OK log level  [7]"
    assert await client.reply("log  info extra") == "+OK log level info [6]"
    assert await client.reply("log 99") == "+OK log level 99 [63]"
    assert await client.reply("log 64") == "-ERR invalid log level"
    assert await client.reply("nolog") == "+OK no longer logging"


async def test_session_commands_on_an_inbound_socket(client: Client) -> None:
    assert await client.reply("linger") == "-ERR not controlling a session"
    assert await client.reply("nolinger") == "-ERR not controlling a session"
    assert await client.reply("divert_events on") == "-ERR not controlling a session."
    for line in ("resume", "connect", "getvar x", "myevents"):
        assert await client.reply(line) == "-ERR command not found"
    assert await client.reply("sendmsg") == "-ERR invalid session id []"
    assert await client.reply("sendmsg abc") == "-ERR invalid session id [abc]"
    client.send("sendmsg\nsession-id: def\n\n")
    assert (await client.recv()).reply_text == "-ERR invalid session id [def]"


async def test_sendevent_fires_the_packet_to_every_listener(
    node: Node, server: ESLServer, client: Client
) -> None:
    other = await Client.login(server)
    await other.reply("event plain CUSTOM my::thing")
    await client.reply("event plain ALL")
    client.send(
        "sendevent CUSTOM\nX-Header: a b\nEvent-Subclass: my::thing\nContent-Length: 5\n\nhello"
    )
    reply = (await client.recv()).reply_text
    assert reply.startswith("+OK ")
    event_uuid = reply[4:]
    for receiver in (client, other):
        frame = await receiver.recv()
        # Read raw: the packet's Content-Length stays an ordinary header, so the
        # event carries two Content-Length lines.
        head, _, body = frame.body.partition(b"\n\n")
        lines = head.split(b"\n")
        assert lines[:6] == [
            b"Event-Subclass: my%3A%3Athing",
            b"Command: sendevent%20CUSTOM",
            b"X-Header: a%20b",
            b"Content-Length: 5",
            f"Event-UUID: {event_uuid}".encode(),
            b"Event-Name: CUSTOM",
        ]
        assert f"Core-UUID: {node.identity.core_uuid}".encode() in lines
        assert b"Event-Calling-Function: parse_command" in lines
        assert lines[-1] == b"Content-Length: 5"
        assert body == b"hello"
    client.send("sendevent NOT_A_TYPE\n\n")
    await client.recv()
    assert (await client.event())["Event-Name"] == "CLONE"
    other.close()


async def test_pipelined_commands_get_replies_in_order(client: Client) -> None:
    client.send("api echo one\n\napi echo two\n\nbogus\n\n")
    assert (await client.recv()).text == "one"
    assert (await client.recv()).text == "two"
    assert (await client.recv()).reply_text == "-ERR command not found"


# -- myevents ----------------------------------------------------------------------------


async def test_myevents_binds_the_socket_to_one_channel(
    node: Node, server: ESLServer, client: Client
) -> None:
    await originate(client, "chan-1")
    await originate(client, "chan-2")
    bound = await Client.login(server)
    assert await bound.reply("myevents chan-1 json") == "+OK Events Enabled"
    assert await bound.reply("myevents chan-1") == "-ERR aready enabled."
    channel_event(node, "CHANNEL_ANSWER", "chan-2")
    channel_event(node, "CHANNEL_CALLSTATE", "chan-1")  # not a myevents type
    channel_event(node, "CHANNEL_ANSWER", "chan-1")
    frame = await bound.recv()
    assert frame.content_type == "text/event-plain"  # the format token is ignored
    assert (frame.event.name, frame.event.uuid) == ("CHANNEL_ANSWER", "chan-1")
    # A bound socket takes the session commands.
    assert await bound.reply("getvar origination_uuid") == "chan-1"
    assert await bound.reply("getvar unset_variable") == "-ERR command not found"
    assert await bound.reply("resume") == "+OK"
    assert await bound.reply("divert_events on") == "+OK events diverted"
    assert await bound.reply("divert_events") == "-ERR missing value."
    bound.send(
        "sendmsg\ncall-command: execute\nexecute-app-name: set\nexecute-app-arg: sent=yes\n\n"
    )
    assert (await bound.response()).reply_text == "+OK"
    while (executed := await bound.event()).name != "CHANNEL_EXECUTE":
        pass
    assert executed["Application"] == "set"
    assert await bound.reply("getvar sent") == "yes"
    assert await bound.reply("sendmsg chan-2") == "+OK"
    await bound.reply("event plain BACKGROUND_JOB")
    await bound.reply("bgapi echo mine")
    events = [await bound.event()]
    while events[-1].name != "BACKGROUND_JOB":
        events.append(await bound.event())
    assert events[-1]["Job-Owner-UUID"] == "chan-1"
    assert all(event["Unique-ID"] == "chan-1" for event in events[:-1])
    # The channel hangs up: its hangup is delivered, then the socket closes.
    assert await client.api("uuid_kill chan-1") == "+OK\n"
    *last_events, notice = await bound.rest()
    # Nothing after the hangup: the socket closed as the channel went down.
    assert last_events[-1].event.name == "CHANNEL_HANGUP"
    assert all(frame.event.uuid == "chan-1" for frame in last_events)
    assert notice.headers["Controlled-Session-UUID"] == "chan-1"
    assert notice.headers["Content-Disposition"] == "disconnect"
    assert notice.text == wire.GOODBYE


async def test_myevents_for_an_unknown_uuid(node: Node, client: Client) -> None:
    assert await client.reply("myevents nope json") == "-ERR invalid uuid"
    assert await client.reply("myevents nope") == "+OK Events Enabled"
    # Not bound: those event types of every channel, and no session commands.
    channel_event(node, "CHANNEL_PARK", "chan-1")
    assert (await client.event())["Unique-ID"] == "chan-1"
    assert await client.reply("linger") == "-ERR not controlling a session"


async def test_a_lingering_socket_outlives_its_channel(server: ESLServer, client: Client) -> None:
    await originate(client, "chan-1")
    bound = await Client.login(server)
    await bound.reply("myevents chan-1")
    assert await bound.reply("linger") == "+OK will linger"
    await client.api("uuid_kill chan-1")
    hangup = await bound.event()
    assert hangup.name == "CHANNEL_HANGUP"
    notice = await bound.recv()
    assert notice.headers == {
        "Content-Type": "text/disconnect-notice",
        "Controlled-Session-UUID": "chan-1",
        "Content-Disposition": "linger",
        "Channel-Name": hangup["Channel-Name"],
        "Linger-Time": "-1",
        "Content-Length": "0",
    }
    while (await bound.event()).name != "CHANNEL_DESTROY":
        pass
    assert await bound.reply("exit") == "+OK bye"
    *_, goodbye = await bound.rest()
    assert goodbye.headers["Controlled-Session-UUID"] == "chan-1"


async def test_linger_for_a_time_then_nolinger(server: ESLServer, client: Client) -> None:
    await originate(client, "chan-1")
    await originate(client, "chan-2")
    lingering = await Client.login(server)
    await lingering.reply("myevents chan-1")
    assert await lingering.reply("linger 0") == "+OK will linger 0 seconds"
    await client.api("uuid_kill chan-1")
    frames = await lingering.rest()
    assert frames[0].event.name == "CHANNEL_HANGUP"
    assert [frame.headers.get("Content-Disposition") for frame in frames[-2:]] == [
        "linger",
        "disconnect",
    ]
    assert frames[-2].headers["Linger-Time"] == "0"
    not_lingering = await Client.login(server)
    await not_lingering.reply("myevents chan-2")
    await not_lingering.reply("linger 30")
    assert await not_lingering.reply("nolinger") == "+OK will not linger"
    await client.api("uuid_kill chan-2")
    hangup, goodbye = await not_lingering.rest()
    assert hangup.event.name == "CHANNEL_HANGUP"
    assert goodbye.headers["Content-Disposition"] == "disconnect"


# -- module unload, shutdown and test knobs ---------------------------------------------------


async def test_unload_mod_event_socket_shuts_every_listener_down(server: ESLServer) -> None:
    first = await Client.login(server)
    second = await Client.login(server)
    text = await first.api("echo unload mod_event_socket_nope")
    assert text.startswith("+OK Job-UUID: ")
    for client in (first, second):
        (notice,) = await client.rest()
        assert notice.text == wire.SHUTDOWN
    assert not server.serving
    assert server.connection_count == 0
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(server.host, server.port)


async def test_reload_mod_event_socket_listens_again(server: ESLServer) -> None:
    client = await Client.login(server)
    client.send("bgapi reload mod_event_socket\n\n")
    assert (await client.recv()).content_type == "api/response"
    (notice,) = await client.rest()
    assert notice.text == wire.SHUTDOWN

    # The module loads again right after the shutdown; a client retries meanwhile.
    for _ in range(1000):
        try:
            again = await Client.login(server)
            break
        except ConnectionRefusedError:
            await asyncio.sleep(0)
    else:
        pytest.fail("the event socket did not come back")
    again.close()


async def test_a_switch_shutdown_closes_the_event_socket(server: ESLServer, client: Client) -> None:
    other = await Client.login(server)
    await client.api("fsctl shutdown")
    for connected in (client, other):
        (notice,) = await connected.rest()
        assert notice.text == wire.SHUTDOWN
    assert not server.serving


async def test_close_sends_the_shutdown_notice(node: Node) -> None:
    server = ESLServer(node)
    await server.start()
    client = await Client.login(server)
    await server.close()
    (notice,) = await client.rest()
    assert notice.text == wire.SHUTDOWN


async def test_stalled_replies(server: ESLServer, client: Client) -> None:
    server.stall_replies()
    client.send("api echo held\n\n")
    await client.silent()
    server.resume_replies()
    assert (await client.recv()).text == "held"


async def test_drop_and_disconnect_all(server: ESLServer) -> None:
    dropped = await Client.login(server)
    server.drop_connections()
    assert await dropped.rest() == []
    assert server.connection_count == 0
    told = await Client.login(server)
    server.disconnect_all("Going away.\n")
    (notice,) = await told.rest()
    assert notice.text == "Going away.\n"


async def test_a_client_too_slow_for_its_events_is_killed(node: Node) -> None:
    async with ESLServer(node, event_queue_size=5, max_lost_events=3) as server:
        client = await Client.login(server)
        await client.reply("event plain HEARTBEAT")
        for _ in range(9):  # 5 queued, then more than 3 lost
            fire(node, "HEARTBEAT")
        (notice,) = await client.rest()
        assert notice.text == "killed listener because of lost events\n"
        assert server.connection_count == 0


async def test_a_client_that_stops_reading_is_killed(node: Node) -> None:
    async with ESLServer(node, event_queue_size=50, max_lost_events=10) as server:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (server.host, server.port))
        client = await Client.connect(server, sock)
        await client.recv()
        await client.reply("auth ClueCon")
        await client.reply("event plain HEARTBEAT")
        fired = 0
        while server.connection_count and fired < 100_000:
            fire(node, "HEARTBEAT")
            fired += 1
            await asyncio.sleep(0)  # let the server write while the client does not read
        assert server.connection_count == 0
        frames = await client.rest()
        assert frames[-1].text == "killed listener because of lost events\n"
        assert all(frame.is_event for frame in frames[:-1])
        assert len(frames) - 1 < fired


async def test_malformed_input_closes_only_that_connection(server: ESLServer) -> None:
    healthy = await Client.login(server)
    oversized = await Client.login(server)
    oversized.send("sendevent X\nContent-Length: 16777217\n\n")
    assert await oversized.rest() == []  # dropped without a reply
    garbage = await Client.login(server)
    garbage.send(b"\x00\xff\n\n")
    frame = await garbage.recv()
    assert frame.reply_text == "-ERR command parse error."
    assert (await garbage.rest())[0].text == wire.GOODBYE
    assert await healthy.api("echo still here") == "still here"
    healthy.close()
