"""Sessions, calls and background jobs, as tracked from a FreeSWITCH's events.

A :class:`Session` is one channel (one call leg) and carries the call-control
API: every method sends one command built by :mod:`switchy.esl.commands`. A
:class:`Call` groups the sessions of one call. A :class:`Job` is a ``bgapi``
command whose result arrives later (an ``originate``, typically).

Session commands are sent at once and return a :class:`Pending` result: a
callback can ignore it (failures are logged), ``await`` it, or, from another
thread, block on :meth:`Pending.result`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Generator, Iterator
from typing import Any

from switchy.errors import APIError, CommandTimeout, ConnectionLost
from switchy.esl import commands
from switchy.esl.protocol import Event

__all__ = ["Call", "Job", "Pending", "Session", "SessionVars"]

log = logging.getLogger("switchy.models")

#: How many recent events each session keeps (its first event is always kept).
DEFAULT_HISTORY = 32

#: Runs one API command and returns its output (a Connection's ``api``).
Commander = Callable[[str], Awaitable[str]]


class Pending:
    """The result of a command sent by a :class:`Session` or :class:`Call`.

    ``await pending`` in the event loop; ``pending.result(timeout)`` from any
    other thread. Nobody has to look: a failure nobody retrieved is logged.
    """

    __slots__ = ("_future", "_retrieved", "description")

    def __init__(self, future: asyncio.Future[str], description: str) -> None:
        self._future = future
        self._retrieved = False
        self.description = description
        future.add_done_callback(self._log_unretrieved_failure)

    def _log_unretrieved_failure(self, future: asyncio.Future[str]) -> None:
        if future.cancelled():
            return
        error = future.exception()
        if error is not None and not self._retrieved:
            log.warning("%s failed: %s", self.description, error)

    def done(self) -> bool:
        return self._future.done()

    def __await__(self) -> Generator[Any, None, str]:
        self._retrieved = True
        return self._future.__await__()

    def result(self, timeout: float | None = None) -> str:
        """Block until the command's output is known (not from the event loop thread)."""
        self._retrieved = True
        loop = self._future.get_loop()
        if _in_loop_thread(loop):
            raise RuntimeError(
                f"{self.description}: result() would block the event loop; await it instead"
            )
        bridge: concurrent.futures.Future[str] = concurrent.futures.Future()

        def copy(future: asyncio.Future[str]) -> None:
            if future.cancelled():
                bridge.cancel()
            elif (error := future.exception()) is not None:
                bridge.set_exception(error)
            else:
                bridge.set_result(future.result())

        loop.call_soon_threadsafe(self._future.add_done_callback, copy)
        try:
            return bridge.result(timeout)
        except concurrent.futures.TimeoutError:
            raise CommandTimeout(f"{self.description}: no result within {timeout}s") from None

    def __repr__(self) -> str:
        return f"<Pending {self.description} {'done' if self.done() else 'pending'}>"


