"""The results directory of a load test, and the CDR store that fills it while the test runs.

One directory per run::

    RESULTS_DIR/
      run.json          run description, written at start and rewritten at the end:
                        {"format": "switchy-results", "format_version": 1,
                         "switchy_version", "status", "start_time", "end_time",
                         "settings": {...}, "summary": {...}, "cdr_rows"};
                        status is "running" until the store is closed, then
                        "finished", "interrupted" or "failed"; times are epoch seconds.
      cdr.jsonl         the CDR, append-only, one JSON object per offered call
                        (keys: switchy.measure.cdr.COLUMNS; fields that are None are
                        left out); written in batches at least once a second while
                        the test runs, so a killed generator loses at most the last
                        second; a last line cut short by a kill is skipped on reading
      cdr.parquet       the same rows, typed per COLUMNS, written when the run is closed
      cdr.csv           written on demand by export_csv()
      stats.csv         periodic statistics (switchy.measure.stats.StatsRecorder)
      sysstats.csv      host CPU and memory samples (switchy.measure.sysstats.SysStats)
      report.html, *.png   written by switchy.measure.report.write_report()

No password is ever written: keys naming one are dropped from the settings and the
summary given to the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import operator
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TextIO

from switchy.errors import SwitchyError
from switchy.measure.cdr import COLUMNS, OUTCOMES, CallRecord

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CDR_CSV",
    "CDR_JSONL",
    "CDR_PARQUET",
    "FORMAT",
    "RUN_JSON",
    "STATUSES",
    "CDRStore",
    "ResultsError",
    "RunInfo",
    "export_csv",
    "frame_from_records",
    "load",
    "load_run",
]

log = logging.getLogger(__name__)

RUN_JSON = "run.json"
CDR_JSONL = "cdr.jsonl"
CDR_PARQUET = "cdr.parquet"
CDR_CSV = "cdr.csv"
#: The ``format`` value of every run.json switchy writes; anything else is foreign.
FORMAT = "switchy-results"
FORMAT_VERSION = 1
#: Run statuses: ``running`` until the store is closed with one of the others.
STATUSES = ("running", "finished", "interrupted", "failed")

_NAMES = tuple(name for name, _ in COLUMNS)
_TYPES = dict(COLUMNS)
_row_values = operator.attrgetter(*_NAMES)
# Substrings of setting names that may hold a secret (matched case-insensitively).
_SECRET_WORDS = ("password", "passwd", "secret")


class ResultsError(SwitchyError):
    """A results directory is missing, foreign, empty or cannot be read."""


# -- writing --------------------------------------------------------------------------------
def _without_secrets(value: Any, path: str = "") -> Any:
    """``value`` with every mapping key that names a password dropped, recursively."""
    if isinstance(value, Mapping):
        kept: dict[str, Any] = {}
        for key, item in value.items():
            name = f"{path}.{key}" if path else str(key)
            if any(word in str(key).lower() for word in _SECRET_WORDS):
                log.warning("not storing setting %r: it may hold a password", name)
                continue
            kept[str(key)] = _without_secrets(item, name)
        return kept
    if isinstance(value, (list, tuple)):
        return [_without_secrets(item, path) for item in value]
    return value


def _json_default(value: Any) -> Any:
    # Settings may hold objects (a HoldingTime, a Path...): their text is what matters.
    return str(value)


def _write_json_atomically(path: Path, document: Mapping[str, Any]) -> None:
    # A kill while writing leaves the previous run.json, never half of one.
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(
        json.dumps(document, indent=2, default=_json_default) + "\n", encoding="utf-8"
    )
    os.replace(temporary, path)


def _version() -> str:
    try:
        return metadata.version("switchy")
    except metadata.PackageNotFoundError:
        return "unknown"


def _record_line(record: CallRecord) -> str:
    values = _row_values(record)
    return json.dumps(
        {name: value for name, value in zip(_NAMES, values, strict=True) if value is not None},
        default=_json_default,
    )


def _arrow_schema() -> Any:
    import pyarrow as pa

    kinds = {"int": pa.int64(), "float": pa.float64(), "str": pa.string()}
    return pa.schema([(name, kinds[kind]) for name, kind in COLUMNS])


def _arrow_table(records: Sequence[CallRecord]) -> Any:
    """The rows as a pyarrow Table with the schema of COLUMNS."""
    import pyarrow as pa

    schema = _arrow_schema()
    columns = [list(values) for values in zip(*map(_row_values, records), strict=True)]
    if not columns:
        return schema.empty_table()
    return pa.Table.from_arrays(
        [
            pa.array(values, type=column.type)
            for values, column in zip(columns, schema, strict=True)
        ],
        schema=schema,
    )


def _write_parquet(path: Path, converted: Sequence[Any], records: Sequence[CallRecord]) -> None:
    """Write the ``converted`` tables followed by ``records`` as one Parquet file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.concat_tables([*converted, _arrow_table(records)])
    temporary = path.with_name(path.name + ".tmp")  # a kill leaves no half-written file
    pq.write_table(table, temporary)
    os.replace(temporary, path)


