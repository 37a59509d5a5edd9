"""Run a simulated FreeSWITCH cluster in the foreground: ``python -m switchy.sim``.

Prints one line per node with its event socket and SIP addresses (and, with
``--dut``, a last line with the simulated device under test's SIP address),
then serves until Ctrl-C (or SIGTERM) or until every node was shut down
(``fsctl shutdown``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import signal
import sys
from collections.abc import Sequence

from switchy.sim.cluster import Cluster
from switchy.sim.dut import DUTSettings


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m switchy.sim",
        description="Run simulated FreeSWITCH 1.10.12 nodes (ESL inbound + SIP profile).",
    )
    parser.add_argument("--nodes", type=int, default=1, help="how many nodes (default 1)")
    parser.add_argument(
        "--password",
        default=os.environ.get("SWITCHY_PASSWORD", "ClueCon"),
        help="ESL password (default: SWITCHY_PASSWORD, else ClueCon)",
    )
    parser.add_argument(
        "--port", type=int, default=0, help="first ESL port, one per node (default: any free)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--answer-delay",
        type=float,
        default=None,
        help="seconds before inbound calls answer (default: they park unanswered)",
    )
    parser.add_argument("--ringing", action="store_true", help="inbound calls send 180 first")
    parser.add_argument(
        "--sps",
        type=_positive,
        metavar="N",
        help="sessions each node may create per second (fsctl sps; default 1000);"
        " a call from a node to itself takes two",
    )
    parser.add_argument(
        "--max-sessions",
        type=_positive,
        metavar="N",
        help="sessions each node may hold at once (fsctl max_sessions; default 20000)",
    )
    parser.add_argument(
        "--exit-with-stdin",
        action="store_true",
        help="stop when standard input closes (for a parent process: if it dies, so do we)",
    )
    dut = parser.add_argument_group("device under test (a proxy routing calls between nodes)")
    dut.add_argument("--dut", action="store_true", help="run a simulated device under test")
    dut.add_argument(
        "--dut-capacity", type=int, metavar="N", help="at most N calls at once (default: no limit)"
    )
    dut.add_argument(
        "--dut-delay",
        type=float,
        default=0.0,
        metavar="S",
        help="seconds before it forwards each INVITE (default 0)",
    )
    dut.add_argument(
        "--dut-reject",
        type=_reject_rule,
        metavar="P:STATUS",
        help="refuse a fraction P of calls with SIP STATUS, e.g. 0.1:486",
    )
    dut.add_argument("--dut-seed", type=int, help="seed of the --dut-reject draws")
    args = parser.parse_args(argv)
    knobs = (args.dut_capacity, args.dut_reject, args.dut_seed)
    if not args.dut and (args.dut_delay or any(knob is not None for knob in knobs)):
        parser.error("--dut-* options need --dut")
    try:
        args.dut_settings = _dut_settings(args) if args.dut else None
    except ValueError as error:
        parser.error(str(error))
    return args


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _reject_rule(text: str) -> tuple[float, int]:
    probability, colon, status = text.partition(":")
    try:
        return float(probability), int(status) if colon else 486
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected P:STATUS, e.g. 0.1:486, got {text!r}") from None


def _dut_settings(args: argparse.Namespace) -> DUTSettings:
    reject, reject_status = args.dut_reject or (0.0, 486)
    return DUTSettings(
        capacity=args.dut_capacity,
        setup_delay=args.dut_delay,
        reject=reject,
        reject_status=reject_status,
        seed=args.dut_seed,
    )


async def serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    limits = {
        knob: value
        for knob, value in (
            ("sessions_per_second", args.sps),
            ("max_sessions", args.max_sessions),
        )
        if value is not None
    }
    cluster = Cluster(
        args.nodes,
        password=args.password,
        host=args.host,
        port=args.port,
        dut=args.dut_settings,
        answer_delay=args.answer_delay,
        ringing=args.ringing,
        **limits,
    )
    async with cluster:
        tune_garbage_collector()
        for index, member in enumerate(cluster.nodes, 1):
            print(
                f"node {index}: ESL {member.esl_host}:{member.esl_port} SIP {member.sip_address}",
                flush=True,
            )
        if cluster.dut_address is not None:
            print(f"dut: SIP {cluster.dut_address}", flush=True)
        waits = {
            asyncio.ensure_future(_all_shut_down(cluster)),
            asyncio.ensure_future(stop.wait()),
        }
        if args.exit_with_stdin:
            waits.add(asyncio.ensure_future(_stdin_closed()))
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for wait in waits:
            wait.cancel()


#: Tracked objects allocated (net) between young collections; Python's default is 700.
GC_YOUNG_THRESHOLD = 50_000


def tune_garbage_collector() -> None:
    """Collect garbage in this process the way a call simulator needs.

    Calls are made of many small objects living a second or more (events,
    headers, channels): with Python's defaults they all survive the frequent
    young collections into the old generation, and collecting took a quarter
    to a third of the CPU under load (benchmarks/sim.py). Rarer young
    collections see most of a call's garbage already freed (the simulator
    leaves few reference cycles); the objects of the start-up are frozen out
    of every collection.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


async def _stdin_closed() -> None:
    """Return when standard input reaches its end (the parent closed it, or died)."""
    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
    )
    while await reader.read(4096):
        pass


async def _all_shut_down(cluster: Cluster) -> None:
    nodes = [member.node for member in cluster.nodes]
    shutdowns = [node.wait_shutdown() for node in nodes]
    await asyncio.gather(*shutdowns)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.nodes < 1:
        print("--nodes must be at least 1", file=sys.stderr)
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
