"""Figures of a load test, as matplotlib ``Figure`` objects (for notebooks and reports).

Figures are built with ``matplotlib.figure.Figure`` directly, not pyplot: they
render with the Agg backend whatever the environment, need no display and leave
pyplot's global state alone. Times on the x axes are seconds since ``origin``
(epoch; default: the first offer time), latencies in milliseconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from switchy.measure.metrics import (
    LATENCIES,
    TrafficCheck,
    call_metrics,
    failures_timeseries,
    latency_timeseries,
    load_timeseries,
    numeric_setting,
    offer_times,
    time_origin,
    traffic_check,
)
from switchy.traffic import erlang_b

__all__ = [
    "plot_blocking",
    "plot_cdr",
    "plot_concurrency",
    "plot_failures",
    "plot_latency_histograms",
    "plot_rate",
    "plot_setup_latency",
    "plot_sysstats",
]

_SIZE = (9.0, 4.0)
_TIME = "seconds since start"


def _axes(title: str, ylabel: str, size: tuple[float, float] = _SIZE) -> tuple[Figure, Axes]:
    figure = Figure(figsize=size, layout="constrained")
    axes = figure.add_subplot()
    axes.set_title(title)
    axes.set_xlabel(_TIME)
    axes.set_ylabel(ylabel)
    axes.grid(True, alpha=0.3)
    return figure, axes


def _no_data(axes: Axes, text: str) -> None:
    axes.text(0.5, 0.5, text, ha="center", va="center", transform=axes.transAxes, color="gray")


def plot_rate(
    cdr: pd.DataFrame,
    *,
    target_rate: float | None = None,
    stats: pd.DataFrame | None = None,
    origin: float | None = None,
    window: float = 10.0,
) -> Figure:
    """Offered and attempted calls per second (``window``-second moving averages, and
    offered per second as bars) against the target rate: ``stats.csv``'s
    ``target_rate`` over time when ``stats`` is given, else ``target_rate``. Up to
    the last offer: the calls still up afterwards are no part of the rate."""
    origin = time_origin(cdr, origin)
    series = load_timeseries(cdr, origin=origin, window=window)
    last_offer = float(offer_times(cdr).max()) - origin
    series = series[series.index <= last_offer]
    figure, axes = _axes("Call rate: achieved vs target", "calls per second")
    axes.bar(
        series.index,
        series["offered_rate"],
        width=1.0,
        align="edge",
        color="lightsteelblue",
        label="offered, per second",
    )
    axes.plot(
        series.index + 1.0,
        series["offered_rate_avg"],
        color="tab:blue",
        label=f"offered, {window:g} s average",
    )
    axes.plot(
        series.index + 1.0,
        series["call_rate_avg"],
        color="tab:green",
        label=f"attempted, {window:g} s average",
    )
    if stats is not None and {"timestamp", "target_rate"} <= set(stats.columns):
        times = stats["timestamp"] - origin
        during = times <= last_offer + 1.0
        axes.step(
            times[during],
            stats["target_rate"][during],
            where="post",
            color="tab:red",
            linestyle="--",
            label="target",
        )
    elif target_rate is not None:
        axes.axhline(target_rate, color="tab:red", linestyle="--", label="target")
    axes.legend(loc="lower right")
    return figure


def plot_concurrency(
    cdr: pd.DataFrame, *, limit: float | None = None, origin: float | None = None
) -> Figure:
    """Calls up (caller created to last hangup: what ``limit`` caps; per-second mean
    and peak) and answered calls in progress (erlangs) against the limit."""
    series = load_timeseries(cdr, origin=time_origin(cdr, origin))
    figure, axes = _axes("Concurrent calls vs limit", "calls")
    axes.step(
        series.index,
        series["calls_up_max"],
        where="post",
        color="tab:orange",
        linewidth=0.8,
        label="calls up, peak in each second",
    )
    axes.plot(series.index + 0.5, series["calls_up"], color="tab:blue", label="calls up, mean")
    axes.plot(
        series.index + 0.5, series["erlangs"], color="tab:green", label="answered calls (erlangs)"
    )
    if limit is not None:
        axes.axhline(limit, color="tab:red", linestyle="--", label=f"limit {limit:g}")
    axes.legend(loc="lower right")
    return figure


def plot_setup_latency(
    cdr: pd.DataFrame, *, origin: float | None = None, metric: str = "setup_latency"
) -> Figure:
    """p50, p90 and p99 of the setup latency (or another ``metric``) per time bin."""
    table = latency_timeseries(cdr, metric, origin=time_origin(cdr, origin))
    figure, axes = _axes(f"{metric.replace('_', ' ').capitalize()} percentiles", "milliseconds")
    if table.empty:
        _no_data(axes, f"no call has a {metric.replace('_', ' ')}")
        return figure
    for name, color in (("p50", "tab:green"), ("p90", "tab:orange"), ("p99", "tab:red")):
        axes.plot(table.index, table[name] * 1000.0, marker=".", color=color, label=name)
    axes.set_ylim(bottom=0)
    axes.legend(loc="upper left")
    return figure


def plot_failures(cdr: pd.DataFrame, *, origin: float | None = None, top: int = 5) -> Figure:
    """Failed calls per time bin, stacked by cause (the ``top`` causes, then OTHER)."""
    table = failures_timeseries(cdr, origin=time_origin(cdr, origin), top=top)
    figure, axes = _axes("Failures by cause", "failed calls per bin")
    if table.empty or not table.to_numpy().any():
        _no_data(axes, "no failed call")
        return figure
    width = float(table.index[1] - table.index[0]) if len(table.index) > 1 else 1.0
    bottom = np.zeros(len(table))
    for cause in table.columns:
        axes.bar(table.index, table[cause], width=width, bottom=bottom, align="edge", label=cause)
        bottom += table[cause].to_numpy()
    axes.legend(loc="upper left", fontsize="small")
    return figure


def plot_blocking(check: TrafficCheck) -> Figure:
    """Erlang B(A, N) against offered load A, with the measured blocking and its
    intervals: Wilson's, and the batch-means one beside it when there is one."""
    figure, axes = _axes("Measured blocking vs Erlang B", "blocking probability")
    axes.set_xlabel("offered load A (erlangs)")
    load = check.offered_erlangs
    if check.channels is None or not np.isfinite(load):
        _no_data(axes, "no channel count or offered load: no Erlang B curve")
        return figure
    top = max(load, float(check.channels)) * 1.5 or 1.0
    loads = np.linspace(0.0, top, 120)
    axes.plot(
        loads,
        [erlang_b(a, check.channels) for a in loads],
        color="tab:blue",
        label=f"Erlang B, N = {check.channels}",
    )
    intervals = [("Wilson", check.interval, "tab:red")]
    if check.batch_interval is not None:
        intervals.append(("batch means", check.batch_interval, "tab:purple"))
    for i, (name, (low, high), color) in enumerate(intervals):
        axes.errorbar(
            [load + i * top / 100.0],  # side by side
            [check.blocking],
            yerr=[[check.blocking - low], [high - check.blocking]],
            fmt="o",
            color=color,
            capsize=4,
            label=f"measured, {check.confidence:.0%} {name} interval",
        )
    axes.legend(loc="upper left")
    return figure


