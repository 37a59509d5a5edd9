"""Calls on a simulated node, driven over its event socket: originate, answer, hang up."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.sim.traces import EslClient, Simulation, TraceEvent, simulation

SIP = "127.0.0.1:5080"


@pytest.fixture
async def sim() -> AsyncIterator[Simulation]:
    async with simulation() as running:
        yield running


def sofia(user: str) -> str:
    """A dial string to ``user`` on the simulated node's own profile."""
    return f"sofia/external/{user}@{SIP}"


def names(events: list[TraceEvent]) -> list[str]:
    return [event.name for event in events]


async def inbound_leg(client: EslClient, user: str) -> TraceEvent:
    """The CHANNEL_PARK of the inbound leg called ``user``."""

    def parked() -> TraceEvent | None:
        return next(
            (
                e
                for e in client.events
                if e.name == "CHANNEL_PARK"
                and e.get("Call-Direction") == "inbound"
                and e.get("Caller-Destination-Number") == user
            ),
            None,
        )

    await client.wait_for(parked)
    event = parked()
    assert event is not None
    return event


async def test_a_parked_far_end_answered_by_uuid_answer_completes_the_originate(
    sim: Simulation,
) -> None:
    client = sim.client
    job = await client.bgapi(
        f"originate {{origination_uuid=call-a}}sofia/external/1000@{SIP} &park()"
    )
    b_uuid = (await inbound_leg(client, "1000")).uuid
    assert b_uuid is not None
    assert await client.api("show channels count") == "\n2 total.\n"
    assert await client.api(f"uuid_answer {b_uuid}") == "+OK\n"
    assert await client.job(job) == "+OK call-a\n"
    await client.wait_event("CHANNEL_PARK", "call-a")
    assert await client.api("uuid_kill call-a") == "+OK\n"
    a_done = await client.wait_event("CHANNEL_HANGUP_COMPLETE", "call-a")
    b_done = await client.wait_event("CHANNEL_HANGUP_COMPLETE", b_uuid)
    assert a_done.get("variable_sip_hangup_disposition") == "send_bye"
    assert b_done.get("variable_sip_hangup_disposition") == "recv_bye"
    assert b_done.get("Hangup-Cause") == "NORMAL_CLEARING"
    assert names(client.channel_events("call-a"))[:6] == [
        "CHANNEL_OUTGOING",
        "CHANNEL_STATE",
        "CHANNEL_CREATE",
        "CHANNEL_ORIGINATE",
        "CHANNEL_STATE",
        "CHANNEL_STATE",
    ]
    assert names(client.channel_events("call-a"))[-3:] == [
        "CHANNEL_HANGUP_COMPLETE",
        "CHANNEL_DESTROY",
        "CHANNEL_STATE",
    ]
    assert await client.api("show channels") == "\n0 total.\n"


async def test_x_headers_reach_the_far_leg_and_variables_stay_on_the_caller(
    sim: Simulation,
) -> None:
    client = sim.client
    await client.bgapi(
        f"originate {{origination_uuid=xa,sip_h_X-App=demo,my_var=a\\,b}}"
        f"sofia/external/1000@{SIP} &park()"
    )
    b_park = await inbound_leg(client, "1000")
    assert b_park.get("variable_sip_h_X-App") == "demo"
    assert b_park.get("variable_my_var") is None
    assert await client.api("uuid_getvar xa my_var") == "a,b"
    created = await client.wait_event("CHANNEL_CREATE", "xa")
    assert created.get("Caller-Callee-ID-Name") == "Outbound Call"
    assert created.get("Caller-Source") == "src/switch_ivr_originate.c"
    assert created.get("Caller-Context") == "default"
    assert created.get("Channel-Name") == f"sofia/external/1000@{SIP}"


