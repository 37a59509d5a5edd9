"""Several simulated FreeSWITCH nodes, each with its event socket and SIP profile.

>>> async with Cluster(2, answer_delay=0) as cluster:   # doctest: +SKIP
...     a, b = cluster.nodes
...     # connect to a.esl_host:a.esl_port, originate to sofia/external/1000@{b.sip_address}

Every node's ``external`` profile gets a real UDP port on ``host``, reserved
by binding a socket for the cluster's lifetime, so simulators sharing a host
never claim the same SIP address. The nodes of a cluster reach each other
through the cluster's own :class:`~switchy.sim.sofia.SipNetwork`: clusters may
run on different event loops (threads), so one cluster never calls into another.

With ``dut=True`` (or :class:`~switchy.sim.dut.DUTSettings`) the network also
holds a :class:`~switchy.sim.dut.SimulatedDUT`, a proxy that routes calls sent
through it (``;fs_path=sip:<cluster.dut_address>``) to their Request-URI.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

from switchy import ids
from switchy.sim.dut import DUTSettings, SimulatedDUT
from switchy.sim.events import NodeIdentity
from switchy.sim.server import ESLServer
from switchy.sim.sofia import SipNetwork
from switchy.sim.switch import Node


@dataclass
class ClusterNode:
    """One node of a cluster and where to reach it."""

    node: Node
    server: ESLServer
    sip_socket: socket.socket

    @property
    def esl_host(self) -> str:
        return self.server.host

    @property
    def esl_port(self) -> int:
        return self.server.port

    @property
    def sip_address(self) -> str:
        """``ip:port`` of the node's ``external`` profile."""
        return self.node.sip_profiles["external"].address


class Cluster:
    """An async context manager running ``nodes`` simulated FreeSWITCH nodes.

    ``port`` is the first ESL port (node *i* listens on ``port + i``); 0 lets
    the OS choose each one. ``dut`` adds a simulated device under test to the
    network (True for default settings). Other keyword arguments are
    :class:`Node` knobs (``answer_delay``, ``ringing``, ``reject``,
    ``max_sessions``...) given to every node.
    """

    def __init__(
        self,
        nodes: int = 1,
        *,
        password: str = "ClueCon",
        host: str = "127.0.0.1",
        port: int = 0,
        dut: bool | DUTSettings | None = None,
        **node_knobs: Any,
    ) -> None:
        if nodes < 1:
            raise ValueError(f"a cluster needs at least one node, got {nodes}")
        self.size = nodes
        self.password = password
        self.host = host
        self.port = port
        self.node_knobs = node_knobs
        self.network = SipNetwork()
        self.nodes: list[ClusterNode] = []
        self.dut: SimulatedDUT | None = None
        if dut:
            settings = dut if isinstance(dut, DUTSettings) else DUTSettings()
            self.dut = SimulatedDUT(self.network, host, settings)

    @property
    def dut_address(self) -> str | None:
        """``ip:port`` of the device under test, None without one."""
        return self.dut.address if self.dut is not None else None

    async def start(self) -> None:
        """Start every node and its event socket."""
        try:
            if self.dut is not None:
                self.dut.start()
            for index in range(self.size):
                self.nodes.append(await self._start_node(index))
        except BaseException:
            await self.close()
            raise

    async def _start_node(self, index: int) -> ClusterNode:
        sip_socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sip_socket.bind((self.host, 0))
            sip_port = sip_socket.getsockname()[1]
            node = Node(
                identity=NodeIdentity(
                    core_uuid=ids.new_uuid(), switchname=f"switchy-sim-{index + 1}"
                ),
                sip_ip=self.host,
                sip_port=sip_port,
                network=self.network,
                **self.node_knobs,
            )
            esl_port = self.port + index if self.port else 0
            server = ESLServer(node, self.host, esl_port, self.password)
            await server.start()
        except BaseException:
            sip_socket.close()
            raise
        node.start()
        return ClusterNode(node, server, sip_socket)

    def crash(self, index: int) -> None:
        """Node ``index`` dies at once: sockets close, channels vanish (see Node.crash)."""
        self.nodes[index].node.crash()

    async def shutdown(self, index: int) -> None:
        """Node ``index`` shuts down cleanly (``fsctl shutdown``)."""
        await self.nodes[index].node.shutdown()

    async def restart(self, index: int) -> None:
        """Node ``index`` comes back: same ESL port and SIP address, new Core-UUID."""
        await self.nodes[index].node.restart()

    async def close(self) -> None:
        """Stop every node: channels end, sockets close."""
        for member in self.nodes:
            await member.server.close()
            await member.node.close()
            member.sip_socket.close()
        self.nodes = []
        if self.dut is not None:
            self.dut.close()

    async def __aenter__(self) -> Cluster:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
