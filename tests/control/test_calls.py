"""The original switchy's call tests, on the simulator or a real FreeSWITCH (--fshost)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable

import pytest

from switchy import Client, Session, event_callback, sync_caller
from switchy.apps.players import TonePlay
from switchy.errors import APIError, ConnectionLost
from switchy.models import Job
from switchy.sim.cluster import Cluster
from switchy.sim.pytest_plugin import FreeSwitchTarget, SimulatorHandle
from switchy.tracking import Tracker

TIMEOUT = 10.0


def assert_empty(tracker: Tracker) -> None:
    assert tracker.sessions == {}
    assert tracker.calls == {}
    assert tracker.jobs == {}
    assert tracker.is_idle()


def test_toneplay_through_sync_caller(fs: FreeSwitchTarget) -> None:
    with sync_caller(fs.host, fs.port, fs.password, apps={"TonePlay": TonePlay}) as caller:
        assert "TonePlay" in caller.app_names
        sess, waitfor = caller(f"doggy@{fs.sip_address}", "TonePlay", timeout=5)
        assert sess.is_outbound()
        assert sess.answered
        client = caller.client
        assert client.count_calls() == 1
        peer = sess.call.get_peer(sess) if sess.call else None
        assert peer is not None and peer.is_inbound()
        sess.hangup().result(TIMEOUT)
        client.wait_for(lambda: client.count_calls() == 0, TIMEOUT)
        assert_empty(client.tracker)
        assert callable(waitfor)


async def test_toneplay_plays_on_the_caller_and_echoes_on_the_callee(
    fs: FreeSwitchTarget, client: Client
) -> None:
    await client.load_app(TonePlay)
    tracker = client.tracker
    job = await client.originate(f"doggy@{fs.sip_address}", app_id="TonePlay", timeout=5)
    uuid = await asyncio.wait_for(job, TIMEOUT)
    caller = tracker.sessions[uuid]
    assert caller.job is job and job.session is caller
    callee = caller.call.get_peer(caller) if caller.call else None
    assert callee is not None
    await asyncio.wait_for(callee.recv("CHANNEL_ANSWER", past=True), TIMEOUT)
    assert callee.answered and callee.app_id == "TonePlay"
    await caller.hangup()
    await tracker.wait_for(tracker.is_idle, TIMEOUT)
    assert tracker.hangup_causes["NORMAL_CLEARING"] == 2
    assert tracker.answered_total == 2


async def test_alternate_call_tracking_header(fs: FreeSwitchTarget) -> None:
    async with Client(
        fs.host, fs.port, fs.password, call_tracking_header="Caller-Destination-Number"
    ) as client:
        await client.load_app(TonePlay)
        job = await client.originate(f"doggy@{fs.sip_address}", app_id="TonePlay", timeout=5)
        uuid = await asyncio.wait_for(job, TIMEOUT)
        tracker = client.tracker
        # Both legs dialled "doggy": one call, indexed by the dialled user.
        await tracker.wait_for(lambda: len(tracker.calls.get("doggy", ())) == 2, TIMEOUT)
        call = tracker.calls["doggy"]
        assert list(tracker.calls) == ["doggy"]
        assert call.first is tracker.sessions[uuid]
        assert call.last.is_inbound()
        call.hangup()
        await tracker.wait_for(tracker.is_idle, TIMEOUT)
        assert_empty(tracker)


async def test_nonsense_tracking_header_gives_one_call_per_session(fs: FreeSwitchTarget) -> None:
    async with Client(fs.host, fs.port, fs.password, call_tracking_header="doggypants") as client:
        await client.load_app(TonePlay)
        job = await client.originate(f"jonesy@{fs.sip_address}", app_id="TonePlay", timeout=5)
        uuid = await asyncio.wait_for(job, TIMEOUT)
        tracker = client.tracker
        await tracker.wait_for(lambda: tracker.count_sessions() == 2, TIMEOUT)
        assert tracker.count_sessions() == tracker.count_calls() == 2
        assert set(tracker.calls) == set(tracker.sessions)
        await tracker.sessions[uuid].hangup()
        await tracker.wait_for(tracker.is_idle, TIMEOUT)
        assert_empty(tracker)


async def test_hangup_of_a_whole_call(fs: FreeSwitchTarget, client: Client) -> None:
    await client.load_app(TonePlay)
    job = await client.originate(f"hangme@{fs.sip_address}", app_id="TonePlay", timeout=5)
    uuid = await asyncio.wait_for(job, TIMEOUT)
    tracker = client.tracker
    await tracker.wait_for(lambda: tracker.count_sessions() == 2, TIMEOUT)
    call = tracker.sessions[uuid].call
    assert call is not None and len(call) == 2
    results = await asyncio.gather(*call.hangup("CALL_REJECTED"), return_exceptions=True)
    assert any(result == "+OK\n" for result in results)
    await tracker.wait_for(tracker.is_idle, TIMEOUT)
    assert tracker.count_calls() == 0


class Broken:
    """An app whose callback raises on every answer."""

    def __init__(self) -> None:
        self.answers = 0

    @event_callback("CHANNEL_ANSWER")
    def on_answer(self, session: Session) -> None:
        self.answers += 1
        raise RuntimeError("this app is broken")


class Counting:
    def __init__(self) -> None:
        self.answers = 0
        self.parks: list[str] = []

    @event_callback("CHANNEL_PARK")
    async def on_park(self, session: Session) -> None:
        self.parks.append(session.uuid)
        if session.is_inbound():
            await session.answer()

    @event_callback("CHANNEL_ANSWER")
    def on_answer(self, session: Session) -> None:
        self.answers += 1


async def test_sessions_end_with_their_hangup_when_nothing_later_is_asked_for(
    fs: FreeSwitchTarget, client: Client
) -> None:
    await client.load_app(TonePlay)  # CHANNEL_PARK and CHANNEL_ANSWER: both before a hangup
    assert "CHANNEL_DESTROY" not in client.events.subscriptions
    job = await client.originate(f"short@{fs.sip_address}", app_id="TonePlay", timeout=5)
    caller = client.tracker.sessions[await asyncio.wait_for(job, TIMEOUT)]
    await caller.hangup()
    await caller.recv("CHANNEL_HANGUP", TIMEOUT, past=True)
    assert caller.uuid not in client.tracker.sessions  # gone with the event that ended it
    await client.tracker.wait_for(client.tracker.is_idle, TIMEOUT)


class AfterHangup(Counting):
    """Also wants an event FreeSWITCH sends after a channel's hangup."""

    def __init__(self) -> None:
        super().__init__()
        self.completed: list[Session] = []

    @event_callback("CHANNEL_HANGUP_COMPLETE")
    def on_hangup_complete(self, session: Session) -> None:
        self.completed.append(session)