def plot_latency_histograms(cdr: pd.DataFrame) -> Figure:
    """Histograms of every latency of :func:`~switchy.measure.metrics.call_metrics`.

    Each shows the calls up to its 99.9th percentile, so that a few outliers do not
    squeeze the rest into one bar; the title says how many are left out.
    """
    metrics = call_metrics(cdr)
    figure = Figure(figsize=(12.0, 6.5), layout="constrained")
    figure.suptitle("Latency histograms")
    grid = figure.subplots(2, 3).ravel()
    for axes, name in zip(grid, LATENCIES, strict=False):
        values = metrics[name].dropna().to_numpy() * 1000.0
        axes.set_xlabel("milliseconds")
        axes.grid(True, alpha=0.3)
        title = name.replace("_", " ")
        if not len(values):
            axes.set_title(title)
            _no_data(axes, "no data")
            continue
        cut = float(np.quantile(values, 0.999))
        shown = values[values <= cut]
        axes.hist(shown, bins=50, color="tab:blue")
        hidden = len(values) - len(shown)
        axes.set_title(f"{title} ({hidden} above p99.9 not shown)" if hidden else title)
    grid[-1].set_axis_off()
    return figure


def plot_sysstats(sysstats: pd.DataFrame, *, origin: float | None = None) -> Figure:
    """CPU of the generator's host (all cores, and each core in grey) and of the
    processes followed, and their resident memory (a leak shows as a rising line)."""
    start = float(sysstats["timestamp"].min()) if origin is None else origin
    time = sysstats["timestamp"] - start
    figure = Figure(figsize=(9.0, 6.0), layout="constrained")
    cpu, memory = figure.subplots(2, 1, sharex=True)
    cpu.set_title("Generator host")
    cores = [name for name in sysstats.columns if name[:3] == "cpu" and name[3:-8].isdigit()]
    for name in cores:
        cpu.plot(time, sysstats[name], color="lightgray", linewidth=0.7)
    cpu.plot(time, sysstats["cpu_percent"], color="black", label="host, all cores")
    processes = [
        name.removesuffix("_cpu_percent")
        for name in sysstats.columns
        if name.endswith("_cpu_percent") and name != "cpu_percent" and name not in cores
    ]
    for name in processes:
        cpu.plot(time, sysstats[f"{name}_cpu_percent"], label=name)
        if f"{name}_rss_mb" in sysstats.columns:
            memory.plot(time, sysstats[f"{name}_rss_mb"], label=name)
    cpu.set_ylabel("CPU percent (one core = 100)")
    cpu.set_ylim(bottom=0)
    cpu.grid(True, alpha=0.3)
    cpu.legend(loc="upper left", fontsize="small")
    memory.set_ylabel("resident memory (MB)")
    memory.set_xlabel(_TIME)
    memory.set_ylim(bottom=0)
    memory.grid(True, alpha=0.3)
    if processes:
        memory.legend(loc="upper left", fontsize="small")
    return figure


