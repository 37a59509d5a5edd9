"""Cluster services: serving every node, node faults, stopping, and ``switchy serve``."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from switchy import Client, Session, event_callback, handler
from switchy.apps.blockers import CalleeBlockOnInvite
from switchy.esl.connection import ReconnectPolicy
from switchy.esl.protocol import Event
from switchy.models import Job
from switchy.service import Service, resolve_app, serve_command
from switchy.sim.cluster import Cluster
from switchy.sim.pytest_plugin import FreeSwitchTarget, SimulatorHandle

from .helpers import TIMEOUT, until

FAST_RECONNECT = ReconnectPolicy(initial=0.05, maximum=0.2)


class Answer:
    """The callee answers."""

    @event_callback("CHANNEL_PARK")
    def on_park(self, session: Session) -> None:
        if session.is_inbound() and not session.answered:
            session.answer()


class Counting:
    """Counts its loads and teardowns, and the channels created on its node."""

    loads = 0
    teardowns = 0

    def __init__(self) -> None:
        self.created = 0

    def prepost(self) -> Iterator[None]:
        Counting.loads += 1
        yield
        Counting.teardowns += 1

    @handler("CHANNEL_CREATE")
    def on_create(self, event: Event) -> None:
        self.created += 1


async def dial(caller: Client, sip_address: str, number: str = "1000") -> Job:
    """A call from ``caller``'s node to ``sip_address``; the job once answered or failed."""
    job = await caller.originate(f"{number}@{sip_address}", timeout=5)
    await asyncio.wait_for(asyncio.gather(job, return_exceptions=True), TIMEOUT)
    return job


@pytest.fixture
async def caller(fs: FreeSwitchTarget) -> AsyncIterator[Client]:
    async with Client(fs.host, fs.port, fs.password) as client:
        yield client


async def test_a_service_serves_its_apps_on_every_node(
    fs_simulator: Callable[..., SimulatorHandle],
) -> None:
    targets = fs_simulator(nodes=2).targets
    service = Service([t.address for t in targets], reconnect=False)
    assert service.apps.load_app(CalleeBlockOnInvite, response=404) == "default"
    assert service.state == "idle"
    await service.start()
    try:
        assert service.state == "serving"
        assert [node.state for node in service.nodes] == ["up", "up"]
        blockers = [client.apps.CalleeBlockOnInvite for client in service.clients]
        assert blockers[0] is not blockers[1]  # a class: one instance per node
        async with Client(targets[0].host, targets[0].port) as caller:
            for target in targets:
                assert (await dial(caller, target.sip_address)).cause == "UNALLOCATED_NUMBER"
        assert service.count_calls() == 0
        assert "serving" in repr(service)
    finally:
        await service.stop()
    assert service.state == "stopped"
    assert all(not client.connected for client in service.clients)


async def test_serve_runs_until_stopped_and_apps_tear_down(fs: FreeSwitchTarget) -> None:
    Counting.loads = Counting.teardowns = 0
    service = Service([fs.address], fs.password, reconnect=False)
    service.apps.load_app(Counting, app_id="counting")
    serving = asyncio.ensure_future(service.serve())
    await service.wait_until(lambda: service.state == "serving", TIMEOUT)
    assert Counting.loads == 1
    assert not serving.done()
    await service.stop()
    await asyncio.wait_for(serving, TIMEOUT)
    assert Counting.teardowns == 1
    with pytest.raises(RuntimeError, match="starts once"):
        await service.start()
    with pytest.raises(RuntimeError, match="stopped"):
        service.apps.load_app(Answer)


async def test_apps_load_while_serving_and_unload(fs: FreeSwitchTarget, caller: Client) -> None:
    service = Service([fs.address], fs.password, reconnect=False)
    await service.start()
    try:
        service.apps.load_app(CalleeBlockOnInvite)
        client = service.clients[0]
        await service.wait_until(lambda: "default" in client.app_ids, TIMEOUT)
        assert (await dial(caller, fs.sip_address)).cause == "USER_BUSY"
        service.apps.unload_app("default")
        assert service.apps.app_ids == []
        await service.wait_until(lambda: "default" not in client.app_ids, TIMEOUT)
    finally:
        await service.stop()


