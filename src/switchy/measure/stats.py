"""Periodic statistics of a running load test: ``stats.csv``, one row per interval.

In the spirit of SIPp's ``-trace_stat`` file: a header line, then one row each
time the generator calls :meth:`StatsRecorder.record` (every ``interval``
seconds), written to disk at once. Comma-separated, ``.`` decimal point, empty
field for a missing value; the columns (a stable set, in this order):

============================  ====================================================
``timestamp``                 when the row was taken, epoch seconds (generator clock)
``elapsed``                   seconds since the test started
``interval``                  seconds since the previous row (since the start for the first)
``target_rate``               calls/s the arrival process aimed at when the row was taken
``offered_rate``              calls offered per second during the interval
``achieved_rate``             calls attempted (originated) per second during the interval
``active_calls``              calls up when the row was taken
``offered``, ``attempted``,   calls offered / attempted / blocked during the interval
``blocked``                   (from the generator's counters)
``answered``, ``failed``      calls whose CDR row was completed during the interval,
                              answered / failed
``*_total``                   the same five counts since the start
``failures_by_cause``         the interval's failed calls per hangup cause,
                              ``CAUSE=n`` joined by ``;``, most frequent first
                              (ties by name), ``UNKNOWN`` for a call without a cause
``setup_latency_p50``,        median and 99th percentile (linear interpolation)
``setup_latency_p99``         of the setup latency (caller created to answered,
                              seconds) of the calls answered in the interval
============================  ====================================================

The causes share one column so that the header never changes during a run,
whichever causes appear: CSV readers and spreadsheets see fixed columns.
"""

from __future__ import annotations

import csv
import math
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from switchy.measure.cdr import ANSWERED, FAILED, CallRecord

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "STATS_COLUMNS",
    "STATS_CSV",
    "Gauges",
    "StatsRecorder",
    "format_causes",
    "load_stats",
    "read_complete_csv",
]

STATS_CSV = "stats.csv"
_COUNTS = ("offered", "attempted", "blocked", "answered", "failed")
#: The columns of ``stats.csv``, in order.
STATS_COLUMNS: tuple[str, ...] = (
    "timestamp",
    "elapsed",
    "interval",
    "target_rate",
    "offered_rate",
    "achieved_rate",
    "active_calls",
    *_COUNTS,
    *(f"{name}_total" for name in _COUNTS),
    "failures_by_cause",
    "setup_latency_p50",
    "setup_latency_p99",
)


@dataclass(frozen=True, slots=True)
class Gauges:
    """The generator's live counters when a stats row is taken."""

    #: Seconds since the test started.
    elapsed: float
    #: Calls per second the arrival process aims at now.
    target_rate: float
    #: Calls offered, attempted and blocked since the start (offered = attempted + blocked).
    offered: int
    attempted: int
    blocked: int
    #: Calls up now.
    active_calls: int


def _percentile(ordered: Sequence[float], quantile: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), of sorted values."""
    position = (len(ordered) - 1) * quantile
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _number(value: float | None, digits: int) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def format_causes(counts: Counter[str]) -> str:
    """``CAUSE=n;CAUSE=n``, most frequent first, ties by name."""
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return ";".join(f"{cause}={count}" for cause, count in ranked)


class StatsRecorder:
    """Appends one row of periodic statistics to ``RESULTS_DIR/stats.csv`` per call.

    The generator calls :meth:`record` every ``interval`` seconds. Each call opens
    the file, appends one line and closes it, so every row is on disk at once and
    nothing needs closing.
    """

    def __init__(self, directory: str | os.PathLike[str], interval: float = 5.0) -> None:
        if not interval > 0.0:
            raise ValueError(f"interval must be > 0, got {interval!r}")
        self.path = Path(directory) / STATS_CSV
        self.interval = interval
        self._previous: Gauges | None = None
        self._answered = 0
        self._failed = 0

    def record(self, now: float, gauges: Gauges, completed: Iterable[CallRecord]) -> dict[str, str]:
        """Append the row for the interval ending at ``now`` (epoch seconds); return it.

        ``completed``: the CDR rows completed since the previous call.
        """
        previous = self._previous or Gauges(0.0, gauges.target_rate, 0, 0, 0, 0)
        answered = 0
        causes: Counter[str] = Counter()
        setups: list[float] = []
        for call in completed:
            if call.outcome == ANSWERED:
                answered += 1
                if call.caller_answer_time is not None and call.caller_create_time is not None:
                    setups.append(call.caller_answer_time - call.caller_create_time)
            elif call.outcome == FAILED:
                causes[call.failure_cause or "UNKNOWN"] += 1
        failed = sum(causes.values())
        self._answered += answered
        self._failed += failed
        span = gauges.elapsed - previous.elapsed
        per_interval = {
            "offered": gauges.offered - previous.offered,
            "attempted": gauges.attempted - previous.attempted,
            "blocked": gauges.blocked - previous.blocked,
            "answered": answered,
            "failed": failed,
        }
        cumulative = {
            "offered": gauges.offered,
            "attempted": gauges.attempted,
            "blocked": gauges.blocked,
            "answered": self._answered,
            "failed": self._failed,
        }
        setups.sort()
        row = {
            "timestamp": _number(now, 3),
            "elapsed": _number(gauges.elapsed, 3),
            "interval": _number(span, 3),
            "target_rate": _number(gauges.target_rate, 3),
            "offered_rate": _number(per_interval["offered"] / span if span > 0 else None, 3),
            "achieved_rate": _number(per_interval["attempted"] / span if span > 0 else None, 3),
            "active_calls": str(gauges.active_calls),
            **{name: str(count) for name, count in per_interval.items()},
            **{f"{name}_total": str(count) for name, count in cumulative.items()},
            "failures_by_cause": format_causes(causes),
            "setup_latency_p50": _number(_percentile(setups, 0.5) if setups else None, 6),
            "setup_latency_p99": _number(_percentile(setups, 0.99) if setups else None, 6),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists() or self.path.stat().st_size == 0
        with open(self.path, "a", encoding="utf-8", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=STATS_COLUMNS, lineterminator="\n")
            if new:
                writer.writeheader()
            writer.writerow(row)
        self._previous = gauges
        return row


def read_complete_csv(path: Path) -> pd.DataFrame:
    """A CSV file with a header line, without a last line cut short by a kill."""
    import io

    import pandas as pd

    data = path.read_bytes()
    complete = data[: data.rfind(b"\n") + 1]
    if not complete:
        return pd.DataFrame()
    return pd.read_csv(io.BytesIO(complete), keep_default_na=False, na_values=[""])


def load_stats(directory: str | os.PathLike[str]) -> pd.DataFrame | None:
    """``stats.csv`` of a results directory as a DataFrame, or None if there is none."""
    path = Path(directory) / STATS_CSV
    if not path.exists():
        return None
    frame = read_complete_csv(path)
    return frame if not frame.empty else None
