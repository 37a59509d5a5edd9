"""Media on simulated calls: playback, DTMF, recording, bridging, park and transfer."""

from __future__ import annotations

import wave
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from switchy.sim import media
from tests.sim.traces import EslClient, Simulation, simulation

SIP = "127.0.0.1:5080"


@pytest.fixture
async def sim() -> AsyncIterator[Simulation]:
    async with simulation() as running:
        yield running


async def answered_call(client: EslClient, uuid: str, user: str = "1000") -> str:
    """An answered, parked call from ``uuid`` to ``user``; the inbound leg's uuid."""
    seen = len(client.events)
    dial = f"{{origination_uuid={uuid}}}sofia/external/{user}@{SIP}"
    job = await client.bgapi(f"originate {dial} &park()")

    def inbound_park() -> str | None:
        parks = (e for e in client.events[seen:] if e.name == "CHANNEL_PARK")
        return next((e.uuid for e in parks if e.get("Call-Direction") == "inbound"), None)

    await client.wait_for(inbound_park)
    b_uuid = inbound_park()
    assert b_uuid is not None
    assert await client.api(f"uuid_answer {b_uuid}") == "+OK\n"
    assert await client.job(job) == f"+OK {uuid}\n"
    await client.wait_event("CHANNEL_PARK", uuid)
    return b_uuid


