"""API command outputs of the simulated node, byte for byte (ESL_PROTOCOL.md §6, trace 02)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

import pytest

from tests.sim.traces import EslClient, Simulation, TraceEvent, load_trace, simulation

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
    # "per Sec" counts the previous second's sessions: 2 when the call was set up
    # in the second just before the status, else 0.
    assert re.fullmatch(r"[02] session\(s\) per Sec out of max 30, peak 2, last 5min 2 ", lines[4])
    assert lines[1:4] + lines[5:] == [
        "FreeSWITCH (Version 1.10.12-release git cc93a68 2026-08-21 14:10:14Z 64bit) is ready",
        "2 session(s) since startup",
        "2 session(s) - peak 2, last 5min 2 ",
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


# -- the Session API's commands ------------------------------------------------------------


async def answered_call(client: EslClient, uuid: str, user: str = "1000") -> str:
    """``parked_call``, answered by the far end; the inbound leg's uuid."""
    b_uuid = await parked_call(client, uuid, user)
    assert await client.api(f"uuid_answer {b_uuid}") == "+OK\n"
    await client.wait_event("CHANNEL_ANSWER", uuid)
    return b_uuid


def timestamp(event: TraceEvent) -> float:
    return int(event.get("Event-Date-Timestamp") or 0) / 1_000_000


def task_of(event: TraceEvent) -> tuple[str | None, ...]:
    return tuple(event.get(name) for name in ("Task-ID", "Task-Desc", "Task-Group"))


async def test_sched_api_runs_the_command_later(sim: Simulation) -> None:
    client = sim.client
    await parked_call(client, "sa")
    assert await client.api("sched_api +1 none uuid_setvar sa later yes") == "+OK Added: 4\n"
    added = await client.wait_event("ADD_SCHEDULE")
    assert task_of(added) == ("4", "sched_api_function", "none")
    runtime = int(added.get("Task-Runtime") or 0)
    assert runtime - 1 <= timestamp(added) < runtime
    done = await client.wait_event("DEL_SCHEDULE")
    assert task_of(done) == task_of(added)
    ran = next(e for e in client.events if e.get("API-Command") == "uuid_setvar")
    assert ran.get("API-Command-Argument") == "sa later yes"
    assert timestamp(ran) >= runtime  # run at its whole second, not before
    assert await client.api("uuid_getvar sa later") == "yes"
    assert sim.node.scheduler.tasks == []


async def test_sched_api_repeats_until_deleted(sim: Simulation) -> None:
    client = sim.client
    usage = "-ERR Invalid syntax. USAGE: [+@]<time> <group_name> <command_string>[&]\n"
    assert await client.api("sched_api") == usage
    assert await client.api("sched_api +1 lonely") == usage
    assert await client.api("sched_api @1 beat echo hi&") == "+OK Added: 4\n"
    repeated = await client.wait_event("RE_SCHEDULE")
    assert task_of(repeated) == ("4", "sched_api_function", "beat")
    assert await client.api("sched_del beat") == "+OK Deleted: 1\n"
    deleted = await client.wait_event("DEL_SCHEDULE")
    assert task_of(deleted) == ("4", "sched_api_function", "beat")
    assert await client.api("sched_del beat") == "+OK Deleted: 0\n"
    assert await client.api("sched_del 99") == "+OK Deleted: 0\n"
    assert await client.api("sched_del") == "-ERR Invalid syntax\n"


async def test_sched_hangup(sim: Simulation) -> None:
    client = sim.client
    b_uuid = await parked_call(client, "sh")
    assert await client.api("sched_hangup +1 sh") == "+OK\n"
    added = await client.wait_event("ADD_SCHEDULE")
    assert task_of(added) == ("4", "switch_ivr_schedule_hangup", "sh")
    hangup = await client.wait_event("CHANNEL_HANGUP", "sh")
    assert hangup.get("Hangup-Cause") == "ALLOTTED_TIMEOUT"
    assert timestamp(hangup) >= int(added.get("Task-Runtime") or 0)
    await client.wait_event("CHANNEL_HANGUP_COMPLETE", b_uuid)
    again = await parked_call(client, "sh2")
    assert await client.api(f"sched_hangup +0 {again} USER_BUSY") == "+OK\n"
    assert (await client.wait_event("CHANNEL_HANGUP", again)).get("Hangup-Cause") == "USER_BUSY"
    assert await client.api("sched_hangup +1 nope") == "-ERR No such channel!\n"
    assert await client.api("sched_hangup") == "-USAGE: [+]<time> <uuid> [<cause>]\n"


