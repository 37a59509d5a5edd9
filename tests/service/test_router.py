"""The Router: the dialplan examples of the original documentation, and its rules.

The cluster examples run on two simulated nodes and a simulated device under
test (DUT): a caller on node A dials node B, whose calls a :class:`Service`
routes; node A also plays the PBXs that calls are bridged to, answering them.
Bridges to what the simulator cannot reach (gateways, other profiles) are
checked by what was commanded and the cause the call ended with.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest

from switchy import Client, Session, event_callback
from switchy.apps.routers import Router
from switchy.esl import commands
from switchy.esl.protocol import Event
from switchy.models import Job
from switchy.service import Service
from switchy.sim.pytest_plugin import FreeSwitchTarget, SimulatorHandle

from .helpers import TIMEOUT, EventLog, log_events, until

SUNDAY = datetime(2024, 6, 2)
MONDAY = datetime(2024, 6, 3)
# Stand-ins for the examples' sound files, playable everywhere.
WELCOME = "tone_stream://%(100,0,500)"
ROCK = "tone_stream://%(100,0,600)"
SUCK = "tone_stream://%(100,0,700)"
FOO = "tone_stream://%(100,0,800)"
BAR = "tone_stream://%(100,0,900)"


class Desk:
    """A PBX's extensions: answers every call it gets and notes the number dialled."""

    def __init__(self) -> None:
        self.answered: list[str] = []

    @event_callback("CHANNEL_PARK")
    def on_park(self, session: Session) -> None:
        if session.is_inbound():
            self.answered.append(session["Caller-Destination-Number"])
            session.answer()


@dataclass
class Lab:
    """Node A (the caller, and the PBX that bridges reach) and node B (routed)."""

    a: Client
    b: Client  # watches node B
    b_events: EventLog
    desk: Desk
    b_address: str
    a_sip: str
    b_sip: str
    dut: str

    async def dial(self, number: str, **options: Any) -> Job:
        """Call ``number`` at node B; the job, once answered or failed."""
        job = await self.a.originate(f"{number}@{self.b_sip}", timeout=5, **options)
        await asyncio.wait_for(asyncio.gather(job, return_exceptions=True), TIMEOUT)
        return job

    def inbound(self, name: str, number: str) -> list[Event]:
        """Node B's events ``name`` of the inbound leg that dialled ``number``."""
        return self.b_events.of(name, Call_Direction="inbound", Caller_Destination_Number=number)

    def played(self, number: str) -> list[str]:
        return [
            e["Application-Data"]
            for e in self.inbound("CHANNEL_EXECUTE", number)
            if e.get("Application") == "playback"
        ]

    async def hangup_cause(self, number: str) -> str:
        """The cause node B's inbound leg for ``number`` hung up with."""
        await until(self.b, lambda: bool(self.inbound("CHANNEL_HANGUP", number)))
        return self.inbound("CHANNEL_HANGUP", number)[0]["Hangup-Cause"]


@pytest.fixture
async def lab(fs_simulator: Callable[..., SimulatorHandle]) -> AsyncIterator[Lab]:
    simulator = fs_simulator(nodes=2, dut=True)
    a_node, b_node = simulator.targets
    assert simulator.cluster is not None and simulator.cluster.dut_address is not None
    async with Client(a_node.host, a_node.port) as a, Client(b_node.host, b_node.port) as b:
        desk = Desk()
        await a.load_app(desk, app_id="default")
        events = await log_events(b)
        yield Lab(
            a,
            b,
            events,
            desk,
            b_node.address,
            a_node.sip_address,
            b_node.sip_address,
            simulator.cluster.dut_address,
        )
        for client in (a, b):
            await client.api(commands.hupall())
        for client in (a, b):
            await until(client, client.tracker.is_idle)


@asynccontextmanager
async def serving(router: Router, *addresses: str) -> AsyncIterator[Service]:
    service = Service(addresses, reconnect=False)
    service.apps.load_app(router, app_id="default")
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


# -- the examples of "Building a cluster service" -----------------------------------------
async def test_reject_international_numbers(lab: Lab) -> None:
    router = Router(guards={"Call-Direction": "inbound", "variable_sofia_profile_name": "external"})

    @router.route(r"00(.*)|011(.*)", response="407")
    def reject_international(
        sess: Session, match: re.Match[str], router: Router, response: str
    ) -> None:
        sess.respond(response)

    async with serving(router, lab.b_address):
        for number in ("0044207946", "01133142"):
            job = await lab.dial(number)
            assert job.cause == "CALL_REJECTED"  # what a 407 means to the caller
        job = await lab.dial("5551234")  # no route: FreeSWITCH's NO_ROUTE_DESTINATION
        assert await lab.hangup_cause("5551234") == "NO_ROUTE_DESTINATION"
        assert job.cause == "NO_ROUTE_DESTINATION"
    assert lab.desk.answered == []