async def test_origination_caller_id_shows_on_both_legs(sim: Simulation) -> None:
    client = sim.client
    await client.bgapi(
        "originate {origination_uuid=cid,origination_caller_id_name='Alice Smith',"
        f"origination_caller_id_number=5551234}}sofia/external/2000@{SIP} &park()"
    )
    b_park = await inbound_leg(client, "2000")
    assert b_park.get("Caller-Caller-ID-Name") == "Alice Smith"
    assert b_park.get("Caller-Caller-ID-Number") == "5551234"
    assert b_park.get("Channel-Name") == "sofia/external/5551234@127.0.0.1"
    a_created = await client.wait_event("CHANNEL_CREATE", "cid")
    assert a_created.get("Caller-Caller-ID-Name") == "Alice Smith"


async def test_answer_delay_makes_inbound_legs_answer_themselves() -> None:
    async with simulation(answer_delay=0.05) as sim:
        client = sim.client
        assert await client.api(f"originate sofia/external/3000@{SIP} &park()") == (
            f"+OK {client.events[0].uuid}\n"
        )
        b_park = await inbound_leg(client, "3000")
        b_events = names(client.channel_events(b_park.uuid or ""))
        assert b_events[-8:] == [
            "CHANNEL_EXECUTE",  # sleep
            "CHANNEL_EXECUTE_COMPLETE",
            "CHANNEL_EXECUTE",  # answer
            "CHANNEL_ANSWER",
            "CHANNEL_CALLSTATE",
            "CHANNEL_EXECUTE_COMPLETE",
            "CHANNEL_EXECUTE",  # park
            "CHANNEL_PARK",
        ]


async def test_ringing_sends_progress_before_the_answer() -> None:
    async with simulation(answer_delay=0, ringing=True) as sim:
        client = sim.client
        result = await client.api(f"originate {{origination_uuid=r}}sofia/external/1@{SIP} &park()")
        assert result == "+OK r\n"
        a_events = client.channel_events("r")
        progress = names(a_events).index("CHANNEL_PROGRESS")
        assert names(a_events).index("CHANNEL_ANSWER") > progress
        ringing = a_events[progress + 1]
        assert ringing.name == "CHANNEL_CALLSTATE"
        assert ringing.get("Channel-Call-State") == "RINGING"
        assert ringing.get("Original-Channel-Call-State") == "DOWN"


async def test_reject_rules_refuse_calls_with_their_cause() -> None:
    def reject(user: str) -> str | None:
        return "CALL_REJECTED" if user.startswith("no") else None

    async with simulation(reject={"busy": "USER_BUSY"}) as sim:
        client = sim.client
        result = await client.api(f"originate sofia/external/busy@{SIP} &park()")
        assert result == "-ERR USER_BUSY\n"
    async with simulation(reject=reject, answer_delay=0) as sim:
        client = sim.client
        assert await client.api(f"originate sofia/external/nope@{SIP} &park()") == (
            "-ERR CALL_REJECTED\n"
        )
        assert (await client.api(f"originate sofia/external/yes@{SIP} &park()")).startswith("+OK")
        refused = [
            e
            for e in client.events
            if e.name == "CHANNEL_HANGUP_COMPLETE" and e.get("Caller-Destination-Number") == "nope"
        ]
        outbound = next(e for e in refused if e.get("Call-Direction") == "outbound")
        assert outbound.get("variable_sip_hangup_disposition") == "recv_refuse"
        assert outbound.get("variable_sip_invite_failure_status") == "603"


async def test_early_media_completes_the_originate_unless_ignored(sim: Simulation) -> None:
    client = sim.client
    early = await client.bgapi(f"originate {{origination_uuid=e1}}sofia/external/a@{SIP} &park()")
    late = await client.bgapi(
        f"originate {{origination_uuid=e2,ignore_early_media=true}}sofia/external/b@{SIP} &park()"
    )
    b1 = (await inbound_leg(client, "a")).uuid
    b2 = (await inbound_leg(client, "b")).uuid
    # Playing a missing file pre-answers the inbound leg (trace 07).
    for b_uuid in (b1, b2):
        assert await client.api(f"uuid_broadcast {b_uuid} ring_ready aleg") == "+OK Message sent\n"
    assert await client.job(early) == "+OK e1\n"
    await client.wait_event("CHANNEL_PROGRESS_MEDIA", "e2")
    assert all(e.get("Job-UUID") != late for e in client.events)
    assert await client.api(f"uuid_answer {b2}") == "+OK\n"
    assert await client.job(late) == "+OK e2\n"
    a_events = names(client.channel_events("e1"))
    assert a_events.index("CHANNEL_PROGRESS_MEDIA") < a_events.index("CALL_UPDATE")
    assert "CHANNEL_ANSWER" not in a_events


