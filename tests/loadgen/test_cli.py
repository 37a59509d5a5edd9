"""``switchy run`` end to end, as a user runs it: a real subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from switchy import Client
from switchy.loadgen.run import SimulatorProcess, simulator_sps
from switchy.measure.cdr import ANSWERED, BLOCKED
from switchy.measure.store import load
from switchy.sim.pytest_plugin import FreeSwitchTarget

SWITCHY = [sys.executable, "-m", "switchy"]


def switchy(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SWITCHY, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture
def simulator() -> Iterator[dict[str, str]]:
    """``python -m switchy.sim --nodes 1 --dut`` in a subprocess: its addresses."""
    process = subprocess.Popen(
        [sys.executable, "-m", "switchy.sim", "--nodes", "1", "--dut"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    addresses: dict[str, str] = {}
    while "dut" not in addresses:
        line = process.stdout.readline()
        assert line, "the simulator exited"
        words = line.split()
        if words[0] == "node":
            addresses["esl"] = words[3]
        elif words[0] == "dut:":
            addresses["dut"] = words[2]
    yield addresses
    process.terminate()
    process.wait(10)


def test_a_run_against_the_simulator_writes_its_results(tmp_path: Path) -> None:
    results = tmp_path / "run"
    done = switchy(
        "run",
        "--rate",
        "50",
        "--limit",
        "20",
        "--max-offered",
        "60",
        "--duration",
        "0.2",
        "--results",
        str(results),
        "--stats-interval",
        "0.5",
        "--tick",
        "0.005",
    )
    assert done.returncode == 0, done.stderr + done.stdout
    assert "summary" in done.stdout
    cdr = load(results)
    assert len(cdr) == 60
    assert sorted(cdr["offered_index"]) == list(range(60))
    assert set(cdr["outcome"]) <= {ANSWERED, BLOCKED}
    run = json.loads((results / "run.json").read_text())
    assert run["status"] == "finished"
    assert run["summary"]["offered"] == 60
    assert run["settings"]["tick"] == 0.005
    assert "password" not in json.dumps(run)
    assert (results / "stats.csv").read_text().count("\n") >= 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--rate", "0"), "--rate"),
        (("--limit", "ten"), "--limit"),
        (("--arrivals", "bursty"), "--arrivals"),
        (("--tick", "5"), "--tick"),
        (("--tick", "-0.1"), "--tick"),
        (("--app", "NoSuchApp"), "known apps"),
        (("--app", "TonePlay:0"), "weight"),
        (("localhost:99999", "--proxy", "x"), "HOST[:PORT]"),
        (("127.0.0.1",), "--proxy"),
    ],
)
def test_invalid_options_are_usage_errors(args: tuple[str, ...], message: str) -> None:
    done = switchy("run", *args)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unreachable_node_is_one_clear_line(tmp_path: Path) -> None:
    done = switchy("run", "127.0.0.1:1", "--proxy", "127.0.0.1:5060", "--results", str(tmp_path))
    assert done.returncode == 2
    output = done.stdout + done.stderr
    assert "127.0.0.1:1" in output
    assert "refused" in output
    assert "Traceback" not in output


def test_a_wrong_password_is_one_clear_line(simulator: dict[str, str], tmp_path: Path) -> None:
    secret = "not-the-password"
    done = switchy(
        "run",
        simulator["esl"],
        "--proxy",
        simulator["dut"],
        "--password",
        secret,
        "--results",
        str(tmp_path),
    )
    assert done.returncode == 2
    output = done.stdout + done.stderr
    assert simulator["esl"] in output
    assert "authentication failed" in output
    assert secret not in output
    assert "Traceback" not in output


def test_the_password_can_come_from_the_environment_or_a_file(
    simulator: dict[str, str], tmp_path: Path
) -> None:
    secret_file = tmp_path / "password"
    secret_file.write_text("ClueCon\n")
    for extra, env in (
        (["--password-file", str(secret_file)], {}),
        ([], {"SWITCHY_PASSWORD": "ClueCon"}),
    ):
        done = subprocess.run(
            [
                *SWITCHY,
                "run",
                simulator["esl"],
                "--proxy",
                simulator["dut"],
                "--max-offered",
                "3",
                "--rate",
                "30",
                "--results",
                str(tmp_path / f"r{len(env)}"),
                *extra,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **env},
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr


def start_run(results: Path, *args: str) -> subprocess.Popen[str]:
    """``switchy run`` in a process group of its own, as a shell runs a command."""
    return subprocess.Popen(
        [*SWITCHY, "run", "--results", str(results), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_for_rows(results: Path, rows: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        path = results / "cdr.jsonl"
        if path.exists() and path.read_text().count("\n") >= rows:
            return
        time.sleep(0.1)  # polling a file another process writes: nothing to await
    raise AssertionError(f"fewer than {rows} CDR rows in {results} after {timeout}s")


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_run_hangs_up_flushes_and_reports(
    tmp_path: Path, signum: int, code: int
) -> None:
    results = tmp_path / "run"
    process = start_run(results, "--rate", "50", "--limit", "30", "--duration", "30")
    wait_for_rows(results, 1)  # blocked calls are written at once: the limit is reached
    # To the whole group, as a terminal's Ctrl-C: the simulator switchy started
    # must outlive the hangups it is asked for.
    os.killpg(process.pid, signum)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    assert "summary" in stdout
    assert "node lost" not in stderr
    run = json.loads((results / "run.json").read_text())
    assert run["status"] == "interrupted"
    cdr = load(results)
    assert len(cdr) == run["summary"]["offered"]
    assert sorted(cdr["offered_index"]) == list(range(len(cdr)))
    answered = cdr[cdr["outcome"] == ANSWERED]
    assert len(answered) >= 30
    assert set(answered["caller_hangup_cause"]) == {"NORMAL_CLEARING"}


def test_sigkill_loses_at_most_the_last_second(tmp_path: Path) -> None:
    results = tmp_path / "run"
    rate, holding = 50.0, 0.2
    process = start_run(results, "--rate", str(rate), "--limit", "1000", "--duration", str(holding))
    wait_for_rows(results, 250)
    killed_at = time.time()
    process.kill()
    process.communicate(timeout=30)
    start = json.loads((results / "run.json").read_text())["start_time"]
    cdr = load(results)
    # Call i is offered at start + (i + 1) / rate and ends about `holding` later: every call
    # that ended more than a second before the kill (with a margin for setup) is on disk.
    ended = [i for i in range(100_000) if start + (i + 1) / rate + holding + 0.5 < killed_at - 1]
    assert ended
    assert set(ended) <= set(cdr["offered_index"])


@pytest.mark.skipif("not config.getoption('--fshost')")
def test_a_short_run_against_a_real_freeswitch(fs: FreeSwitchTarget, tmp_path: Path) -> None:
    done = subprocess.run(
        [
            *SWITCHY,
            "run",
            fs.address,
            "--proxy",
            fs.sip_address,
            "--rate",
            "5",
            "--limit",
            "10",
            "--max-offered",
            "50",
            "--results",
            str(tmp_path / "real"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "SWITCHY_PASSWORD": fs.password},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    cdr = load(tmp_path / "real")
    assert len(cdr) == 50
    assert (cdr["outcome"] == ANSWERED).all()


@pytest.mark.parametrize("hostile", ["a\nb", "x\rapi hupall", "unload mod_event_socket", "a b"])
def test_hostile_options_are_refused_in_one_line(hostile: str, tmp_path: Path) -> None:
    done = switchy("run", "--user", hostile, "--max-offered", "1", "--results", str(tmp_path / "r"))
    assert done.returncode == 2, done.stdout + done.stderr
    output = done.stdout + done.stderr
    assert "originate" in output
    assert "Traceback" not in output


def test_the_password_never_shows(tmp_path: Path) -> None:
    secret = "s3cret-Pa55word-4711"
    results = tmp_path / "run"
    done = subprocess.run(
        [
            *SWITCHY,
            "-vv",
            "run",
            "--rate",
            "20",
            "--max-offered",
            "10",
            "--duration",
            "0.1",
            "--results",
            str(results),
            "--report",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "SWITCHY_PASSWORD": secret},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "DEBUG" in done.stderr  # the most verbose logging was on
    assert secret not in done.stdout + done.stderr
    files = [path for path in results.iterdir() if path.is_file()]
    assert {"run.json", "cdr.parquet", "report.html"} <= {path.name for path in files}
    for path in files:
        assert secret.encode() not in path.read_bytes(), path.name


async def test_the_simulator_of_a_run_is_given_room_for_its_rate() -> None:
    """Each simulated call opens two sessions on one node, and a lost node's
    share moves to the survivor: fsctl sps must allow 2x the rate, and more."""
    assert simulator_sps(30) == 1000  # FreeSWITCH's own limit is enough
    assert simulator_sps(1000) == 2500
    simulator = await SimulatorProcess(nodes=1, sessions_per_second=simulator_sps(800)).start()
    try:
        host, port = simulator.esl[0]
        client = Client(host, port)
        await client.connect()
        try:
            assert "out of max 2000," in await client.api("status")
        finally:
            await client.disconnect()
    finally:
        await simulator.stop()
