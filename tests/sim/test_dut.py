"""The simulated device under test, and calls routed through it with ``fs_path``."""

from __future__ import annotations

import asyncio
import math
import signal
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from switchy.esl.commands import originate
from switchy.sim import wire
from switchy.sim.cluster import Cluster, ClusterNode
from switchy.sim.dut import DUTSettings, SimulatedDUT
from switchy.sim.events import HeaderRun, SimEvent
from switchy.sim.sofia import parse_target
from tests.sim.traces import WAIT, EslClient, TraceEvent


@dataclass
class Lab:
    """Two nodes and a DUT, with a client on each node subscribed to every event."""

    cluster: Cluster
    a: ClusterNode
    b: ClusterNode
    esl_a: EslClient
    esl_b: EslClient

    @property
    def dut(self) -> SimulatedDUT:
        assert self.cluster.dut is not None
        return self.cluster.dut

    def call(
        self,
        user: str,
        node: ClusterNode | None = None,
        *,
        uuid: str | None = None,
        timeout: int | None = None,
    ) -> str:
        """An originate from node A to ``user`` at ``node`` (B by default), through the DUT."""
        far = node or self.b
        return originate(
            f"{user}@{far.sip_address}", proxy=self.dut.address, uuid=uuid, timeout=timeout
        )


@pytest.fixture
async def lab(request: pytest.FixtureRequest) -> AsyncIterator[Lab]:
    settings = getattr(request, "param", DUTSettings())
    async with Cluster(2, dut=settings) as cluster:
        a, b = cluster.nodes
        esl_a = await EslClient.login(a.esl_host, a.esl_port)
        esl_b = await EslClient.login(b.esl_host, b.esl_port)
        for client in (esl_a, esl_b):
            await client.command("event plain ALL\n\n")
        yield Lab(cluster, a, b, esl_a, esl_b)
        await esl_a.close()
        await esl_b.close()


def _port(address: str) -> str:
    return address.rpartition(":")[2]


# -- fs_path ---------------------------------------------------------------------------


def test_fs_path_names_the_next_hop_and_keeps_the_request_uri() -> None:
    target = parse_target("1000@10.0.0.2:5080;fs_path=sip:10.0.0.9:5090%3Blr")
    assert target is not None
    assert (target.user, target.address) == ("1000", "10.0.0.2:5080")
    assert target.route == "10.0.0.9:5090"
    assert target.params == ";fs_path=sip:10.0.0.9:5090%3Blr"
    # Encoded as the command builder does, a user part, the first of several routes.
    routed = parse_target("1@h;fs_path=%3Csip%3Aproxy%4010.0.0.9%3E%2C%3Csip%3A10.0.0.8%3E")
    assert routed is not None
    assert routed.route == "10.0.0.9:5060"
    plain = parse_target("1000@10.0.0.2")
    assert plain is not None
    assert (plain.route, plain.params, plain.address) == (None, "", "10.0.0.2:5060")