async def test_nobody_answering_times_out_with_no_answer(sim: Simulation) -> None:
    client = sim.client
    # (trace 10 shows originate_timeout; leg_timeout limits one leg the same way)
    job = await client.bgapi(f"originate [leg_timeout=1]sofia/external/x@{SIP} &park()")
    b_uuid = (await inbound_leg(client, "x")).uuid
    assert await client.job(job) == "-ERR NO_ANSWER\n"
    b_done = await client.wait_event("CHANNEL_HANGUP_COMPLETE", b_uuid)
    assert b_done.get("Hangup-Cause") == "ORIGINATOR_CANCEL"
    assert b_done.get("variable_sip_hangup_disposition") == "recv_cancel"


@pytest.mark.parametrize(
    ("dial", "result"),
    [
        ("error/user_busy", "-ERR USER_BUSY\n"),
        ("error/no_route_destination", "-ERR NO_ROUTE_DESTINATION\n"),
        ("error/17", "-ERR USER_BUSY\n"),
        ("nosuch/thing", "-ERR CHAN_NOT_IMPLEMENTED\n"),
        ("sofia/gateway/gw1/1000", "-ERR INVALID_GATEWAY\n"),
        ("sofia/internal/1000@127.0.0.1", "-ERR INVALID_PROFILE\n"),
        ("sofia/external/1000", "-ERR USER_NOT_REGISTERED\n"),
        ("sofia/external/1000@127.0.0.1:5999", "-ERR NORMAL_TEMPORARY_FAILURE\n"),
        ("{v=x", "-ERR DESTINATION_OUT_OF_ORDER\n"),
    ],
)
async def test_originate_failures(sim: Simulation, dial: str, result: str) -> None:
    assert await sim.client.api(f"originate {dial} &park()") == result


async def test_originate_usage(sim: Simulation) -> None:
    usage = (
        "-USAGE: <call url> <exten>|&<application_name>(<app_args>) [<dialplan>] [<context>] "
        "[<cid_name>] [<cid_num>] [<timeout_sec>]\n"
    )
    assert await sim.client.api("originate onlyone") == usage


async def test_the_session_limit_refuses_new_sessions(sim: Simulation) -> None:
    client = sim.client
    assert await client.api("fsctl max_sessions 2") == "+OK max sessions: 2\n"
    await client.bgapi(f"originate sofia/external/1@{SIP} &park()")
    await inbound_leg(client, "1")
    # Over the limit originate cannot create its leg...
    result = await client.api(f"originate sofia/external/2@{SIP} &park()")
    assert result == "-ERR DESTINATION_OUT_OF_ORDER\n"
    assert await client.api("fsctl max_sessions 3") == "+OK max sessions: 3\n"
    # ...and an INVITE that would exceed it is refused with 503.
    result = await client.api(f"originate sofia/external/3@{SIP} &park()")
    assert result == "-ERR NORMAL_TEMPORARY_FAILURE\n"


async def test_loopback_legs(sim: Simulation) -> None:
    client = sim.client
    job = await client.bgapi("originate {origination_uuid=lb-a}loopback/9999/switchy &park()")
    b_park = await inbound_leg(client, "9999")
    assert b_park.get("Channel-Name") == "loopback/9999-b"
    assert b_park.get("Caller-Source") == "mod_loopback"
    renamed = await client.wait_event("CHANNEL_UUID", "lb-a")
    assert renamed.get("Old-Unique-ID") not in (None, "lb-a")
    assert await client.api(f"uuid_answer {b_park.uuid}") == "+OK\n"
    assert await client.job(job) == "+OK lb-a\n"
    assert await client.api("uuid_kill lb-a") == "+OK\n"
    b_done = await client.wait_event("CHANNEL_HANGUP_COMPLETE", b_park.uuid)
    assert b_done.get("Hangup-Cause") == "NORMAL_CLEARING"
    assert b_done.get("variable_is_loopback") == "1"


