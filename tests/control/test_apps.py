"""Call apps: marks, the registry, loading and unloading."""

from __future__ import annotations

import asyncio
import types
from collections.abc import AsyncIterator, Callable, Iterator
from typing import ClassVar

import pytest

import switchy.apps
from switchy import Client, Session, app, event_callback, handler
from switchy.errors import ConfigurationError
from switchy.esl.protocol import Event
from switchy.marks import collect
from switchy.models import send
from switchy.sim.pytest_plugin import FreeSwitchTarget, SimulatorHandle
from switchy.tracking import Tracker

TIMEOUT = 10.0


@pytest.fixture
async def client(fs: FreeSwitchTarget) -> AsyncIterator[Client]:
    async with Client(fs.host, fs.port, fs.password) as client:
        yield client


class Answerer:
    """Answers inbound legs on park and counts what it sees."""

    def __init__(self, greeting: str = "hi") -> None:
        self.greeting = greeting
        self.seen: list[tuple[str, str]] = []
        self.heartbeats = 0
        self.jobs: list[str] = []

    @event_callback("CHANNEL_PARK")
    def on_park(self, session: Session) -> None:
        self.seen.append(("park", session.direction))
        if session.is_inbound():
            session.answer()

    @event_callback("CHANNEL_ANSWER", "CHANNEL_HANGUP")
    def on_answer_or_hangup(self, session: Session) -> None:
        self.seen.append((session.last_event.name, session.direction))

    @handler("BACKGROUND_JOB")
    async def on_job(self, event: Event) -> None:
        self.jobs.append(event.job_uuid or "")


def test_marks_are_collected_in_definition_order() -> None:
    marks = collect(Answerer())
    assert [(kind, name) for kind, name, _ in marks] == [
        ("callback", "CHANNEL_PARK"),
        ("callback", "CHANNEL_ANSWER"),
        ("callback", "CHANNEL_HANGUP"),
        ("handler", "BACKGROUND_JOB"),
    ]
    module = types.ModuleType("an_app_module")

    @event_callback("CHANNEL_ANSWER")
    def on_answer(session: Session) -> None: ...

    module.on_answer = on_answer  # type: ignore[attr-defined]
    assert [(kind, name) for kind, name, _ in collect(module)] == [("callback", "CHANNEL_ANSWER")]
    with pytest.raises(TypeError, match="event name"):
        event_callback()
    with pytest.raises(TypeError, match="event name"):
        handler("TWO WORDS")


def test_registry_discovers_apps_by_name() -> None:
    assert switchy.apps.get("TonePlay").__name__ == "TonePlay"
    with pytest.raises(KeyError, match=r"known apps: .*TonePlay"):
        switchy.apps.get("NoSuchApp")

    @app("registry-test-app")
    class Registered:
        """A test app."""

        @event_callback("CHANNEL_ANSWER")
        def on_answer(self, session: Session) -> None: ...

    assert switchy.apps.get("registry-test-app") is Registered
    assert ("registry-test-app", Registered) in list(switchy.apps.iterapps())
    assert switchy.apps.app_name(Registered) == "registry-test-app"
    assert switchy.apps.app_name(Registered()) == "registry-test-app"
    groups = switchy.apps.groupbymod()
    assert ("TonePlay", switchy.apps.get("TonePlay")) in groups["switchy.apps.players"]
    with pytest.raises(ValueError, match="already registered"):
        app(name="TonePlay")(Registered)


async def test_callbacks_and_handlers_run_for_their_app(
    client: Client, fs: FreeSwitchTarget
) -> None:
    app_id = await client.load_app(Answerer, greeting="hello")
    assert app_id == "Answerer"
    answerer = client.apps.Answerer
    assert isinstance(answerer, Answerer)
    assert answerer.greeting == "hello"
    assert {"CHANNEL_PARK", "BACKGROUND_JOB"} <= set(client.events.subscriptions)
    job = await client.originate(f"apps@{fs.sip_address}", app_id=app_id, timeout=5)
    uuid = await asyncio.wait_for(job, TIMEOUT)
    tracker = client.tracker
    await tracker.wait_for(lambda: job.uuid in answerer.jobs, TIMEOUT)
    await tracker.sessions[uuid].hangup()
    await tracker.wait_for(tracker.is_idle, TIMEOUT)
    assert ("park", "inbound") in answerer.seen
    assert ("CHANNEL_ANSWER", "inbound") in answerer.seen
    assert ("CHANNEL_ANSWER", "outbound") in answerer.seen
    assert ("CHANNEL_HANGUP", "outbound") in answerer.seen