class CDRStore:
    """Collects a run's CDR rows and writes them to a results directory as the run goes.

    Made for the load generator's event loop: :meth:`append` only appends to a
    list; a flusher task started by :meth:`start` writes the new rows to
    ``cdr.jsonl`` every ``flush_interval`` seconds; :meth:`close` writes the rest,
    ``cdr.parquet`` (in a thread) and the final run.json. Also an async context
    manager: leaving it closes the store as ``finished``, or ``interrupted`` on
    cancellation / Ctrl-C, or ``failed`` on any other exception.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        settings: Mapping[str, Any] | None = None,
        *,
        flush_interval: float = 1.0,
    ) -> None:
        if not flush_interval > 0.0:
            raise ValueError(f"flush_interval must be > 0, got {flush_interval!r}")
        self.directory = Path(directory)
        self.settings: dict[str, Any] = _without_secrets(dict(settings or {}))
        self.flush_interval = flush_interval
        self._records: list[CallRecord] = []
        self._written = 0  # records[:written] are in cdr.jsonl
        # records[:converted] as pyarrow tables, so that dataframe() only converts new rows
        self._tables: list[Any] = []
        self._converted = 0
        self._file: TextIO | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._run: dict[str, Any] = {}
        self._closed = False

    def __len__(self) -> int:
        return len(self._records)

    @property
    def records(self) -> Sequence[CallRecord]:
        """Every row appended so far, in append order (live: do not modify)."""
        return self._records

    def dataframe(self) -> pd.DataFrame:
        """The rows so far as a DataFrame typed like :func:`load`'s."""
        import pyarrow as pa

        end = len(self._records)
        if end > self._converted:
            self._tables.append(_arrow_table(self._records[self._converted : end]))
            self._tables = [pa.concat_tables(self._tables)]  # no copy: it joins chunk lists
            self._converted = end
        return _frame_from_arrow(self._tables[0] if self._tables else _arrow_table(()))

    def _open(self) -> TextIO:
        """Write the first run.json and open the append file (once); return the file."""
        if self._file is not None:
            return self._file
        directory = self.directory
        directory.mkdir(parents=True, exist_ok=True)
        for name in (RUN_JSON, CDR_JSONL):
            if (directory / name).exists():
                raise ResultsError(
                    f"{directory}: already holds a run ({name}); use a new directory"
                )
        self._run = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "switchy_version": _version(),
            "status": "running",
            "start_time": time.time(),
            "end_time": None,
            "settings": self.settings,
            "summary": {},
            "cdr_rows": None,
        }
        _write_json_atomically(directory / RUN_JSON, self._run)
        self._file = open(directory / CDR_JSONL, "a", encoding="utf-8")  # noqa: SIM115
        return self._file

    async def start(self) -> None:
        """Create the directory, write run.json and start flushing rows every interval.

        Raises ResultsError if the directory already holds a run.
        """
        if self._closed:
            raise RuntimeError("this CDRStore is closed")
        self._open()
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush_forever())

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval)
            try:
                self.flush()
            except OSError as exc:  # disk full...: keep the rows, try again next time
                log.error("cannot write %s: %s", self.directory / CDR_JSONL, exc)

    def append(self, record: CallRecord) -> None:
        """Add one row; it reaches disk at the next flush. O(1), no I/O."""
        if self._closed:
            raise RuntimeError("this CDRStore is closed")
        self._records.append(record)

    def flush(self) -> int:
        """Write the rows appended since the last flush; return how many.

        Rows appended before :meth:`start` stay pending until then.
        """
        file = self._file
        end = len(self._records)
        if file is None or end == self._written:
            return 0
        batch = self._records[self._written : end]
        file.write("".join([_record_line(record) + "\n" for record in batch]))
        file.flush()  # to the OS: a killed process loses nothing written so far
        self._written = end
        return len(batch)

    async def close(
        self, status: str = "finished", summary: Mapping[str, Any] | None = None
    ) -> None:
        """Write the remaining rows, ``cdr.parquet`` and the final run.json.

        ``status``: ``finished``, ``interrupted`` or ``failed``; ``summary``: the
        generator's totals and notes (JSON-able values). A second call does nothing.
        """
        if status not in STATUSES[1:]:
            raise ValueError(f"status must be one of {STATUSES[1:]}, got {status!r}")
        if self._closed:
            return
        self._closed = True
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        file = self._open()
        try:
            self.flush()
            # The thread gets copies: dataframe() may still run meanwhile.
            converted, rest = list(self._tables), self._records[self._converted :]
            await asyncio.get_running_loop().run_in_executor(
                None, _write_parquet, self.directory / CDR_PARQUET, converted, rest
            )
        finally:
            file.close()
            self._run.update(
                status=status,
                end_time=time.time(),
                summary=_without_secrets(dict(summary or {})),
                cdr_rows=len(self._records),
            )
            _write_json_atomically(self.directory / RUN_JSON, self._run)

    async def __aenter__(self) -> CDRStore:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            status = "finished"
        elif issubclass(exc_type, (asyncio.CancelledError, KeyboardInterrupt)):
            status = "interrupted"
        else:
            status = "failed"
        await self.close(status)


