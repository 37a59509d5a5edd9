"""Speed of the simulator under call load: two nodes and a DUT in their own process.

For each rate, starts ``python -m switchy.sim --nodes 2 --dut`` afresh, then
from this process places calls at that rate for ``--duration`` seconds with
plain :mod:`switchy.esl.connection` commands: ``bgapi originate`` from node 1
to node 2 through the DUT (``fs_path``); on node 2's CHANNEL_PARK,
``uuid_answer``; ``--hold`` seconds after the originate succeeded,
``uuid_kill`` of the caller's leg (the BYE ends the far leg). Both
connections subscribe to the narrow set of events a load generator needs.

Prints, per rate: calls set up per second (answered calls over the time from
the first originate to the last answer), calls failed, the simulator
process's CPU time per call and its CPU load, this process's CPU load (the
driver must not be the bottleneck), originate latency (bgapi sent to
BACKGROUND_JOB received) and event latency (an event's Event-Date-Timestamp,
stamped by the simulator, to its arrival here) as median / 99th percentile.

    python benchmarks/sim.py [--rates 100,200,500,1000] [--duration 10] [--hold 1]
                             [--profile sim.prof] [--wrap "py-spy record -o sim.svg --"]

``--profile`` runs the simulator under cProfile for the last rate and writes
its statistics there (read them with ``python -m pstats``); ``--wrap`` runs it
under another command, such as a sampling profiler, for the last rate.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shlex
import signal
import statistics
import sys
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import psutil

from switchy.errors import APIError, SwitchyError
from switchy.esl.commands import originate
from switchy.esl.connection import Connection, connect
from switchy.esl.protocol import Event

#: What a load generator subscribes to (its tracker, its CDRs and an app that
#: answers on CHANNEL_PARK).
NARROW_EVENTS = (
    "CHANNEL_CREATE",
    "CHANNEL_ANSWER",
    "CHANNEL_PARK",
    "CHANNEL_HANGUP",
    "CHANNEL_UUID",
    "CHANNEL_PROGRESS",
    "CHANNEL_PROGRESS_MEDIA",
    "BACKGROUND_JOB",
)
START_TIMEOUT = 10.0
#: How long calls may take to end after the last one was placed (beyond the hold).
DRAIN_TIMEOUT = 60.0


@dataclass
class Simulator:
    """The simulator process and its addresses."""

    process: asyncio.subprocess.Process
    esl: list[tuple[str, int]]
    sip: list[str]
    dut: str


async def start_simulator(profile: str | None, wrap: list[str]) -> Simulator:
    """``python -m switchy.sim --nodes 2 --dut``, under cProfile when ``profile`` is a path,
    under the ``wrap`` command if any."""
    runner = ["-m", "cProfile", "-o", profile] if profile else []
    process = await asyncio.create_subprocess_exec(
        *wrap,
        sys.executable,
        *runner,
        "-m",
        "switchy.sim",
        "--nodes",
        "2",
        "--dut",
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    esl: list[tuple[str, int]] = []
    sip: list[str] = []
    while True:
        line = await asyncio.wait_for(process.stdout.readline(), START_TIMEOUT)
        if not line:
            raise RuntimeError("the simulator exited")
        words = line.decode().split()
        if words[:1] == ["node"]:  # node N: ESL host:port SIP ip:port
            host, port = words[3].split(":")
            esl.append((host, int(port)))
            sip.append(words[5])
        elif words[:1] == ["dut:"]:  # the last line
            return Simulator(process, esl, sip, words[2])


async def stop_simulator(simulator: Simulator) -> None:
    simulator.process.send_signal(signal.SIGINT)
    try:
        await asyncio.wait_for(simulator.process.wait(), 30)
    except asyncio.TimeoutError:
        simulator.process.kill()
        await simulator.process.wait()


@dataclass
class Run:
    """What one rate measured."""

    rate: int
    answered: int = 0
    failed: int = 0
    ended: int = 0
    first_offer: float = 0.0
    last_answer: float = 0.0
    setup_latencies: list[float] = field(default_factory=list)
    event_latencies: list[float] = field(default_factory=list)
    sim_cpu: float = 0.0
    driver_cpu: float = 0.0
    wall: float = 0.0

    @property
    def setup_rate(self) -> float:
        span = self.last_answer - self.first_offer
        return self.answered / span if span > 0 else 0.0


class Driver:
    """Places calls on ``caller`` through the DUT to ``callee``; answers them; ends them."""

    def __init__(
        self,
        caller: Connection,
        callee: Connection,
        destination: str,
        dut: str,
        hold: float,
        run: Run,
    ) -> None:
        self.caller = caller
        self.callee = callee
        self.destination = destination
        self.dut = dut
        self.hold = hold
        self.run = run
        self.all_ended = asyncio.Event()
        self.expected = 0
        self._tasks: set[asyncio.Task[None]] = set()
        caller.on_event(self._caller_event)
        callee.on_event(self._callee_event)

    def _latency(self, event: Event) -> None:
        stamp = event["Event-Date-Timestamp"]
        if stamp:
            self.run.event_latencies.append(time.time() - int(stamp) / 1e6)

    def _caller_event(self, event: Event) -> None:
        self._latency(event)
        if event.name == "CHANNEL_HANGUP":
            self.run.ended += 1
            self._check_done()

    def _callee_event(self, event: Event) -> None:
        self._latency(event)
        if event.name == "CHANNEL_PARK":
            self._spawn(self._command(self.callee, f"uuid_answer {event.uuid}"))

    def expect(self, calls: int) -> None:
        """Set :attr:`all_ended` once ``calls`` calls ended or failed."""
        self.expected = calls
        self._check_done()

    def _check_done(self) -> None:
        if self.expected and self.run.ended + self.run.failed >= self.expected:
            self.all_ended.set()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _command(self, connection: Connection, command: str) -> None:
        with contextlib.suppress(APIError):  # the call may be gone already
            await connection.api(command)

    def place(self, index: int) -> None:
        self._spawn(self._place(index))

    async def _place(self, index: int) -> None:
        uuid = f"bench-{self.run.rate}-{index}"
        sent = time.perf_counter()
        command = originate(self.destination, proxy=self.dut, uuid=uuid, timeout=30)
        try:
            await (await self.caller.bgapi(command))
        except SwitchyError:
            self.run.failed += 1
            self._check_done()
            return
        now = time.perf_counter()
        self.run.setup_latencies.append(now - sent)
        self.run.answered += 1
        self.run.last_answer = now
        await asyncio.sleep(self.hold)  # the call's holding time
        await self._command(self.caller, f"uuid_kill {uuid}")


def _simulator_process(simulator: Simulator) -> psutil.Process:
    """The Python process running the simulator (a child of a wrapping command)."""
    process = psutil.Process(simulator.process.pid)
    # The innermost process whose command runs the simulator (a wrapper names it too).
    for candidate in (*reversed(process.children(recursive=True)), process):
        if "switchy.sim" in candidate.cmdline():
            return candidate
    return process


async def measure(
    rate: int, duration: float, hold: float, profile: str | None, wrap: list[str]
) -> Run:
    simulator = await start_simulator(profile, wrap)
    run = Run(rate)
    try:
        caller = await connect(*simulator.esl[0], command_timeout=120)
        callee = await connect(*simulator.esl[1], command_timeout=120)
        for connection in (caller, callee):
            # The default of 1,000 sessions per second would refuse calls at the top rate.
            await connection.api("fsctl sps 100000")
            await connection.subscribe(NARROW_EVENTS)
        destination = f"1000@{simulator.sip[1]}"
        driver = Driver(caller, callee, destination, simulator.dut, hold, run)
        sim_process = _simulator_process(simulator)
        sim_before = sim_process.cpu_times()
        driver_before = psutil.Process().cpu_times()
        loop = asyncio.get_running_loop()
        start = loop.time()
        run.first_offer = time.perf_counter()
        total = int(rate * duration)
        for index in range(total):
            delay = start + index / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)  # pacing the offered load
            driver.place(index)
        driver.expect(total)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(driver.all_ended.wait(), hold + DRAIN_TIMEOUT)
        run.wall = loop.time() - start
        sim_after = sim_process.cpu_times()
        driver_after = psutil.Process().cpu_times()
        run.sim_cpu = (sim_after.user + sim_after.system) - (sim_before.user + sim_before.system)
        run.driver_cpu = (driver_after.user + driver_after.system) - (
            driver_before.user + driver_before.system
        )
        await caller.close()
        await callee.close()
    finally:
        await stop_simulator(simulator)
    return run


def _percentiles(values: list[float]) -> str:
    if len(values) < 2:
        return "-"
    cuts = statistics.quantiles(values, n=100)
    return f"{statistics.median(values) * 1000:7.1f} /{cuts[98] * 1000:7.1f}"


def report(run: Run) -> None:
    calls = max(run.answered, 1)
    print(
        f"{run.rate:>6} {run.setup_rate:>8.0f} {run.failed:>6} {run.ended:>7}"
        f" {run.sim_cpu / calls * 1e6:>9.0f} {run.sim_cpu / run.wall * 100:>6.0f}%"
        f" {run.driver_cpu / run.wall * 100:>6.0f}%"
        f" {_percentiles(run.setup_latencies):>16} {_percentiles(run.event_latencies):>16}",
        flush=True,
    )


async def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    options.add_argument("--rates", default="100,200,500,1000", help="calls per second")
    options.add_argument("--duration", type=float, default=10.0, help="seconds of offered load")
    options.add_argument("--hold", type=float, default=1.0, help="seconds each call lasts")
    options.add_argument("--profile", help="cProfile the simulator at the last rate into this")
    options.add_argument("--wrap", default="", help="run the simulator under this command")
    args = options.parse_args()
    rates = [int(rate) for rate in args.rates.split(",")]
    print(f"{args.duration:g} s of load per rate, {args.hold:g} s holds, through a simulated DUT")
    print(
        f"{'rate':>6} {'setup/s':>8} {'failed':>6} {'ended':>7} {'µs CPU/call':>9}"
        f" {'sim':>7} {'driver':>7} {'setup ms p50/p99':>16} {'event ms p50/p99':>16}"
    )
    for position, rate in enumerate(rates):
        last = position == len(rates) - 1
        profile = args.profile if last else None
        wrap = shlex.split(args.wrap) if last else []
        report(await measure(rate, args.duration, args.hold, profile, wrap))


if __name__ == "__main__":
    asyncio.run(main())
