"""The simulator's event socket: a TCP server speaking ESL like FreeSWITCH 1.10.12.

:class:`ESLServer` plays ``mod_event_socket`` for one simulated :class:`Node`:
every connection is a *listener* with its own subscriptions, filters and event
queue, served exactly as ``listener_run`` / ``parse_command`` / ``api_exec`` do
(ESL_PROTOCOL.md §1–§2, §4, §7). Where the simulator relies on FreeSWITCH
behaviour that neither the traces nor ESL_PROTOCOL.md show, a comment says
"unverified".
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from switchy import ids
from switchy.errors import ProtocolError
from switchy.sim import wire
from switchy.sim.api import UnknownCommand
from switchy.sim.events import SimEvent
from switchy.sim.switch import Node

__all__ = ["EVENT_NAMES", "ESLServer", "UserAuth", "event_type"]

logger = logging.getLogger(__name__)

#: Every event type name FreeSWITCH 1.10.12 knows (``switch_event.c:EVENT_NAMES``).
EVENT_NAMES: tuple[str, ...] = (
    "CUSTOM",
    "CLONE",
    "CHANNEL_CREATE",
    "CHANNEL_DESTROY",
    "CHANNEL_STATE",
    "CHANNEL_CALLSTATE",
    "CHANNEL_ANSWER",
    "CHANNEL_HANGUP",
    "CHANNEL_HANGUP_COMPLETE",
    "CHANNEL_EXECUTE",
    "CHANNEL_EXECUTE_COMPLETE",
    "CHANNEL_HOLD",
    "CHANNEL_UNHOLD",
    "CHANNEL_BRIDGE",
    "CHANNEL_UNBRIDGE",
    "CHANNEL_PROGRESS",
    "CHANNEL_PROGRESS_MEDIA",
    "CHANNEL_OUTGOING",
    "CHANNEL_PARK",
    "CHANNEL_UNPARK",
    "CHANNEL_APPLICATION",
    "CHANNEL_ORIGINATE",
    "CHANNEL_UUID",
    "API",
    "LOG",
    "INBOUND_CHAN",
    "OUTBOUND_CHAN",
    "STARTUP",
    "SHUTDOWN",
    "PUBLISH",
    "UNPUBLISH",
    "TALK",
    "NOTALK",
    "SESSION_CRASH",
    "MODULE_LOAD",
    "MODULE_UNLOAD",
    "DTMF",
    "MESSAGE",
    "PRESENCE_IN",
    "NOTIFY_IN",
    "PRESENCE_OUT",
    "PRESENCE_PROBE",
    "MESSAGE_WAITING",
    "MESSAGE_QUERY",
    "ROSTER",
    "CODEC",
    "BACKGROUND_JOB",
    "DETECTED_SPEECH",
    "DETECTED_TONE",
    "PRIVATE_COMMAND",
    "HEARTBEAT",
    "TRAP",
    "ADD_SCHEDULE",
    "DEL_SCHEDULE",
    "EXE_SCHEDULE",
    "RE_SCHEDULE",
    "RELOADXML",
    "NOTIFY",
    "PHONE_FEATURE",
    "PHONE_FEATURE_SUBSCRIBE",
    "SEND_MESSAGE",
    "RECV_MESSAGE",
    "REQUEST_PARAMS",
    "CHANNEL_DATA",
    "GENERAL",
    "COMMAND",
    "SESSION_HEARTBEAT",
    "CLIENT_DISCONNECTED",
    "SERVER_DISCONNECTED",
    "SEND_INFO",
    "RECV_INFO",
    "RECV_RTCP_MESSAGE",
    "SEND_RTCP_MESSAGE",
    "CALL_SECURE",
    "NAT",
    "RECORD_START",
    "RECORD_STOP",
    "PLAYBACK_START",
    "PLAYBACK_STOP",
    "CALL_UPDATE",
    "FAILURE",
    "SOCKET_DATA",
    "MEDIA_BUG_START",
    "MEDIA_BUG_STOP",
    "CONFERENCE_DATA_QUERY",
    "CONFERENCE_DATA",
    "CALL_SETUP_REQ",
    "CALL_SETUP_RESULT",
    "CALL_DETAIL",
    "DEVICE_STATE",
    "TEXT",
    "SHUTDOWN_REQUESTED",
    "ALL",
)

# The types `myevents` subscribes to (CHANNEL_CALLSTATE is not among them).
_MYEVENTS_TYPES = frozenset(
    {
        "CHANNEL_ANSWER",
        "CHANNEL_APPLICATION",
        "CHANNEL_BRIDGE",
        "CHANNEL_CREATE",
        "CHANNEL_DATA",
        "CHANNEL_DESTROY",
        "CHANNEL_EXECUTE",
        "CHANNEL_EXECUTE_COMPLETE",
        "CHANNEL_HANGUP",
        "CHANNEL_HANGUP_COMPLETE",
        "CHANNEL_ORIGINATE",
        "CHANNEL_UUID",
        "CHANNEL_OUTGOING",
        "CHANNEL_PARK",
        "CHANNEL_PROGRESS",
        "CHANNEL_PROGRESS_MEDIA",
        "CHANNEL_STATE",
        "CHANNEL_UNBRIDGE",
        "CHANNEL_UNPARK",
        "DETECTED_SPEECH",
        "DTMF",
        "NOTALK",
        "TALK",
    }
)
_ALL_TYPES = frozenset(EVENT_NAMES)
_ENCODED_NAMES = tuple((name, name.encode("ascii")) for name in EVENT_NAMES)
_FORMATS: dict[str, wire.EventFormat] = {"plain": "plain", "json": "json", "xml": "xml"}
# Events after which a session-bound socket treats its channel as down.
_CHANNEL_DOWN_EVENTS = frozenset({"CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_DESTROY"})
# API commands whose argument is itself a command, checked against userauth permissions.
_NESTING_COMMANDS = frozenset({"bgapi", "sched_api", "eval", "expand", "xml_wrap"})
# switch_log.c LEVELS; a level's number is its index minus one.
_LOG_LEVELS = ("disable", "console", "alert", "crit", "err", "warning", "notice", "info", "debug")
_LOG_INVALID = 64

# Event-Calling-* of the events this layer creates.
_API_CALLING = ("switch_loadable_module.c", "switch_api_execute", 2954)
_JOB_CALLING = ("mod_event_socket.c", "api_exec", 1572)
# Unverified: the 1.10.12 line numbers of these two are not in the traces.
_COMMANDS_JOB_CALLING = ("mod_commands.c", "bgapi_exec", 5351)
_SENDEVENT_CALLING = ("mod_event_socket.c", "parse_command", 2275)

_JOB_UUID_MAX = 255
# Events written to a client at once, at most.
_FLUSH_BATCH = 256
_C_SPACE = " \t\n\v\f\r"
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _lower(text: str) -> str:
    """Lower-case ASCII letters only, as ``strcasecmp`` compares."""
    return text.translate(_ASCII_LOWER)


def _snprintf(text: str, size: int = wire.REPLY_MAX) -> str:
    """What FreeSWITCH keeps of ``text`` printed into a ``char[size + 1]`` buffer."""
    return wire.from_bytes(wire.truncate(wire.to_bytes(text), size))


def event_type(token: str) -> str | None:
    """``switch_name_event``: the event type ``token`` names, or None.

    Case-insensitive; a token longer than 13 characters also matches by its
    text after the 13th character (meant for a ``SWITCH_EVENT_`` prefix).
    """
    upper = wire.to_bytes(token).upper()  # bytes.upper() changes ASCII letters only
    for name, encoded in _ENCODED_NAMES:
        if (len(upper) > 13 and upper[13:] == encoded) or upper == encoded:
            return name
    return None


def _header(event: SimEvent, name: str) -> str | None:
    """First value of header ``name``, matched case-insensitively like FreeSWITCH."""
    wanted = _lower(name)
    size = len(wanted)
    for key, value in event.headers:
        if len(key) == size and _lower(key) == wanted:
            return value
    return None


@lru_cache(maxsize=256)
def _filter_regex(expression: str) -> re.Pattern[str] | None:
    """``switch_regex_perform``'s ``/regex/flags`` (flags i and s); None if invalid."""
    closing = expression.rfind("/")
    if closing <= 0:
        return None  # FreeSWITCH logs "missing ending '/' delimeter" and matches nothing
    options = expression[closing + 1 :]
    flags = (re.IGNORECASE if "i" in options else 0) | (re.DOTALL if "s" in options else 0)
    try:
        # Python's re stands in for PCRE; they agree on the patterns filters use.
        return re.compile(expression[1:closing], flags)
    except re.error:
        return None


