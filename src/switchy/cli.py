"""The ``switchy`` command line.

Exit codes of ``switchy run``: 0 the test ran to its end and every attempted
call was answered; 1 it ran to its end and some calls failed; 2 bad options,
an unreachable node or a wrong password (nothing was offered); 3 the run itself
failed; 130 interrupted by Ctrl-C (SIGINT); 143 stopped by SIGTERM. An
interrupted run still hangs up its calls, writes its results and its summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

import click
from rich.console import Console
from rich.live import Live

from switchy.cli_options import chosen_password, password_options
from switchy.errors import ConfigurationError, ConnectError
from switchy.loadgen.display import Progress, RateMeter, summary_table
from switchy.loadgen.originator import ARRIVAL_KINDS, NODE_CHOICES, NODE_LOSS_POLICIES, Originator
from switchy.loadgen.run import AppChoice, RunOutcome, RunSettings, run_load_test
from switchy.measure.cli import plot_command, report_command
from switchy.pool import parse_contact
from switchy.service import serve_command
from switchy.traffic import HOLDING_KINDS

EXIT_OK = 0
EXIT_CALLS_FAILED = 1
EXIT_USAGE = 2
EXIT_RUN_FAILED = 3
EXIT_SIGINT = 130
EXIT_SIGTERM = 143

#: Calls offered by a demo run against the local simulator: ten seconds' worth.
DEMO_SECONDS = 10


def _contacts(
    ctx: click.Context, param: click.Parameter, values: Sequence[str]
) -> list[tuple[str, int]]:
    try:
        return [parse_contact(value) for value in values]
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _apps(ctx: click.Context, param: click.Parameter, values: Sequence[str]) -> list[AppChoice]:
    import switchy.apps

    choices = []
    for spec in values or ("TonePlay",):
        try:
            chosen = switchy.apps.from_spec(spec)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
        choices.append(AppChoice(chosen.app, chosen.name, chosen.weight, chosen.kwargs))
    return choices


@click.group()
@click.version_option(package_name="switchy")
@click.option("-v", "--verbose", count=True, help="Log more (-v info, -vv debug).")
def main(verbose: int) -> None:
    """switchy: FreeSWITCH control and call-load generation."""
    logging.basicConfig(
        level={0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@main.command()
@click.argument("contacts", nargs=-1, callback=_contacts, metavar="[HOST[:PORT]]...")
@click.option(
    "--proxy",
    metavar="DUT[:PORT]",
    help="The device under test: every node calls its own SIP address through it. "
    "Required with HOSTs; without, a simulated DUT is used.",
)
@click.option("--profile", default="external", show_default=True, help="SIP profile to call from.")
@click.option("--user", default="switchy", show_default=True, help="User part of the dialled URI.")
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="Calls offered per second.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Most calls up at once (erlangs); arrivals beyond it are blocked.",
)
@click.option(
    "--max-offered",
    type=click.IntRange(min=1),
    help="Stop after offering this many calls (default: until Ctrl-C; "
    f"{DEMO_SECONDS} s worth against the simulator).",
)
@click.option(
    "--duration",
    type=click.FloatRange(min=0, min_open=True),
    help="Mean holding time in seconds (default: limit / rate, Little's law).",
)
@click.option("--arrivals", type=click.Choice(ARRIVAL_KINDS), default="fixed", show_default=True)
@click.option("--holding", type=click.Choice(HOLDING_KINDS), default="fixed", show_default=True)
@click.option(
    "--node-choice", type=click.Choice(NODE_CHOICES), default="round-robin", show_default=True
)
@click.option(
    "--on-node-loss",
    type=click.Choice(NODE_LOSS_POLICIES),
    default="continue",
    show_default=True,
    help="When a node goes away: carry on with the others, or stop the run (exit 3).",
)
@click.option(
    "--app",
    "apps",
    multiple=True,
    callback=_apps,
    metavar="NAME[:WEIGHT][,key=value...]",
    help="Call app (see list-apps), repeatable for a weighted mix. Default: TonePlay.",
)
@password_options
@click.option(
    "--results",
    type=click.Path(file_okay=False, path_type=Path),
    help="Results directory (default: results/run-<date>-<time>).",
)
@click.option("--seed", type=int, help="Seed of the arrival and holding-time draws.")
@click.option(
    "--stats-interval",
    type=click.FloatRange(min=0.1),
    default=5.0,
    show_default=True,
    help="Seconds between rows of stats.csv.",
)
@click.option(
    "--tick",
    type=click.FloatRange(min=0, max=1),
    default=0.0,
    show_default=True,
    metavar="SECONDS",
    help="Do the generator's work in passes on ticks of this period (e.g. 0.02): "
    "reading the nodes' events and replies, offering arrivals, hanging up. About half "
    "the generator CPU per call at hundreds of calls/s; each of these then happens "
    "up to one tick late. 0: each as soon as due.",
)
@click.option(
    "--report",
    "write_report",
    is_flag=True,
    help="Write report.html (and its figures) into the results directory at the end.",
)
def run(
    contacts: Sequence[tuple[str, int]],
    proxy: str | None,
    profile: str,
    user: str,
    rate: float,
    limit: int,
    max_offered: int | None,
    duration: float | None,
    arrivals: str,
    holding: str,
    node_choice: str,
    on_node_loss: str,
    apps: list[AppChoice],
    password: str,
    password_file: TextIO | None,
    results: Path | None,
    seed: int | None,
    stats_interval: float,
    tick: float,
    write_report: bool,
) -> None:
    """Offer calls from FreeSWITCH nodes (HOST[:PORT]...) to a device under test.

    With no HOST, a local simulated cluster (two nodes calling through a
    simulated DUT) is started and used.
    """
    if contacts and not proxy:
        raise click.UsageError("--proxy DUT[:PORT] is required when nodes are given")
    password = chosen_password(password, password_file)
    if not contacts and max_offered is None:
        max_offered = max(int(rate * DEMO_SECONDS), 1)
    settings = RunSettings(
        contacts=list(contacts),
        password=password,
        proxy=proxy,
        profile=profile,
        user=user,
        rate=rate,
        limit=limit,
        max_offered=max_offered,
        duration=duration,
        arrivals=arrivals,
        holding=holding,
        node_choice=node_choice,
        on_node_loss=on_node_loss,
        apps=apps,
        results=results or _default_results(),
        seed=seed,
        stats_interval=stats_interval,
        tick=tick,
    )
    sys.exit(asyncio.run(_run(settings, write_report)))


def _default_results() -> Path:
    return Path("results") / datetime.datetime.now().strftime("run-%Y%m%d-%H%M%S")


async def _run(settings: RunSettings, write_report: bool) -> int:
    console = Console()
    interrupted = asyncio.Event()
    received: list[int] = []
    loop = asyncio.get_running_loop()

    def stop(signum: int) -> None:
        received.append(signum)
        interrupted.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop, signum)
    where = ", ".join(f"{h}:{p}" for h, p in settings.contacts) or "a local simulated cluster"
    console.print(
        f"switchy: offering calls from {where} ({settings.rate:g} cps, limit {settings.limit})"
    )
    meter = RateMeter()
    live = Live(console=console, refresh_per_second=4, transient=False)
    last_line = [0.0]

    def progress(originator: Originator) -> None:
        elapsed = originator.elapsed
        view = Progress(
            "switchy run", originator, meter.update(elapsed, originator.attempted), elapsed
        )
        if console.is_terminal:
            live.update(view.render())
        elif elapsed - last_line[0] >= 5:
            last_line[0] = elapsed
            console.print(view.render())

    try:
        with live if console.is_terminal else contextlib.nullcontext():
            outcome = await run_load_test(settings, interrupted, progress)
    except (ConnectError, ConfigurationError) as exc:
        console.print(f"[red]switchy: {exc}[/]", highlight=False)
        return EXIT_USAGE
    console.print(summary_table(outcome.originator, outcome.wall_seconds, str(outcome.results)))
    if write_report:
        from switchy.measure.report import write_report as write
        from switchy.measure.store import ResultsError

        try:
            path = await asyncio.get_running_loop().run_in_executor(None, write, outcome.results)
            console.print(f"report: {path}")
        except ResultsError as exc:
            console.print(f"[red]switchy: no report: {exc}[/]", highlight=False)
    return _exit_code(outcome, received)


def _exit_code(outcome: RunOutcome, signals: list[int]) -> int:
    if signals:
        return EXIT_SIGTERM if signals[0] == signal.SIGTERM else EXIT_SIGINT
    if outcome.status == "failed":
        click.echo(f"switchy: the run failed: {outcome.error}", err=True)
        return EXIT_RUN_FAILED
    return EXIT_CALLS_FAILED if outcome.originator.failed else EXIT_OK


@main.command("list-apps")
@click.option(
    "--package",
    "packages",
    multiple=True,
    metavar="MODULE",
    help="Also import apps registered in this module or package (repeatable).",
)
def list_apps(packages: Sequence[str]) -> None:
    """List the call apps switchy knows, with their descriptions."""
    import inspect

    import switchy.apps

    try:
        switchy.apps.load(packages)
    except ImportError as exc:
        raise click.BadParameter(str(exc), param_hint="--package") from None
    for module, apps in switchy.apps.groupbymod().items():
        click.secho(module, bold=True)
        for name, app in apps:
            doc = inspect.getdoc(app) or "(no description)"
            click.echo(f"  {name}")
            for line in doc.splitlines():
                click.echo(f"      {line}".rstrip())


@main.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
@click.pass_context
def sim(ctx: click.Context) -> None:
    """Run simulated FreeSWITCH nodes (options: see ``switchy sim --help``)."""
    from switchy.sim.__main__ import main as simulator_main

    sys.exit(simulator_main(ctx.args))


main.add_command(report_command)
main.add_command(plot_command)
main.add_command(serve_command)
