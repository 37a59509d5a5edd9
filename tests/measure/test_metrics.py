"""Metrics against the hand-made CDR of cdrs.py, whose answers are worked out here."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from switchy.measure.metrics import (
    NER_CAUSES,
    Measurers,
    call_metrics,
    failures_by_cause,
    failures_timeseries,
    latency_percentiles,
    latency_timeseries,
    load_timeseries,
    numeric_setting,
    peak_calls_up,
    percent,
    totals,
    traffic_check,
)
from switchy.measure.store import CDRStore, frame_from_records
from switchy.traffic import blocking_interval, erlang_b

from .cdrs import T, hand_made, simulated_run

approx = pytest.approx


@pytest.fixture
def cdr() -> pd.DataFrame:
    return frame_from_records(hand_made())


def test_call_metrics(cdr: pd.DataFrame) -> None:
    metrics = call_metrics(cdr)
    assert metrics["offered_index"].tolist() == list(range(6))
    assert metrics["app"].tolist() == ["a", "b", "a", "a", "a", "b"]
    nan = math.nan
    expected = {
        # caller create -> caller answer
        "setup_latency": [0.300, 0.500, nan, nan, nan, nan],
        # create -> first of progress / progress media / answer (call 1 had no 18x)
        "post_dial_delay": [0.080, 0.500, 0.090, nan, nan, nan],
        # callee answer -> caller answer
        "answer_latency": [0.020, 0.030, nan, nan, nan, nan],
        # request -> job result
        "originate_latency": [0.040, 0.080, 0.200, 0.055, nan, 0.510],
        # scheduled -> request
        "schedule_lag": [0.010, 0.020, 0.0, 0.005, nan, 0.0],
        # caller answer -> caller hangup
        "call_duration": [10.0, 5.0, nan, nan, nan, nan],
    }
    for name, values in expected.items():
        assert metrics[name].tolist() == approx(values, abs=1e-6, nan_ok=True), name
    assert metrics["offer_time"].tolist() == approx(
        [T + 0.010, T + 1.020, T + 2.0, T + 3.005, T + 3.5, T + 4.0]
    )
    assert metrics["active_calls"].tolist()[:2] == [0, 1]


def test_totals_asr_and_ner(cdr: pd.DataFrame) -> None:
    counts = totals(cdr)
    assert (counts.offered, counts.attempted, counts.blocked) == (6, 5, 1)
    assert (counts.answered, counts.failed) == (2, 3)
    assert counts.offered == counts.attempted + counts.blocked
    assert counts.asr == approx(2 / 5)
    # USER_BUSY is a delivered call for NER; congestion and no-cause failures are not.
    assert counts.ner_failures == 1
    assert counts.ner == approx(3 / 5)
    assert counts.blocking == approx(1 / 6)
    assert totals(cdr, ner_causes=()).ner == approx(2 / 5)
    assert math.isnan(totals(cdr.iloc[[4]]).asr)


def test_ner_cause_set() -> None:
    assert {"USER_BUSY", "NO_ANSWER", "NO_USER_RESPONSE", "CALL_REJECTED"} <= NER_CAUSES
    assert not {"NORMAL_CIRCUIT_CONGESTION", "NO_ROUTE_DESTINATION", "NODE_LOST"} & NER_CAUSES


def test_failures_by_cause(cdr: pd.DataFrame) -> None:
    counts = failures_by_cause(cdr)
    assert counts.to_dict() == {"NORMAL_CIRCUIT_CONGESTION": 1, "UNKNOWN": 1, "USER_BUSY": 1}
    assert list(counts.index) == ["NORMAL_CIRCUIT_CONGESTION", "UNKNOWN", "USER_BUSY"]
    more = frame_from_records([*hand_made(), *hand_made()[2:3]])
    assert failures_by_cause(more).index[0] == "USER_BUSY"


def test_latency_percentiles(cdr: pd.DataFrame) -> None:
    table = latency_percentiles(cdr)
    overall = table.loc[("all", "setup_latency")]
    assert overall["count"] == 2
    # linear interpolation between 0.3 and 0.5
    assert [overall["p50"], overall["p90"], overall["p99"], overall["max"]] == approx(
        [0.4, 0.48, 0.498, 0.5]
    )
    assert table.loc[("a", "setup_latency"), "p99"] == approx(0.3)
    assert table.loc[("b", "originate_latency"), "max"] == approx(0.51)
    assert table.loc[("all", "originate_latency"), "count"] == 5
    groups = list(dict.fromkeys(table.index.get_level_values("group")))
    assert groups == ["all", "a", "b"]
    assert list(latency_percentiles(cdr, by=None).index.get_level_values("group").unique()) == [
        "all"
    ]


def test_load_timeseries(cdr: pd.DataFrame) -> None:
    series = load_timeseries(cdr, origin=T, window=2.0)
    assert list(series.index) == [float(second) for second in range(11)]  # last hangup 10.33
    assert series["offered"].tolist()[:6] == [1, 1, 1, 2, 1, 0]
    assert series["blocked"].tolist()[:5] == [0, 0, 0, 1, 0]
    assert series["answered"].tolist()[:3] == [1, 1, 0]
    assert (series["offered"] == series["attempted"] + series["blocked"]).all()
    assert series["offered"].sum() == 6
    assert series["call_rate"].tolist()[:6] == [1, 1, 1, 1, 1, 0]
    assert series["offered_rate_avg"].tolist()[:6] == approx([1.0, 1.0, 1.0, 1.5, 1.5, 0.5])
    # calls up, time-averaged: call 0 from 0.020, call 1 from 1.030, call 2 for 0.18 s...
    assert series["calls_up"].tolist()[:5] == approx([0.98, 1.97, 2.18, 2.055, 2.49])
    assert series["calls_up"].iloc[10] == approx(0.33)
    assert series["calls_up_max"].tolist() == [1, 2, 3, 3, 3, 2, 2, 1, 1, 1, 1]
    # answered calls in progress: call 0 from 0.32 to 10.32, call 1 from 1.53 to 6.53
    assert series["erlangs"].tolist() == approx([0.68, 1.47, 2, 2, 2, 2, 1.53, 1, 1, 1, 0.32])


def test_calls_up_mean_is_exact_for_epoch_times() -> None:
    """Time averages come from sums of times: they must not lose precision at 1.7e9."""
    records = simulated_run(2000, 20.0, 5.0, 1000, seed=5)
    cdr = frame_from_records(records)
    series = load_timeseries(cdr)
    starts = cdr["caller_create_time"].to_numpy()
    ends = np.fmax(cdr["caller_hangup_time"].to_numpy(), cdr["callee_hangup_time"].to_numpy())
    origin = cdr["request_time"].min()
    second = 30.0
    overlap = np.clip(
        np.minimum(ends, origin + second + 1) - np.maximum(starts, origin + second), 0, None
    )
    assert series.loc[second, "calls_up"] == approx(overlap.sum(), abs=1e-6)


def test_peak_calls_up(cdr: pd.DataFrame) -> None:
    assert peak_calls_up(cdr) == 3
    assert peak_calls_up(cdr.iloc[[4]]) == 0
    # a call ending when another starts does not overlap it
    back_to_back = cdr.iloc[[2]].copy()
    back_to_back.loc[:, "caller_create_time"] = T + 2.190
    back_to_back.loc[:, "request_time"] = T + 2.190
    assert peak_calls_up(pd.concat([cdr.iloc[[2]], back_to_back])) == 1


def test_latency_and_failure_timeseries(cdr: pd.DataFrame) -> None:
    latency = latency_timeseries(cdr, "originate_latency", origin=T, bin_seconds=2.0)
    assert list(latency.index) == [0.0, 2.0, 4.0]
    assert latency["count"].tolist() == [2, 2, 1]
    assert latency["max"].tolist() == approx([0.08, 0.2, 0.51])
    with pytest.raises(ValueError, match="unknown metric"):
        latency_timeseries(cdr, "nonsense")

    failures = failures_timeseries(cdr, origin=T, bin_seconds=1.0, top=2)
    assert list(failures.columns) == ["NORMAL_CIRCUIT_CONGESTION", "UNKNOWN", "OTHER"]
    assert list(failures.index) == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert failures.loc[2.0, "OTHER"] == 1  # USER_BUSY, beyond the top 2
    assert failures.loc[3.0, "NORMAL_CIRCUIT_CONGESTION"] == 1
    assert failures.to_numpy().sum() == 3


def test_traffic_check_on_the_hand_made_cdr(cdr: pd.DataFrame) -> None:
    check = traffic_check(cdr, 2)
    window = 4.0 - 0.010  # first to last offer
    assert check.window == approx(window)
    assert check.arrival_rate == approx(5 / window)
    # time up of the five attempted calls: create (or request) to last hangup (or job result)
    holding = (10.31 + 5.51 + 0.18 + 0.055 + 0.49) / 5
    assert check.mean_holding == approx(holding)
    assert check.offered_erlangs == approx(5 / window * holding)
    assert check.carried_erlangs == approx(15.0 / window)
    assert (check.offered, check.lost) == (6, 1)
    assert check.interval == approx(blocking_interval(1, 6, 0.99))
    assert check.erlang_b == approx(erlang_b(5 / window * holding, 2))
    assert check.consistent is True
    assert check.describe().startswith("blocking consistent with Erlang B")
    # three mean holding times (9.9 s) outlast the 4 s of offers: every call counts
    assert (check.steady, check.warmup, check.batch_interval) == (False, 0.0, None)
    assert "biased low" in check.describe()

    no_channels = traffic_check(cdr)
    assert no_channels.erlang_b is None and no_channels.consistent is None
    assert "no channel count" in no_channels.describe()


def test_traffic_check_leaves_the_warm_up_out(cdr: pd.DataFrame) -> None:
    check = traffic_check(cdr, 2, warmup=1.0)
    assert (check.offered, check.lost, check.steady) == (5, 1, True)  # offers from T + 1.02 on
    assert check.interval == approx(blocking_interval(1, 5, 0.99))
    assert check.arrival_rate == approx(5 / 3.99)  # the rate still uses every offer
    assert "after a 1 s warm-up" in check.describe()


def test_traffic_check_counts_the_devices_congestion_as_lost(cdr: pd.DataFrame) -> None:
    check = traffic_check(cdr, 2, lost_causes=["NORMAL_CIRCUIT_CONGESTION"])
    assert check.lost == 2
    assert check.lost_causes == ("NORMAL_CIRCUIT_CONGESTION",)
    assert check.mean_holding == approx((10.31 + 5.51 + 0.18 + 0.49) / 4)


def test_traffic_check_agrees_with_erlang_b_on_a_simulated_loss_system() -> None:
    cdr = frame_from_records(simulated_run(20000, 10.0, 9.0, 100, seed=3))
    check = traffic_check(cdr, 100)
    assert check.offered_erlangs == approx(90.0, rel=0.03)
    assert 0.01 < check.blocking < 0.05
    assert check.consistent is True
    assert check.warmup == approx(3 * check.mean_holding)
    assert check.offered == approx(20000 - 10 * check.warmup, rel=0.01)
    assert check.batch_interval is not None
    assert check.batch_interval[0] < check.blocking < check.batch_interval[1]
    # carried ≈ offered × (1 − B), up to the 80 ms of setup counted in the holding time
    assert check.carried_erlangs == approx(check.offered_erlangs * (1 - check.blocking), rel=0.02)

    wrong = traffic_check(cdr, 110)  # claim more channels than the system had
    assert wrong.consistent is False
    assert wrong.describe().startswith("blocking higher than Erlang B predicts")


def test_the_batch_means_interval_sees_bursts_of_blocking() -> None:
    """Blocked calls come in bursts: the Wilson interval, which assumes independent
    calls, is too narrow and would reject Erlang B on this correct M/M/N/N run."""
    cdr = frame_from_records(simulated_run(20000, 10.0, 9.0, 100, seed=10))
    check = traffic_check(cdr, 100)
    assert check.erlang_b is not None and check.batch_interval is not None
    assert not check.interval[0] <= check.erlang_b <= check.interval[1]
    assert check.batch_interval[0] <= check.erlang_b <= check.batch_interval[1]
    assert check.consistent is True


def test_numeric_setting_and_percent() -> None:
    settings = {"rate": "30", "limit": 0, "bad": "x", "flag": True, "none": None, "d": 2.5}
    assert numeric_setting(settings, "rate") == 30.0
    assert numeric_setting(settings, "d") == 2.5
    for key in ("limit", "bad", "flag", "none", "missing"):
        assert numeric_setting(settings, key) is None
    assert percent(0.0125) == "1.25%"
    assert percent(3.1e-7) == "3.1e-05%"
    assert percent(0.0) == "0%"
    assert percent(math.nan) == "—"


async def test_measurers_on_a_live_store_and_on_a_directory(tmp_path: Path) -> None:
    store = CDRStore(tmp_path / "run", {"rate": 1, "limit": 3}, flush_interval=3600)
    await store.start()
    measurers = Measurers(store)
    for record in hand_made()[:3]:
        store.append(record)
    assert len(measurers.stores.CDR) == 3
    store.append(hand_made()[3])
    assert len(measurers.stores.CDR) == 4  # live: the newest rows show up
    assert measurers.ops.call_metrics["setup_latency"].tolist()[:2] == approx([0.3, 0.5])
    figures = measurers.plot()
    assert figures and all(isinstance(figure, Figure) for figure in figures.values())

    on_disk = Measurers(tmp_path / "run")
    store.flush()
    assert len(on_disk.stores.CDR) == 4  # a running run's flushed rows
    await store.close()
    assert on_disk.ops.call_metrics["offered_index"].tolist() == [0, 1, 2, 3]
