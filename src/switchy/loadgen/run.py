"""A whole load test, as ``switchy run`` drives it: nodes, originator, results, the end.

:func:`run_load_test` connects to the nodes (or starts a local simulated
cluster with a simulated device under test when none is given), points every
node at its own SIP address through the proxy (the DUT), offers calls, writes
the results directory as it goes (CDRs, periodic stats, host stats), and on
completion or interruption hangs up what is left and closes the results.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from switchy.client import Client
from switchy.errors import APIError, ConfigurationError, SwitchyError
from switchy.loadgen import originator_pool
from switchy.loadgen.originator import Originator
from switchy.measure.cdr import CallRecord
from switchy.measure.stats import Gauges, StatsRecorder
from switchy.measure.store import CDRStore
from switchy.measure.sysstats import SysStats
from switchy.pool import Pool

__all__ = ["AppChoice", "RunOutcome", "RunSettings", "SimulatorProcess", "run_load_test"]

log = logging.getLogger("switchy.run")

_URL_LINE = re.compile(r"^URL\s+sip:[^@\s]*@(\S+?)(?:;.*)?$", re.MULTILINE)


@dataclass
class AppChoice:
    """An app of the mix: the app itself, its id, weight and load-time keywords."""

    app: object
    app_id: str
    weight: int = 1
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunSettings:
    """Everything a load test needs; see ``switchy run --help``."""

    contacts: Sequence[tuple[str, int]] = ()
    password: str = field(default="ClueCon", repr=False)
    proxy: str | None = None
    profile: str = "external"
    user: str = "switchy"
    rate: float = 30.0
    limit: int = 100
    max_offered: int | None = None
    duration: float | None = None
    arrivals: str = "fixed"
    holding: str = "fixed"
    node_choice: str = "round-robin"
    on_node_loss: str = "continue"
    apps: Sequence[AppChoice] = ()
    results: Path = Path("results")
    seed: int | None = None
    stats_interval: float = 5.0
    tick: float = 0.0
    call_timeout: int = 60

    def describe(self) -> dict[str, Any]:
        """The settings as written to run.json (never the password)."""
        described = asdict(self)
        described.pop("password")
        described["contacts"] = [f"{host}:{port}" for host, port in self.contacts]
        described["apps"] = [
            {"app_id": choice.app_id, "weight": choice.weight, "kwargs": choice.kwargs}
            for choice in self.apps
        ]
        described["results"] = str(self.results)
        return described


@dataclass
class RunOutcome:
    """How a load test ended."""

    originator: Originator
    status: str  # finished | interrupted | failed
    results: Path
    wall_seconds: float
    error: str | None = None


class SimulatorProcess:
    """``python -m switchy.sim`` in a subprocess: nodes, their SIP profiles, and a DUT."""

    def __init__(
        self, nodes: int = 2, password: str = "ClueCon", sessions_per_second: int = 1000
    ) -> None:
        self.nodes = nodes
        self.password = password
        self.sessions_per_second = sessions_per_second
        self.process: asyncio.subprocess.Process | None = None
        self.esl: list[tuple[str, int]] = []
        self.dut_address: str | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    async def start(self, timeout: float = 30.0) -> SimulatorProcess:
        # Its stdin is a pipe only we hold: if we die, even by SIGKILL, it sees the
        # end of input and stops instead of living on as an orphan. In a session
        # of its own, a terminal's Ctrl-C reaches only us: we hang the calls up,
        # then stop it.
        self.process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "switchy.sim", "--nodes", str(self.nodes), "--dut"),
            *("--sps", str(self.sessions_per_second), "--exit-with-stdin"),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "SWITCHY_PASSWORD": self.password},  # not in `ps` output
            start_new_session=True,
        )
        try:
            await asyncio.wait_for(self._read_addresses(), timeout)
        except BaseException:
            await self.stop()
            raise
        return self

    async def _read_addresses(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        while len(self.esl) < self.nodes or self.dut_address is None:
            line = (await self.process.stdout.readline()).decode()
            if not line:
                raise ConfigurationError("the simulator exited before it was ready")
            if match := re.match(r"node \d+: ESL (\S+):(\d+) SIP (\S+)", line):
                self.esl.append((match[1], int(match[2])))
            elif match := re.match(r"dut: SIP (\S+)", line):
                self.dut_address = match[1]

    async def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except asyncio.TimeoutError:
            process.kill()
            await process.wait()


def simulator_sps(rate: float) -> int:
    """The ``fsctl sps`` a simulator node needs for a test at ``rate`` calls/s.

    A simulated node calls itself through the DUT, so each call opens two
    sessions on one node; should a node be lost, the survivor takes every call.
    A quarter more leaves room for Poisson bursts.
    """
    return max(1000, math.ceil(2.5 * rate))


async def sip_address(client: Client, profile: str) -> str:
    """``ip:port`` of a node's SIP profile, from ``sofia status profile``."""
    try:
        text = await client.api(f"sofia status profile {profile}")
    except APIError as exc:
        raise ConfigurationError(
            f"{client.address}: cannot read SIP profile {profile!r}: {exc}"
        ) from None
    match = _URL_LINE.search(text)
    if match is None:
        raise ConfigurationError(f"{client.address}: no SIP profile {profile!r} ({text.strip()})")
    return match[1]


