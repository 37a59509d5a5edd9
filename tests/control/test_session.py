"""The Session API against the simulator or a real FreeSWITCH (--fshost)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from switchy import Client, Session
from switchy.errors import APIError
from switchy.models import Job
from switchy.sim.pytest_plugin import FreeSwitchTarget
from tests.conftest import both_legs

TIMEOUT = 10.0


@pytest.fixture
async def client(fs: FreeSwitchTarget) -> AsyncIterator[Client]:
    async with Client(fs.host, fs.port, fs.password, subscribe_all=True) as client:
        yield client
        await client.api("hupall NORMAL_CLEARING sip_h_X-switchy_test yes")
        await client.tracker.wait_for(client.tracker.is_idle, TIMEOUT)


async def parked_call(client: Client, fs: FreeSwitchTarget, user: str) -> tuple[Job, Session]:
    """Originate to ``user``; return the job and the parked, unanswered far end."""
    job = await client.originate(
        f"{user}@{fs.sip_address}", timeout=10, x_headers={"switchy_test": "yes"}
    )
    call = await both_legs(client, job, TIMEOUT)
    callee = call.last
    await asyncio.wait_for(callee.recv("CHANNEL_PARK", past=True), TIMEOUT)
    return job, callee


async def answered_call(client: Client, fs: FreeSwitchTarget, user: str) -> tuple[Session, Session]:
    job, callee = await parked_call(client, fs, user)
    await callee.answer()
    uuid = await asyncio.wait_for(job, TIMEOUT)
    caller = client.tracker.sessions[uuid]
    await asyncio.wait_for(caller.recv("CHANNEL_PARK", past=True), TIMEOUT)
    return caller, callee


async def test_session_state(client: Client, fs: FreeSwitchTarget) -> None:
    job, callee = await parked_call(client, fs, "state")
    caller = job.session
    assert caller is not None
    assert caller.is_outbound() and not caller.is_inbound()
    assert callee.is_inbound() and not callee.is_outbound()
    assert not callee.answered
    assert caller["Caller-Destination-Number"] == "state"
    assert callee.get("variable_sip_h_X-switchy_test") == "yes"
    assert caller.get("No-Such-Header", "fallback") == "fallback"
    with pytest.raises(KeyError):
        _ = caller["No-Such-Header"]
    assert "Unique-ID" in caller
    assert caller.app_id == callee.app_id == "default"
    assert caller.host == fs.host
    assert "CHANNEL_CREATE" in caller.times
    assert caller.time >= caller.times["CHANNEL_CREATE"] > 0
    assert caller.uptime >= 0
    assert caller.call is callee.call
    assert caller.call is not None and caller.call.first is caller
    assert caller.call.get_peer(callee) is caller
    await callee.answer()
    assert await asyncio.wait_for(job, TIMEOUT) == caller.uuid
    assert job.successful()
    assert caller.answered and callee.answered


async def test_variables(client: Client, fs: FreeSwitchTarget) -> None:
    caller, _ = await answered_call(client, fs, "vars")
    await caller.setvar("my_var", "hello world")
    assert await caller.getvar("my_var") == "hello world"
    await caller.setvars({"a": "1", "b": "two;three"})
    assert await caller.getvar("a") == "1"
    assert await caller.getvar("b") == "two;three"
    await caller.unsetvar("my_var")
    assert await caller.getvar("my_var") == "_undef_"
    with pytest.raises(ValueError, match="line break"):
        caller.setvar("x", "evil\napi shutdown")


async def test_local_vars_wake_waiters(client: Client, fs: FreeSwitchTarget) -> None:
    caller, _ = await answered_call(client, fs, "localvars")
    waiting = asyncio.ensure_future(caller.wait_var("done", timeout=TIMEOUT))
    await asyncio.sleep(0)
    caller.vars["done"] = False
    assert not waiting.done()
    caller.vars["done"] = "yes"
    assert await waiting == "yes"
    with pytest.raises(TimeoutError):
        await caller.wait_var("never", timeout=0.05)


async def test_playback_then_break(client: Client, fs: FreeSwitchTarget) -> None:
    caller, _ = await answered_call(client, fs, "playback")
    started = asyncio.ensure_future(caller.recv("PLAYBACK_START", TIMEOUT))
    await caller.playback("tone_stream://%(251,0,1004)", endless=True)
    start = await started
    assert start["Playback-File-Path"].endswith("tone_stream://%(251,0,1004)")
    stopped = asyncio.ensure_future(caller.recv("PLAYBACK_STOP", TIMEOUT))
    await caller.breakmedia()
    assert (await stopped)["Playback-Status"] == "break"


async def test_a_clip_plays_to_its_end(client: Client, fs: FreeSwitchTarget) -> None:
    caller, _ = await answered_call(client, fs, "clip")
    stopped = asyncio.ensure_future(caller.recv("PLAYBACK_STOP", TIMEOUT))
    await caller.broadcast("silence_stream://200", app="playback")
    assert (await stopped)["Playback-Status"] == "done"


async def test_dtmf_reaches_the_peer(client: Client, fs: FreeSwitchTarget) -> None:
    caller, callee = await answered_call(client, fs, "dtmf")
    digits: list[str] = []

    async def collect() -> None:
        while len(digits) < 4:
            event = await callee.recv("DTMF", TIMEOUT)
            digits.append(event["DTMF-Digit"])

    collecting = asyncio.ensure_future(collect())
    await asyncio.sleep(0)
    await caller.send_dtmf("12#4")
    await asyncio.wait_for(collecting, TIMEOUT)
    assert digits == ["1", "2", "#", "4"]


async def test_record_start_and_stop(client: Client, fs: FreeSwitchTarget) -> None:
    caller, _ = await answered_call(client, fs, "record")
    path = "/tmp/switchy-test-record.wav"
    started = asyncio.ensure_future(caller.recv("RECORD_START", TIMEOUT))
    await caller.record("start", path)
    assert (await started)["Record-File-Path"] == path
    stopped = asyncio.ensure_future(caller.recv("RECORD_STOP", TIMEOUT))
    await caller.record("stop", path)
    assert (await stopped)["Record-File-Path"] == path


async def test_respond_rejects_the_call(client: Client, fs: FreeSwitchTarget) -> None:
    job, callee = await parked_call(client, fs, "busy")
    await callee.respond(486)
    with pytest.raises(APIError):
        await asyncio.wait_for(job, TIMEOUT)
    assert job.cause == "USER_BUSY"


async def test_hangup_with_a_cause(client: Client, fs: FreeSwitchTarget) -> None:
    caller, callee = await answered_call(client, fs, "cause")
    hangup = asyncio.ensure_future(caller.recv("CHANNEL_HANGUP", TIMEOUT))
    await callee.hangup("USER_BUSY")
    assert callee.hungup or (await callee.recv("CHANNEL_HANGUP", TIMEOUT, past=True))
    assert (await hangup)["Hangup-Cause"]
    await client.tracker.wait_for(client.tracker.is_idle, TIMEOUT)
    assert client.tracker.hangup_causes["USER_BUSY"] >= 1
    with pytest.raises(APIError, match="No such channel"):
        await caller.hangup()


async def test_recv_times_out_and_ends_with_the_session(
    client: Client, fs: FreeSwitchTarget
) -> None:
    caller, _ = await answered_call(client, fs, "recv")
    with pytest.raises(TimeoutError):
        await caller.recv("CHANNEL_BRIDGE", 0.05)
    pending = asyncio.ensure_future(caller.recv("CHANNEL_BRIDGE", TIMEOUT))
    await asyncio.sleep(0)
    await caller.hangup()
    with pytest.raises(Exception, match="ended"):
        await pending


async def test_history_is_bounded(fs: FreeSwitchTarget) -> None:
    async with Client(fs.host, fs.port, fs.password, subscribe_all=True, history=4) as client:
        job = await client.originate(f"history@{fs.sip_address}", timeout=10)
        await client.tracker.wait_for(lambda: job.session is not None, TIMEOUT)
        caller = job.session
        assert caller is not None
        await client.tracker.wait_for(lambda: len(caller.events) == 4, TIMEOUT)
        assert caller.create_event.name == "CHANNEL_CREATE"
        assert len(caller.events) == 4
        await caller.hangup()
        await client.tracker.wait_for(client.tracker.is_idle, TIMEOUT)


async def test_scheduled_hangup_and_clearing_tasks(client: Client, fs: FreeSwitchTarget) -> None:
    caller, callee = await answered_call(client, fs, "sched")
    kept = await callee.sched_hangup(30)
    assert kept.startswith("+OK")
    assert (await callee.clear_tasks()).startswith("+OK")
    hangup = asyncio.ensure_future(caller.recv("CHANNEL_HANGUP", TIMEOUT))
    await caller.sched_hangup(1, "ALLOTTED_TIMEOUT")
    assert (await hangup)["Hangup-Cause"] == "ALLOTTED_TIMEOUT"


async def test_scheduled_dtmf_reaches_the_peer(client: Client, fs: FreeSwitchTarget) -> None:
    caller, callee = await answered_call(client, fs, "scheddtmf")
    digit = asyncio.ensure_future(callee.recv("DTMF", TIMEOUT))
    await caller.sched_dtmf(1, "7")
    assert (await digit)["DTMF-Digit"] == "7"


async def test_session_recording(client: Client, fs: FreeSwitchTarget) -> None:
    caller, _ = await answered_call(client, fs, "sessrec")
    path = "/tmp/switchy-test-session-record.wav"
    started = asyncio.ensure_future(caller.recv("RECORD_START", TIMEOUT))
    await caller.start_record(path, stereo=True, rate=8000)
    assert (await started)["Record-File-Path"] == path
    assert await caller.getvar("RECORD_STEREO") == "true"
    stopped = asyncio.ensure_future(caller.recv("RECORD_STOP", TIMEOUT))
    await caller.stop_record(path)
    assert (await stopped)["Record-File-Path"] == path


async def test_media_commands_are_accepted(client: Client, fs: FreeSwitchTarget) -> None:
    caller, callee = await answered_call(client, fs, "media")
    assert (await caller.mute()).startswith("+OK")
    assert (await caller.unmute()).startswith("+OK")
    executed = asyncio.ensure_future(caller.recv("CHANNEL_EXECUTE_COMPLETE", TIMEOUT))
    await caller.execute("sleep", "50")
    assert (await executed)["Application"] == "sleep"
    assert (await callee.bypass_media(True)).startswith("+OK")
    assert (await callee.bypass_media(False)).startswith("+OK")


async def test_deflect_ends_the_call(client: Client, fs: FreeSwitchTarget) -> None:
    _, callee = await answered_call(client, fs, "deflect")
    hangup = asyncio.ensure_future(callee.recv("CHANNEL_HANGUP", TIMEOUT))
    reply = await callee.deflect(f"sip:elsewhere@{fs.sip_address}")
    assert reply.startswith("+OK")
    assert (await hangup)["Hangup-Cause"] == "BLIND_TRANSFER"