async def test_sched_del_by_channel_cancels_its_hangups(sim: Simulation) -> None:
    client = sim.client
    await parked_call(client, "keep")
    assert await client.api("sched_hangup +30 keep") == "+OK\n"
    assert await client.api("sched_del keep") == "+OK Deleted: 1\n"
    deleted = await client.wait_event("DEL_SCHEDULE")
    assert deleted.get("Task-Group") == "keep"
    assert sim.node.scheduler.tasks == []
    assert await client.api("uuid_exists keep") == "true"


async def test_sched_transfer(sim: Simulation) -> None:
    client = sim.client
    b_uuid = await parked_call(client, "st")
    assert await client.api(f"sched_transfer +0 {b_uuid} 2000") == "+OK\n"

    def parked_at(dest: str) -> bool:
        return any(
            e.name == "CHANNEL_PARK" and e.get("Caller-Destination-Number") == dest
            for e in client.channel_events(b_uuid)
        )

    await client.wait_for(lambda: parked_at("2000"))
    assert await client.api("sched_transfer +1 nope 2000") == "-ERR No such channel!\n"
    assert await client.api("sched_transfer +1") == (
        "-USAGE: [+]<time> <uuid> <extension> [<dialplan>] [<context>]\n"
    )


async def test_uuid_audio_keeps_one_bug(sim: Simulation) -> None:
    client = sim.client
    await answered_call(client, "au")
    assert await client.api("uuid_audio au start write mute 1") == "+OK\n"
    start = await client.wait_event("MEDIA_BUG_START", "au")
    assert (start.get("Media-Bug-Function"), start.get("Media-Bug-Target")) == ("audio", "mute")
    assert await client.api("uuid_audio au start read level 2") == "+OK\n"
    assert await client.api("uuid_audio au stop") == "+OK\n"
    stop = await client.wait_event("MEDIA_BUG_STOP", "au")
    assert stop.get("Media-Bug-Function") == "audio"
    assert [e.name for e in client.channel_events("au")].count("MEDIA_BUG_START") == 1
    usage = "-USAGE: <uuid> [start [read|write] [mute|level <level>]|stop]\n"
    assert await client.api("uuid_audio au") == usage
    assert await client.api("uuid_audio au start both mute 1") == usage
    assert await client.api("uuid_audio au start write loud 1") == usage
    # mod_commands reports the missing channel, then its usual +OK.
    assert await client.api("uuid_audio nope stop") == "-ERR No such channel!\n+OK\n"


async def test_uuid_hold_holds_both_ends(sim: Simulation) -> None:
    client = sim.client
    b_uuid = await answered_call(client, "ho")
    assert await client.api("uuid_hold ho") == "+OK Success\n"
    for uuid in ("ho", b_uuid):
        held = await client.wait_event("CHANNEL_HOLD", uuid)
        assert held.get("Channel-Call-State") == "HELD"
        callstate = next(
            e
            for e in client.channel_events(uuid)
            if e.name == "CHANNEL_CALLSTATE" and e.get("Channel-Call-State") == "HELD"
        )
        assert callstate.get("Original-Channel-Call-State") == "ACTIVE"
        assert callstate.get("Channel-Call-State-Number") == "5"
        assert held.get("Caller-Channel-Last-Hold") != "0"
    assert "HELD" in await client.api("show channels")
    assert await client.api("uuid_hold off ho") == "+OK Success\n"
    for uuid in ("ho", b_uuid):
        unheld = await client.wait_event("CHANNEL_UNHOLD", uuid)
        assert unheld.get("Channel-Call-State") == "UNHELD"
    # toggle holds only an ACTIVE call and frees only a HELD one: UNHELD is neither.
    assert await client.api("uuid_hold toggle ho") == "+OK Success\n"
    assert await client.api("uuid_hold nope") == "+OK Success\n"
    assert await client.api("uuid_hold") == (
        "-USAGE: [off|toggle] <uuid> [<display>]\n-ERR Operation Failed\n"
    )
    assert [e.name for e in client.channel_events("ho")].count("CHANNEL_HOLD") == 1


