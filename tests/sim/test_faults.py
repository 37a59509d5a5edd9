"""A simulated node going away: clean shutdown, crash, restart, slow consumers (trace 14)."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator

import pytest

from switchy.errors import ConnectionLost
from switchy.esl.connection import ReconnectPolicy, connect
from switchy.sim.server import ESLServer
from switchy.sim.sofia import SipNetwork
from switchy.sim.switch import Node
from tests.sim.traces import WAIT, EslClient, Simulation

#: The rtp-timeout-sec of the nodes under test.
RTP_TIMEOUT = 0.2


class Member(Simulation):
    """A node of the test network, its event socket and a client of it."""

    async def reconnect(self) -> EslClient:
        self.client = await EslClient.login(self.server.host, self.server.port)
        await self.client.command("event plain ALL\n\n")
        return self.client


@pytest.fixture
async def network() -> AsyncIterator[tuple[Member, Member]]:
    """Two nodes on one SIP network: ``caller`` (parks) and ``callee`` (answers)."""
    sip = SipNetwork()
    members: list[Member] = []
    for port, answer_delay in ((5080, None), (5082, 0.0)):
        node = Node(network=sip, sip_port=port, answer_delay=answer_delay, rtp_timeout=RTP_TIMEOUT)
        server = ESLServer(node)
        await server.start()
        node.start()
        client = await EslClient.login(server.host, server.port)
        await client.command("event plain ALL\n\n")
        members.append(Member(node, server, client))
    yield members[0], members[1]
    for member in members:
        await member.client.close()
        await member.server.close()
        await member.node.close()


async def answered_call(caller: Member, callee: Member, uuid: str) -> str:
    """A call from ``caller`` to ``callee``, answered; the callee's leg uuid."""
    client = caller.client
    job = await client.bgapi(
        f"originate {{origination_uuid={uuid}}}sofia/external/1000@{callee.sip_address} &park()"
    )
    assert await client.job(job) == f"+OK {uuid}\n"
    answer = await callee.client.wait_event("CHANNEL_ANSWER")
    assert answer.uuid is not None
    return answer.uuid


# -- clean shutdown ----------------------------------------------------------------------------


