"""The ``originate`` API: create legs, wait for one to answer, start its application.

A model of ``switch_ivr_originate`` for the endpoints the simulator has
(``sofia``, ``loopback``, ``error``). Groups separated by ``|`` are tried one
after the other, each with the full timeout; the legs of a group (``,``) ring
together and the first to answer (or to send early media, unless
``ignore_early_media`` is set) wins. The result is the API output:
``+OK <uuid>\\n`` or ``-ERR <CAUSE>\\n``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from switchy import ids
from switchy.sim.apps import application, transfer_channel
from switchy.sim.calling import At
from switchy.sim.causes import str2cause
from switchy.sim.channel import Channel, next_change
from switchy.sim.dialstring import (
    DialGroup,
    DialLeg,
    DialThread,
    OriginateError,
    parse_dial_string,
    parse_originate,
)
from switchy.sim.loopback import LoopbackChannel
from switchy.sim.sofia import DEFAULT_CALLER_NUMBER, SofiaChannel, parse_target

if TYPE_CHECKING:
    from switchy.sim.switch import Node

_DEFAULT_TIMEOUT = 60
#: Seconds of one media frame (20 ms packetization).
MEDIA_FRAME = 0.02


@dataclass
class _Outcome:
    """How one thread of an originate ended: the winning leg, or the cause."""

    winner: Channel | None
    cause: str


@dataclass
class _Dial:
    """What every leg of one originate shares: the node, caller id, timeout, a-leg."""

    node: Node
    caller_name: str | None
    caller_number: str | None
    timeout: int
    caller: Channel | None = None


async def originate(node: Node, args: str) -> str:
    """Run ``originate <args>``; the API output."""
    try:
        request = parse_originate(args)
    except OriginateError as error:
        return error.output
    threads = [t for t in request.threads if not t.failure_cause]
    if not threads:
        return f"-ERR {request.threads[0].failure_cause}\n"
    dial = _Dial(node, request.caller_id_name, request.caller_id_number, request.timeout)
    if len(threads) == 1:
        outcome = await _run_thread(dial, threads[0])
    else:
        outcome = await _run_enterprise(dial, threads)
    winner = outcome.winner
    if winner is None:
        return f"-ERR {outcome.cause}\n"
    _flip_caller_id(winner)
    if request.application is not None:
        winner.extension = [(request.application, request.application_args or "")]
        winner.redirect("execute")
    elif request.extension is not None:
        transfer_channel(winner, request.extension, request.dialplan, request.context)
    return f"+OK {winner.uuid}\n"


async def _run_enterprise(dial: _Dial, threads: list[DialThread]) -> _Outcome:
    """``:_:`` threads run in parallel; the first to succeed wins, the others are cancelled."""
    tasks = [asyncio.ensure_future(_run_thread(dial, t)) for t in threads]
    failure = _Outcome(None, "NO_ANSWER")
    try:
        for next_done in asyncio.as_completed(tasks):
            outcome = await next_done
            if outcome.winner is not None:
                return outcome
            failure = outcome
        return failure
    finally:
        for task in tasks:
            task.cancel()


async def _run_thread(dial: _Dial, thread: DialThread) -> _Outcome:
    variables = thread.variables
    timelimit = _atoi(variables.get("originate_timeout", ""), dial.timeout)
    # A bridge (an originate with an a-leg) waits for the answer; early media goes to the a-leg.
    early_ok = dial.caller is None and not _true(variables.get("ignore_early_media"))
    cause = "NO_ANSWER"
    for group in thread.groups:
        legs: list[Channel] = []
        for dial_leg in group.legs:
            created = _create_leg(dial, dial_leg, early_ok)
            if isinstance(created, str):
                cause = created
            else:
                legs.append(created)
        if not legs:
            cause = group.failure_cause or cause
            continue
        outcome = await _ring(group, legs, timelimit, early_ok, dial.caller)
        if outcome.winner is not None:
            return outcome
        cause = outcome.cause
        if dial.caller is not None and not dial.caller.is_up:
            break
    return _Outcome(None, cause)


def _create_leg(dial: _Dial, leg: DialLeg, early_ok: bool) -> Channel | str:
    """Start one leg; a cause string when the endpoint refuses at once."""
    node = dial.node
    technology = leg.technology.lower()
    target = leg.target
    variables = leg.variables
    if technology == "error":
        # mod_dptools' error endpoint: the cause it is named after, USER_BUSY when unknown.
        return str2cause(target, default="USER_BUSY")
    if technology not in ("sofia", "loopback"):
        return "CHAN_NOT_IMPLEMENTED"
    uuid = variables.get("origination_uuid") or ids.new_uuid()
    if not node.accepts_outbound() or node.has_channel(uuid):
        # switch_core_session_request_uuid returned NULL (session limit, sps, duplicate uuid).
        return "DESTINATION_OUT_OF_ORDER"
    caller = dial.caller
    a_profile = caller.profile if caller is not None else None
    caller_name = (
        variables.get("origination_caller_id_name")
        or dial.caller_name
        or (a_profile.caller_id_name if a_profile else "")
    )
    caller_number = (
        variables.get("origination_caller_id_number")
        or dial.caller_number
        or (a_profile.caller_id_number if a_profile else "")
        or DEFAULT_CALLER_NUMBER
    )
    dial_vars = list(variables.items())
    channel: Channel
    if technology == "loopback":
        if not target:
            return "DESTINATION_OUT_OF_ORDER"
        channel = LoopbackChannel.pair(
            node,
            target,
            uuid=variables.get("origination_uuid"),
            dial_vars=dial_vars,
            caller_name=caller_name,
            caller_number=caller_number,
            early_ok=early_ok,
        )
    else:
        profile_name, slash, dest = target.partition("/")
        if not slash or not dest:
            return "INVALID_URL"
        if profile_name.lower() == "gateway":
            # No gateways are configured on a simulated node.
            return "INVALID_GATEWAY"
        profile = node.sip_profiles.get(profile_name)
        if profile is None:
            return "INVALID_PROFILE"
        sip_target = parse_target(dest)
        if sip_target is None:
            # Without @host sofia looks for a registration; nothing registers here.
            return "USER_NOT_REGISTERED"
        channel = SofiaChannel.outbound(
            node,
            profile,
            sip_target,
            uuid=uuid,
            dial_vars=dial_vars,
            caller_name=caller_name,
            caller_number=caller_number,
            early_ok=early_ok,
            originator=caller,
        )
    node.add_channel(channel)
    channel.start()
    return channel


async def _ring(
    group: DialGroup,
    legs: list[Channel],
    timelimit: int,
    early_ok: bool,
    caller: Channel | None = None,
) -> _Outcome:
    """Wait for a leg of ``group`` to succeed; hang the others up.

    With an a-leg (``caller``), ringing and early media of the legs reach it,
    and its hangup cancels them.
    """
    loop = legs[0].node.loop
    start = loop.time()
    deadlines = {
        leg: start + min(timelimit, _atoi(leg.variables.get("leg_timeout", ""), timelimit))
        for leg in legs
    }
    cause = "NO_ANSWER"

    def succeeded(leg: Channel) -> bool:
        return leg.is_up and (leg.answered or (early_ok and leg.early_media))

    while True:
        winner = next((leg for leg in legs if succeeded(leg)), None)
        if winner is not None:
            for leg in legs:
                if leg is not winner:
                    leg.hangup("LOSE_RACE")
            return _Outcome(winner, "SUCCESS")
        if caller is not None:
            if not caller.is_up:
                for leg in legs:
                    leg.hangup("ORIGINATOR_CANCEL")
                return _Outcome(None, "ORIGINATOR_CANCEL")
            if any(leg.is_up and leg.early_media for leg in legs):
                caller.pre_answer()
            elif any(leg.is_up and leg.ring_ready for leg in legs):
                caller.ring()
        now = loop.time()
        for leg in legs:
            if leg.is_up and now >= deadlines[leg]:
                leg.hangup("NO_ANSWER")
        alive = [leg for leg in legs if leg.is_up]
        if not alive:
            failed = [leg for leg in legs if leg.hangup_cause]
            if failed:
                cause = failed[-1].hangup_cause or cause
            return _Outcome(None, group.failure_cause or cause)
        remaining = min(deadlines[leg] for leg in alive) - loop.time()
        watched = [*alive, *([caller] if caller is not None else [])]
        try:
            await next_change(loop, watched, max(remaining, 0))
        except asyncio.CancelledError:
            for leg in alive:
                leg.hangup("ORIGINATOR_CANCEL")
            raise


def _flip_caller_id(winner: Channel) -> None:
    """``switch_channel_flip_cid``: the answering party becomes the caller id (CALL_UPDATE)."""
    profile = winner.profile
    if winner.answered:
        winner.set_var("endpoint_disposition", "ANSWER")
    if profile is not None:
        winner.set_var("pre_transfer_caller_id_number", profile.caller_id_number)
        profile.caller_id_name, profile.callee_id_name = (
            profile.callee_id_name,
            profile.caller_id_name,
        )
        profile.caller_id_number, profile.callee_id_number = (
            profile.callee_id_number,
            profile.caller_id_number,
        )
    winner.set_var("channel_cid_flipped", "yes")
    winner.hit_dialplan = True
    winner.fire("CALL_UPDATE", At.CALL_UPDATE, before=[("Direction", "RECV")])


@application("bridge")
async def bridge_application(channel: Channel, arg: str) -> None:
    """mod_dptools ``bridge``: originate from this channel, then bridge to the answering leg.

    The caller is answered when the far leg answers; when the far leg hangs
    up the application returns (``hangup_after_bridge`` hangs this channel up
    too). A failure hangs the caller up with the cause unless
    ``continue_on_fail`` is true.
    """
    try:
        threads = parse_dial_string(arg)
    except OriginateError:
        threads = ()
    thread = next((t for t in threads if not t.failure_cause), None)
    dial = _Dial(channel.node, None, None, _DEFAULT_TIMEOUT, caller=channel)
    outcome = (
        await _run_thread(dial, thread)
        if thread is not None
        else _Outcome(None, "DESTINATION_OUT_OF_ORDER")
    )
    peer = outcome.winner
    if peer is None:
        channel.set_vars([("originate_disposition", outcome.cause), ("DIALSTATUS", outcome.cause)])
        if channel.is_up and not _true(channel.variables.get("continue_on_fail")):
            channel.hangup(outcome.cause)
        return
    if channel.profile is not None and peer.profile is not None:
        # The caller's answer presents whom the bridge reached.
        channel.profile.callee_id_name = peer.profile.callee_id_name
        channel.profile.callee_id_number = peer.profile.callee_id_number
    channel.answer()
    channel.set_vars(
        [
            ("originate_disposition", "SUCCESS"),
            ("DIALSTATUS", "SUCCESS"),
            (
                "originated_legs",
                f"{peer.uuid};Outbound Call;{peer.profile_destination}",
            ),
            ("signal_bond", peer.uuid),
            ("last_bridge_to", peer.uuid),
            ("bridge_channel", peer.name),
            ("bridge_uuid", peer.uuid),
        ]
    )
    channel.bridged_to, peer.bridged_to = peer, channel
    if peer.profile is not None:
        channel.set_other_leg("originatee", peer.profile, with_times=True)
    if channel.profile is not None:
        channel.profile.times.bridged = channel.now_us()
    legs = [("Bridge-A-Unique-ID", channel.uuid), ("Bridge-B-Unique-ID", peer.uuid)]
    peer.redirect("exchange")
    channel.fire("CHANNEL_BRIDGE", At.BRIDGE, before=legs)
    # The bridge loop updates both displays after its first 20 ms media frame (trace 08).
    if await channel.wait(MEDIA_FRAME) and peer.is_up:
        for leg, other in ((peer, channel), (channel, peer)):
            leg.update_display(other)
    await channel.until(lambda: not channel.is_up or not peer.is_up, None)
    if peer.is_up:
        peer.hangup(channel.hangup_cause or "NORMAL_CLEARING")
    channel.fire("CHANNEL_UNBRIDGE", At.UNBRIDGE, before=legs)
    channel.bridged_to = None
    if peer.hangup_cause:
        channel.set_var("bridge_hangup_cause", peer.hangup_cause)
        channel.set_var("last_bridge_hangup_cause", peer.hangup_cause)
    if channel.is_up and _true(channel.variables.get("hangup_after_bridge")):
        channel.hangup("NORMAL_CLEARING")


def _atoi(text: str, default: int) -> int:
    """``atoi`` of a timeout variable; 0, negative or garbage means ``default``."""
    digits = text.strip()
    length = 0
    while length < len(digits) and digits[length].isdigit():
        length += 1
    value = int(digits[:length]) if length else 0
    return value if value > 0 else (default or _DEFAULT_TIMEOUT)


def _true(value: str | None) -> bool:
    return value is not None and value.strip().lower() in (
        "yes",
        "on",
        "true",
        "t",
        "enabled",
        "active",
        "allow",
        "1",
    )