async def test_uuid_media(sim: Simulation) -> None:
    client = sim.client
    await answered_call(client, "me")
    assert await client.api("uuid_media me") == "-ERR Operation Failed\n"  # media is there
    assert await client.api("uuid_media off me") == "+OK Success\n"
    assert "CF_PROXY_MODE" in sim.node.channels[0].flags
    assert await client.api("uuid_media me") == "+OK Success\n"
    assert await client.api("uuid_media off nope") == "-ERR Operation Failed\n"
    assert await client.api("uuid_media") == "-USAGE: [off] <uuid>\n-ERR Operation Failed\n"


async def test_uuid_displace(sim: Simulation) -> None:
    client = sim.client
    await answered_call(client, "di")
    clip = "silence_stream://100"
    assert await client.api(f"uuid_displace di start {clip}") == "+OK Success\n"
    start = await client.wait_event("MEDIA_BUG_START", "di")
    assert (start.get("Media-Bug-Function"), start.get("Media-Bug-Target")) == ("displace", clip)
    await client.wait_event("MEDIA_BUG_STOP", "di")  # the clip ended
    assert await client.api(f"uuid_displace di stop {clip}") == (
        "-ERR Cannot stop displace session!\n"
    )
    endless = "tone_stream://%(100,100,440);loops=-1"
    assert await client.api(f"uuid_displace di start {endless} 0 mux") == "+OK Success\n"
    assert await client.api(f"uuid_displace di start {endless}") == (
        "-ERR Cannot displace session!\n"  # one displace per file
    )
    assert await client.api(f"uuid_displace di stop {endless}") == "+OK Success\n"
    await client.wait_event("MEDIA_BUG_STOP", "di", count=2)
    assert await client.api("uuid_displace di start /no/such.wav") == (
        "-ERR Cannot displace session!\n"
    )
    assert await client.api("uuid_displace nope start x") == "-ERR Cannot locate session!\n"
    assert await client.api("uuid_displace di start") == (
        "-USAGE: <uuid> [start|stop] <path> [<limit>] [mux]\n"
    )


async def test_phone_event_and_flush_dtmf(sim: Simulation) -> None:
    client = sim.client
    b_uuid = await answered_call(client, "pe")
    assert await client.api("uuid_phone_event pe talk") == "+OK Success\n"
    assert await client.api("uuid_phone_event nope") == "-ERR Operation Failed\n"
    assert await client.api("uuid_phone_event") == "-USAGE: <uuid>\n-ERR Operation Failed\n"
    assert await client.api("uuid_flush_dtmf nope") == "-ERR no such session\n"
    # Digits still on their way are not in the receiver's queue: flushing keeps them.
    assert await client.api("uuid_send_dtmf pe 1@100") == "+OK pe sent DTMF 1@100.\n"
    assert await client.api(f"uuid_flush_dtmf {b_uuid}") == "+OK\n"
    assert (await client.wait_event("DTMF", b_uuid)).get("DTMF-Digit") == "1"


async def test_uuid_deflect_to_a_leg_without_a_bridge(sim: Simulation) -> None:
    client = sim.client
    b_uuid = await answered_call(client, "de")
    assert await client.api(f"uuid_deflect {b_uuid} sip:3000@127.0.0.1") == (
        "+OK:SIP/2.0 403 Forbidden\r\n\n"
    )
    hangup = await client.wait_event("CHANNEL_HANGUP", b_uuid)
    assert hangup.get("Hangup-Cause") == "BLIND_TRANSFER"
    error = await client.wait_event("CUSTOM", "de")
    assert error.get("Event-Subclass") == "sofia::error"
    assert error.get("Error-Type") == "blind_transfer"
    assert error.get("Transfer-Exten") == "3000"
    assert error.get("variable_transfer_destination") == "blind:3000"
    assert (await client.wait_event("CHANNEL_HANGUP", "de")).get("Hangup-Cause") == (
        "NORMAL_CLEARING"  # the BYE
    )
    assert await client.api("uuid_deflect nope 3000") == "-ERR No such channel nope!\n"
    assert await client.api("uuid_deflect de") == "-USAGE: <uuid> <uri>\n"