def _log_level(text: str) -> int:
    """``switch_log_str2level``: a level number, or 64 (SWITCH_LOG_INVALID)."""
    digits = text[1:] if text[:1] in "+-" else text
    if all(char == "." or "0" <= char <= "9" for char in digits):
        level = wire.c_atoi(text)
        return _LOG_INVALID - 1 if level > _LOG_INVALID else max(level, 0)
    lowered = _lower(text)
    if lowered in _LOG_LEVELS:
        return _LOG_LEVELS.index(lowered) - 1
    return _LOG_INVALID


@dataclass(frozen=True)
class UserAuth:
    """A directory user allowed to log in with ``userauth <user>@<domain>:<password>``.

    The ``allowed_*`` values are written as the user's ``esl-allowed-events`` /
    ``esl-allowed-api`` params are (names separated by commas, or by spaces if
    there is any space; tokens after ``CUSTOM`` are subclasses). None means no
    restriction; ``allowed_log=False`` refuses ``log``.
    """

    password: str
    allowed_events: str | None = None
    allowed_api: str | None = None
    allowed_log: bool | None = None


class ESLServer:
    """An event socket serving ``node``, as ``mod_event_socket`` serves FreeSWITCH.

    ``users`` maps ``"user@domain"`` to :class:`UserAuth` for ``userauth``; ``acl``
    decides by peer IP whether a client may connect. ``first_packet_timeout``,
    ``event_queue_size`` and ``max_lost_events`` default to FreeSWITCH's 25 s,
    100000 and 500; tests lower them.
    """

    def __init__(
        self,
        node: Node,
        host: str = "127.0.0.1",
        port: int = 0,
        password: str = "ClueCon",
        *,
        users: Mapping[str, UserAuth] | None = None,
        acl: Callable[[str], bool] | None = None,
        first_packet_timeout: float = 25.0,
        event_queue_size: int = 100_000,
        max_lost_events: int = 500,
    ) -> None:
        self.node = node
        self.password = password
        self.users: dict[str, UserAuth] = dict(users or {})
        self.acl = acl
        self.first_packet_timeout = first_packet_timeout
        self.event_queue_size = event_queue_size
        self.max_lost_events = max_lost_events
        self._host = host
        self._port = port
        self._server: asyncio.AbstractServer | None = None
        self._listeners: set[_Listener] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._jobs: set[asyncio.Task[None]] = set()
        self._replies_flowing = asyncio.Event()
        self._replies_flowing.set()

    @property
    def host(self) -> str:
        """The address the server listens on."""
        return self._host

    @property
    def port(self) -> int:
        """The listening port (the one the OS chose once started with ``port=0``)."""
        return self._port

    @property
    def serving(self) -> bool:
        """True while the server accepts connections."""
        return self._server is not None

    @property
    def connection_count(self) -> int:
        """Clients currently connected (past the ACL), authenticated or not."""
        return len(self._listeners)

    async def start(self) -> None:
        """Start listening (again on the same port once it was chosen).

        From then on the server follows its node: it says goodbye when the node
        shuts down, drops everything when it crashes, listens again when it restarts.
        """
        self._server = await asyncio.start_server(self._serve_client, self._host, self._port)
        self._port = self._server.sockets[0].getsockname()[1]
        self.node.add_shutdown_hook(self._node_shut_down)
        self.node.add_crash_hook(self._node_crashed)
        self.node.add_restart_hook(self._node_restarted)

    async def close(self) -> None:
        """Stop as FreeSWITCH does: every client gets the shutdown notice, then the close."""
        self.node.remove_shutdown_hook(self._node_shut_down)
        self.node.remove_crash_hook(self._node_crashed)
        self.node.remove_restart_hook(self._node_restarted)
        self._stop_listening()
        self.disconnect_all(wire.SHUTDOWN)
        pending = self._cancel_tasks()
        await asyncio.gather(*pending, return_exceptions=True)

    def _cancel_tasks(self) -> list[asyncio.Task[None]]:
        """Cancel every connection handler and background job (but the calling task)."""
        current = asyncio.current_task()
        pending = [task for task in (*self._handlers, *self._jobs) if task is not current]
        for task in pending:
            task.cancel()
        return pending

    async def __aenter__(self) -> ESLServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- test knobs ------------------------------------------------------------------

    def stall_replies(self) -> None:
        """Hold back every reply (and what would follow it) until :meth:`resume_replies`."""
        self._replies_flowing.clear()

    def resume_replies(self) -> None:
        """Let held replies (and what follows them) go out again."""
        self._replies_flowing.set()

    def drop_connections(self) -> None:
        """Close every connection abruptly, with no notice, as a crash would."""
        for listener in list(self._listeners):
            listener.abort()

    def disconnect_all(self, notice_body: str = wire.GOODBYE) -> None:
        """Send every client a disconnect notice with ``notice_body``, then close it."""
        for listener in list(self._listeners):
            listener.finish(notice_body)

    # -- connections -------------------------------------------------------------------

    async def _serve_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            await _Listener(self, reader, writer).run()
        finally:
            if task is not None:
                self._handlers.discard(task)

    def _register(self, listener: _Listener) -> None:
        self._listeners.add(listener)
        self.node.add_listener(listener.on_event)

    def _unregister(self, listener: _Listener) -> None:
        self._listeners.discard(listener)
        self.node.remove_listener(listener.on_event)
        self.node.events.withdraw_interest(listener)

    async def _node_shut_down(self) -> None:
        """The switch shut down (``fsctl shutdown``): the module goes with it."""
        self.disconnect_all(wire.SHUTDOWN)
        self._stop_listening()

    def _node_crashed(self) -> None:
        """The switch died: sockets close with nothing sent, commands never answer."""
        self._stop_listening()
        self.drop_connections()
        self._cancel_tasks()

    async def _node_restarted(self) -> None:
        """The switch is back: the module listens again on the same address."""
        if self._server is None:
            await self.start()

    def _stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    async def _unload_module(self, reload: bool) -> None:
        """``unload``/``reload mod_event_socket``: every listener is shut down and closed."""
        await self._node_shut_down()
        if reload:
            self.node.remove_shutdown_hook(self._node_shut_down)
            await self.start()

    # -- API execution (switch_api_execute, api_exec, mod_commands bgapi) --------------------

    async def _execute(self, command: str, arg: str | None) -> tuple[str, bool]:
        """Run one API command as ``switch_api_execute``: (output, whether it exists).

        The ``API`` event is created (and numbered) before the command runs and
        fired after it returns, so events the command causes sort between.
        """
        name = command.strip(_C_SPACE)
        args = "" if arg is None else arg.strip(_C_SPACE)
        factory = self.node.events
        event = None
        if factory.wanted("API"):
            event = factory.create("API", _API_CALLING)
            event.add("API-Command", name)
            event.add("API-Command-Argument", args)
        else:
            factory.skip()  # nobody takes API events: not built, still numbered
        try:
            output, found = await self._run_api(name, args), True
        except UnknownCommand:
            output, found = "", False
        except Exception:
            logger.exception("simulated API command %r %r failed", name, args)
            output, found = "", False
        if event is not None:
            self.node.fire(event)
        return output, found

    async def _run_api(self, name: str, args: str) -> str:
        command = _lower(name)
        # `bgapi` as an API command is mod_commands' job runner, not a node command.
        if command == "bgapi":
            return self._start_commands_job(args)
        if command in ("unload", "reload") and args == "mod_event_socket":
            await self._unload_module(reload=command == "reload")
            return "+OK\n"
        return await self.node.execute_api(name, args)

    def _start_job(self, job_uuid: str, owner_uuid: str, command: str, arg: str | None) -> None:
        """A socket ``bgapi``: run the command in the background, then fire BACKGROUND_JOB."""
        self._spawn(self._socket_job(job_uuid, owner_uuid, command, arg))

    async def _socket_job(
        self, job_uuid: str, owner_uuid: str, command: str, arg: str | None
    ) -> None:
        output, found = await self._execute(command, arg)
        event = self.node.events.create("BACKGROUND_JOB", _JOB_CALLING)
        event.add("Job-UUID", job_uuid)
        event.add("Job-Owner-UUID", owner_uuid)
        event.add("Job-Command", command)
        if arg is not None:
            event.add("Job-Command-Arg", arg)
        # Unlike `api`, empty output stays empty: no "-ERR no reply".
        event.body = output if found else f"-ERR {command} Command not found!\n"
        self.node.fire(event)

    def _start_commands_job(self, args: str) -> str:
        """``api bgapi <cmd>``: mod_commands' bgapi, with its own reply and job event."""
        if not args:
            return "-ERR Invalid syntax\n"
        job_uuid = ids.new_uuid()
        command, space, arg = args.partition(" ")
        self._spawn(self._commands_job(job_uuid, command, arg if space else None))
        return f"+OK Job-UUID: {job_uuid}\n"

    async def _commands_job(self, job_uuid: str, command: str, arg: str | None) -> None:
        output, found = await self._execute(command, arg)
        event = self.node.events.create("BACKGROUND_JOB", _COMMANDS_JOB_CALLING)
        event.add("Job-UUID", job_uuid)
        event.add("Job-Command", command)
        if arg is not None:
            event.add("Job-Command-Arg", arg)
        event.body = output if found else f"{command}: Command not found!\n"
        self.node.fire(event)

    def _spawn(self, job: Coroutine[Any, Any, None]) -> None:
        task = self.node.loop.create_task(job)
        self._jobs.add(task)
        task.add_done_callback(self._job_done)

    def _job_done(self, task: asyncio.Task[None]) -> None:
        self._jobs.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("background job failed", exc_info=task.exception())


