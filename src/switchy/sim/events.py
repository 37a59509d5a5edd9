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


@dataclass(slots=True)
class SimEvent:
    """One event: headers in wire order (values raw, not URL-encoded) and a body."""

    name: str
    headers: list[tuple[str, str]]
    body: str | None = None

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
        for name, value in headers:
            self.add(name, value)


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
    """Creates events with the standard prefix and a per-node Event-Sequence."""

    identity: NodeIdentity
    clock: Callable[[], float] = time.time
    sequence: int = field(default=0)

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
            ("Event-Date-Local", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))),
            ("Event-Date-GMT", formatdate(now, usegmt=True)),
            ("Event-Date-Timestamp", str(int(now * 1_000_000))),
            ("Event-Calling-File", calling[0]),
            ("Event-Calling-Function", calling[1]),
            ("Event-Calling-Line-Number", str(calling[2])),
            ("Event-Sequence", str(self.sequence)),
        ]
        return SimEvent(name, headers)