async def test_uuid_deflect_transfers_the_far_ends_partner(sim: Simulation) -> None:
    client = sim.client
    b_uuid = await answered_call(client, "df")
    other = await answered_call(client, "df2", user="2000")
    assert await client.api(f"uuid_bridge df {other}") == f"+OK {other}\n"
    await client.wait_event("CHANNEL_BRIDGE", "df")
    assert await client.api(f"uuid_deflect {b_uuid} 4000") == "+OK:SIP/2.0 200 OK\r\n\n"
    hangup = await client.wait_event("CHANNEL_HANGUP", b_uuid)
    assert hangup.get("Hangup-Cause") == "BLIND_TRANSFER"
    done = await client.wait_event("CHANNEL_HANGUP_COMPLETE", b_uuid)
    assert done.get("variable_sip_refer_reply") == "SIP/2.0 200 OK\r\n"
    far = await client.wait_event("CHANNEL_HANGUP_COMPLETE", "df")
    assert far.get("variable_transfer_to") == f"blind:{other}"
    assert far.get("variable_endpoint_disposition") == "BLIND_TRANSFER"


async def test_broadcast_applications_on_a_ringing_leg(sim: Simulation) -> None:
    client = sim.client
    b_uuid = await parked_call(client, "bc")

    async def run(app: str, arg: str = "") -> TraceEvent:
        before = len(client.channel_events(b_uuid))
        reply = await client.api(f"uuid_broadcast {b_uuid} {app}::{arg} aleg")
        assert reply == "+OK Message sent\n"

        def executed() -> TraceEvent | None:
            return next(
                (
                    e
                    for e in client.channel_events(b_uuid)[before:]
                    if e.name == "CHANNEL_EXECUTE" and e.get("Application") == app
                ),
                None,
            )

        await client.wait_for(executed)
        event = executed()
        assert event is not None
        return event

    await run("ring_ready")
    await client.wait_event("CHANNEL_PROGRESS", b_uuid)
    await run("pre_answer")
    await client.wait_event("CHANNEL_PROGRESS_MEDIA", b_uuid)
    await run("answer")
    await client.wait_event("CHANNEL_ANSWER", b_uuid)
    await run("playback", "{loops=-1}tone_stream://%(100,100,440)")
    await client.wait_event("PLAYBACK_START", b_uuid)
    assert await client.api(f"uuid_break {b_uuid}") == "+OK\n"
    stop = await client.wait_event("PLAYBACK_STOP", b_uuid)
    assert stop.get("Playback-Status") == "break"
    await run("sleep", "20")
    await run("log", "checkpoint")  # no space: uuid_broadcast splits its arguments at spaces
    await run("info")
    await run("record_session", "/dev/null")
    await client.wait_event("RECORD_START", b_uuid)
    await run("stop_record_session", "all")
    await client.wait_event("RECORD_STOP", b_uuid)
    await run("park")
    assert len([e for e in client.channel_events(b_uuid) if e.name == "CHANNEL_PARK"]) == 2
    await run("echo")
    await run("hangup", "CALL_REJECTED")
    hangup = await client.wait_event("CHANNEL_HANGUP", b_uuid)
    assert hangup.get("Hangup-Cause") == "CALL_REJECTED"


async def test_broadcast_respond_refuses_the_call(sim: Simulation) -> None:
    client = sim.client
    b_uuid = await parked_call(client, "rs")
    assert await client.api(f"uuid_broadcast {b_uuid} respond::486 aleg") == ("+OK Message sent\n")
    assert (await client.wait_event("CHANNEL_HANGUP", b_uuid)).get("Hangup-Cause") == "USER_BUSY"
    assert (await client.wait_event("CHANNEL_HANGUP", "rs")).get("Hangup-Cause") == "USER_BUSY"


async def test_broadcast_with_a_hangup_cause_and_deflect(sim: Simulation) -> None:
    client = sim.client
    await answered_call(client, "hc")
    clip = "silence_stream://20"
    assert await client.api(f"uuid_broadcast hc playback!USER_BUSY::{clip} aleg") == (
        "+OK Message sent\n"
    )
    await client.wait_event("PLAYBACK_STOP", "hc")
    hangup = await client.wait_event("CHANNEL_HANGUP", "hc")
    assert hangup.get("Hangup-Cause") == "USER_BUSY"
    other = await answered_call(client, "dx", user="2000")
    assert await client.api(f"uuid_broadcast {other} deflect::5000 aleg") == "+OK Message sent\n"
    assert (await client.wait_event("CHANNEL_HANGUP", other)).get("Hangup-Cause") == (
        "BLIND_TRANSFER"
    )
