"""CDRStore and the results directory: rows on disk while running, Parquet, loading."""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import switchy.measure
from switchy.errors import SwitchyError
from switchy.measure.cdr import COLUMNS, CallRecord
from switchy.measure.store import (
    CDR_JSONL,
    CDR_PARQUET,
    RUN_JSON,
    CDRStore,
    ResultsError,
    export_csv,
    load,
    load_run,
)

from .cdrs import hand_made
from .polling import until

NAMES = [name for name, _ in COLUMNS]


def jsonl_lines(directory: Path) -> list[str]:
    return (directory / CDR_JSONL).read_text().splitlines()


async def write_run(directory: Path, records: list[CallRecord], **settings: object) -> None:
    store = CDRStore(directory, settings)
    await store.start()
    for record in records:
        store.append(record)
    await store.close("finished", {"nodes_lost": 0})


def kill_run(directory: Path) -> None:
    """Make a closed run look like one whose generator was killed while writing a row."""
    (directory / CDR_PARQUET).unlink()
    data = (directory / CDR_JSONL).read_bytes()
    last_line = data.rstrip(b"\n").rfind(b"\n") + 1
    (directory / CDR_JSONL).write_bytes(data[: last_line + 20])  # cut the last row mid-way
    document = json.loads((directory / RUN_JSON).read_text())
    document.update(status="running", end_time=None, summary={}, cdr_rows=None)
    (directory / RUN_JSON).write_text(json.dumps(document))


async def test_rows_reach_the_append_file_at_each_flush_only(tmp_path: Path) -> None:
    store = CDRStore(tmp_path / "run", {"rate": 5}, flush_interval=3600)
    await store.start()
    try:
        for record in hand_made()[:3]:
            store.append(record)
        assert len(store) == 3
        assert jsonl_lines(tmp_path / "run") == []  # append does no I/O
        assert store.flush() == 3
        assert store.flush() == 0
        lines = jsonl_lines(tmp_path / "run")
        assert [json.loads(line)["offered_index"] for line in lines] == [0, 1, 2]
        row = json.loads(lines[2])
        assert row["failure_cause"] == "USER_BUSY"
        assert "caller_answer_time" not in row  # None fields are left out
    finally:
        await store.close()


async def test_the_flusher_writes_rows_while_the_run_goes_on(tmp_path: Path) -> None:
    directory = tmp_path / "run"
    store = CDRStore(directory, flush_interval=0.05)
    await store.start()
    records = hand_made()
    store.append(records[0])
    await until(lambda: len(jsonl_lines(directory)) == 1)
    store.append(records[1])
    await until(lambda: len(jsonl_lines(directory)) == 2)
    assert json.loads((directory / RUN_JSON).read_text())["status"] == "running"
    await store.close()


async def test_close_writes_parquet_and_the_final_run_description(tmp_path: Path) -> None:
    directory = tmp_path / "run"
    await write_run(directory, hand_made(), rate=2.5, limit=10)
    document = json.loads((directory / RUN_JSON).read_text())
    assert document["format"] == "switchy-results"
    assert document["status"] == "finished"
    assert document["settings"] == {"rate": 2.5, "limit": 10}
    assert document["summary"] == {"nodes_lost": 0}
    assert document["cdr_rows"] == 6
    assert document["start_time"] <= document["end_time"]
    assert document["switchy_version"]

    schema = pq.read_schema(directory / CDR_PARQUET)
    kinds = {"int": pa.int64(), "float": pa.float64(), "str": pa.string()}
    assert [(field.name, field.type) for field in schema] == [
        (name, kinds[kind]) for name, kind in COLUMNS
    ]
    assert pq.read_table(directory / CDR_PARQUET).num_rows == 6
    assert not list(directory.glob("*.tmp"))


async def test_a_password_never_reaches_run_json(tmp_path: Path) -> None:
    settings = {
        "rate": 1,
        "password": "ClueCon",
        "nodes": [{"host": "fs1", "ESL_Password": "s3cret-one"}],
    }
    store = CDRStore(tmp_path / "run", settings)
    await store.start()
    await store.close(summary={"db_password": "s3cret-two", "nodes_lost": 1})
    text = (tmp_path / "run" / RUN_JSON).read_text()
    assert "ClueCon" not in text
    assert "s3cret" not in text
    assert "password" not in text.lower()
    document = json.loads(text)
    assert document["settings"] == {"rate": 1, "nodes": [{"host": "fs1"}]}
    assert document["summary"] == {"nodes_lost": 1}


