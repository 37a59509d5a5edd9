"""Event parsing throughput: switchy's lazy parser against a naive one, side by side.

The event frames of fs-traces/03_call_lifecycle_plain are repeated to at least
100,000 events and fed as one stream in 64 KiB chunks. Three workloads:

  routing   Event-Name, Unique-ID and Job-UUID of every event
  typical   routing plus six named headers per event
  full      the whole decoded header map of every event

The naive parser splits every line and percent-decodes every value, the way a
straightforward ESL client does. Targets (ratios, because the machine is shared
and noisy): routing >= 15x naive, typical >= 6x, full >= 1.5x; memory flat as the
stream grows.

    python benchmarks/parse.py [--events N] [--repeat R]
"""

from __future__ import annotations

import argparse
import gc
import json
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import unquote

from switchy.esl.protocol import Parser

TRACE = Path(__file__).resolve().parent.parent / "tests/data/traces/03_call_lifecycle_plain.jsonl"
CHUNK = 64 * 1024
TYPICAL = (
    "Call-Direction",
    "Answer-State",
    "Hangup-Cause",
    "Caller-Destination-Number",
    "Event-Date-Timestamp",
    "variable_sip_h_X-switchy_app",
)
TARGETS = {"routing": 15.0, "typical": 6.0, "full": 1.5}


def event_frames() -> list[bytes]:
    """The raw bytes of every event frame in the trace."""
    stream = b"".join(
        row["data"].encode("latin-1")
        for row in map(json.loads, TRACE.read_text().splitlines())
        if row["dir"] == "S"
    )
    frames: list[bytes] = []
    position = 0
    while position < len(stream):
        end = stream.index(b"\n\n", position)
        head = stream[position:end].decode()
        length = 0
        for line in head.split("\n"):
            if line.startswith("Content-Length: "):
                length = int(line[16:])
        stop = end + 2 + length
        if "text/event-plain" in head:
            frames.append(stream[position:stop])
        position = stop
    return frames


def build_stream(min_events: int) -> tuple[bytes, int]:
    frames = event_frames()
    copies = -(-min_events // len(frames))
    return b"".join(frames) * copies, len(frames) * copies


def chunks(stream: bytes) -> Iterator[bytes]:
    view = memoryview(stream)
    for start in range(0, len(stream), CHUNK):
        yield bytes(view[start : start + CHUNK])


# -- switchy ------------------------------------------------------------------------------
def switchy_routing(stream: bytes) -> int:
    parser = Parser()
    count = 0
    for chunk in chunks(stream):
        for frame in parser.feed(chunk):
            event = frame.event
            event.name, event.uuid, event.job_uuid  # noqa: B018
            count += 1
    return count


def switchy_typical(stream: bytes) -> int:
    parser = Parser()
    count = 0
    for chunk in chunks(stream):
        for frame in parser.feed(chunk):
            event = frame.event
            event.name, event.uuid, event.job_uuid  # noqa: B018
            for name in TYPICAL:
                event.get(name)
            count += 1
    return count


def switchy_full(stream: bytes) -> int:
    parser = Parser()
    count = 0
    for chunk in chunks(stream):
        for frame in parser.feed(chunk):
            frame.event.headers  # noqa: B018
            count += 1
    return count


# -- naive --------------------------------------------------------------------------------
def naive_parse(stream: bytes) -> Iterator[dict[str, str]]:
    """Split every line and percent-decode every value of every event."""
    buffer = ""
    for chunk in chunks(stream):
        buffer += chunk.decode("latin-1")
        while True:
            end = buffer.find("\n\n")
            if end < 0:
                break
            outer = dict(line.split(": ", 1) for line in buffer[:end].split("\n"))
            length = int(outer.get("Content-Length", 0))
            if len(buffer) < end + 2 + length:
                break
            body = buffer[end + 2 : end + 2 + length]
            buffer = buffer[end + 2 + length :]
            event: dict[str, str] = {}
            for line in body.split("\n"):
                if ": " in line:
                    name, value = line.split(": ", 1)
                    event[name] = unquote(value)
            yield event


def naive(stream: bytes) -> int:
    count = 0
    for event in naive_parse(stream):
        event.get("Event-Name"), event.get("Unique-ID"), event.get("Job-UUID")
        count += 1
    return count


# -- harness -------------------------------------------------------------------------------
def best_rates(
    runs: dict[str, Callable[[bytes], int]], stream: bytes, repeat: int
) -> dict[str, float]:
    """Events per second of the fastest of ``repeat`` runs of each parser.

    The parsers take turns (naive, routing, typical, full, naive, ...), so that a
    noisy neighbour on this shared machine slows them alike instead of one of them.
    """
    best = dict.fromkeys(runs, 0.0)
    for _ in range(repeat):
        for label, run in runs.items():
            gc.collect()
            start = time.perf_counter()
            count = run(stream)
            best[label] = max(best[label], count / (time.perf_counter() - start))
    return best


def peak_memory(stream: bytes) -> int:
    tracemalloc.start()
    switchy_typical(stream)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    options.add_argument("--events", type=int, default=100_000)
    options.add_argument("--repeat", type=int, default=5)
    args = options.parse_args()

    stream, events = build_stream(args.events)
    print(f"stream: {events} events, {len(stream) / 1e6:.1f} MB, {CHUNK // 1024} KiB chunks")
    rates = best_rates(
        {
            "naive": naive,
            "routing": switchy_routing,
            "typical": switchy_typical,
            "full": switchy_full,
        },
        stream,
        args.repeat,
    )
    naive_rate = rates.pop("naive")
    print(f"{'naive':>8}: {naive_rate:>10,.0f} events/s")
    ok = True
    for label, rate in rates.items():
        ratio = rate / naive_rate
        verdict = "ok" if ratio >= TARGETS[label] else "BELOW TARGET"
        ok &= ratio >= TARGETS[label]
        print(
            f"{label:>8}: {rate:>10,.0f} events/s  {ratio:5.1f}x naive"
            f"  (target >= {TARGETS[label]}x: {verdict})"
        )
    small, _ = build_stream(args.events // 4)
    peak_small, peak_large = peak_memory(small), peak_memory(stream)
    print(
        f"  memory: peak {peak_small / 1024:,.0f} KiB over {len(small) / 1e6:.1f} MB, "
        f"{peak_large / 1024:,.0f} KiB over {len(stream) / 1e6:.1f} MB "
        f"({'flat' if peak_large < 1.5 * peak_small else 'GROWS'})"
    )
    print("all targets met" if ok else "some targets missed")


if __name__ == "__main__":
    main()
