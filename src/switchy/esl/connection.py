"""An asyncio client for the FreeSWITCH event socket (inbound method).

::

    conn = await connect("127.0.0.1", 8021, password="ClueCon")
    print(await conn.api("status"))
    job = await conn.bgapi("status")      # returns at once
    print(await job)                      # the BACKGROUND_JOB result
    await conn.subscribe(["CHANNEL_ANSWER"])
    conn.on_event(print)
    await conn.close()

FreeSWITCH answers the commands of one connection strictly in order
(ESL_PROTOCOL.md §1.3), so replies are matched to commands by a FIFO. A command
that times out or is cancelled keeps its place in the FIFO, so its late reply
is discarded instead of being handed to the next command.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import socket
from collections import deque
from collections.abc import AsyncIterator, Callable, Generator, Iterable
from typing import Any, cast

from switchy import ids
from switchy.errors import (
    AccessDenied,
    APIError,
    AuthenticationError,
    CommandError,
    CommandTimeout,
    ConnectError,
    ConnectionLost,
    ProtocolError,
)
from switchy.esl.commands import check_line
from switchy.esl.protocol import DEFAULT_MAX_FRAME_SIZE, Event, Frame, Parser
from switchy.ticks import check_tick, next_tick

__all__ = [
    "DEFAULT_COMMAND_TIMEOUT",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_PASSWORD",
    "DEFAULT_PORT",
    "USE_DEFAULT",
    "BackgroundJob",
    "Connection",
    "ReconnectPolicy",
    "connect",
]

log = logging.getLogger("switchy.esl")

DEFAULT_PORT = 8021
DEFAULT_PASSWORD = "ClueCon"
DEFAULT_CONNECT_TIMEOUT = 5.0
#: A reply slower than this means the server is stuck; ``api originate`` can take
#: up to its own timeout (60 s by default), so use ``bgapi`` for slow commands.
DEFAULT_COMMAND_TIMEOUT = 30.0
#: Events held for each :meth:`Connection.events` iterator before new ones are dropped.
DEFAULT_EVENT_QUEUE_SIZE = 100_000

EventCallback = Callable[[Event], Any]
DisconnectCallback = Callable[[BaseException], Any]
ReconnectCallback = Callable[[], Any]

_EVENT_FORMATS = ("plain", "json")
_CLOSED = object()  # end-of-stream marker for event queues


class _UseDefault:
    """Type of :data:`USE_DEFAULT`."""

    def __repr__(self) -> str:
        return "USE_DEFAULT"


#: Timeout argument meaning "the connection's ``command_timeout``".
USE_DEFAULT = _UseDefault()
Timeout = float | None | _UseDefault


class ReconnectPolicy:
    """Exponential backoff with jitter between reconnection attempts.

    Delays start at ``initial`` seconds and double up to ``maximum``;
    ``max_attempts=None`` keeps trying until the connection is closed.
    """

    def __init__(
        self, initial: float = 0.1, maximum: float = 5.0, max_attempts: int | None = None
    ) -> None:
        if initial <= 0 or maximum < initial:
            raise ValueError("reconnect delays must satisfy 0 < initial <= maximum")
        self.initial = initial
        self.maximum = maximum
        self.max_attempts = max_attempts

    def delays(self) -> Iterable[float]:
        """The sleep before each attempt: full jitter over a doubling ceiling."""
        ceiling = self.initial
        attempt = 0
        while self.max_attempts is None or attempt < self.max_attempts:
            attempt += 1
            yield random.uniform(ceiling / 2, ceiling)
            ceiling = min(ceiling * 2, self.maximum)


class BackgroundJob:
    """A ``bgapi`` command; its result arrives later in a BACKGROUND_JOB event.

    ``await job`` returns the result body, raising :class:`APIError` when the
    body is a ``-ERR`` / ``-USAGE`` answer and :class:`ConnectionLost` when the
    connection drops first.
    """

    __slots__ = ("_future", "_source", "command", "uuid")

    def __init__(
        self, job_uuid: str, command: str, future: asyncio.Future[Event], source: str
    ) -> None:
        self.uuid = job_uuid
        self.command = command
        self._future = future
        self._source = source

    @property
    def event(self) -> Event | None:
        """The BACKGROUND_JOB event, once it arrived."""
        future = self._future
        if future.done() and not future.cancelled() and future.exception() is None:
            return future.result()
        return None

    def done(self) -> bool:
        """True once the result (or a failure) is known."""
        return self._future.done()

    async def wait(self, timeout: float | None = None) -> str:
        """The result body, waiting at most ``timeout`` seconds."""
        try:
            event = await asyncio.wait_for(asyncio.shield(self._future), timeout)
        except asyncio.TimeoutError:
            raise CommandTimeout(
                f"background job {self.uuid} ({self.command}) gave no result within {timeout}s"
            ) from None
        body = event.body
        if body.startswith(_ERROR_ANSWERS):
            raise _api_error(self._source, body)
        return body

    def __await__(self) -> Generator[Any, None, str]:
        return self.wait().__await__()

    def __repr__(self) -> str:
        state = "done" if self.done() else "pending"
        return f"<BackgroundJob {self.uuid} {self.command!r} {state}>"


_ERROR_ANSWERS = ("-ERR", "-USAGE")


def _api_error(source: str, body: str) -> APIError:
    """The error for ``body``, an error answer (``_ERROR_ANSWERS``) from ``source``."""
    return APIError(f"{source}: {body.strip()}", reply=body)


def _describe(command: str) -> str:
    """The first words of a command, for messages (never its secret parts)."""
    words = command.split(" ", 2)
    return " ".join(words[:2]) if words[0] in ("api", "bgapi") else words[0]


class _Request:
    """A command waiting for its reply: the future its caller holds, how to read
    the reply into that future's result, what to run once it has one, and when
    to give up on it."""

    __slots__ = ("command", "deadline", "future", "on_done", "read", "timer")

    def __init__(
        self,
        future: asyncio.Future[Any],
        read: Callable[[Frame], Any] | None,
        command: str,
        on_done: Callable[[asyncio.Future[Any]], object] | None,
    ) -> None:
        self.future = future
        self.read = read
        self.command = command
        self.on_done = on_done
        self.deadline = 0.0
        self.timer: asyncio.TimerHandle | None = None

    def finish(self, frame: Frame) -> None:
        """Hand the reply to the caller, unless it gave up (timed out or cancelled)."""
        if self.timer is not None:
            self.timer.cancel()
        future = self.future
        if future.done():
            return
        if self.read is None:
            future.set_result(frame)
        else:
            try:
                future.set_result(self.read(frame))
            except APIError as exc:
                future.set_exception(exc)
        self._done()

    def fail(self, error: BaseException) -> None:
        """End the wait with ``error`` (a timeout, the connection's loss)."""
        if self.timer is not None:
            self.timer.cancel()
        if not self.future.done():
            self.future.set_exception(error)
            self._done()

    def _done(self) -> None:
        on_done, self.on_done = self.on_done, None
        if on_done is not None:
            try:
                on_done(self.future)
            except Exception:
                log.exception("callback %r on the reply to %s failed", on_done, self.command)


class _Protocol(asyncio.BufferedProtocol):
    """Feeds one TCP connection's bytes to its :class:`Connection`.

    The transport receives straight into the parser's buffer: no bytes object
    is allocated, nor copied, per read. With a ``read_interval``, a read that
    emptied the socket pauses reading until the next tick of that period (see
    :mod:`switchy.ticks`), so what arrives meanwhile is read and handled in one
    go, in the same pass as the other work on that tick; and what a pass sends
    goes out in one write at its end: one system call, one segment for the
    server to read. Without one, each command is written at once: work is not
    batched then, and waiting for the end of the pass would cost a pass of the
    event loop per command.
    """

    def __init__(self, connection: Connection, max_frame_size: int, read_interval: float) -> None:
        self.connection = connection
        self.parser = Parser(max_frame_size)
        self.transport: asyncio.Transport | None = None
        self.loop = asyncio.get_running_loop()  # looked up once: each lookup calls getpid()
        self.closed: asyncio.Future[None] = self.loop.create_future()
        self.read_interval = read_interval
        self._offered = 0  # size of the last buffer handed to the transport
        self._resume_timer: asyncio.TimerHandle | None = None
        self._unsent: list[bytes] = []  # written during this loop pass

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast, not an isinstance check: other loops' transports (uvloop's) are
        # asyncio transports in behaviour without deriving from its classes.
        self.transport = cast(asyncio.Transport, transport)
        # Attach now: the greeting may be delivered before create_connection() returns.
        self.connection._protocol = self

    def get_buffer(self, sizehint: int) -> memoryview:
        buffer = self.parser.buffer()
        self._offered = len(buffer)
        return buffer

    def buffer_updated(self, nbytes: int) -> None:
        try:
            frames = self.parser.commit(nbytes)
        except ProtocolError as exc:
            self.connection._protocol_error(self, exc)
            return
        self.connection._frames_received(self, frames)
        # A full buffer means more bytes are likely waiting: read them at once.
        if self.read_interval and nbytes < self._offered:
            transport = self.transport
            if transport is not None and not transport.is_closing():
                transport.pause_reading()
                loop = self.loop
                self._resume_timer = loop.call_at(
                    next_tick(loop.time(), self.read_interval), self._resume_reading
                )

    def write(self, data: bytes) -> None:
        """Send ``data``: at once, or with a ``read_interval`` at the end of this
        pass, with whatever else the pass sends."""
        if self.read_interval:
            unsent = self._unsent
            unsent.append(data)
            if len(unsent) == 1:
                self.loop.call_soon(self._send_unsent)
            return
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(data)

    def _send_unsent(self) -> None:
        unsent, self._unsent = self._unsent, []
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(b"".join(unsent))

    def _resume_reading(self) -> None:
        self._resume_timer = None
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def eof_received(self) -> bool:
        return False  # let the transport close

    def connection_lost(self, exc: Exception | None) -> None:
        if self._resume_timer is not None:
            self._resume_timer.cancel()
            self._resume_timer = None
        if not self.closed.done():
            self.closed.set_result(None)
        self.connection._connection_lost(self, exc)


