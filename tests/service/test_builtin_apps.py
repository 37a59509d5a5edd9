"""The built-in call apps, on the simulator or a real FreeSWITCH (--fshost)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import switchy.apps
from switchy import Client, event_callback
from switchy.apps.bert import Bert
from switchy.apps.blockers import CalleeBlockOnInvite, CalleeRingback
from switchy.apps.dtmf import DtmfChecker
from switchy.apps.players import PlayRec, Recording
from switchy.apps.routers import Bridger, Proxier
from switchy.errors import APIError
from switchy.measure.cdr import ANSWERED, BLOCKED, FAILED
from switchy.measure.store import load
from switchy.models import Session
from switchy.sim.bert import error_rate, errored_windows
from switchy.sim.pytest_plugin import FreeSwitchTarget, SimulatorHandle

from .helpers import TIMEOUT, log_events, until


async def call(client: Client, dest: str, app_id: str, **options: Any) -> Session:
    """Originate ``dest`` under ``app_id``; the caller's session once the call is up."""
    job = await client.originate(dest, app_id=app_id, timeout=5, **options)
    uuid = await asyncio.wait_for(job, TIMEOUT)
    return client.tracker.sessions[uuid]


def callee_of(caller: Session) -> Session:
    peer = caller.call.get_peer(caller) if caller.call else None
    assert peer is not None and peer.is_inbound()
    return peer


def test_every_builtin_app_is_registered_and_documented() -> None:
    names = dict(switchy.apps.iterapps())
    expected = {
        "Bert": Bert,
        "Bridger": Bridger,
        "CalleeBlockOnInvite": CalleeBlockOnInvite,
        "CalleeRingback": CalleeRingback,
        "DtmfChecker": DtmfChecker,
        "PlayRec": PlayRec,
        "Proxier": Proxier,
    }
    for name, app in expected.items():
        assert names[name] is app
        assert app.__doc__ and len(app.__doc__.strip()) > 40


@pytest.mark.parametrize(("response", "cause"), [(404, "UNALLOCATED_NUMBER"), (486, "USER_BUSY")])
async def test_callee_block_on_invite_refuses_with_the_response(
    client: Client, fs: FreeSwitchTarget, response: int, cause: str
) -> None:
    await client.load_app(CalleeBlockOnInvite, response=response)
    job = await client.originate(f"blocked@{fs.sip_address}", app_id="CalleeBlockOnInvite")
    with pytest.raises(APIError):
        await asyncio.wait_for(job, TIMEOUT)
    assert job.cause == cause
    await until(client, client.tracker.is_idle)
    assert client.tracker.answered_total == 0


@pytest.mark.simulator_only
def test_blockers_mix_into_a_load_test(tmp_path: Path) -> None:
    # What `switchy run` does with them, on every node of a simulated generator.
    results = tmp_path / "run"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "switchy", "run"),
            *("--rate", "50", "--limit", "40", "--max-offered", "40", "--duration", "0.2"),
            *("--app", "CalleeBlockOnInvite:1,response=404", "--app", "TonePlay:3"),
            *("--results", str(results)),
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr + done.stdout  # 1: some calls failed
    cdr = load(results)
    attempted = cdr[cdr["outcome"] != BLOCKED]
    outcomes = Counter(zip(attempted["app"], attempted["outcome"], strict=True))
    blocked = outcomes[("CalleeBlockOnInvite", FAILED)]
    assert blocked > 0
    assert outcomes[("TonePlay", ANSWERED)] == 3 * blocked
    refused = attempted[attempted["app"] == "CalleeBlockOnInvite"]
    assert set(refused["failure_cause"]) == {"UNALLOCATED_NUMBER"}


def test_callee_block_on_invite_wants_a_refusal() -> None:
    with pytest.raises(ValueError, match="SIP refusal"):
        CalleeBlockOnInvite(response=200)


async def test_callee_ringback_rings_then_answers(client: Client, fs: FreeSwitchTarget) -> None:
    events = await log_events(client)
    await client.load_app(CalleeRingback, answer_after=0.5)
    caller = await call(client, f"ringback@{fs.sip_address}", "CalleeRingback")
    callee = callee_of(caller)
    ringing = events.of("CHANNEL_PROGRESS", Unique_ID=caller.uuid)
    assert ringing, "the caller heard no ringing"
    answered = await caller.recv("CHANNEL_ANSWER", TIMEOUT, past=True)
    rang_for = (
        int(answered["Event-Date-Timestamp"]) - int(ringing[0]["Event-Date-Timestamp"])
    ) / 1e6
    assert rang_for >= 0.4
    assert callee.answered
    assert events.executed("ring_ready")


