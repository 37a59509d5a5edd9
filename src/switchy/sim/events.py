"""Events as the simulated switch creates them, before serialisation.

A :class:`SimEvent` is an ordered list of (name, raw value) headers plus an
optional body, exactly like FreeSWITCH's ``switch_event_t``: the ESL server
serialises it to plain or JSON for each listener. :class:`EventFactory` stamps
the 13-header standard prefix (ESL_PROTOCOL.md §3.2) and the node's sequence
numbers on every event it creates.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate


class HeaderRun:
    """Headers that recur unchanged from event to event (a channel's variables).

    Serialisers keep their encoding of the run in :attr:`encoded` (by format),
    so it is made once however many events carry it.
    """

    __slots__ = ("encoded", "headers")

    def __init__(self, headers: tuple[tuple[str, str], ...]) -> None:
        self.headers = headers
        self.encoded: dict[str, bytes] = {}


@dataclass(slots=True)
class SimEvent:
    """One event: headers in wire order (values raw, not URL-encoded) and a body.

    ``runs`` marks :class:`HeaderRun` s within ``headers``, by the index where
    each starts; a serialiser checks a run is still in place before reusing it.
    """

    name: str
    headers: list[tuple[str, str]]
    body: str | None = None
    runs: list[tuple[int, HeaderRun]] = field(default_factory=list)

    def copy(self) -> SimEvent:
        """A copy later changes to this event do not reach (``switch_event_dup``)."""
        return SimEvent(self.name, list(self.headers), self.body, list(self.runs))

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of header ``name``."""
        for key, value in self.headers:
            if key == name:
                return value
        return default

    @property
    def subclass(self) -> str | None:
        return self.get("Event-Subclass")

    def add(self, name: str, value: str) -> None:
        """Append a header; an empty value is dropped, as FreeSWITCH does."""
        if value != "":
            self.headers.append((name, value))

    def extend(self, headers: list[tuple[str, str]]) -> None:
        """Append headers, dropping those with an empty value."""
        self.headers += [header for header in headers if header[1] != ""]

    def extend_run(self, run: HeaderRun) -> None:
        """Append the headers of ``run`` (none of them empty) and mark them as a run."""
        self.runs.append((len(self.headers), run))
        self.headers += run.headers


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
    _date_headers: tuple[tuple[str, str], tuple[str, str]] = field(
        default=(("", ""), ("", "")), init=False, repr=False
    )

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

    def _dates(self, now: float) -> tuple[tuple[str, str], tuple[str, str]]:
        """Event-Date-Local and Event-Date-GMT, made once per second."""
        second = int(now)
        if second != self._date_second:
            self._date_second = second
            self._date_headers = (
                ("Event-Date-Local", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))),
                ("Event-Date-GMT", formatdate(now, usegmt=True)),
            )
        return self._date_headers

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
        ident = self.identity
        headers: list[tuple[str, str]] = []
        if subclass is not None:
            headers.append(("Event-Subclass", subclass))
        headers += [
            ("Event-Name", name),
            ("Core-UUID", ident.core_uuid),
            ("FreeSWITCH-Hostname", ident.hostname),
            ("FreeSWITCH-Switchname", ident.switchname),
            ("FreeSWITCH-IPv4", ident.ipv4),
            ("FreeSWITCH-IPv6", ident.ipv6),
            *self._dates(now),
            ("Event-Date-Timestamp", str(int(now * 1_000_000))),
            ("Event-Calling-File", calling[0]),
            ("Event-Calling-Function", calling[1]),
            ("Event-Calling-Line-Number", str(calling[2])),
            ("Event-Sequence", str(self.sequence)),
        ]
        return SimEvent(name, headers)