async def run_load_test(
    settings: RunSettings,
    interrupted: asyncio.Event,
    on_progress: Callable[[Originator], None] | None = None,
    progress_interval: float = 0.5,
) -> RunOutcome:
    """Run a load test until it completes or ``interrupted`` is set.

    Raises ConnectError / AuthenticationError / ConfigurationError before any
    call is offered when the nodes cannot be used as given.
    """
    if not settings.apps:
        raise ConfigurationError("no app chosen")
    simulator: SimulatorProcess | None = None
    contacts = list(settings.contacts)
    if not contacts:
        simulator = await SimulatorProcess(
            password=settings.password, sessions_per_second=simulator_sps(settings.rate)
        ).start()
        contacts = simulator.esl
    pool = originator_pool(contacts, settings.password, settings.tick)
    try:
        await pool.connect()
        return await _run(settings, pool, simulator, interrupted, on_progress, progress_interval)
    finally:
        await pool.disconnect()
        if simulator is not None:
            await simulator.stop()


async def _run(
    settings: RunSettings,
    pool: Pool,
    simulator: SimulatorProcess | None,
    interrupted: asyncio.Event,
    on_progress: Callable[[Originator], None] | None,
    progress_interval: float,
) -> RunOutcome:
    proxy = settings.proxy or (simulator.dut_address if simulator else None)
    addresses = {client: await sip_address(client, settings.profile) for client in pool}
    completed: list[CallRecord] = []
    store = CDRStore(settings.results, {**settings.describe(), "proxy": proxy})
    originator = Originator(
        pool,
        rate=settings.rate,
        limit=settings.limit,
        duration=settings.duration,
        max_offered=settings.max_offered,
        arrivals=settings.arrivals,
        holding=settings.holding,
        node_choice=settings.node_choice,
        on_node_loss=settings.on_node_loss,
        tick=settings.tick,
        seed=settings.seed,
        on_record=[completed.append],
        store=store,
    )
    originator.set_orig_cmd(
        lambda client: {"dest_url": f"{settings.user}@{addresses[client]}"},
        profile=settings.profile,
        proxy=proxy,
        timeout=settings.call_timeout,
    )
    for choice in settings.apps:
        await originator.load_app(choice.app, choice.app_id, choice.weight, **choice.kwargs)
    stats = StatsRecorder(settings.results, settings.stats_interval)
    sysstats = SysStats(
        settings.results, pids=[simulator.pid] if simulator and simulator.pid else ()
    )
    loop = asyncio.get_running_loop()
    started = loop.time()
    status, error = "finished", None
    await store.start()
    sysstats.start()
    try:
        await originator.start()
        next_stats = started + settings.stats_interval
        while originator.state == "ORIGINATING" or originator.active_calls:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(interrupted.wait(), progress_interval)
            now = loop.time()
            if interrupted.is_set():
                status = "interrupted"
                break
            if originator.failure is not None:
                status, error = "failed", originator.failure
                break
            if on_progress is not None:
                on_progress(originator)
            if now >= next_stats:
                next_stats += settings.stats_interval
                stats.record(time.time(), _gauges(originator, now - started), completed)
                completed.clear()
    except (SwitchyError, OSError) as exc:
        status, error = "failed", str(exc)
        log.error("the run failed: %s", exc)
    finally:
        if status != "finished":
            with contextlib.suppress(SwitchyError, OSError, TimeoutError):
                await originator.shutdown(timeout=30)
        originator.stop()
        stats.record(time.time(), _gauges(originator, loop.time() - started), completed)
        await sysstats.stop()
        await store.close(status, _summary(originator, error))
    return RunOutcome(originator, status, settings.results, loop.time() - started, error)


def _gauges(originator: Originator, elapsed: float) -> Gauges:
    return Gauges(
        elapsed=elapsed,
        target_rate=originator.rate,
        offered=originator.offered,
        attempted=originator.attempted,
        blocked=originator.blocked,
        active_calls=originator.active_calls,
    )


def _summary(originator: Originator, error: str | None) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "offered": originator.offered,
        "attempted": originator.attempted,
        "answered": originator.answered,
        "failed": originator.failed,
        "blocked": originator.blocked,
        "failures": dict(originator.failures),
        "peak_active_calls": originator.peak_active_calls,
        "duration": originator.duration,
        "node_losses": [
            {
                "node": loss.node,
                "lost_at": loss.lost_at,
                "back_at": loss.back_at,
                "seconds_down": loss.seconds_down,
                "calls_lost": loss.calls_lost,
                "reason": loss.reason,
            }
            for loss in originator.node_losses
        ],
    }
    if error:
        summary["error"] = error
    return summary