async def test_callee_ringback_caller_gives_up(client: Client, fs: FreeSwitchTarget) -> None:
    await client.load_app(CalleeRingback, caller_hangup_after=0.3)
    job = await client.originate(f"ringback@{fs.sip_address}", app_id="CalleeRingback")
    with pytest.raises(APIError):
        await asyncio.wait_for(job, TIMEOUT)
    await until(client, client.tracker.is_idle)
    assert client.tracker.hangup_causes["ORIGINATOR_CANCEL"] >= 1
    assert client.tracker.answered_total == 0


async def test_dtmf_checker_sees_the_sequence_arrive(client: Client, fs: FreeSwitchTarget) -> None:
    await client.load_app(DtmfChecker, sequence="19*#", duration=100)
    checker = client.apps.DtmfChecker
    assert isinstance(checker, DtmfChecker)
    caller = await call(client, f"dtmf@{fs.sip_address}", "DtmfChecker")
    callee = callee_of(caller)
    await callee.wait_var("dtmf_checked", TIMEOUT)
    assert callee.vars["dtmf_ok"] is True
    assert callee.vars["dtmf_received"] == "19*#"
    assert checker.failed == {}
    assert checker.passed == 1


async def test_dtmf_checker_records_an_incomplete_sequence(
    client: Client, fs: FreeSwitchTarget
) -> None:
    await client.load_app(DtmfChecker, sequence="123456789", duration=400)
    checker = client.apps.DtmfChecker
    assert isinstance(checker, DtmfChecker)
    caller = await call(client, f"dtmf@{fs.sip_address}", "DtmfChecker")
    callee = callee_of(caller)
    await callee.recv("DTMF", TIMEOUT)
    await caller.hangup()
    await callee.wait_var("dtmf_checked", TIMEOUT)
    assert callee.vars["dtmf_ok"] is False
    failure = checker.failed[callee.uuid]
    assert failure.reason == "incomplete"
    assert failure.expected == "123456789"
    assert "123456789".startswith(failure.received)
    assert len(failure.received) < 9


async def test_dtmf_checker_records_a_mismatch(
    fs_simulator: Callable[..., SimulatorHandle],
) -> None:
    # The receiving node expects other digits than the sending node sends.
    sender_target, receiver_target = fs_simulator(nodes=2).targets
    async with (
        Client(sender_target.host, sender_target.port) as sender,
        Client(receiver_target.host, receiver_target.port) as receiver,
    ):
        await sender.load_app(DtmfChecker, sequence="123")
        await receiver.load_app(DtmfChecker, sequence="124")
        checker = receiver.apps.DtmfChecker
        assert isinstance(checker, DtmfChecker)
        await call(sender, f"dtmf@{receiver_target.sip_address}", "DtmfChecker")
        await until(receiver, lambda: bool(checker.failed), TIMEOUT)
        (failure,) = checker.failed.values()
        assert (failure.reason, failure.received, failure.expected) == ("mismatch", "123", "124")
        await sender.hupall()
        await until(receiver, receiver.tracker.is_idle)


async def test_dtmf_checker_records_extra_digits(client: Client, fs: FreeSwitchTarget) -> None:
    await client.load_app(DtmfChecker, sequence="12", duration=100)
    checker = client.apps.DtmfChecker
    assert isinstance(checker, DtmfChecker)
    caller = await call(client, f"dtmf@{fs.sip_address}", "DtmfChecker")
    callee = callee_of(caller)
    assert await callee.wait_var("dtmf_ok", TIMEOUT)
    assert checker.passed == 1
    await caller.send_dtmf("3", 100)
    await until(client, lambda: callee.uuid in checker.failed)
    assert checker.failed[callee.uuid].reason == "extra"
    assert checker.failed[callee.uuid].received == "123"
    assert checker.passed == 0


async def test_bridger_takes_a_call_through_every_hop(client: Client, fs: FreeSwitchTarget) -> None:
    events = await log_events(client)
    await client.load_app(Bridger, hops=2)
    caller = await call(client, f"hops@{fs.sip_address}", "Bridger")
    tracker = client.tracker
    assert caller.call is not None
    call_id = caller.call.uuid
    # Three inbound legs (two bridged onward, the last answered), all in the caller's call.
    await until(client, lambda: len(tracker.calls.get(call_id, ())) == 6)
    legs = tracker.calls[call_id].sessions
    inbound = [leg for leg in legs if leg.is_inbound()]
    assert sorted(leg.vars["hop"] for leg in inbound) == [1, 2, 3]
    assert caller.call.vars["hops"] == 3
    bridges = events.executed("bridge")
    assert len(bridges) == 2
    for bridge in bridges:
        data = bridge["Application-Data"]
        assert data.endswith(f"sofia/external/hops@{fs.sip_address}")
        assert f"sip_h_X-originating_session_uuid={call_id}" in data
        assert "sip_h_X-switchy_app=Bridger" in data
    await caller.hangup()
    await until(client, tracker.is_idle)


