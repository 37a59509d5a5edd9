"""Events as the simulated switch creates them, before serialisation.

A :class:`SimEvent` is an ordered list of (name, raw value) headers plus an
optional body, exactly like FreeSWITCH's ``switch_event_t``: the ESL server
serialises it to plain, JSON or XML for each listener. :class:`EventFactory`
stamps the 13-header standard prefix (ESL_PROTOCOL.md §3.2) and the node's
sequence numbers on every event it creates.

Most headers of an event recur from event to event (the prefix's identity,
a channel's profile and variables): they come as :class:`HeaderRun` s, whose
encodings are made once and shared by every event and listener.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from functools import lru_cache
from typing import ClassVar

from switchy.sim.plain import Header, field_line, plain_lines

#: Headers and their plain encoding.
_Piece = tuple[tuple[Header, ...], bytes]


class HeaderRun:
    """Headers that recur unchanged from event to event (a channel's profile, its state).

    Serialisers keep their encoding of the run in :attr:`encoded` (by format),
    so it is made once however many events carry it; a run made with its
    ``plain`` encoding never needs its headers encoded.
    """

    __slots__ = ("_headers", "encoded")

    def __init__(self, headers: tuple[Header, ...] | None, *, plain: bytes | None = None) -> None:
        # None: made by _build_headers when first read.
        self._headers = headers
        self.encoded: dict[str, bytes] = {} if plain is None else {"plain": plain}

    @property
    def headers(self) -> tuple[Header, ...]:
        headers = self._headers
        if headers is None:
            headers = self._headers = self._build_headers()
        return headers

    def _build_headers(self) -> tuple[Header, ...]:
        """The headers of a run that makes them only when read (see :class:`VariableRun`)."""
        raise NotImplementedError

    def get(self, name: str) -> str | None:
        """The first value of header ``name`` in the run."""
        for key, value in self.headers:
            if key == name:
                return value
        return None


class FieldRun(HeaderRun):
    """Headers with fixed names (a profile's fields, a channel's state), from their values.

    A header whose value is empty is left out. Made with its plain encoding,
    line by line, reusing the lines of ``previous`` (a run of the same names)
    for the values that did not change; the headers are built only if read.
    Without a ``previous``, the last run made with the same names stands in:
    the legs of one call after another have most of their values in common.
    """

    __slots__ = ("lines", "names", "values")
    names: tuple[str, ...]
    values: tuple[str | int, ...]
    lines: list[bytes]

    #: The last run made with each tuple of names.
    _last: ClassVar[dict[tuple[str, ...], FieldRun]] = {}

    def __init__(
        self,
        names: tuple[str, ...],
        values: tuple[str | int, ...],
        previous: FieldRun | None = None,
    ) -> None:
        if previous is None or previous.names is not names:
            previous = self._last.get(names)
        if previous is None:
            lines = [field_line(name, value) for name, value in zip(names, values, strict=True)]
        else:
            lines = [
                line if value == old else field_line(name, value)
                for name, value, old, line in zip(
                    names, values, previous.values, previous.lines, strict=True
                )
            ]
        super().__init__(None, plain=b"".join(lines))
        self.names = names
        #: Not to be changed: runs made from this one reuse its lines.
        self.values = values
        self.lines = lines
        self._last[names] = self

    def _build_headers(self) -> tuple[Header, ...]:
        pairs = zip(self.names, self.values, strict=True)
        return tuple([(name, str(value)) for name, value in pairs if value != ""])


class VariableRun(HeaderRun):
    """A channel's variables at one moment, as ``variable_<name>`` headers.

    Made with its plain encoding (the channel keeps each variable's line); the
    headers themselves are built only if something reads them (a JSON or XML
    listener, a filter).
    """

    __slots__ = ("values",)

    def __init__(self, values: dict[str, str], plain: bytes) -> None:
        super().__init__(None, plain=plain)
        #: name -> value (never empty), in the channel's order; not to be changed.
        self.values = values

    def _build_headers(self) -> tuple[Header, ...]:
        return tuple([("variable_" + name, value) for name, value in self.values.items()])

    def get(self, name: str) -> str | None:
        return self.values.get(name[9:]) if name.startswith("variable_") else None


class SimEvent:
    """One event: headers in wire order (values raw, not URL-encoded) and a body.

    An event is built as *parts*: lists of headers and :class:`HeaderRun` s,
    which serialisers encode part by part, reusing each run's encoding. Reading
    :attr:`headers` flattens it into one list, which may then be changed at
    will; :attr:`runs` then marks the runs within it, by the index where each
    starts, and a serialiser checks a run is still in place before reusing it.
    """

    __slots__ = ("_headers", "_parts", "body", "name", "runs")

    def __init__(
        self, name: str, headers: list[Header] | None = None, body: str | None = None
    ) -> None:
        self.name = name
        self.body = body
        self.runs: list[tuple[int, HeaderRun]] = []
        # Exactly one of the two is None: the parts until the headers are read.
        self._headers = headers
        self._parts: list[list[Header] | HeaderRun] | None = [] if headers is None else None

    @property
    def headers(self) -> list[Header]:
        headers = self._headers
        if headers is None:
            headers = self._headers = []
            for part in self._parts or ():
                if isinstance(part, HeaderRun):
                    self.runs.append((len(headers), part))
                    headers += part.headers
                else:
                    headers += part
            self._parts = None
        return headers

    @property
    def parts(self) -> list[list[Header] | HeaderRun] | None:
        """The parts the event is made of, in order; None once :attr:`headers` was read."""
        return self._parts

    def copy(self) -> SimEvent:
        """A copy later changes to this event do not reach (``switch_event_dup``)."""
        parts = self._parts
        if parts is None:
            duplicate = SimEvent(self.name, list(self.headers), self.body)
            duplicate.runs = list(self.runs)
            return duplicate
        duplicate = SimEvent(self.name, None, self.body)
        duplicate._parts = parts = parts[:]
        # Only the last part grows (add, extend): the others are never changed.
        if parts and type(parts[-1]) is list:
            parts[-1] = parts[-1][:]
        return duplicate

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of header ``name``."""
        parts = self._parts
        if parts is None:
            for key, value in self.headers:
                if key == name:
                    return value
            return default
        for part in parts:
            if isinstance(part, HeaderRun):
                found = part.get(name)
                if found is not None:
                    return found
            else:
                for key, value in part:
                    if key == name:
                        return value
        return default

    @property
    def subclass(self) -> str | None:
        return self.get("Event-Subclass")

    def add(self, name: str, value: str) -> None:
        """Append a header; an empty value is dropped, as FreeSWITCH does."""
        if value != "":
            self._tail().append((name, value))

    def extend(self, headers: list[Header]) -> None:
        """Append headers, dropping those with an empty value."""
        self._tail().extend([header for header in headers if header[1] != ""])

    def extend_run(self, run: HeaderRun) -> None:
        """Append the headers of ``run`` (whatever their values) and mark them as a run."""
        parts = self._parts
        if parts is None:
            self.runs.append((len(self.headers), run))
            self.headers.extend(run.headers)
        else:
            parts.append(run)

    def _tail(self) -> list[Header]:
        """Where headers are appended: the list of headers or the last part."""
        parts = self._parts
        if parts is None:
            return self.headers
        if not parts or type(parts[-1]) is not list:
            parts.append([])
        tail = parts[-1]
        assert isinstance(tail, list)
        return tail


@dataclass(slots=True)
class NodeIdentity:
    """What every event of one simulated FreeSWITCH says about its origin."""

    core_uuid: str
    hostname: str = "switchy-sim"
    switchname: str = "switchy-sim"
    ipv4: str = "127.0.0.1"
    ipv6: str = "::1"


@dataclass
class EventFactory:
    """Creates events with the standard prefix and a per-node Event-Sequence.

    It also knows which event types anyone receives: every consumer of the
    node's events declares the types it takes (:meth:`declare_interest`), so
    that channels build no event nobody would receive (:meth:`wanted`). An
    event not built still takes its Event-Sequence number (:meth:`skip`), as
    FreeSWITCH numbers every event it creates.

    The prefix of each event is a :class:`HeaderRun` made with its plain
    encoding, from pieces encoded once: the node's identity (per event type),
    the dates (per second) and the calling site.
    """

    identity: NodeIdentity
    clock: Callable[[], float] = time.time
    sequence: int = field(default=0)
    _interests: dict[object, frozenset[str] | None] = field(
        default_factory=dict, init=False, repr=False
    )
    # The union of the interests; None when some consumer takes every type.
    _wanted: frozenset[str] | None = field(default=frozenset(), init=False, repr=False)
    _date_second: int = field(default=-1, init=False, repr=False)
    _dates: _Piece = field(default=((), b""), init=False, repr=False)
    # Event-Name to IPv6 by event type, for the identity they were made from.
    _identity_key: tuple[str, ...] = field(default=(), init=False, repr=False)
    _identities: dict[str, _Piece] = field(default_factory=dict, init=False, repr=False)

    def declare_interest(self, consumer: object, types: frozenset[str] | None) -> None:
        """``consumer`` takes events of ``types`` from now on (None: of every type)."""
        if consumer in self._interests and self._interests[consumer] == types:
            return
        self._interests[consumer] = types
        self._update_wanted()

    def withdraw_interest(self, consumer: object) -> None:
        """``consumer`` takes no more events."""
        if consumer in self._interests:
            del self._interests[consumer]
            self._update_wanted()

    def _update_wanted(self) -> None:
        wanted: set[str] = set()
        for types in self._interests.values():
            if types is None:
                self._wanted = None
                return
            wanted |= types
        self._wanted = frozenset(wanted)

    def wanted(self, name: str) -> bool:
        """Whether any consumer takes events of type ``name``."""
        wanted = self._wanted
        return wanted is None or name in wanted

    def _identity(self, name: str) -> _Piece:
        """Event-Name, Core-UUID and the FreeSWITCH-* headers, made once per type."""
        ident = self.identity
        key = (ident.core_uuid, ident.hostname, ident.switchname, ident.ipv4, ident.ipv6)
        if key != self._identity_key:  # a restart gives a new Core-UUID
            self._identity_key = key
            self._identities = {}
        piece = self._identities.get(name)
        if piece is None:
            headers = (
                ("Event-Name", name),
                ("Core-UUID", ident.core_uuid),
                ("FreeSWITCH-Hostname", ident.hostname),
                ("FreeSWITCH-Switchname", ident.switchname),
                ("FreeSWITCH-IPv4", ident.ipv4),
                ("FreeSWITCH-IPv6", ident.ipv6),
            )
            piece = self._identities[name] = (headers, plain_lines(headers))
        return piece

    def _date_headers(self, now: float) -> _Piece:
        """Event-Date-Local and Event-Date-GMT, made once per second."""
        second = int(now)
        if second != self._date_second:
            self._date_second = second
            headers = (
                ("Event-Date-Local", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))),
                ("Event-Date-GMT", formatdate(now, usegmt=True)),
            )
            self._dates = (headers, plain_lines(headers))
        return self._dates

    def skip(self) -> None:
        """Number an event that is not built (no consumer wants it)."""
        self.sequence += 1

    def create(
        self,
        name: str,
        calling: tuple[str, str, int],
        subclass: str | None = None,
        timestamp: float | None = None,
    ) -> SimEvent:
        """A new event of type ``name`` (``CUSTOM`` with ``subclass``).

        ``calling`` is the (file, function, line) FreeSWITCH reports as
        Event-Calling-*; the simulator copies the values the traces show.
        """
        now = self.clock() if timestamp is None else timestamp
        self.sequence += 1
        event = SimEvent(name)
        if subclass is not None:
            event._tail().append(("Event-Subclass", subclass))
        event.extend_run(
            _Prefix(self._identity(name), self._date_headers(now), now, calling, self.sequence)
        )
        return event