async def test_an_extension_instead_of_an_application_transfers_the_answered_leg() -> None:
    async with simulation(answer_delay=0) as sim:
        client = sim.client
        result = await client.api(
            f"originate {{origination_uuid=t1}}sofia/external/1@{SIP} 4242 XML switchy"
        )
        assert result == "+OK t1\n"
        parked = await client.wait_event("CHANNEL_PARK", "t1")
        assert parked.get("Caller-Destination-Number") == "4242"
        assert parked.get("Caller-Context") == "switchy"
        assert parked.get("Caller-Profile-Index") == "2"
        # No context "default" exists: the transferred leg finds no route.
        result = await client.api(f"originate {{origination_uuid=t2}}sofia/external/2@{SIP} 4242")
        assert result == "+OK t2\n"
        hangup = await client.wait_event("CHANNEL_HANGUP", "t2")
        assert hangup.get("Hangup-Cause") == "NO_ROUTE_DESTINATION"


async def test_an_application_that_ends_hangs_the_leg_up() -> None:
    async with simulation(answer_delay=0) as sim:
        client = sim.client
        result = await client.api(
            f"originate {{origination_uuid=s}}sofia/external/1@{SIP} &sleep(10)"
        )
        assert result == "+OK s\n"
        hangup = await client.wait_event("CHANNEL_HANGUP", "s")
        assert hangup.get("Hangup-Cause") == "NORMAL_CLEARING"


async def test_sequential_groups_and_simultaneous_legs() -> None:
    async with simulation(answer_delay=0) as sim:
        client = sim.client
        result = await client.api(
            f"originate {{origination_uuid=g}}error/user_busy|sofia/external/2@{SIP} &park()"
        )
        assert result == "+OK g\n"
    async with simulation() as sim:
        client = sim.client
        job = await client.bgapi(
            f"originate [origination_uuid=p1]sofia/external/p1@{SIP},"
            f"[origination_uuid=p2]sofia/external/p2@{SIP} &park()"
        )
        await inbound_leg(client, "p1")
        p2 = (await inbound_leg(client, "p2")).uuid
        assert await client.api(f"uuid_answer {p2}") == "+OK\n"
        assert await client.job(job) == "+OK p2\n"
        loser = await client.wait_event("CHANNEL_HANGUP", "p1")
        assert loser.get("Hangup-Cause") == "LOSE_RACE"


async def test_a_cause_given_to_uuid_kill_reaches_the_far_end(sim: Simulation) -> None:
    client = sim.client
    job = await client.bgapi(f"originate {{origination_uuid=k}}sofia/external/1@{SIP} &park()")
    b_uuid = (await inbound_leg(client, "1")).uuid
    await client.api(f"uuid_answer {b_uuid}")
    await client.job(job)
    assert await client.api("uuid_kill k USER_BUSY") == "+OK\n"
    b_hangup = await client.wait_event("CHANNEL_HANGUP", b_uuid)
    assert b_hangup.get("Hangup-Cause") == "USER_BUSY"
    assert b_hangup.get("variable_sip_reason") == 'Q.850;cause=17;text="USER_BUSY"'


async def test_killing_an_unanswered_caller_cancels_the_far_end(sim: Simulation) -> None:
    client = sim.client
    job = await client.bgapi(f"originate {{origination_uuid=c}}sofia/external/1@{SIP} &park()")
    b_uuid = (await inbound_leg(client, "1")).uuid
    assert await client.api("uuid_kill c") == "+OK\n"
    assert await client.job(job) == "-ERR NORMAL_CLEARING\n"
    b_hangup = await client.wait_event("CHANNEL_HANGUP", b_uuid)
    assert b_hangup.get("Hangup-Cause") == "ORIGINATOR_CANCEL"


