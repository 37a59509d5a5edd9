"""stats.csv: one row per interval, fixed columns, per-interval and cumulative counts."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from switchy.measure.cdr import ANSWERED, FAILED, CallRecord
from switchy.measure.stats import STATS_COLUMNS, STATS_CSV, Gauges, StatsRecorder, load_stats

from .cdrs import T


def answered(index: int, setup: float) -> CallRecord:
    return CallRecord(
        index, T, ANSWERED, caller_create_time=T + 1.0, caller_answer_time=T + 1.0 + setup
    )


def failed(index: int, cause: str | None) -> CallRecord:
    return CallRecord(index, T, FAILED, failure_cause=cause)


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def test_rows_per_interval(tmp_path: Path) -> None:
    recorder = StatsRecorder(tmp_path, interval=5.0)
    first = [answered(i, setup) for i, setup in enumerate([0.1, 0.2, 0.3, 0.4])]
    first += [failed(10, "USER_BUSY"), failed(11, "NO_ANSWER"), failed(12, "USER_BUSY")]
    recorder.record(T + 5, Gauges(5.0, 10.0, 50, 45, 5, 12), first)
    path = tmp_path / STATS_CSV
    assert path.read_text().splitlines()[0] == ",".join(STATS_COLUMNS)
    assert len(rows(path)) == 1  # on disk at once

    recorder.record(T + 10, Gauges(10.0, 20.0, 150, 130, 20, 30), [failed(13, None)])
    recorder.record(T + 15, Gauges(15.0, 20.0, 150, 130, 20, 0), [])
    one, two, three = rows(path)

    assert one["timestamp"] == f"{T + 5:.3f}"
    assert (one["elapsed"], one["interval"], one["target_rate"]) == ("5.000", "5.000", "10.000")
    assert (one["offered_rate"], one["achieved_rate"]) == ("10.000", "9.000")
    assert one["active_calls"] == "12"
    counts = ("offered", "attempted", "blocked", "answered", "failed")
    assert [one[name] for name in counts] == ["50", "45", "5", "4", "3"]
    assert one["failures_by_cause"] == "USER_BUSY=2;NO_ANSWER=1"
    # linear interpolation over 0.1, 0.2, 0.3, 0.4
    assert float(one["setup_latency_p50"]) == pytest.approx(0.25)
    assert float(one["setup_latency_p99"]) == pytest.approx(0.397)

    assert [two[name] for name in counts] == ["100", "85", "15", "0", "1"]
    assert [two[f"{name}_total"] for name in counts] == ["150", "130", "20", "4", "4"]
    assert (two["offered_rate"], two["achieved_rate"]) == ("20.000", "17.000")
    assert two["failures_by_cause"] == "UNKNOWN=1"
    assert two["setup_latency_p50"] == two["setup_latency_p99"] == ""

    assert [three[name] for name in counts] == ["0", "0", "0", "0", "0"]
    assert three["failures_by_cause"] == ""
    assert three["active_calls"] == "0"


def test_cause_ties_are_in_name_order(tmp_path: Path) -> None:
    recorder = StatsRecorder(tmp_path)
    calls = [failed(1, "USER_BUSY"), failed(2, "CALL_REJECTED"), failed(3, "NO_ANSWER")]
    row = recorder.record(T, Gauges(1.0, 1.0, 3, 3, 0, 0), calls)
    assert row["failures_by_cause"] == "CALL_REJECTED=1;NO_ANSWER=1;USER_BUSY=1"


def test_load_stats_skips_a_cut_off_last_line(tmp_path: Path) -> None:
    assert load_stats(tmp_path) is None
    recorder = StatsRecorder(tmp_path)
    recorder.record(T + 1, Gauges(1.0, 2.0, 2, 2, 0, 1), [answered(0, 0.05)])
    recorder.record(T + 2, Gauges(2.0, 2.0, 4, 4, 0, 1), [])
    path = tmp_path / STATS_CSV
    path.write_bytes(path.read_bytes()[:-10])
    frame = load_stats(tmp_path)
    assert frame is not None
    assert list(frame.columns) == list(STATS_COLUMNS)
    assert frame["offered_total"].tolist() == [2]
    assert frame["setup_latency_p50"].tolist() == [0.05]


def test_interval_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="interval"):
        StatsRecorder(tmp_path, interval=0)
