"""The report of a run: ``report.html`` with its figures beside it as PNG files.

The HTML is one self-contained file: inline CSS, every figure embedded as a
base64 PNG, no script and no external link, so it opens offline and can be
mailed or attached to a ticket as it is.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from switchy.measure.metrics import (
    NER_CAUSES,
    Totals,
    TrafficCheck,
    failures_by_cause,
    latency_percentiles,
    numeric_setting,
    offer_times,
    peak_calls_up,
    percent,
    totals,
    traffic_check,
)
from switchy.measure.stats import load_stats
from switchy.measure.store import RunInfo, load_run
from switchy.measure.sysstats import load_sysstats

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "REPORT_HTML",
    "Analysis",
    "analyse",
    "figures",
    "rate_verdict",
    "render_html",
    "save_figures",
    "write_analysis",
    "write_report",
]

REPORT_HTML = "report.html"
#: Relative deviation from the target rate still reported as "held".
RATE_TOLERANCE = 0.01
_DPI = 100


@dataclass(frozen=True)
class Analysis:
    """Everything the report shows about a run."""

    info: RunInfo
    cdr: pd.DataFrame
    totals: Totals
    failures: pd.Series
    percentiles: pd.DataFrame
    check: TrafficCheck
    stats: pd.DataFrame | None
    sysstats: pd.DataFrame | None
    #: Epoch time the figures' time axes start at: the run's start, or the first offer.
    origin: float
    target_rate: float | None
    limit: float | None
    peak_calls_up: int
    #: One sentence each: rate, limit, blocking, failures.
    verdicts: tuple[str, ...]


def _target_rate(
    settings: Mapping[str, Any], stats: pd.DataFrame | None, window: tuple[float, float]
) -> float | None:
    """The mean target rate over the offer window: stats.csv's, weighted by time, if any."""
    if stats is not None and {"timestamp", "target_rate"} <= set(stats.columns):
        rows = stats[["timestamp", "target_rate"]].dropna().sort_values("timestamp")
        if len(rows):
            # Each row's target holds from its time to the next row's (the last one
            # to the end of the window); rows before the window start it.
            times = np.clip(rows["timestamp"].to_numpy(float), window[0], window[1])
            ends = np.append(times[1:], window[1])
            weights = ends - times
            if weights.sum() > 0:
                return float(np.average(rows["target_rate"].to_numpy(float), weights=weights))
    return numeric_setting(settings, "rate")


def rate_verdict(achieved: float, target: float | None, offered: int, poisson: bool) -> str:
    """Whether the offered rate held its target.

    Held when within :data:`RATE_TOLERANCE` (1 %) of the target. With Poisson
    arrivals the number of calls in a fixed time is itself random (standard
    deviation √n for n calls), so a deviation within 3/√n is reported as the
    arrival process's own spread, not as a generator that fell short.
    """
    if target is None:
        return f"offered {achieved:.2f} calls/s (no target rate in the settings)"
    if not math.isfinite(achieved):
        return f"too few calls to measure the rate (target {target:g} calls/s)"
    deviation = achieved / target - 1.0
    rates = f"{achieved:.2f} vs {target:g} calls/s"
    if abs(deviation) <= RATE_TOLERANCE:
        return f"rate held within 1% of target ({rates})"
    spread = 3.0 / math.sqrt(offered) if poisson and offered else 0.0
    side = "below" if deviation < 0 else "above"
    if abs(deviation) <= spread:
        return (
            f"rate {abs(deviation):.1%} {side} target ({rates}): within the ±{spread:.1%} "
            f"random spread of Poisson arrivals over {offered} calls"
        )
    if deviation < 0:
        return f"rate fell {-deviation:.1%} short of target ({rates})"
    return f"rate {deviation:.1%} above target ({rates})"


def _limit_verdict(peak: int, limit: float | None) -> str:
    if limit is None:
        return f"no limit set: at most {peak} calls up at once"
    if peak <= limit:
        return f"limit never exceeded: at most {peak} of {limit:g} calls up at once"
    return f"limit exceeded: {peak} calls up at once, limit {limit:g}"


def _failure_verdict(counts: Totals, failures: pd.Series) -> str:
    if not counts.failed:
        return "no call failed"
    top = ", ".join(f"{cause} {calls:,}" for cause, calls in failures.head(3).items())
    more = ", ..." if len(failures) > 3 else ""
    return (
        f"{counts.failed:,} calls failed ({counts.failed / counts.attempted:.1%} of attempted): "
        f"top causes {top}{more}"
    )


