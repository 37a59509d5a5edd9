"""A simulated device under test (DUT): a SIP proxy between simulated FreeSWITCH nodes.

Load tests drive FreeSWITCH nodes as call generators against a device under
test (an SBC, a proxy, a PBX) that routes each call back to a generator. In
the simulator that device is a :class:`SimulatedDUT`: an address of a
:class:`~switchy.sim.sofia.SipNetwork`, reserved as a real UDP port like the
nodes' SIP addresses. A node reaches it with a ``;fs_path=`` route
(``switchy.esl.commands.originate(..., proxy=dut.address)``); it relays each
INVITE to its Request-URI's host (any node of the network, the caller's own
included), record-routes the dialog, and passes every later message both ways.

What a device under test does to calls is set by :class:`DUTSettings`, whose
values may change while calls run (``dut.settings.capacity = 10``):

* ``capacity``: at most this many calls at once (INVITE received, dialog not
  ended); over it the INVITE is refused with ``capacity_status`` (503: the
  caller's leg ends with NORMAL_TEMPORARY_FAILURE).
* ``setup_delay``: seconds (or a function returning them, drawn per call)
  between an INVITE's arrival and its forwarding. A CANCEL meanwhile stops it.
* ``reject`` / ``reject_status``: the probability of refusing an accepted
  INVITE at once with that status (486: USER_BUSY), from a generator seeded
  with ``seed``.
* ``unreachable_status``: the answer when nothing listens at the
  Request-URI's address (503 by default, as from a proxy that could not send
  the request; a real one over UDP may instead time out with 408).

Refusals the DUT makes itself carry no Reason header, so the caller takes its
hangup cause from the status alone (``sofia_glue_sip_cause_to_freeswitch``).
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias

from switchy.sim.causes import SIP_PHRASES
from switchy.sim.sofia import ProxyHop, SipNetwork, SofiaChannel, new_branch

__all__ = ["DUTSettings", "SimulatedDUT"]

#: A delay in seconds, or a function drawing one per call.
Delay: TypeAlias = "float | Callable[[], float]"

#: Messages after which a dialog (or its attempt) is over.
_ENDING_METHODS = frozenset({"BYE", "CANCEL"})


@dataclass
class DUTSettings:
    """How a :class:`SimulatedDUT` treats calls (see the module docstring)."""

    capacity: int | None = None
    capacity_status: int = 503
    setup_delay: Delay = 0.0
    reject: float = 0.0
    reject_status: int = 486
    unreachable_status: int = 503
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.capacity is not None and self.capacity < 0:
            raise ValueError(f"capacity must be None or at least 0, got {self.capacity}")
        if not 0.0 <= self.reject <= 1.0:
            raise ValueError(f"reject is a probability, got {self.reject}")
        if not callable(self.setup_delay) and self.setup_delay < 0:
            raise ValueError(f"setup_delay must not be negative, got {self.setup_delay}")
        for name in ("capacity_status", "reject_status", "unreachable_status"):
            status = getattr(self, name)
            if not 300 <= status <= 699:
                raise ValueError(f"{name} must be a final error status (300-699), got {status}")


class SimulatedDUT:
    """A record-routing SIP proxy on ``network``, with the knobs of :class:`DUTSettings`.

    :meth:`start` reserves a UDP port on ``host`` and puts the DUT at that
    address in the network; :meth:`close` takes it out. Counters: ``routed``
    (INVITEs forwarded to their Request-URI), ``refused`` (over capacity),
    ``rejected`` (by ``reject``), ``unreachable`` (nothing at the Request-URI)
    and :attr:`active` (calls in progress through the DUT).
    """

    def __init__(
        self, network: SipNetwork, host: str = "127.0.0.1", settings: DUTSettings | None = None
    ) -> None:
        self.network = network
        self.host = host
        self.settings = settings if settings is not None else DUTSettings()
        self.routed = 0
        self.refused = 0
        self.rejected = 0
        self.unreachable = 0
        self._random = random.Random(self.settings.seed)
        self._calls: set[_ProxiedCall] = set()
        self._socket: socket.socket | None = None
        self._port = 0

    @property
    def port(self) -> int:
        """The reserved UDP port (0 until started)."""
        return self._port

    @property
    def address(self) -> str:
        """``ip:port``, where nodes send INVITEs (the ``proxy`` of an originate)."""
        return f"{self.host}:{self._port}"

    @property
    def active(self) -> int:
        """Calls through the DUT now: from the INVITE until BYE, CANCEL or a refusal."""
        return len(self._calls)

    def start(self) -> None:
        """Reserve the address and join the network."""
        if self._socket is not None:
            return
        reserved = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            reserved.bind((self.host, 0))
        except BaseException:
            reserved.close()
            raise
        self._socket = reserved
        self._port = reserved.getsockname()[1]
        self.network.register_proxy(self.address, self)

    def close(self) -> None:
        """Leave the network; INVITEs still held are dropped, the address is released."""
        if self._socket is None:
            return
        self.network.unregister_proxy(self.address, self)
        for call in list(self._calls):
            call.abandon()
        self._socket.close()
        self._socket = None

    def __enter__(self) -> SimulatedDUT:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the proxy --------------------------------------------------------------------

    def receive_invite(self, uac: SofiaChannel) -> None:
        """An INVITE from ``uac``: refuse it, or hold it ``setup_delay`` then forward it."""
        settings = self.settings
        if settings.capacity is not None and len(self._calls) >= settings.capacity:
            self.refused += 1
            self._refuse(uac, settings.capacity_status)
            return
        if settings.reject > 0 and self._random.random() < settings.reject:
            self.rejected += 1
            self._refuse(uac, settings.reject_status)
            return
        call = _ProxiedCall(self, uac)
        self._calls.add(call)
        delay = settings.setup_delay() if callable(settings.setup_delay) else settings.setup_delay
        call.hold(max(delay, 0.0))

    def _refuse(self, uac: SofiaChannel, status: int) -> None:
        """Answer ``uac``'s INVITE with a final ``status``, as a packet arriving next."""

        def deliver() -> None:
            if uac.is_up:
                uac.remote_refused(status, "", SIP_PHRASES.get(status))

        uac.node.loop.call_soon(deliver)

    def _forward(self, call: _ProxiedCall) -> None:
        status = self.network.relay_invite(call.uac, call.hop)
        if status == 0:
            self.unreachable += 1
            status = self.settings.unreachable_status
        else:
            self.routed += 1
        if status is not None:
            call.end()
            self._refuse(call.uac, status)

    def _ended(self, call: _ProxiedCall) -> None:
        self._calls.discard(call)


