"""What one FreeSWITCH node is doing, tracked from its events alone.

A :class:`Tracker` reads the events of one connection and keeps sessions (by
Unique-ID), calls (sessions grouped by a call-tracking header), background
jobs (by Job-UUID) and counters, then hands each event to the call apps it
concerns. Nothing outlives its channel: once every call has ended, every
collection is empty.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from switchy.conditions import Conditions
from switchy.errors import ConnectionLost
from switchy.esl.connection import Connection
from switchy.esl.protocol import Event
from switchy.models import DEFAULT_HISTORY, Call, Commander, Job, Session

__all__ = [
    "APP_HEADER",
    "APP_X_HEADER",
    "CALL_HEADER",
    "CALL_X_HEADER",
    "CORE_EVENTS",
    "DEFAULT_APP_ID",
    "ENDED_BY_HANGUP",
    "AppRecord",
    "Tracker",
]

log = logging.getLogger("switchy.tracking")

#: The SIP X-header (sent as ``X-switchy_app``) carrying a call's app id: both legs
#: see it as a channel variable, so both are handled by the app that originated.
APP_X_HEADER = "switchy_app"
APP_HEADER = f"variable_sip_h_X-{APP_X_HEADER}"
#: The SIP X-header carrying the originating session's uuid: it groups both legs
#: of a call looping through the device under test into one :class:`Call`.
CALL_X_HEADER = "originating_session_uuid"
CALL_HEADER = f"variable_sip_h_X-{CALL_X_HEADER}"
#: App id of sessions that carry no app id header.
DEFAULT_APP_ID = "default"

#: Events the tracker itself needs; apps add theirs. Every event costs the node
#: and switchy work on both legs of every call, so this is the minimum:
#: CHANNEL_ORIGINATE and CHANNEL_HANGUP_COMPLETE repeat what CREATE and HANGUP say.
CORE_EVENTS = (
    "CHANNEL_CREATE",
    "CHANNEL_ANSWER",
    "CHANNEL_HANGUP",
    "CHANNEL_UUID",
    "BACKGROUND_JOB",
)
#: Events FreeSWITCH sends of a channel only before its CHANNEL_HANGUP. While the
#: tracker needs no others, a session ends with its CHANNEL_HANGUP and
#: CHANNEL_DESTROY is not asked for: it carries every channel variable, as large
#: an event as the hangup, on both legs of every call. Any other event (an
#: app's RECORD_STOP, say, comes after the hangup) makes sessions last until
#: their CHANNEL_DESTROY.
ENDED_BY_HANGUP = frozenset(
    {
        *CORE_EVENTS,
        "CHANNEL_ORIGINATE",
        "CHANNEL_OUTGOING",
        "CHANNEL_PROGRESS",
        "CHANNEL_PROGRESS_MEDIA",
        "CHANNEL_PARK",
    }
)

SessionCallback = Callable[[Session], Any]
EventHandler = Callable[[Event], Any]


@dataclass(eq=False)
class AppRecord:
    """A loaded call app: its callbacks and handlers, by event name."""

    app_id: str
    name: str
    instance: object
    callbacks: dict[str, list[SessionCallback]] = field(default_factory=dict)
    handlers: dict[str, list[EventHandler]] = field(default_factory=dict)
    teardown: Callable[[], None] | None = None

    @property
    def event_names(self) -> set[str]:
        return set(self.callbacks) | set(self.handlers)


class Tracker:
    """Sessions, calls, jobs and counters of one FreeSWITCH node.

    ``commander`` sends the API commands of the sessions it creates (usually
    the client's command connection's ``api``).
    """

    def __init__(
        self,
        connection: Connection,
        commander: Commander,
        *,
        call_tracking_header: str = CALL_HEADER,
        history: int = DEFAULT_HISTORY,
        subscribe_all: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.connection = connection
        self.host = connection.host
        self.call_tracking_header = call_tracking_header
        self.app_id_headers: list[str] = [APP_HEADER]
        self.subscribe_all = subscribe_all
        self.history = history
        self.clock = clock
        self.sessions: dict[str, Session] = {}
        self.calls: dict[str, Call] = {}
        self.jobs: dict[str, Job] = {}
        self.apps: list[AppRecord] = []
        # Counters.
        self.sessions_total = 0
        self.answered_total = 0
        self.originated_total = 0
        self.failed_sessions = 0
        self.failed_jobs = 0
        self.hangup_causes: Counter[str] = Counter()
        self.callback_errors: Counter[str] = Counter()  # by app id
        #: Channels the node had after a reconnect that the tracker never saw.
        self.unknown_channels = 0
        self._commander = commander
        self._originating: dict[str, Job] = {}  # originate jobs by the uuid they create
        self._callbacks: dict[str, dict[str, list[SessionCallback]]] = {}
        self._handlers: dict[str, list[tuple[str, EventHandler]]] = {}
        self._subscribed: set[str] = set()
        self._session_end = "CHANNEL_HANGUP"  # the event a session ends with
        self._tasks: set[asyncio.Future[Any]] = set()
        self._conditions = Conditions(self.host)
        self._stop_listening: list[Callable[[], None]] = []
        # The loop the events come on, for new sessions (each lookup calls getpid()).
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- lifecycle ----------------------------------------------------------------------
    async def start(self) -> None:
        """Subscribe to the events needed and start processing them."""
        self._loop = asyncio.get_running_loop()
        self._stop_listening = [
            self.connection.on_event(self.handle_event),
            self.connection.on_disconnect(self._connection_lost),
        ]
        await self.update_subscriptions()

    def stop(self) -> None:
        """Stop processing events (the connection stays as it is)."""
        for remove in self._stop_listening:
            remove()
        self._stop_listening = []

    @property
    def event_names(self) -> set[str]:
        """Every event the tracker and the loaded apps need."""
        names = set(CORE_EVENTS)
        for app in self.apps:
            names |= app.event_names
        if not names <= ENDED_BY_HANGUP:
            names.add("CHANNEL_DESTROY")
        return names

    async def update_subscriptions(self) -> None:
        """Subscribe to events newly needed by loaded apps."""
        wanted = {"ALL"} if self.subscribe_all else self.event_names
        missing = sorted(wanted - self._subscribed)
        if missing and self.connection.connected:  # else start() subscribes
            await self.connection.subscribe(missing)
            self._subscribed.update(missing)
            if {"CHANNEL_DESTROY", "ALL"} & self._subscribed:
                # Only once subscribed, so that no session waits for an event not sent.
                self._session_end = "CHANNEL_DESTROY"

    async def reconcile(self) -> tuple[int, int]:
        """Make the tracked state match the node's after a reconnect.

        Asks the node for its channels (``show channels as json``): sessions it
        no longer has are closed out (their calls end); channels it has that
        the tracker never saw (made while disconnected) are counted in
        :attr:`unknown_channels` and logged. Returns (closed out, unknown).
        """
        text = await self._commander("show channels as json")
        try:
            rows = json.loads(text).get("rows", [])
            live = {row["uuid"] for row in rows}
        except (ValueError, AttributeError, KeyError, TypeError) as exc:
            raise ValueError(f"{self.host}: unreadable 'show channels as json': {exc}") from None
        gone = [session for uuid, session in self.sessions.items() if uuid not in live]
        for session in gone:
            session.hungup = True
            self._session_gone(session)
        unknown = live - set(self.sessions)
        self.unknown_channels = len(unknown)
        if gone or unknown:
            log.warning(
                "%s: reconciled: %d session(s) no longer on the node closed out, "
                "%d channel(s) on the node were never seen",
                self.host,
                len(gone),
                len(unknown),
            )
        return len(gone), len(unknown)

    def _connection_lost(self, error: BaseException) -> None:
        now = self.clock()
        jobs, self.jobs = self.jobs, {}
        self._originating.clear()
        for job in jobs.values():
            job.fail(ConnectionLost(f"{self.host}: {error}"), now)

    # -- counting --------------------------------------------------------------------------
    def count_sessions(self) -> int:
        return len(self.sessions)

    def count_calls(self) -> int:
        return len(self.calls)

    def count_jobs(self) -> int:
        return len(self.jobs)

    def count_failed(self) -> int:
        return self.failed_sessions

    def is_idle(self) -> bool:
        """No session, call or job left."""
        return not (self.sessions or self.calls or self.jobs or self._originating)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float | None = None) -> None:
        """Return once ``predicate()`` is true, checking after each event."""
        await self._conditions.wait(predicate, timeout)

    # -- jobs ------------------------------------------------------------------------------
    def add_job(self, job: Job) -> None:
        """Track ``job`` until its BACKGROUND_JOB arrives (before the bgapi is sent)."""
        self.jobs[job.uuid] = job
        if job.sess_uuid is not None and job.command == "originate":
            self.originated_total += 1
            self._originating[job.sess_uuid] = job
            session = self.sessions.get(job.sess_uuid)
            if session is not None:
                session.job, job.session = job, session

    def discard_job(self, job: Job) -> None:
        """Forget a job whose bgapi was refused."""
        self.jobs.pop(job.uuid, None)
        if job.sess_uuid is not None and self._originating.get(job.sess_uuid) is job:
            del self._originating[job.sess_uuid]

    def _job_done(self, event: Event) -> None:
        job = self.jobs.pop(event.job_uuid or "", None)
        if job is None:
            return  # another client's job
        if job.sess_uuid is not None and self._originating.get(job.sess_uuid) is job:
            del self._originating[job.sess_uuid]
        job.resolve(event, self.clock())
        if not job.successful():
            self.failed_jobs += 1

    # -- apps ------------------------------------------------------------------------------
    def add_app(self, app: AppRecord, header: str | None = None, prepend: bool = False) -> None:
        """Dispatch events to ``app`` (several apps may share one app id)."""
        if prepend:
            self.apps.insert(0, app)
        else:
            self.apps.append(app)
        if header and header not in self.app_id_headers:
            self.app_id_headers.insert(0, header)
        self._rebuild_dispatch()

    def remove_app(self, app: AppRecord) -> None:
        if app in self.apps:
            self.apps.remove(app)
            self._rebuild_dispatch()

    def _rebuild_dispatch(self) -> None:
        callbacks: dict[str, dict[str, list[SessionCallback]]] = {}
        handlers: dict[str, list[tuple[str, EventHandler]]] = {}
        for app in self.apps:
            by_event = callbacks.setdefault(app.app_id, {})
            for name, session_callbacks in app.callbacks.items():
                by_event.setdefault(name, []).extend(session_callbacks)
            for name, event_handlers in app.handlers.items():
                handlers.setdefault(name, []).extend((app.app_id, f) for f in event_handlers)
        self._callbacks = callbacks
        self._handlers = handlers

    def _run(self, app_id: str, callback: Callable[[Any], Any], argument: object) -> None:
        """Call an app's callback; log and count what it raises, schedule what it awaits."""
        try:
            result = callback(argument)
        except Exception:
            self._app_failed(app_id, callback, argument)
            return
        if result is not None and inspect.isawaitable(result):
            task = asyncio.ensure_future(self._finish(app_id, callback, argument, result))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _finish(
        self, app_id: str, callback: Callable[[Any], Any], argument: object, result: Awaitable[Any]
    ) -> None:
        try:
            await result
        except Exception:
            self._app_failed(app_id, callback, argument)

    def _app_failed(self, app_id: str, callback: Callable[[Any], Any], argument: object) -> None:
        self.callback_errors[app_id] += 1
        name = getattr(callback, "__qualname__", repr(callback))
        log.exception("%s: app %r callback %s failed on %r", self.host, app_id, name, argument)

    # -- events ----------------------------------------------------------------------------
    def handle_event(self, event: Event) -> None:
        """Update the state from ``event`` and run the apps' callbacks for it."""
        name = event.name
        if name == "BACKGROUND_JOB":
            self._job_done(event)
        uuid = event.uuid
        if uuid:
            session = self.sessions.get(uuid)
            if session is not None:
                session.update(event)
            elif name == "CHANNEL_CREATE" or name == "CHANNEL_ORIGINATE":
                session = self._new_session(event, uuid)
            elif name == "CHANNEL_UUID":
                session = self._renamed(event, uuid)
            if session is not None:
                if name == "CHANNEL_ANSWER" and not session.answered:
                    session.answered = True
                    self.answered_total += 1
                elif name == "CHANNEL_HANGUP" and not session.hungup:
                    session.hungup = True
                    self.hangup_causes[event.get("Hangup-Cause") or "UNKNOWN"] += 1
                # A session stamped with an app id not loaded here goes to the default app.
                callbacks = self._callbacks.get(session.app_id) or self._callbacks.get(
                    DEFAULT_APP_ID
                )
                if callbacks is not None:
                    for callback in callbacks.get(name, ()):
                        self._run(session.app_id, callback, session)
                    if name == "CUSTOM":
                        for callback in callbacks.get(event.subclass or "", ()):
                            self._run(session.app_id, callback, session)
                if name == self._session_end:
                    self._session_gone(session)
        handlers = self._handlers.get(name)
        if handlers is not None:
            for app_id, function in handlers:
                self._run(app_id, function, event)
        if name == "CUSTOM":  # also dispatched by subclass, e.g. "mod_bert::lost_sync"
            for app_id, function in self._handlers.get(event.subclass or "", ()):
                self._run(app_id, function, event)
        self._conditions.check()

    def app_id_of(self, event: Event) -> str:
        """The app id an event's session belongs to: the first app id header present."""
        for header in self.app_id_headers:
            value = event.get(header)
            if value:
                return value
        return DEFAULT_APP_ID

    def _new_session(self, event: Event, uuid: str) -> Session:
        session = Session(
            event,
            commander=self._commander,
            host=self.host,
            app_id=self.app_id_of(event),
            history=self.history,
            loop=self._loop,
        )
        self.sessions[uuid] = session
        self.sessions_total += 1
        job = self._originating.get(uuid)
        if job is not None:
            session.job, job.session = job, session
        key = event.get(self.call_tracking_header) or uuid
        call = self.calls.get(key)
        if call is None:
            self.calls[key] = Call(key, session)
        else:
            call.append(session)
        return session

    def _renamed(self, event: Event, uuid: str) -> Session | None:
        """CHANNEL_UUID: a channel took a new uuid (``origination_uuid`` on loopback)."""
        old = event.get("Old-Unique-ID")
        session = self.sessions.pop(old, None) if old else None
        if session is None:
            return None
        session.uuid = uuid
        self.sessions[uuid] = session
        session.update(event)
        return session

    def _session_gone(self, session: Session) -> None:
        self.sessions.pop(session.uuid, None)
        if not session.answered:
            self.failed_sessions += 1
        session.closed()
        call = session.call
        if call is not None:
            call.remove(session)
            if not call.sessions and self.calls.get(call.uuid) is call:
                del self.calls[call.uuid]

    def iter_sessions(self, app_id: str | None = None) -> Iterable[Session]:
        """The live sessions, optionally only those of one app."""
        return [s for s in self.sessions.values() if app_id is None or s.app_id == app_id]

    def __repr__(self) -> str:
        return (
            f"<Tracker {self.host} sessions={len(self.sessions)} calls={len(self.calls)} "
            f"jobs={len(self.jobs)}>"
        )