async def test_a_call_through_the_dut_carries_both_hops_in_its_variables(lab: Lab) -> None:
    dut_port = _port(lab.dut.address)
    job = await lab.esl_a.bgapi(lab.call("1000", uuid="a-leg"))
    park = await lab.esl_b.wait_event("CHANNEL_PARK")
    # The far leg sees the packet come from the DUT, the Request-URI unchanged.
    assert park.get("variable_sip_network_port") == dut_port
    assert park.get("variable_sip_received_port") == dut_port
    assert park.get("variable_sip_via_port") == dut_port
    assert park.get("variable_sip_via_rport") is None
    assert park.get("variable_sip_req_uri") == f"1000@{lab.b.sip_address}"
    assert park.get("variable_sip_contact_port") == _port(lab.a.sip_address)
    assert park.get("variable_sip_invite_record_route") == f"<sip:{lab.dut.address};lr>"
    assert park.get("variable_max_forwards") == "69"
    via = park.get("variable_sip_full_via") or ""
    assert via.startswith(f"SIP/2.0/UDP {lab.dut.address};branch=z9hG4bK")
    assert f",SIP/2.0/UDP {lab.a.sip_address};rport=" in via
    assert lab.dut.active == 1
    assert await lab.esl_b.api(f"uuid_answer {park.uuid}") == "+OK\n"
    assert await lab.esl_a.job(job) == "+OK a-leg\n"
    answer = await lab.esl_a.wait_event("CHANNEL_ANSWER", "a-leg")
    # The caller's leg: named without the route, answered through the DUT.
    assert answer.get("Channel-Name") == f"sofia/external/1000@{lab.b.sip_address}"
    assert answer.get("variable_sip_destination_url") == (
        f"sip:1000@{lab.b.sip_address};fs_path=sip:{lab.dut.address}"
    )
    assert answer.get("variable_sip_req_uri") == f"1000@{lab.b.sip_address}"
    assert answer.get("variable_sip_network_port") == dut_port
    assert answer.get("variable_sip_reply_port") == dut_port
    assert answer.get("variable_sip_contact_port") == _port(lab.b.sip_address)
    assert answer.get("variable_sip_invite_route_uri") == f"<sip:{lab.dut.address};lr>"
    await lab.esl_a.api("uuid_kill a-leg")
    await lab.esl_b.wait_event("CHANNEL_HANGUP_COMPLETE", park.uuid)


@pytest.mark.parametrize("hangup_side", ["caller", "callee"])
async def test_either_side_ends_the_call_through_the_dut(lab: Lab, hangup_side: str) -> None:
    job = await lab.esl_a.bgapi(lab.call("1000", uuid="a-leg"))
    park = await lab.esl_b.wait_event("CHANNEL_PARK")
    await lab.esl_b.api(f"uuid_answer {park.uuid}")
    assert await lab.esl_a.job(job) == "+OK a-leg\n"
    assert lab.dut.active == 1
    if hangup_side == "caller":
        ender, ender_uuid, other, other_uuid = lab.esl_a, "a-leg", lab.esl_b, park.uuid
    else:
        ender, ender_uuid, other, other_uuid = lab.esl_b, park.uuid, lab.esl_a, "a-leg"
    assert await ender.api(f"uuid_kill {ender_uuid}") == "+OK\n"
    sent = await ender.wait_event("CHANNEL_HANGUP_COMPLETE", ender_uuid)
    received = await other.wait_event("CHANNEL_HANGUP_COMPLETE", other_uuid)
    assert sent.get("variable_sip_hangup_disposition") == "send_bye"
    assert received.get("variable_sip_hangup_disposition") == "recv_bye"
    assert received.get("Hangup-Cause") == "NORMAL_CLEARING"
    assert (lab.dut.active, lab.dut.routed) == (0, 1)


async def test_a_node_calls_itself_through_the_dut(lab: Lab) -> None:
    job = await lab.esl_a.bgapi(lab.call("1000", node=lab.a, uuid="a-leg"))
    park = await lab.esl_a.wait_event("CHANNEL_PARK")
    assert park.get("Call-Direction") == "inbound"
    assert park.get("variable_sip_network_port") == _port(lab.dut.address)
    assert await lab.esl_a.api(f"uuid_answer {park.uuid}") == "+OK\n"
    assert await lab.esl_a.job(job) == "+OK a-leg\n"
    await lab.esl_a.api(f"uuid_kill {park.uuid}")
    hangup = await lab.esl_a.wait_event("CHANNEL_HANGUP_COMPLETE", "a-leg")
    assert hangup.get("variable_sip_hangup_disposition") == "recv_bye"
    assert lab.dut.active == 0
    assert lab.esl_b.channel_events("a-leg") == []


# -- capacity, rejects, delay ----------------------------------------------------------


