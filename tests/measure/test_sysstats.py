"""SysStats: host and process samples in sysstats.csv, taken from the event loop."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import psutil
import pytest

from switchy.measure.sysstats import SYSSTATS_CSV, SysStats, load_sysstats

from .polling import until


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    """A Python process that runs until its stdin is closed."""
    process = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    yield process
    process.kill()
    process.wait(timeout=10)


def data_lines(path: Path) -> int:
    return max(0, len(path.read_text().splitlines()) - 1) if path.exists() else 0


async def test_samples_reach_the_file_with_stable_columns(
    tmp_path: Path, child: subprocess.Popen[bytes]
) -> None:
    gone = psutil.Process().pid + 10_000_000  # no such process: skipped, no column
    sampler = SysStats(tmp_path, interval=0.05, pids=[child.pid, gone], find_freeswitch=False)
    sampler.start()
    path = tmp_path / SYSSTATS_CSV
    await until(lambda: data_lines(path) >= 3)
    await sampler.stop()
    written = data_lines(path)
    frame = load_sysstats(tmp_path)
    assert frame is not None and len(frame) == written >= 3

    label = f"{psutil.Process(child.pid).name()}_{child.pid}"
    cores = len(psutil.cpu_percent(percpu=True))
    assert list(frame.columns) == [
        "timestamp",
        "elapsed",
        "cpu_percent",
        *(f"cpu{core}_percent" for core in range(cores)),
        "memory_percent",
        "memory_used_mb",
        "memory_available_mb",
        "generator_cpu_percent",
        "generator_rss_mb",
        f"{label}_cpu_percent",
        f"{label}_rss_mb",
    ]
    assert frame["timestamp"].is_monotonic_increasing
    assert (frame["elapsed"] > 0).all()
    assert frame["cpu_percent"].between(0, 100).all()
    assert frame["memory_percent"].between(0, 100).all()
    assert (frame["generator_rss_mb"] > 1).all()
    assert (frame[f"{label}_rss_mb"] > 0).all()
    assert data_lines(path) == written  # stopped: no more rows


async def test_a_process_that_ends_leaves_empty_cells(
    tmp_path: Path, child: subprocess.Popen[bytes]
) -> None:
    label = f"{psutil.Process(child.pid).name()}_{child.pid}"
    sampler = SysStats(tmp_path, interval=0.05, pids=[child.pid], find_freeswitch=False)
    sampler.start()
    path = tmp_path / SYSSTATS_CSV
    try:
        await until(lambda: data_lines(path) >= 1)
        assert child.stdin is not None
        child.stdin.close()  # the child ends
        await asyncio.to_thread(child.wait, 10)
        written = data_lines(path)
        await until(lambda: data_lines(path) >= written + 2)
    finally:
        await sampler.stop()
    frame = load_sysstats(tmp_path)
    assert frame is not None
    assert frame[f"{label}_cpu_percent"].notna().iloc[0]
    assert pd.isna(frame[f"{label}_cpu_percent"].iloc[-1])
    assert frame["cpu_percent"].notna().all()


async def test_freeswitch_processes_are_looked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[bool] = []

    def fake_search() -> list[int]:
        asked.append(True)
        return [psutil.Process().pid]  # the generator itself: not listed twice

    monkeypatch.setattr("switchy.measure.sysstats._freeswitch_pids", fake_search)
    sampler = SysStats(tmp_path, interval=0.05)
    sampler.start()
    path = tmp_path / SYSSTATS_CSV
    await until(lambda: data_lines(path) >= 1)
    await sampler.stop()
    assert asked == [True]
    header = path.read_text().splitlines()[0].split(",")
    assert header[-2:] == ["generator_cpu_percent", "generator_rss_mb"]


async def test_stop_before_the_first_sample_and_bad_interval(tmp_path: Path) -> None:
    sampler = SysStats(tmp_path, interval=60, find_freeswitch=False)
    sampler.start()
    await sampler.stop()
    await sampler.stop()
    with pytest.raises(ValueError, match="interval"):
        SysStats(tmp_path, interval=0)
    assert load_sysstats(tmp_path / "elsewhere") is None
