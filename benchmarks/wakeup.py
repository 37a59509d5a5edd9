"""What waking up costs: the same Tracker work a pass, back to back or with sleeps between.

Each pass hands one Tracker the events of N calls (fs-traces/03, both legs,
fresh uuids, built ahead), as a load generator's pass on a tick does. The
passes run back to back, then with a sleep of 1, 2, 3, 5, 20 and 50 ms after each,
then back to back again, and the median CPU time of a pass is printed for
each. No I/O is timed: what a sleep adds is what the machine charges for
coming back to work. On this project's VM, after 2 ms of sleep or more, ten
calls' work costs 1.3-1.8x its back-to-back CPU (it varies from run to run),
two calls' work 1.5-2.6x. That is why the load generator's CPU per call falls
as each of its passes holds more calls.

    python benchmarks/wakeup.py [--calls-per-pass 10] [--passes 100]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from tracking import batch_of_calls, new_tracker, recorded_call

GAPS = (0.0, 0.001, 0.002, 0.003, 0.005, 0.02, 0.05, 0.0)  # seconds of sleep after each pass


async def run(calls_per_pass: int, passes: int) -> None:
    """The passes, in an event loop (sessions belong to one) that does nothing else."""
    events, uuids = recorded_call()
    tracker = new_tracker()
    print(f"{passes} passes of {calls_per_pass} calls ({len(events)} events each)")
    for gap in GAPS:
        batches = [batch_of_calls(events, uuids, calls_per_pass) for _ in range(passes)]
        costs = []
        for batch in batches:
            start = time.thread_time()
            for event in batch:
                tracker.handle_event(event)
            costs.append(time.thread_time() - start)
            if gap:
                await asyncio.sleep(gap)
        median = statistics.median(costs[5:])  # the first passes warm up
        print(
            f"sleep {gap * 1e3:4g} ms between passes: {median * 1e6:6.0f} us a pass, "
            f"{median / calls_per_pass * 1e6:5.1f} us a call"
        )
    assert tracker.is_idle(), tracker


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    options.add_argument("--calls-per-pass", type=int, default=10)
    options.add_argument("--passes", type=int, default=100)
    args = options.parse_args()
    asyncio.run(run(args.calls_per_pass, args.passes))


if __name__ == "__main__":
    main()
