"""``switchy report`` and ``switchy plot``: click commands the ``switchy`` group registers.

A missing, empty or foreign results directory gives one line on stderr and exit
code 2. Partial data (a killed run, a damaged file) gives one warning line, the
report or figures of the rows present, and exit code 2 too, so that scripts
notice. pandas and matplotlib are imported when a command runs, not when the
``switchy`` command line starts.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from switchy.measure.store import ResultsError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_command", "report_command"]

_DIRECTORY = click.Path(file_okay=True, dir_okay=True, path_type=Path)
_channels = click.option(
    "--channels",
    type=click.IntRange(min=1),
    default=None,
    help="N for the Erlang B check (default: the run's limit).",
)
_lost_causes = click.option(
    "--lost-cause",
    "lost_causes",
    multiple=True,
    metavar="CAUSE",
    help="Count failed calls with this hangup cause as blocked in the Erlang B check, "
    "to check a device's blocking against its capacity (--channels), e.g. "
    "NORMAL_CIRCUIT_CONGESTION. Repeatable.",
)


def _fail(command: str, message: object, code: int = 2) -> NoReturn:
    click.echo(f"switchy {command}: {message}", err=True)
    sys.exit(code)


def _warn_partial(command: str, directory: Path, problems: tuple[str, ...]) -> None:
    click.echo(f"switchy {command}: {directory}: partial data: {'; '.join(problems)}", err=True)


@click.command("report")
@click.argument("results_dir", type=_DIRECTORY)
@_channels
@_lost_causes
@click.option("--csv", "write_csv", is_flag=True, help="Also write the CDR as cdr.csv.")
def report_command(
    results_dir: Path, channels: int | None, lost_causes: tuple[str, ...], write_csv: bool
) -> None:
    """Write RESULTS_DIR/report.html and its figures (PNG) from a run's results.

    Prints the verdict lines and the report's path.
    """
    from switchy.measure.report import analyse, write_analysis
    from switchy.measure.store import export_csv

    try:
        analysis = analyse(results_dir, channels=channels, lost_causes=lost_causes)
    except ResultsError as exc:
        _fail("report", exc)
    info = analysis.info
    if info.partial:
        _warn_partial("report", results_dir, info.problems)
    for line in analysis.verdicts:
        click.echo(line)
    try:
        path = write_analysis(analysis)
        if write_csv:
            click.echo(f"CDR: {export_csv(results_dir)}")
    except OSError as exc:
        _fail("report", f"cannot write into {results_dir}: {exc.strerror or exc}", code=1)
    click.echo(f"report: {path}")
    if info.partial:
        sys.exit(2)


def _has_display() -> bool:
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _show(figures: Iterable[Figure]) -> bool:
    """Show the figures in windows; False when matplotlib has no interactive backend."""
    import matplotlib
    import matplotlib.pyplot as pyplot

    if matplotlib.get_backend().lower() in ("agg", "pdf", "ps", "svg", "cairo", "template"):
        return False
    try:
        for figure in figures:
            pyplot.figure(figure)  # adopts the figure (older matplotlib refuses)
    except (TypeError, ValueError):
        return False
    pyplot.show()
    return True


@click.command("plot")
@click.argument("results_dir", type=_DIRECTORY)
@_channels
@_lost_causes
@click.option("--show", is_flag=True, help="Show the figures in windows (needs a display).")
def plot_command(
    results_dir: Path, channels: int | None, lost_causes: tuple[str, ...], show: bool
) -> None:
    """Save the figures of a run's results as PNG files in RESULTS_DIR.

    With --show, show them in windows instead when a display is available.
    """
    from switchy.measure.report import analyse, figures, save_figures

    try:
        analysis = analyse(results_dir, channels=channels, lost_causes=lost_causes)
    except ResultsError as exc:
        _fail("plot", exc)
    info = analysis.info
    if info.partial:
        _warn_partial("plot", results_dir, info.problems)
    found = figures(analysis)
    if show:
        if _has_display() and _show(found.values()):
            if info.partial:
                sys.exit(2)
            return
        click.echo("switchy plot: no display to show the figures on; saving them", err=True)
    try:
        paths = save_figures(found, results_dir)
    except OSError as exc:
        _fail("plot", f"cannot write into {results_dir}: {exc.strerror or exc}", code=1)
    for path in paths:
        click.echo(str(path))
    if info.partial:
        sys.exit(2)