async def test_sessions_of_other_apps_are_not_dispatched(
    client: Client, fs: FreeSwitchTarget
) -> None:
    await client.load_app(Answerer, app_id="one")
    await client.load_app(Answerer, app_id="two")
    first = client.apps.Answerer  # the last loaded instance under that name
    job = await client.originate(f"other@{fs.sip_address}", app_id="one", timeout=5)
    uuid = await asyncio.wait_for(job, TIMEOUT)
    await client.tracker.sessions[uuid].hangup()
    await client.tracker.wait_for(client.tracker.is_idle, TIMEOUT)
    assert isinstance(first, Answerer)
    assert first.seen == []  # "two" saw nothing of the call of "one"


class WithPrepost:
    instances: ClassVar[list[WithPrepost]] = []

    def __init__(self) -> None:
        self.log: list[str] = []
        WithPrepost.instances.append(self)

    def prepost(self, client: Client, tracker: Tracker, rate: int) -> Iterator[None]:
        assert tracker is client.tracker
        self.log.append(f"setup rate={rate}")
        yield
        self.log.append("teardown")

    @event_callback("CHANNEL_ANSWER")
    def on_answer(self, session: Session) -> None: ...


async def test_prepost_gets_its_parameters_and_tears_down_at_unload(client: Client) -> None:
    app_id = await client.load_app(WithPrepost, rate=5)
    instance = WithPrepost.instances[-1]
    assert instance.log == ["setup rate=5"]
    await client.unload_app(app_id)
    assert instance.log == ["setup rate=5", "teardown"]
    assert client.app_ids == []
    assert "WithPrepost" not in client.apps


class FailingPrepost:
    def prepost(self) -> None:
        raise RuntimeError("cannot set up")

    @event_callback("CHANNEL_EXECUTE")
    def on_execute(self, session: Session) -> None: ...


async def test_loading_is_atomic(client: Client) -> None:
    before = set(client.events.subscriptions)
    with pytest.raises(RuntimeError, match="cannot set up"):
        await client.load_app(FailingPrepost)
    with pytest.raises(TypeError, match="unexpected keyword"):
        await client.load_app(Answerer, nonsense=1)
    with pytest.raises(TypeError, match="needs rate"):
        await client.load_app(WithPrepost)
    with pytest.raises(ConfigurationError, match="no @event_callback"):
        await client.load_app(object())
    assert client.tracker.apps == []
    assert client.app_ids == []
    assert len(client.apps) == 0
    assert set(client.events.subscriptions) == before


async def test_apps_sharing_an_id_run_in_load_order(client: Client, fs: FreeSwitchTarget) -> None:
    order: list[str] = []

    class First:
        @event_callback("CHANNEL_ANSWER")
        def on_answer(self, session: Session) -> None:
            order.append("first")

    class Second:
        @event_callback("CHANNEL_ANSWER")
        def on_answer(self, session: Session) -> None:
            order.append("second")

    class Zeroth:
        @event_callback("CHANNEL_ANSWER")
        def on_answer(self, session: Session) -> None:
            order.append("zeroth")

    await client.load_app(Answerer, app_id="shared")
    await client.load_app(First, app_id="shared")
    await client.load_app(Second, app_id="shared")
    await client.load_app(Zeroth, app_id="shared", prepend=True)
    job = await client.originate(f"order@{fs.sip_address}", app_id="shared", timeout=5)
    uuid = await asyncio.wait_for(job, TIMEOUT)
    await client.tracker.wait_for(lambda: len(order) >= 6, TIMEOUT)
    assert order[:3] == ["zeroth", "first", "second"]
    await client.tracker.sessions[uuid].hangup()
    await client.tracker.wait_for(client.tracker.is_idle, TIMEOUT)
    await client.unload_app("shared")
    assert client.tracker.apps == []