def test_bridger_hops_are_checked() -> None:
    assert Bridger(hops="proxy").hops == ["proxy"]
    assert Bridger(hops=[{"dest_url": "a@b"}, "c@d"]).hops == [{"dest_url": "a@b"}, "c@d"]
    with pytest.raises(ValueError, match="hops"):
        Bridger(hops=-1)


@pytest.mark.simulator_only
async def test_proxier_bridges_to_the_request_uri(
    fs_simulator: Callable[..., SimulatorHandle],
) -> None:
    # A node proxying calls to itself loops; its session limit ends the loop.
    (target,) = fs_simulator(max_sessions=6).targets
    async with Client(target.host, target.port) as client:
        events = await log_events(client)
        await client.load_app(Proxier)
        job = await client.originate(f"proxied@{target.sip_address}", app_id="Proxier")
        with pytest.raises(APIError):
            await asyncio.wait_for(job, TIMEOUT)
        await until(client, client.tracker.is_idle)
        bridges = events.executed("bridge")
        assert len(bridges) == 3  # six sessions: the third bridge found no room
        for bridge in bridges:
            assert bridge["Application-Data"].endswith(
                f"sofia/external/proxied@{target.sip_address}"
            )
        assert client.tracker.answered_total == 0


class AnswerInbound:
    @event_callback("CHANNEL_PARK")
    def on_park(self, session: Session) -> None:
        if session.is_inbound():
            session.answer()


@pytest.mark.simulator_only
async def test_proxier_bridges_through_to_another_node(
    fs_simulator: Callable[..., SimulatorHandle],
) -> None:
    # far calls itself with proxy as the route (fs_path): proxy's inbound leg
    # keeps far's Request-URI, and Proxier bridges it there.
    proxy, far = fs_simulator(nodes=2).targets
    async with Client(proxy.host, proxy.port) as at_proxy, Client(far.host, far.port) as at_far:
        events = await log_events(at_proxy)
        await at_proxy.load_app(Proxier, app_id="AnswerInbound")
        await at_far.load_app(AnswerInbound)
        job = await at_far.originate(
            f"proxied@{far.sip_address}", app_id="AnswerInbound", proxy=proxy.sip_address
        )
        caller = at_far.tracker.sessions[await asyncio.wait_for(job, TIMEOUT)]
        await until(at_far, lambda: at_far.tracker.answered_total == 2)
        (bridge,) = events.executed("bridge")
        assert bridge["Application-Data"].endswith(f"sofia/external/proxied@{far.sip_address}")
        assert at_proxy.tracker.count_sessions() == 2  # in from far, out to far
        assert caller.call is not None and len(caller.call) == 2  # its far end is on far
        await caller.hangup()
        await until(at_far, at_far.tracker.is_idle)
        await until(at_proxy, at_proxy.tracker.is_idle)


async def test_playrec_records_both_ends(
    client: Client, fs: FreeSwitchTarget, tmp_path: Path
) -> None:
    recordings: list[Recording] = []
    events = await log_events(client)
    await client.load_app(
        PlayRec,
        clip="tone_stream://%(300,0,440)",
        iterations=2,
        tail=0,
        recordings_dir=str(tmp_path) if fs.simulated else None,
        callback=recordings.append,
    )
    caller = await call(client, f"playrec@{fs.sip_address}", "PlayRec")
    callee = callee_of(caller)
    assert await caller.wait_var("recorded", TIMEOUT)
    assert await callee.wait_var("recorded", TIMEOUT)
    await until(client, client.tracker.is_idle)
    assert caller.call is not None and caller.call.vars["record"]
    assert len(events.of("PLAYBACK_START", Unique_ID=caller.uuid)) == 2
    assert sorted(r.leg for r in recordings) == ["callee", "caller"]
    for recording in recordings:
        assert recording.call == caller.call.uuid
        assert recording.path.endswith(
            f"_{(caller if recording.leg == 'caller' else callee).uuid}.wav"
        )
        if fs.simulated:
            size = await asyncio.to_thread(os.path.getsize, recording.path)
            assert size > 44  # a wav file with audio