async def test_a_direct_shutdown_follows_trace_14(network: tuple[Member, Member]) -> None:
    caller, _ = network
    client = caller.client
    await client.bgapi(f"originate sofia/external/victim@{caller.sip_address} &park()")
    await client.wait_for(lambda: len(caller.node.channels) == 2)
    await caller.node.shutdown()
    await client.wait_for(lambda: client.closed)
    names = [e.name for e in client.events if e.name in ("SHUTDOWN", "CHANNEL_HANGUP_COMPLETE")]
    assert names == ["SHUTDOWN", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_HANGUP_COMPLETE"]
    done = [e for e in client.events if e.name == "CHANNEL_HANGUP_COMPLETE"]
    assert {e.get("Hangup-Cause") for e in done} == {"SYSTEM_SHUTDOWN"}
    notice = client.frames[-1]
    assert notice.content_type == "text/disconnect-notice"
    assert notice.body == b"The system is being shut down.\n"
    assert not caller.node.alive
    assert not caller.server.serving


# -- crash -------------------------------------------------------------------------------------


async def test_a_crash_closes_the_sockets_without_a_word(network: tuple[Member, Member]) -> None:
    caller, callee = network
    await answered_call(caller, callee, "doomed")
    idle = await EslClient.login(callee.server.host, callee.server.port)
    callee.node.crash()
    for client in (callee.client, idle):
        await client.wait_for(lambda client=client: client.closed)
    assert [frame.content_type for frame in idle.frames] == ["auth/request", "command/reply"]
    notices = [f for f in callee.client.frames if f.content_type == "text/disconnect-notice"]
    assert notices == []
    assert callee.node.channels == []
    assert not callee.server.serving
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(callee.server.host, callee.server.port)
    await idle.close()


async def test_the_far_end_of_a_crashed_node_times_out_its_media(
    network: tuple[Member, Member],
) -> None:
    caller, callee = network
    client = caller.client
    loop = asyncio.get_running_loop()
    await answered_call(caller, callee, "orphan")
    callee.node.crash()
    crashed_at = loop.time()
    hangup = await client.wait_event("CHANNEL_HANGUP", "orphan")
    assert loop.time() - crashed_at >= RTP_TIMEOUT
    assert hangup.get("Hangup-Cause") == "MEDIA_TIMEOUT"
    complete = await client.wait_event("CHANNEL_HANGUP_COMPLETE", "orphan")
    assert complete.get("variable_sip_hangup_disposition") == "send_bye"
    assert complete.get("variable_hangup_cause_q850") == "16"
    # No BYE ever came: nothing before the media timeout ended the call.
    assert [e.name for e in client.channel_events("orphan")].count("CHANNEL_HANGUP") == 1


async def test_a_crashed_node_is_unreachable(network: tuple[Member, Member]) -> None:
    caller, callee = network
    callee.node.crash()
    reply = await caller.client.api(f"originate sofia/external/1000@{callee.sip_address} &park()")
    assert reply == "-ERR NORMAL_TEMPORARY_FAILURE\n"


async def test_a_leg_without_media_waits_for_its_own_end(network: tuple[Member, Member]) -> None:
    caller, callee = network
    # The callee calls the parking caller: that leg rings, without media, when its caller dies.
    await callee.client.bgapi(f"originate sofia/external/2000@{caller.sip_address} &park()")
    parked = await caller.client.wait_event("CHANNEL_PARK")
    channel = caller.node.get_channel(parked.uuid or "")
    assert channel is not None
    callee.node.crash()
    # No CANCEL comes and no RTP timer runs: it still rings well past the RTP timeout.
    assert not await channel.until(lambda: not channel.is_up, RTP_TIMEOUT * 2)
    assert await caller.client.api(f"uuid_kill {channel.uuid}") == "+OK\n"


# -- restart -----------------------------------------------------------------------------------


async def test_a_restarted_node_is_a_new_process_at_the_same_addresses(
    network: tuple[Member, Member],
) -> None:
    caller, callee = network
    await answered_call(caller, callee, "before")
    old_core = await callee.client.api("global_getvar core_uuid")
    port = callee.server.port
    callee.node.crash()
    await callee.node.restart()
    assert callee.server.port == port
    client = await callee.reconnect()
    new_core = await client.api("global_getvar core_uuid")
    assert new_core != old_core
    assert new_core == callee.node.identity.core_uuid
    assert await client.api("show channels") == "\n0 total.\n"
    status = await client.api("status")
    assert re.match(r"UP 0 years, 0 days, 0 hours, 0 minutes, 0 seconds, ", status)
    assert "\n0 session(s) since startup\n0 session(s) - peak 0, " in status
    # The SIP address answers again, and events carry the new Core-UUID.
    job = await caller.client.bgapi(
        f"originate {{origination_uuid=after}}sofia/external/1000@{callee.sip_address} &park()"
    )
    assert await caller.client.job(job) == "+OK after\n"
    answer = await client.wait_event("CHANNEL_ANSWER")
    assert answer.get("Core-UUID") == new_core


async def test_a_node_restarts_after_a_clean_shutdown_too(network: tuple[Member, Member]) -> None:
    _, callee = network
    await callee.node.shutdown()
    await callee.client.wait_for(lambda: callee.client.closed)
    await callee.node.restart()
    client = await callee.reconnect()
    assert await client.api("fsctl ready_check") == "true"
    with pytest.raises(RuntimeError):
        await callee.node.restart()


async def test_an_auto_reconnecting_client_finds_the_restarted_node(
    network: tuple[Member, Member],
) -> None:
    _, callee = network
    server = callee.server
    conn = await connect(
        server.host, server.port, reconnect=ReconnectPolicy(initial=0.01, maximum=0.05)
    )
    try:
        old_core = await conn.api("global_getvar core_uuid")
        reconnected = asyncio.Event()
        conn.on_reconnect(reconnected.set)
        callee.node.crash()
        await callee.node.restart()
        await asyncio.wait_for(reconnected.wait(), WAIT)
        assert await conn.api("global_getvar core_uuid") == callee.node.identity.core_uuid
        assert callee.node.identity.core_uuid != old_core
    finally:
        await conn.close()


# -- slow consumer -----------------------------------------------------------------------------


async def test_a_slow_consumer_is_told_why_it_was_dropped() -> None:
    node = Node(network=SipNetwork())
    async with ESLServer(node, event_queue_size=5, max_lost_events=3) as server:
        conn = await connect(server.host, server.port)
        lost: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()
        conn.on_disconnect(lambda error: lost.done() or lost.set_result(error))
        await conn.subscribe("HEARTBEAT")
        for _ in range(9):  # the queue holds 5; more than 3 more are lost
            node.fire(node.heartbeat_event())
        error = await asyncio.wait_for(lost, WAIT)
        assert isinstance(error, ConnectionLost)
        assert "killed listener because of lost events" in str(error)
        with contextlib.suppress(ConnectionLost):
            await conn.close()
    await node.close()