class _ProxiedCall:
    """One INVITE through the DUT, then the dialog it made, until it ends."""

    __slots__ = ("_dut", "_ended", "_timer", "branch", "uac")

    def __init__(self, dut: SimulatedDUT, uac: SofiaChannel) -> None:
        self._dut = dut
        self.uac = uac
        self.branch = new_branch()
        self._timer: asyncio.Handle | None = None
        self._ended = False

    @property
    def hop(self) -> ProxyHop:
        """The DUT on the dialog's path. Made when needed and not kept: it refers back
        to the call, and a cycle would keep the call's legs for the garbage collector."""
        return ProxyHop(self._dut.host, self._dut.port, self.branch, self.observe)

    def hold(self, delay: float) -> None:
        """Forward the INVITE after ``delay`` seconds, unless the caller cancels first."""
        self.uac.cancel_pending_invite = self.cancel
        loop = self.uac.node.loop
        if delay > 0:
            self._timer = loop.call_later(delay, self._forward)
        else:
            self._timer = loop.call_soon(self._forward)

    def _forward(self) -> None:
        self._timer = None
        self.uac.cancel_pending_invite = None
        if self.uac.is_up:
            self._dut._forward(self)
        else:
            self.end()

    def cancel(self, cause: str) -> None:
        """The caller's CANCEL reached the DUT before the INVITE went on: 487, never forwarded."""
        self.abandon()

    def abandon(self) -> None:
        """Drop the call: an INVITE still held is never forwarded."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.uac.cancel_pending_invite = None
        self.end()

    def observe(self, message: str) -> None:
        """A message of the dialog passing through: BYE, CANCEL or a refusal ends it."""
        if message in _ENDING_METHODS or (message.isdigit() and int(message) >= 300):
            self.end()

    def end(self) -> None:
        if not self._ended:
            self._ended = True
            self._dut._ended(self)