async def test_a_custom_app_header_routes_sessions(client: Client, fs: FreeSwitchTarget) -> None:
    seen: list[str] = []

    class ByDestination:
        @event_callback("CHANNEL_PARK")
        def on_park(self, session: Session) -> None:
            seen.append(session.direction)
            session.hangup()

    await client.load_app(ByDestination, app_id="routed", header="Caller-Destination-Number")
    job = await client.originate(f"routed@{fs.sip_address}", timeout=5)
    with pytest.raises(Exception, match="job"):
        await asyncio.wait_for(job, TIMEOUT)
    await client.tracker.wait_for(client.tracker.is_idle, TIMEOUT)
    assert "inbound" in seen


async def test_blocking_calls_from_the_loop_thread_are_refused(
    client: Client, fs: FreeSwitchTarget
) -> None:
    job = await client.originate(f"pending@{fs.sip_address}", timeout=5)  # parks unanswered
    with pytest.raises(RuntimeError, match="await"):
        job.get(1)
    with pytest.raises(RuntimeError, match="await"):
        job.wait(1)
    pending = send(asyncio.get_running_loop(), client.connection.api, "status")
    with pytest.raises(RuntimeError, match="await"):
        pending.result(1)
    assert (await pending).startswith("UP ")
    await client.tracker.wait_for(lambda: job.session is not None, TIMEOUT)
    assert job.session is not None
    await job.session.hangup()
    with pytest.raises(Exception, match="job"):
        await asyncio.wait_for(job, TIMEOUT)
    await client.tracker.wait_for(client.tracker.is_idle, TIMEOUT)


async def test_custom_events_reach_callbacks_by_subclass(
    fs_simulator: Callable[..., SimulatorHandle],
) -> None:
    target = fs_simulator().targets[0]
    seen: list[str] = []

    class Subclassed:
        """Both legs run mod_bert, which fires CUSTOM mod_bert::in_sync once in sync."""

        @event_callback("CHANNEL_PARK")
        def on_park(self, session: Session) -> None:
            if session.is_inbound():
                session.execute("bert_test")

        @event_callback("CHANNEL_ANSWER")
        def on_answer(self, session: Session) -> None:
            if session.is_outbound():
                session.execute("bert_test")

        @event_callback("mod_bert::in_sync")
        def on_sync(self, session: Session) -> None:
            seen.append(session.direction)

        @handler("mod_bert::in_sync")
        def on_sync_event(self, event: Event) -> None:
            seen.append(event.subclass or "")

    async with Client(target.host, target.port) as client:
        await client.load_app(Subclassed, app_id="default")
        assert "mod_bert::in_sync" in client.events.subscriptions
        await client.originate(f"bert@{target.sip_address}", timeout=5)
        await client.tracker.wait_for(lambda: len(seen) >= 2, TIMEOUT)
        assert "inbound" in seen
        assert "mod_bert::in_sync" in seen
        await client.api("hupall")


async def test_an_unknown_stamped_app_id_falls_back_to_the_default_app(
    client: Client, fs: FreeSwitchTarget
) -> None:
    parked: list[str] = []

    class Default:
        @event_callback("CHANNEL_PARK")
        def on_park(self, session: Session) -> None:
            parked.append(session.app_id)
            session.hangup()

    await client.load_app(Default, app_id="default")
    job = await client.originate(f"stamped@{fs.sip_address}", app_id="NotLoadedHere", timeout=5)
    with pytest.raises(Exception, match="job"):
        await asyncio.wait_for(job, TIMEOUT)
    await client.tracker.wait_for(client.tracker.is_idle, TIMEOUT)
    assert "NotLoadedHere" in parked