def write_wav(path: Path, seconds: float) -> None:
    with wave.open(str(path), "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(8000)
        audio.writeframes(b"\x00\x00" * int(8000 * seconds))


def test_clip_durations(tmp_path: Path) -> None:
    assert media.clip_for("tone_stream://%(251,0,1004);loops=2") == media.Clip("tone_stream", 0.502)
    assert media.clip_for("tone_stream://L=3;%(100,50,440,480)") == media.Clip("tone_stream", 0.45)
    assert media.clip_for("tone_stream://%(100,100,350);loops=-1") == media.Clip(
        "tone_stream", media.FOREVER
    )
    assert media.clip_for("silence_stream://1500") == media.Clip("silence_stream", 1.5)
    assert media.clip_for("silence_stream://-1") == media.Clip("silence_stream", media.FOREVER)
    write_wav(tmp_path / "a.wav", 0.25)
    assert media.clip_for(str(tmp_path / "a.wav")) == media.Clip("", 0.25)
    assert media.clip_for(str(tmp_path / "missing.wav")) is None
    assert media.clip_for("shout://example.com/x.mp3") is None
    assert media.clip_for("{loops=4}silence_stream://250") == media.Clip("silence_stream", 1.0)
    assert media.clip_for("{loops=-1}tone_stream://%(251,0,1004)") == media.Clip(
        "tone_stream", media.FOREVER
    )


async def test_broadcast_playback_of_a_tone(sim: Simulation) -> None:
    client = sim.client
    await answered_call(client, "pb")
    path = "tone_stream://%(40,0,1004);loops=2"
    assert await client.api(f"uuid_broadcast pb playback::{path} aleg") == "+OK Message sent\n"
    start = await client.wait_event("PLAYBACK_START", "pb")
    assert start.get("Playback-File-Type") == "tone_stream"
    assert start.get("Playback-File-Path") == path
    stop = await client.wait_event("PLAYBACK_STOP", "pb")
    assert stop.get("Playback-Status") == "done"
    assert stop.get("variable_playback_ms") == "80"
    assert stop.get("variable_playback_samples") == "640"
    complete = await client.wait_event("CHANNEL_EXECUTE_COMPLETE", "pb")
    assert complete.get("Application") == "playback"
    assert complete.get("Application-Response") == "FILE PLAYED"
    private = await client.wait_event("PRIVATE_COMMAND", "pb")
    assert private.headers[0] == ("Event-Name", "COMMAND")
    assert private.get("execute-app-arg") == path


async def test_playback_of_a_wav_file_and_a_missing_one(sim: Simulation, tmp_path: Path) -> None:
    client = sim.client
    await answered_call(client, "wav")
    write_wav(tmp_path / "hello.wav", 0.1)
    await client.api(f"uuid_broadcast wav {tmp_path / 'hello.wav'}")
    stop = await client.wait_event("PLAYBACK_STOP", "wav")
    assert stop.get("Playback-File-Type") is None
    assert stop.get("variable_playback_ms") == "100"
    await client.api(f"uuid_broadcast wav {tmp_path / 'nothing.wav'}")
    complete = await client.wait_event("CHANNEL_EXECUTE_COMPLETE", "wav", count=2)
    assert complete.get("Application-Response") == "FILE NOT FOUND"


async def test_uuid_break_stops_a_playback(sim: Simulation) -> None:
    client = sim.client
    await answered_call(client, "brk")
    await client.api("uuid_broadcast brk silence_stream://-1")
    await client.wait_event("PLAYBACK_START", "brk")
    assert await client.api("uuid_break brk") == "+OK\n"
    stop = await client.wait_event("PLAYBACK_STOP", "brk")
    assert stop.get("Playback-Status") == "break"


async def test_dtmf_arrives_on_the_peer_leg(sim: Simulation) -> None:
    client = sim.client
    b_uuid = await answered_call(client, "dt")
    assert await client.api("uuid_send_dtmf dt 1*9@40") == "+OK dt sent DTMF 1*9@40.\n"
    digits = [await client.wait_event("DTMF", b_uuid, count=n) for n in (1, 2, 3)]
    assert [d.get("DTMF-Digit") for d in digits] == ["1", "*", "9"]
    assert digits[0].get("DTMF-Duration") == "400"
    assert digits[0].get("DTMF-Source") == "RTP"
    assert not any(e.name == "DTMF" for e in client.channel_events("dt"))
    await client.api("uuid_kill dt")
    done = await client.wait_event("CHANNEL_HANGUP_COMPLETE", b_uuid)
    assert done.get("variable_digits_dialed") == "1*9"


async def test_dtmf_needs_media(sim: Simulation) -> None:
    client = sim.client
    await client.bgapi(f"originate {{origination_uuid=nm}}sofia/external/1@{SIP} &park()")
    await client.wait_event("CHANNEL_PARK")
    assert await client.api("uuid_send_dtmf nm 1") == "-ERR Operation failed\n"


async def test_uuid_record(sim: Simulation, tmp_path: Path) -> None:
    client = sim.client
    await answered_call(client, "rec")
    path = tmp_path / "call.wav"
    assert await client.api(f"uuid_record rec start {path}") == "+OK Success\n"
    start = await client.wait_event("RECORD_START", "rec")
    assert start.get("Record-File-Path") == str(path)
    bug = await client.wait_event("MEDIA_BUG_START", "rec")
    assert bug.headers[13] == ("Media-Bug-Function", "session_record")
    assert await client.api(f"uuid_record rec stop {path}") == "+OK Success\n"
    stop = await client.wait_event("RECORD_STOP", "rec")
    assert stop.get("Record-Completion-Cause") == "success-maxtime"
    await client.wait_event("MEDIA_BUG_STOP", "rec")
    with wave.open(str(path), "rb") as audio:
        assert audio.getframerate() == 8000
    assert await client.api(f"uuid_record rec stop {path}") == "-ERR Cannot stop record session!\n"


async def test_a_recording_stops_at_hangup(sim: Simulation, tmp_path: Path) -> None:
    client = sim.client
    await answered_call(client, "rh")
    await client.api(f"uuid_record rh start {tmp_path / 'x.wav'}")
    await client.api("uuid_kill rh")
    await client.wait_event("CHANNEL_DESTROY", "rh")
    names = [e.name for e in client.channel_events("rh")]
    assert names.index("RECORD_STOP") < names.index("CHANNEL_HANGUP_COMPLETE")


async def test_recording_needs_media(sim: Simulation) -> None:
    client = sim.client
    await client.bgapi(f"originate {{origination_uuid=rn}}sofia/external/1@{SIP} &park()")
    await client.wait_event("CHANNEL_PARK")
    assert await client.api("uuid_record rn start /tmp/never.wav") == (
        "-ERR Cannot record session!\n"
    )


async def test_uuid_bridge(sim: Simulation) -> None:
    client = sim.client
    b1 = await answered_call(client, "ba", user="1")
    b2 = await answered_call(client, "bb", user="2")
    assert await client.api(f"uuid_bridge {b1} {b2}") == f"+OK {b2}\n"
    bridge = await client.wait_event("CHANNEL_BRIDGE", b1)
    assert bridge.headers[13:15] == (
        ("Bridge-A-Unique-ID", b1),
        ("Bridge-B-Unique-ID", b2),
    )
    assert bridge.get("Other-Type") == "originatee"
    assert bridge.get("Other-Leg-Unique-ID") == b2
    b1_names = [e.name for e in client.channel_events(b1)]
    unpark = b1_names.index("CHANNEL_UNPARK")
    assert b1_names[unpark : unpark + 3] == [
        "CHANNEL_UNPARK",
        "CHANNEL_EXECUTE_COMPLETE",
        "CHANNEL_STATE",
    ]
    executed = [e for e in client.channel_events(b2) if e.name == "CHANNEL_EXECUTE"][-1]
    assert executed.get("Application") == "uuid_bridge"
    assert executed.get("Application-Data") == b1
    assert "3 total." in await client.api("show calls count")
    await client.api(f"uuid_kill {b2}")
    b2_hangup = await client.wait_event("CHANNEL_HANGUP", b2)
    assert b2_hangup.get("Other-Type") == "originator"
    assert b2_hangup.get("Other-Leg-Unique-ID") == b1
    unbridge = await client.wait_event("CHANNEL_UNBRIDGE", b1)
    assert unbridge.get("Bridge-B-Unique-ID") == b2
    hangup = await client.wait_event("CHANNEL_HANGUP", b1)
    assert hangup.get("Hangup-Cause") == "NORMAL_CLEARING"


async def test_the_bridge_application_calls_onward(sim: Simulation) -> None:
    """Trace 08: a parked inbound leg bridges to a third leg, then stays parked."""
    client = sim.client
    await client.bgapi(f"originate {{origination_uuid=hop1}}sofia/external/hop1@{SIP} &park()")
    hop1_in = (await client.wait_event("CHANNEL_PARK")).uuid
    assert hop1_in is not None
    await client.api(f"uuid_broadcast {hop1_in} bridge::sofia/external/hop2@{SIP}")
    hop2_in = (await client.wait_event("CHANNEL_PARK", count=2)).uuid
    assert await client.api(f"uuid_answer {hop2_in}") == "+OK\n"
    answer = await client.wait_event("CHANNEL_ANSWER", hop1_in)
    assert answer.get("Answer-State") == "answered"
    bridge = await client.wait_event("CHANNEL_BRIDGE", hop1_in)
    hop2_out = bridge.get("Bridge-B-Unique-ID")
    assert hop2_out is not None
    b_leg = await client.wait_event("CHANNEL_OUTGOING", hop2_out)
    assert b_leg.get("Other-Type") == "originator"
    assert b_leg.get("Other-Leg-Unique-ID") == hop1_in
    await client.wait_for(
        lambda: any(
            e.name == "CHANNEL_STATE" and e.get("Channel-State") == "CS_EXCHANGE_MEDIA"
            for e in client.channel_events(hop2_out)
        )
    )
    await client.api(f"uuid_kill {hop2_in}")
    await client.wait_event("CHANNEL_UNBRIDGE", hop1_in)
    complete = await client.wait_event("CHANNEL_EXECUTE_COMPLETE", hop1_in)
    assert complete.get("Application") == "bridge"
    await client.wait_event("CHANNEL_HANGUP_COMPLETE", hop2_out)
    # hangup_after_bridge is unset: the leg goes back to its park.
    assert await client.api(f"uuid_exists {hop1_in}") == "true"


async def test_uuid_park_and_uuid_transfer(sim: Simulation) -> None:
    client = sim.client
    await answered_call(client, "pt")
    assert await client.api("uuid_broadcast pt echo::") == "+OK Message sent\n"
    executed = await client.wait_event("CHANNEL_EXECUTE", "pt", count=2)
    assert executed.get("Application") == "echo"
    assert await client.api("uuid_park pt") == "+OK\n"
    state = await client.wait_event("CHANNEL_PARK", "pt", count=2)
    assert state.get("Channel-State") == "CS_PARK"
    assert await client.api("uuid_transfer pt 5555 XML switchy") == "+OK\n"
    parked = await client.wait_event("CHANNEL_PARK", "pt", count=3)
    assert parked.get("Caller-Destination-Number") == "5555"
    assert parked.get("Caller-Transfer-Source")


async def test_broadcast_hangup_and_park(sim: Simulation) -> None:
    client = sim.client
    await answered_call(client, "bh")
    assert await client.api("uuid_broadcast bh park::") == "+OK Message sent\n"
    nested = await client.wait_event("CHANNEL_PARK", "bh", count=2)
    assert nested.get("variable_current_application") == "park"
    assert await client.api("uuid_broadcast bh hangup::USER_BUSY") == "+OK Message sent\n"
    hangup = await client.wait_event("CHANNEL_HANGUP", "bh")
    assert hangup.get("Hangup-Cause") == "USER_BUSY"


async def test_sendmsg_takes_the_application_argument_from_a_text_body(sim: Simulation) -> None:
    client = sim.client
    await answered_call(client, "sb")
    body = "silence_stream://20"
    reply = await client.command(
        "sendmsg sb\ncall-command: execute\nexecute-app-name: playback\n"
        f"content-type: text/plain\ncontent-length: {len(body)}\n\n{body}"
    )
    assert reply.reply_text == "+OK"
    start = await client.wait_event("PLAYBACK_START", "sb")
    assert start.get("Playback-File-Path") == body
