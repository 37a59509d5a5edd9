"""Samples of the generator host's CPU and memory during a run: ``sysstats.csv``.

One row every ``interval`` seconds, written at once. Columns, in order:

- ``timestamp`` (epoch seconds, generator clock: the CDR's ``request_time`` clock,
  so rows line up with the calls by time) and ``elapsed`` (seconds since start);
- ``cpu_percent``: all cores, and ``cpu0_percent``, ``cpu1_percent``... one per
  core, busy time since the previous row, 0 to 100;
- ``memory_percent`` and ``memory_used_mb``: the host's memory in use
  (psutil's ``virtual_memory``), and ``memory_available_mb``;
- ``generator_cpu_percent`` and ``generator_rss_mb``: this process;
- ``<name>_<pid>_cpu_percent`` and ``<name>_<pid>_rss_mb`` for each process
  followed: the pids given, and the processes named ``freeswitch`` found at
  start. A process's CPU is summed over its threads, so it can exceed 100
  (a process using two cores fully shows 200). Empty once the process is gone.

The set of processes is fixed at start, so the header never changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import logging
import os
import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import psutil

from switchy.measure.stats import read_complete_csv

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SYSSTATS_CSV", "SysStats", "load_sysstats"]

log = logging.getLogger(__name__)

SYSSTATS_CSV = "sysstats.csv"
_MB = 1024 * 1024


def _freeswitch_pids() -> list[int]:
    pids = []
    for process in psutil.process_iter(["name"]):
        if process.info.get("name") == "freeswitch":
            pids.append(process.pid)
    return pids


class SysStats:
    """Samples host and process CPU and memory every ``interval`` seconds into sysstats.csv.

    An asyncio component: :meth:`start` starts a task in the running event loop,
    ``await stop()`` ends it. Each sample takes well under a millisecond (psutil
    reads /proc without waiting: CPU use is measured between two samples), so
    it runs in the event loop without holding it up; only the one-time search
    for FreeSWITCH processes, which reads every process, runs in a thread.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        interval: float = 1.0,
        pids: Iterable[int] = (),
        *,
        find_freeswitch: bool = True,
    ) -> None:
        if not interval > 0.0:
            raise ValueError(f"interval must be > 0, got {interval!r}")
        self.path = Path(directory) / SYSSTATS_CSV
        self.interval = interval
        self.pids = tuple(pids)
        self.find_freeswitch = find_freeswitch
        self._task: asyncio.Task[None] | None = None
        self._file: TextIO | None = None
        self._processes: list[tuple[str, psutil.Process]] = []
        self._own = psutil.Process()
        self._start = 0.0

    def start(self) -> None:
        """Start sampling (call from the running event loop); the first row comes after
        one ``interval``."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop sampling and close the file."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._file is not None:
            self._file.close()
            self._file = None

    def _follow(self, pids: Iterable[int]) -> None:
        seen = {self._own.pid}
        for pid in pids:
            if pid in seen:
                continue
            seen.add(pid)
            try:
                process = psutil.Process(pid)
                name = re.sub(r"\W+", "_", process.name()) or "process"
                process.cpu_percent(None)  # the first call only sets the reference point
            except psutil.Error as exc:
                log.warning("not sampling process %d: %s", pid, exc)
                continue
            self._processes.append((f"{name}_{pid}", process))

    async def _run(self) -> None:
        found = await asyncio.to_thread(_freeswitch_pids) if self.find_freeswitch else []
        self._follow([*self.pids, *found])
        # Reference points: CPU use is measured from these calls to the first row.
        cores = len(psutil.cpu_percent(percpu=True))
        self._own.cpu_percent(None)
        self._start = time.time()
        columns = [
            "timestamp",
            "elapsed",
            "cpu_percent",
            *(f"cpu{core}_percent" for core in range(cores)),
            "memory_percent",
            "memory_used_mb",
            "memory_available_mb",
            "generator_cpu_percent",
            "generator_rss_mb",
        ]
        for label, _ in self._processes:
            columns += [f"{label}_cpu_percent", f"{label}_rss_mb"]
        self._file = await asyncio.to_thread(self._create, columns)
        writer = csv.DictWriter(self._file, fieldnames=columns, lineterminator="\n")
        while True:
            await asyncio.sleep(self.interval)
            writer.writerow(self.sample())
            self._file.flush()

    def _create(self, columns: list[str]) -> TextIO:
        """Create sysstats.csv with its header line; return it open for appending rows."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        file = open(self.path, "w", encoding="utf-8", newline="")  # noqa: SIM115
        csv.writer(file, lineterminator="\n").writerow(columns)
        file.flush()
        return file

    def sample(self) -> dict[str, Any]:
        """One row: the use since the previous sample (see the module docstring)."""
        now = time.time()
        per_core = psutil.cpu_percent(percpu=True)
        memory = psutil.virtual_memory()
        row: dict[str, Any] = {
            "timestamp": f"{now:.3f}",
            "elapsed": f"{now - self._start:.3f}",
            "cpu_percent": f"{sum(per_core) / len(per_core):.1f}" if per_core else "",
            "memory_percent": f"{memory.percent:.1f}",
            "memory_used_mb": f"{memory.used / _MB:.1f}",
            "memory_available_mb": f"{memory.available / _MB:.1f}",
        }
        for core, percent in enumerate(per_core):
            row[f"cpu{core}_percent"] = f"{percent:.1f}"
        for label, process in [("generator", self._own), *self._processes]:
            try:
                with process.oneshot():
                    cpu = process.cpu_percent(None)
                    rss = process.memory_info().rss
            except psutil.Error:  # gone: leave its cells empty
                continue
            row[f"{label}_cpu_percent"] = f"{cpu:.1f}"
            row[f"{label}_rss_mb"] = f"{rss / _MB:.1f}"
        return row


def load_sysstats(directory: str | os.PathLike[str]) -> pd.DataFrame | None:
    """``sysstats.csv`` of a results directory as a DataFrame, or None if there is none."""
    path = Path(directory) / SYSSTATS_CSV
    if not path.exists():
        return None
    frame = read_complete_csv(path)
    return frame if not frame.empty else None
