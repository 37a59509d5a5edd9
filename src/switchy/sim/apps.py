"""Dialplan applications of the simulated switch (mod_dptools and friends).

Each application is a coroutine run by :meth:`Channel.execute` between its
CHANNEL_EXECUTE and CHANNEL_EXECUTE_COMPLETE. Applications return when they
are done or when the channel is interrupted (hangup, transfer, park, bridge);
a result goes into ``current_application_response``.
"""

from __future__ import annotations

import asyncio
import wave
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from switchy.sim import bert, media
from switchy.sim.calling import At
from switchy.sim.causes import sip_to_cause, str2cause

if TYPE_CHECKING:
    from switchy.sim.channel import Channel

AppFunction = Callable[["Channel", str], Awaitable[None]]


@dataclass(frozen=True)
class Application:
    """A registered application; ``needs_media`` apps pre-answer inbound channels first."""

    name: str
    run: AppFunction
    needs_media: bool


#: Every application the simulator knows, by lower-case name.
APPLICATIONS: dict[str, Application] = {}


def application(name: str, *, needs_media: bool = False) -> Callable[[AppFunction], AppFunction]:
    def register(function: AppFunction) -> AppFunction:
        APPLICATIONS[name] = Application(name, function, needs_media)
        return function

    return register


@application("park")
async def park(channel: Channel, arg: str) -> None:
    await park_loop(channel)


async def park_loop(channel: Channel) -> None:
    """``switch_ivr_park``: CHANNEL_PARK, idle until interrupted, CHANNEL_UNPARK."""
    channel.fire("CHANNEL_PARK", At.PARK)
    await channel.wait()
    channel.fire("CHANNEL_UNPARK", At.UNPARK)


@application("echo", needs_media=True)
async def echo(channel: Channel, arg: str) -> None:
    await bert.echo(channel)


@application("sleep")
async def sleep(channel: Channel, arg: str) -> None:
    milliseconds = _int(arg, 0)
    if milliseconds > 0:
        await channel.wait(milliseconds / 1000)


@application("log")
@application("info")
async def log_only(channel: Channel, arg: str) -> None:
    """``log`` (a line) and ``info`` (the channel's data): both only write to
    FreeSWITCH's log, which the simulator does not keep."""


@application("hangup")
async def hangup(channel: Channel, arg: str) -> None:
    channel.hangup(str2cause(arg) if arg.strip() else "NORMAL_CLEARING")


@application("answer")
async def answer(channel: Channel, arg: str) -> None:
    channel.answer()


@application("pre_answer")
async def pre_answer(channel: Channel, arg: str) -> None:
    channel.pre_answer()


@application("ring_ready")
async def ring_ready(channel: Channel, arg: str) -> None:
    channel.ring()


@application("respond")
async def respond(channel: Channel, arg: str) -> None:
    """Send a SIP response: 180/183/200 signal progress, 300+ refuse the call."""
    code = _int(arg.split(" ", 1)[0], 0)
    if code == 180:
        channel.ring()
    elif code == 183:
        channel.pre_answer()
    elif 200 <= code < 300:
        channel.answer()
    elif code >= 300:
        channel.respond_code = code
        channel.hangup(sip_to_cause(code))


