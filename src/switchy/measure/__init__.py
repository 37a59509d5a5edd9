"""Measurements of load tests: CDR storage, metrics, periodic and system statistics, reports.

Knows nothing of the load generator: it gets :class:`~switchy.measure.cdr.CallRecord`
rows and counters, and reads results directories (layout in
:mod:`switchy.measure.store`).

The names below are imported on first use, so that ``import switchy.measure.cdr``
(which the load generator does) does not pay for pandas and pyarrow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from switchy.measure.metrics import (
        Measurers,
        Totals,
        TrafficCheck,
        call_metrics,
        failures_by_cause,
        latency_percentiles,
        load_timeseries,
        totals,
        traffic_check,
    )
    from switchy.measure.report import analyse, write_report
    from switchy.measure.stats import Gauges, StatsRecorder, load_stats
    from switchy.measure.store import (
        CDRStore,
        ResultsError,
        RunInfo,
        export_csv,
        load,
        load_run,
    )
    from switchy.measure.sysstats import SysStats, load_sysstats

_EXPORTS = {
    "CDRStore": "store",
    "ResultsError": "store",
    "RunInfo": "store",
    "export_csv": "store",
    "load": "store",
    "load_run": "store",
    "Measurers": "metrics",
    "Totals": "metrics",
    "TrafficCheck": "metrics",
    "call_metrics": "metrics",
    "failures_by_cause": "metrics",
    "latency_percentiles": "metrics",
    "load_timeseries": "metrics",
    "totals": "metrics",
    "traffic_check": "metrics",
    "Gauges": "stats",
    "StatsRecorder": "stats",
    "load_stats": "stats",
    "SysStats": "sysstats",
    "load_sysstats": "sysstats",
    "analyse": "report",
    "write_report": "report",
}

__all__ = [
    "CDRStore",
    "Gauges",
    "Measurers",
    "ResultsError",
    "RunInfo",
    "StatsRecorder",
    "SysStats",
    "Totals",
    "TrafficCheck",
    "analyse",
    "call_metrics",
    "export_csv",
    "failures_by_cause",
    "latency_percentiles",
    "load",
    "load_run",
    "load_stats",
    "load_sysstats",
    "load_timeseries",
    "totals",
    "traffic_check",
    "write_report",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