# -- reading --------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunInfo:
    """What a results directory says about its run, and what is wrong with its data."""

    directory: Path
    #: ``running`` (killed, or still running), ``finished``, ``interrupted``,
    #: ``failed``, or ``unknown`` without a readable run.json.
    status: str
    settings: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    start_time: float | None = None
    end_time: float | None = None
    switchy_version: str | None = None
    #: Call rows loaded.
    rows: int = 0
    #: Why the data may be incomplete, one sentence each; empty when it is whole.
    problems: tuple[str, ...] = ()

    @property
    def partial(self) -> bool:
        """True when rows may be missing: the run was not closed, or its files are damaged."""
        return bool(self.problems)


def frame_from_records(records: Sequence[CallRecord]) -> pd.DataFrame:
    """Rows as a DataFrame with the columns and dtypes of :func:`load`."""
    return _frame_from_arrow(_arrow_table(records))


def _dtype(kind: str) -> Any:
    import pandas as pd

    # Nullable dtypes: a missing int stays missing instead of turning the column to float.
    return {"int": pd.Int64Dtype(), "float": "float64", "str": pd.StringDtype()}[kind]


def _frame_from_arrow(table: Any) -> pd.DataFrame:
    """A pyarrow Table of CDR rows as a frame: COLUMNS first, typed; extra columns after."""
    import pandas as pd
    import pyarrow as pa

    mapper = {pa.int64(): pd.Int64Dtype(), pa.string(): pd.StringDtype()}.get
    frame = table.to_pandas(types_mapper=mapper)
    for name, kind in COLUMNS:
        if name not in frame.columns:
            frame[name] = pd.Series(pd.NA, index=frame.index, dtype=_dtype(kind))
        elif kind == "float":
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
        else:
            frame[name] = frame[name].astype(_dtype(kind))
    extra = [name for name in frame.columns if name not in _TYPES]
    return frame[list(_NAMES) + extra]


