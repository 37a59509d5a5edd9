"""mod_bert in the simulator: sync, lost sync, timeout and hangup on error (trace 09)."""

from __future__ import annotations

import asyncio
from typing import Any

from switchy.sim.bert import error_rate, errored_windows
from tests.sim.traces import EslClient, Simulation, TraceEvent, simulation

SIP = "127.0.0.1:5080"
WINDOW_MS = 100
SAMPLES_PER_WINDOW = WINDOW_MS * 8


async def bert_call(sim: Simulation, **variables: str) -> tuple[str, str]:
    """An answered call on the node itself, both legs with ``variables``: (caller, callee)."""
    client = sim.client
    job = await client.bgapi(
        f"originate {{origination_uuid=caller}}sofia/external/bert@{SIP} &park()"
    )
    assert await client.job(job) == "+OK caller\n"
    callee = next(
        e.uuid for e in client.events if e.name == "CHANNEL_ANSWER" and e.uuid != "caller"
    )
    assert callee is not None
    settings = ";".join(
        f"{k}={v}" for k, v in {"bert_window_ms": str(WINDOW_MS), **variables}.items()
    )
    for uuid in ("caller", callee):
        assert await client.api(f"uuid_setvar_multi {uuid} {settings}") == "+OK\n"
    return "caller", callee


async def start_bert(client: EslClient, *uuids: str) -> None:
    for uuid in uuids:
        assert await client.api(f"uuid_broadcast {uuid} bert_test:: aleg") == "+OK Message sent\n"


def bert_events(client: EslClient, uuid: str) -> list[str]:
    return [
        e.get("Event-Subclass") or "" for e in client.channel_events(uuid) if e.name == "CUSTOM"
    ]


async def wait_bert(client: EslClient, uuid: str, subclass: str, count: int = 1) -> TraceEvent:
    def found() -> list[TraceEvent]:
        return [
            e
            for e in client.channel_events(uuid)
            if e.name == "CUSTOM" and e.get("Event-Subclass") == subclass
        ]

    await client.wait_for(lambda: len(found()) >= count)
    return found()[count - 1]


def with_node(**knobs: Any) -> Any:
    return simulation(answer_delay=0, **knobs)


async def test_both_legs_get_in_sync_after_one_window() -> None:
    async with with_node() as sim:
        client = sim.client
        caller, callee = await bert_call(sim)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await start_bert(client, caller, callee)
        for uuid in (caller, callee):
            event = await wait_bert(client, uuid, "mod_bert::in_sync")
            assert event.headers[0] == ("Event-Subclass", "mod_bert::in_sync")
            assert not event.variable_names  # basic channel data only
            assert event.get("Event-Calling-Line-Number") == "313"
            assert event.get("Channel-Call-State") == "ACTIVE"
        assert loop.time() - started >= WINDOW_MS / 1000
        assert await client.api(f"uuid_getvar {caller} bert_stats_sync_lost") == "false"
        assert await client.api(f"uuid_getvar {caller} bert_stats_sync_lost_count") == "0"


async def test_errored_windows_lose_sync_then_sync_again() -> None:
    async with with_node(bert_errors=errored_windows([2])) as sim:
        client = sim.client
        caller, callee = await bert_call(sim)
        await start_bert(client, caller, callee)
        lost = await wait_bert(client, caller, "mod_bert::lost_sync")
        assert lost.get("sync_lost_percent") == "100.000000"
        assert lost.get("sync_lost_count") == "1"
        assert lost.get("cng_count") == "0"
        assert lost.get("err_samples") == str(SAMPLES_PER_WINDOW)
        assert lost.get("Event-Calling-Function") == "bert_test_function"
        await wait_bert(client, caller, "mod_bert::in_sync", count=2)
        assert bert_events(client, caller) == [
            "mod_bert::in_sync",
            "mod_bert::lost_sync",
            "mod_bert::in_sync",
        ]
        assert await client.api(f"uuid_getvar {caller} bert_stats_sync_lost") == "true"
        assert await client.api(f"uuid_getvar {caller} bert_stats_sync_lost_count") == "1"
        assert await client.api(f"uuid_exists {callee}") == "true"


