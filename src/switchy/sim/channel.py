"""A simulated FreeSWITCH channel: its state machine, its data and the events it fires.

A :class:`Channel` is one leg (one ``switch_core_session_t``). It owns the
caller profile, the ordered channel variables, the running and current
states, and an asyncio task that plays the part of the session thread: it
walks the states, runs dialplan applications and, once the channel is hung
up, fires the teardown events (ESL_PROTOCOL.md §5.1). Endpoint modules
(:mod:`switchy.sim.sofia`, :mod:`switchy.sim.loopback`) subclass it for what
differs between technologies: the start-up events, what answering sends to
the far end, what a hangup sends.

Every event's headers follow FreeSWITCH's construction order (§3.2, §3.3);
the Event-Calling-* values are copied from the recorded traces.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from functools import cache, lru_cache
from operator import attrgetter
from typing import TYPE_CHECKING

from switchy import ids
from switchy.sim import apps, bridge
from switchy.sim.calling import At, CallingSite
from switchy.sim.causes import CAUSE_CODES, q850
from switchy.sim.events import FieldRun, HeaderRun, SimEvent, VariableRun
from switchy.sim.plain import set_variables

if TYPE_CHECKING:
    from switchy.sim.switch import Node

Headers = list[tuple[str, str]]

# switch_channel_state_t, in numeric order.
STATE_NAMES = (
    "CS_NEW",
    "CS_INIT",
    "CS_ROUTING",
    "CS_SOFT_EXECUTE",
    "CS_EXECUTE",
    "CS_EXCHANGE_MEDIA",
    "CS_PARK",
    "CS_CONSUME_MEDIA",
    "CS_HIBERNATE",
    "CS_RESET",
    "CS_HANGUP",
    "CS_REPORTING",
    "CS_DESTROY",
    "CS_NONE",
)
(
    CS_NEW,
    CS_INIT,
    CS_ROUTING,
    CS_SOFT_EXECUTE,
    CS_EXECUTE,
    CS_EXCHANGE_MEDIA,
    CS_PARK,
    CS_CONSUME_MEDIA,
    CS_HIBERNATE,
    CS_RESET,
    CS_HANGUP,
    CS_REPORTING,
    CS_DESTROY,
    CS_NONE,
) = range(14)

# switch_channel_callstate_t, in numeric order (Channel-Call-State-Number).
CALL_STATES = (
    "DOWN",
    "DIALING",
    "RINGING",
    "EARLY",
    "ACTIVE",
    "HELD",
    "RING_WAIT",
    "HANGUP",
    "UNHELD",
)

#: Event types whose channel data includes ``variable_*`` headers (§3.3).
EVENTS_WITH_VARIABLES = frozenset(
    {
        "CHANNEL_CREATE",
        "CHANNEL_ORIGINATE",
        "CHANNEL_UUID",
        "CHANNEL_ANSWER",
        "CHANNEL_PARK",
        "CHANNEL_UNPARK",
        "CHANNEL_BRIDGE",
        "CHANNEL_UNBRIDGE",
        "CHANNEL_PROGRESS",
        "CHANNEL_PROGRESS_MEDIA",
        "CHANNEL_HANGUP",
        "CHANNEL_HANGUP_COMPLETE",
        "CHANNEL_EXECUTE",
        "CHANNEL_EXECUTE_COMPLETE",
        "CHANNEL_DESTROY",
        "CHANNEL_DATA",
        "CHANNEL_HOLD",
        "CHANNEL_UNHOLD",
        "REQUEST_PARAMS",
        "SESSION_HEARTBEAT",
        "API",
        "RECORD_START",
        "RECORD_STOP",
        "PLAYBACK_START",
        "PLAYBACK_STOP",
        "CALL_UPDATE",
        "MEDIA_BUG_START",
        "MEDIA_BUG_STOP",
        "TEXT",
        "CUSTOM",
    }
)


#: The headers of a channel's state (``switch_channel_event_set_basic_data``), in order:
#: Hangup-Cause and the codecs are left out while empty.
_STATE_HEADER_NAMES = (
    "Channel-State",
    "Channel-Call-State",
    "Channel-State-Number",
    "Channel-Name",
    "Unique-ID",
    "Call-Direction",
    "Presence-Call-Direction",
    "Channel-HIT-Dialplan",
    "Channel-Call-UUID",
    "Answer-State",
    "Hangup-Cause",
    "Channel-Read-Codec-Name",
    "Channel-Read-Codec-Rate",
    "Channel-Read-Codec-Bit-Rate",
    "Channel-Write-Codec-Name",
    "Channel-Write-Codec-Rate",
    "Channel-Write-Codec-Bit-Rate",
)
_NO_CODEC = ("", "", "")


@dataclass(frozen=True)
class Codec:
    """A codec as channel data reports it."""

    name: str
    rate: int
    bit_rate: int


PCMU = Codec("PCMU", 8000, 64000)
L16 = Codec("L16", 8000, 128000)


@dataclass
class ProfileTimes:
    """``switch_channel_timetable_t``: microseconds since the epoch, 0 when unset."""

    profile_created: int = 0
    created: int = 0
    answered: int = 0
    progress: int = 0
    progress_media: int = 0
    hungup: int = 0
    transferred: int = 0
    resurrected: int = 0
    bridged: int = 0
    last_hold: int = 0
    hold_accum: int = 0


@dataclass
class CallerProfile:
    """``switch_caller_profile_t``: who called whom, and when things happened."""

    direction: str
    logical_direction: str
    username: str = ""
    dialplan: str = ""
    caller_id_name: str = ""
    caller_id_number: str = ""
    orig_caller_id_name: str = ""
    orig_caller_id_number: str = ""
    callee_id_name: str = ""
    callee_id_number: str = ""
    network_addr: str = ""
    ani: str = ""
    aniii: str = ""
    destination_number: str = ""
    uuid: str = ""
    source: str = ""
    transfer_source: str = ""
    context: str = ""
    rdnis: str = ""
    channel_name: str = ""
    profile_index: str = "1"
    times: ProfileTimes = field(default_factory=ProfileTimes)

    # The last run made for each (prefix, index, times).
    _runs: dict[tuple[str, bool, bool], FieldRun] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def headers(self, prefix: str, *, index: bool = True, times: bool = True) -> Headers:
        """The profile as event headers (``switch_caller_profile_event_set_data``).

        ``index=False`` drops Profile-Index (the Other-Leg form); ``times=False``
        reports every time as 0 (a cloned profile, whose times are not copied).
        """
        return list(self.header_run(prefix, index=index, times=times).headers)

    def header_run(self, prefix: str, *, index: bool = True, times: bool = True) -> HeaderRun:
        """:meth:`headers` as a :class:`HeaderRun`, the same one while the profile is unchanged."""
        stamps: tuple[int, ...] = _TIME_VALUES(self.times) if times else _ZERO_TIMES
        values: tuple[str | int, ...] = (
            self.direction,
            self.logical_direction,
            *_PROFILE_VALUES(self),
            *((self.profile_index,) if index else ()),
            *stamps,
            *_PROFILE_FLAGS,
        )
        key = (prefix, index, times)
        run = self._runs.get(key)
        if run is None or run.values != values:
            run = self._runs[key] = FieldRun(_profile_header_names(prefix, index), values, run)
        return run

    def copy(self) -> CallerProfile:
        """A clone with its own times."""
        # Not through __init__ (22 keyword arguments): a copy of the fields as they are.
        clone = object.__new__(CallerProfile)
        clone.__dict__.update(vars(self))
        clone.times = copy.copy(self.times)
        clone._runs = {}
        return clone


# The profile fields events report, in order, as attributes and as header names.
_PROFILE_FIELDS = (
    ("username", "Username"),
    ("dialplan", "Dialplan"),
    ("caller_id_name", "Caller-ID-Name"),
    ("caller_id_number", "Caller-ID-Number"),
    ("orig_caller_id_name", "Orig-Caller-ID-Name"),
    ("orig_caller_id_number", "Orig-Caller-ID-Number"),
    ("callee_id_name", "Callee-ID-Name"),
    ("callee_id_number", "Callee-ID-Number"),
    ("network_addr", "Network-Addr"),
    ("ani", "ANI"),
    ("aniii", "ANI-II"),
    ("destination_number", "Destination-Number"),
    ("uuid", "Unique-ID"),
    ("source", "Source"),
    ("transfer_source", "Transfer-Source"),
    ("context", "Context"),
    ("rdnis", "RDNIS"),
    ("channel_name", "Channel-Name"),
)
_PROFILE_TIMES = (
    ("profile_created", "Profile-Created-Time"),
    ("created", "Channel-Created-Time"),
    ("answered", "Channel-Answered-Time"),
    ("progress", "Channel-Progress-Time"),
    ("progress_media", "Channel-Progress-Media-Time"),
    ("hungup", "Channel-Hangup-Time"),
    ("transferred", "Channel-Transfer-Time"),
    ("resurrected", "Channel-Resurrect-Time"),
    ("bridged", "Channel-Bridged-Time"),
    ("last_hold", "Channel-Last-Hold"),
    ("hold_accum", "Channel-Hold-Accum"),
)
_PROFILE_VALUES = attrgetter(*(attribute for attribute, _ in _PROFILE_FIELDS))
_TIME_VALUES = attrgetter(*(attribute for attribute, _ in _PROFILE_TIMES))
_ZERO_TIMES = (0,) * len(_PROFILE_TIMES)


_PROFILE_FLAGS = ("true", "false", "false")


@cache
def _profile_header_names(prefix: str, index: bool) -> tuple[str, ...]:
    """The names of a profile's headers (:meth:`CallerProfile.header_run`), in order."""
    return (
        f"{prefix}-Direction",
        f"{prefix}-Logical-Direction",
        *(f"{prefix}-{name}" for _, name in _PROFILE_FIELDS),
        *((f"{prefix}-Profile-Index",) if index else ()),
        *(f"{prefix}-{name}" for _, name in _PROFILE_TIMES),
        f"{prefix}-Screen-Bit",
        f"{prefix}-Privacy-Hide-Name",
        f"{prefix}-Privacy-Hide-Number",
    )