def _read_jsonl(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """Rows of an append file, and the problems found in it (a cut-off last line...)."""
    import pyarrow as pa
    import pyarrow.json as pajson

    data = path.read_bytes()
    problems: list[str] = []
    complete = data.rfind(b"\n") + 1
    if data[complete:].strip():
        problems.append(f"{path.name} ends with an incomplete row (killed while writing?)")
    body = data[:complete]
    if not body.strip():
        return frame_from_records(()), problems
    options = pajson.ParseOptions(
        explicit_schema=_arrow_schema(), unexpected_field_behavior="ignore"
    )
    try:
        table = pajson.read_json(io.BytesIO(body), parse_options=options)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return _read_jsonl_slowly(body, path.name, problems)
    return _frame_from_arrow(table), problems


def _read_jsonl_slowly(
    body: bytes, name: str, problems: list[str]
) -> tuple[pd.DataFrame, list[str]]:
    """Line by line, skipping lines that are not JSON objects (pyarrow gave up on one)."""
    rows: list[dict[str, Any]] = []
    bad = 0
    for line in body.splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            row = None
        if isinstance(row, dict):
            rows.append(row)
        else:
            bad += 1
    if bad:
        problems.append(f"{name}: {bad} unreadable row(s) skipped")
    import pyarrow as pa

    schema = _arrow_schema()
    arrays = []
    for column in schema:
        values = [row.get(column.name) for row in rows]
        try:
            arrays.append(pa.array(values, type=column.type))
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            problems.append(f"{name}: column {column.name} has values of the wrong type")
            arrays.append(pa.nulls(len(rows), type=column.type))
    return _frame_from_arrow(pa.Table.from_arrays(arrays, schema=schema)), problems


def _read_run_json(directory: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(run.json's document, None), or (None, why it cannot be used); (None, None) if absent."""
    path = directory / RUN_JSON
    if not path.exists():
        return None, None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return None, f"{RUN_JSON} is unreadable ({exc})"
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        return None, f"{RUN_JSON} is not a switchy run description"
    return document, None


def load_run(directory: str | os.PathLike[str]) -> tuple[RunInfo, pd.DataFrame]:
    """The run description and CDR of a results directory (see the module docstring).

    Rows come from ``cdr.parquet``, or from ``cdr.jsonl`` when the run was not
    closed; they are typed per COLUMNS (int columns nullable ``Int64``, str
    columns ``string``) and sorted by ``offered_index``. A truncated append file
    gives its complete rows and ``RunInfo.partial``.

    Raises ResultsError for a missing, empty or foreign directory, or one with no rows.
    """
    import pyarrow.parquet as pq

    path = Path(directory)
    if not path.exists():
        raise ResultsError(f"{path}: no such directory")
    if not path.is_dir():
        raise ResultsError(f"{path}: not a directory")
    try:
        names = {entry.name for entry in path.iterdir()}
    except OSError as exc:
        raise ResultsError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    if not names:
        raise ResultsError(f"{path}: empty directory, no switchy results in it")
    document, run_problem = _read_run_json(path)
    has_rows = CDR_PARQUET in names or CDR_JSONL in names
    if document is None and not has_rows:
        what = run_problem or f"no {RUN_JSON}, {CDR_JSONL} or {CDR_PARQUET}"
        raise ResultsError(f"{path}: not a switchy results directory ({what})")

    problems: list[str] = [run_problem] if run_problem else []
    status = str(document.get("status", "unknown")) if document else "unknown"
    if status == "running":
        problems.append("the run did not finish (killed, or still running)")
    elif status == "unknown" and not run_problem:
        problems.append(f"no {RUN_JSON}: the run's settings and status are unknown")

    frame: pd.DataFrame | None = None
    try:
        if CDR_PARQUET in names:
            try:
                frame = _frame_from_arrow(pq.read_table(path / CDR_PARQUET))
            except Exception as exc:  # a damaged file: the append file has the same rows
                problems.append(f"{CDR_PARQUET} is unreadable ({type(exc).__name__})")
        if frame is None and CDR_JSONL in names:
            frame, file_problems = _read_jsonl(path / CDR_JSONL)
            problems.extend(file_problems)
    except OSError as exc:
        raise ResultsError(f"{path}: cannot read the CDR ({exc.strerror or exc})") from exc
    if frame is not None:
        unknown = ~frame["outcome"].isin(OUTCOMES).to_numpy(bool, na_value=False)
        if unknown.any():
            problems.append(f"{int(unknown.sum())} row(s) with an unknown outcome skipped")
            frame = frame[~unknown]
    if frame is None or frame.empty:
        raise ResultsError(f"{path}: no call records (run status: {status})")
    frame = frame.sort_values("offered_index", kind="stable").reset_index(drop=True)

    def number(key: str) -> float | None:
        value = document.get(key) if document else None
        return float(value) if isinstance(value, (int, float)) else None

    def mapping(key: str) -> dict[str, Any]:
        value = document.get(key) if document else None
        return dict(value) if isinstance(value, dict) else {}

    info = RunInfo(
        directory=path,
        status=status,
        settings=mapping("settings"),
        summary=mapping("summary"),
        start_time=number("start_time"),
        end_time=number("end_time"),
        switchy_version=str(document["switchy_version"])
        if document and document.get("switchy_version")
        else None,
        rows=len(frame),
        problems=tuple(problems),
    )
    return info, frame


def load(directory: str | os.PathLike[str]) -> pd.DataFrame:
    """The CDR of a results directory: :func:`load_run` without the run description."""
    return load_run(directory)[1]


def export_csv(
    directory: str | os.PathLike[str], path: str | os.PathLike[str] | None = None
) -> Path:
    """Write the run's CDR as CSV (default ``RESULTS_DIR/cdr.csv``); return its path.

    One header line of COLUMNS names; missing values are empty fields; times are
    epoch seconds as written (full precision).
    """
    frame = load(directory)
    target = Path(directory) / CDR_CSV if path is None else Path(path)
    frame.to_csv(target, index=False, float_format="%.17g")
    return target