def _in_loop_thread(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def send(loop: asyncio.AbstractEventLoop, commander: Commander, command: str) -> Pending:
    """Run ``command`` through ``commander`` on ``loop``, from any thread."""
    description = command.split(" ", 1)[0]
    if _in_loop_thread(loop):
        # A commander that returns a future (Connection.api_nowait) needs no task.
        return Pending(asyncio.ensure_future(commander(command)), description)
    future: asyncio.Future[str] = asyncio.wrap_future(
        asyncio.run_coroutine_threadsafe(_call(commander, command), loop), loop=loop
    )
    return Pending(future, description)


async def _call(commander: Commander, command: str) -> str:
    return await commander(command)


class SessionVars(dict[str, Any]):
    """A session's local variables (``sess.vars``): a dict that wakes waiters.

    Apps set them from callbacks; :meth:`Session.wait_var` (or a blocking
    ``waitfor``) returns once a variable holds a true value.
    """

    def __init__(self) -> None:
        super().__init__()
        self._waiters: dict[str, list[asyncio.Future[Any]]] = {}

    def __setitem__(self, name: str, value: Any) -> None:
        super().__setitem__(name, value)
        if value and name in self._waiters:
            for waiter in self._waiters.pop(name):
                if not waiter.done():
                    waiter.set_result(value)

    async def wait(self, name: str, timeout: float | None = None) -> Any:
        """Return ``self[name]`` once it is true, waiting up to ``timeout`` seconds."""
        value = self.get(name)
        if value:
            return value
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(name, []).append(waiter)
        try:
            return await asyncio.wait_for(waiter, timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"variable {name!r} not set within {timeout}s") from None
        finally:
            waiters = self._waiters.get(name)
            if waiters and waiter in waiters:
                waiters.remove(waiter)
                if not waiters:
                    del self._waiters[name]


class Session:
    """One FreeSWITCH channel, updated by every event about it.

    ``sess["Header"]`` / ``sess.get("Header")`` read the header from the most
    recent event that carries it (channel variables are ``variable_<name>``).
    """

    __slots__ = (
        "__weakref__",
        "_commander",
        "_firsts",
        "_history",
        "_loop",
        "_vars",
        "_waiters",
        "answered",
        "app_id",
        "call",
        "create_event",
        "direction",
        "host",
        "hungup",
        "job",
        "uuid",
    )

    def __init__(
        self,
        event: Event,
        *,
        commander: Commander,
        host: str,
        app_id: str,
        history: int = DEFAULT_HISTORY,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.uuid: str = event.uuid or ""
        self.host = host
        self.app_id = app_id
        self.direction = event.get("Call-Direction", "") or ""
        self.create_event = event
        self.answered = False
        self.hungup = False
        self.call: Call | None = None
        self.job: Job | None = None
        self._vars: SessionVars | None = None  # made on first use: most sessions need none
        self._firsts: dict[str, Event] = {}  # the first event of each name
        self._commander = commander
        self._loop = loop or asyncio.get_running_loop()  # the loop its commands go through
        self._history: deque[Event] = deque(maxlen=history)
        self._waiters: dict[str, list[asyncio.Future[Event]]] = {}
        self.update(event)

    # -- state ---------------------------------------------------------------------------
    def update(self, event: Event) -> None:
        """Record ``event`` (called by the tracker for every event of this session)."""
        self._history.append(event)
        name = event.name
        if name not in self._firsts:
            self._firsts[name] = event
        waiters = self._waiters.pop(name, None)
        if waiters:
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(event)

    @property
    def vars(self) -> SessionVars:
        """Variables of this session's own, for apps (``sess.vars["done"] = True``)."""
        if self._vars is None:
            self._vars = SessionVars()
        return self._vars

    @property
    def times(self) -> dict[str, float]:
        """When each event first arrived (seconds since the epoch, from
        Event-Date-Timestamp), by event name."""
        return {name: event.timestamp or 0.0 for name, event in self._firsts.items()}

    @property
    def log(self) -> logging.LoggerAdapter[logging.Logger]:
        """A logger whose messages name this session."""
        return _SessionLog(log, {"uuid": self.uuid})

    @property
    def events(self) -> list[Event]:
        """The recent events of this session, oldest first."""
        return list(self._history)

    @property
    def last_event(self) -> Event:
        return self._history[-1]

    @property
    def time(self) -> float:
        """When the most recent event happened (seconds since the epoch)."""
        return self._history[-1].timestamp or 0.0

    @property
    def uptime(self) -> float:
        """Seconds from the session's creation to its most recent event."""
        return self.time - (self.create_event.timestamp or 0.0)

    @property
    def hangup_cause(self) -> str | None:
        return self.get("Hangup-Cause") if self.hungup else None

    def is_inbound(self) -> bool:
        return self.direction == "inbound"

    def is_outbound(self) -> bool:
        return self.direction == "outbound"

    def get(self, name: str, default: str | None = None) -> str | None:
        """The latest value of header ``name``."""
        for event in reversed(self._history):
            value = event.get(name)
            if value is not None:
                return value
        value = self.create_event.get(name)
        return default if value is None else value

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    async def recv(self, name: str, timeout: float | None = None, *, past: bool = False) -> Event:
        """Wait for the next event called ``name`` of this session.

        With ``past=True``, an event of that name already received is returned at once.
        """
        if past:
            for event in reversed(self._history):
                if event.name == name:
                    return event
            if self.create_event.name == name:
                return self.create_event
        waiter: asyncio.Future[Event] = self._loop.create_future()
        self._waiters.setdefault(name, []).append(waiter)
        try:
            return await asyncio.wait_for(waiter, timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"session {self.uuid}: no {name} within {timeout}s") from None

    async def wait_var(self, name: str, timeout: float | None = None) -> Any:
        """Wait until ``self.vars[name]`` is true (set by an app callback)."""
        return await self.vars.wait(name, timeout)

    def closed(self) -> None:
        """The channel is gone: fail whoever still waits for its events."""
        for waiters in self._waiters.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(ConnectionLost(f"session {self.uuid} ended"))
        self._waiters.clear()

    # -- commands ------------------------------------------------------------------------
    def api(self, command: str) -> Pending:
        """Send an API command (``uuid_*``...) over the client's connection."""
        return send(self._loop, self._commander, command)

    def execute(self, app: str, args: str = "") -> Pending:
        """Run dialplan application ``app`` with ``args`` on this channel."""
        return self.broadcast(args, app=app)

    def answer(self) -> Pending:
        return self.api(commands.uuid_answer(self.uuid))

    def hangup(self, cause: str | int = "NORMAL_CLEARING") -> Pending:
        return self.api(commands.uuid_kill(self.uuid, cause))

    def sched_hangup(self, delay: float, cause: str | int = "NORMAL_CLEARING") -> Pending:
        """Hang up after ``delay`` seconds (FreeSWITCH's scheduler, whole seconds)."""
        return self.api(commands.sched_hangup(round(delay), self.uuid, cause))

    def park(self) -> Pending:
        return self.api(commands.uuid_park(self.uuid))

    def bridge(
        self,
        dest_url: str | None = None,
        profile: str | None = None,
        gateway: str | None = None,
        proxy: str | None = None,
        params: dict[str, commands.VariableValue] | None = None,
    ) -> Pending:
        """Bridge to ``dest_url`` (default: this call's SIP Request-URI) on ``profile``
        (default: the profile the call came in on)."""
        if dest_url is None:
            dest_url = "${sip_req_user}@${sip_req_host}:${sip_req_port}"
        if profile is None:
            profile = self.get("variable_sofia_profile_name", "external") or "external"
        target = commands.dial_string(
            dest_url, profile=profile, gateway=gateway, proxy=proxy, variables=params
        )
        return self.broadcast(target, app="bridge")

    def playback(
        self,
        args: str | tuple[str, ...],
        start_sample: int | None = None,
        endless: bool = False,
        leg: str = "aleg",
        params: dict[str, str] | None = None,
    ) -> Pending:
        """Play a file (or ``tone_stream://...``); ``endless`` loops it forever."""
        path = args if isinstance(args, str) else "".join(args)
        if start_sample is not None:
            path = f"{path}@@{start_sample}"
        variables = dict(params or {})
        if endless:
            variables["loops"] = "-1"
        if variables:
            path = "{" + ",".join(f"{k}={v}" for k, v in variables.items()) + "}" + path
        return self.broadcast(path, leg=leg, app="playback")

    def breakmedia(self) -> Pending:
        """Stop the media playing on this channel."""
        return self.api(commands.uuid_break(self.uuid))

    def echo(self) -> Pending:
        """Send back everything received."""
        return self.broadcast("", app="echo")

    def broadcast(
        self,
        path: str,
        leg: str = "aleg",
        hangup_cause: str | int | None = None,
        *,
        app: str | None = None,
    ) -> Pending:
        """``uuid_broadcast``: play ``path`` or run ``app::args`` on the chosen leg(s)."""
        return self.api(
            commands.uuid_broadcast(self.uuid, path, leg, app=app, hangup_cause=hangup_cause)
        )

    def start_record(
        self, path: str, rx_only: bool = False, stereo: bool = False, rate: int = 16000
    ) -> Pending:
        """Record this channel to ``path`` on the FreeSWITCH host (``record_session``)."""
        self.setvars(
            {
                "RECORD_READ_ONLY": "true" if rx_only else "false",
                "RECORD_STEREO": "true" if stereo else "false",
                "record_sample_rate": str(rate),
            }
        )
        return self.broadcast(path, app="record_session")

    def stop_record(self, path: str = "all", delay: float = 0) -> Pending:
        """Stop recording ``path`` (all recordings by default), after ``delay`` seconds."""
        if delay:
            command = commands.sched_api(
                round(delay), "none", f"uuid_broadcast {self.uuid} stop_record_session::{path}"
            )
            return self.api(command)
        return self.broadcast(path, app="stop_record_session")

    def record(self, action: str, path: str, rx_only: bool = True) -> Pending:
        """``uuid_record <uuid> start|stop|mask|unmask <path>``."""
        if action == "start":
            self.setvar("RECORD_READ_ONLY", "true" if rx_only else "false")
        return self.api(commands.uuid_record(self.uuid, action, path))

    def send_dtmf(self, sequence: str, duration: int | None = None) -> Pending:
        """Send DTMF digits (``duration`` in milliseconds per digit)."""
        return self.api(commands.uuid_send_dtmf(self.uuid, sequence, duration))

    def sched_dtmf(self, delay: float, sequence: str) -> Pending:
        """Send DTMF digits after ``delay`` seconds (FreeSWITCH's scheduler)."""
        command = commands.uuid_send_dtmf(self.uuid, sequence)
        return self.api(commands.sched_api(round(delay), "none", command))

    def setvar(self, name: str, value: commands.VariableValue) -> Pending:
        return self.api(commands.uuid_setvar(self.uuid, name, value))

    def setvars(self, variables: dict[str, commands.VariableValue]) -> Pending:
        return self.api(commands.uuid_setvar_multi(self.uuid, variables))

    def unsetvar(self, name: str) -> Pending:
        return self.api(commands.uuid_setvar(self.uuid, name))

    def getvar(self, name: str) -> Pending:
        """The channel variable's value as FreeSWITCH has it now (``_undef_`` if unset)."""
        return self.api(commands.uuid_getvar(self.uuid, name))

    def mute(self, direction: str = "write", level: int = 1) -> Pending:
        return self.api(commands.uuid_audio(self.uuid, "start", direction, "mute", level))

    def unmute(self, direction: str = "write") -> Pending:
        return self.api(commands.uuid_audio(self.uuid, "stop", direction))

    def respond(self, code: int | str) -> Pending:
        """Answer the (unanswered) inbound INVITE with a SIP response, e.g. 486."""
        return self.broadcast(str(code), app="respond")

    def deflect(self, uri: str) -> Pending:
        """Send a SIP REFER to ``uri`` (an answered call)."""
        return self.api(commands.uuid_deflect(self.uuid, uri))

    def bypass_media(self, state: bool) -> Pending:
        """Take FreeSWITCH out of the media path (re-INVITE), or back in."""
        return self.api(commands.uuid_media(self.uuid, enabled=not state))

    def clear_tasks(self) -> Pending:
        """Remove this session's scheduled tasks (``sched_del <uuid>``)."""
        return self.api(commands.sched_del(self.uuid))

    def __repr__(self) -> str:
        state = "hungup" if self.hungup else "answered" if self.answered else "setup"
        return f"<Session {self.uuid} {self.direction} {state} app={self.app_id!r}>"


class _SessionLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return f"session {self.extra['uuid'] if self.extra else '?'}: {msg}", kwargs


class Call:
    """The sessions of one call, grouped by the call-tracking header.

    ``first`` and ``last`` are its first and latest sessions; once one has ended
    and nothing else holds it, it reads None (the call does not keep ended
    sessions, and their events, alive).
    """

    __slots__ = ("_first", "_last", "sessions", "uuid", "vars")

    def __init__(self, uuid: str, session: Session) -> None:
        self.uuid = uuid
        self.sessions: list[Session] = []
        self.vars: dict[str, Any] = {}
        self._first = weakref.ref(session)
        self._last = self._first
        self.append(session)

    @property
    def first(self) -> Session | None:
        return self._first()

    @property
    def last(self) -> Session | None:
        return self._last()

    def append(self, session: Session) -> None:
        self.sessions.append(session)
        self._last = weakref.ref(session)
        session.call = self

    def remove(self, session: Session) -> None:
        if session in self.sessions:
            self.sessions.remove(session)

    def get_peer(self, session: Session) -> Session | None:
        """The other end of ``session`` (first <-> last), if any."""
        first, last = self.first, self.last
        if session is first:
            return last if last is not session else None
        if session is last:
            return first
        return None

    def hangup(self, cause: str | int = "NORMAL_CLEARING") -> list[Pending]:
        """Hang up every session of this call."""
        return [session.hangup(cause) for session in self.sessions if not session.hungup]

    def __iter__(self) -> Iterator[Session]:
        return iter(self.sessions)

    def __len__(self) -> int:
        return len(self.sessions)

    def __repr__(self) -> str:
        return f"<Call {self.uuid} {len(self.sessions)} session(s)>"


class Job:
    """A background (``bgapi``) command and its eventual result.

    ``await job`` or, from another thread, ``job.get(timeout)`` /
    ``job.wait(timeout)`` (the interface of ``multiprocessing.pool.AsyncResult``).
    The result is the command's output; for an ``originate`` it is the new
    session's uuid (``job.sess_uuid``). A ``-ERR`` answer fails the job with
    :class:`APIError` whose ``cause`` names the hangup cause of a failed originate.
    """

    __slots__ = (
        "_future",
        "_session",
        "accept_time",
        "callback",
        "command",
        "event",
        "launch_time",
        "result_time",
        "sess_uuid",
        "uuid",
    )

    def __init__(
        self,
        job_uuid: str,
        command: str,
        *,
        sess_uuid: str | None = None,
        callback: Callable[[Job], Any] | None = None,
        launch_time: float = 0.0,
    ) -> None:
        self.uuid = job_uuid
        self.command = command
        self.sess_uuid = sess_uuid
        self.callback = callback
        self.launch_time = launch_time
        #: When FreeSWITCH took the bgapi (its reply), on the tracker's clock.
        self.accept_time: float | None = None
        self.result_time: float | None = None
        self.event: Event | None = None
        self._session: weakref.ref[Session] | None = None
        self._future: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    @property
    def session(self) -> Session | None:
        """The session an originate created, once seen (None after it ended and
        nothing else holds it: a job does not keep its session alive)."""
        return self._session() if self._session is not None else None

    @session.setter
    def session(self, session: Session | None) -> None:
        self._session = weakref.ref(session) if session is not None else None

    def _finished(self) -> None:
        """Run the callback, right where the job completes (not one loop pass later)."""
        self._future.exception()  # retrieved: failures are reported through the Job's API
        # Called once, then dropped: a callback that refers to the job's owner (the
        # load generator's calls do) would otherwise leave a cycle for the garbage
        # collector, and every event it holds, behind each job.
        callback, self.callback = self.callback, None
        if callback is not None:
            try:
                callback(self)
            except Exception:
                log.exception("job %s callback %r failed", self.uuid, callback)

    def resolve(self, event: Event, now: float) -> None:
        """Complete the job with its BACKGROUND_JOB event (called by the tracker)."""
        if self._future.done():
            return
        self.event = event
        self.result_time = now
        body = event.body
        if body.startswith(("-ERR", "-USAGE")):
            self._future.set_exception(
                APIError(f"job {self.uuid} ({self.command}): {body.strip()}", reply=body)
            )
        elif body.startswith("+OK "):
            self._future.set_result(body[4:].strip())
        else:
            self._future.set_result(body)
        self._finished()

    def fail(self, error: BaseException, now: float) -> None:
        """Fail the job without a result (its node went away, say)."""
        if not self._future.done():
            self.result_time = now
            self._future.set_exception(error)
            self._finished()

    def done(self) -> bool:
        return self._future.done()

    ready = done

    def successful(self) -> bool:
        """True if the job completed without error (ValueError while it runs)."""
        if not self._future.done():
            raise ValueError(f"job {self.uuid} is not done yet")
        return not self._future.cancelled() and self._future.exception() is None

    @property
    def result(self) -> str | BaseException | None:
        """The output, the error, or None while the job runs."""
        if not self._future.done():
            return None
        error = self._future.exception()
        return error if error is not None else self._future.result()

    @property
    def cause(self) -> str | None:
        """The hangup cause of a failed originate (``USER_BUSY``...), else None."""
        error = self.result
        return error.cause if isinstance(error, APIError) else None

    def __await__(self) -> Generator[Any, None, str]:
        return asyncio.shield(self._future).__await__()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until done or ``timeout``; return whether it is done (not from the loop)."""
        if self._future.done():
            return True
        loop = self._future.get_loop()
        if _in_loop_thread(loop):
            raise RuntimeError(f"job {self.uuid}: wait() would block the event loop; await it")
        # Made on demand: most jobs are never waited for from a thread.
        finished = threading.Event()
        loop.call_soon_threadsafe(self._future.add_done_callback, lambda _: finished.set())
        return finished.wait(timeout)

    def get(self, timeout: float | None = None) -> str:
        """Block for the result; raise its error, or TimeoutError after ``timeout``."""
        if not self.wait(timeout):
            raise TimeoutError(f"job {self.uuid} ({self.command}) not done within {timeout}s")
        return self._future.result()

    def __repr__(self) -> str:
        state = "pending" if not self.done() else "ok" if self.successful() else "failed"
        return f"<Job {self.uuid} {self.command} {state}>"