def _node_loss_verdicts(summary: Mapping[str, Any], origin: float) -> list[str]:
    """One line per node lost during the run (from the generator's summary)."""
    lines = []
    for loss in summary.get("node_losses") or ():
        if not isinstance(loss, Mapping):
            continue
        lost_at = loss.get("lost_at")
        when = f" at +{lost_at - origin:.1f} s" if isinstance(lost_at, (int, float)) else ""
        down = loss.get("seconds_down")
        how_long = f"down {down:.1f} s" if isinstance(down, (int, float)) else "never back"
        lines.append(
            f"node {loss.get('node', '?')} lost{when}, {how_long}: "
            f"{loss.get('calls_lost', 0):,} calls lost ({loss.get('reason', 'no reason given')})"
        )
    return lines


def analyse(
    directory: str | os.PathLike[str],
    *,
    channels: int | None = None,
    lost_causes: Iterable[str] = (),
) -> Analysis:
    """Load a results directory and compute what the report shows.

    ``channels``: N for the Erlang B check (default: the ``limit`` setting);
    ``lost_causes``: see :func:`~switchy.measure.metrics.traffic_check`.
    Raises :class:`~switchy.measure.store.ResultsError` as :func:`~switchy.measure.load_run`.
    """
    info, cdr = load_run(directory)
    stats = load_stats(directory)
    sysstats = load_sysstats(directory)
    settings = info.settings
    limit = numeric_setting(settings, "limit")
    if channels is None and limit is not None:
        channels = int(limit)
    offers = offer_times(cdr)
    first, last = float(offers.min()), float(offers.max())
    origin = min(first, info.start_time) if info.start_time is not None else first
    counts = totals(cdr)
    failures = failures_by_cause(cdr)
    check = traffic_check(cdr, channels, lost_causes=lost_causes)
    target = _target_rate(settings, stats, (first, last))
    peak = peak_calls_up(cdr)
    poisson = "poisson" in str(settings.get("arrivals", "")).lower()
    blocking = check.describe()
    if check.consistent is False and not poisson and settings.get("arrivals"):
        blocking += " (Erlang B assumes Poisson arrivals)"
    verdicts = (
        rate_verdict(check.arrival_rate, target, counts.offered, poisson),
        _limit_verdict(peak, limit),
        blocking,
        _failure_verdict(counts, failures),
        *_node_loss_verdicts(info.summary, origin),
        *([f"the run failed: {info.summary['error']}"] if info.summary.get("error") else []),
    )
    return Analysis(
        info=info,
        cdr=cdr,
        totals=counts,
        failures=failures,
        percentiles=latency_percentiles(cdr),
        check=check,
        stats=stats,
        sysstats=sysstats,
        origin=origin,
        target_rate=target,
        limit=limit,
        peak_calls_up=peak,
        verdicts=verdicts,
    )


def figures(analysis: Analysis) -> dict[str, Figure]:
    """The report's figures, by file name stem."""
    # Imported here: matplotlib costs a second to import, and analyse() does not need it.
    from switchy.measure.plots import plot_cdr

    return plot_cdr(
        analysis.cdr,
        analysis.info.settings,
        stats=analysis.stats,
        sysstats=analysis.sysstats,
        origin=analysis.origin,
        check=analysis.check,
    )


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI)
    return buffer.getvalue()


def save_figures(figures: Mapping[str, Figure], directory: str | os.PathLike[str]) -> list[Path]:
    """Write each figure as ``<name>.png`` in ``directory``; return the paths."""
    paths = []
    for name, figure in figures.items():
        path = Path(directory) / f"{name}.png"
        path.write_bytes(_png(figure))
        paths.append(path)
    return paths


# -- HTML -----------------------------------------------------------------------------------
_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px;
       color: #222; padding: 0 1em; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ccc; }