@application("playback", needs_media=True)
async def playback(channel: Channel, arg: str) -> None:
    """``switch_ivr_play_file``: PLAYBACK_START, the clip's duration, PLAYBACK_STOP."""
    clip = media.clip_for(arg)
    if clip is None:
        channel.set_var("current_application_response", "FILE NOT FOUND")
        return
    file_headers = [("Playback-File-Type", clip.kind), ("Playback-File-Path", arg)]
    channel.fire("PLAYBACK_START", At.PLAYBACK_START, after=file_headers)
    started = channel.node.clock()
    timeout = None if clip.seconds == media.FOREVER else clip.seconds
    finished = await channel.wait(timeout, media=True)
    played_ms = int((channel.node.clock() - started) * 1000)
    if finished and timeout is not None:
        played_ms = int(timeout * 1000)
    samples = played_ms * 8
    channel.set_vars(
        [
            ("playback_last_offset_pos", str(samples)),
            ("playback_seconds", str(played_ms // 1000)),
            ("playback_ms", str(played_ms)),
            ("playback_samples", str(samples)),
        ]
    )
    status = "done" if finished else "break"
    channel.fire(
        "PLAYBACK_STOP", At.PLAYBACK_STOP, after=[*file_headers, ("Playback-Status", status)]
    )
    channel.set_var("current_application_response", "FILE PLAYED")


@application("bert_test")
async def bert_test(channel: Channel, arg: str) -> None:
    """mod_bert's bit error rate test (:mod:`switchy.sim.bert`)."""
    await bert.bert_test(channel, arg)


@application("set")
async def set_variable(channel: Channel, arg: str) -> None:
    name, _, value = arg.partition("=")
    if name:
        channel.set_var(name.strip(), value.strip())


@application("export")
async def export(channel: Channel, arg: str) -> None:
    await set_variable(channel, arg)


@application("unset")
async def unset(channel: Channel, arg: str) -> None:
    channel.set_var(arg.strip(), None)


@application("transfer")
async def transfer(channel: Channel, arg: str) -> None:
    fields = arg.split()
    if fields:
        transfer_channel(channel, fields[0], *fields[1:3])


@application("record_session", needs_media=True)
async def record_session(channel: Channel, arg: str) -> None:
    path, _, limit = arg.partition(" ")
    start_recording(channel, path, _int(limit, 0))


@application("stop_record_session")
async def stop_record_session(channel: Channel, arg: str) -> None:
    stop_recording(channel, arg.strip())


def transfer_channel(channel: Channel, exten: str, dialplan: str = "", context: str = "") -> None:
    """``switch_ivr_session_transfer``: a new caller profile, then route it."""
    profile = channel.profile
    if profile is None:
        return
    new = profile.copy()
    new.transfer_source = f"{int(channel.node.clock())}:{channel.uuid}:uxfer:{exten}"
    new.destination_number = exten
    if dialplan:
        new.dialplan = dialplan
    if context:
        new.context = context
    new.profile_index = str(int(profile.profile_index) + 1)
    new.times.transferred = channel.now_us()
    channel.profile = new
    channel.redirect("transfer")


@dataclass(eq=False)
class MediaBug:
    """A media bug other than a recording (``uuid_audio``, ``uuid_displace``)."""

    function: str  # Media-Bug-Function
    target: str  # Media-Bug-Target
    expiry: asyncio.TimerHandle | None = None


#: The ``Channel.privates`` key of the channel's :class:`MediaBug` list.
MEDIA_BUGS = "__media_bugs"


def media_bugs(channel: Channel) -> list[MediaBug]:
    """The channel's media bugs, oldest first (recordings aside)."""
    bugs = channel.privates.get(MEDIA_BUGS)
    return list(bugs) if isinstance(bugs, list) else []


def add_media_bug(channel: Channel, function: str, target: str) -> MediaBug:
    """``switch_core_media_bug_add``: MEDIA_BUG_START, then the bug works on the media."""
    bug = MediaBug(function, target)
    channel.privates[MEDIA_BUGS] = [*media_bugs(channel), bug]
    fields = [("Media-Bug-Function", function), ("Media-Bug-Target", target)]
    channel.fire("MEDIA_BUG_START", At.MEDIA_BUG_START, before=fields)
    return bug


def remove_media_bug(channel: Channel, bug: MediaBug) -> bool:
    """``switch_core_media_bug_remove``: MEDIA_BUG_STOP; False if ``bug`` was not there."""
    bugs = media_bugs(channel)
    if bug not in bugs:
        return False
    bugs.remove(bug)
    channel.privates[MEDIA_BUGS] = bugs
    if bug.expiry is not None:
        bug.expiry.cancel()
    fields = [("Media-Bug-Function", bug.function), ("Media-Bug-Target", bug.target)]
    channel.fire("MEDIA_BUG_STOP", At.MEDIA_BUG_STOP, before=fields)
    return True


def remove_media_bugs(channel: Channel) -> None:
    """Every media bug goes, as the channel hangs up: recordings first."""
    stop_recording(channel, "all")
    for bug in media_bugs(channel):
        remove_media_bug(channel, bug)
    channel.privates.pop(bert.SESSION_AUDIO, None)


def start_recording(channel: Channel, path: str, limit: int) -> bool:
    """Start a ``record_session`` media bug: RECORD_START then MEDIA_BUG_START."""
    if not path or not channel.has_media or path in channel.recordings:
        return False
    channel.recordings[path] = channel.node.clock()
    channel.fire("RECORD_START", At.RECORD_START, after=[("Record-File-Path", path)])
    bug = [("Media-Bug-Function", "session_record"), ("Media-Bug-Target", path)]
    channel.fire("MEDIA_BUG_START", At.MEDIA_BUG_START, before=bug)
    if limit > 0:
        asyncio.get_running_loop().call_later(limit, stop_recording, channel, path)
    return True


def stop_recording(channel: Channel, path: str) -> bool:
    """Stop a recording (``all``: every one): write it as silence, RECORD_STOP, MEDIA_BUG_STOP."""
    paths = list(channel.recordings) if path == "all" else [path]
    stopped = False
    for target in paths:
        started = channel.recordings.pop(target, None)
        if started is None:
            continue
        stopped = True
        ms = int((channel.node.clock() - started) * 1000)
        samples = ms * 8
        size = _write_silence(target, samples)
        channel.set_vars(
            [
                ("record_file_size", str(size)),
                ("record_samples", str(samples)),
                ("record_seconds", str(ms // 1000)),
                ("record_ms", str(ms)),
                ("record_completion_cause", "success-maxtime"),
            ]
        )
        channel.fire(
            "RECORD_STOP",
            At.RECORD_STOP,
            after=[("Record-File-Path", target), ("Record-Completion-Cause", "success-maxtime")],
        )
        bug = [("Media-Bug-Function", "session_record"), ("Media-Bug-Target", target)]
        channel.fire("MEDIA_BUG_STOP", At.MEDIA_BUG_STOP, before=bug)
    return stopped


def _write_silence(path: str, samples: int) -> int:
    """Write ``samples`` of 8 kHz 16-bit silence to ``path``; its size, 0 if unwritable."""
    try:
        with wave.open(path, "wb") as audio:
            audio.setnchannels(1)
            audio.setsampwidth(2)
            audio.setframerate(8000)
            audio.writeframes(b"\x00\x00" * samples)
        return 44 + 2 * samples
    except OSError:
        return 0


def _int(text: str, default: int) -> int:
    try:
        return int(text.strip())
    except ValueError:
        return default