async def test_sessions_last_until_destroyed_for_an_app_with_later_events(
    fs: FreeSwitchTarget, client: Client
) -> None:
    app = AfterHangup()
    await client.load_app(app, app_id="after")
    assert "CHANNEL_DESTROY" in client.events.subscriptions
    job = await client.originate(f"later@{fs.sip_address}", app_id="after", timeout=5)
    tracker = client.tracker
    caller = tracker.sessions[await asyncio.wait_for(job, TIMEOUT)]
    await tracker.wait_for(lambda: tracker.count_sessions() == 2, TIMEOUT)
    legs = sorted(tracker.sessions)
    await caller.hangup()
    await tracker.wait_for(tracker.is_idle, TIMEOUT)
    assert sorted(session.uuid for session in app.completed) == legs


async def test_a_raising_callback_leaves_other_calls_and_apps_working(
    fs: FreeSwitchTarget, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    await client.load_app(TonePlay, app_id="broken-calls")
    await client.load_app(Broken, app_id="broken-calls")  # shares the id, runs after TonePlay
    await client.load_app(Counting, app_id="counting")
    broken, counting = client.apps["Broken"], client.apps["Counting"]
    assert isinstance(broken, Broken) and isinstance(counting, Counting)
    sip = fs.sip_address
    jobs = [
        await client.originate(f"b{i}@{sip}", app_id="broken-calls", timeout=5) for i in range(3)
    ]
    jobs += [await client.originate(f"c{i}@{sip}", app_id="counting", timeout=5) for i in range(3)]
    await asyncio.wait_for(asyncio.gather(*jobs), TIMEOUT)
    tracker = client.tracker
    await tracker.wait_for(lambda: counting.answers == 6 and broken.answers == 6, TIMEOUT)
    assert tracker.callback_errors["broken-calls"] == 6
    assert "this app is broken" in caplog.text
    assert tracker.callback_errors["counting"] == 0
    assert len(counting.parks) >= 3


async def test_two_hundred_concurrent_calls(fs: FreeSwitchTarget, client: Client) -> None:
    await client.load_app(Counting, app_id="load")
    tracker = client.tracker
    sip = fs.sip_address
    jobs = await asyncio.gather(
        *(client.originate(f"user{i}@{sip}", app_id="load", timeout=20) for i in range(200))
    )
    uuids = await asyncio.wait_for(asyncio.gather(*jobs), 60)
    assert len(set(uuids)) == 200
    await tracker.wait_for(lambda: tracker.count_sessions() == 400, 30)
    assert tracker.count_calls() == 200
    assert all(len(call) == 2 for call in tracker.calls.values())
    assert tracker.originated_total == 200
    await client.hupall("load")
    await tracker.wait_for(tracker.is_idle, 30)
    assert_empty(tracker)
    assert tracker.answered_total == 400
    assert tracker.hangup_causes.total() == 400


async def test_a_failed_originate_carries_its_cause(client: Client) -> None:
    job = await client.originate("user_busy", endpoint="error", timeout=5)
    with pytest.raises(APIError) as failure:
        await asyncio.wait_for(job, TIMEOUT)
    assert failure.value.cause == "USER_BUSY"
    assert job.done()
    assert not job.successful()
    assert job.cause == failure.value.cause
    await client.tracker.wait_for(client.tracker.is_idle, TIMEOUT)
    assert client.tracker.failed_jobs == 1


async def test_originate_nowait_fails_its_job_like_originate(client: Client) -> None:
    finished: list[Job] = []
    job = client.originate_nowait(
        "user_busy", endpoint="error", timeout=5, callback=finished.append
    )
    assert not job.done()  # sent, not yet taken
    with pytest.raises(APIError) as failure:
        await asyncio.wait_for(job, TIMEOUT)
    assert failure.value.cause == "USER_BUSY"
    # Taken and finished, in either order: the reply and the BACKGROUND_JOB event
    # travel over different connections.
    assert job.accept_time is not None and job.result_time is not None
    assert finished == [job]
    await client.tracker.wait_for(client.tracker.is_idle, TIMEOUT)
    assert client.tracker.jobs == {}


async def test_a_job_whose_reply_never_comes_fails_with_the_connection(
    fs_simulator: Callable[..., SimulatorHandle],
) -> None:
    simulator = fs_simulator()
    target = simulator.targets[0]

    async def stall(cluster: Cluster) -> None:
        cluster.nodes[0].server.stall_replies()

    async def drop(cluster: Cluster) -> None:
        cluster.nodes[0].server.drop_connections()

    async with Client(target.host, target.port, target.password) as client:
        finished: list[Job] = []
        simulator.call(stall)
        job = client.bgapi_nowait("status", callback=finished.append)
        simulator.call(drop)
        with pytest.raises(ConnectionLost):
            await asyncio.wait_for(job, TIMEOUT)
        assert job.accept_time is None
        assert finished == [job]
        assert client.tracker.jobs == {}


async def test_ended_calls_are_freed_without_the_garbage_collector(
    fs: FreeSwitchTarget, client: Client
) -> None:
    """No reference cycle keeps an ended call's sessions (and their event
    history) alive until a full collection: a long load test's memory stays flat."""
    await client.load_app(TonePlay)
    gc.collect()
    gc.disable()
    try:
        uuids: set[str] = set()
        for _ in range(5):
            job = await client.originate(f"freed@{fs.sip_address}", app_id="TonePlay", timeout=5)
            uuids.add(await asyncio.wait_for(job, TIMEOUT))
            assert job.session is not None and job.session.call is not None
            call = job.session.call
            peer = call.get_peer(job.session)
            assert peer is not None
            uuids.add(peer.uuid)
            await job.session.hangup()
        await client.tracker.wait_for(client.tracker.is_idle, TIMEOUT)
        del job, call, peer
        alive = [o for o in gc.get_objects() if isinstance(o, Session) and o.uuid in uuids]
        assert alive == []
    finally:
        gc.enable()


def test_a_call_under_uvloop(fs: FreeSwitchTarget) -> None:
    """switchy works on uvloop's event loop, whose transports are not asyncio's classes."""
    uvloop = pytest.importorskip("uvloop")

    async def call() -> None:
        async with Client(fs.host, fs.port, fs.password) as client:
            app = Counting()
            await client.load_app(app)
            job = await client.originate(f"uv@{fs.sip_address}", app_id="Counting", timeout=5)
            uuid = await asyncio.wait_for(job, TIMEOUT)
            tracker = client.tracker
            await tracker.wait_for(lambda: app.answers == 2, TIMEOUT)
            await tracker.sessions[uuid].hangup()
            await tracker.wait_for(tracker.is_idle, TIMEOUT)
            assert_empty(tracker)

    uvloop.run(call())