class _Signal:
    """asyncio.Event's set, clear and wait, for one waiter at a time, with a timeout.

    Bound to its loop from the start: asyncio.Event looks the running loop up
    at every wait, a system call (getpid) on Python 3.11, and a listener waits
    for every event it is sent.
    """

    __slots__ = ("_flag", "_loop", "_waiter")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._flag = False
        self._waiter: asyncio.Future[None] | None = None

    def set(self) -> None:
        self._flag = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def clear(self) -> None:
        self._flag = False

    async def wait(self, timeout: float | None = None) -> None:
        """Return once set, or after ``timeout`` seconds."""
        if self._flag:
            return
        waiter = self._waiter = self._loop.create_future()
        timer = None if timeout is None else self._loop.call_later(timeout, _release, waiter)
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()


def _release(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class _Listener:
    """One client connection: ``listener_t`` and its ``listener_run`` thread."""

    def __init__(
        self, server: ESLServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._server = server
        self._node = server.node
        self._reader = reader
        self._writer = writer
        peer = writer.get_extra_info("peername")
        self._peer_ip: str = peer[0] if peer else ""
        self._packets = wire.PacketReader()
        self._input_ended = False
        loop = asyncio.get_running_loop()
        self._input_wanted = _Signal(loop)
        self._input_wanted.set()
        self._wakeup = _Signal(loop)
        self._closed = asyncio.Event()
        self._closing = False
        self._stop_after_reply = False
        # Login and userauth permissions (None: unrestricted).
        self._authed = False
        self._allow_log = True
        self._allowed_api: set[str] | None = None
        self._allowed_events: set[str] | None = None
        self._allowed_subclasses: set[str] | None = None
        # Subscriptions: event_list, event_hash (subclasses) and the listener's format.
        self._format: wire.EventFormat = "plain"
        self._events_on = False
        self._event_types: set[str] = set()
        self._subclasses: set[str] = set()
        self._every_subclass = False  # `event ALL`: every subclass but those nixed
        self._nixed_subclasses: set[str] = set()
        self._filters: list[tuple[str, str]] = []
        self._log_level: int | None = None
        # `myevents`: the bound session, its channel name, hangup and linger.
        self._myevents = False
        self._session_uuid: str | None = None
        self._channel_name = ""
        self._channel_down = False
        self._linger: int | None = None  # seconds, -1 for ever; None when not lingering
        self._disconnecting = False
        self._linger_deadline: float | None = None
        self._queue: deque[SimEvent] = deque()
        self._lost_events = 0

    # -- life cycle ----------------------------------------------------------------------

    async def run(self) -> None:
        reader_task: asyncio.Task[None] | None = None
        try:
            if self._server.acl is not None and not self._server.acl(self._peer_ip):
                self._writer.write(wire.rude_rejection() + wire.disconnect_notice())
                self._writer.close()
                return
            self._server._register(self)
            self._writer.write(wire.GREETING)
            reader_task = asyncio.get_running_loop().create_task(self._read_input())
            await self._serve()
        except asyncio.CancelledError:
            # ESLServer.close() ends connections this way, even mid-command; the
            # handler then ends normally so asyncio's stream callback stays quiet.
            if not self._closing:
                self.abort()
        except Exception:
            logger.exception("event socket connection from %s failed", self._peer_ip)
            self.abort()
        finally:
            if reader_task is not None:
                reader_task.cancel()
            self._server._unregister(self)

    def finish(self, notice: str | None) -> None:
        """Close after sending a disconnect notice with body ``notice`` (None: no notice)."""
        if self._closing:
            return
        self._closing = True
        self._server._unregister(self)
        self._queue.clear()
        if notice is not None:
            self._writer.write(wire.disconnect_notice(notice, self._session_uuid))
        self._writer.close()
        self._closed.set()
        self._wakeup.set()

    def abort(self) -> None:
        """Drop the connection at once, with nothing more sent."""
        self._closing = True
        self._server._unregister(self)
        self._writer.transport.abort()
        self._closed.set()
        self._wakeup.set()

    async def _read_input(self) -> None:
        """Feed client bytes to the packet reader; read more only once those are handled."""
        try:
            while True:
                await self._input_wanted.wait()
                data = await self._reader.read(65536)
                if not data:
                    break
                self._packets.feed(data)
                self._input_wanted.clear()
                self._wakeup.set()
        except (ConnectionError, OSError):
            pass
        finally:
            self._input_ended = True
            self._wakeup.set()

    async def _serve(self) -> None:
        """``listener_run``: packets in order, events between them, timeouts, linger."""
        loop = asyncio.get_running_loop()
        first_packet_deadline: float | None = loop.time() + self._server.first_packet_timeout
        while not self._closing:
            self._wakeup.clear()
            try:
                packet = self._packets.next_packet()
            except ProtocolError as exc:
                logger.warning("dropping event socket client %s: %s", self._peer_ip, exc)
                self.abort()
                return
            if packet is not None:
                first_packet_deadline = None
                await self._handle(packet)
                continue
            if self._input_ended:
                self.finish(wire.GOODBYE)
                return
            self._input_wanted.set()
            # Like read_packet, deliver events only while no packet is half received.
            if self._queue and not self._packets.partial:
                await self._flush_events()
                continue
            if self._channel_down and not self._disconnecting:
                self._disconnecting = True
                if self._linger is None:
                    self.finish(wire.GOODBYE)
                    return
                self._write(
                    wire.linger_notice(self._session_uuid or "", self._channel_name, self._linger)
                )
                if self._linger >= 0:
                    self._linger_deadline = loop.time() + self._linger
            deadlines = [d for d in (first_packet_deadline, self._linger_deadline) if d is not None]
            timeout = min(deadlines) - loop.time() if deadlines else None
            if timeout is not None and timeout <= 0:
                self.finish(wire.GOODBYE)
                return
            await self._wakeup.wait(timeout)

    async def _handle(self, packet: wire.Packet) -> None:
        if not self._server._replies_flowing.is_set():
            await self._unless_closed(self._server._replies_flowing.wait())
        if self._closing:
            return
        reply = await self._dispatch(packet)
        if not self._closing:
            self._declare_interest()
        if reply:
            self._write(reply)
        if self._stop_after_reply:
            self.finish(wire.GOODBYE)
            return
        await self._drain()

    async def _flush_events(self) -> None:
        queue = self._queue
        while queue and not self._closing:
            # One write for what is queued: the bytes on the wire are the same.
            batch = min(len(queue), _FLUSH_BATCH)
            fmt = self._format
            self._write(wire.event_frames([queue.popleft() for _ in range(batch)], fmt))
            await self._drain()

    def _write(self, frame: bytes) -> None:
        if not self._closing:
            self._writer.write(frame)

    async def _drain(self) -> None:
        """Wait while the client reads too slowly, as FreeSWITCH's blocking send does."""
        transport = self._writer.transport
        if transport.get_write_buffer_size() <= transport.get_write_buffer_limits()[1]:
            return
        try:
            await self._unless_closed(self._writer.drain())
        except ConnectionError:
            self.abort()

    async def _unless_closed(self, waited: Awaitable[Any]) -> None:
        """Await ``waited``, giving up when the connection closes meanwhile."""
        task = asyncio.ensure_future(waited)
        closed = asyncio.ensure_future(self._closed.wait())
        try:
            await asyncio.wait({task, closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closed.cancel()
            if not task.done():
                task.cancel()
        if task.done() and not task.cancelled():
            task.result()

    # -- events (event_handler) ---------------------------------------------------------

    def _declare_interest(self) -> None:
        """Tell the node which event types this listener takes, so it builds no others."""
        types: frozenset[str] | None
        if self._session_uuid is not None or "ALL" in self._event_types:
            # A session-bound socket follows its channel through every event.
            types = None
        elif self._events_on:
            types = frozenset(self._event_types)
        else:
            types = frozenset()
        self._node.events.declare_interest(self, types)

    def on_event(self, event: SimEvent) -> None:
        """Offer one fired event to this listener: subscription, filters, queue."""
        if self._closing:
            return
        if self._wants(event):
            if len(self._queue) >= self._server.event_queue_size:
                self._lost_events += 1
                if self._lost_events > self._server.max_lost_events:
                    self.finish(wire.LOST_EVENTS)
                    return
            else:
                # A copy, as switch_event_dup makes: later changes must not show.
                self._queue.append(event.copy())
                self._lost_events = 0
                self._wakeup.set()
        if self._session_uuid is not None and _header(event, "Unique-ID") == self._session_uuid:
            self._channel_name = event.get("Channel-Name") or self._channel_name
            if event.name in _CHANNEL_DOWN_EVENTS and not self._channel_down:
                self._channel_down = True
                self._wakeup.set()

    def _wants(self, event: SimEvent) -> bool:
        if not self._events_on or not self._subscribed(event) or not self._passes_filters(event):
            return False
        if self._myevents and not self._is_mine(event):
            return False
        # A bound channel that hung up closes the socket: what follows is lost.
        return not (self._channel_down and self._linger is None)

    def _subscribed(self, event: SimEvent) -> bool:
        types = self._event_types
        if "ALL" in types:
            return True
        if event.name not in types:
            return False
        if event.name != "CUSTOM" or event.subclass is None:
            return True
        subclass = event.subclass
        return subclass in self._subclasses or (
            self._every_subclass and subclass not in self._nixed_subclasses
        )

    def _passes_filters(self, event: SimEvent) -> bool:
        """At least one positive filter matches and no negative one does."""
        if not self._filters:
            return True
        send = False
        for name, stored in self._filters:
            value = _header(event, name)
            if value is None:
                continue
            positive = True
            start = 0
            for char in stored:
                if char == "+":
                    positive = True
                elif char == "-":
                    positive = False
                elif char != " ":
                    break
                start += 1
            if send and positive:
                continue
            wanted = stored[start:]
            if stored.startswith("/"):
                pattern = _filter_regex(wanted)
                matched = pattern is not None and pattern.search(value) is not None
            else:
                matched = _lower(value) == _lower(wanted)
            if matched:
                if not positive:
                    return False
                send = True
        return send

    def _is_mine(self, event: SimEvent) -> bool:
        unique_id = _header(event, "Unique-ID")
        if self._session_uuid is None:
            return unique_id is not None
        return (
            unique_id == self._session_uuid
            or _header(event, "Job-Owner-UUID") == self._session_uuid
        )

    # -- commands (parse_command) ---------------------------------------------------------

    async def _dispatch(self, packet: wire.Packet) -> bytes:
        command = packet.command
        if command is None:
            self._stop_after_reply = True
            return wire.command_reply("-ERR command parse error.")
        lowered = _lower(command)
        # The module refuses to run its own unload: it becomes a background job.
        if "mod_event_socket" in lowered and ("unload" in lowered or "reload" in lowered):
            verb = "unload" if "unload" in lowered else "reload"
            command = lowered = f"api bgapi {verb} mod_event_socket"
        if lowered.startswith(("exit", "...")):
            self._stop_after_reply = True
            return wire.command_reply("+OK bye")
        if not self._authed:
            return self._login(command, lowered)
        session = self._session_uuid
        if lowered.startswith("filter "):
            return _reply(self._filter(command))
        if session is not None and lowered.startswith("resume"):
            return _reply("+OK")
        if session is not None or lowered.startswith("myevents "):
            if session is not None and lowered.startswith("getvar"):
                return _reply(self._getvar(session, command))
            if lowered.startswith("myevents"):
                return _reply(self._bind(command))
        if lowered.startswith("divert_events"):
            return _reply(self._divert_events(command))
        if lowered.startswith("sendmsg"):
            return _reply(self._sendmsg(command, packet))
        if lowered.startswith("sendevent"):
            return _reply(self._sendevent(command, packet))
        if lowered.startswith("api "):
            return await self._api(command)
        if lowered.startswith("bgapi "):
            return self._bgapi(command, packet)
        if lowered.startswith("log"):
            return _reply(self._log(command))
        if lowered.startswith("linger"):
            return _reply(self._linger_command(command))
        if lowered.startswith("nolinger"):
            if session is None:
                return _reply("-ERR not controlling a session")
            self._linger = None
            return _reply("+OK will not linger")
        if lowered.startswith("nolog"):
            logging_was_on = self._log_level is not None
            self._log_level = None
            return _reply("+OK no longer logging" if logging_was_on else "-ERR not loging")
        if lowered.startswith("event"):
            return _reply(self._subscribe(command))
        if lowered.startswith("nixevent"):
            return _reply(self._unsubscribe(command))
        if lowered.startswith("noevents"):
            return _reply(self._noevents())
        return _reply("")

    def _login(self, command: str, lowered: str) -> bytes:
        if lowered.startswith("auth "):
            if wire.strip_cr(command)[5:] == self._server.password:
                self._authed = True
                return _reply("+OK accepted")
            self._stop_after_reply = True
            return _reply("-ERR invalid")
        if lowered.startswith("userauth "):
            return self._userauth(command)
        return _reply("")

    def _userauth(self, command: str) -> bytes:
        self._allow_log = False
        user = wire.strip_cr(command)[9:]
        domain: str | None = None
        password: str | None = None
        if "@" in user:
            user, _, domain = user.partition("@")
            if ":" in domain:
                domain, _, password = domain.partition(":")
        if ":" in user:
            user, _, password = user.partition(":")
        account = self._server.users.get(f"{user}@{domain}") if user and domain else None
        if account is None or not account.password or not password or password != account.password:
            self._stop_after_reply = True
            return _reply("-ERR invalid")
        self._authed = True
        events_line = "Allowed-Events: all\n"
        if account.allowed_events is not None:
            self._allowed_events, self._allowed_subclasses = _parse_allowed_events(
                account.allowed_events
            )
            events_line = _snprintf(f"Allowed-Events: {account.allowed_events}\n")
        api_line = "Allowed-API: all\n"
        if account.allowed_api is not None:
            self._allowed_api = set(_split_list(account.allowed_api))
            api_line = _snprintf(f"Allowed-API: {account.allowed_api}\n")
        self._allow_log = account.allowed_log is not False
        log_line = f"Allowed-LOG: {'true' if self._allow_log else 'false'}\n"
        block = f"Reply-Text: +OK accepted\n{events_line}{api_line}{log_line}\n"
        return wire.raw_command_reply(block)

    def _filter(self, command: str) -> str:
        name, space, value = wire.strip_cr(command)[7:].lstrip(" ").partition(" ")
        if _lower(name) == "delete" and space:
            name, space, value = value.partition(" ")
            if _lower(name) == "all":
                self._filters.clear()
            else:
                self._filters = [
                    (key, stored)
                    for key, stored in self._filters
                    if _lower(key) != _lower(name) or (space and value and stored != value)
                ]
            return f"+OK filter deleted. [{name}][{value if space else ''}]"
        if not space:
            return "-ERR invalid syntax"
        if _lower(name) == "add":
            name, space, value = value.partition(" ")
            if not space:
                # Unverified: FreeSWITCH adds nothing and prints the NULL value.
                return f"+OK filter added. [{name}]=[(null)]"
        wire.add_header(self._filters, name, value)
        return f"+OK filter added. [{name}]=[{value}]"

    def _bind(self, command: str) -> str:
        """``myevents <uuid> [format]`` on an inbound socket."""
        if self._myevents:
            return "-ERR aready enabled."
        target, space, _ = wire.strip_cr(command)[9:].partition(" ")
        if target and self._node.has_channel(target):
            self._session_uuid = target
        elif space:
            return "-ERR invalid uuid"
        self._event_types |= _MYEVENTS_TYPES
        self._myevents = True
        self._events_on = True
        # FreeSWITCH cuts the line at the format before looking for one, so only a
        # format spelled inside the uuid itself is ever seen.
        checked = wire.strip_cr(command)[:9] + target
        if "xml" in checked or "XML" in checked:
            self._format = "xml"
        if "json" in checked or "JSON" in checked:
            self._format = "json"
        return "+OK Events Enabled"

    def _getvar(self, session: str, command: str) -> str:
        _, space, name = wire.strip_cr(command).partition(" ")
        channel = self._node.get_channel(session) if space else None
        return (channel.get_var(name) if channel is not None else None) or ""

    def _divert_events(self, command: str) -> str:
        if self._session_uuid is None:
            return "-ERR not controlling a session."
        setting = command[13:].lstrip(" ")
        setting = "" if setting.startswith(("\r", "\n")) else wire.strip_cr(setting)
        if not setting:
            return "-ERR missing value."
        # Unverified in effect: the simulator has no session event queue to divert.
        return "+OK events diverted" if _lower(setting) == "on" else "+OK events not diverted"

    def _sendmsg(self, command: str, packet: wire.Packet) -> str:
        rest = command[7:].lstrip(" ")
        target = None if rest.startswith(("\r", "\n")) else wire.strip_cr(rest)
        if not target:
            target = packet.get("session-id")
        if target and target == self._session_uuid:
            target = None
        if not target and self._session_uuid is not None:
            self._node.send_message(self._session_uuid, list(packet.headers), packet.body)
            return "+OK"
        if target and self._node.send_message(target, list(packet.headers), packet.body):
            return "+OK"
        return f"-ERR invalid session id [{target or ''}]"

    def _sendevent(self, command: str, packet: wire.Packet) -> str:
        """Fire the packet as an event: its headers, Event-UUID, then the standard prefix."""
        event_uuid = ids.new_uuid()
        headers = list(packet.headers)
        for index, (key, value) in enumerate(headers):
            if _lower(key) == "command":
                headers[index] = (key, wire.strip_cr(value))
                break
        headers.append(("Event-UUID", event_uuid))
        type_name = event_type(wire.strip_cr(command)[9:].lstrip(" \t")) or "CLONE"
        subclass = packet.get("Event-Subclass") if type_name == "CUSTOM" else None
        if subclass is not None:
            # switch_event_dup puts Event-Subclass first when the event is queued.
            headers = [("Event-Subclass", subclass)] + [
                h for h in headers if h[0] != "Event-Subclass"
            ]
        target = packet.get("Unique-ID")
        if target is not None and self._node.has_channel(target):
            # FreeSWITCH queues it to that session instead of firing it; the
            # simulated sessions have no such queue, so it goes nowhere.
            return f"+OK {event_uuid}"
        event = SimEvent(type_name, headers, packet.body)
        prefix = self._node.events.create(type_name, _SENDEVENT_CALLING)
        event.headers.extend(prefix.headers)
        self._node.fire(event)
        return f"+OK {event_uuid}"

    async def _api(self, command: str) -> bytes:
        line = wire.strip_cr(command[4:])
        name, space, arg = line.partition(" ")
        if not self._api_allowed(name, arg if space else None):
            return _reply("-ERR permission denied")
        output, found = await self._server._execute(name, arg if space else None)
        if not found:
            output = f"-ERR {name} Command not found!\n"
        return wire.api_response(wire.to_bytes(output or "-ERR no reply\n"))

    def _bgapi(self, command: str, packet: wire.Packet) -> bytes:
        name, space, arg = wire.strip_cr(command[6:]).partition(" ")
        if not self._api_allowed(name, arg if space else None):
            return _reply("-ERR permission denied")
        given = packet.get("Job-UUID")
        job_uuid = ids.new_uuid() if given is None else _snprintf(given, _JOB_UUID_MAX)
        self._server._start_job(job_uuid, self._session_uuid or "", name, arg if space else None)
        return wire.raw_command_reply(
            f"Reply-Text: +OK Job-UUID: {job_uuid}\nJob-UUID: {job_uuid}\n\n"
        )

    def _api_allowed(self, name: str, arg: str | None) -> bool:
        """``auth_api_command``: the command, and the one each nesting command runs."""
        allowed = self._allowed_api
        if allowed is None:
            return True
        words = [name, *(arg.split(" ") if arg is not None else [])]
        for word in words:
            if word not in allowed:
                return False
            if _lower(word) not in _NESTING_COMMANDS:
                break
        return True

    def _log(self, command: str) -> str:
        if not self._allow_log:
            return "-ERR permission denied"
        level_name = wire.strip_cr(command)[3:].lstrip(" ").partition(" ")[0]
        level = _log_level(level_name) if level_name else 7
        if level == _LOG_INVALID:
            return "-ERR invalid log level"
        # Log lines are not simulated: the level is kept, no log/data frame is sent.
        self._log_level = level
        return f"+OK log level {level_name} [{level}]"

    def _linger_command(self, command: str) -> str:
        if self._session_uuid is None:
            return "-ERR not controlling a session"
        seconds = wire.c_atoi(command[7:]) if command[6:7] == " " and command[7:8] else -1
        self._linger = seconds
        return "+OK will linger" if seconds == -1 else f"+OK will linger {seconds} seconds"

    def _subscribe(self, command: str) -> str:
        rest = wire.strip_cr(command)[5:]
        space = rest.find(" ")
        tokens = rest[space + 1 :].split(" ") if space >= 0 else []
        named = 0
        custom = False
        for position, token in enumerate(tokens):
            if position == 0 and _lower(token) in _FORMATS:
                # The format changes even if the command then fails.
                self._format = _FORMATS[_lower(token)]
                continue
            if custom:
                if self._allowed_subclasses is not None and token not in self._allowed_subclasses:
                    return "-ERR permission denied"
                self._subclasses.add(token)
                continue
            name = event_type(token)
            if name is None:
                continue
            if self._allowed_events is not None and name not in self._allowed_events:
                return "-ERR permission denied"
            named += 1
            if name == "ALL":
                self._event_types |= _ALL_TYPES
                if self._allowed_subclasses is None:
                    self._every_subclass = True
                    self._nixed_subclasses.clear()
                else:
                    self._subclasses |= self._allowed_subclasses
            self._event_types.add(name)
            custom = name == "CUSTOM"
        if not named:
            return "-ERR no keywords supplied"
        self._events_on = True
        return f"+OK event listener enabled {self._format}"

    def _unsubscribe(self, command: str) -> str:
        rest = wire.strip_cr(command)[8:]
        space = rest.find(" ")
        tokens = rest[space + 1 :].split(" ") if space >= 0 else []
        named = 0
        custom = False
        for token in tokens:
            if custom:
                self._subclasses.discard(token)
                self._nixed_subclasses.add(token)
                continue
            name = event_type(token)
            if name is None:
                continue
            named += 1
            if name == "CUSTOM":
                custom = True
            elif name == "ALL":
                self._event_types.clear()
            else:
                if "ALL" in self._event_types:
                    self._event_types = set(_ALL_TYPES - {"ALL"})
                self._event_types.discard(name)
        if not named:
            return "-ERR no keywords supplied"
        self._events_on = True
        return "+OK events nixed"

    def _noevents(self) -> str:
        self._queue.clear()
        if not self._events_on:
            return "-ERR not listening for events"
        self._events_on = False
        self._event_types.clear()
        self._subclasses.clear()
        self._every_subclass = False
        self._nixed_subclasses.clear()
        return "+OK no longer listening for events"


def _reply(text: str) -> bytes:
    """A command/reply; an empty reply becomes ``-ERR command not found`` as in FreeSWITCH."""
    return wire.command_reply(text or "-ERR command not found")


def _split_list(value: str) -> list[str]:
    """A userauth param list: comma-separated, or space-separated if it has a space."""
    return value.split(" " if " " in value else ",")


def _parse_allowed_events(value: str) -> tuple[set[str], set[str]]:
    """``esl-allowed-events``: the allowed event types and CUSTOM subclasses."""
    types: set[str] = set()
    subclasses: set[str] = set()
    custom = False
    for token in _split_list(value):
        if custom:
            subclasses.add(token)
            continue
        name = event_type(token)
        if name == "ALL":
            types |= _ALL_TYPES
        elif name is not None:
            types.add(name)
            custom = custom or name == "CUSTOM"
    return types, subclasses