def dialplan(lab: Lab) -> tuple[Router, Callable[..., Any]]:
    """The bridge-by-prefix example; the support PBX is node A, behind the DUT."""
    router = Router({"Call-Direction": "inbound"})

    @router.route(r"00(.*)|011(.*)", response="407")
    @router.route(r"1(.*)", gateway="long_distance_trunk")
    @router.route(r"2[1-9]{3}$", out_profile="internal", proxy="salespbx.example.com")
    @router.route(r"4[1-9]{3}$", out_profile="external", proxy=lab.dut, pbx=lab.a_sip)
    def bridge2dest(
        sess: Session,
        match: re.Match[str],
        router: Router,
        out_profile: str | None = None,
        gateway: str | None = None,
        proxy: str | None = None,
        response: str | None = None,
        pbx: str | None = None,
    ) -> None:
        if response:
            sess.log.warning(
                "Rejecting international call to %s", sess["Caller-Destination-Number"]
            )
            sess.respond(response)
            return
        # The number goes to the PBX when one is named, else to the SIP Request-URI.
        number = sess["Caller-Destination-Number"]
        sess.bridge(
            profile=out_profile,
            gateway=gateway,
            dest_url=f"{number}@{pbx}" if pbx else sess["variable_sip_req_uri"],
            proxy=proxy,
        )

    return router, bridge2dest


async def test_bridge_by_prefix_to_gateways_profiles_and_proxies(lab: Lab) -> None:
    router, _ = dialplan(lab)
    assert [route.pattern.pattern for route in router.routes] == [
        r"00(.*)|011(.*)",
        r"1(.*)",
        r"2[1-9]{3}$",
        r"4[1-9]{3}$",
    ]
    async with serving(router, lab.b_address):
        assert (await lab.dial("0033145")).cause == "CALL_REJECTED"
        # The long distance provider's gateway: not configured on a simulated node.
        await lab.dial("15551234")
        (bridge,) = lab.b_events.executed("bridge")
        assert bridge["Application-Data"] == commands.dial_string(
            f"15551234@{lab.b_sip}", gateway="long_distance_trunk"
        )
        assert await lab.hangup_cause("15551234") == "INVALID_GATEWAY"
        # The sales PBX, out of the "internal" profile: no such profile here.
        await lab.dial("2345")
        bridge = lab.b_events.executed("bridge")[-1]
        assert bridge["Application-Data"] == commands.dial_string(
            f"2345@{lab.b_sip}", profile="internal", proxy="salespbx.example.com"
        )
        assert await lab.hangup_cause("2345") == "INVALID_PROFILE"
        # The support PBX (node A) through the DUT: the call connects.
        job = await lab.dial("4321")
        assert job.successful()
        assert lab.desk.answered == ["4321"]
        bridge = lab.b_events.executed("bridge")[-1]
        assert bridge["Application-Data"].endswith(f"4321@{lab.a_sip};fs_path=sip:{lab.dut}")


async def test_transfer_to_a_context_is_a_function_call(lab: Lab) -> None:
    router, bridge2dest = dialplan(lab)

    @router.route(r"^(5551234567)$")
    def test_did(sess: Session, match: re.Match[str], router: Router) -> Any:
        # call our route function from above
        return bridge2dest(
            sess, match, router, out_profile="external", proxy=lab.dut, pbx=lab.a_sip
        )

    async with serving(router, lab.b_address):
        assert (await lab.dial("5551234567")).successful()
    assert lab.desk.answered == ["5551234567"]


async def test_logical_and(lab: Lab) -> None:
    router = Router({"Call-Direction": "inbound"})
    today = [SUNDAY]

    @router.route(r"^500$")
    def on_sunday(
        sess: Session,
        match: re.Match[str],
        router: Router,
        profile: str = "external",
        did: str = "500",
    ) -> None:
        """On Sunday no one works in support..."""
        did = "531" if today[0].weekday() == 6 else did
        sess.bridge(f"{did}@{lab.a_sip}", profile=profile)

    async with serving(router, lab.b_address):
        assert (await lab.dial("500")).successful()
        today[0] = MONDAY
        assert (await lab.dial("500")).successful()
    assert lab.desk.answered == ["531", "500"]