@pytest.mark.parametrize("lab", [DUTSettings(capacity=2)], indirect=True)
async def test_over_capacity_the_dut_refuses_until_a_call_ends(lab: Lab) -> None:
    jobs = [await lab.esl_a.bgapi(lab.call("1000", uuid=f"call-{n}")) for n in range(2)]
    await lab.esl_b.wait_event("CHANNEL_PARK", count=2)
    assert lab.dut.active == 2
    assert await lab.esl_a.api(lab.call("1000")) == "-ERR NORMAL_TEMPORARY_FAILURE\n"
    refused = next(
        e
        for e in lab.esl_a.events
        if e.name == "CHANNEL_HANGUP_COMPLETE" and e.uuid not in ("call-0", "call-1")
    )
    assert refused.get("variable_sip_term_status") == "503"
    assert refused.get("variable_sip_hangup_disposition") == "recv_refuse"
    assert (lab.dut.refused, lab.dut.routed) == (1, 2)
    # Ending one call (a CANCEL here) frees its slot.
    await lab.esl_a.api("uuid_kill call-0")
    assert (await lab.esl_a.job(jobs[0])).startswith("-ERR ")
    assert lab.dut.active == 1
    await lab.esl_a.bgapi(lab.call("1000", uuid="call-2"))
    await lab.esl_b.wait_event("CHANNEL_PARK", count=3)
    assert lab.dut.active == 2
    # The knobs change while calls run.
    lab.dut.settings.capacity_status = 486
    assert await lab.esl_a.api(lab.call("1000")) == "-ERR USER_BUSY\n"
    lab.dut.settings.capacity = None
    await lab.esl_a.bgapi(lab.call("1000", uuid="call-3"))
    await lab.esl_b.wait_event("CHANNEL_PARK", count=4)
    assert (lab.dut.active, lab.dut.refused) == (3, 2)


REJECT_P = 0.25
REJECT_CALLS = 160


@pytest.mark.parametrize(
    "lab", [DUTSettings(reject=REJECT_P, reject_status=486, seed=7)], indirect=True
)
async def test_rejects_follow_their_probability(lab: Lab) -> None:
    await lab.esl_a.command("noevents\n\n")
    await lab.esl_a.command("event plain BACKGROUND_JOB\n\n")
    await lab.esl_b.command("noevents\n\n")
    lab.cluster.nodes[1].node.answer_delay = 0
    jobs = [await lab.esl_a.bgapi(lab.call("1000")) for _ in range(REJECT_CALLS)]
    results = [await lab.esl_a.job(job) for job in jobs]
    busy = results.count("-ERR USER_BUSY\n")
    assert busy + sum(result.startswith("+OK ") for result in results) == REJECT_CALLS
    assert busy == lab.dut.rejected
    assert lab.dut.routed == REJECT_CALLS - busy
    # Within 4 standard deviations of the binomial mean.
    mean = REJECT_CALLS * REJECT_P
    spread = 4 * math.sqrt(REJECT_CALLS * REJECT_P * (1 - REJECT_P))
    assert mean - spread <= busy <= mean + spread


SETUP_DELAY = 0.3


def _timestamp(event: TraceEvent) -> float:
    return int(event.get("Event-Date-Timestamp") or 0) / 1e6


@pytest.mark.parametrize(
    "lab",
    [DUTSettings(setup_delay=SETUP_DELAY), DUTSettings(setup_delay=lambda: SETUP_DELAY)],
    indirect=True,
)
async def test_the_setup_delay_holds_the_invite(lab: Lab) -> None:
    await lab.esl_a.bgapi(lab.call("1000", uuid="a-leg"))
    created = await lab.esl_a.wait_event("CHANNEL_CREATE", "a-leg")
    far_created = await lab.esl_b.wait_event("CHANNEL_CREATE")
    elapsed = _timestamp(far_created) - _timestamp(created)
    assert SETUP_DELAY <= elapsed < SETUP_DELAY + 0.2


