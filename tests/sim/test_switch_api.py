"""API command outputs of the simulated node, byte for byte (ESL_PROTOCOL.md §6, trace 02)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

import pytest

from tests.sim.traces import EslClient, Simulation, load_trace, simulation

SIP = "127.0.0.1:5080"


@pytest.fixture
async def sim() -> AsyncIterator[Simulation]:
    async with simulation() as running:
        yield running


async def parked_call(client: EslClient, uuid: str, user: str = "1000") -> str:
    """Originate ``uuid`` to ``user`` on the node itself; the parked inbound leg's uuid."""
    seen = len(client.events)
    await client.bgapi(f"originate {{origination_uuid={uuid}}}sofia/external/{user}@{SIP} &park()")

    def inbound_park() -> str | None:
        parks = (e for e in client.events[seen:] if e.name == "CHANNEL_PARK")
        return next((e.uuid for e in parks if e.get("Call-Direction") == "inbound"), None)

    await client.wait_for(inbound_park)
    b_uuid = inbound_park()
    assert b_uuid is not None
    return b_uuid


async def test_status() -> None:
    async with simulation(max_sessions=500, sessions_per_second=30) as sim:
        client = sim.client
        await parked_call(client, "st")
        status = await client.api("status")
    lines = status.split("\n")
    assert re.fullmatch(
        r"UP 0 years, 0 days, 0 hours, 0 minutes, \d+ seconds?, \d+ milliseconds?, "
        r"\d+ microseconds?",
        lines[0],
    )
    assert lines[1:] == [
        "FreeSWITCH (Version 1.10.12-release git cc93a68 2026-08-21 14:10:14Z 64bit) is ready",
        "2 session(s) since startup",
        "2 session(s) - peak 2, last 5min 2 ",
        "0 session(s) per Sec out of max 30, peak 2, last 5min 2 ",
        "500 session(s) max",
        "min idle cpu 0.00/99.00",
        "Current Stack Size/Max 240K/8192K",
        "",
    ]


async def test_version_and_simple_commands(sim: Simulation) -> None:
    client = sim.client
    assert await client.api("version") == (
        "FreeSWITCH Version 1.10.12-release+git~20260821T141014Z~cc93a683ca~64bit "
        "(git cc93a68 2026-08-21 14:10:14Z 64bit)\n"
    )
    assert await client.api("version short") == "1.10.12\n"
    assert await client.api("echo hello   world") == "hello   world"
    assert await client.api("hostname") == sim.node.identity.hostname
    assert await client.api("not_a_command") == "-ERR not_a_command Command not found!\n"


async def test_trace_02_outputs(sim: Simulation) -> None:
    """The outputs trace 02 recorded on an idle switch (less its counters)."""
    replies = [frame.body.decode() for frame in load_trace("02_api_basics").replies]
    client = sim.client
    assert await client.api("global_getvar switch_serial") == "-ERR no reply\n"
    assert await client.api("show calls count") == "\n0 total.\n"
    assert await client.api("show channels as json") == '{"row_count": 0}\n'
    profile = await client.api("sofia status profile external")
    recorded = next(reply for reply in replies if reply.startswith("====="))
    counters = re.compile(r"(CALLS-IN|FAILED-CALLS-IN|CALLS-OUT|FAILED-CALLS-OUT)( +\t)\d+")
    assert counters.sub(r"\1\2N", profile) == counters.sub(r"\1\2N", recorded)
    assert await client.api("uuid_kill 00000000-0000-0000-0000-000000000000") == (
        "-ERR No such channel!\n"
    )
    assert await client.api("hupall") == "+OK hangup all channels with cause MANAGER_REQUEST\n"


async def test_sofia_status(sim: Simulation) -> None:
    client = sim.client
    assert await client.api("sofia status profile internal") == "Invalid Profile!\n"
    assert await client.api("sofia bogus") == "Unknown Command [bogus]\n"
    await client.api("originate sofia/external/nobody@127.0.0.1:5999 &park()")
    profile = await client.api("sofia status profile external")
    assert "CALLS-OUT        \t1\nFAILED-CALLS-OUT \t1\n" in profile
    assert profile.endswith("REGISTRATIONS    \t0\n")
    assert profile.startswith("=" * 97 + "\nName             \texternal\n")