async def test_logical_or_by_regex_and_by_if(lab: Lab) -> None:
    router = Router({"Call-Direction": "inbound"})

    @router.route(r"^500$|^502$")
    def either_ext(sess: Session, match: re.Match[str], router: Router) -> None:
        sess.answer()
        sess.playback(WELCOME)

    @router.route(r"^6.*$")
    def match(sess: Session, match: re.Match[str], router: Router) -> None:
        if re.match(r"^Michael\s*S?\s*Collins", sess["Caller-Caller-ID-Name"]) or re.match(
            r"^1001|3757|2816$", sess["Caller-Caller-ID-Number"]
        ):
            sess.playback(ROCK)
        else:
            sess.playback(SUCK)

    async with serving(router, lab.b_address):
        for number in ("500", "502"):
            assert (await lab.dial(number)).successful()
        await lab.dial("600", caller_id_name="Michael S Collins", caller_id_number="1234")
        await lab.dial("601", caller_id_name="Anyone", caller_id_number="3757")
        await lab.dial("602", caller_id_name="Anyone", caller_id_number="4444")
        wanted = {"500": [WELCOME], "502": [WELCOME], "600": [ROCK], "601": [ROCK], "602": [SUCK]}
        await until(lab.b, lambda: {n: lab.played(n) for n in wanted} == wanted)


async def test_nested_conditions(lab: Lab) -> None:
    router = Router({"Call-Direction": "inbound"})

    @router.route(r"^1.*(\d)$")
    def play_wavfile(sess: Session, match: re.Match[str], router: Router) -> None:
        # get the last digit
        last_digit = match.groups()[0]
        # only play the extra file when last digit is '3'
        if last_digit == "3":
            sess.playback(FOO)
        # always played if the first digit is '1'
        sess.playback(BAR)

    async with serving(router, lab.b_address):
        await lab.dial("1003")
        await lab.dial("1004")
        await until(lab.b, lambda: lab.played("1003") == [FOO, BAR])
        await until(lab.b, lambda: lab.played("1004") == [BAR])


async def test_break_on_true(lab: Lab) -> None:
    router = Router({"Call-Direction": "inbound"})
    later: list[str] = []

    @router.route(r"^1.*(\d)$")
    def play_wavfile(sess: Session, match: re.Match[str], router: Router) -> None:
        sess.playback(FOO)
        if not sess["Caller-Destination-Number"] == "1100":
            raise router.StopRouting  # stop all further routing

    @router.route(r"^1")
    def after(sess: Session, match: re.Match[str], router: Router) -> None:
        later.append(sess["Caller-Destination-Number"])

    async with serving(router, lab.b_address):
        await lab.dial("1100")
        await lab.dial("1234")
        await until(lab.b, lambda: lab.played("1100") == [FOO] and lab.played("1234") == [FOO])
    assert later == ["1100"]


async def test_one_dialplan_for_every_node_of_a_cluster(
    fs_simulator: Callable[..., SimulatorHandle],
) -> None:
    simulator = fs_simulator(nodes=2)
    router = Router({"Call-Direction": "inbound"})
    routed: list[str] = []

    @router.route(r"^(\d+)$")
    async def busy(sess: Session, match: re.Match[str], router: Router) -> None:
        routed.append(sess.host)
        await sess.respond(486)

    targets = simulator.targets
    async with (
        serving(router, *(t.address for t in targets)) as service,
        Client(targets[0].host, targets[0].port) as caller,
    ):
        assert [node.state for node in service.nodes] == ["up", "up"]
        for target in targets:
            job = await caller.originate(f"1234@{target.sip_address}", timeout=5)
            await asyncio.wait_for(asyncio.gather(job, return_exceptions=True), TIMEOUT)
            assert job.cause == "USER_BUSY"
        await until(caller, caller.tracker.is_idle)
    assert len(routed) == 2


# -- the Router's own rules, on one node (simulated or real) ---------------------------------
@pytest.fixture
async def client(fs: FreeSwitchTarget) -> AsyncIterator[Client]:
    async with Client(fs.host, fs.port, fs.password) as client:
        yield client
        await client.api(commands.hupall())
        await until(client, client.tracker.is_idle)


async def dial(client: Client, fs: FreeSwitchTarget, number: str) -> Job:
    job = await client.originate(f"{number}@{fs.sip_address}", timeout=5)
    await asyncio.wait_for(asyncio.gather(job, return_exceptions=True), TIMEOUT)
    return job