async def test_without_delay_the_invite_goes_on_at_once(lab: Lab) -> None:
    await lab.esl_a.bgapi(lab.call("1000", uuid="a-leg"))
    created = await lab.esl_a.wait_event("CHANNEL_CREATE", "a-leg")
    far_created = await lab.esl_b.wait_event("CHANNEL_CREATE")
    assert _timestamp(far_created) - _timestamp(created) < 0.1


# -- cancels and failures --------------------------------------------------------------


async def test_an_originate_timeout_cancels_through_the_dut(lab: Lab) -> None:
    # Trace 10: NO_ANSWER on the caller, ORIGINATOR_CANCEL on the callee.
    job = await lab.esl_a.bgapi(lab.call("nobodyhome", uuid="a-leg", timeout=1))
    park = await lab.esl_b.wait_event("CHANNEL_PARK")
    assert await lab.esl_a.job(job) == "-ERR NO_ANSWER\n"
    caller = await lab.esl_a.wait_event("CHANNEL_HANGUP_COMPLETE", "a-leg")
    callee = await lab.esl_b.wait_event("CHANNEL_HANGUP_COMPLETE", park.uuid)
    assert caller.get("Hangup-Cause") == "NO_ANSWER"
    assert caller.get("variable_sip_hangup_disposition") == "send_cancel"
    assert callee.get("Hangup-Cause") == "ORIGINATOR_CANCEL"
    assert callee.get("variable_sip_hangup_disposition") == "recv_cancel"
    assert callee.get("variable_sip_term_status") == "487"
    assert lab.dut.active == 0


@pytest.mark.parametrize("lab", [DUTSettings(setup_delay=30)], indirect=True)
async def test_a_cancel_during_the_setup_delay_never_reaches_the_callee(lab: Lab) -> None:
    job = await lab.esl_a.bgapi(lab.call("1000", uuid="a-leg"))
    await lab.esl_a.wait_event("CHANNEL_ORIGINATE", "a-leg")
    assert lab.dut.active == 1
    assert await lab.esl_a.api("uuid_kill a-leg") == "+OK\n"
    assert (await lab.esl_a.job(job)).startswith("-ERR ")
    hangup = await lab.esl_a.wait_event("CHANNEL_HANGUP_COMPLETE", "a-leg")
    assert hangup.get("variable_sip_hangup_disposition") == "send_cancel"
    assert (lab.dut.active, lab.dut.routed) == (0, 0)
    assert not [e for e in lab.esl_b.events if e.name == "CHANNEL_CREATE"]


async def test_nothing_at_the_request_uri_gets_the_unreachable_status(lab: Lab) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as nobody:
        nobody.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{nobody.getsockname()[1]}"
        command = originate(f"1000@{address}", proxy=lab.dut.address)
        assert await lab.esl_a.api(command) == "-ERR NORMAL_TEMPORARY_FAILURE\n"
        lab.dut.settings.unreachable_status = 404
        assert await lab.esl_a.api(command) == "-ERR UNALLOCATED_NUMBER\n"
    assert (lab.dut.unreachable, lab.dut.routed, lab.dut.active) == (2, 0, 0)


async def test_a_route_to_nowhere_fails_like_an_unreachable_host(lab: Lab) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as nobody:
        nobody.bind(("127.0.0.1", 0))
        proxy = f"127.0.0.1:{nobody.getsockname()[1]}"
        command = originate(f"1000@{lab.b.sip_address}", proxy=proxy)
        assert await lab.esl_a.api(command) == "-ERR NORMAL_TEMPORARY_FAILURE\n"
    assert lab.esl_b.events == []


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="probability"):
        DUTSettings(reject=1.5)
    with pytest.raises(ValueError, match="capacity_status"):
        DUTSettings(capacity_status=200)
    with pytest.raises(ValueError, match="capacity"):
        DUTSettings(capacity=-1)


# -- the command line ------------------------------------------------------------------