async def test_show_channels_and_calls(sim: Simulation) -> None:
    client = sim.client
    assert await client.api("show channels") == "\n0 total.\n"
    b_uuid = await parked_call(client, "sh")
    table = (await client.api("show channels")).split("\n")
    assert table[0].startswith("uuid,direction,created,created_epoch,name,state,cid_name")
    assert table[0].endswith("initial_dest,initial_dialplan,initial_context")
    assert len(table[0].split(",")) == 38
    assert table[1].startswith("sh,outbound,")
    assert table[2].startswith(f"{b_uuid},inbound,")
    assert table[3:] == ["", "2 total.", ""]
    assert await client.api("show channels count") == "\n2 total.\n"
    assert json.loads(await client.api("show channels count as json")) == {
        "row_count": 2,
        "rows": [],
    }
    rows = json.loads(await client.api("show channels as json"))
    assert rows["row_count"] == 2
    inbound = rows["rows"][1]
    assert inbound["application"] == "park"
    assert inbound["context"] == "switchy"
    assert inbound["callstate"] == "RINGING"
    assert inbound["read_codec"] == "PCMU"
    calls = (await client.api("show calls")).split("\n")
    assert len(calls[0].split(",")) == 41
    assert calls[-3:] == ["", "2 total.", ""]
    assert await client.api("show calls count") == "\n2 total.\n"


async def test_global_getvar(sim: Simulation) -> None:
    client = sim.client
    assert await client.api("global_getvar hostname") == sim.node.identity.hostname
    listing = await client.api("global_getvar")
    assert f"core_uuid={sim.node.identity.core_uuid}\n" in listing


async def test_channel_variables(sim: Simulation) -> None:
    client = sim.client
    await parked_call(client, "var")
    assert await client.api("uuid_setvar var greeting 'hello   world  '") == "+OK\n"
    assert await client.api("uuid_getvar var greeting") == "hello   world  "
    assert await client.api("uuid_setvar var spaced hello   world  ") == "+OK\n"
    assert await client.api("uuid_getvar var spaced") == "hello   world"
    assert await client.api("uuid_setvar var greeting") == "+OK\n"
    assert await client.api("uuid_getvar var greeting") == "_undef_"
    assert await client.api("uuid_setvar_multi var a=1;b=2\\;3") == "+OK\n"
    assert await client.api("uuid_getvar var b") == "2;3"
    assert await client.api("uuid_getvar var a") == "1"
    assert await client.api("uuid_getvar var uuid") == "var"
    assert await client.api("uuid_setvar_multi var") == "-ERR no reply\n"
    assert await client.api("uuid_setvar nope x y") == "-ERR No such channel!\n"
    assert await client.api("uuid_setvar var") == "-USAGE: <uuid> <var> [value]\n"
    assert await client.api("uuid_getvar nope x") == "-ERR No such channel!\n"
    assert await client.api("uuid_getvar var") == "-USAGE: <uuid> <var>\n"
    assert await client.api("uuid_setvar_multi nope a=1") == (
        "-ERR No such channel!\n-USAGE: <uuid> <var>=<value>;<var>=<value>...\n"
    )
    assert await client.api("uuid_exists var") == "true"
    assert await client.api("uuid_exists nope") == "false"


async def test_array_variables_are_indexed(sim: Simulation) -> None:
    client = sim.client
    b_uuid = await parked_call(client, "arr", user="7777")
    assert await client.api(f"uuid_getvar {b_uuid} DP_MATCH") == "ARRAY::7777|:7777"
    assert await client.api(f"uuid_getvar {b_uuid} DP_MATCH[1]") == "7777"