async def test_an_unreachable_node_fails_the_start(unused_tcp_port: int) -> None:
    service = Service([f"127.0.0.1:{unused_tcp_port}"])
    with pytest.raises(ConnectionError, match=f"127.0.0.1:{unused_tcp_port}"):
        await service.start()
    assert service.state == "stopped"


async def crash_second(cluster: Cluster) -> None:
    cluster.nodes[1].node.crash()


async def restart_second(cluster: Cluster) -> None:
    await cluster.nodes[1].node.restart()


async def wait_shutdown_of_second(cluster: Cluster) -> None:
    await cluster.nodes[1].node.wait_shutdown()


@pytest.mark.parametrize("fault", ["crash", "shutdown"])
async def test_a_lost_node_is_reconnected_while_the_others_serve(
    fs_simulator: Callable[..., SimulatorHandle], caplog: pytest.LogCaptureFixture, fault: str
) -> None:
    caplog.set_level(logging.INFO)
    simulator = fs_simulator(nodes=2)
    first, second = simulator.targets
    service = Service([first.address, second.address], reconnect=FAST_RECONNECT)
    service.apps.load_app(CalleeBlockOnInvite)
    await service.start()
    lost = service.nodes[1]
    try:
        async with Client(first.host, first.port) as caller:
            if fault == "crash":
                await asyncio.to_thread(simulator.call, crash_second)
            else:
                await lost.client.api("fsctl shutdown")
                await asyncio.to_thread(simulator.call, wait_shutdown_of_second)
            await service.wait_until(lambda: lost.state == "lost", TIMEOUT)
            assert service.nodes[0].state == "up"
            # The other node still serves.
            assert (await dial(caller, first.sip_address)).cause == "USER_BUSY"
            # Loaded while the node is away: it gets it when back.
            service.apps.load_app(Counting, app_id="counting")
            await service.wait_until(lambda: "counting" in service.clients[0].app_ids, TIMEOUT)
            assert "counting" not in lost.client.app_ids
            await asyncio.to_thread(simulator.call, restart_second)
            await service.wait_until(
                lambda: lost.state == "up" and "counting" in lost.client.app_ids, TIMEOUT
            )
            assert lost.losses == 1
            # Back, with its apps: the old one and the one loaded meanwhile.
            assert (await dial(caller, second.sip_address)).cause == "USER_BUSY"
            counting = lost.client.apps.Counting
            assert isinstance(counting, Counting) and counting.created == 1
    finally:
        await service.stop()
    messages = caplog.text
    assert f"{second.address}: connected" in messages
    assert f"{second.address}: lost" in messages
    assert f"{second.address}: back" in messages


async def test_stopping_refuses_new_calls_and_drains_existing_ones(
    fs: FreeSwitchTarget, caller: Client
) -> None:
    service = Service([fs.address], fs.password, reconnect=False)
    service.apps.load_app(Answer)
    await service.start()
    existing = await dial(caller, fs.sip_address, "existing")
    assert existing.successful()
    stopping = asyncio.ensure_future(service.stop(drain=TIMEOUT * 3))
    await service.wait_until(lambda: service.state == "stopping", TIMEOUT)
    refused = await dial(caller, fs.sip_address, "new")
    assert refused.cause == "NORMAL_TEMPORARY_FAILURE"  # a 503
    assert not stopping.done()
    session = existing.session
    assert session is not None and not session.hungup  # left alone
    await session.hangup()
    await asyncio.wait_for(stopping, TIMEOUT)
    assert service.state == "stopped"
    await until(caller, caller.tracker.is_idle)
    assert caller.tracker.hangup_causes["MANAGER_REQUEST"] == 0


