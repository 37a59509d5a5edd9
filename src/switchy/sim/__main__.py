"""Run a simulated FreeSWITCH cluster in the foreground: ``python -m switchy.sim``.

Prints one line per node with its event socket and SIP addresses, then serves
until Ctrl-C (or SIGTERM) or until every node was shut down (``fsctl shutdown``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence

from switchy.sim.cluster import Cluster


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m switchy.sim",
        description="Run simulated FreeSWITCH 1.10.12 nodes (ESL inbound + SIP profile).",
    )
    parser.add_argument("--nodes", type=int, default=1, help="how many nodes (default 1)")
    parser.add_argument("--password", default="ClueCon", help="ESL password (default ClueCon)")
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
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    cluster = Cluster(
        args.nodes,
        password=args.password,
        host=args.host,
        port=args.port,
        answer_delay=args.answer_delay,
        ringing=args.ringing,
    )
    async with cluster:
        for index, member in enumerate(cluster.nodes, 1):
            print(
                f"node {index}: ESL {member.esl_host}:{member.esl_port} SIP {member.sip_address}",
                flush=True,
            )
        everyone_gone = asyncio.ensure_future(_all_shut_down(cluster))
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait({everyone_gone, stopped}, return_when=asyncio.FIRST_COMPLETED)
        everyone_gone.cancel()
        stopped.cancel()


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
