"""Load-generator throughput: the simulated nodes in subprocesses, the generator here.

Rate steps (default 100, 200, 500, 1000 calls/s), each held for a few seconds
with short holding times, calls looping node -> simulated DUT -> node. The
simulated cluster is one simulator process per node (``--nodes``, default 2),
each a node and its DUT, as a cluster of FreeSWITCH machines is: one process
alone saturates near 1000 calls/s. Per step it prints: achieved rate and its
error against the target, generator CPU time per call (this process's CPU
time / calls attempted), p99 lateness of arrivals against their schedule, the
generator's memory (RSS) at the end of the step and how much it grew during
the step, and the calls up at the end of the step. Memory is flat in time and
follows the calls up (each session keeps its events): the last lines give the
memory above the idle generator's per call up, step by step. Beside the
generator's CPU per call it prints the floor under it: the CPU per call of a
bare reader, in a process of its own, that subscribes to the same events on
the same nodes and drops their bytes unread (no parsing, no tracking), and
the generator's wake-ups a call (the times it slept and was woken: voluntary
context switches / calls).

The steps run once per tick (default 0, 5, 10, 20 and 50 ms), each in a process of
its own: 0 does each piece of work as soon as it is due; a tick of T does it in
passes every T (``Originator(tick=...)`` for arrivals and hang-ups, the
clients' ``read_interval`` for events and replies), trading up to T of
lateness for one wake-up per pass. On this machine class waking up costs far
more than the instructions a pass runs: before the steps, the benchmark times
an event loop that only sleeps 2 ms and wakes, and prints the CPU one such empty
wake-up costs (tens of microseconds here, against ~0.2 ms of work a call). With
a tick of 0 the generator wakes for nearly every frame a node sends, five to
eight times a call up to 500 calls/s, so that alone costs more than the
target (at 1000 calls/s frames come close enough together to share wake-ups);
the CPU per call falls as each pass handles more calls. The last line names
the ticks at which every target held.

Targets on this machine class: >= 500 calls/s sustained with rate error <= 1%
and <= 300 microseconds of generator CPU per call; memory flat across steps.
The simulators share the machine's cores with the generator ("sims CPU" is
their sum, 100% = one core): when they cannot keep up, calls fail or block,
or queue in them, and the figures say so.

    python benchmarks/loadgen.py [--steps 100,200,500,1000] [--seconds 5] [--hold 0.5]
        [--ticks 0,5,10,20,50] [--nodes 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from typing import cast

import psutil

from switchy import Session, event_callback
from switchy.loadgen import Originator
from switchy.loadgen.run import SimulatorProcess, simulator_sps, sip_address
from switchy.pool import Pool

TARGET_RATE = 500  # calls/s, sustained with:
TARGET_RATE_ERROR = 0.01
TARGET_CPU_PER_CALL = 300e-6  # seconds


class Answer:
    """The called leg answers as soon as it parks."""

    @event_callback("CHANNEL_PARK")
    def on_park(self, session: Session) -> None:
        if session.is_inbound():
            session.answer()


class Discard(asyncio.BufferedProtocol):
    """Logs in, subscribes, then drops every byte: the least any ESL reader does."""

    def __init__(self, login: bytes) -> None:
        self.login = login
        self.buffer = bytearray(2**16)
        self.transport: asyncio.WriteTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.WriteTransport, transport)

    def get_buffer(self, sizehint: int) -> bytearray:
        return self.buffer

    def buffer_updated(self, nbytes: int) -> None:
        if self.login and self.transport:  # the greeting came: answer it and subscribe
            self.transport.write(self.login)
            self.login = b""


async def bare_reader(contacts: list[str], events: str) -> None:
    """Run :class:`Discard` on each ``host:port`` until standard input closes."""
    loop = asyncio.get_running_loop()
    login = f"auth {os.environ['SWITCHY_PASSWORD']}\n\nevent plain {events}\n\n".encode()
    for contact in contacts:
        host, port = contact.rsplit(":", 1)
        await loop.create_connection(lambda: Discard(login), host, int(port))
    print("ready", flush=True)
    await loop.run_in_executor(None, sys.stdin.read)


def start_bare_reader(
    contacts: list[tuple[str, int]], events: list[str], password: str
) -> subprocess.Popen[str]:
    """:func:`bare_reader` in a process of its own; close its stdin to stop it."""
    nodes = ",".join(f"{host}:{port}" for host, port in contacts)
    process = subprocess.Popen(
        [sys.executable, __file__, "--bare-reader", nodes, "--events", " ".join(events)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "SWITCHY_PASSWORD": password},
    )
    assert process.stdout is not None
    if process.stdout.readline().strip() != "ready":
        raise RuntimeError("the bare reader did not start")
    return process


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


async def empty_wakeup_cpu(sleep: float = 0.002, wakeups: int = 500) -> float:
    """The CPU time one wake-up of an event loop costs when it does nothing else."""
    start = time.process_time()
    for _ in range(wakeups):
        await asyncio.sleep(sleep)
    return (time.process_time() - start) / wakeups


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) > 1 else float("nan")


async def run(steps: list[int], seconds: float, hold: float, tick: float, nodes: int) -> None:
    # One simulator process per node, each with its own DUT, as a cluster of
    # FreeSWITCH machines would be: one process alone saturates near 1000 calls/s.
    sps = simulator_sps(max(steps) / nodes)
    simulators = await asyncio.gather(
        *(SimulatorProcess(nodes=1, sessions_per_second=sps).start() for _ in range(nodes))
    )
    contacts = [simulator.esl[0] for simulator in simulators]
    pool = Pool.from_contacts(contacts, read_interval=tick)
    await pool.connect()
    addresses = {client: await sip_address(client, "external") for client in pool}
    proxies = dict(zip(pool, (simulator.dut_address for simulator in simulators), strict=True))
    generator = Originator(
        pool,
        rate=steps[0],
        limit=max(steps) * 4,
        duration=hold,
        node_choice="least-loaded",
        tick=tick,
    )
    generator.set_orig_cmd(
        lambda client: {"dest_url": f"bench@{addresses[client]}", "proxy": proxies[client]},
        timeout=30,
    )
    await generator.load_app(Answer)
    events = next(iter(pool)).events.subscriptions
    floor = start_bare_reader(contacts, events, simulators[0].password)
    floor_process = psutil.Process(floor.pid)
    me = psutil.Process()
    sims = [psutil.Process(simulator.pid) for simulator in simulators if simulator.pid]
    print(
        f"tick {tick * 1e3:g} ms; {nodes} simulator processes, a node and a DUT each "
        f"(pids {', '.join(str(sim.pid) for sim in sims)}); hold {hold} s; "
        f"an empty wake-up costs {await empty_wakeup_cpu() * 1e6:.0f} us of CPU"
    )
    print(
        f"{'target':>7} {'achieved':>9} {'error':>7} {'CPU/call':>9} {'floor':>7} {'wakes':>6} "
        f"{'p99 late':>9} {'RSS':>8} {'grew':>6} {'calls up':>9} {'sims CPU':>8} {'answered':>9} "
        f"{'failed':>7} {'blocked':>8}"
    )
    target_line = ""
    idle_rss = me.memory_info().rss
    per_call_up = []  # KB of memory above idle per call up, at the end of each step
    await generator.start()
    try:
        for rate in steps:
            generator.rate = rate
            generator.duration = hold
            await asyncio.sleep(1.0)  # settle at the new rate before measuring
            before = (generator.attempted, generator.answered, generator.failed, generator.blocked)
            generator.lateness.clear()
            cpu, wall = time.process_time(), time.perf_counter()
            sim_cpu = sum(map(cpu_seconds, sims))
            floor_cpu = cpu_seconds(floor_process)
            sleeps = me.num_ctx_switches().voluntary
            start_rss = me.memory_info().rss
            await asyncio.sleep(seconds)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            rss = me.memory_info().rss
            per_call_up.append((rss - idle_rss) / max(generator.active_calls, 1) / 1024)
            sim_cpu = sum(map(cpu_seconds, sims)) - sim_cpu
            floor_cpu = cpu_seconds(floor_process) - floor_cpu
            sleeps = me.num_ctx_switches().voluntary - sleeps
            attempted = generator.attempted - before[0]
            achieved = attempted / wall
            if rate == TARGET_RATE:
                target_line = verdict(achieved, cpu / max(attempted, 1))
            print(
                f"{rate:>7} {achieved:>9.1f} {(achieved - rate) / rate:>+7.1%} "
                f"{cpu / max(attempted, 1) * 1e6:>7.0f}us "
                f"{floor_cpu / max(attempted, 1) * 1e6:>5.0f}us "
                f"{sleeps / max(attempted, 1):>6.1f} "
                f"{p99(list(generator.lateness)) * 1e3:>7.1f}ms "
                f"{rss / 2**20:>6.0f}MB {(rss - start_rss) / 2**20:>+4.0f}MB "
                f"{generator.active_calls:>9} "
                f"{sim_cpu / wall:>7.0%} "
                f"{generator.answered - before[1]:>9} {generator.failed - before[2]:>7} "
                f"{generator.blocked - before[3]:>8}"
            )
    finally:
        # Let the calls up end by themselves: a hupall would race the app's
        # answers to the last calls and make their (harmless) failures noise.
        generator.stop()
        await generator.waitwhile(timeout=60)
        await pool.disconnect()
        await asyncio.gather(*(simulator.stop() for simulator in simulators))
        assert floor.stdin is not None
        floor.stdin.close()
        floor.wait()
    if generator.failures:
        print("failures:", dict(generator.failures.most_common(5)))
    print(
        "memory above the idle generator's, per call up at the end of each step: "
        + ", ".join(f"{kb:.0f}" for kb in per_call_up)
        + " KB"
    )
    if target_line:
        print(target_line)


def run_child(command: list[str]) -> list[str]:
    """Run ``command``, passing its output through line by line; return the lines."""
    lines = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as child:
        assert child.stdout is not None
        for line in child.stdout:
            print(line, end="", flush=True)
            lines.append(line)
    if child.returncode:
        raise subprocess.CalledProcessError(child.returncode, command)
    return lines


VERDICT_START = f"at {TARGET_RATE} calls/s:"


def verdict(achieved: float, cpu_per_call: float) -> str:
    """The target step's figures against the targets, one line."""
    error = abs(achieved - TARGET_RATE) / TARGET_RATE
    rate_ok = "ok" if error <= TARGET_RATE_ERROR else "MISSED"
    cpu_ok = "ok" if cpu_per_call <= TARGET_CPU_PER_CALL else "ABOVE TARGET"
    return (
        f"{VERDICT_START} rate error {error:.1%} (target <= {TARGET_RATE_ERROR:.0%}: "
        f"{rate_ok}); CPU {cpu_per_call * 1e6:.0f} us/call "
        f"(target <= {TARGET_CPU_PER_CALL * 1e6:.0f}: {cpu_ok})"
    )


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    options.add_argument("--steps", default="100,200,500,1000")
    options.add_argument("--seconds", type=float, default=5.0)
    options.add_argument("--hold", type=float, default=0.5)
    options.add_argument(
        "--nodes", type=int, default=2, help="simulator processes, a node each (default 2)"
    )
    options.add_argument(
        "--ticks",
        default="0,5,10,20,50",
        help="milliseconds, comma-separated (default 0,5,10,20,50)",
    )
    options.add_argument("--bare-reader", metavar="HOST:PORT,...", help=argparse.SUPPRESS)
    options.add_argument("--events", help=argparse.SUPPRESS)
    args = options.parse_args()
    if args.bare_reader:  # the floor's own process, started by start_bare_reader()
        asyncio.run(bare_reader(args.bare_reader.split(","), args.events))
        return
    ticks = args.ticks.split(",")
    if len(ticks) > 1:  # each in a fresh process, so none inherits another's heap
        same = [
            *("--steps", args.steps, "--seconds", str(args.seconds)),
            *("--hold", str(args.hold), "--nodes", str(args.nodes)),
        ]
        met = []
        for tick in ticks:
            for line in run_child([sys.executable, __file__, *same, "--ticks", tick]):
                if line.startswith(VERDICT_START) and "MISSED" not in line and "ABOVE" not in line:
                    met.append(tick)
        if str(TARGET_RATE) in args.steps.split(","):
            print(f"every target held at ticks (ms): {', '.join(met) or 'none'}")
        return
    steps = [int(step) for step in args.steps.split(",")]
    print(f"generator pid {os.getpid()}, {os.cpu_count()} CPUs")
    asyncio.run(run(steps, args.seconds, args.hold, float(ticks[0]) / 1e3, args.nodes))


if __name__ == "__main__":
    main()
