"""report.html, the figures, and the ``report`` / ``plot`` commands, on good and bad input."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from matplotlib.figure import Figure

from switchy.measure.cli import plot_command, report_command
from switchy.measure.plots import plot_cdr
from switchy.measure.report import analyse, rate_verdict, write_report
from switchy.measure.stats import Gauges, StatsRecorder
from switchy.measure.store import RUN_JSON, ResultsError, frame_from_records

from .cdrs import T, hand_made, simulated_run
from .test_store import kill_run, write_run

FIGURES = {"rate", "concurrency", "setup_latency", "failures", "blocking", "latency_histograms"}
SETTINGS = {"rate": 10, "limit": 100, "arrivals": "poisson", "holding": "exp:9"}


@pytest.fixture
async def run(tmp_path: Path) -> Path:
    """A finished run of 3,000 calls at 10/s on 100 channels, with stats and sysstats."""
    directory = tmp_path / "run"
    records = simulated_run(3000, 10.0, 9.0, 100, seed=7, busy_every=20)
    await write_run(directory, records, **SETTINGS)
    recorder = StatsRecorder(directory)
    for second in range(0, 300, 5):
        recorder.record(T + second, Gauges(second, 10.0, 10 * second, 10 * second, 0, 80), [])
    (directory / "sysstats.csv").write_text(
        "timestamp,elapsed,cpu_percent,cpu0_percent,memory_percent,memory_used_mb,"
        "memory_available_mb,generator_cpu_percent,generator_rss_mb\n"
        + "".join(f"{T + s:.3f},{s}.000,12.5,12.5,40.0,800.0,1200.0,5.0,90.0\n" for s in range(300))
    )
    return directory


def invoke(command: click.Command, *args: object) -> Result:
    return CliRunner().invoke(command, [str(arg) for arg in args])


def one_line_error(result: Result) -> str:
    """The command's stderr, checked to be one line and no traceback."""
    assert isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def test_the_report_is_self_contained_and_has_its_figures(run: Path) -> None:
    path = write_report(run)
    assert path == run / "report.html"
    page = path.read_text()
    assert {png.stem for png in run.glob("*.png")} == FIGURES | {"sysstats"}
    for png in run.glob("*.png"):
        assert png.read_bytes().startswith(b"\x89PNG")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.IGNORECASE)
    assert "<script" not in page.lower()
    assert "<link" not in page.lower() and "@import" not in page and "url(" not in page
    images = re.findall(r"<img [^>]*src='([^']*)'", page)
    assert len(images) == len(FIGURES) + 1
    assert all(image.startswith("data:image/png;base64,") for image in images)
    assert "Partial data" not in page
    for text in ("limit never exceeded", "blocking consistent with Erlang B", "calls failed"):
        assert text in page
    assert "ASR" in page and "NER" in page and "p99" in page
    assert "exp:9" in page  # the settings table
    assert "12.5% / 12.5%" in page  # host CPU from sysstats.csv


def test_analysis_verdicts(run: Path) -> None:
    analysis = analyse(run)
    rate, limit, blocking, failures = analysis.verdicts
    # 3,000 Poisson arrivals: 2.4 % over the target is within their random spread
    assert rate.startswith("rate 2.4% above target (10.24 vs 10 calls/s): within the ±5.5%")
    assert limit.startswith("limit never exceeded: at most ")
    assert analysis.peak_calls_up <= 100
    assert blocking.startswith("blocking consistent with Erlang B")
    assert failures.startswith(f"{analysis.totals.failed:,} calls failed")
    assert "USER_BUSY" in failures
    assert analysis.target_rate == pytest.approx(10.0)


async def test_a_limit_exceeded_is_reported(tmp_path: Path) -> None:
    await write_run(tmp_path / "run", hand_made(), rate=1, limit=2)
    limit = analyse(tmp_path / "run").verdicts[1]
    assert limit == "limit exceeded: 3 calls up at once, limit 2"


def test_rate_verdicts() -> None:
    assert rate_verdict(29.8, 30.0, 1000, poisson=False) == (
        "rate held within 1% of target (29.80 vs 30 calls/s)"
    )
    assert rate_verdict(27.9, 30.0, 1000, poisson=False) == (
        "rate fell 7.0% short of target (27.90 vs 30 calls/s)"
    )
    assert rate_verdict(31.5, 30.0, 100_000, poisson=True) == (
        "rate 5.0% above target (31.50 vs 30 calls/s)"
    )
    # 1,000 Poisson arrivals spread by ±9.5 % (3/√1000): 3 % off is no shortfall
    assert rate_verdict(29.1, 30.0, 1000, poisson=True).startswith(
        "rate 3.0% below target (29.10 vs 30 calls/s): within the ±9.5% random spread"
    )
    assert "no target rate" in rate_verdict(5.0, None, 10, poisson=True)