async def test_a_directory_holding_a_run_is_refused(tmp_path: Path) -> None:
    await write_run(tmp_path / "run", hand_made())
    with pytest.raises(ResultsError, match="already holds a run"):
        await CDRStore(tmp_path / "run").start()


async def test_the_context_manager_records_how_the_run_ended(tmp_path: Path) -> None:
    async def run(name: str, error: BaseException) -> None:
        async with CDRStore(tmp_path / name) as store:
            store.append(hand_made()[0])
            raise error

    with pytest.raises(RuntimeError):
        await run("failed", RuntimeError("generator crashed"))
    with pytest.raises(asyncio.CancelledError):
        await run("cancelled", asyncio.CancelledError())
    async with CDRStore(tmp_path / "finished"):
        pass
    statuses = {
        name: json.loads((tmp_path / name / RUN_JSON).read_text())["status"]
        for name in ("failed", "cancelled", "finished")
    }
    assert statuses == {"failed": "failed", "cancelled": "interrupted", "finished": "finished"}
    assert len(load(tmp_path / "failed")) == 1


async def test_close_takes_only_final_statuses_and_a_closed_store_takes_no_rows(
    tmp_path: Path,
) -> None:
    store = CDRStore(tmp_path / "run")
    await store.start()
    with pytest.raises(ValueError, match="status"):
        await store.close("running")
    await store.close("interrupted")
    await store.close("finished")  # no effect
    assert json.loads((tmp_path / "run" / RUN_JSON).read_text())["status"] == "interrupted"
    with pytest.raises(RuntimeError):
        store.append(hand_made()[0])


async def test_live_records_and_dataframe(tmp_path: Path) -> None:
    store = CDRStore(tmp_path / "run")
    records = hand_made()
    for record in records:
        store.append(record)
    assert list(store.records) == records
    frame = store.dataframe()
    assert list(frame.columns) == NAMES
    assert frame["offered_index"].tolist() == list(range(6))
    assert frame["outcome"].tolist() == [r.outcome for r in records]
    await store.close()


