"""Speed of switchy.traffic: Erlang B and its inverses, and arrival generation.

For N = 100, 1,000 and 10,000 channels at 1 % blocking (A chosen so that N is the
answer), prints microseconds per call of erlang_b(A, N), erlang_b_channels(A, 0.01)
and erlang_b_traffic(N, 0.01); then offsets per second produced by next_offset()
for each arrival process. Figures are the best of ``--repeat`` timed batches, since
the machine is shared and noisy.

    python benchmarks/traffic.py [--repeat R]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial

from switchy.traffic import (
    Arrivals,
    DeterministicArrivals,
    PoissonArrivals,
    erlang_b,
    erlang_b_channels,
    erlang_b_traffic,
)

BATCH_SECONDS = 0.2  # each timed batch runs about this long
OFFSETS = 200_000


def best_seconds_per_call(call: Callable[[], object], repeat: int) -> float:
    """Fastest mean time of one call over ``repeat`` batches of about BATCH_SECONDS."""
    start = time.perf_counter()
    call()
    once = max(time.perf_counter() - start, 1e-7)
    calls = max(1, int(BATCH_SECONDS / once))
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(calls):
            call()
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def best_offsets_per_second(build: Callable[[], Arrivals], repeat: int) -> float:
    best = 0.0
    for _ in range(repeat):
        arrivals = build()
        start = time.perf_counter()
        for _ in range(OFFSETS):
            arrivals.next_offset()
        best = max(best, OFFSETS / (time.perf_counter() - start))
    return best


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    options.add_argument("--repeat", type=int, default=3)
    args = options.parse_args()

    print(f"{'N':>7} {'A (erl)':>10} {'erlang_b':>12} {'_channels':>12} {'_traffic':>12}")
    for channels in (100, 1_000, 10_000):
        traffic = erlang_b_traffic(channels, 0.01)
        timings = [
            best_seconds_per_call(call, args.repeat) * 1e6
            for call in (
                partial(erlang_b, traffic, channels),
                partial(erlang_b_channels, traffic, 0.01),
                partial(erlang_b_traffic, channels, 0.01),
            )
        ]
        print(
            f"{channels:>7,} {traffic:>10.2f}"
            + "".join(f" {micros:>9,.1f} µs" for micros in timings)
        )

    print(f"\narrival generation ({OFFSETS:,} offsets per batch)")
    processes: list[tuple[str, Callable[[], Arrivals]]] = [
        ("deterministic", lambda: DeterministicArrivals(200)),
        ("poisson", lambda: PoissonArrivals(200, seed=1)),
        ("deterministic ramp", lambda: DeterministicArrivals(200, initial_rate=0, ramp_time=1e4)),
        ("poisson ramp", lambda: PoissonArrivals(200, initial_rate=0, ramp_time=1e4, seed=1)),
    ]
    for label, build in processes:
        print(f"{label:>20}: {best_offsets_per_second(build, args.repeat):>12,.0f} offsets/s")


if __name__ == "__main__":
    main()
