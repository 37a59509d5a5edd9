"""User text never becomes another ESL command: every entry point, every hostile character.

Each hostile value is put in each argument of each entry point. The call either
raises ValueError before a byte is sent, or the command goes out intact: the
node answers that one command and is still itself afterwards (its event socket
was not unloaded, no other command ran).
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from switchy import Client, Session
from switchy.errors import APIError, CommandError, ConfigurationError
from switchy.loadgen.run import AppChoice, RunSettings
from switchy.sim.pytest_plugin import FreeSwitchTarget
from tests.conftest import both_legs

TIMEOUT = 10.0

# Recordings land in files (the simulator writes them too): keep them out of the way.
SCRATCH = tempfile.mkdtemp(prefix="switchy-injection-")

HOSTILE = [
    "a\rb",
    "a\nb",
    "a\n\napi hupall",
    "a\x00b",
    "{",
    "}",
    "a,b",
    "it's",
    "a b",
    "${uuid}",
    "unload mod_event_socket",
    "x ReLoad MOD_EVENT_SOCKET y",
]


async def answered_call(client: Client, fs: FreeSwitchTarget, user: str) -> Session:
    """A new answered call; returns its calling leg."""
    job = await client.originate(f"{user}@{fs.sip_address}", timeout=30)
    call = await both_legs(client, job, TIMEOUT)
    await call.last.answer()
    await asyncio.wait_for(job, TIMEOUT)
    return job.session


@pytest.fixture
async def call(fs: FreeSwitchTarget) -> AsyncIterator[tuple[Client, Session]]:
    """A client, and a witness call that no hostile command may touch."""
    async with Client(fs.host, fs.port, fs.password) as client:
        witness = await answered_call(client, fs, "witness")
        yield client, witness
        await client.api("hupall")
        await client.tracker.wait_for(client.tracker.is_idle, TIMEOUT)


SESSION_COMMANDS: list[tuple[str, Callable[[Session, str], Any]]] = [
    ("setvar value", lambda s, v: s.setvar("switchy_test", v)),
    ("setvar name", lambda s, v: s.setvar(v, "x")),
    ("setvars value", lambda s, v: s.setvars({"switchy_test": v})),
    ("getvar", lambda s, v: s.getvar(v)),
    ("playback", lambda s, v: s.playback(v)),
    ("broadcast", lambda s, v: s.broadcast(v)),
    ("execute app", lambda s, v: s.execute(v, "x")),
    ("execute args", lambda s, v: s.execute("set", f"switchy_test={v}")),
    ("record path", lambda s, v: s.record("start", f"{SCRATCH}/{v}")),
    ("start_record", lambda s, v: s.start_record(f"{SCRATCH}/{v}")),
    ("send_dtmf", lambda s, v: s.send_dtmf(v)),
    ("respond", lambda s, v: s.respond(v)),
    ("deflect", lambda s, v: s.deflect(v)),
    ("hangup cause", lambda s, v: s.hangup(v)),
    ("bridge dest", lambda s, v: s.bridge(dest_url=v)),
    ("bridge params", lambda s, v: s.bridge(dest_url="x@127.0.0.1", params={"v": v})),
]


@pytest.mark.parametrize(
    ("what", "command"), SESSION_COMMANDS, ids=[w for w, _ in SESSION_COMMANDS]
)
async def test_session_commands_refuse_or_carry_hostile_text(
    call: tuple[Client, Session],
    fs: FreeSwitchTarget,
    what: str,
    command: Callable[[Session, str], Any],
) -> None:
    client, witness = call
    target = await answered_call(client, fs, "target")
    for value in HOSTILE:
        if target.hungup:  # some commands end the call (deflect, a failed bridge)
            target = await answered_call(client, fs, "target")
        if what == "hangup cause":
            with pytest.raises(ValueError, match="cause"):
                target.hangup(value)
            continue
        try:
            pending = command(target, value)
        except ValueError:
            continue
        with contextlib.suppress(APIError, CommandError):  # refused: fine, nothing else ran
            await asyncio.wait_for(pending, TIMEOUT)
        # No other command ran: the event socket is loaded and the other call is untouched.
        assert (await client.api("echo still-here")) == "still-here", f"{what}={value!r}"
        assert not witness.hungup, f"{what}={value!r} reached another call"


async def test_originate_arguments_refuse_hostile_text(
    call: tuple[Client, Session], fs: FreeSwitchTarget
) -> None:
    client, _ = call
    for value in HOSTILE:
        for options in (
            {"dest_url": value},
            {"dest_url": f"u@{fs.sip_address}", "caller_id_name": value},
            {"dest_url": f"u@{fs.sip_address}", "variables": {"v": value}},
            {"dest_url": f"u@{fs.sip_address}", "x_headers": {"H": value}},
            {"dest_url": f"u@{fs.sip_address}", "proxy": value},
            {"dest_url": f"u@{fs.sip_address}", "profile": value},
            {"dest_url": f"u@{fs.sip_address}", "app_args": value},
        ):
            try:
                command = client.originate_cmd("0a6c8fd2-0000-4000-8000-000000000001", **options)
            except ValueError:
                continue
            # What gets through is one command line with no line break and no trigger.
            assert "\n" not in command and "\r" not in command and "\0" not in command
            assert "mod_event_socket" not in command.lower() or "unload" not in command.lower()
    with pytest.raises(ValueError, match="command"):
        await client.api("status\n\napi hupall")
    with pytest.raises(ValueError, match="command"):
        await client.bgapi("echo unload mod_event_socket")


def test_load_test_settings_refuse_hostile_text(fs: FreeSwitchTarget) -> None:
    from switchy.apps.players import TonePlay
    from switchy.client import Client as PlainClient

    for value in HOSTILE:
        settings = RunSettings(user=value, apps=[AppChoice(TonePlay, "TonePlay")])
        client = PlainClient("127.0.0.1", 1)
        try:
            client.set_orig_cmd(f"{settings.user}@127.0.0.1:5080", proxy="127.0.0.1:5060")
        except (ValueError, ConfigurationError):
            continue
        command = client.originate_cmd("0a6c8fd2-0000-4000-8000-000000000001")
        assert "\n" not in command and "\0" not in command
