"""A FreeSWITCH node goes away mid-run: the generator and the tracker keep their footing."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable

from switchy import Client, Session, event_callback
from switchy.esl.connection import ReconnectPolicy
from switchy.loadgen import Originator
from switchy.measure.cdr import ANSWERED, BLOCKED, NODE_LOST, CallRecord
from switchy.pool import Pool
from switchy.sim.cluster import Cluster
from switchy.sim.pytest_plugin import SimulatorHandle
from switchy.sim.server import ESLServer
from switchy.sim.sofia import SipNetwork
from switchy.sim.switch import Node

TIMEOUT = 30.0
FAST_RECONNECT = ReconnectPolicy(initial=0.05, maximum=0.2)


class Answer:
    @event_callback("CHANNEL_PARK")
    def on_park(self, session: Session) -> None:
        if session.is_inbound():
            session.answer()


async def crash(cluster: Cluster) -> None:
    cluster.nodes[0].node.crash()


async def restart(cluster: Cluster) -> None:
    await cluster.nodes[0].node.restart()


async def generator_on(
    simulator: SimulatorHandle, **settings: object
) -> tuple[Originator, list[CallRecord], Pool]:
    targets = simulator.targets
    pool = Pool.from_contacts([(t.host, t.port) for t in targets], reconnect=FAST_RECONNECT)
    await pool.connect()
    sip = {client: target.sip_address for client, target in zip(pool, targets, strict=True)}
    records: list[CallRecord] = []
    generator = Originator(pool, on_record=[records.append], **settings)  # type: ignore[arg-type]
    generator.set_orig_cmd(lambda client: {"dest_url": f"loss@{sip[client]}", "timeout": 10})
    await generator.load_app(Answer)
    return generator, records, pool


async def until(predicate: Callable[[], bool], pool: Pool) -> None:
    """Wait, event by event on the surviving node, until ``predicate()`` holds."""
    await pool.clients[1].tracker.wait_for(predicate, TIMEOUT)


async def test_a_crashed_node_costs_its_calls_and_comes_back(
    fs_simulator: Callable[..., SimulatorHandle],
) -> None:
    simulator = fs_simulator(nodes=2, rtp_timeout=0.5)
    generator, records, pool = await generator_on(
        simulator, rate=40, limit=100, duration=1.0, node_choice="round-robin"
    )
    lost_node = pool.clients[0].address
    await generator.start()
    await until(lambda: generator.answered + generator.active_calls >= 20, pool)
    up_on_lost = generator.calls_by_node.get(lost_node, 0)
    assert up_on_lost > 0
    simulator.call(crash)
    await until(lambda: len(generator.node_losses) == 1, pool)
    loss = generator.node_losses[0]
    assert loss.node == lost_node
    assert loss.calls_lost == up_on_lost
    assert generator.state == "ORIGINATING"  # carries on with the other node
    offered_while_down = generator.offered
    await until(lambda: generator.offered >= offered_while_down + 10, pool)
    simulator.call(restart)
    await until(lambda: loss.back_at is not None, pool)
    assert loss.seconds_down is not None and loss.seconds_down > 0
    # Offering resumes on the node that came back.
    back = generator.attempted
    await until(lambda: generator.attempted >= back + 20, pool)
    await generator.hupall()
    await generator.waitwhile(timeout=TIMEOUT)
    await pool.disconnect()
    lost = [r for r in records if r.failure_cause == NODE_LOST]
    assert len(lost) == up_on_lost
    assert {r.node for r in lost} == {lost_node}
    assert sorted(r.offered_index for r in records) == list(range(generator.offered))
    after_return = [r for r in records if r.request_time and r.request_time > (loss.back_at or 0)]
    assert {r.node for r in after_return} == {lost_node, pool.clients[1].address}
    outcomes = Counter(r.outcome for r in records)
    assert outcomes[ANSWERED] + outcomes[BLOCKED] + len(lost) <= len(records)


async def test_stop_on_node_loss_fails_the_run(
    fs_simulator: Callable[..., SimulatorHandle],
) -> None:
    simulator = fs_simulator(nodes=2)
    generator, records, pool = await generator_on(
        simulator, rate=50, limit=20, duration=60, on_node_loss="stop"
    )
    await generator.start()
    await until(lambda: generator.active_calls >= 4, pool)
    simulator.call(crash)
    # Not until(): once stopped, the surviving node may send no further event.
    await generator.waitwhile("STOPPED", timeout=TIMEOUT)
    assert generator.failure is not None
    assert pool.clients[0].address in (generator.failure or "")
    await generator.hupall()
    await generator.waitwhile(timeout=TIMEOUT)
    await pool.disconnect()
    assert len(records) == generator.offered


async def test_the_tracker_reconciles_after_a_reconnect(
    fs_simulator: Callable[..., SimulatorHandle],
) -> None:
    simulator = fs_simulator(nodes=1)
    target = simulator.targets[0]
    back = asyncio.Event()
    async with Client(
        target.host, target.port, reconnect=ReconnectPolicy(initial=0.3, maximum=0.3)
    ) as client:
        client.on_back(back.set)
        tracker = client.tracker
        # Two parked calls the tracker follows.
        jobs = [
            await client.originate(f"keep{i}@{target.sip_address}", timeout=30) for i in range(2)
        ]
        await tracker.wait_for(lambda: tracker.count_sessions() == 4, TIMEOUT)
        kept, ended = (job.sess_uuid for job in jobs)
        new_call = f"{{originate_timeout=30}}sofia/external/new@{target.sip_address} &park()"
        calls: list[asyncio.Future[str]] = []

        async def drop_then_change(cluster: Cluster) -> None:
            node = cluster.nodes[0].node
            cluster.nodes[0].server.drop_connections()
            # While the client is away: one call ends and a new one starts.
            await node.execute_api("uuid_kill", str(ended))
            # originate runs until the call is answered: let it run in the simulator.
            calls.append(asyncio.ensure_future(node.execute_api("originate", new_call)))

        simulator.call(drop_then_change)
        await asyncio.wait_for(back.wait(), TIMEOUT)
        assert kept in tracker.sessions
        assert ended not in tracker.sessions
        assert tracker.unknown_channels == 2  # the new call's two legs
        assert tracker.count_calls() == 1
        await client.api("hupall")


async def test_being_dropped_for_reading_too_slowly_fails_the_run() -> None:
    node = Node(network=SipNetwork())
    async with ESLServer(node, event_queue_size=5, max_lost_events=3) as server:
        pool = Pool.from_contacts([(server.host, server.port)])
        await pool.connect()
        generator = Originator(pool, rate=1, limit=1, duration=1)
        generator.set_orig_cmd(dest_url="nobody@127.0.0.1:5999")
        await generator.load_app(Answer)
        await generator.start()
        # More events at once than this listener's queue holds: FreeSWITCH drops it.
        for _ in range(9):
            node.fire(node.events.create("BACKGROUND_JOB", ("mod_event_socket.c", "api_exec", 1)))
        await generator.waitwhile(lambda: generator.failure is None, timeout=TIMEOUT)
        assert "killed listener because of lost events" in (generator.failure or "")
        assert generator.state == "STOPPED"
        await pool.disconnect()
    await node.close()