async def test_channel_command_errors(sim: Simulation) -> None:
    client = sim.client
    assert await client.api("uuid_kill") == "-USAGE: <uuid> [cause]\n"
    assert await client.api("uuid_answer nope") == "-ERROR\n"
    assert await client.api("uuid_park nope") == "-ERR No such channel!\n"
    assert await client.api("uuid_broadcast nope x") == "-ERR invalid uuid\n"
    assert await client.api("uuid_broadcast nope") == (
        "-USAGE: <uuid> <path> [aleg|bleg|holdb|both]\n"
    )
    assert await client.api("uuid_bridge a") == "-USAGE: <uuid> <other_uuid>\n"
    assert await client.api("uuid_bridge a b") == "-ERR Invalid uuid\n"
    assert await client.api("uuid_send_dtmf nope 1") == "-ERR Cannot locate session!\n"
    assert await client.api("uuid_record nope start /tmp/x.wav") == "-ERR Cannot locate session!\n"
    assert await client.api("uuid_record nope") == (
        "-USAGE: <uuid> [start|stop|mask|unmask] <path> [<limit>] [<recording_vars>]\n"
    )
    assert await client.api("uuid_transfer nope 1000") == "-ERR No such channel!\n"
    assert await client.api("uuid_transfer nope") == (
        "-USAGE: <uuid> [-bleg|-both] <dest-exten> [<dialplan>] [<context>]\n"
    )


async def test_hupall_outputs(sim: Simulation) -> None:
    client = sim.client
    assert await client.api("hupall NORMAL_CLEARING") == (
        "+OK hangup all channels with cause NORMAL_CLEARING\n"
    )
    assert await client.api("hupall nonsense") == (
        "+OK hangup all channels with cause NORMAL_CLEARING\n"
    )
    assert await client.api("hupall 17") == "+OK hangup all channels with cause USER_BUSY\n"
    assert await client.api("hupall USER_BUSY a 1 b 2") == (
        "+OK hangup all channels matching [a]=[1]... with cause: USER_BUSY\n"
    )


async def test_fsctl(sim: Simulation) -> None:
    client = sim.client
    assert (await client.api("fsctl")).startswith("-USAGE: [recover|send_sighup|hupall|")
    assert await client.api("fsctl max_sessions") == "+OK max sessions: 20000\n"
    assert await client.api("fsctl max_sessions 10") == "+OK max sessions: 10\n"
    assert await client.api("fsctl sps 5") == "+OK sessions per second: 5\n"
    assert await client.api("fsctl loglevel") == "+OK log level: DEBUG [7]\n"
    assert await client.api("fsctl loglevel warning") == "+OK log level: WARNING [4]\n"
    assert await client.api("fsctl loglevel 6") == "+OK log level: INFO [6]\n"
    assert await client.api("fsctl loglevel loud") == "-ERR syntax error, log level not set!\n"
    assert await client.api("fsctl hupall") == "+OK\n"
    assert await client.api("fsctl ready_check") == "true"
    assert (await client.api("fsctl bogus")).startswith("-ERR INVALID COMMAND\nUSAGE: fsctl [")


async def test_paused_node_refuses_calls(sim: Simulation) -> None:
    client = sim.client
    assert await client.api("fsctl pause outbound") == "+OK\n"
    assert await client.api(f"originate sofia/external/1@{SIP} &park()") == (
        "-ERR DESTINATION_OUT_OF_ORDER\n"
    )
    assert await client.api("fsctl resume") == "+OK\n"
    assert await client.api("fsctl pause inbound") == "+OK\n"
    assert await client.api(f"originate sofia/external/1@{SIP} &park()") == (
        "-ERR NORMAL_TEMPORARY_FAILURE\n"
    )


async def test_show_channels_like(sim: Simulation) -> None:
    client = sim.client
    await parked_call(client, "needle-1", user="42")
    table = await client.api("show channels like needle")
    assert table.startswith("uuid,")
    assert table.endswith("\n\n1 total.\n")
    assert await client.api("show channels like nothing-matches") == "\n0 total.\n"


async def test_heartbeat() -> None:
    async with simulation(heartbeat_interval=0.02) as sim:
        client = sim.client
        beat = await client.wait_event("HEARTBEAT")
        assert beat.get("Event-Info") == "System Ready"
        assert beat.get("Max-Sessions") == "20000"
        assert beat.get("FreeSWITCH-Version") == (
            "1.10.12-release+git~20260821T141014Z~cc93a683ca~64bit"
        )
        reschedule = await client.wait_event("RE_SCHEDULE")
        assert reschedule.get("Task-Desc") == "heartbeat"
