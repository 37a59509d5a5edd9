"""Load-generator throughput: the simulator in a subprocess, the generator here.

Rate steps (default 100, 200, 500, 1000 calls/s), each held for a few seconds
with short holding times, calls looping node -> simulated DUT -> node. Per
step it prints: achieved rate and its error against the target, generator CPU
time per call (this process's CPU time / calls attempted), p99 lateness of
arrivals against their schedule, and the generator's memory (RSS).

Targets on this machine class: >= 500 calls/s sustained with rate error <= 1%
and <= 300 microseconds of generator CPU per call; memory flat across steps.
The simulator runs on the other core: when it cannot keep up, calls fail or
block, and the figures say so.

    python benchmarks/loadgen.py [--steps 100,200,500,1000] [--seconds 5] [--hold 0.5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time

import psutil

from switchy import Session, event_callback
from switchy.loadgen import Originator
from switchy.loadgen.run import SimulatorProcess, simulator_sps, sip_address
from switchy.pool import Pool


class Answer:
    """The called leg answers as soon as it parks."""

    @event_callback("CHANNEL_PARK")
    def on_park(self, session: Session) -> None:
        if session.is_inbound():
            session.answer()


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) > 1 else float("nan")


async def run(steps: list[int], seconds: float, hold: float) -> None:
    simulator = await SimulatorProcess(
        nodes=2, sessions_per_second=simulator_sps(max(steps))
    ).start()
    pool = Pool.from_contacts(simulator.esl)
    await pool.connect()
    addresses = {client: await sip_address(client, "external") for client in pool}
    generator = Originator(
        pool, rate=steps[0], limit=max(steps) * 4, duration=hold, node_choice="least-loaded"
    )
    generator.set_orig_cmd(
        lambda client: {"dest_url": f"bench@{addresses[client]}"},
        proxy=simulator.dut_address,
        timeout=30,
    )
    await generator.load_app(Answer)
    me = psutil.Process()
    sim = psutil.Process(simulator.pid) if simulator.pid else None
    print(f"simulator pid {simulator.pid}, DUT {simulator.dut_address}; hold {hold} s")
    print(
        f"{'target':>7} {'achieved':>9} {'error':>7} {'CPU/call':>9} {'p99 late':>9} "
        f"{'RSS':>8} {'sim CPU':>8} {'answered':>9} {'failed':>7} {'blocked':>8}"
    )
    await generator.start()
    try:
        for rate in steps:
            generator.rate = rate
            generator.duration = hold
            await asyncio.sleep(1.0)  # settle at the new rate before measuring
            before = (generator.attempted, generator.answered, generator.failed, generator.blocked)
            generator.lateness.clear()
            cpu, wall = time.process_time(), time.perf_counter()
            sim_cpu = sum(sim.cpu_times()[:2]) if sim else 0.0
            await asyncio.sleep(seconds)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            sim_cpu = (sum(sim.cpu_times()[:2]) - sim_cpu) if sim else 0.0
            attempted = generator.attempted - before[0]
            achieved = attempted / wall
            print(
                f"{rate:>7} {achieved:>9.1f} {(achieved - rate) / rate:>+7.1%} "
                f"{cpu / max(attempted, 1) * 1e6:>7.0f}us "
                f"{p99(list(generator.lateness)) * 1e3:>7.1f}ms "
                f"{me.memory_info().rss / 2**20:>6.0f}MB {sim_cpu / wall:>7.0%} "
                f"{generator.answered - before[1]:>9} {generator.failed - before[2]:>7} "
                f"{generator.blocked - before[3]:>8}"
            )
    finally:
        # Let the calls up end by themselves: a hupall would race the app's
        # answers to the last calls and make their (harmless) failures noise.
        generator.stop()
        await generator.waitwhile(timeout=60)
        await pool.disconnect()
        await simulator.stop()
    if generator.failures:
        print("failures:", dict(generator.failures.most_common(5)))


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    options.add_argument("--steps", default="100,200,500,1000")
    options.add_argument("--seconds", type=float, default=5.0)
    options.add_argument("--hold", type=float, default=0.5)
    args = options.parse_args()
    steps = [int(step) for step in args.steps.split(",")]
    print(f"generator pid {os.getpid()}, {os.cpu_count()} CPUs")
    asyncio.run(run(steps, args.seconds, args.hold))


if __name__ == "__main__":
    main()