class _Prefix(HeaderRun):
    """The 13 standard headers of one event, made with their plain encoding from
    pieces encoded once; the headers themselves are built only if read."""

    __slots__ = ("_dates", "_identity", "_sequence", "_site", "_stamp")

    def __init__(
        self,
        identity: _Piece,
        dates: _Piece,
        now: float,
        calling: tuple[str, str, int],
        sequence: int,
    ) -> None:
        site = _calling_site(calling)
        stamp = int(now * 1_000_000)
        # Both numbers are digits (and a sign at most): nothing to URL-encode.
        super().__init__(
            None,
            plain=b"%s%sEvent-Date-Timestamp: %d\n%sEvent-Sequence: %d\n"
            % (identity[1], dates[1], stamp, site[1], sequence),
        )
        self._identity = identity[0]
        self._dates = dates[0]
        self._stamp = stamp
        self._site = site[0]
        self._sequence = sequence

    def _build_headers(self) -> tuple[Header, ...]:
        return (
            *self._identity,
            *self._dates,
            ("Event-Date-Timestamp", str(self._stamp)),
            *self._site,
            ("Event-Sequence", str(self._sequence)),
        )


@lru_cache(maxsize=1024)
def _calling_site(calling: tuple[str, str, int]) -> _Piece:
    """The Event-Calling-* headers of a site, and their lines."""
    headers = (
        ("Event-Calling-File", calling[0]),
        ("Event-Calling-Function", calling[1]),
        ("Event-Calling-Line-Number", str(calling[2])),
    )
    return headers, plain_lines(headers)
