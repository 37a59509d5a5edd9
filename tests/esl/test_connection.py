"""The asyncio connection against a FreeSWITCH: the simulator, or ``--fshost``."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Callable

import pytest

from switchy.errors import (
    AccessDenied,
    APIError,
    AuthenticationError,
    CommandError,
    CommandTimeout,
    ConnectError,
    ConnectionLost,
)
from switchy.esl.connection import Connection, ReconnectPolicy, connect
from switchy.esl.protocol import Event
from switchy.sim.cluster import Cluster
from switchy.sim.pytest_plugin import FreeSwitchTarget, SimulatorHandle
from switchy.sim.server import ESLServer
from switchy.sim.switch import Node

TIMEOUT = 5.0


@pytest.fixture
async def conn(fs: FreeSwitchTarget) -> AsyncIterator[Connection]:
    connection = await connect(fs.host, fs.port, fs.password)
    yield connection
    await connection.close()


async def test_api_returns_the_command_output(conn: Connection) -> None:
    status = await conn.api("status")
    assert status.startswith("UP ")
    assert "FreeSWITCH (Version" in status
    assert await conn.api("echo hello world") == "hello world"


async def test_api_errors_raise_with_the_server_answer(
    conn: Connection, fs: FreeSwitchTarget
) -> None:
    with pytest.raises(APIError) as failure:
        await conn.api("not_a_command")
    assert failure.value.reply == "-ERR not_a_command Command not found!\n"
    assert fs.address in str(failure.value)
    with pytest.raises(APIError, match="No such channel"):
        await conn.api("uuid_kill 00000000-0000-0000-0000-000000000000")
    # The connection is still fine afterwards.
    assert await conn.api("echo still here") == "still here"


async def test_many_commands_in_flight_get_their_own_replies(conn: Connection) -> None:
    words = [f"word{index}" for index in range(200)]
    replies = await asyncio.gather(*(conn.api(f"echo {word}") for word in words))
    assert replies == words


async def test_bgapi_result_arrives_with_its_job_uuid(conn: Connection) -> None:
    job = await conn.bgapi("echo background")
    assert not job.done() or job.event is not None
    assert await asyncio.wait_for(job.wait(), TIMEOUT) == "background"
    assert job.event is not None
    assert job.event.job_uuid == job.uuid
    assert job.event["Job-Command"] == "echo"
    own = await conn.bgapi("status", job_uuid="my-own-job-id-0123456789")
    assert own.uuid == "my-own-job-id-0123456789"
    assert (await asyncio.wait_for(own.wait(), TIMEOUT)).startswith("UP ")
    assert "BACKGROUND_JOB" in conn.subscriptions


async def test_bgapi_errors_raise_when_awaited(conn: Connection) -> None:
    jobs = await asyncio.gather(*(conn.bgapi(f"echo job{index}") for index in range(20)))
    failing = await conn.bgapi("not_a_command")
    results = await asyncio.wait_for(asyncio.gather(*(job.wait() for job in jobs)), TIMEOUT)
    assert results == [f"job{index}" for index in range(20)]
    with pytest.raises(APIError, match="Command not found"):
        await asyncio.wait_for(failing.wait(), TIMEOUT)


@pytest.mark.parametrize("fmt", ["plain", "json"])
async def test_subscribed_events_reach_callbacks_and_iterators(conn: Connection, fmt: str) -> None:
    await conn.subscribe(["API"], fmt=fmt)
    seen: list[Event] = []
    remove = conn.on_event(seen.append)
    stream = conn.events()

    async def next_api_event() -> Event:
        async for event in stream:
            if event.name == "API" and event.get("API-Command") == "echo":
                return event
        raise AssertionError("event stream ended")

    waiting = asyncio.ensure_future(next_api_event())
    await asyncio.sleep(0)  # let the iterator register its queue
    await conn.api("echo ping")
    event = await asyncio.wait_for(waiting, TIMEOUT)
    assert event["API-Command-Argument"] == "ping"
    assert any(e.name == "API" for e in seen)
    remove()
    await conn.unsubscribe(["API"])
    assert conn.subscriptions == []


async def test_filters_are_applied_and_removed(conn: Connection) -> None:
    await conn.subscribe(["BACKGROUND_JOB", "API"])
    await conn.add_filter("Event-Name", "BACKGROUND_JOB")
    names: list[str] = []
    conn.on_event(lambda event: names.append(event.name))
    job = await conn.bgapi("echo filtered")
    await asyncio.wait_for(job.wait(), TIMEOUT)
    assert "API" not in names
    await conn.remove_filter("Event-Name")
    with pytest.raises(ValueError, match="filter value"):
        await conn.add_filter("Event-Name", "")
    with pytest.raises(CommandError, match="invalid syntax"):
        await conn.send_command("filter Event-Name")


async def test_wrong_password_is_an_authentication_error(
    fs: FreeSwitchTarget, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "not-the-password-4711"
    with pytest.raises(AuthenticationError) as failure:
        await connect(fs.host, fs.port, secret)
    assert fs.address in str(failure.value)
    assert secret not in str(failure.value)
    assert secret not in caplog.text


async def test_refused_port_is_a_connect_error() -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    with pytest.raises(ConnectError, match=f"127.0.0.1:{port}"):
        await connect("127.0.0.1", port, timeout=TIMEOUT)


async def test_a_silent_server_times_out() -> None:
    server = await asyncio.start_server(lambda reader, writer: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(ConnectError, match="no answer"):
            await connect("127.0.0.1", port, timeout=0.3)
    finally:
        server.close()


async def test_acl_rejection_is_access_denied() -> None:
    node = Node()
    async with ESLServer(node, acl=lambda address: False) as server:
        with pytest.raises(AccessDenied, match=f"127.0.0.1:{server.port}"):
            await connect("127.0.0.1", server.port)


async def test_injection_is_refused_before_anything_is_sent(conn: Connection) -> None:
    for hostile in (
        "status\n\nexit",
        "echo a\rb",
        "echo a\x00b",
        "echo unload mod_event_socket",
        "echo RELOAD MOD_EVENT_SOCKET",
    ):
        with pytest.raises(ValueError, match="command"):
            await conn.api(hostile)
        with pytest.raises(ValueError, match="command"):
            await conn.bgapi(hostile)
    with pytest.raises(ValueError, match="job_uuid"):
        await conn.bgapi("status", job_uuid="x\nContent-Length: 5")
    assert await conn.api("echo intact") == "intact"


async def with_simulator(
    fs_simulator: Callable[..., SimulatorHandle],
) -> tuple[SimulatorHandle, FreeSwitchTarget, Connection]:
    simulator = fs_simulator()
    target = simulator.targets[0]
    return simulator, target, await connect(target.host, target.port, target.password)


def server(cluster: Cluster) -> ESLServer:
    return cluster.nodes[0].server


async def test_a_timed_out_command_does_not_shift_later_replies(
    fs_simulator: Callable[..., SimulatorHandle],
) -> None:
    simulator, _, conn = await with_simulator(fs_simulator)

    async def stall(cluster: Cluster) -> None:
        server(cluster).stall_replies()

    async def resume(cluster: Cluster) -> None:
        server(cluster).resume_replies()

    simulator.call(stall)
    with pytest.raises(CommandTimeout, match="no reply to 'api echo'"):
        await conn.api("echo first", timeout=0.2)
    cancelled = asyncio.ensure_future(conn.api("echo second"))
    await asyncio.sleep(0)
    cancelled.cancel()
    simulator.call(resume)
    assert await conn.api("echo third", timeout=TIMEOUT) == "third"
    assert await conn.api("echo fourth", timeout=TIMEOUT) == "fourth"
    await conn.close()


async def test_on_done_runs_once_the_reply_a_timeout_or_the_loss_completes_the_future(
    fs_simulator: Callable[..., SimulatorHandle], caplog: pytest.LogCaptureFixture
) -> None:
    simulator, _, conn = await with_simulator(fs_simulator)
    outcomes: list[tuple[str, object]] = []

    def on_done(label: str) -> Callable[[asyncio.Future[object]], None]:
        def record(future: asyncio.Future[object]) -> None:
            assert future.done()
            outcomes.append((label, future.exception() or future.result()))

        return record

    async def stall(cluster: Cluster) -> None:
        server(cluster).stall_replies()

    async def crash(cluster: Cluster) -> None:
        server(cluster).drop_connections()

    answered = conn.api_nowait("echo hi", on_done=on_done("reply"))
    assert await answered == "hi"
    assert outcomes == [("reply", "hi")]

    def broken(future: asyncio.Future[object]) -> None:
        raise RuntimeError("a broken callback")

    with caplog.at_level(logging.ERROR):
        assert (await conn.send_nowait("api echo again", on_done=broken)).body == b"again"
    assert "a broken callback" in caplog.text  # logged; the connection carries on

    simulator.call(stall)
    with pytest.raises(CommandTimeout):
        await conn.api_nowait("echo late", timeout=0.2, on_done=on_done("timeout"))
    cancelled = conn.api_nowait("echo cancelled", on_done=on_done("cancelled"))
    cancelled.cancel()
    lost = conn.api_nowait("echo lost", on_done=on_done("lost"))
    simulator.call(crash)
    with pytest.raises(ConnectionLost):
        await asyncio.wait_for(lost, TIMEOUT)
    labels = [label for label, _ in outcomes]
    assert labels == ["reply", "timeout", "lost"]  # not for the cancelled command
    assert isinstance(outcomes[1][1], CommandTimeout)
    assert isinstance(outcomes[2][1], ConnectionLost)


async def test_pending_commands_fail_when_the_server_goes_away(
    fs_simulator: Callable[..., SimulatorHandle],
) -> None:
    simulator, _, conn = await with_simulator(fs_simulator)
    lost: list[BaseException] = []
    conn.on_disconnect(lost.append)
    ended = asyncio.Event()

    async def consume() -> None:
        async for _ in conn.events():
            pass
        ended.set()

    consumer = asyncio.ensure_future(consume())

    async def stall(cluster: Cluster) -> None:
        server(cluster).stall_replies()

    simulator.call(stall)
    pending = asyncio.ensure_future(conn.api("echo never"))

    async def crash(cluster: Cluster) -> None:
        server(cluster).drop_connections()

    simulator.call(crash)
    with pytest.raises(ConnectionLost, match=r"127\.0\.0\.1"):
        await asyncio.wait_for(pending, TIMEOUT)
    await asyncio.wait_for(ended.wait(), TIMEOUT)
    await consumer
    assert len(lost) == 1
    assert not conn.connected
    with pytest.raises(ConnectionLost):
        await conn.api("status")


async def test_disconnect_notice_is_the_reason_given(
    fs_simulator: Callable[..., SimulatorHandle],
) -> None:
    simulator, _, conn = await with_simulator(fs_simulator)
    lost: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()
    conn.on_disconnect(lost.set_result)

    async def shut_down(cluster: Cluster) -> None:
        server(cluster).disconnect_all("The system is being shut down.\n")

    simulator.call(shut_down)
    error = await asyncio.wait_for(lost, TIMEOUT)
    assert "The system is being shut down." in str(error)


async def test_background_jobs_fail_when_the_connection_drops(
    fs_simulator: Callable[..., SimulatorHandle],
) -> None:
    simulator, target, conn = await with_simulator(fs_simulator)
    # The callee parks unanswered: the job waits for an answer or the timeout.
    job = await conn.bgapi(
        f"originate {{originate_timeout=30}}sofia/external/x@{target.sip_address} &park()"
    )

    async def crash(cluster: Cluster) -> None:
        server(cluster).drop_connections()

    simulator.call(crash)
    with pytest.raises(ConnectionLost):
        await asyncio.wait_for(job.wait(), TIMEOUT)
    assert target.simulated


async def test_reconnect_restores_subscriptions_and_filters(
    fs_simulator: Callable[..., SimulatorHandle],
) -> None:
    simulator = fs_simulator()
    target = simulator.targets[0]
    conn = await connect(
        target.host,
        target.port,
        target.password,
        reconnect=ReconnectPolicy(initial=0.01, maximum=0.05),
    )
    await conn.subscribe(["API", "BACKGROUND_JOB"], fmt="json")
    await conn.add_filter("API-Command", "echo")
    await conn.add_filter("Event-Name", "BACKGROUND_JOB")  # it has no API-Command
    reconnected = asyncio.Event()
    conn.on_reconnect(reconnected.set)

    async def crash(cluster: Cluster) -> None:
        server(cluster).drop_connections()

    simulator.call(crash)
    await asyncio.wait_for(reconnected.wait(), TIMEOUT)
    assert conn.connected
    assert conn.subscriptions == ["API", "BACKGROUND_JOB"]
    seen: list[Event] = []
    conn.on_event(seen.append)
    await conn.api("status")
    await conn.api("echo after reconnect")
    job = await conn.bgapi("echo job after reconnect")
    assert await asyncio.wait_for(job.wait(), TIMEOUT) == "job after reconnect"
    api_events = [event for event in seen if event.name == "API"]
    assert api_events, "subscription not restored"
    assert {event["API-Command"] for event in api_events} == {"echo"}  # filter restored
    await conn.close()
    assert conn.closed


async def test_close_says_exit_and_ends_event_streams(conn: Connection) -> None:
    stream = conn.events()
    ended = asyncio.ensure_future(stream.__anext__())
    await asyncio.sleep(0)
    await conn.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(ended, TIMEOUT)
    assert conn.closed
    assert not conn.connected
    with pytest.raises(ConnectionLost):
        await conn.api("status")
    await conn.close()  # twice is fine


async def test_an_idle_event_iterator_is_bounded_and_says_so(
    conn: Connection, caplog: pytest.LogCaptureFixture
) -> None:
    await conn.subscribe(["API"])
    stream = conn.events(maxsize=3)
    first = asyncio.ensure_future(stream.__anext__())
    await asyncio.sleep(0)  # the iterator's queue exists once it started
    for index in range(10):
        await conn.api(f"echo {index}")  # each fires an API event nobody reads
    await conn.api("echo last")
    assert conn.dropped_events > 0
    assert "dropped" in caplog.text
    assert (await asyncio.wait_for(first, TIMEOUT)).name == "API"


def test_no_password_in_reprs(fs: FreeSwitchTarget) -> None:
    from switchy import Client
    from switchy.loadgen.run import RunSettings
    from switchy.pool import Pool

    secret = "hunter2-secret"
    for thing in (
        Connection("127.0.0.1", 1, secret),
        Client("127.0.0.1", 1, secret),
        Pool.from_contacts(["127.0.0.1:1"], secret),
        RunSettings(password=secret),
    ):
        assert secret not in repr(thing)


async def test_commands_time_out_in_order_with_the_default_timeout(
    fs_simulator: Callable[..., SimulatorHandle],
) -> None:
    simulator = fs_simulator()
    target = simulator.targets[0]
    conn = await connect(target.host, target.port, target.password, command_timeout=0.2)

    async def stall(cluster: Cluster) -> None:
        server(cluster).stall_replies()

    async def resume(cluster: Cluster) -> None:
        server(cluster).resume_replies()

    simulator.call(stall)
    waiting = [conn.api_nowait(f"echo {index}") for index in range(3)]
    results = await asyncio.wait_for(asyncio.gather(*waiting, return_exceptions=True), TIMEOUT)
    assert all(isinstance(result, CommandTimeout) for result in results)
    assert "within 0.2s" in str(results[0])
    simulator.call(resume)
    assert await conn.api("echo after") == "after"  # the three late replies were dropped
    assert await asyncio.wait_for(conn.api("echo again"), TIMEOUT) == "again"
    await conn.close()


async def test_a_read_interval_batches_what_arrives_between_ticks(
    conn: Connection, fs: FreeSwitchTarget
) -> None:
    # The events of one read are handled together; a marker queued with call_soon
    # after each event runs only once the whole read is handled, so it closes a batch.
    listener = await connect(fs.host, fs.port, fs.password, read_interval=0.5)
    loop = asyncio.get_running_loop()
    batches: list[list[str]] = [[]]
    words = ("first", "second", "third", "fourth")
    arrived: dict[str, asyncio.Future[None]] = {word: loop.create_future() for word in words}

    def close_batch() -> None:
        if batches[-1]:
            batches.append([])

    def on_event(event: Event) -> None:
        word = event.get("API-Command-Argument", "")
        if event.name == "API" and word in arrived:
            batches[-1].append(word)
            arrived[word].set_result(None)
            loop.call_soon(close_batch)

    try:
        listener.on_event(on_event)
        await listener.subscribe(["API"])
        await conn.api("echo first")
        await asyncio.wait_for(arrived["first"], TIMEOUT)
        # Reading now waits for the next tick, which may be near: "second" comes
        # in before it or is read as it comes.
        await conn.api("echo second")
        await asyncio.wait_for(arrived["second"], TIMEOUT)
        # "second" was read on that tick or just after it, so the next read is
        # nearly a whole interval away: both events come in before it.
        await conn.api("echo third")
        await conn.api("echo fourth")
        await asyncio.wait_for(asyncio.gather(arrived["third"], arrived["fourth"]), TIMEOUT)
        assert [batch for batch in batches if batch] == [["first"], ["second"], ["third", "fourth"]]
        assert await listener.api("echo replies still come") == "replies still come"
    finally:
        await listener.close()


@pytest.mark.parametrize("interval", [-0.001, float("nan"), float("inf")])
def test_a_read_interval_must_be_a_duration(interval: float) -> None:
    with pytest.raises(ValueError, match="read_interval must be >= 0"):
        Connection("127.0.0.1", 8021, "ClueCon", read_interval=interval)