async def test_no_pattern_from_the_far_end_times_out_once() -> None:
    async with with_node() as sim:
        client = sim.client
        caller, _ = await bert_call(sim, bert_timeout_ms="300")
        loop = asyncio.get_running_loop()
        started = loop.time()
        await start_bert(client, caller)  # the far end stays parked, silent
        timeout = await wait_bert(client, caller, "mod_bert::timeout")
        assert loop.time() - started >= 0.3
        assert not timeout.variable_names
        assert await client.api(f"uuid_exists {caller}") == "true"
        assert bert_events(client, caller) == ["mod_bert::timeout"]


async def test_a_line_with_too_many_errors_never_syncs() -> None:
    async with with_node(bert_errors=error_rate(50)) as sim:
        client = sim.client
        caller, callee = await bert_call(sim, bert_timeout_ms="300")
        await start_bert(client, caller, callee)
        await wait_bert(client, caller, "mod_bert::timeout")
        assert "mod_bert::in_sync" not in bert_events(client, caller)


async def test_a_timeout_hangs_up_on_error() -> None:
    async with with_node() as sim:
        client = sim.client
        caller, _ = await bert_call(sim, bert_timeout_ms="200", bert_hangup_on_error="true")
        await start_bert(client, caller)
        hangup = await client.wait_event("CHANNEL_HANGUP", caller)
        assert hangup.get("Hangup-Cause") == "MEDIA_TIMEOUT"
        assert bert_events(client, caller) == ["mod_bert::timeout"]


async def test_a_lost_sync_hangs_up_on_error() -> None:
    async with with_node(bert_errors=errored_windows([1])) as sim:
        client = sim.client
        caller, callee = await bert_call(sim)
        assert await client.api(f"uuid_setvar {caller} bert_hangup_on_error yes") == "+OK\n"
        await start_bert(client, caller, callee)
        hangup = await client.wait_event("CHANNEL_HANGUP", caller)
        assert hangup.get("Hangup-Cause") == "MEDIA_TIMEOUT"
        assert bert_events(client, caller) == ["mod_bert::in_sync", "mod_bert::lost_sync"]
        callee_hangup = await client.wait_event("CHANNEL_HANGUP", callee)
        assert callee_hangup.get("Hangup-Cause") == "NORMAL_CLEARING"  # the BYE


async def test_an_echoing_far_end_sends_the_pattern_back() -> None:
    async with with_node() as sim:
        client = sim.client
        caller, callee = await bert_call(sim)
        assert await client.api(f"uuid_broadcast {callee} echo:: aleg") == "+OK Message sent\n"
        await start_bert(client, caller)
        await wait_bert(client, caller, "mod_bert::in_sync")
        # Muting what the echo hears takes the pattern away as surely as muting what it says.
        assert await client.api(f"uuid_audio {callee} start read mute 1") == "+OK\n"
        lost = await wait_bert(client, caller, "mod_bert::lost_sync")
        assert lost.get("sync_lost_percent") == "100.000000"
        assert await client.api(f"uuid_audio {callee} stop") == "+OK\n"
        await wait_bert(client, caller, "mod_bert::in_sync", count=2)
        assert bert_events(client, callee) == []  # echoing is not testing


async def test_muting_the_far_end_loses_sync() -> None:
    async with with_node() as sim:
        client = sim.client
        caller, callee = await bert_call(sim)
        await start_bert(client, caller, callee)
        await wait_bert(client, caller, "mod_bert::in_sync")
        assert await client.api(f"uuid_audio {callee} start write mute 1") == "+OK\n"
        lost = await wait_bert(client, caller, "mod_bert::lost_sync")
        assert lost.get("sync_lost_percent") == "100.000000"
        assert await client.api(f"uuid_audio {callee} stop") == "+OK\n"
        await wait_bert(client, caller, "mod_bert::in_sync", count=2)


async def test_bert_needs_ulaw() -> None:
    async with with_node() as sim:
        client = sim.client
        job = await client.bgapi("originate {origination_uuid=lb}loopback/9999/switchy &park()")
        assert await client.job(job) == "+OK lb\n"
        await start_bert(client, "lb")
        done = await client.wait_event("CHANNEL_EXECUTE_COMPLETE", "lb")
        assert done.get("Application") == "bert_test"  # L16 loopback legs: nothing to test