def test_stacked_routes_read_top_down_and_patterns_match_from_the_start() -> None:
    router = Router()

    @router.route("a", letter="a")
    @router.route("b", letter="b")
    def first(sess: Session, match: re.Match[str], router: Router, letter: str) -> None: ...

    @router.route("c")
    @router.route("d")
    def second(sess: Session, match: re.Match[str], router: Router) -> None: ...

    router.route("e")(first)
    assert [r.pattern.pattern for r in router.routes] == ["a", "b", "c", "d", "e"]
    assert router.routes[0].kwargs == {"letter": "a"}
    assert router.routes[0].field == "Caller-Destination-Number"
    with pytest.raises(re.error):
        router.route("(unclosed")


async def test_guards_refuse_or_leave_calls_alone(client: Client, fs: FreeSwitchTarget) -> None:
    ran: list[str] = []
    strict = Router({"variable_sofia_profile_name": "no-such-profile"}, reject_on_guard=403)

    @strict.route(r".*")
    def never(sess: Session, match: re.Match[str], router: Router) -> None:
        ran.append("strict")

    await client.load_app(strict, app_id="default")
    assert (await dial(client, fs, "1000")).cause == "CALL_REJECTED"
    await client.unload_app("default")

    lenient = Router({"Call-Direction": "outbound"})  # inbound calls fail it

    @lenient.route(r".*")
    def also_never(sess: Session, match: re.Match[str], router: Router) -> None:
        ran.append("lenient")

    await client.load_app(lenient, app_id="default")
    job = await client.originate(f"1000@{fs.sip_address}", timeout=5)
    await until(
        client,
        lambda: any(
            s.is_inbound() and "CHANNEL_PARK" in s.times for s in client.tracker.sessions.values()
        ),
    )
    assert not job.done()  # left parked, to whoever else handles it
    assert ran == []


async def test_a_failing_route_hands_over_to_the_next(
    client: Client, fs: FreeSwitchTarget, caplog: pytest.LogCaptureFixture
) -> None:
    router = Router()

    @router.route(r"^1")
    def broken(sess: Session, match: re.Match[str], router: Router) -> None:
        raise RuntimeError("a bug in the dialplan")

    @router.route(r"^1")
    async def busy(sess: Session, match: re.Match[str], router: Router) -> None:
        await sess.respond(486)

    await client.load_app(router, app_id="default")
    assert (await dial(client, fs, "1000")).cause == "USER_BUSY"
    assert "a bug in the dialplan" in caplog.text
    assert "route" in caplog.text and "broken" in caplog.text


async def test_when_every_route_fails_the_default_applies(
    client: Client, fs: FreeSwitchTarget
) -> None:
    router = Router(default=480)

    @router.route(r".*")
    async def broken(sess: Session, match: re.Match[str], router: Router) -> None:
        raise RuntimeError("no luck")

    await client.load_app(router, app_id="default")
    assert (await dial(client, fs, "1000")).cause == "NO_USER_RESPONSE"  # 480


async def test_default_none_leaves_unrouted_calls_parked(
    client: Client, fs: FreeSwitchTarget
) -> None:
    router = Router(default=None)
    await client.load_app(router, app_id="default")
    job = await client.originate(f"1000@{fs.sip_address}", timeout=5)
    await until(
        client,
        lambda: any(
            s.is_inbound() and "CHANNEL_PARK" in s.times for s in client.tracker.sessions.values()
        ),
    )
    assert not job.done()


async def test_a_transferred_call_is_routed_again(client: Client, fs: FreeSwitchTarget) -> None:
    router = Router()
    numbers: list[str] = []

    @router.route(r"^1000$")
    def transfer(sess: Session, match: re.Match[str], router: Router) -> None:
        numbers.append(match.group())
        sess.execute("transfer", "2000")

    @router.route(r"^2000$")
    def busy(sess: Session, match: re.Match[str], router: Router) -> None:
        numbers.append(match.group())
        sess.respond(486)

    await client.load_app(router, app_id="default")
    assert (await dial(client, fs, "1000")).cause == "USER_BUSY"
    assert numbers == ["1000", "2000"]


async def test_another_router_as_a_context(client: Client, fs: FreeSwitchTarget) -> None:
    context = Router()

    @context.route(r"^2")
    def refuse(sess: Session, match: re.Match[str], router: Router) -> None:
        sess.respond(404)

    router = Router()

    @router.route(r"^\d+$")
    async def to_context(sess: Session, match: re.Match[str], router: Router) -> None:
        assert await context.dispatch(sess)

    await client.load_app(router, app_id="default")
    assert (await dial(client, fs, "2000")).cause == "UNALLOCATED_NUMBER"