async def test_load_gives_typed_sorted_rows_from_parquet_or_the_append_file(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "run"
    await write_run(directory, list(reversed(hand_made())))
    from_parquet = load(directory)
    (directory / CDR_PARQUET).unlink()
    from_jsonl = load(directory)
    for frame in (from_parquet, from_jsonl):
        assert list(frame.columns) == NAMES
        assert frame["offered_index"].tolist() == list(range(6))
        assert str(frame["offered_index"].dtype) == "Int64"
        assert str(frame["active_calls_at_create"].dtype) == "Int64"
        assert frame["caller_answer_time"].dtype == "float64"
        assert isinstance(frame["failure_cause"].dtype, pd.StringDtype)
    pd.testing.assert_frame_equal(from_parquet, from_jsonl)
    assert from_parquet.loc[0, "caller_answer_time"] == hand_made()[0].caller_answer_time
    assert pd.isna(from_parquet.loc[4, "request_time"])
    info, _ = load_run(directory)
    assert info.status == "finished"
    assert not info.partial


async def test_a_killed_run_loads_its_complete_rows_and_is_flagged_partial(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "run"
    await write_run(directory, hand_made())
    kill_run(directory)
    info, frame = load_run(directory)
    assert frame["offered_index"].tolist() == [0, 1, 2, 3, 4]
    assert info.partial
    assert info.status == "running"
    assert any("incomplete row" in problem for problem in info.problems)
    assert any("did not finish" in problem for problem in info.problems)


async def test_a_damaged_line_in_the_middle_is_skipped(tmp_path: Path) -> None:
    directory = tmp_path / "run"
    await write_run(directory, hand_made())
    (directory / CDR_PARQUET).unlink()
    lines = jsonl_lines(directory)
    lines[2] = lines[2][:15]
    (directory / CDR_JSONL).write_text("\n".join(lines) + "\n")
    info, frame = load_run(directory)
    assert frame["offered_index"].tolist() == [0, 1, 3, 4, 5]
    assert info.problems == ("cdr.jsonl: 1 unreadable row(s) skipped",)


def test_rows_survive_a_sigkill(tmp_path: Path) -> None:
    """A generator killed by SIGKILL leaves every row flushed before the kill."""
    directory = tmp_path / "run"
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        from switchy.measure.store import CDRStore
        from switchy.measure.cdr import CallRecord

        async def main():
            store = CDRStore({str(directory)!r}, {{"rate": 1}}, flush_interval=3600)
            await store.start()
            for index in range(50):
                store.append(CallRecord(index, 1.0e9 + index, "blocked"))
            store.flush()
            print("flushed", flush=True)
            await asyncio.sleep(60)

        asyncio.run(main())
        """
    )
    with subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        try:
            assert process.stdout.readline().strip() == "flushed"
        finally:
            os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=10) == -signal.SIGKILL
    info, frame = load_run(directory)
    assert len(frame) == 50
    assert info.status == "running"
    assert info.partial


def test_bad_directories_raise_results_errors_naming_them(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(ResultsError, match=f"{missing}: no such directory"):
        load(missing)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ResultsError, match="empty directory"):
        load(empty)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("hello")
    with pytest.raises(ResultsError, match="not a switchy results directory"):
        load(foreign)
    (foreign / RUN_JSON).write_text('{"name": "some other tool"}')
    with pytest.raises(ResultsError, match=r"run\.json is not a switchy run description"):
        load(foreign)
    a_file = tmp_path / "file"
    a_file.write_text("")
    with pytest.raises(ResultsError, match="not a directory"):
        load(a_file)
    assert issubclass(ResultsError, SwitchyError)


async def test_a_run_without_rows_is_an_error(tmp_path: Path) -> None:
    await write_run(tmp_path / "run", [])
    with pytest.raises(ResultsError, match="no call records"):
        load(tmp_path / "run")


async def test_export_csv_keeps_every_column_and_full_precision(tmp_path: Path) -> None:
    directory = tmp_path / "run"
    await write_run(directory, hand_made())
    path = export_csv(directory)
    assert path == directory / "cdr.csv"
    header = path.read_text().splitlines()[0]
    assert header.split(",") == NAMES
    back = pd.read_csv(path)
    assert len(back) == 6
    assert back["caller_answer_time"].tolist()[:2] == [
        hand_made()[0].caller_answer_time,
        hand_made()[1].caller_answer_time,
    ]
    assert math.isnan(back["caller_answer_time"][2])
    other = export_csv(directory, tmp_path / "elsewhere.csv")
    assert other.read_text() == path.read_text()


def test_the_package_exports_its_api_lazily() -> None:
    """What the load generator and the command line import stays free of pandas,
    pyarrow and matplotlib (a second of start-up)."""
    code = (
        "import sys\n"
        "import switchy.measure.cdr, switchy.measure.store, switchy.measure.stats\n"
        "import switchy.measure.sysstats, switchy.measure.cli\n"
        "heavy = {'pandas', 'pyarrow', 'matplotlib'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
        "from switchy.measure import load, CDRStore\n"
        "print('ok')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "ok", result.stderr
    assert switchy.measure.load is load
    with pytest.raises(AttributeError):
        switchy.measure.nothing  # noqa: B018


async def test_rows_without_run_json_or_with_unknown_outcomes_load_as_partial(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "run"
    await write_run(directory, hand_made())
    (directory / RUN_JSON).unlink()
    (directory / CDR_PARQUET).unlink()
    path = directory / CDR_JSONL
    unknown = '{"offered_index": 6, "scheduled_time": 1.0, "outcome": "maybe"}\n'
    path.write_text(path.read_text() + unknown)
    info, frame = load_run(directory)
    assert info.status == "unknown"
    assert info.settings == {}
    assert len(frame) == 6
    assert info.problems == (
        "no run.json: the run's settings and status are unknown",
        "1 row(s) with an unknown outcome skipped",
    )