async def test_the_command_line_runs_a_dut_between_the_nodes() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "switchy.sim",
        "--nodes",
        "2",
        "--dut",
        "--dut-capacity",
        "5",
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        lines = [
            (await asyncio.wait_for(process.stdout.readline(), WAIT)).decode().split()
            for _ in range(3)
        ]
        assert [line[:2] for line in lines] == [["node", "1:"], ["node", "2:"], ["dut:", "SIP"]]
        esl_host, esl_port = lines[0][3].split(":")
        node_b_sip, dut_sip = lines[1][5], lines[2][2]
        client = await EslClient.login(esl_host, int(esl_port))
        assert "UP " in await client.api("status")
        result = await client.api(originate(f"1000@{node_b_sip}", proxy=dut_sip, timeout=1))
        # Node B parks the call unanswered: the CANCEL went back through the DUT.
        assert result == "-ERR NO_ANSWER\n"
        await client.close()
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), WAIT) == 0


async def test_the_command_line_checks_the_dut_options() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "switchy.sim",
        "--dut-reject",
        "0.1:486",
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), WAIT)
    assert process.returncode == 2
    assert b"--dut-* options need --dut" in stderr


# -- under load: what a narrow subscription costs ---------------------------------------

NARROW = "CHANNEL_ANSWER CHANNEL_HANGUP_COMPLETE BACKGROUND_JOB"


def _of_types(events: list[TraceEvent], names: str) -> list[TraceEvent]:
    wanted = names.split()
    return [event for event in events if event.name in wanted]


async def _call_and_end(lab: Lab, uuid: str, narrow: EslClient) -> None:
    parked = len([e for e in lab.esl_b.events if e.name == "CHANNEL_PARK"])
    job = await lab.esl_a.bgapi(lab.call("1000", uuid=uuid))
    park = await lab.esl_b.wait_event("CHANNEL_PARK", count=parked + 1)
    await lab.esl_b.api(f"uuid_answer {park.uuid}")
    await lab.esl_a.job(job)
    await lab.esl_a.api(f"uuid_kill {uuid}")
    await narrow.wait_event("CHANNEL_HANGUP_COMPLETE", uuid)


async def test_a_narrow_subscriber_gets_its_events_numbered_among_all(lab: Lab) -> None:
    narrow = await EslClient.login(lab.a.esl_host, lab.a.esl_port)
    await narrow.command(f"event plain {NARROW}\n\n")
    await _call_and_end(lab, "first", narrow)
    # With an `event plain ALL` listener on the node, every event is built: the narrow
    # subscriber's are exactly those, numbered the same.
    assert [e.headers for e in narrow.events] == [
        e.headers for e in _of_types(lab.esl_a.events, NARROW)
    ]
    await lab.esl_a.command("noevents\n\n")
    await lab.esl_a.command("event plain BACKGROUND_JOB\n\n")
    await _call_and_end(lab, "second", narrow)
    second = narrow.channel_events("second")
    assert [e.name for e in second] == ["CHANNEL_ANSWER", "CHANNEL_HANGUP_COMPLETE"]
    assert second[0].get("variable_sip_network_port") == _port(lab.dut.address)
    # Events nobody takes are not built, but still take their Event-Sequence numbers.
    numbers = [int(e.get("Event-Sequence") or 0) for e in second]
    assert numbers[1] - numbers[0] > 1
    await narrow.close()


def test_moved_headers_serialise_as_a_plain_list() -> None:
    run = HeaderRun((("variable_a", "1 2"), ("variable_b", "x")))
    event = SimEvent("X", [("Event-Name", "X")])
    event.extend_run(run)
    event.add("After", "y")
    flat = SimEvent("X", list(event.headers))
    for serialise in (wire.serialize_plain, wire.serialize_json, wire.serialize_xml):
        assert serialise(event) == serialise(flat)
    event.headers.insert(0, ("Moved", "z"))  # the run is no longer where it was
    flat.headers.insert(0, ("Moved", "z"))
    for serialise in (wire.serialize_plain, wire.serialize_json):
        assert serialise(event) == serialise(flat)