async def test_playrec_without_recording_plays_then_hangs_up(
    client: Client, fs: FreeSwitchTarget
) -> None:
    recordings: list[Recording] = []
    await client.load_app(
        PlayRec, clip="tone_stream://%(200,0,440)", rec_rate=0, callback=recordings.append
    )
    caller = await call(client, f"playrec@{fs.sip_address}", "PlayRec")
    await caller.recv("CHANNEL_HANGUP", TIMEOUT)
    await until(client, client.tracker.is_idle)
    assert recordings == []
    assert "recorded" not in caller.vars


def test_playrec_samples_calls_by_their_id() -> None:
    half = PlayRec(rec_rate=0.5)
    ids = [f"call-{n}" for n in range(2000)]
    recorded = sum(half.records(call_id) for call_id in ids)
    assert 850 < recorded < 1150
    assert [half.records(call_id) for call_id in ids] == [half.records(c) for c in ids]
    assert not any(PlayRec(rec_rate=0).records(c) for c in ids)
    assert all(PlayRec(rec_rate=1).records(c) for c in ids)


async def test_bert_runs_on_both_legs_and_syncs(client: Client, fs: FreeSwitchTarget) -> None:
    events = await log_events(client)
    await client.load_app(Bert, window_ms=200)
    bert = client.apps.Bert
    assert isinstance(bert, Bert)
    caller = await call(client, f"bert@{fs.sip_address}", "Bert")
    callee = callee_of(caller)
    assert await caller.wait_var("bert_in_sync", TIMEOUT)
    assert await callee.wait_var("bert_in_sync", TIMEOUT)
    assert len(events.executed("bert_test")) == 2
    assert bert.errors == 0


async def bert_call(
    simulator: SimulatorHandle, **bert_options: Any
) -> tuple[Bert, Session, Session, Client]:
    (target,) = simulator.targets
    client = Client(target.host, target.port)
    await client.connect()
    await client.load_app(Bert, window_ms=100, **bert_options)
    bert = client.apps.Bert
    assert isinstance(bert, Bert)
    caller = await call(client, f"bert@{target.sip_address}", "Bert")
    return bert, caller, callee_of(caller), client


async def test_bert_counts_lost_syncs(fs_simulator: Callable[..., SimulatorHandle]) -> None:
    simulator = fs_simulator(bert_errors=errored_windows([2, 3]))
    bert, caller, callee, client = await bert_call(simulator)
    try:
        assert await caller.wait_var("bert_lost_sync", TIMEOUT) == 1
        assert await callee.wait_var("bert_lost_sync", TIMEOUT) == 1
        assert bert.lost_sync == {caller.uuid: 1, callee.uuid: 1}
        assert float(caller.vars["bert_stats"]["sync_lost_percent"]) > 10
        # Clean windows follow: both legs sync again, and the call goes on.
        await until(client, lambda: caller.vars["bert_in_sync"] and callee.vars["bert_in_sync"])
        assert not caller.hungup
    finally:
        await client.hupall()
        await until(client, client.tracker.is_idle)
        await client.disconnect()


async def test_bert_hangs_up_on_error(fs_simulator: Callable[..., SimulatorHandle]) -> None:
    simulator = fs_simulator(bert_errors=errored_windows([2]))
    bert, _, _, client = await bert_call(simulator, hangup_on_error=True)
    try:
        await until(client, client.tracker.is_idle)
        assert bert.lost_sync_total >= 1
        assert client.tracker.hangup_causes["MEDIA_TIMEOUT"] >= 1
    finally:
        await client.disconnect()


async def test_bert_counts_timeouts(fs_simulator: Callable[..., SimulatorHandle]) -> None:
    simulator = fs_simulator(bert_errors=error_rate(100))
    bert, caller, callee, client = await bert_call(simulator, timeout_ms=300)
    try:
        assert await caller.wait_var("bert_timeout", TIMEOUT)
        assert await callee.wait_var("bert_timeout", TIMEOUT)
        assert bert.timed_out == {caller.uuid, callee.uuid}
        assert bert.lost_sync_total == 0  # never in sync, so never lost
        assert "bert_in_sync" not in caller.vars
    finally:
        await client.hupall()
        await until(client, client.tracker.is_idle)
        await client.disconnect()


async def test_bert_one_sided_echoes_on_the_callee(client: Client, fs: FreeSwitchTarget) -> None:
    events = await log_events(client)
    await client.load_app(Bert, two_sided=False)
    caller = await call(client, f"bert@{fs.sip_address}", "Bert")
    assert await caller.wait_var("bert_in_sync", TIMEOUT)
    assert len(events.executed("bert_test")) == 1
    assert events.executed("echo")