async def test_hupall_matching_a_variable(sim: Simulation) -> None:
    client = sim.client
    await client.bgapi(f"originate {{origination_uuid=h1,group=red}}sofia/external/1@{SIP} &park()")
    await client.bgapi(
        f"originate {{origination_uuid=h2,group=blue}}sofia/external/2@{SIP} &park()"
    )
    await inbound_leg(client, "1")
    await inbound_leg(client, "2")
    assert await client.api("hupall USER_BUSY group red") == (
        "+OK hangup all channels matching [group]=[red] with cause: USER_BUSY\n"
    )
    hangup = await client.wait_event("CHANNEL_HANGUP", "h1")
    assert hangup.get("Hangup-Cause") == "USER_BUSY"
    assert await client.api("uuid_exists h2") == "true"


async def test_sendmsg_executes_and_hangs_up(sim: Simulation) -> None:
    client = sim.client
    job = await client.bgapi(f"originate {{origination_uuid=m}}sofia/external/1@{SIP} &park()")
    b_uuid = (await inbound_leg(client, "1")).uuid
    await client.api(f"uuid_answer {b_uuid}")
    await client.job(job)
    await client.wait_event("CHANNEL_PARK", "m")
    reply = await client.command(
        "sendmsg m\ncall-command: execute\nexecute-app-name: playback\n"
        "execute-app-arg: silence_stream://20\nEvent-UUID: app-1\n\n"
    )
    assert reply.reply_text == "+OK"
    complete = await client.wait_event("CHANNEL_EXECUTE_COMPLETE", "m")
    assert complete.get("Application-UUID") == "app-1"
    assert complete.get("Application-Response") == "FILE PLAYED"
    private = await client.wait_event("PRIVATE_COMMAND", "m")
    assert private.get("execute-app-name") == "playback"
    await client.command("sendmsg m\ncall-command: hangup\nhangup-cause: CALL_REJECTED\n\n")
    hangup = await client.wait_event("CHANNEL_HANGUP", "m")
    assert hangup.get("Hangup-Cause") == "CALL_REJECTED"


async def test_fsctl_shutdown_tears_everything_down_then_says_goodbye(sim: Simulation) -> None:
    client = sim.client
    job = await client.bgapi(f"originate {{origination_uuid=v}}sofia/external/victim@{SIP} &park()")
    b_uuid = (await inbound_leg(client, "victim")).uuid
    assert await client.api("fsctl shutdown") == "+OK\n"
    assert await client.job(job) == "-ERR SYSTEM_SHUTDOWN\n"
    await client.wait_for(lambda: client.closed)
    order = [e.name for e in client.events if e.name in ("SHUTDOWN", "CHANNEL_HANGUP_COMPLETE")]
    assert order == ["SHUTDOWN", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_HANGUP_COMPLETE"]
    b_done = next(
        e for e in client.events if e.uuid == b_uuid and e.name == "CHANNEL_HANGUP_COMPLETE"
    )
    assert b_done.get("Hangup-Cause") == "SYSTEM_SHUTDOWN"
    notice = client.frames[-1]
    assert notice.content_type == "text/disconnect-notice"
    assert notice.body == b"The system is being shut down.\n"


async def test_enterprise_originate_rings_every_thread(sim: Simulation) -> None:
    client = sim.client
    job = await client.bgapi(
        f"originate [origination_uuid=t1]{sofia('e1')}:_:[origination_uuid=t2]{sofia('e2')} &park()"
    )
    await inbound_leg(client, "e1")
    e2 = (await inbound_leg(client, "e2")).uuid
    assert await client.api(f"uuid_answer {e2}") == "+OK\n"
    assert await client.job(job) == "+OK t2\n"
    await client.wait_event("CHANNEL_HANGUP", "t1")


async def test_an_elegant_shutdown_waits_for_calls_to_end(sim: Simulation) -> None:
    client = sim.client
    await client.bgapi(f"originate {{origination_uuid=el}}{sofia('1')} &park()")
    await inbound_leg(client, "1")
    assert await client.api("fsctl shutdown elegant") == "+OK\n"
    assert await client.api(f"originate {sofia('2')} &park()") == "-ERR DESTINATION_OUT_OF_ORDER\n"
    assert not any(e.name == "SHUTDOWN" for e in client.events)
    assert await client.api("uuid_kill el") == "+OK\n"
    shutdown = await client.wait_event("SHUTDOWN")
    assert shutdown.get("Event-Info") == "System Shutting Down"