.meta { color: #555; }
.banner { background: #fff3cd; border: 1px solid #e0b000; padding: 0.8em 1em;
          margin: 1em 0; border-radius: 4px; }
ul.verdicts li { margin: 0.3em 0; }
table { border-collapse: collapse; margin: 0.6em 0; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.7em; text-align: right; }
th { background: #f4f4f4; } td.text, th.text { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
dt { font-weight: bold; margin-top: 0.5em; } dd { margin-left: 1.5em; }
"""

_DEFINITIONS = (
    ("offered", "every call the arrival process produced; offered = attempted + blocked"),
    ("blocked", "offered calls the generator did not attempt: limit calls were already up"),
    ("attempted", "offered calls the generator originated (seizures): answered + failed"),
    ("ASR", "answer-seizure ratio: answered / attempted"),
    (
        "NER",
        "network effectiveness ratio (ITU-T E.411): (answered + failures caused by the "
        "called user or the caller: " + ", ".join(sorted(NER_CAUSES)) + ") / attempted",
    ),
    ("setup latency", "caller leg created (INVITE) to caller leg answered (200 OK)"),
    (
        "post dial delay",
        "caller leg created to its first progress (180), progress with media (183) or answer",
    ),
    ("answer latency", "callee leg answered to caller leg answered: the answer's way back"),
    ("originate latency", "originate requested to its job result (generator clock)"),
    ("schedule lag", "scheduled time to originate request: how late the generator was"),
    (
        "calls up",
        "a call is up from its caller leg's creation to its last leg's hangup: what the "
        "limit caps and what the Erlang B check's holding time measures",
    ),
    ("erlangs", "answered calls in progress (answer to hangup): the carried traffic"),
    (
        "offered load A",
        "arrival rate × mean holding time: (offered − 1) / (last − first offer time) × "
        "mean time up of the calls not lost",
    ),
    (
        "Erlang B check",
        "calls offered in the first three mean holding times are left out (the run "
        "starts empty); Erlang B is consistent when it lies in the Wilson interval or "
        "in the batch-means interval (10 equal stretches of time), which accounts for "
        "blocked calls coming in bursts",
    ),
    ("percentiles", "linear interpolation between the closest ranks (numpy's default)"),
)


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _utc(timestamp: float | None) -> str:
    if timestamp is None:
        return "—"
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _number(value: float | None, digits: int = 2) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:,.{digits}f}"


def _table(header: Iterable[str], rows: Iterable[Iterable[Any]], text_columns: int = 1) -> str:
    def cells(values: Iterable[Any], tag: str) -> str:
        return "".join(
            f"<{tag}{' class=text' if i < text_columns else ''}>{_e(value)}</{tag}>"
            for i, value in enumerate(values)
        )

    body = "".join(f"<tr>{cells(row, 'td')}</tr>" for row in rows)
    return f"<table><tr>{cells(header, 'th')}</tr>{body}</table>"


def _setting_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _totals_rows(analysis: Analysis) -> list[tuple[str, str]]:
    counts, check = analysis.totals, analysis.check
    return [
        ("offered", f"{counts.offered:,}"),
        ("attempted", f"{counts.attempted:,}"),
        ("blocked (at the generator)", f"{counts.blocked:,} ({percent(counts.blocking)})"),
        ("answered", f"{counts.answered:,}"),
        ("failed", f"{counts.failed:,}"),
        ("ASR", percent(counts.asr)),
        ("NER", percent(counts.ner)),
        ("offer window (first to last offer)", f"{_number(check.window, 1)} s"),
        ("offered rate", f"{_number(check.arrival_rate)} calls/s"),
        ("target rate", f"{_number(analysis.target_rate)} calls/s"),
        ("limit", _number(analysis.limit, 0)),
        ("most calls up at once", f"{analysis.peak_calls_up:,}"),
        *_host_rows(analysis.sysstats),
    ]


def _host_rows(sysstats: pd.DataFrame | None) -> list[tuple[str, str]]:
    """Mean and peak CPU and memory of the generator's host and process, from sysstats.csv."""
    rows = []
    for column, label in (
        ("cpu_percent", "generator host CPU, mean / peak"),
        ("generator_cpu_percent", "generator process CPU, mean / peak (100 = one core)"),
        ("memory_percent", "generator host memory in use, mean / peak"),
    ):
        if sysstats is not None and column in sysstats.columns:
            values = pd.to_numeric(sysstats[column], errors="coerce").dropna()
            if len(values):
                rows.append((label, f"{values.mean():.1f}% / {values.max():.1f}%"))
    return rows


def _check_rows(check: TrafficCheck) -> list[tuple[str, str]]:
    low, high = check.interval
    warmup = f"{_number(check.warmup, 1)} s"
    if not check.steady:
        warmup = "none: the run was shorter than its warm-up (blocking biased low)"
    batches = "— (run too short)"
    if check.batch_interval is not None:
        batches = " – ".join(percent(bound) for bound in check.batch_interval)
    return [
        ("arrival rate λ", f"{_number(check.arrival_rate, 3)} calls/s"),
        ("mean holding time h (time up, calls not lost)", f"{_number(check.mean_holding, 3)} s"),
        ("offered load A = λ·h", f"{_number(check.offered_erlangs)} E"),
        ("carried load (mean answered calls in progress)", f"{_number(check.carried_erlangs)} E"),
        ("channels N", "—" if check.channels is None else str(check.channels)),
        ("warm-up left out", warmup),
        (
            "lost calls",
            f"{check.lost:,} of {check.offered:,}"
            + (f" (blocked + {', '.join(check.lost_causes)})" if check.lost_causes else ""),
        ),
        ("measured blocking", percent(check.blocking)),
        (f"{check.confidence:.0%} Wilson interval", f"{percent(low)} – {percent(high)}"),
        (f"{check.confidence:.0%} batch-means interval", batches),
        ("Erlang B(A, N)", "—" if check.erlang_b is None else percent(check.erlang_b)),
        (
            "verdict",
            {True: "consistent", False: "not consistent", None: "no check"}[check.consistent],
        ),
    ]


def _percentile_rows(table: pd.DataFrame) -> list[list[str]]:
    rows = []
    for (group, metric), values in table.iterrows():
        rows.append(
            [
                str(group),
                str(metric).replace("_", " "),
                f"{int(values['count']):,}",
                *(_number(values[name] * 1000.0, 1) for name in ("p50", "p90", "p99", "max")),
            ]
        )
    return rows


def _node_rows(cdr: pd.DataFrame) -> list[list[Any]]:
    attempted = cdr[cdr["node"].notna()]
    if attempted.empty:
        return []
    table = pd.crosstab(attempted["node"].astype(str), attempted["outcome"].astype(str))
    return [
        [node, *(f"{int(table.loc[node].get(name, 0)):,}" for name in ("answered", "failed"))]
        for node in table.index
    ]


def render_html(analysis: Analysis, images: Mapping[str, bytes]) -> str:
    """The report page of ``analysis``, with ``images`` (PNG bytes by name) embedded."""
    info = analysis.info
    parts = [
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>",
        f"<title>switchy report: {_e(info.directory.name)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>switchy load test report</h1><p class=meta>{_e(info.directory)}<br>"
        f"status <b>{_e(info.status)}</b> · started {_e(_utc(info.start_time))} · "
        f"ended {_e(_utc(info.end_time))} · switchy {_e(info.switchy_version or '?')}</p>",
    ]
    if info.partial:
        parts.append(
            "<div class=banner><b>Partial data:</b> "
            + _e("; ".join(info.problems))
            + f". The figures and tables use the {info.rows:,} complete call "
            "records present.</div>"
        )
    parts.append("<h2>Verdict</h2><ul class=verdicts>")
    parts += [f"<li>{_e(line)}</li>" for line in analysis.verdicts]
    parts.append("</ul>")
    parts.append("<h2>Totals</h2>" + _table(("", "value"), _totals_rows(analysis)))
    parts.append("<h2>Erlang B check</h2>" + _table(("", "value"), _check_rows(analysis.check)))
    if not analysis.percentiles.empty:
        parts.append(
            "<h2>Latencies (milliseconds)</h2>"
            + _table(
                ("app", "metric", "calls", "p50", "p90", "p99", "max"),
                _percentile_rows(analysis.percentiles),
                text_columns=2,
            )
        )
    if len(analysis.failures):
        attempted = analysis.totals.attempted
        parts.append(
            "<h2>Failures by cause</h2>"
            + _table(
                ("cause", "calls", "% of attempted", "counts as delivered in NER"),
                [
                    (
                        cause,
                        f"{calls:,}",
                        percent(calls / attempted),
                        "yes" if cause in NER_CAUSES else "no",
                    )
                    for cause, calls in analysis.failures.items()
                ],
            )
        )
    nodes = _node_rows(analysis.cdr)
    if nodes:
        parts.append("<h2>Nodes</h2>" + _table(("node", "answered", "failed"), nodes))
    if info.settings:
        parts.append(
            "<h2>Settings</h2>"
            + _table(
                ("setting", "value"),
                sorted((key, _setting_text(value)) for key, value in info.settings.items()),
                text_columns=2,
            )
        )
    if info.summary:
        parts.append(
            "<h2>Generator summary</h2>"
            + _table(
                ("", "value"),
                sorted((key, _setting_text(value)) for key, value in info.summary.items()),
                text_columns=2,
            )
        )
    parts.append("<h2>Figures</h2>")
    for name, png in images.items():
        encoded = base64.b64encode(png).decode("ascii")
        parts.append(f"<img alt='{_e(name)}' src='data:image/png;base64,{encoded}'>")
    parts.append("<h2>Definitions</h2><dl>")
    parts += [f"<dt>{_e(term)}</dt><dd>{_e(text)}</dd>" for term, text in _DEFINITIONS]
    parts.append("</dl></body></html>\n")
    return "\n".join(parts)


def write_report(
    directory: str | os.PathLike[str],
    *,
    channels: int | None = None,
    lost_causes: Iterable[str] = (),
) -> Path:
    """Write ``report.html`` and the figures' PNG files into ``directory``; return the
    report's path. Arguments as :func:`analyse`, whose errors it raises."""
    analysis = analyse(directory, channels=channels, lost_causes=lost_causes)
    return write_analysis(analysis)


def write_analysis(analysis: Analysis) -> Path:
    """Write the report of an :func:`analyse` result into its results directory."""
    directory = analysis.info.directory
    images = {name: _png(figure) for name, figure in figures(analysis).items()}
    for name, png in images.items():
        (directory / f"{name}.png").write_bytes(png)
    path = directory / REPORT_HTML
    path.write_text(render_html(analysis, images), encoding="utf-8")
    return path
