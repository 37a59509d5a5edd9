"""Tracker throughput: recorded call events fed straight into one Tracker.

The two legs' events of fs-traces/03_call_lifecycle_plain, narrowed to what a
tracker with one no-op app subscribes to, are replayed as N calls (each with
fresh uuids) into a Tracker, in batches built ahead of the timed part. Prints
events/s, CPU microseconds per call, and memory before, during and after (it
must return to its start level once every call has ended).

Target on this machine class: >= 30,000 events/s.

    python benchmarks/tracking.py [--calls N]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import time
import tracemalloc
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from switchy.esl.connection import Connection
from switchy.esl.protocol import Parser, PlainEvent
from switchy.marks import event_callback
from switchy.models import Session
from switchy.tracking import CORE_EVENTS, AppRecord, Tracker

TRACE = Path(__file__).resolve().parent.parent / "tests/data/traces/03_call_lifecycle_plain.jsonl"
BATCH = 1000


class NoOp:
    @event_callback("CHANNEL_PARK", "CHANNEL_ANSWER", "CHANNEL_HANGUP")
    def on_event(self, session: Session) -> None:
        pass


def recorded_call() -> tuple[list[bytes], list[bytes]]:
    """The raw events of one call, both legs, and the uuids they mention."""
    stream = b"".join(
        row["data"].encode("latin-1")
        for row in map(json.loads, TRACE.read_text().splitlines())
        if row["dir"] == "S"
    )
    wanted = {*CORE_EVENTS, "CHANNEL_PARK"}
    events = [
        frame.body
        for frame in Parser().feed(stream)
        if frame.is_event and frame.event.name in wanted
    ]
    uuids = sorted(
        {PlainEvent(body).uuid or "" for body in events} - {""}
        | {PlainEvent(body).get("Job-UUID") or "" for body in events} - {""}
    )
    return events, [u.encode() for u in uuids]


def batch_of_calls(events: list[bytes], uuids: list[bytes], count: int) -> list[PlainEvent]:
    batch: list[PlainEvent] = []
    for _ in range(count):
        fresh = [str(uuid.uuid4()).encode() for _ in uuids]
        for body in events:
            for old, new in zip(uuids, fresh, strict=True):
                body = body.replace(old, new)
            batch.append(PlainEvent(body))
    return batch


def new_tracker() -> Tracker:
    async def no_commands(command: str) -> str:
        return "+OK\n"

    tracker = Tracker(Connection("benchmark", 0), no_commands)
    app = NoOp()
    callbacks: dict[str, list[Callable[[Session], Any]]] = {
        name: [app.on_event] for name in ("CHANNEL_PARK", "CHANNEL_ANSWER", "CHANNEL_HANGUP")
    }
    tracker.add_app(AppRecord("default", "NoOp", app, callbacks=callbacks))
    return tracker


def replay(
    tracker: Tracker, events: list[bytes], uuids: list[bytes], calls: int
) -> tuple[float, float, int]:
    """Feed ``calls`` calls; return (wall seconds, CPU seconds, events) of the feeding alone."""
    cpu = wall = 0.0
    handled = 0
    for first in range(0, calls, BATCH):
        batch = batch_of_calls(events, uuids, min(BATCH, calls - first))
        wall_start, cpu_start = time.perf_counter(), time.process_time()
        for event in batch:
            tracker.handle_event(event)
        cpu += time.process_time() - cpu_start
        wall += time.perf_counter() - wall_start
        handled += len(batch)
    return wall, cpu, handled


async def run(calls: int) -> None:
    events, uuids = recorded_call()
    print(f"{len(events)} events per call (both legs), {calls} calls")
    tracker = new_tracker()
    gc.collect()
    wall, cpu, handled = replay(tracker, events, uuids, calls)
    assert tracker.is_idle(), tracker
    print(f"events/s: {handled / wall:,.0f}  (target >= 30,000)")
    print(f"CPU per call: {cpu / calls * 1e6:,.1f} us")
    print(
        f"tracker after: sessions={len(tracker.sessions)} calls={len(tracker.calls)} "
        f"jobs={len(tracker.jobs)}; {tracker.sessions_total} sessions tracked, "
        f"{tracker.answered_total} answered"
    )
    # Memory, in a second pass (tracing allocations slows everything down): all
    # calls set up first, then all torn down, so that all are up at the midpoint.
    # Two rounds: the first may leave the tracker's hash tables grown (dicts
    # never shrink); the second must not add to that.
    tracker = new_tracker()
    tracemalloc.start()
    for round_number in (1, 2):
        _, running, ended = measure_round(tracker, events, uuids)
        print(
            f"memory round {round_number}: +{running / 1024:,.0f} KiB with {BATCH} calls up, "
            f"+{ended / 1024:,.1f} KiB once all ended"
        )
    tracemalloc.stop()
    assert tracker.is_idle(), tracker


def measure_round(
    tracker: Tracker, events: list[bytes], uuids: list[bytes]
) -> tuple[int, int, int]:
    """Traced bytes held by the tracker: (0, with all calls up, after all ended)."""
    per_call = len(events)
    gc.collect()
    baseline = tracemalloc.get_traced_memory()[0]
    batch = batch_of_calls(events, uuids, BATCH)
    interleaved = [
        batch[call * per_call + index] for index in range(per_call) for call in range(BATCH)
    ]
    del batch
    middle = per_call // 2 * BATCH
    gc.collect()
    with_events = tracemalloc.get_traced_memory()[0]
    for event in interleaved[:middle]:
        tracker.handle_event(event)
    gc.collect()
    assert tracker.count_calls() == BATCH
    halfway = tracemalloc.get_traced_memory()[0] - with_events
    for event in interleaved[middle:]:
        tracker.handle_event(event)
    del interleaved, event
    gc.collect()
    return 0, halfway, tracemalloc.get_traced_memory()[0] - baseline


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    options.add_argument("--calls", type=int, default=20_000)
    asyncio.run(run(options.parse_args().calls))


if __name__ == "__main__":
    main()