class Connection:
    """One authenticated event-socket connection. Create it with :func:`connect`."""

    def __init__(
        self,
        host: str,
        port: int = DEFAULT_PORT,
        password: str = DEFAULT_PASSWORD,
        *,
        user: str | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        command_timeout: float | None = DEFAULT_COMMAND_TIMEOUT,
        reconnect: ReconnectPolicy | bool = False,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        read_interval: float = 0.0,
    ) -> None:
        """Prefer :func:`connect`, which also opens the connection."""
        if user is not None:
            check_line(user, "user")
        check_line(password, "password")
        self.host = host
        self.port = port
        self.address = f"{host}:{port}"
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self._password = password
        self._user = user
        self._reconnect = ReconnectPolicy() if reconnect is True else reconnect or None
        self._max_frame_size = max_frame_size
        self._read_interval = check_tick(read_interval, "read_interval")
        self._protocol: _Protocol | None = None
        self._authenticated = False
        self._closing = False
        self._greeting: asyncio.Future[Frame] | None = None
        self._replies: deque[_Request] = deque()
        # Commands waiting with the usual timeout, oldest first, and the one timer
        # that times them out.
        self._watched: deque[_Request] = deque()
        self._watchdog: asyncio.TimerHandle | None = None
        self._jobs: dict[str, asyncio.Future[Event]] = {}
        self._event_callbacks: list[EventCallback] = []
        self._disconnect_callbacks: list[DisconnectCallback] = []
        self._reconnect_callbacks: list[ReconnectCallback] = []
        self._queues: list[asyncio.Queue[object]] = []
        self._dropped_events = 0
        self._format = "plain"
        self._subscribed: list[str] = []  # event names and CUSTOM subclasses, as sent
        self._filters: list[tuple[str, str]] = []
        self._disconnect_reason: str | None = None
        self._reconnect_task: asyncio.Task[None] | None = None
        self._connected_event = asyncio.Event()

    # -- state ----------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        """True while authenticated and usable."""
        return self._authenticated and self._protocol is not None

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called (or the connection is gone for good)."""
        return self._closing

    @property
    def dropped_events(self) -> int:
        """Events dropped because an :meth:`events` iterator fell too far behind."""
        return self._dropped_events

    def __repr__(self) -> str:
        state = "connected" if self.connected else "closed" if self._closing else "disconnected"
        return f"<Connection {self.address} {state} pending={len(self._replies)}>"

    # -- opening ----------------------------------------------------------------------
    async def open(self) -> None:
        """Connect and authenticate; raise :class:`ConnectError` and subclasses on failure."""
        try:
            await asyncio.wait_for(self._open(), self.connect_timeout)
        except asyncio.TimeoutError:
            self._abort()
            raise ConnectError(
                f"{self.address}: no answer from the event socket within {self.connect_timeout}s"
            ) from None
        except BaseException:
            self._abort()
            raise
        self._connected_event.set()

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        self._disconnect_reason = None
        self._greeting = loop.create_future()
        try:
            await loop.create_connection(
                lambda: _Protocol(self, self._max_frame_size, self._read_interval),
                self.host,
                self.port,
            )
        except OSError as exc:
            raise ConnectError(f"{self.address}: {_describe_os_error(exc)}") from None
        greeting = await self._greeting
        if greeting.content_type == "text/rude-rejection":
            raise AccessDenied(f"{self.address}: access denied by the server's ACL")
        if greeting.content_type != "auth/request":
            raise ConnectError(
                f"{self.address}: expected an auth/request greeting, got {greeting.content_type}"
            )
        if self._user is None:
            line = f"auth {self._password}"
        else:
            line = f"userauth {self._user}:{self._password}"
        reply = await self._request((line + "\n\n").encode(), "auth", None, None)
        if not reply.reply_text.lower().startswith("+ok accepted"):
            who = f"user {self._user!r}" if self._user else "password"
            raise AuthenticationError(f"{self.address}: authentication failed (wrong {who}?)")
        self._authenticated = True

    def _abort(self) -> None:
        """Drop the socket; :meth:`_connection_lost` then fails what was waiting on it."""
        self._authenticated = False
        protocol = self._protocol
        if protocol is not None and protocol.transport is not None:
            protocol.transport.abort()

    # -- commands -----------------------------------------------------------------------
    def _request(
        self,
        data: bytes,
        command: str,
        read: Callable[[Frame], Any] | None,
        timeout: float | None,
        on_done: Callable[[asyncio.Future[Any]], object] | None = None,
    ) -> asyncio.Future[Any]:
        """Send ``data`` (with the rest of this loop pass); return one future of its
        reply (through ``read``).

        One future per command, resolved straight from the reply, the timeout or
        the loss of the connection: commands are the load generator's hot path.
        """
        protocol = self._protocol
        if protocol is None or protocol.transport is None or protocol.transport.is_closing():
            raise ConnectionLost(f"{self.address}: not connected ({self._loss_reason()})")
        loop = protocol.loop
        request = _Request(loop.create_future(), read, command, on_done)
        self._replies.append(request)
        protocol.write(data)
        if timeout is not None:
            if timeout == self.command_timeout:
                # The usual timeout: deadlines come in sending order, so one watchdog
                # timer for the oldest command serves them all.
                self._watch(request, loop.time() + timeout)
            else:
                request.timer = loop.call_later(timeout, self._expire, request, timeout)
        return request.future

    def _encode(self, command: str, headers: Iterable[tuple[str, str]]) -> bytes:
        """The command's bytes; ValueError for a line that could inject another."""
        check_line(command, "command")
        lines = [command]
        for name, value in headers:
            check_line(name, "header name")
            check_line(value, f"header {name}")
            if not name or ":" in name:
                raise ValueError(f"invalid header name {name!r}")
            lines.append(f"{name}: {value}")
        return ("\n".join(lines) + "\n\n").encode()

    def _timeout(self, timeout: Timeout) -> float | None:
        return self.command_timeout if isinstance(timeout, _UseDefault) else timeout

    def send_nowait(
        self,
        command: str,
        headers: Iterable[tuple[str, str]] = (),
        *,
        timeout: Timeout = USE_DEFAULT,
        on_done: Callable[[asyncio.Future[Frame]], object] | None = None,
    ) -> asyncio.Future[Frame]:
        """Send a raw socket command now; return the future of its reply frame.

        Every line is checked first: a CR, LF or NUL, or text that would unload
        the event socket module, raises ``ValueError``. The future fails with
        :class:`CommandTimeout` after ``timeout`` seconds (default:
        :attr:`command_timeout`) or :class:`ConnectionLost`; cancelling it, or a
        timeout, leaves the command's place in the reply FIFO, so its late reply
        is dropped rather than handed to the next command.

        ``on_done(future)`` runs as soon as the reply, the timeout or the loss of
        the connection completes the future (not when the caller cancels it): the
        same as ``future.add_done_callback(on_done)`` without its extra pass of
        the event loop, for callers sending hundreds of commands a second.
        """
        data = self._encode(command, headers)
        return self._request(data, command, None, self._timeout(timeout), on_done)

    def _expire(self, request: _Request, timeout: float) -> None:
        """Time out ``request``; its slot stays, so its late reply is dropped."""
        if not request.future.done():
            request.fail(
                CommandTimeout(
                    f"{self.address}: no reply to {_describe(request.command)!r} within {timeout}s"
                )
            )

    def _watch(self, request: _Request, deadline: float) -> None:
        watched = self._watched
        while watched and watched[0].future.done():
            watched.popleft()  # answered already
        request.deadline = deadline
        watched.append(request)
        if self._watchdog is None:
            self._watchdog = asyncio.get_running_loop().call_at(deadline, self._expire_overdue)

    def _expire_overdue(self) -> None:
        """The watchdog: time out every overdue command, then wait for the next one."""
        self._watchdog = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        watched = self._watched
        while watched:
            request = watched[0]
            if not request.future.done() and request.deadline > now:
                self._watchdog = loop.call_at(request.deadline, self._expire_overdue)
                return
            watched.popleft()
            self._expire(request, self.command_timeout or 0.0)

    async def send(
        self,
        command: str,
        headers: Iterable[tuple[str, str]] = (),
        *,
        timeout: Timeout = USE_DEFAULT,
    ) -> Frame:
        """Send a raw socket command (``event ...``, ``filter ...``, ``sendevent ...``)
        and return its reply frame; see :meth:`send_nowait`."""
        return await self.send_nowait(command, headers, timeout=timeout)

    def api_nowait(
        self,
        command: str,
        *,
        timeout: Timeout = USE_DEFAULT,
        on_done: Callable[[asyncio.Future[str]], object] | None = None,
    ) -> asyncio.Future[str]:
        """Send an API command now; return the future of its output (see :meth:`api`;
        ``on_done`` as in :meth:`send_nowait`)."""
        line = f"api {command}"
        data = self._encode(line, ())
        read = functools.partial(self._api_output, command)
        return self._request(data, line, read, self._timeout(timeout), on_done)

    async def api(self, command: str, *, timeout: Timeout = USE_DEFAULT) -> str:
        """Run an API command and return its output.

        Raises :class:`APIError` when the output is a ``-ERR`` or ``-USAGE``
        answer, :class:`CommandTimeout` after ``timeout`` seconds (default:
        :attr:`command_timeout`), :class:`ConnectionLost` if the connection drops.
        """
        return await self.api_nowait(command, timeout=timeout)

    def _api_output(self, command: str, frame: Frame) -> str:
        answered = frame.content_type == "api/response"  # else e.g. -ERR permission denied
        body = frame.text if answered else ""
        if answered and not body.startswith(_ERROR_ANSWERS):
            return body
        source = f"{self.address}: {_describe('api ' + command)}"  # made for errors only
        if not answered:
            raise APIError(f"{source}: {frame.reply_text}", frame.reply_text)
        raise _api_error(source, body)

    async def bgapi(
        self,
        command: str,
        *,
        job_uuid: str | None = None,
        timeout: Timeout = USE_DEFAULT,
    ) -> BackgroundJob:
        """Start an API command in the background; returns once FreeSWITCH accepted it.

        The job's result arrives in a BACKGROUND_JOB event, so the connection
        subscribes to BACKGROUND_JOB first if it has not already.
        """
        job_uuid = job_uuid or ids.new_uuid()
        check_line(job_uuid, "job_uuid")
        if not {"BACKGROUND_JOB", "ALL"} & set(self._subscribed):
            await self.subscribe(["BACKGROUND_JOB"], fmt=self._format)
        future: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        # Registered before sending: the result can arrive right behind the reply.
        self._jobs[job_uuid] = future
        try:
            reply = await self.send(f"bgapi {command}", [("Job-UUID", job_uuid)], timeout=timeout)
        except BaseException:
            self._jobs.pop(job_uuid, None)
            raise
        source = f"{self.address}: {_describe('bgapi ' + command)}"
        if not reply.reply_text.startswith("+OK"):
            self._jobs.pop(job_uuid, None)
            raise APIError(f"{source}: {reply.reply_text}", reply.reply_text)
        return BackgroundJob(job_uuid, command, future, source)

    async def send_command(self, command: str, *, timeout: Timeout = USE_DEFAULT) -> str:
        """Send a socket command (``event``, ``filter``, ``log``...); return its
        Reply-Text, raising :class:`CommandError` when it is an ``-ERR``."""
        frame = await self.send(command, timeout=timeout)
        text = frame.reply_text
        if not text.startswith("+OK"):
            raise CommandError(f"{self.address}: {command}: {text}", text)
        return text

    # -- subscriptions and filters ---------------------------------------------------------
    async def subscribe(self, events: Iterable[str] | str, fmt: str = "plain") -> None:
        """Receive these events (names like ``CHANNEL_ANSWER``, ``ALL``, or CUSTOM
        subclasses like ``mod_bert::lost_sync``) in ``fmt`` (``plain`` or ``json``).

        Subscriptions add up; the format applies to all of them.
        """
        if fmt not in _EVENT_FORMATS:
            raise ValueError(f"event format must be one of {_EVENT_FORMATS}, got {fmt!r}")
        names = [events] if isinstance(events, str) else list(events)
        for name in names:
            if not name or " " in name:
                raise ValueError(f"invalid event name {name!r}")
        await self.send_command(f"event {fmt} {_event_tokens(names)}")
        self._format = fmt
        for name in names:
            if name not in self._subscribed:
                self._subscribed.append(name)

    async def unsubscribe(self, events: Iterable[str] | str) -> None:
        """Stop receiving these events (``nixevent``)."""
        names = [events] if isinstance(events, str) else list(events)
        await self.send_command(f"nixevent {_event_tokens(names)}")
        self._subscribed = [name for name in self._subscribed if name not in names]

    async def unsubscribe_all(self) -> None:
        """Stop receiving any event (``noevents``); queued events are dropped by the server."""
        await self.send_command("noevents")
        self._subscribed.clear()

    @property
    def subscriptions(self) -> list[str]:
        """The event names and CUSTOM subclasses subscribed, in order."""
        return list(self._subscribed)

    async def add_filter(self, header: str, value: str) -> None:
        """Only receive events whose ``header`` matches ``value`` (see ESL_PROTOCOL §2.5)."""
        if not header or " " in header:
            raise ValueError(f"invalid filter header {header!r}")
        if not value.strip():
            # "filter <header> " would delete the header's filters instead.
            raise ValueError(f"empty filter value for {header!r}")
        await self.send_command(f"filter {header} {value}")
        self._filters.append((header, value))

    async def remove_filter(self, header: str, value: str | None = None) -> None:
        """Remove one filter value, or every filter on ``header`` when ``value`` is None."""
        command = f"filter delete {header}" if value is None else f"filter delete {header} {value}"
        await self.send_command(command)
        self._filters = [
            (h, v) for h, v in self._filters if not (h == header and value in (None, v))
        ]

    # -- events ------------------------------------------------------------------------------
    def on_event(self, callback: EventCallback) -> Callable[[], None]:
        """Call ``callback(event)`` for every event received; returns a function that
        removes it. Callbacks run in the event loop and must not block."""
        self._event_callbacks.append(callback)
        return lambda: self._remove(self._event_callbacks, callback)

    def on_disconnect(self, callback: DisconnectCallback) -> Callable[[], None]:
        """Call ``callback(error)`` when the connection drops (not on :meth:`close`)."""
        self._disconnect_callbacks.append(callback)
        return lambda: self._remove(self._disconnect_callbacks, callback)

    def on_reconnect(self, callback: ReconnectCallback) -> Callable[[], None]:
        """Call ``callback()`` after an automatic reconnection restored the session."""
        self._reconnect_callbacks.append(callback)
        return lambda: self._remove(self._reconnect_callbacks, callback)

    @staticmethod
    def _remove(callbacks: list[Any], callback: Any) -> None:
        with contextlib.suppress(ValueError):
            callbacks.remove(callback)

    async def events(self, maxsize: int = DEFAULT_EVENT_QUEUE_SIZE) -> AsyncIterator[Event]:
        """Iterate over received events until the connection closes.

        Each iterator has its own queue of ``maxsize`` events; when it is full,
        new events are dropped for that iterator, counted in
        :attr:`dropped_events`, and logged.
        """
        queue: asyncio.Queue[object] = asyncio.Queue(maxsize)
        self._queues.append(queue)
        try:
            while True:
                item = await queue.get()
                if item is _CLOSED:
                    return
                assert isinstance(item, Event)
                yield item
        finally:
            self._remove(self._queues, queue)

    # -- incoming frames ---------------------------------------------------------------------
    def _frames_received(self, protocol: _Protocol, frames: list[Frame]) -> None:
        if protocol is not self._protocol:
            return
        for frame in frames:
            content_type = frame.content_type
            if content_type in ("command/reply", "api/response"):
                self._reply_received(frame)
            elif content_type in ("text/event-plain", "text/event-json"):
                self._event_received(frame.event)
            elif content_type == "text/disconnect-notice":
                if frame.headers.get("Content-Disposition") != "linger":
                    self._disconnect_reason = frame.text.strip() or "disconnect notice"
            elif self._greeting is not None and not self._greeting.done():
                self._greeting.set_result(frame)  # auth/request or rude-rejection
            elif content_type == "text/rude-rejection":
                self._disconnect_reason = "access denied"
            elif content_type != "log/data":
                log.debug("%s: ignoring a %s frame", self.address, content_type)

    def _reply_received(self, frame: Frame) -> None:
        if not self._replies:
            log.warning("%s: unexpected %s, no command waiting", self.address, frame.content_type)
            return
        self._replies.popleft().finish(frame)

    def _event_received(self, event: Event) -> None:
        if event.name == "BACKGROUND_JOB":
            job_uuid = event.job_uuid
            future = self._jobs.pop(job_uuid, None) if job_uuid else None
            if future is not None and not future.done():
                future.set_result(event)
        for callback in self._event_callbacks:
            try:
                callback(event)
            except Exception:
                log.exception("%s: event callback %r failed on %r", self.address, callback, event)
        for queue in self._queues:
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                self._dropped_events += 1
                if self._dropped_events in (1, 10, 100) or self._dropped_events % 1000 == 0:
                    log.warning(
                        "%s: event iterator is %d events behind; %d dropped so far",
                        self.address,
                        queue.qsize(),
                        self._dropped_events,
                    )

    def _protocol_error(self, protocol: _Protocol, exc: ProtocolError) -> None:
        if protocol is not self._protocol:
            return
        log.error("%s: protocol error, closing: %s", self.address, exc)
        self._disconnect_reason = f"protocol error: {exc}"
        if protocol.transport is not None:
            protocol.transport.abort()

    def _loss_reason(self) -> str:
        if self._closing:
            return "connection closed"
        return self._disconnect_reason or "connection lost"

    def _connection_lost(self, protocol: _Protocol, exc: Exception | None) -> None:
        if protocol is not self._protocol:
            return
        self._protocol = None
        was_authenticated, self._authenticated = self._authenticated, False
        self._connected_event.clear()
        reason = self._loss_reason()
        if exc is not None and self._disconnect_reason is None and not self._closing:
            reason = f"connection lost: {exc}"
        error = ConnectionLost(f"{self.address}: {reason}")
        if self._greeting is not None and not self._greeting.done():
            self._greeting.set_exception(ConnectError(f"{self.address}: {reason}"))
        replies, self._replies = self._replies, deque()
        for request in replies:
            request.fail(error)
        self._watched.clear()
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        jobs, self._jobs = self._jobs, {}
        for job in jobs.values():
            if not job.done():
                job.set_exception(error)
        if self._closing:
            self._end_event_streams()
            return
        if not was_authenticated:
            return  # a failed open(): the caller gets the error
        log.warning("%s: %s", self.address, reason)
        for callback in list(self._disconnect_callbacks):
            try:
                callback(error)
            except Exception:
                log.exception("%s: disconnect callback %r failed", self.address, callback)
        if self._reconnect is not None:
            self._reconnect_task = asyncio.ensure_future(self._reconnect_loop(self._reconnect))
        else:
            self._closing = True
            self._end_event_streams()

    def _end_event_streams(self) -> None:
        for queue in self._queues:
            while True:
                try:
                    queue.put_nowait(_CLOSED)
                    break
                except asyncio.QueueFull:
                    queue.get_nowait()  # make room for the end marker

    # -- reconnection ------------------------------------------------------------------------
    async def _reconnect_loop(self, policy: ReconnectPolicy) -> None:
        for attempt, delay in enumerate(policy.delays(), start=1):
            await asyncio.sleep(delay)
            if self._closing:
                return
            try:
                await self.open()
                await self._restore_session()
            except ConnectError as exc:
                log.info("%s: reconnection attempt %d failed: %s", self.address, attempt, exc)
                continue
            except (ConnectionLost, CommandError, CommandTimeout) as exc:
                log.info("%s: reconnected but could not restore: %s", self.address, exc)
                self._abort()
                continue
            log.warning("%s: reconnected after %d attempt(s)", self.address, attempt)
            for callback in list(self._reconnect_callbacks):
                try:
                    callback()
                except Exception:
                    log.exception("%s: reconnect callback %r failed", self.address, callback)
            return
        log.error("%s: giving up reconnecting", self.address)
        self._closing = True
        self._end_event_streams()

    async def _restore_session(self) -> None:
        if self._subscribed:
            await self.send_command(f"event {self._format} {_event_tokens(self._subscribed)}")
        for header, value in self._filters:
            await self.send_command(f"filter {header} {value}")

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait until the connection is (re)established."""
        await asyncio.wait_for(self._connected_event.wait(), timeout)

    # -- closing -----------------------------------------------------------------------------
    async def close(self, timeout: float = 2.0) -> None:
        """Say ``exit``, wait briefly for the server to close, then drop the socket."""
        if self._closing and self._protocol is None:
            return
        self._closing = True
        if self._reconnect_task is not None:
            self._reconnect_task.cancel()
        protocol = self._protocol
        if protocol is not None and protocol.transport is not None:
            if self._authenticated:
                with contextlib.suppress(ConnectionLost):
                    self._request(b"exit\n\n", "exit", None, None, _ignore_result)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(protocol.closed), timeout)
            if protocol.transport is not None:
                protocol.transport.abort()
        self._end_event_streams()

    async def __aenter__(self) -> Connection:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def _describe_os_error(exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is an event socket listening there?)"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host name ({exc.strerror})"
    return exc.strerror or str(exc)


def _ignore_result(future: asyncio.Future[Any]) -> None:
    future.exception()


def _event_tokens(names: Iterable[str]) -> str:
    """Event names first, then ``CUSTOM`` and the subclasses (``a::b``) after it."""
    plain = [name for name in names if "::" not in name]
    subclasses = [name for name in names if "::" in name]
    if subclasses:
        plain = [name for name in plain if name != "CUSTOM"] + ["CUSTOM", *subclasses]
    return " ".join(plain)


async def connect(
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    password: str = DEFAULT_PASSWORD,
    *,
    user: str | None = None,
    timeout: float = DEFAULT_CONNECT_TIMEOUT,
    command_timeout: float | None = DEFAULT_COMMAND_TIMEOUT,
    reconnect: ReconnectPolicy | bool = False,
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    read_interval: float = 0.0,
) -> Connection:
    """Open an authenticated event-socket connection.

    ``user`` switches to ``userauth user@domain:password``. ``reconnect``
    (True or a :class:`ReconnectPolicy`) re-opens a dropped connection with
    backoff and restores its subscriptions and filters. ``read_interval``
    (seconds, 0 by default) trades latency for CPU: after a read that empties
    the socket, the next read waits for the next multiple of it on the loop's
    clock (:func:`switchy.ticks.next_tick`), so a busy connection is read, and
    its frames handled, in batches, each up to that much later, and connections
    with the same interval are read in the same pass; the commands a pass sends
    then go out in one write. Raises
    :class:`ConnectError`, :class:`AuthenticationError` or :class:`AccessDenied`,
    each naming ``host:port`` (never the password).
    """
    connection = Connection(
        host,
        port,
        password,
        user=user,
        connect_timeout=timeout,
        command_timeout=command_timeout,
        reconnect=reconnect,
        max_frame_size=max_frame_size,
        read_interval=read_interval,
    )
    await connection.open()
    return connection
