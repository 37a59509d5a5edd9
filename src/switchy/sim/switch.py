"""The simulated switch: one FreeSWITCH node's state, its channels and their events."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from switchy import ids
from switchy.sim.api import COMMANDS, ApiHandler, UnknownCommand, uptime_text
from switchy.sim.bert import BertErrorModel
from switchy.sim.channel import Channel
from switchy.sim.events import EventFactory, NodeIdentity, SimEvent
from switchy.sim.scheduler import Scheduler
from switchy.sim.sofia import SipNetwork, SipProfile, SofiaChannel
from switchy.sim.version import VERSION_FULL

EventListener = Callable[[SimEvent], None]
ShutdownHook = Callable[[], Awaitable[None]]
CrashHook = Callable[[], None]
RestartHook = Callable[[], Awaitable[None]]
#: Who refuses calls: a mapping of destination user to hangup cause, or a function of the user.
RejectRule = Mapping[str, str] | Callable[[str], "str | None"]

_FIVE_MINUTES = 300.0
#: Seconds between the last shutdown event and the shutdown hooks (the ESL goodbye).
SHUTDOWN_GRACE = 0.1
#: ``rtp-timeout-sec`` of FreeSWITCH's vanilla SIP profiles.
DEFAULT_RTP_TIMEOUT = 300.0
_API_CALLING = ("switch_loadable_module.c", "switch_api_execute", 2954)


class SessionStats:
    """The core's session counters: ``status`` and HEARTBEAT report them.

    The five-minute peaks keep one sample per second (the sessions created in
    it, the most sessions at once in it), not one per session: at a thousand
    sessions a second, five minutes of samples would hold hundreds of
    thousands of them.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.since_startup = 0
        self.peak = 0
        self.sps_peak = 0
        self.last_sps = 0
        # The current second: its number, the sessions created in it, the most at once.
        self._second = 0
        self._created = 0
        self._most = 0
        # (second, sessions created in it, most sessions at once in it) of the seconds before.
        self._seconds: deque[tuple[int, int, int]] = deque()

    def sps_now(self) -> int:
        """Sessions created in the current second."""
        self._roll()
        return self._created

    def created(self, count: int) -> None:
        self.since_startup += 1
        self._roll()
        self._created += 1
        self.sps_peak = max(self.sps_peak, self._created)
        self.peak = max(self.peak, count)
        self._most = max(self._most, count)

    def peak_five_minutes(self) -> int:
        return max(self._recent(2), default=0)

    def sps_peak_five_minutes(self) -> int:
        return max(self._recent(1), default=0)

    def _recent(self, column: int) -> list[int]:
        """One column of the samples of the last five minutes, the current second's too."""
        self._roll()
        horizon = self._clock() - _FIVE_MINUTES
        samples = self._seconds
        while samples and samples[0][0] + 1 <= horizon:
            samples.popleft()
        current = (self._second, self._created, self._most)
        return [sample[column] for sample in (*samples, current) if sample[1]]

    def _roll(self) -> None:
        second = int(self._clock())
        if second != self._second:
            if self._created:
                self._seconds.append((self._second, self._created, self._most))
            self.last_sps = self._created if second == self._second + 1 else 0
            self._second, self._created, self._most = second, 0, 0


