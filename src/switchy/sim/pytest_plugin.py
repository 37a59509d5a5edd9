"""pytest plugin: a FreeSWITCH to test against, simulated unless you bring your own.

Installed with switchy (entry point ``pytest11``). Fixtures:

``fs``
    A :class:`FreeSwitchTarget`: where to reach a FreeSWITCH's event socket and
    its ``external`` SIP profile. By default a fresh simulated node runs in a
    background thread for the test; with ``pytest --fshost HOST[:PORT]
    [--fspassword PW] [--fssip HOST:PORT]`` (or ``SWITCHY_FS_HOST``,
    ``SWITCHY_FS_PASSWORD``, ``SWITCHY_FS_SIP``) the same tests run against a
    real server, whose ``external`` profile must park inbound calls (see
    ``conf/`` in switchy's repository).

``fs_simulator``
    A factory: ``fs_simulator(nodes=2, answer_delay=0.1)`` starts a simulated
    cluster with those knobs and returns a :class:`SimulatorHandle`. Tests that
    use it need the simulator and are skipped under ``--fshost``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from switchy.background import LoopThread

if TYPE_CHECKING:
    from switchy.sim.cluster import Cluster

T = TypeVar("T")

DEFAULT_ESL_PORT = 8021
DEFAULT_SIP_PORT = 5080


@dataclass(frozen=True)
class FreeSwitchTarget:
    """How to reach one FreeSWITCH under test."""

    host: str
    port: int
    password: str
    sip_address: str  # "ip:port" of its ``external`` SIP profile
    simulated: bool

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


class SimulatorHandle:
    """A simulated cluster running in a background thread.

    ``targets`` lists its nodes as :class:`FreeSwitchTarget`. The cluster's
    objects live in the background loop: act on them through :meth:`call`.
    """

    def __init__(self, nodes: int = 1, password: str = "ClueCon", **knobs: Any) -> None:
        self._thread = LoopThread("switchy-sim")
        self._nodes = nodes
        self._password = password
        self._knobs = knobs
        self.cluster: Cluster | None = None

    def start(self) -> SimulatorHandle:
        from switchy.sim.cluster import Cluster

        self._thread.start()

        async def start_cluster() -> Cluster:
            cluster = Cluster(self._nodes, password=self._password, **self._knobs)
            await cluster.start()
            return cluster

        try:
            self.cluster = self._thread.run(start_cluster(), timeout=30)
        except BaseException:
            self._thread.stop()
            raise
        return self

    @property
    def targets(self) -> list[FreeSwitchTarget]:
        assert self.cluster is not None, "simulator not started"
        return [
            FreeSwitchTarget(
                host=member.esl_host,
                port=member.esl_port,
                password=self._password,
                sip_address=member.sip_address,
                simulated=True,
            )
            for member in self.cluster.nodes
        ]

    def call(self, action: Callable[[Cluster], Coroutine[Any, Any, T]], timeout: float = 30) -> T:
        """Run ``await action(cluster)`` in the simulator's loop; return its result."""
        assert self.cluster is not None, "simulator not started"
        return self._thread.run(action(self.cluster), timeout)

    def stop(self) -> None:
        if self.cluster is not None:
            cluster, self.cluster = self.cluster, None
            self._thread.run(cluster.close(), timeout=30)
        self._thread.stop()

    def __enter__(self) -> SimulatorHandle:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("switchy", "FreeSWITCH under test")
    group.addoption(
        "--fshost",
        default=os.environ.get("SWITCHY_FS_HOST"),
        metavar="HOST[:PORT]",
        help="run against a real FreeSWITCH's event socket instead of the simulator",
    )
    group.addoption(
        "--fspassword",
        default=os.environ.get("SWITCHY_FS_PASSWORD", "ClueCon"),
        metavar="PASSWORD",
        help="event socket password of --fshost (default ClueCon)",
    )
    group.addoption(
        "--fssip",
        default=os.environ.get("SWITCHY_FS_SIP"),
        metavar="HOST:PORT",
        help=f"SIP address of --fshost's 'external' profile (default HOST:{DEFAULT_SIP_PORT})",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "simulator_only: the test needs the simulator; skipped with --fshost"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--fshost"):
        return
    skip = pytest.mark.skip(reason="needs the simulator (--fshost given)")
    for item in items:
        if "simulator_only" in item.keywords or "fs_simulator" in getattr(item, "fixturenames", ()):
            item.add_marker(skip)


def real_target(config: pytest.Config) -> FreeSwitchTarget | None:
    """The ``--fshost`` server, or None when testing against the simulator."""
    option = config.getoption("--fshost")
    if not option:
        return None
    host, _, port = str(option).partition(":")
    sip = config.getoption("--fssip") or f"{host}:{DEFAULT_SIP_PORT}"
    return FreeSwitchTarget(
        host=host,
        port=int(port) if port else DEFAULT_ESL_PORT,
        password=str(config.getoption("--fspassword")),
        sip_address=str(sip),
        simulated=False,
    )


@pytest.fixture
def fs(request: pytest.FixtureRequest) -> Iterator[FreeSwitchTarget]:
    """The FreeSWITCH under test: ``--fshost`` or a fresh simulated node."""
    target = real_target(request.config)
    if target is not None:
        yield target
        return
    with SimulatorHandle() as simulator:
        yield simulator.targets[0]


@pytest.fixture
def fs_simulator() -> Iterator[Callable[..., SimulatorHandle]]:
    """Factory of simulated clusters: ``fs_simulator(nodes=1, **knobs)``."""
    started: list[SimulatorHandle] = []

    def start(nodes: int = 1, **knobs: Any) -> SimulatorHandle:
        handle = SimulatorHandle(nodes, **knobs).start()
        started.append(handle)
        return handle

    yield start
    for handle in started:
        handle.stop()