@dataclass
class OtherLeg:
    """What a channel's events say about its partner (Other-Type, Other-Leg-*)."""

    kind: str  # "originator" or "originatee"
    profile: CallerProfile
    with_times: bool


class Channel:
    """One simulated leg; endpoint modules subclass it.

    The session task starts with :meth:`start`. State changes that FreeSWITCH
    makes from other threads (hangup, answer from the API, queued messages)
    are synchronous methods that fire their events at once and wake the task.
    """

    #: The endpoint (``originate_endpoint``) the channel belongs to.
    endpoint = ""

    def __init__(
        self,
        node: Node,
        *,
        uuid: str,
        name: str,
        direction: str,
        profile: CallerProfile | None = None,
    ) -> None:
        self.node = node
        self.uuid = uuid
        self.name = name
        self.direction = direction
        self.profile: CallerProfile | None = None
        #: The profile the channel was created with (``initial_*`` columns of ``show``).
        self.initial_profile: CallerProfile | None = None
        if profile is not None:
            self.set_profile(profile)
        self.running_state = CS_NEW
        self.state = CS_NEW
        self.callstate = "DOWN"
        self.answered = False
        self.early_media = False
        self.ring_ready = False
        self.hit_dialplan = direction == "inbound"
        self.hangup_cause: str | None = None
        self.read_codec: Codec | None = None
        self.write_codec: Codec | None = None
        self.variables: dict[str, str] = {}
        # Each variable's plain line, in the same order, and the VariableRun
        # events share until a variable changes.
        self._variable_lines: dict[str, bytes] = {}
        self._variable_run: VariableRun | None = None
        # The channel-state headers of the last event.
        self._state_run: FieldRun | None = None
        self.other_leg: OtherLeg | None = None
        self.bridged_to: Channel | None = None
        self.bridge_peer: Channel | None = None
        self.bridge_originator = False
        self.created_at = node.clock()
        self.session_id = node.next_session_id()
        self.current_app: tuple[str, str] | None = None
        self.app_log: list[tuple[str, str]] = []
        self.digits_dialed = ""
        self.extension: list[tuple[str, str]] = []
        self.recordings: dict[str, float] = {}
        #: The SIP status the ``respond`` application chose to refuse the call with.
        self.respond_code = 0
        #: Channel flags some features set (``CF_HOLD``, ``CF_PROXY_MODE``...).
        self.flags: set[str] = set()
        #: Feature state kept on the channel (``switch_channel_set_private``): media bugs...
        self.privates: dict[str, object] = {}
        self._private: deque[Headers] = deque()
        # DTMF received and not read yet: (arrival time, the read), for uuid_flush_dtmf.
        self._dtmf_queue: list[tuple[float, asyncio.TimerHandle]] = []
        self._vanished = False
        # Futures resolved at the next wake(): True, or False by their own timeout.
        self._watchers: list[asyncio.Future[bool]] = []
        self._redirect: str | None = None
        self._break = False
        self._task: asyncio.Task[None] | None = None
        self.done = asyncio.Event()

    # -- data ---------------------------------------------------------------

    def set_profile(self, profile: CallerProfile) -> None:
        """Give the channel its caller profile; the first one is also the initial one."""
        self.profile = profile
        if self.initial_profile is None:
            self.initial_profile = profile.copy()

    def now_us(self) -> int:
        return int(self.node.clock() * 1_000_000)

    def set_var(self, name: str, value: str | None) -> None:
        """Set a channel variable; re-setting moves it last, an empty value deletes it.

        Variables change only through here: events reuse their headers until then.
        """
        self._variable_run = None
        set_variables(self.variables, self._variable_lines, ((name, value or ""),))

    def set_vars(self, pairs: Iterable[tuple[str, str]]) -> None:
        """:meth:`set_var` for each pair, in order."""
        self._variable_run = None
        set_variables(self.variables, self._variable_lines, pairs)

    def get_var(self, name: str) -> str | None:
        return self.variables.get(name)

    def set_other_leg(self, kind: str, profile: CallerProfile, *, with_times: bool) -> None:
        """Report ``profile`` as the other leg (``originator`` or ``originatee``) from now on."""
        self.other_leg = OtherLeg(kind, profile, with_times)

    @property
    def profile_destination(self) -> str:
        return self.profile.destination_number if self.profile else ""

    @property
    def answer_state(self) -> str:
        if self.state >= CS_HANGUP:
            return "hangup"
        if self.answered:
            return "answered"
        if self.early_media:
            return "early"
        return "ringing"

    @property
    def is_up(self) -> bool:
        """True until the channel is hung up (``switch_channel_up``)."""
        return self.state < CS_HANGUP

    @property
    def has_media(self) -> bool:
        return self.answered or self.early_media

    def channel_data(self, event_name: str, *, variables: bool | None = None) -> Headers:
        """``switch_channel_event_set_data``: the channel's headers for one event type.

        ``variables`` forces the ``variable_*`` headers in or out; by default the
        event type decides (:data:`EVENTS_WITH_VARIABLES`).
        """
        headers: Headers = []
        parts: list[Headers | HeaderRun] = []
        self._channel_data(parts, event_name, variables)
        for part in parts:
            headers += part.headers if isinstance(part, HeaderRun) else part
        return headers

    def _channel_data(
        self, parts: list[Headers | HeaderRun], event_name: str, variables: bool | None
    ) -> None:
        """:meth:`channel_data` in parts, added to ``parts``: what recurs unchanged from
        event to event (the state, the profiles, the variables) as :class:`HeaderRun` s."""
        parts.append(self._state_headers())
        if self.profile:
            parts.append(self.profile.header_run("Caller"))
        if self.other_leg:
            other = self.other_leg
            parts.append([("Other-Type", other.kind)])
            parts.append(other.profile.header_run("Other-Leg", index=False, times=other.with_times))
        if variables if variables is not None else event_name in EVENTS_WITH_VARIABLES:
            parts.append(self._variables())

    def _state_headers(self) -> FieldRun:
        """Channel-State to the codecs, made again only when one of them changed."""
        read, write = self.read_codec, self.write_codec
        values: tuple[str | int, ...] = (
            STATE_NAMES[self.running_state],
            self.callstate,
            self.state,
            self.name,
            self.uuid,
            self.direction,
            self.direction,
            "true" if self.hit_dialplan else "false",
            self.variables.get("call_uuid", self.uuid),
            self.answer_state,
            self.hangup_cause or "",
            *((read.name, read.rate, read.bit_rate) if read else _NO_CODEC),
            *((write.name, write.rate, write.bit_rate) if write else _NO_CODEC),
        )
        run = self._state_run
        if run is None or run.values != values:
            run = self._state_run = FieldRun(_STATE_HEADER_NAMES, values, run)
        return run

    def _variables(self) -> VariableRun:
        """The variables as a run, made again only after a variable changed."""
        run = self._variable_run
        if run is None:
            plain = b"".join(self._variable_lines.values())
            run = self._variable_run = VariableRun(dict(self.variables), plain)
        return run

    def make_event(
        self,
        name: str,
        at: CallingSite,
        *,
        before: Headers | None = None,
        after: Headers | None = None,
        subclass: str | None = None,
        variables: bool | None = None,
    ) -> SimEvent:
        """A new event of this channel: prefix, ``before``, channel data, ``after``."""
        event = self.node.events.create(name, at, subclass)
        if before:
            event.extend(before)
        parts = event.parts
        assert parts is not None  # a new event is in parts
        self._channel_data(parts, name, variables)
        if after:
            event.extend(after)
        return event

    def fire(
        self,
        name: str,
        at: CallingSite,
        *,
        before: Headers | None = None,
        after: Headers | None = None,
        subclass: str | None = None,
        variables: bool | None = None,
    ) -> None:
        """Create and fire an event, unless nobody takes events of its type."""
        factory = self.node.events
        if not factory.wanted(name):
            factory.skip()
            return
        event = self.make_event(
            name, at, before=before, after=after, subclass=subclass, variables=variables
        )
        self.node.fire(event)

    # -- state machine primitives ---------------------------------------------

    def set_running_state(self, state: int) -> None:
        """Enter ``state`` as the running state and fire CHANNEL_STATE."""
        self.running_state = state
        # Inbound channels ring as soon as they route (switch_channel_perform_set_running_state).
        if self.direction == "inbound" and state == CS_ROUTING:
            self.set_callstate("RINGING")
        self.fire("CHANNEL_STATE", At.STATE)

    def advance(self, state: int) -> None:
        """Set the current state and run it as the running state, as the state machine does."""
        self.state = state
        self.set_running_state(state)

    def set_callstate(self, callstate: str) -> None:
        old = self.callstate
        if old == callstate or old == "HANGUP":
            return
        self.callstate = callstate
        self.fire(
            "CHANNEL_CALLSTATE",
            At.CALLSTATE,
            before=[
                ("Original-Channel-Call-State", old),
                ("Channel-Call-State-Number", str(CALL_STATES.index(callstate))),
            ],
        )

    def set_codecs(self, codec: Codec, read_site: CallingSite, *, together: bool = False) -> None:
        """Open the media: CODEC events for the read then the write codec.

        ``together`` sets both codecs before the first event (sofia negotiates
        both at once; loopback sets them one after the other).
        """
        self.read_codec = codec
        if together:
            self.write_codec = codec
        self.fire(
            "CODEC",
            read_site,
            after=[
                ("channel-read-codec-name", codec.name),
                ("channel-read-codec-rate", str(codec.rate)),
                ("channel-read-codec-bit-rate", str(codec.bit_rate)),
            ],
        )
        self.write_codec = codec
        self.fire(
            "CODEC",
            At.WRITE_CODEC,
            after=[
                ("Channel-Write-Codec-Name", codec.name),
                ("Channel-Write-Codec-Rate", str(codec.rate)),
                ("Channel-Write-codec-bit-rate", str(codec.bit_rate)),
            ],
        )

    def mark_ring_ready(self) -> None:
        if self.ring_ready or self.has_media or not self.is_up:
            return
        self.ring_ready = True
        if self.profile:
            self.profile.times.progress = self.now_us()
        self.fire("CHANNEL_PROGRESS", At.RING_READY)
        self.set_callstate("RINGING")
        self.wake()

    def mark_pre_answered(self) -> None:
        if self.has_media or not self.is_up:
            return
        self.early_media = True
        if self.profile:
            self.profile.times.progress_media = self.now_us()
        self.fire("CHANNEL_PROGRESS_MEDIA", At.PRE_ANSWER)
        self.set_callstate("EARLY")
        self.wake()

    def mark_answered(self) -> None:
        if self.answered or not self.is_up:
            return
        self.answered = True
        if self.profile:
            self.profile.times.answered = self.now_us()
        # CHANNEL_ANSWER still carries the old call state (switch_channel_perform_mark_answered).
        self.fire("CHANNEL_ANSWER", At.ANSWER)
        self.set_callstate("ACTIVE")
        self.wake()

    def hangup(self, cause: str = "NORMAL_CLEARING") -> bool:
        """Hang up with ``cause``: CHANNEL_HANGUP now, the teardown on the session task.

        Returns False when the channel was already hanging up.
        """
        if not self.is_up:
            return False
        self.hangup_cause = cause if cause in CAUSE_CODES else "NORMAL_CLEARING"
        self.state = CS_HANGUP
        self.fire("CHANNEL_HANGUP", At.HANGUP)
        self.on_hangup_requested()
        self.wake()
        if self.bridged_to is not None:
            self.bridged_to.wake()
        return True

    # -- endpoint hooks -----------------------------------------------------

    def answer(self) -> bool:
        """Answer the channel (``switch_channel_answer``); False if it cannot be."""
        if not self.is_up:
            return False
        if not self.answered:
            self.on_answer()
            self.mark_answered()
        return True

    def pre_answer(self) -> bool:
        if not self.is_up:
            return False
        if not self.has_media:
            self.on_pre_answer()
            self.mark_pre_answered()
        return True

    def ring(self) -> bool:
        if not self.is_up:
            return False
        if not self.has_media and not self.ring_ready:
            self.on_ring()
            self.mark_ring_ready()
        return True

    def on_answer(self) -> None:
        """Endpoint work before CHANNEL_ANSWER (send 200 OK, open media)."""

    def on_pre_answer(self) -> None:
        """Endpoint work before CHANNEL_PROGRESS_MEDIA (send 183)."""

    def on_ring(self) -> None:
        """Endpoint work before CHANNEL_PROGRESS (send 180)."""

    def on_hangup_requested(self) -> None:
        """Endpoint work right after CHANNEL_HANGUP, in the hanging-up thread."""

    def on_hangup(self) -> None:
        """Endpoint work in CS_HANGUP (send BYE/CANCEL/refusal, final variables)."""

    def on_destroy(self) -> None:
        """The session is over: let go of the other legs.

        Legs refer to each other (bridges, SIP dialogs, loopback pairs); once
        each drops its links, a call's objects are freed as soon as its last
        leg goes, instead of waiting, as reference cycles, for the garbage
        collector (whose full passes grow slow under load).
        """
        self.bridged_to = self.bridge_peer = None

    def send_dtmf(self, digits: str) -> bool:
        """Send DTMF to whatever is at the far end; False if nothing can receive it."""
        return False

    def update_display(self, other: Channel) -> None:
        """Tell this leg's far end who it is now connected to (on a bridge).

        FreeSWITCH fires CALL_UPDATE (``Direction: SEND``) on the leg; a SIP leg
        also sends its far end an INFO (:meth:`send_display_update`).
        """
        identity = other.profile
        if identity is None:
            return
        if other.direction == "outbound":
            name, number = identity.callee_id_name, identity.callee_id_number
        else:
            name, number = identity.caller_id_name, identity.caller_id_number
        self.set_vars(
            [
                ("bridge_to", other.uuid),
                ("last_bridge_to", other.uuid),
                ("bridge_channel", other.name),
                ("bridge_uuid", other.uuid),
                ("last_sent_callee_id_name", name),
                ("last_sent_callee_id_number", number),
            ]
        )
        self.fire(
            "CALL_UPDATE",
            At.SEND_CALL_UPDATE,
            before=[
                ("Direction", "SEND"),
                ("Sent-Callee-ID-Name", name),
                ("Sent-Callee-ID-Number", number),
                ("Bridged-To", other.uuid),
            ],
        )
        self.send_display_update()

    def send_display_update(self) -> None:
        """Endpoint work for :meth:`update_display` (sofia sends an INFO)."""

    @property
    def media_peer(self) -> Channel | None:
        """The channel this one's audio reaches: its bridge partner, else its far end."""
        return self.bridged_to

    def receive_dtmf_string(self, digits: str, *, source: str) -> None:
        """Digits arriving from the far end, one DTMF event each as the channel reads it.

        ``digits`` may end in ``@<ms>`` (the tone length, 250 ms by default).
        Each digit is read when its tone ends; the next one starts after a gap
        as long as a tone, as FreeSWITCH paces queued DTMF.
        """
        loop = self.node.loop
        text, _, duration = digits.partition("@")
        ms = _int(duration, DTMF_MS)
        delay = 0.0
        for digit in text:
            if digit in "wW":
                delay += 0.5 if digit == "w" else 1.0
                continue
            if digit.upper() not in DTMF_DIGITS:
                continue
            delay += ms / 1000
            arrival = loop.time() + delay
            read = loop.call_later(
                delay + DTMF_READ_DELAY, self._read_dtmf, digit.upper(), ms, source
            )
            self._dtmf_queue.append((arrival, read))
            delay += ms / 1000

    def flush_dtmf(self) -> None:
        """``switch_channel_flush_dtmf``: drop the digits received and not read yet."""
        now = self.node.loop.time()
        for arrival, read in self._dtmf_queue:
            if arrival <= now:
                read.cancel()
        self._dtmf_queue = [(a, r) for a, r in self._dtmf_queue if not r.cancelled()]

    def _read_dtmf(self, digit: str, ms: int, source: str) -> None:
        now = self.node.loop.time()
        self._dtmf_queue = [(a, r) for a, r in self._dtmf_queue if r.when() > now]
        if not self.is_up:
            return
        self.digits_dialed += digit
        # RTP end packets add one packet's worth of samples to the reported duration.
        samples = ms * 8 + (80 if source == "RTP" else 0)
        self.fire(
            "DTMF",
            At.DTMF,
            after=[
                ("DTMF-Digit", digit),
                ("DTMF-Duration", str(samples)),
                ("DTMF-Source", source),
            ],
        )

    @staticmethod
    def dtmf_samples(digits: str) -> int:
        """The tone length of a DTMF string, in 8 kHz samples (``last_dtmf_duration``)."""
        return _int(digits.partition("@")[2], DTMF_MS) * 8

    # -- session task -------------------------------------------------------

    def start(self) -> None:
        """Start the session task."""
        self._task = self.node.loop.create_task(self._session())

    async def _session(self) -> None:
        try:
            await self.run()
            while self.is_up:
                if self._redirect is None:
                    await self.wait()
                else:
                    await self.follow_redirect()
        finally:
            try:
                if not self._vanished:
                    if self.is_up:
                        self.hangup("CRASH")
                    self._finish()
            finally:
                # Even a failing teardown must not leave the node waiting for this channel.
                self.node.remove_channel(self)
                self.done.set()
                self.on_destroy()

    def vanish(self) -> None:
        """The process died: the channel is gone at once, with no event and no signalling."""
        self._vanished = True
        self.state = self.running_state = CS_DESTROY
        for _, read in self._dtmf_queue:
            read.cancel()
        if self._task is not None:
            self._task.cancel()
        self.node.remove_channel(self)
        self.done.set()
        self.wake()

    async def run(self) -> None:
        """The endpoint's state machine until the channel leaves its applications."""
        raise NotImplementedError

    def wake(self) -> None:
        """Something changed: wake the session task and whoever waits in :meth:`until`."""
        watchers, self._watchers = self._watchers, []
        for watcher in watchers:
            if not watcher.done():
                watcher.set_result(True)

    def add_watcher(self, watcher: asyncio.Future[bool]) -> None:
        """Resolve ``watcher`` (with True) at the channel's next change."""
        self._watchers.append(watcher)

    def _next_change(self, timeout: float | None) -> Awaitable[bool]:
        """What to await for the next :meth:`wake` (True) or ``timeout`` seconds (False)."""
        return next_change(self.node.loop, (self,), timeout)

    async def until(self, predicate: Callable[[], bool], timeout: float | None) -> bool:
        """Wait until ``predicate()`` holds, checking at each change; False on timeout."""
        loop = self.node.loop
        deadline = None if timeout is None else loop.time() + timeout
        while not predicate():
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return False
            if not await self._next_change(remaining):
                return predicate()
        return True

    @property
    def interrupted(self) -> bool:
        """True when the running application must return (hangup, transfer, park, bridge)."""
        return not self.is_up or self._redirect is not None

    async def wait(self, timeout: float | None = None, *, media: bool = False) -> bool:
        """Idle, running queued messages, until ``timeout`` or an interruption.

        Returns True when the full ``timeout`` elapsed. ``media=True`` also stops
        on ``uuid_break`` (media applications).
        """
        loop = self.node.loop
        deadline = None if timeout is None else loop.time() + timeout
        while not self.interrupted and not (media and self._break):
            if self._private:
                await self._parse_private(self._private.popleft())
                continue
            if deadline is None:
                await self._next_change(None)
                continue
            remaining = deadline - loop.time()
            if remaining <= 0 or not await self._next_change(remaining):
                return True
        return False

    def queue_message(self, headers: Headers) -> None:
        """Queue a private message (sendmsg, broadcast); parsed when the session is idle."""
        self._private.append(headers)
        self.wake()

    def stop_media(self) -> None:
        """``uuid_break``: stop the media application now playing."""
        self._break = True
        self.wake()

    def redirect(self, target: str) -> None:
        """Make the running applications return so the session goes elsewhere.

        ``target`` is ``"execute"`` (run :attr:`extension`), ``"transfer"``
        (route the new destination), ``"park"``, ``"bridge"`` (join a
        ``uuid_bridge``) or ``"exchange"`` (be the b-leg of a ``bridge``).
        """
        self._redirect = target
        self.wake()

    async def _parse_private(self, headers: Headers) -> None:
        """``switch_ivr_parse_event``: act on one queued message, then re-fire it.

        The re-fire as PRIVATE_COMMAND happens only when the channel had media as
        it took the message: a parked channel without media parses its messages
        in a loop that discards them (trace 07 shows no PRIVATE_COMMAND for a
        broadcast to a ringing channel, trace 03 shows one on an answered one).
        """
        refire = self.has_media
        command = _header(headers, "call-command")
        if command == "execute":
            app = _header(headers, "execute-app-name") or ""
            arg = _header(headers, "execute-app-arg") or ""
            app_uuid = _header(headers, "Event-UUID")
            loops = _int(_header(headers, "loops"), 1)
            for loop_number in range(1, loops + 1):
                if not self.is_up:
                    break
                self.set_var("current_loop", str(loop_number))
                self.set_var("total_loops", str(loops))
                await self.execute(app, arg, app_uuid=app_uuid)
        elif command == "hangup":
            self.hangup(_header(headers, "hangup-cause") or "NORMAL_CLEARING")
        if refire:
            event = self.node.events.create("PRIVATE_COMMAND", At.PRIVATE_COMMAND)
            event.headers[0:0] = [(k, v) for k, v in headers if v]
            event.extend(self.channel_data("PRIVATE_COMMAND"))
            self.node.fire(event)
        self.set_var("current_loop", None)
        self.set_var("total_loops", None)

    async def execute(self, app: str, arg: str = "", *, app_uuid: str | None = None) -> bool:
        """Run one application (``switch_core_session_execute_application``)."""
        application = apps.APPLICATIONS.get(app.lower())
        if application is None:
            # FreeSWITCH hangs up on an application it does not have.
            self.hangup("DESTINATION_OUT_OF_ORDER")
            return False
        name = application.name
        if application.needs_media and not self.has_media:
            if self.direction != "inbound":
                return False
            self.pre_answer()
        app_uuid = app_uuid or ids.new_uuid()
        self.set_var("current_application", name)
        self.set_var("current_application_data", arg)
        self.set_var("current_application_response", None)
        self.fire(
            "CHANNEL_EXECUTE",
            At.EXECUTE,
            after=[
                ("Application", name),
                ("Application-Data", arg),
                ("Application-UUID", app_uuid),
            ],
        )
        self.set_var("current_application", name)
        self.app_log.append((name, arg))
        outer_app = self.current_app
        self.current_app = (name, arg)
        self._break = False
        # The far end may be waiting to hear this application (mod_bert does).
        peer = self.media_peer
        if peer is not None:
            peer.wake()
        try:
            await application.run(self, arg)
        finally:
            self.current_app = outer_app
        response = self.variables.get("current_application_response") or "_none_"
        self.fire(
            "CHANNEL_EXECUTE_COMPLETE",
            At.EXECUTE_COMPLETE,
            after=[
                ("Application", name),
                ("Application-Data", arg),
                ("Application-Response", response),
                ("Application-UUID", app_uuid),
            ],
        )
        return True

    async def run_extension(self) -> None:
        """CS_EXECUTE: run :attr:`extension` application by application.

        When the applications run out with the channel still up, FreeSWITCH
        hangs up with NORMAL_CLEARING.
        """
        self.advance(CS_EXECUTE)
        if self.extension:
            # The core re-sets call_uuid as it starts executing.
            self.set_var("call_uuid", self.variables.get("call_uuid", self.uuid))
        for app, arg in list(self.extension):
            if self.interrupted:
                break
            await self.execute(app, arg)
        if not self.interrupted:
            self.hangup("NORMAL_CLEARING")

    async def follow_redirect(self) -> None:
        """Go where :meth:`redirect` sent the session."""
        target, self._redirect = self._redirect, None
        if target == "execute":
            await self.run_extension()
        elif target == "transfer":
            await self.route()
        elif target == "park":
            self.advance(CS_PARK)
            await apps.park_loop(self)
        elif target == "bridge":
            self.advance(CS_EXCHANGE_MEDIA)
            await bridge.bridged_session(self)
        elif target == "exchange":
            # The b-leg of a bridge application: media flows until either side hangs up.
            peer = self.bridged_to
            self.advance(CS_EXCHANGE_MEDIA)
            await self.until(lambda: not self.is_up or peer is None or not peer.is_up, None)
            self.bridged_to = None
            if self.is_up:
                self.hangup(peer.hangup_cause if peer and peer.hangup_cause else "NORMAL_CLEARING")

    async def route(self) -> None:
        """CS_ROUTING: look the destination up in the dialplan, then execute it."""
        self.advance(CS_ROUTING)
        self.extension = self.node.dialplan(self)
        if not self.extension:
            self.hangup("NO_ROUTE_DESTINATION")
            return
        await self.run_extension()

    def _finish(self) -> None:
        """The teardown after hangup: CS_HANGUP, CS_REPORTING, CS_DESTROY."""
        cause = self.hangup_cause or "NORMAL_CLEARING"
        self.set_running_state(CS_HANGUP)
        # switch_core_session_hangup_state removes the media bugs first.
        apps.remove_media_bugs(self)
        if self.profile:
            self.profile.times.hungup = self.now_us()
        self.set_callstate("HANGUP")
        self.set_var("hangup_cause", cause)
        self.set_var("hangup_cause_q850", str(q850(cause)))
        self.set_vars(self.cdr_variables())
        self.on_hangup()
        self.advance(CS_REPORTING)
        self.fire("CHANNEL_HANGUP_COMPLETE", At.HANGUP_COMPLETE, before=[("Hangup-Cause", cause)])
        self.state = CS_DESTROY
        self.fire("CHANNEL_DESTROY", At.DESTROY)
        self.set_running_state(CS_DESTROY)

    def cdr_variables(self) -> Headers:
        """``switch_channel_set_timestamps``: the CDR variables of HANGUP_COMPLETE."""
        times = self.profile.times if self.profile else ProfileTimes()
        end = times.hungup or self.now_us()
        start, answered = times.created, times.answered
        out: Headers = [("digits_dialed", self.digits_dialed or "none")]
        stamps = (
            start,
            times.profile_created,
            answered,
            times.bridged,
            times.resurrected,
            times.progress,
            times.progress_media,
            end,
        )
        out += [(name, _local_stamp(t)) for name, t in zip(_STAMP_NAMES, stamps, strict=True) if t]
        epochs = (start, times.profile_created, answered, times.bridged, times.last_hold)
        for (epoch, uepoch), t in zip(_EPOCH_NAMES, epochs, strict=True):
            out += ((epoch, str(t // 1_000_000)), (uepoch, str(t)))
        accum = times.hold_accum
        out += (
            ("hold_accum_seconds", str(accum // 1_000_000)),
            ("hold_accum_usec", str(accum)),
            ("hold_accum_ms", str(accum // 1000)),
        )
        late_epochs = (times.resurrected, times.progress, times.progress_media, end)
        for (epoch, uepoch), t in zip(_LATE_EPOCH_NAMES, late_epochs, strict=True):
            out += ((epoch, str(t // 1_000_000)), (uepoch, str(t)))
        if self.app_log:
            last_app, last_arg = self.app_log[-1]
            out += (("last_app", last_app), ("last_arg", last_arg))
        profile = self.profile
        if profile and profile.caller_id_name:
            caller_id = f'"{profile.caller_id_name}" <{profile.caller_id_number}>'
        else:
            caller_id = profile.caller_id_number if profile else ""
        out.append(("caller_id", caller_id))
        spans = (
            (start, end),
            (answered, end),
            (start, times.progress),
            (start, answered),
            (start, times.bridged),
            (start, times.progress_media),
            (start, end if answered else 0),
        )
        for divisor, names in _SPAN_NAMES:
            for name, (since, until) in zip(names, spans, strict=True):
                value = until // divisor - since // divisor if since and until else 0
                out.append((name, str(value)))
        return out

    def row(self) -> dict[str, str]:
        """The channel as a row of the core ``channels`` table (``show channels``)."""
        profile = self.profile or CallerProfile(self.direction, self.direction)
        initial = self.initial_profile or profile
        app, app_data = self.current_app or ("", "")
        if self.extension and not app and self.running_state == CS_EXECUTE:
            app = self.extension[0][0]
        created = self.created_at
        read = self.read_codec
        write = self.write_codec
        return {
            "uuid": self.uuid,
            "direction": self.direction,
            "created": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(created)),
            "created_epoch": str(int(created)),
            "name": self.name,
            "state": STATE_NAMES[self.running_state],
            "cid_name": profile.caller_id_name,
            "cid_num": profile.caller_id_number,
            "ip_addr": profile.network_addr,
            "dest": profile.destination_number,
            "application": app,
            "application_data": app_data,
            "dialplan": profile.dialplan,
            "context": profile.context,
            "read_codec": read.name if read else "",
            "read_rate": str(read.rate) if read else "",
            "read_bit_rate": str(read.bit_rate) if read else "",
            "write_codec": write.name if write else "",
            "write_rate": str(write.rate) if write else "",
            "write_bit_rate": str(write.bit_rate) if write else "",
            "secure": "",
            "hostname": self.node.identity.hostname,
            "presence_id": "",
            "presence_data": "",
            "accountcode": "",
            "callstate": self.callstate,
            "callee_name": profile.callee_id_name,
            "callee_num": profile.callee_id_number,
            "callee_direction": "",
            "call_uuid": self.call_uuid_column,
            "sent_callee_name": "",
            "sent_callee_num": "",
            "initial_cid_name": initial.caller_id_name,
            "initial_cid_num": initial.caller_id_number,
            "initial_ip_addr": initial.network_addr,
            "initial_dest": initial.destination_number,
            "initial_dialplan": initial.dialplan,
            "initial_context": initial.context,
        }

    @property
    def call_uuid_column(self) -> str:
        """The ``call_uuid`` column: set for originated legs and bridged calls only."""
        if self.bridged_to is not None:
            return self.variables.get("call_uuid", self.uuid)
        return self.uuid if self.direction == "outbound" else ""


# The names of the CDR variables (cdr_variables), in the order they are set.
_STAMP_NAMES = tuple(
    f"{label}_stamp"
    for label in (
        "start",
        "profile_start",
        "answer",
        "bridge",
        "resurrect",
        "progress",
        "progress_media",
        "end",
    )
)
_EPOCH_NAMES = tuple(
    (f"{label}_epoch", f"{label}_uepoch")
    for label in ("start", "profile_start", "answer", "bridge", "last_hold")
)
_LATE_EPOCH_NAMES = tuple(
    (f"{label}_epoch", f"{label}_uepoch")
    for label in ("resurrect", "progress", "progress_media", "end")
)
_DURATION = {"sec": "duration", "msec": "mduration", "usec": "uduration"}
#: (divisor, names of the spans) for seconds, milliseconds and microseconds.
_SPAN_NAMES = tuple(
    (
        divisor,
        tuple(
            label.replace("sec", unit) if label != "duration" else _DURATION[unit]
            for label in (
                "duration",
                "billsec",
                "progresssec",
                "answersec",
                "waitsec",
                "progress_mediasec",
                "flow_billsec",
            )
        ),
    )
    for divisor, unit in ((1_000_000, "sec"), (1000, "msec"), (1, "usec"))
)

DTMF_DIGITS = frozenset("0123456789*#ABCD")
#: Default DTMF tone length in milliseconds (2000 samples at 8 kHz).
DTMF_MS = 250
#: How long after a tone ends the channel reads it (the traces show about 20 ms).
DTMF_READ_DELAY = 0.02


def next_change(
    loop: asyncio.AbstractEventLoop, channels: Iterable[Channel], timeout: float | None
) -> Awaitable[bool]:
    """What to await for the next :meth:`Channel.wake` of any of ``channels`` (True)
    or for ``timeout`` seconds (False).

    A future of ``loop`` (and a timer), not asyncio.wait_for: that looks the
    running loop up (a system call on Python 3.11) and wraps what it waits
    for in a task. Without a timeout it is the future itself, not a coroutine:
    a parked channel keeps no more than that waiting.
    """
    watcher: asyncio.Future[bool] = loop.create_future()
    for channel in channels:
        channel.add_watcher(watcher)
    if timeout is None:
        return watcher
    return _until_time_out(watcher, loop.call_later(timeout, _time_out, watcher))


async def _until_time_out(watcher: asyncio.Future[bool], timer: asyncio.TimerHandle) -> bool:
    try:
        return await watcher
    finally:
        timer.cancel()


def _time_out(watcher: asyncio.Future[bool]) -> None:
    if not watcher.done():
        watcher.set_result(False)


def _local_stamp(microseconds: int) -> str:
    return _local_second(microseconds // 1_000_000)


@lru_cache(maxsize=64)
def _local_second(second: int) -> str:
    # Cached: a call's stamps fall in a few seconds, shared by the calls around it.
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))


def _header(headers: Headers, name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers:
        if key.lower() == lowered:
            return value
    return None


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text else default
    except ValueError:
        return default