async def test_a_killed_run_gives_a_partial_report_and_exit_code_2(tmp_path: Path) -> None:
    directory = tmp_path / "run"
    await write_run(directory, hand_made(), rate=1, limit=10)
    kill_run(directory)
    result = invoke(report_command, directory)
    assert result.exit_code == 2
    line = one_line_error(result)
    assert line.startswith(f"switchy report: {directory}: partial data: ")
    assert "incomplete row" in line and "did not finish" in line
    page = (directory / "report.html").read_text()
    assert "Partial data:" in page
    assert "5 complete call records" in page
    assert "report: " in result.stdout


@pytest.mark.parametrize("case", ["missing", "empty", "foreign", "foreign run.json", "no rows"])
async def test_bad_directories_give_one_line_and_exit_code_2(tmp_path: Path, case: str) -> None:
    directory = tmp_path / "results"
    expected = {
        "missing": "no such directory",
        "empty": "empty directory",
        "foreign": "not a switchy results directory",
        "foreign run.json": "run.json is not a switchy run description",
        "no rows": "no call records",
    }[case]
    if case != "missing":
        directory.mkdir()
    if case == "foreign":
        (directory / "data.csv").write_text("a,b\n1,2\n")
    elif case == "foreign run.json":
        (directory / RUN_JSON).write_text("[1, 2, 3]")
    elif case == "no rows":
        directory.rmdir()
        await write_run(directory, [])
    for command, name in ((report_command, "report"), (plot_command, "plot")):
        result = invoke(command, directory)
        assert result.exit_code == 2
        line = one_line_error(result)
        assert line.startswith(f"switchy {name}: {directory}: ")
        assert expected in line
    assert not (directory / "report.html").exists()
    with pytest.raises(ResultsError):
        write_report(directory)


def test_the_report_command_prints_verdicts_and_can_export_csv(run: Path) -> None:
    result = invoke(report_command, run, "--csv", "--channels", "80")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("rate ")
    assert lines[2].startswith("blocking lower than Erlang B predicts")  # N = 80, not 100
    assert f"CDR: {run / 'cdr.csv'}" in lines
    assert lines[-1] == f"report: {run / 'report.html'}"
    assert result.stderr == ""


def test_the_plot_command_saves_pngs(run: Path) -> None:
    result = invoke(plot_command, run)
    assert result.exit_code == 0, result.output
    saved = {Path(line).stem for line in result.stdout.splitlines()}
    assert saved == FIGURES | {"sysstats"}
    assert all((run / f"{name}.png").stat().st_size > 1000 for name in saved)
    assert not (run / "report.html").exists()


def test_plot_show_without_a_display_saves_instead(
    run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("switchy.measure.cli._has_display", lambda: False)
    result = invoke(plot_command, run, "--show")
    assert result.exit_code == 0
    assert result.stderr == "switchy plot: no display to show the figures on; saving them\n"
    assert (run / "rate.png").exists()


def test_plot_cdr_returns_figures_for_notebooks() -> None:
    cdr = frame_from_records(hand_made())
    figures = plot_cdr(cdr, {"rate": 1, "limit": 2})
    assert set(figures) == FIGURES
    assert all(isinstance(figure, Figure) for figure in figures.values())
    assert figures["concurrency"].axes[0].get_legend_handles_labels()[1][-1] == "limit 2"
    without = plot_cdr(cdr.iloc[[4]])  # only a blocked call: empty figures, no error
    assert set(without) == FIGURES


async def test_the_target_rate_follows_stats_csv(tmp_path: Path) -> None:
    """A target changed during the run counts for the time it held, not the settings' rate."""
    directory = tmp_path / "run"
    records = simulated_run(3000, 10.0, 9.0, 200, seed=2)
    await write_run(directory, records, rate=30, limit=200)
    first, last = records[0].scheduled_time, records[-1].scheduled_time
    middle = (first + last) / 2
    recorder = StatsRecorder(directory)
    recorder.record(first, Gauges(0.0, 5.0, 0, 0, 0, 0), [])
    recorder.record(middle, Gauges(middle - first, 15.0, 1, 1, 0, 0), [])
    analysis = analyse(directory)
    assert analysis.target_rate == pytest.approx(10.0)
    assert "vs 10 calls/s" in analysis.verdicts[0]


def test_the_rate_figure_stops_at_the_last_offer() -> None:
    cdr = frame_from_records(hand_made())  # offers until 4 s, calls up until 10.3 s
    figure = plot_cdr(cdr, {"rate": 1}, origin=T)["rate"]
    lines = {line.get_label(): line for line in figure.axes[0].get_lines()}
    assert max(lines["offered, 10 s average"].get_xdata()) == 5.0  # end of the 4-5 s bin