class Node:
    """One simulated FreeSWITCH process.

    ESL servers serve a node: they call :meth:`execute_api` for ``api`` / ``bgapi``
    and receive every event the node fires through :meth:`add_listener`.

    The node has one SIP profile (``external`` at ``sip_ip:sip_port``, inbound
    calls run ``context``) on ``network``: nodes sharing a network call each
    other, a node alone gets a network of its own. Its behaviour as a call's far end is
    set by these knobs (attributes, changeable at any time):

    * ``answer_delay``: None (default) parks inbound calls unanswered, like the
      traces' park-only context; a number of seconds answers them after that
      delay (``sleep``, ``answer``, ``park``; 0 answers at once).
    * ``ringing``: send 180 (``ring_ready``) before anything else.
    * ``reject``: destination user -> hangup cause (a mapping or a function
      returning None to accept); the leg hangs up with it unanswered, and the
      caller gets the cause through SIP (e.g. ``{"busy": "USER_BUSY"}``).
    * ``max_sessions`` / ``sessions_per_second``: FreeSWITCH's session limits
      (``fsctl max_sessions`` / ``fsctl sps`` change them). An originate over
      them fails with DESTINATION_OUT_OF_ORDER; an INVITE over them gets 503.
    * ``heartbeat_interval``: seconds between HEARTBEAT events once
      :meth:`start` ran (20 in FreeSWITCH), None for none.
    * ``rtp_timeout``: the SIP profile's ``rtp-timeout-sec``: a leg with media
      whose far end stops sending RTP (its node crashed) hangs up with
      MEDIA_TIMEOUT after that many seconds; None never does.
    * ``bert_errors``: the bit errors ``bert_test`` legs of this node measure
      (:func:`switchy.sim.bert.error_rate`, :func:`~switchy.sim.bert.errored_windows`);
      None for a clean line.

    Faults: :meth:`shutdown` (``fsctl shutdown``), :meth:`crash` and :meth:`restart`.
    """

    def __init__(
        self,
        *,
        identity: NodeIdentity | None = None,
        clock: Callable[[], float] = time.time,
        commands: dict[str, ApiHandler] | None = None,
        sip_ip: str = "127.0.0.1",
        sip_port: int = 5080,
        context: str = "switchy",
        network: SipNetwork | None = None,
        answer_delay: float | None = None,
        ringing: bool = False,
        reject: RejectRule | None = None,
        max_sessions: int = 20000,
        sessions_per_second: int = 1000,
        heartbeat_interval: float | None = 20.0,
        rtp_timeout: float | None = DEFAULT_RTP_TIMEOUT,
        bert_errors: BertErrorModel | None = None,
    ) -> None:
        self.identity = identity or NodeIdentity(core_uuid=ids.new_uuid())
        self.clock = clock
        self.events = EventFactory(self.identity, clock)
        self.started_at = clock()
        self._commands = COMMANDS if commands is None else commands
        self._listeners: list[EventListener] = []
        self._channels: dict[str, Channel] = {}
        self._session_counter = 0
        self.stats = SessionStats(clock)
        self.answer_delay = answer_delay
        self.ringing = ringing
        self.reject = reject
        self.max_sessions = max_sessions
        self.sessions_per_second = sessions_per_second
        self.heartbeat_interval = heartbeat_interval
        self.rtp_timeout = rtp_timeout
        self.bert_errors = bert_errors
        self.paused_inbound = False
        self.paused_outbound = False
        self.log_level = 7
        self.global_variables: dict[str, str] = {
            "hostname": self.identity.hostname,
            "local_ip_v4": self.identity.ipv4,
            "local_mask_v4": "255.0.0.0",
            "local_ip_v6": self.identity.ipv6,
            "core_uuid": self.identity.core_uuid,
        }
        self.sip_network = network if network is not None else SipNetwork()
        profile = SipProfile(self, "external", sip_ip, sip_port, context)
        self.sip_profiles: dict[str, SipProfile] = {profile.name: profile}
        self.sip_network.register(profile)
        self.scheduler = Scheduler(self)
        #: False once the process is gone (shut down or crashed), until :meth:`restart`.
        self.alive = True
        self.shutting_down = False
        self._shutdown_hooks: list[ShutdownHook] = []
        self._crash_hooks: list[CrashHook] = []
        self._restart_hooks: list[RestartHook] = []
        self._shutdown_task: asyncio.Task[None] | None = None
        self._shut_down = asyncio.Event()
        self._started = False
        self._heartbeat: asyncio.Task[None] | None = None
        self._api_tasks: set[asyncio.Task[Any]] = set()
        self._media_timers: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the node runs on.

        Looked up once: asyncio's lookup of the running loop makes a system
        call (getpid) on Python 3.11, and channels need the loop at every step.
        """
        loop = self._loop
        if loop is None or loop.is_closed():
            loop = self._loop = asyncio.get_running_loop()
        return loop

    # -- events -------------------------------------------------------------

    def add_listener(self, listener: EventListener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: EventListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def fire(self, event: SimEvent) -> None:
        """Deliver ``event`` to every listener, in the order they were added.

        A node that is gone (crashed) delivers nothing.
        """
        if not self.alive:
            return
        for listener in list(self._listeners):
            listener(event)

    # -- API ----------------------------------------------------------------

    async def execute_api(self, command: str, args: str) -> str:
        """Run API ``command`` with ``args``; return its raw output.

        Raises :class:`UnknownCommand` for a command the node does not have (the
        server answers ``-ERR <cmd> Command not found!``).
        """
        handler = self._commands.get(command.lower())
        if handler is None:
            raise UnknownCommand(command)
        task = asyncio.current_task(self.loop)
        if task is not None:
            self._api_tasks.add(task)
        try:
            return await handler(self, args)
        finally:
            if task is not None:
                self._api_tasks.discard(task)

    async def api_execute(self, command: str, args: str) -> str:
        """``switch_api_execute`` from inside the switch (scheduled tasks): the API event too.

        An unknown command gives empty output.
        """
        event = self.events.create("API", _API_CALLING)
        event.add("API-Command", command)
        event.add("API-Command-Argument", args)
        try:
            output = await self.execute_api(command, args)
        except UnknownCommand:
            output = ""
        self.fire(event)
        return output

    # -- channels -----------------------------------------------------------

    @property
    def channels(self) -> list[Channel]:
        """Live channels, oldest first."""
        return list(self._channels.values())

    def has_channel(self, uuid: str) -> bool:
        """True while ``uuid`` names a channel not hanging up (``switch_core_session_locate``)."""
        channel = self._channels.get(uuid)
        return channel is not None and channel.is_up

    def get_channel(self, uuid: str) -> Channel | None:
        """The channel ``uuid`` names if it is not hanging up."""
        channel = self._channels.get(uuid)
        return channel if channel is not None and channel.is_up else None

    def add_channel(self, channel: Channel) -> None:
        self._channels[channel.uuid] = channel
        self.stats.created(len(self._channels))

    def remove_channel(self, channel: Channel) -> None:
        if self._channels.get(channel.uuid) is channel:
            del self._channels[channel.uuid]

    def next_session_id(self) -> int:
        self._session_counter += 1
        return self._session_counter

    def _has_room(self) -> bool:
        return (
            not self.shutting_down
            and len(self._channels) + 1 <= self.max_sessions
            and self.stats.sps_now() < self.sessions_per_second
        )

    def accepts_outbound(self) -> bool:
        """Whether ``switch_core_session_request_uuid`` would create an outbound session."""
        return not self.paused_outbound and self._has_room()

    def accepts_inbound(self) -> bool:
        """Whether sofia would take an INVITE instead of answering 503."""
        return not self.paused_inbound and self._has_room()

    def send_message(
        self, uuid: str, headers: list[tuple[str, str]], body: str | None = None
    ) -> bool:
        """``sendmsg``: queue ``headers`` to channel ``uuid``; False if there is no such channel.

        ``call-command: execute`` runs ``execute-app-name`` with ``execute-app-arg``
        (or ``body`` when ``content-type`` is ``text/plain``), ``loops`` times;
        ``call-command: hangup`` hangs up with ``hangup-cause``. The message is
        acted on when the session is idle (parked, between applications), then
        re-fired as PRIVATE_COMMAND.
        """
        channel = self.get_channel(uuid)
        if channel is None:
            return False
        message = list(headers)
        content_type = next((v for k, v in message if k.lower() == "content-type"), "")
        if body and content_type.lower() == "text/plain":
            message = [(k, v) for k, v in message if k.lower() != "execute-app-arg"]
            message.append(("execute-app-arg", body))
        channel.queue_message(message)
        return True

    def hangup_all(self, cause: str, match: Callable[[Channel], bool] | None = None) -> None:
        for channel in self.channels:
            if match is None or match(channel):
                channel.hangup(cause)

    # -- dialplan -----------------------------------------------------------

    @property
    def context(self) -> str:
        return self.sip_profiles["external"].context

    def dialplan(self, channel: Channel) -> list[tuple[str, str]]:
        """The extension ``channel`` runs (XML dialplan hunt); empty when nothing matches.

        Only the profile's context exists; it matches every destination.
        """
        profile = channel.profile
        if profile is None or profile.context != self.context:
            return []
        dest = profile.destination_number
        channel.set_var("DP_MATCH", f"ARRAY::{dest}|:{dest}")
        return self.inbound_extension(dest)

    def inbound_extension(self, user: str) -> list[tuple[str, str]]:
        """The applications the context runs for destination ``user``, from the knobs."""
        extension: list[tuple[str, str]] = []
        if self.ringing:
            extension.append(("ring_ready", ""))
        cause = self._reject_cause(user)
        if cause:
            return [*extension, ("hangup", cause)]
        if self.answer_delay is not None:
            if self.answer_delay > 0:
                extension.append(("sleep", str(round(self.answer_delay * 1000))))
            extension.append(("answer", ""))
        extension.append(("park", ""))
        return extension

    def _reject_cause(self, user: str) -> str | None:
        rule = self.reject
        if rule is None:
            return None
        if callable(rule):
            return rule(user)
        return rule.get(user)

    # -- life cycle ---------------------------------------------------------

    def start(self) -> None:
        """Start the periodic HEARTBEAT (needs a running loop)."""
        self._started = True
        if self._heartbeat is None and self.heartbeat_interval:
            self._heartbeat = asyncio.get_running_loop().create_task(self._beat())

    async def close(self) -> None:
        """Stop the node without a shutdown: channels end with MANAGER_REQUEST, timers stop."""
        self._stop_timers()
        self.hangup_all("MANAGER_REQUEST")
        await self.wait_channels_gone()
        for profile in self.sip_profiles.values():
            self.sip_network.unregister(profile)

    def _stop_timers(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            self._heartbeat = None
        self.scheduler.clear()
        for timer in list(self._media_timers):
            timer.cancel()

    async def wait_channels_gone(self) -> None:
        """Return once every channel has torn down."""
        while self._channels:
            await next(iter(self._channels.values())).done.wait()

    def add_shutdown_hook(self, hook: ShutdownHook) -> None:
        """Run ``hook`` at the end of :meth:`shutdown` (the ESL server says goodbye there)."""
        if hook not in self._shutdown_hooks:
            self._shutdown_hooks.append(hook)

    def remove_shutdown_hook(self, hook: ShutdownHook) -> None:
        if hook in self._shutdown_hooks:
            self._shutdown_hooks.remove(hook)

    def add_crash_hook(self, hook: CrashHook) -> None:
        """Run ``hook`` when the node crashes (the ESL server drops its sockets)."""
        if hook not in self._crash_hooks:
            self._crash_hooks.append(hook)

    def remove_crash_hook(self, hook: CrashHook) -> None:
        if hook in self._crash_hooks:
            self._crash_hooks.remove(hook)

    def add_restart_hook(self, hook: RestartHook) -> None:
        """Run ``hook`` when the node restarts (the ESL server listens again)."""
        if hook not in self._restart_hooks:
            self._restart_hooks.append(hook)

    def remove_restart_hook(self, hook: RestartHook) -> None:
        if hook in self._restart_hooks:
            self._restart_hooks.remove(hook)

    def request_shutdown(self, *, elegant: bool = False) -> None:
        """``fsctl shutdown``: shut down after the API call returns.

        ``elegant`` first refuses new calls and waits for the existing ones to end.
        """
        if self._shutdown_task is None:
            self._shutdown_task = asyncio.get_running_loop().create_task(self._shutdown(elegant))

    async def _shutdown(self, elegant: bool) -> None:
        if elegant:
            self.paused_inbound = self.paused_outbound = True
            await self.wait_channels_gone()
        await self.shutdown()

    async def shutdown(self) -> None:
        """The clean shutdown of trace 14.

        SHUTDOWN fires, every channel hangs up with SYSTEM_SHUTDOWN and tears
        down, then the shutdown hooks run (the ESL server sends
        ``The system is being shut down.`` and closes its sockets).
        """
        if self.shutting_down or not self.alive:
            return
        self.shutting_down = True
        event = self.events.create("SHUTDOWN", ("switch_core.c", "switch_core_destroy", 3023))
        event.add("Event-Info", "System Shutting Down")
        self.fire(event)
        self.hangup_all("SYSTEM_SHUTDOWN")
        await self.wait_channels_gone()
        # Let API calls the hangups ended (an originate and its BACKGROUND_JOB) finish first.
        pending = self._api_tasks - {asyncio.current_task()}
        if pending:
            await asyncio.wait(pending, timeout=5)
        self._stop_timers()
        # FreeSWITCH unloads its modules, the event socket among them, a while after
        # SHUTDOWN (1.2 s in trace 14): listeners deliver what is queued meanwhile.
        await asyncio.sleep(SHUTDOWN_GRACE)
        for hook in list(self._shutdown_hooks):
            await hook()
        for profile in self.sip_profiles.values():
            self.sip_network.unregister(profile)
        self.alive = False
        self._shut_down.set()

    async def wait_shutdown(self) -> None:
        """Return once a :meth:`shutdown` (``fsctl shutdown``) has completed."""
        await self._shut_down.wait()

    def crash(self) -> None:
        """The process dies at once (a kill -9, a segfault).

        Nothing is sent: every event socket just closes and stops listening,
        every channel vanishes without an event, its SIP address answers no
        more (INVITEs to it fail as unreachable). Far ends on other nodes
        never get a BYE: legs with media hang up with MEDIA_TIMEOUT once their
        node's ``rtp_timeout`` passes without RTP; legs without media wait,
        as SIP would, for whatever ends them otherwise (their originate
        timeout, a hangup).
        """
        if not self.alive:
            return
        self.alive = False
        if self._shutdown_task is not None:
            self._shutdown_task.cancel()
            self._shutdown_task = None
        self._stop_timers()
        for hook in list(self._crash_hooks):
            hook()
        for profile in self.sip_profiles.values():
            self.sip_network.unregister(profile)
        orphans: list[Channel] = []
        for channel in self.channels:
            far_end = _far_end(channel)
            if far_end is not None and far_end.node is not self and far_end.is_up:
                orphans.append(far_end)
            channel.vanish()
        for orphan in orphans:
            orphan.node.watch_media_timeout(orphan)

    async def restart(self) -> None:
        """Start the process again after :meth:`shutdown` or :meth:`crash`.

        It comes back as a new process on the same ESL port and SIP address:
        a new Core-UUID, no channels or tasks, counters and uptime from zero,
        the settings changed at run time (``fsctl pause``, ``loglevel``) back
        to their defaults, the knobs kept. Raises RuntimeError while running.
        """
        if self.alive:
            raise RuntimeError("the node is running: shutdown() or crash() it first")
        if self._channels:
            await self.wait_channels_gone()
        self.identity.core_uuid = ids.new_uuid()
        self.global_variables["core_uuid"] = self.identity.core_uuid
        self.events.sequence = 0
        self.started_at = self.clock()
        self.stats = SessionStats(self.clock)
        self.scheduler = Scheduler(self)
        self._session_counter = 0
        self.paused_inbound = self.paused_outbound = False
        self.log_level = 7
        self.shutting_down = False
        self._shutdown_task = None
        self._shut_down = asyncio.Event()
        self.alive = True
        for profile in self.sip_profiles.values():
            profile.calls_in = profile.failed_calls_in = 0
            profile.calls_out = profile.failed_calls_out = 0
            self.sip_network.register(profile)
        if self._started:
            self.start()
        for hook in list(self._restart_hooks):
            await hook()

    def watch_media_timeout(self, channel: Channel) -> None:
        """``channel`` gets no more RTP: once it has media, hang it up after ``rtp_timeout``."""
        if self.rtp_timeout is None:
            return
        timer = asyncio.get_running_loop().create_task(self._media_timeout(channel))
        self._media_timers.add(timer)
        timer.add_done_callback(self._media_timers.discard)

    async def _media_timeout(self, channel: Channel) -> None:
        await channel.until(lambda: channel.has_media or not channel.is_up, None)
        timeout = self.rtp_timeout
        if timeout is None or not channel.is_up:
            return
        # The RTP timer restarts with every packet: none arrives any more.
        if not await channel.until(lambda: not channel.is_up, timeout):
            channel.hangup("MEDIA_TIMEOUT")

    async def _beat(self) -> None:
        interval = self.heartbeat_interval or 20.0
        while True:
            await asyncio.sleep(interval)
            self.fire(self.heartbeat_event())
            reschedule = self.events.create(
                "RE_SCHEDULE", ("switch_scheduler.c", "switch_scheduler_execute", 73)
            )
            reschedule.extend(
                [
                    ("Task-ID", "1"),
                    ("Task-Desc", "heartbeat"),
                    ("Task-Group", "core"),
                    ("Task-Runtime", str(int(self.clock() + interval))),
                ]
            )
            self.fire(reschedule)

    def heartbeat_event(self) -> SimEvent:
        """A HEARTBEAT event with the current counters (``switch_core.c:send_heartbeat``)."""
        event = self.events.create("HEARTBEAT", ("switch_core.c", "send_heartbeat", 95))
        uptime = self.clock() - self.started_at
        event.extend(
            [
                ("Event-Info", "System Ready"),
                ("Up-Time", uptime_text(uptime)),
                ("FreeSWITCH-Version", VERSION_FULL),
                ("Uptime-msec", str(int(uptime * 1000))),
                ("Session-Count", str(len(self._channels))),
                ("Max-Sessions", str(self.max_sessions)),
                ("Session-Per-Sec", str(self.sessions_per_second)),
                ("Session-Per-Sec-Last", str(self.stats.last_sps)),
                ("Session-Per-Sec-Max", str(self.stats.sps_peak)),
                ("Session-Per-Sec-FiveMin", str(self.stats.sps_peak_five_minutes())),
                ("Session-Since-Startup", str(self.stats.since_startup)),
                ("Session-Peak-Max", str(self.stats.peak)),
                ("Session-Peak-FiveMin", str(self.stats.peak_five_minutes())),
                ("Idle-CPU", "99.000000"),
            ]
        )
        return event


def _far_end(channel: Channel) -> Channel | None:
    """The leg at the other end of ``channel``'s SIP dialog, if it has one."""
    if isinstance(channel, SofiaChannel) and channel.dialog is not None:
        return channel.dialog.peer_of(channel)
    return None