def plot_cdr(
    cdr: pd.DataFrame,
    settings: Mapping[str, Any] | None = None,
    *,
    stats: pd.DataFrame | None = None,
    sysstats: pd.DataFrame | None = None,
    origin: float | None = None,
    channels: int | None = None,
    lost_causes: Iterable[str] = (),
    check: TrafficCheck | None = None,
) -> dict[str, Figure]:
    """Every figure of a run, by name (the PNG file names without ``.png``).

    ``settings`` give the target ``rate`` and the ``limit``; ``channels`` (default:
    the limit) and ``lost_causes`` go to :func:`~switchy.measure.metrics.traffic_check`,
    unless its result is given as ``check``.
    """
    settings = settings or {}
    origin = time_origin(cdr, origin)
    limit = numeric_setting(settings, "limit")
    if channels is None and limit is not None:
        channels = int(limit)
    figures = {
        "rate": plot_rate(
            cdr, target_rate=numeric_setting(settings, "rate"), stats=stats, origin=origin
        ),
        "concurrency": plot_concurrency(cdr, limit=limit, origin=origin),
        "setup_latency": plot_setup_latency(cdr, origin=origin),
        "failures": plot_failures(cdr, origin=origin),
        "blocking": plot_blocking(check or traffic_check(cdr, channels, lost_causes=lost_causes)),
        "latency_histograms": plot_latency_histograms(cdr),
    }
    if sysstats is not None and "timestamp" in sysstats.columns:
        figures["sysstats"] = plot_sysstats(sysstats, origin=origin)
    return figures
