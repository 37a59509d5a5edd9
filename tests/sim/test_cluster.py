"""Clusters of simulated nodes, and ``python -m switchy.sim``."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys

import pytest

from switchy.sim.cluster import Cluster
from tests.sim.traces import WAIT, EslClient


async def test_nodes_have_their_own_event_socket_and_sip_address() -> None:
    async with Cluster(3) as cluster:
        ports = {member.esl_port for member in cluster.nodes}
        addresses = {member.sip_address for member in cluster.nodes}
        assert len(ports) == len(addresses) == 3
        core_uuids = {member.node.identity.core_uuid for member in cluster.nodes}
        assert len(core_uuids) == 3
        # The SIP ports are held: nobody else on the host can take them.
        host, port = cluster.nodes[0].sip_address.split(":")
        with (
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other,
            pytest.raises(OSError, match="in use"),
        ):
            other.bind((host, int(port)))
        second = cluster.nodes[1]
        client = await EslClient.login(second.esl_host, second.esl_port)
        status = await client.api("sofia status profile external")
        assert f"URL              \tsip:mod_sofia@{second.sip_address}\n" in status
        await client.close()
    assert cluster.nodes == []


async def test_a_call_from_one_node_to_another() -> None:
    async with Cluster(2) as cluster:
        caller, callee = cluster.nodes
        a = await EslClient.login(caller.esl_host, caller.esl_port)
        b = await EslClient.login(callee.esl_host, callee.esl_port)
        for client in (a, b):
            await client.command("event plain ALL\n\n")
        job = await a.bgapi(
            f"originate {{origination_uuid=x1}}sofia/external/1000@{callee.sip_address} &park()"
        )
        park = await b.wait_event("CHANNEL_PARK")
        assert park.get("Call-Direction") == "inbound"
        assert park.get("Core-UUID") == callee.node.identity.core_uuid
        assert park.get("variable_sip_network_ip") == caller.sip_address.split(":")[0]
        assert all(event.uuid != park.uuid for event in a.events)
        assert await b.api(f"uuid_answer {park.uuid}") == "+OK\n"
        assert await a.job(job) == "+OK x1\n"
        assert await a.api("uuid_kill x1") == "+OK\n"
        hangup = await b.wait_event("CHANNEL_HANGUP_COMPLETE", park.uuid)
        assert hangup.get("variable_sip_hangup_disposition") == "recv_bye"
        assert await b.api("show channels count") == "\n0 total.\n"
        await a.close()
        await b.close()


async def test_node_knobs_apply_to_every_node() -> None:
    async with Cluster(2, answer_delay=0, password="secret") as cluster:
        caller, callee = cluster.nodes
        client = await EslClient.login(caller.esl_host, caller.esl_port, "secret")
        result = await client.api(f"originate sofia/external/1@{callee.sip_address} &park()")
        assert result.startswith("+OK ")
        assert callee.node.answer_delay == 0
        await client.close()


async def test_one_node_shutting_down_leaves_the_others_serving() -> None:
    async with Cluster(2) as cluster:
        first, second = cluster.nodes
        client = await EslClient.login(first.esl_host, first.esl_port)
        assert await client.api("fsctl shutdown") == "+OK\n"
        await first.node.wait_shutdown()
        await client.wait_for(lambda: client.closed)
        assert client.frames[-1].body == b"The system is being shut down.\n"
        other = await EslClient.login(second.esl_host, second.esl_port)
        assert await other.api("echo still here") == "still here"
        await other.close()
        await client.close()


async def test_the_command_line_runs_a_cluster_until_interrupted() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "switchy.sim",
        "--nodes",
        "2",
        "--password",
        "pw",
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    lines = [(await asyncio.wait_for(process.stdout.readline(), WAIT)).decode() for _ in range(2)]
    assert [line.split(":")[0] for line in lines] == ["node 1", "node 2"]
    esl_address = lines[1].split()[3]
    host, port = esl_address.split(":")
    client = await EslClient.login(host, int(port), "pw")
    assert await client.api("echo hi") == "hi"
    await client.close()
    process.send_signal(signal.SIGINT)
    assert await asyncio.wait_for(process.wait(), WAIT) == 0


async def test_the_command_line_sets_the_session_limits() -> None:
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "switchy.sim", "--sps", "5000", "--max-sessions", "300"),
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    line = (await asyncio.wait_for(process.stdout.readline(), WAIT)).decode()
    host, port = line.split()[3].split(":")
    client = await EslClient.login(host, int(port))
    status = await client.api("status")
    assert "out of max 5000," in status
    assert "300 session(s) max" in status
    await client.close()
    process.send_signal(signal.SIGINT)
    assert await asyncio.wait_for(process.wait(), WAIT) == 0


async def test_the_command_line_refuses_a_limit_below_one() -> None:
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "switchy.sim", "--sps", "0"),
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), WAIT)
    assert process.returncode == 2
    assert b"expected a positive number" in stderr
