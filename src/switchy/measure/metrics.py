"""Metrics of a load test, computed from its CDR DataFrame (:func:`switchy.measure.load`).

Every function takes the CDR as loaded (one row per offered call, columns of
:data:`switchy.measure.cdr.COLUMNS`) and is vectorised. Durations are in seconds.
A duration is computed only when both its timestamps are present, so it is
missing (NaN) for calls that never reached the later event. A duration between
two clocks would be off by their offset, so each is taken on one clock (see
:mod:`switchy.measure.cdr`): the generator's, or the originating FreeSWITCH's;
except where the callee leg's times come in, which are those of the node the
call came back to: a node on another host adds the hosts' clock offset.

Vocabulary:

- *offered*: every call the arrival process produced, one CDR row each;
- *blocked*: offered calls the generator did not attempt (its ``limit`` calls were up);
- *attempted* (seizures): offered calls the generator originated, answered or failed;
  offered = attempted + blocked, always;
- *answered* / *failed*: attempted calls that were / were not answered;
- *offer time*: when an offered call left the generator: its originate request
  time, or its scheduled time when it was blocked (generator clock).

Percentiles (p50, p90, p99) interpolate linearly between the closest ranks
(numpy's and pandas' default), over the calls that have the metric.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from switchy.measure.cdr import ANSWERED, BLOCKED, FAILED
from switchy.measure.store import CDRStore, load_run
from switchy.traffic import blocking_interval, erlang_b

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "BATCHES",
    "LATENCIES",
    "NER_CAUSES",
    "PERCENTILES",
    "WARMUP_HOLDING_TIMES",
    "Measurers",
    "Totals",
    "TrafficCheck",
    "call_metrics",
    "calls_up_intervals",
    "failures_by_cause",
    "failures_timeseries",
    "latency_percentiles",
    "latency_timeseries",
    "load_timeseries",
    "numeric_setting",
    "offer_times",
    "peak_calls_up",
    "percent",
    "time_origin",
    "totals",
    "traffic_check",
]

#: Hangup causes that count as delivered calls in the network effectiveness ratio.
#: ITU-T E.411 counts a seizure as effective when it ends in an answer, a user busy,
#: a ring-no-answer or a terminal rejection/unavailability: the network did its job
#: and the user or terminal decided. Mapped to Q.850 causes (FreeSWITCH names):
#: USER_BUSY (17); NO_USER_RESPONSE (18) and NO_ANSWER (19), ring no answer;
#: SUBSCRIBER_ABSENT (20), terminal unavailable; CALL_REJECTED (21), terminal
#: rejection. E.411 also leaves the caller's own errors out of network failures:
#: UNALLOCATED_NUMBER (1), NUMBER_CHANGED (22) and INVALID_NUMBER_FORMAT (28), a
#: wrong number dialled, count as delivered too. Congestion, routing, timeout and
#: server-failure causes (NORMAL_CIRCUIT_CONGESTION, NO_ROUTE_DESTINATION,
#: RECOVERY_ON_TIMER_EXPIRE...) are the network's failures and are not in the set.
NER_CAUSES: frozenset[str] = frozenset(
    {
        "USER_BUSY",
        "NO_USER_RESPONSE",
        "NO_ANSWER",
        "SUBSCRIBER_ABSENT",
        "CALL_REJECTED",
        "UNALLOCATED_NUMBER",
        "NUMBER_CHANGED",
        "INVALID_NUMBER_FORMAT",
    }
)

#: The per-call latencies of :func:`call_metrics`, seconds.
LATENCIES = (
    "setup_latency",
    "post_dial_delay",
    "answer_latency",
    "originate_latency",
    "schedule_lag",
)
#: The percentiles reported: (column name, quantile).
PERCENTILES = (("p50", 0.50), ("p90", 0.90), ("p99", 0.99))
#: ``failure_cause`` given to failed calls that have none.
UNKNOWN_CAUSE = "UNKNOWN"
_IDENTIFYING = ("offered_index", "app", "node", "outcome", "failure_cause")
_Floats = npt.NDArray[np.float64]


def _column(cdr: pd.DataFrame, name: str) -> _Floats:
    return np.asarray(cdr[name].to_numpy(dtype="float64", na_value=np.nan), dtype=np.float64)


def _is(cdr: pd.DataFrame, outcome: str) -> npt.NDArray[np.bool_]:
    return np.asarray(cdr["outcome"].eq(outcome).to_numpy(dtype=bool, na_value=False), dtype=bool)


def numeric_setting(settings: Mapping[str, Any], key: str) -> float | None:
    """``settings[key]`` as a number (``30`` or ``"30"``), or None when it is missing, not
    a number, or not > 0 (a ``limit`` of 0 or None means no limit)."""
    value = settings.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if 0.0 < number < math.inf else None


def percent(value: float) -> str:
    """A probability as a percentage that keeps small values readable: ``1.25%``,
    ``0.0031%``; ``0%`` for zero, ``—`` for NaN."""
    if not math.isfinite(value):
        return "—"
    if value == 0.0:
        return "0%"
    if abs(value) < 1e-4:
        return f"{value * 100:.2g}%"
    return f"{value:.2%}"


def offer_times(cdr: pd.DataFrame) -> pd.Series:
    """When each offered call left the generator: ``request_time``, else ``scheduled_time``."""
    return cdr["request_time"].fillna(cdr["scheduled_time"]).rename("offer_time")


# -- per call -------------------------------------------------------------------------------
def call_metrics(cdr: pd.DataFrame) -> pd.DataFrame:
    """One row per offered call: identifying columns, then these durations (seconds):

    - ``setup_latency``: caller leg created (INVITE sent) to caller leg answered
      (200 OK received); answered calls only.
    - ``post_dial_delay``: caller leg created to its first response showing the far
      end was reached: the first of progress (180), progress with media (183) or
      answer (200, for a call answered without ringing), as RFC 6076's session
      request delay.
    - ``answer_latency``: callee leg answered to caller leg answered: how long the
      answer took to cross the device under test. Calls with both legs on a generator.
    - ``originate_latency``: originate requested to its BACKGROUND_JOB result
      (generator clock): what the originating FreeSWITCH took to accept the call.
    - ``schedule_lag``: scheduled time to originate request (generator clock): how
      late the generator sent the call; a growing lag means it could not keep up.
    - ``call_duration``: caller answered to caller hung up (the call's conversation time).

    Also ``offer_time`` (epoch), ``active_calls`` and ``active_sessions`` (up on the
    originating node when the caller leg was created).
    """
    create = _column(cdr, "caller_create_time")
    answer = _column(cdr, "caller_answer_time")
    first_response = np.fmin(
        np.fmin(_column(cdr, "caller_progress_time"), _column(cdr, "caller_progress_media_time")),
        answer,
    )
    request = _column(cdr, "request_time")
    metrics = pd.DataFrame({name: cdr[name] for name in _IDENTIFYING})
    metrics["offer_time"] = offer_times(cdr)
    metrics["setup_latency"] = answer - create
    metrics["post_dial_delay"] = first_response - create
    metrics["answer_latency"] = answer - _column(cdr, "callee_answer_time")
    metrics["originate_latency"] = _column(cdr, "job_result_time") - request
    metrics["schedule_lag"] = request - _column(cdr, "scheduled_time")
    metrics["call_duration"] = _column(cdr, "caller_hangup_time") - answer
    metrics["active_calls"] = cdr["active_calls_at_create"]
    metrics["active_sessions"] = cdr["active_sessions_at_create"]
    return metrics


# -- totals and ratios ----------------------------------------------------------------------
@dataclass(frozen=True)
class Totals:
    """Call counts of a run (see the module docstring for the words)."""

    offered: int
    attempted: int
    blocked: int
    answered: int
    failed: int
    #: Failed calls whose cause is in the NER cause set used.
    ner_failures: int

    @property
    def asr(self) -> float:
        """Answer-seizure ratio: answered / attempted (NaN with no attempt)."""
        return self.answered / self.attempted if self.attempted else math.nan

    @property
    def ner(self) -> float:
        """Network effectiveness ratio (ITU-T E.411): (answered + failures with a cause
        in the NER set, :data:`NER_CAUSES` by default) / attempted (NaN with no attempt)."""
        return (self.answered + self.ner_failures) / self.attempted if self.attempted else math.nan

    @property
    def blocking(self) -> float:
        """Fraction of offered calls blocked at the generator (NaN with none offered)."""
        return self.blocked / self.offered if self.offered else math.nan


def totals(cdr: pd.DataFrame, ner_causes: Iterable[str] = NER_CAUSES) -> Totals:
    """Counts of offered, attempted, blocked, answered and failed calls, for ASR and NER."""
    answered = int(_is(cdr, ANSWERED).sum())
    failed_mask = _is(cdr, FAILED)
    blocked = int(_is(cdr, BLOCKED).sum())
    causes = cdr.loc[failed_mask, "failure_cause"]
    ner_failures = int(causes.isin(frozenset(ner_causes)).sum())
    failed = int(failed_mask.sum())
    return Totals(
        offered=answered + failed + blocked,
        attempted=answered + failed,
        blocked=blocked,
        answered=answered,
        failed=failed,
        ner_failures=ner_failures,
    )


def failures_by_cause(cdr: pd.DataFrame) -> pd.Series:
    """Failed calls per ``failure_cause`` (``UNKNOWN`` when none), most frequent first.

    Ties are in cause-name order, so the result is stable.
    """
    causes = cdr.loc[_is(cdr, FAILED), "failure_cause"].astype(object).fillna(UNKNOWN_CAUSE)
    counts = causes.value_counts()
    order = sorted(counts.index, key=lambda cause: (-counts[cause], str(cause)))
    return counts.reindex(order).astype("int64").rename("calls").rename_axis("cause")


def latency_percentiles(cdr: pd.DataFrame, by: str | None = "app") -> pd.DataFrame:
    """p50, p90, p99 and max of every latency of :func:`call_metrics`, per group and overall.

    Rows are indexed by (group, metric): one group per value of the CDR column
    ``by`` (``app`` by default; ``(none)`` for rows without one) and the group
    ``all`` for every call; columns ``count``, ``p50``, ``p90``, ``p99``, ``max``
    (seconds). Metrics no call has are left out.
    """
    metrics = call_metrics(cdr)
    long = metrics.melt(
        id_vars=[by] if by else [], value_vars=list(LATENCIES), var_name="metric"
    ).dropna(subset=["value"])
    if by:
        long["group"] = long[by].astype(object).fillna("(none)").astype(str)
        every = long.assign(group="all")
        long = pd.concat([every, long]) if long["group"].nunique() > 1 else every
    else:
        long["group"] = "all"
    grouped = long.groupby(["group", "metric"], sort=False)["value"]
    table = pd.DataFrame({"count": grouped.count()})
    for name, quantile in PERCENTILES:
        table[name] = grouped.quantile(quantile)
    table["max"] = grouped.max()
    groups = ["all", *sorted(set(table.index.get_level_values("group")) - {"all"})]
    rows = [(group, metric) for group in groups for metric in LATENCIES]
    return table.reindex([row for row in rows if row in table.index])


# -- over time ------------------------------------------------------------------------------
def calls_up_intervals(cdr: pd.DataFrame) -> tuple[_Floats, _Floats]:
    """(start, end) epoch times of each attempted call's occupancy, where both are known.

    A call is *up* from its caller leg's creation (the originate request if no leg
    was created) to its last leg's hangup (the originate's result if no leg hung
    up): the time it held one of the generator's ``limit`` slots and a channel on
    the device under test. Ends before their start (clock offsets) are clipped.
    """
    create = _column(cdr, "caller_create_time")
    start = np.where(np.isnan(create), _column(cdr, "request_time"), create)
    hangup = np.fmax(_column(cdr, "caller_hangup_time"), _column(cdr, "callee_hangup_time"))
    end = np.where(np.isnan(hangup), _column(cdr, "job_result_time"), hangup)
    keep = ~(np.isnan(start) | np.isnan(end)) & ~_is(cdr, BLOCKED)
    return start[keep], np.maximum(end[keep], start[keep])


def _answered_intervals(cdr: pd.DataFrame) -> tuple[_Floats, _Floats]:
    start = _column(cdr, "caller_answer_time")
    end = _column(cdr, "caller_hangup_time")
    keep = ~(np.isnan(start) | np.isnan(end))
    return start[keep], np.maximum(end[keep], start[keep])


def _level_steps(starts: _Floats, ends: _Floats) -> tuple[_Floats, _Floats]:
    """Event times and the number of intervals open just after each, in time order.

    At equal times ends come first: a slot freed and taken at the same instant
    never counts twice.
    """
    times = np.concatenate([ends, starts])
    steps = np.concatenate([-np.ones(len(ends)), np.ones(len(starts))])
    order = np.lexsort((steps, times))
    return times[order], np.cumsum(steps[order])


def peak_calls_up(cdr: pd.DataFrame) -> int:
    """The most calls up at once (see :func:`calls_up_intervals`), 0 with none."""
    _, levels = _level_steps(*calls_up_intervals(cdr))
    return int(levels.max()) if len(levels) else 0


def _time_average(starts: _Floats, ends: _Floats, edges: _Floats) -> _Floats:
    """Mean number of open intervals between consecutive edges.

    F(t) = Σ max(0, min(t, end) − start) is the integral of the count up to t; it is
    Σ_{start<t} (t − start) − Σ_{end<t} (t − end), read off sorted cumulative sums.
    """

    def integral(points: _Floats) -> _Floats:
        points = np.sort(points)
        sums = np.concatenate([[0.0], np.cumsum(points)])
        below = np.searchsorted(points, edges, side="left")
        return np.asarray(below * edges - sums[below], dtype=np.float64)

    area = integral(starts) - integral(ends)
    return np.asarray(np.diff(area) / np.diff(edges), dtype=np.float64)


def _peaks(starts: _Floats, ends: _Floats, edges: _Floats) -> _Floats:
    """Most intervals open at once between consecutive edges."""
    times, levels = _level_steps(starts, ends)
    bins = len(edges) - 1
    if not len(times):
        return np.zeros(bins)
    # The level a bin starts with is the one after the last event before its edge.
    before = np.searchsorted(times, edges[:-1], side="left") - 1
    peaks = np.where(before >= 0, levels[np.maximum(before, 0)], 0.0)
    inside = np.searchsorted(edges, times, side="right") - 1
    mask = (inside >= 0) & (inside < bins)
    np.maximum.at(peaks, inside[mask], levels[mask])
    return peaks


def time_origin(cdr: pd.DataFrame, origin: float | None = None) -> float:
    """``origin`` if given, else the first offer time: where time axes start (epoch)."""
    if origin is not None:
        return float(origin)
    first = offer_times(cdr).min()
    return float(first) if pd.notna(first) else 0.0


def _bin_of(times: pd.Series | _Floats, origin: float, width: float) -> Any:
    return np.maximum(np.floor((np.asarray(times, dtype="float64") - origin) / width), 0)


def load_timeseries(
    cdr: pd.DataFrame,
    *,
    origin: float | None = None,
    bin_seconds: float = 1.0,
    window: float = 10.0,
) -> pd.DataFrame:
    """The load second by second (or per ``bin_seconds``), indexed by ``time``.

    ``time`` is the bin's start in seconds since ``origin`` (epoch; default: the
    first offer time); bins run until the last offer or hangup. Columns:

    - ``offered``, ``attempted``, ``blocked``, ``answered``, ``failed``: calls
      whose offer time falls in the bin, by outcome (offered = attempted + blocked
      in every bin);
    - ``offered_rate`` and ``call_rate``: offered and attempted calls per second in
      the bin; ``offered_rate_avg`` and ``call_rate_avg``: their trailing moving
      averages over ``window`` seconds (fewer at the start);
    - ``calls_up``: time-average number of calls up during the bin (caller created
      to last hangup, :func:`calls_up_intervals`): the traffic the generator's
      ``limit`` caps; ``calls_up_max``: the most up at once during the bin;
    - ``erlangs``: time-average number of answered calls in progress (caller
      answered to caller hung up): the carried traffic, in erlangs.
    """
    if not bin_seconds > 0.0:
        raise ValueError(f"bin_seconds must be > 0, got {bin_seconds!r}")
    origin = time_origin(cdr, origin)
    # Times relative to the origin: sums of epoch times would lose the milliseconds.
    offers = offer_times(cdr).to_numpy(dtype="float64", na_value=np.nan) - origin
    up_start, up_end = (times - origin for times in calls_up_intervals(cdr))
    answer_start, answer_end = (times - origin for times in _answered_intervals(cdr))
    last = np.nanmax(np.concatenate([[0.0], offers, up_end, answer_end]))
    bins = math.floor(last / bin_seconds) + 1
    edges = bin_seconds * np.arange(bins + 1, dtype="float64")

    index = _bin_of(offers, 0.0, bin_seconds)
    frame = pd.DataFrame(index=pd.RangeIndex(bins))
    for outcome in (ANSWERED, FAILED, BLOCKED):
        mask = _is(cdr, outcome) & ~np.isnan(index)
        counts = np.bincount(index[mask].astype("int64"), minlength=bins)
        frame[outcome] = counts[:bins]
    frame["attempted"] = frame[ANSWERED] + frame[FAILED]
    frame["offered"] = frame["attempted"] + frame[BLOCKED]
    frame["offered_rate"] = frame["offered"] / bin_seconds
    frame["call_rate"] = frame["attempted"] / bin_seconds
    span = max(1, round(window / bin_seconds))
    frame["offered_rate_avg"] = frame["offered_rate"].rolling(span, min_periods=1).mean()
    frame["call_rate_avg"] = frame["call_rate"].rolling(span, min_periods=1).mean()
    frame["calls_up"] = _time_average(up_start, up_end, edges)
    frame["calls_up_max"] = _peaks(up_start, up_end, edges).astype("int64")
    frame["erlangs"] = _time_average(answer_start, answer_end, edges)
    frame.index = pd.Index(edges[:-1], name="time")
    columns = ["offered", "attempted", "blocked", "answered", "failed"]
    return frame[columns + [name for name in frame.columns if name not in columns]]


def _bin_width(cdr: pd.DataFrame, origin: float, bins: int) -> float:
    """A whole number of seconds giving at most about ``bins`` bins over the run."""
    span = float(np.nanmax(offer_times(cdr).to_numpy(dtype="float64", na_value=origin)) - origin)
    return float(max(1, math.ceil(max(span, 1.0) / bins)))


def latency_timeseries(
    cdr: pd.DataFrame,
    metric: str = "setup_latency",
    *,
    origin: float | None = None,
    bin_seconds: float | None = None,
) -> pd.DataFrame:
    """Percentiles of one :func:`call_metrics` latency per bin of offer time.

    Indexed by ``time`` (bin start, seconds since ``origin``); columns ``count``,
    ``p50``, ``p90``, ``p99``, ``max``; only bins with calls having the metric.
    ``bin_seconds`` defaults to whole seconds giving about 100 bins.
    """
    if metric not in LATENCIES and metric != "call_duration":
        raise ValueError(f"unknown metric {metric!r}; use one of {LATENCIES}")
    origin = time_origin(cdr, origin)
    width = bin_seconds or _bin_width(cdr, origin, 100)
    metrics = call_metrics(cdr)
    values = metrics[metric]
    keep = values.notna().to_numpy()
    bins = _bin_of(metrics["offer_time"][keep], origin, width) * width
    grouped = values[keep].groupby(pd.Index(bins, name="time"))
    table = pd.DataFrame({"count": grouped.count()})
    for name, quantile in PERCENTILES:
        table[name] = grouped.quantile(quantile)
    table["max"] = grouped.max()
    return table


def failures_timeseries(
    cdr: pd.DataFrame,
    *,
    origin: float | None = None,
    bin_seconds: float | None = None,
    top: int = 5,
) -> pd.DataFrame:
    """Failed calls per bin of offer time and cause: the ``top`` most frequent causes
    of the run, the rest summed as ``OTHER``. Indexed by ``time`` (bin start, seconds
    since ``origin``), every bin from the first offer to the last; bins as in
    :func:`latency_timeseries`."""
    origin = time_origin(cdr, origin)
    width = bin_seconds or _bin_width(cdr, origin, 100)
    ranked = failures_by_cause(cdr)
    keep = set(ranked.index[:top])
    failed = _is(cdr, FAILED)
    causes = cdr.loc[failed, "failure_cause"].astype(object).fillna(UNKNOWN_CAUSE)
    causes = causes.where(causes.isin(keep), "OTHER")
    bins = _bin_of(offer_times(cdr)[failed], origin, width)
    counts = pd.crosstab(bins, causes.to_numpy())
    last = np.nanmax(_bin_of(offer_times(cdr), origin, width), initial=0.0)
    all_bins = np.arange(int(last) + 1, dtype="float64")
    columns = [cause for cause in [*ranked.index[:top], "OTHER"] if cause in counts.columns]
    table = counts.reindex(index=all_bins, columns=columns, fill_value=0).astype("int64")
    table.index = pd.Index(all_bins * width, name="time")
    table.columns.name = "cause"
    return table


# -- teletraffic check ----------------------------------------------------------------------
#: The warm-up of :func:`traffic_check`, in mean holding times: a run starts with
#: no call up, and an infinite-server system's mean occupancy reaches 1 − e⁻³ = 95 %
#: of its steady state after three mean (exponential) holding times.
WARMUP_HOLDING_TIMES = 3.0
#: Batches of the batch-means interval of :func:`traffic_check`.
BATCHES = 10


def _student_t(probability: float, df: int) -> float:
    """Quantile of Student's t with ``df`` degrees of freedom.

    Cornish–Fisher expansion around the normal quantile z (terms to 1/df⁴): for
    df = 9 it is within 2e-3 of the exact value up to probability 0.9995.
    """
    z = NormalDist().inv_cdf(probability)
    v = float(df)
    return (
        z
        + (z**3 + z) / (4 * v)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * v**3)
        + (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / (92160 * v**4)
    )


def _batch_means_interval(
    offers: _Floats,
    lost: npt.NDArray[np.bool_],
    span: tuple[float, float],
    confidence: float,
    shortest: float,
) -> tuple[float, float] | None:
    """Interval for the blocking by non-overlapping batch means, or None.

    The offers in ``span`` are cut into :data:`BATCHES` equal stretches of time;
    each stretch's blocking is one sample, and the interval is their mean ± t·s/√k.
    Stretches much longer than a holding time are nearly independent, which single
    calls are not. None when a stretch would be shorter than ``shortest`` seconds
    or hold no call.
    """
    start, end = span
    if not (end - start) / BATCHES >= shortest > 0.0:
        return None
    inside = (offers >= start) & (offers <= end)
    batch = np.minimum(
        ((offers[inside] - start) / (end - start) * BATCHES).astype(int), BATCHES - 1
    )
    calls = np.bincount(batch, minlength=BATCHES)
    if not calls.all():
        return None
    ratios = np.bincount(batch, weights=lost[inside], minlength=BATCHES) / calls
    mean = float(lost[inside].sum() / calls.sum())
    half = (
        _student_t((1.0 + confidence) / 2.0, BATCHES - 1)
        * float(np.std(ratios, ddof=1))
        / math.sqrt(BATCHES)
    )
    return max(0.0, mean - half), min(1.0, mean + half)


@dataclass(frozen=True)
class TrafficCheck:
    """Measured blocking against Erlang B for the measured offered load.

    - window: seconds from the first to the last offer time;
    - arrival_rate λ = (n − 1) / window for the n offered calls, calls per
      second (the unbiased rate of n arrivals spanning ``window``);
    - mean_holding h: mean occupancy (caller created to last hangup,
      :func:`calls_up_intervals`) of the calls that were not lost: how long a call
      holds a channel, which is what a loss system's servers see;
    - offered_erlangs A = λ·h;
    - carried_erlangs: total conversation time of answered calls (answer to
      hangup) / window: the mean number of answered calls in progress;
    - warmup: seconds after the first offer whose calls are left out of the
      blocking, because the run starts with no call up and blocks less than in
      steady state (default: :data:`WARMUP_HOLDING_TIMES` mean holding times);
      ``steady`` is False when the run was shorter than that: then every call
      counts and the blocking is biased low;
    - offered, lost: calls offered after the warm-up, and those of them lost:
      blocked by the generator, or failed with a cause in ``lost_causes`` (the
      device's congestion causes, to check the device's blocking against its
      capacity); blocking = lost / offered, with its Wilson score interval at
      ``confidence``;
    - batch_interval: the blocking's interval by batch means (:data:`BATCHES`
      equal stretches of time after the warm-up, each at least a mean holding
      time long; None when the run is too short). The Wilson interval treats
      calls as independent, but blocked calls come in bursts (while all
      channels are busy), which makes it too narrow: on simulated M/M/N/N runs
      its 99 % interval missed Erlang B about one run in seven. Batch means
      see the bursts;
    - erlang_b = B(A, channels), and ``consistent`` whether it lies in the
      Wilson interval or the batch-means one (the wider uncertainty of the two;
      None without a channel count or an offered load).

    Erlang B assumes Poisson arrivals at a steady rate: with deterministic
    arrivals the traffic is smoother and is blocked less than it predicts.
    """

    offered: int
    lost: int
    window: float
    arrival_rate: float
    mean_holding: float
    offered_erlangs: float
    carried_erlangs: float
    channels: int | None
    blocking: float
    interval: tuple[float, float]
    confidence: float
    erlang_b: float | None
    consistent: bool | None
    lost_causes: tuple[str, ...] = ()
    warmup: float = 0.0
    steady: bool = True
    batch_interval: tuple[float, float] | None = None

    def describe(self) -> str:
        """One line: measured blocking, its interval, Erlang B and the verdict."""
        low, high = self.interval
        after = f"after a {self.warmup:.0f} s warm-up" if self.warmup else "from the start"
        measured = (
            f"measured blocking {percent(self.blocking)} ({self.lost:,} of {self.offered:,} "
            f"{after}; {self.confidence:.0%} interval {percent(low)}–{percent(high)}"
        )
        if self.batch_interval is not None:
            low, high = self.batch_interval
            measured += f", by batch means {percent(low)}–{percent(high)}"
        measured += ")"
        if not self.steady:
            measured += " (run shorter than its warm-up: biased low)"
        if self.erlang_b is None:
            reason = "no channel count" if self.channels is None else "no offered load"
            return f"{measured}; no Erlang B check ({reason})"
        model = (
            f"Erlang B {percent(self.erlang_b)} for A = {self.offered_erlangs:.2f} E "
            f"on N = {self.channels}"
        )
        if self.consistent:
            return f"blocking consistent with Erlang B: {measured} vs {model}"
        side = "higher" if self.blocking > self.erlang_b else "lower"
        return f"blocking {side} than Erlang B predicts: {measured} vs {model}"


def traffic_check(
    cdr: pd.DataFrame,
    channels: int | None = None,
    *,
    lost_causes: Iterable[str] = (),
    confidence: float = 0.99,
    warmup: float | None = None,
) -> TrafficCheck:
    """Compare the measured blocking with Erlang B(A, ``channels``) (see :class:`TrafficCheck`).

    ``channels``: the generator's ``limit``, or the device's capacity when
    ``lost_causes`` names the causes it rejects calls with when full.
    ``warmup``: seconds left out at the start (default: three mean holding times).
    """
    causes = tuple(sorted(set(lost_causes)))
    failed_lost = _is(cdr, FAILED) & cdr["failure_cause"].isin(causes).to_numpy(
        bool, na_value=False
    )
    lost_mask = _is(cdr, BLOCKED) | failed_lost
    offers = offer_times(cdr).to_numpy(dtype="float64", na_value=np.nan)
    first, last = (np.nanmin(offers), np.nanmax(offers)) if len(cdr) else (0.0, 0.0)
    window = float(last - first)
    rate = (len(cdr) - 1) / window if window > 0.0 else math.nan

    starts, ends = calls_up_intervals(cdr[~lost_mask])
    holding = float(np.mean(ends - starts)) if len(starts) else math.nan
    answer_start, answer_end = _answered_intervals(cdr)
    carried = float(np.sum(answer_end - answer_start)) / window if window > 0.0 else math.nan
    load = rate * holding

    if warmup is None:
        warmup = WARMUP_HOLDING_TIMES * holding if math.isfinite(holding) else 0.0
    counted = offers >= first + warmup
    steady = bool(counted.any())
    if not steady:  # nothing after the warm-up: count everything, and say so
        warmup, counted = 0.0, np.ones(len(cdr), dtype=bool)
    offered = int(counted.sum())
    lost = int((lost_mask & counted).sum())
    interval = blocking_interval(lost, offered, confidence) if offered else (0.0, 1.0)
    batches = (
        _batch_means_interval(offers, lost_mask, (first + warmup, last), confidence, holding)
        if steady and math.isfinite(holding)
        else None
    )
    predicted: float | None = None
    consistent: bool | None = None
    if channels is not None and math.isfinite(load):
        predicted = erlang_b(load, int(channels))
        low, high = (
            interval
            if batches is None
            else (min(interval[0], batches[0]), max(interval[1], batches[1]))
        )
        consistent = low <= predicted <= high
    return TrafficCheck(
        offered=offered,
        lost=lost,
        window=window,
        arrival_rate=rate,
        mean_holding=holding,
        offered_erlangs=load,
        carried_erlangs=carried,
        channels=None if channels is None else int(channels),
        blocking=lost / offered if offered else math.nan,
        interval=interval,
        confidence=confidence,
        erlang_b=predicted,
        consistent=consistent,
        lost_causes=causes,
        warmup=float(warmup),
        steady=steady,
        batch_interval=batches,
    )


# -- the original access paths --------------------------------------------------------------
class _Stores:
    def __init__(self, measurers: Measurers) -> None:
        self._measurers = measurers

    @property
    def CDR(self) -> pd.DataFrame:  # the name the original switchy used
        """The CDR rows so far."""
        return self._measurers.cdr()


class _Ops:
    def __init__(self, measurers: Measurers) -> None:
        self._measurers = measurers

    @property
    def call_metrics(self) -> pd.DataFrame:
        """:func:`call_metrics` of the rows so far."""
        return call_metrics(self._measurers.cdr())


class Measurers:
    """``measurers.stores.CDR``, ``measurers.ops.call_metrics`` and ``measurers.plot()``.

    Built on a live :class:`~switchy.measure.store.CDRStore` (each access reads the
    rows so far) or on a results directory (re-read at each access, so a running
    run's newest flushed rows show up).
    """

    def __init__(self, source: CDRStore | str | os.PathLike[str]) -> None:
        self.source = source
        self.stores = _Stores(self)
        self.ops = _Ops(self)

    def _snapshot(self) -> tuple[pd.DataFrame, dict[str, Any]]:
        if isinstance(self.source, CDRStore):
            return self.source.dataframe(), dict(self.source.settings)
        info, cdr = load_run(self.source)
        return cdr, info.settings

    def cdr(self) -> pd.DataFrame:
        """The CDR rows so far."""
        return self._snapshot()[0]

    def plot(self) -> dict[str, Figure]:
        """Figures of the rows so far, by name (see :func:`switchy.measure.plots.plot_cdr`)."""
        # Imported here: matplotlib costs a second to import, and the load generator
        # imports this module without ever plotting.
        from switchy.measure.plots import plot_cdr

        cdr, settings = self._snapshot()
        return plot_cdr(cdr, settings)