async def test_stopping_with_hangup_ends_the_calls(fs: FreeSwitchTarget, caller: Client) -> None:
    service = Service([fs.address], fs.password, reconnect=False)
    service.apps.load_app(Answer)
    serving = asyncio.ensure_future(service.serve())
    await service.wait_until(lambda: service.state == "serving", TIMEOUT)
    assert (await dial(caller, fs.sip_address)).successful()
    await service.stop(hangup=True)
    await asyncio.wait_for(serving, TIMEOUT)
    await until(caller, caller.tracker.is_idle)
    assert caller.tracker.hangup_causes["MANAGER_REQUEST"] >= 1


async def test_a_second_stop_with_hangup_cuts_the_drain_short(
    fs: FreeSwitchTarget, caller: Client
) -> None:
    service = Service([fs.address], fs.password, reconnect=False)
    service.apps.load_app(Answer)
    await service.start()
    assert (await dial(caller, fs.sip_address)).successful()
    draining = asyncio.ensure_future(service.stop(drain=600))
    await service.wait_until(lambda: service.state == "stopping", TIMEOUT)
    await asyncio.wait_for(service.stop(hangup=True), TIMEOUT)
    assert draining.done()
    await until(caller, caller.tracker.is_idle)
    assert caller.tracker.hangup_causes["MANAGER_REQUEST"] >= 1


# -- switchy serve -------------------------------------------------------------------------
def test_app_specs_resolve_to_apps_and_keywords(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert resolve_app("CalleeBlockOnInvite,response=404") == (
        CalleeBlockOnInvite,
        {"response": 404},
    )
    (tmp_path / "my_dialplan.py").write_text(
        "from switchy.apps.routers import Router\nrouter = Router()\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    app, kwargs = resolve_app("my_dialplan:router,default=404,flag=true")
    assert type(app).__name__ == "Router"
    assert kwargs == {"default": 404, "flag": True}
    for spec, message in [
        ("NoSuchApp", "known apps: .*TonePlay"),
        ("no_such_module:thing", "cannot import 'no_such_module'"),
        ("my_dialplan:nothing", "has no 'nothing'"),
        ("TonePlay,oops", "'oops' is not key=value"),
        (":Name", "expected module:Name"),
    ]:
        with pytest.raises(ValueError, match=message):
            resolve_app(spec)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["127.0.0.1:1", "--app", "NoSuchApp"], "no app named 'NoSuchApp'; known apps:"),
        (["127.0.0.1:1", "--app", "TonePlay"], "127.0.0.1:1"),
        (["127.0.0.1:notaport", "--app", "TonePlay"], "not HOST[:PORT]"),
    ],
)
def test_serve_errors_are_one_line(args: list[str], message: str) -> None:
    result = CliRunner().invoke(serve_command, args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.output


def test_serve_reports_an_app_that_cannot_load(fs: FreeSwitchTarget) -> None:
    result = CliRunner().invoke(
        serve_command, [fs.address, "--app", "CalleeBlockOnInvite,nonsense=1"]
    )
    assert result.exit_code == 2
    assert "unexpected keyword arguments: nonsense" in result.output


SERVE = textwrap.dedent(
    """
    import sys
    from switchy.service import serve_command
    serve_command(sys.argv[1:])
    """
)


def test_switchy_serve_serves_until_interrupted(fs: FreeSwitchTarget) -> None:
    environment = {**os.environ, "SWITCHY_PASSWORD": fs.password}
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE, fs.address, "--app", "CalleeBlockOnInvite,response=404"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith(f"switchy: serving CalleeBlockOnInvite on {fs.address}"), line

        async def check() -> None:
            async with Client(fs.host, fs.port, fs.password) as caller:
                assert (await dial(caller, fs.sip_address)).cause == "UNALLOCATED_NUMBER"

        asyncio.run(check())
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert "switchy: stopped" in out
