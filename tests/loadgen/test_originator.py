"""The call generator against the simulator (or a real FreeSWITCH with --fshost)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import math
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from switchy import Session, event_callback
from switchy.apps.players import TonePlay
from switchy.errors import ConfigurationError
from switchy.loadgen import Originator, get_originator
from switchy.loadgen.originator import WeightedInterleave, _ClockOffset
from switchy.measure.cdr import ANSWERED, BLOCKED, FAILED, CallRecord
from switchy.measure.store import CDRStore
from switchy.pool import Pool
from switchy.sim.pytest_plugin import FreeSwitchTarget, SimulatorHandle

TIMEOUT = 30.0


class Answer:
    """The callee answers when parked; nothing else."""

    @event_callback("CHANNEL_PARK")
    def on_park(self, session: Session) -> None:
        if session.is_inbound():
            session.answer()


class Reject:
    """The callee refuses with 486 Busy Here."""

    @event_callback("CHANNEL_PARK")
    def on_park(self, session: Session) -> None:
        if session.is_inbound():
            session.respond(486)


class AnswerThenHangUp(Answer):
    """The callee answers, then hangs up at once: calls end long before their time."""

    @event_callback("CHANNEL_ANSWER")
    def on_answer(self, session: Session) -> None:
        if session.is_inbound():
            session.hangup()


@pytest.fixture
async def pool(fs: FreeSwitchTarget) -> AsyncIterator[Pool]:
    pool = Pool.from_contacts([(fs.host, fs.port)], fs.password)
    await pool.connect()
    yield pool
    await pool.disconnect()


def originator(
    pool: Pool, fs: FreeSwitchTarget, **settings: object
) -> tuple[Originator, list[CallRecord]]:
    records: list[CallRecord] = []
    generator = Originator(pool, on_record=[records.append], **settings)  # type: ignore[arg-type]
    generator.set_orig_cmd(dest_url=f"load@{fs.sip_address}", timeout=10)
    return generator, records


async def run_to_end(generator: Originator, timeout: float = TIMEOUT) -> None:
    await generator.start()
    await generator.waitwhile(timeout=timeout)


def assert_idle(pool: Pool) -> None:
    for client in pool:
        assert client.tracker.is_idle(), client.tracker


async def test_max_offered_is_exact_and_every_call_has_one_record(
    pool: Pool, fs: FreeSwitchTarget
) -> None:
    generator, records = originator(pool, fs, rate=100, limit=10, duration=0.05, max_offered=120)
    await generator.load_app(Answer)
    await run_to_end(generator)
    assert generator.state == "STOPPED"
    assert generator.offered == 120
    assert sorted(r.offered_index for r in records) == list(range(120))
    assert generator.offered == generator.attempted + generator.blocked
    assert Counter(r.outcome for r in records)[ANSWERED] == generator.answered
    answered = [r for r in records if r.outcome == ANSWERED]
    assert answered
    for record in answered:
        assert record.caller_create_time is not None
        assert record.caller_answer_time is not None
        assert record.callee_uuid is not None
        assert record.job_result_time is not None
        assert record.request_time is not None
        assert record.request_time <= record.job_result_time
        assert record.caller_hangup_cause == "NORMAL_CLEARING"
    assert not generator._callees  # nothing kept of ended calls
    assert_idle(pool)


async def test_ended_calls_leave_nothing_to_the_cycle_collector(
    pool: Pool, fs: FreeSwitchTarget
) -> None:
    # Whatever refers back to a call (a job's callback, a session's call) is let
    # go when it ends, so reference counting frees each call and the events it
    # holds at once: none waits in the collector's generations.
    generator, records = originator(pool, fs, rate=100, limit=10, duration=0.05, max_offered=60)
    await generator.load_app(Answer)
    gc.collect()
    gc.disable()
    try:
        await run_to_end(generator)
        assert generator.answered == 60
        records.clear()
        assert gc.collect() < 60  # a cycle a call would leave 60 of each of its objects
    finally:
        gc.enable()


@pytest.mark.parametrize("tick", [0.0, 0.05])
async def test_each_call_is_held_for_its_own_holding_time(
    pool: Pool, fs: FreeSwitchTarget, tick: float
) -> None:
    # Exponential holding times end calls out of their order of answer; each is
    # hung up once its own time is up (on the nearest tick, with a tick), as the
    # server timed it from answer to hang-up.
    generator, records = originator(
        pool, fs, rate=50, limit=100, duration=0.2, holding="exp", seed=7, max_offered=40, tick=tick
    )
    await generator.load_app(Answer)
    await run_to_end(generator)
    answered = sorted((r for r in records if r.outcome == ANSWERED), key=lambda r: r.offered_index)
    assert len(answered) == 40
    holding = [r.holding_time or 0.0 for r in answered]
    assert any(a > b + 0.05 for a, b in itertools.pairwise(holding))  # out of order
    for record, wanted in zip(answered, holding, strict=True):
        assert record.caller_hangup_cause == "NORMAL_CLEARING"
        assert record.caller_hangup_time is not None and record.caller_answer_time is not None
        held = record.caller_hangup_time - record.caller_answer_time
        assert wanted - tick - 0.005 <= held <= wanted + tick + 0.1, (wanted, held)
    assert_idle(pool)


async def test_calls_ended_early_leave_no_planned_hang_ups_behind(
    pool: Pool, fs: FreeSwitchTarget
) -> None:
    # Held for a minute as planned, each call is hung up by the far end at once:
    # its planned hang-up is cancelled, and cancelled ones are dropped once they
    # outnumber the rest, so they do not pile up for a minute.
    generator, records = originator(pool, fs, rate=200, limit=300, duration=60, max_offered=300)
    await generator.load_app(AnswerThenHangUp)
    await run_to_end(generator)
    assert Counter(r.outcome for r in records) == {ANSWERED: 300}
    assert len(generator._hangups) <= 101
    assert_idle(pool)


async def test_deterministic_rate_is_exact(pool: Pool, fs: FreeSwitchTarget) -> None:
    generator, records = originator(pool, fs, rate=200, limit=1, duration=0.01, max_offered=400)
    await generator.load_app(Answer)
    await run_to_end(generator)
    times = sorted(r.scheduled_time for r in records)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(abs(gap - 1 / 200) < 1e-6 for gap in gaps)
    # 2 s at 200/s: the schedule's own count is exact.
    assert sum(1 for t in times if t - times[0] < 1.0) == 200


@contextlib.asynccontextmanager
async def finished_run(
    fs: FreeSwitchTarget, **settings: Any
) -> AsyncIterator[tuple[Originator, list[CallRecord]]]:
    """A get_originator() run of Answer calls to its end, with its CDRs; disconnects after."""
    records: list[CallRecord] = []
    generator = get_originator(
        [(fs.host, fs.port)], fs.password, on_record=[records.append], **settings
    )
    await generator.pool.connect()
    try:
        generator.set_orig_cmd(dest_url=f"load@{fs.sip_address}", timeout=10)
        await generator.load_app(Answer)
        await run_to_end(generator)
        yield generator, records
    finally:
        await generator.pool.disconnect()


async def test_a_tick_offers_arrivals_in_passes(fs: FreeSwitchTarget) -> None:
    # Arrivals every 10 ms, ticks every 50 ms: calls go out in groups of about
    # five, one group a tick, each call up to a tick late; without a tick, one
    # call every 10 ms. get_originator has the nodes read on the same ticks.
    async with finished_run(fs, rate=100, limit=50, duration=0.1, max_offered=50, tick=0.05) as (
        generator,
        records,
    ):
        assert generator.answered == 50, (generator.blocked, generator.failures)
        requests = sorted(r.request_time or 0.0 for r in records)
        passes = 1 + sum(1 for a, b in itertools.pairwise(requests) if b - a > 0.005)
        assert passes <= 15, requests
        assert all(-0.001 <= late <= 0.15 for late in generator.lateness)
        assert sum(generator.lateness) / len(generator.lateness) > 0.01
        assert_idle(generator.pool)


async def test_holding_times_count_from_the_answer_when_reading_on_ticks(
    fs: FreeSwitchTarget,
) -> None:
    # Read on 50 ms ticks, the caller's CHANNEL_ANSWER is handled up to a tick
    # after it happened (nearly a whole tick here: the callee's answer goes out
    # on a tick, so the caller's comes just after one). The hang-up counts the
    # 200 ms from the answer as the server timed it: held times are 200 ms on
    # average, each within a tick (not 200 ms plus the wait to be read).
    tick = 0.05
    async with finished_run(fs, rate=50, limit=50, duration=0.2, max_offered=40, tick=tick) as (
        generator,
        records,
    ):
        assert generator.answered == 40, (generator.blocked, generator.failures)
        held = [
            (r.caller_hangup_time or 0.0) - (r.caller_answer_time or 0.0)
            for r in records
            if r.outcome == ANSWERED
        ]
        assert all(0.2 - tick - 0.005 <= h <= 0.2 + tick + 0.1 for h in held), held
        assert abs(sum(held) / len(held) - 0.2) < 0.015, held


def test_the_clock_offset_is_the_least_lately_and_follows_drift() -> None:
    offset = _ClockOffset()
    assert offset.value is None
    offset.add(0.030, now=100.0)
    offset.add(0.002, now=101.0)  # a quick trip: the best guess
    offset.add(0.040, now=102.0)
    assert offset.value == 0.002
    window = _ClockOffset.WINDOW
    offset.add(0.050, now=100.0 + window)  # a window later the old least still counts
    assert offset.value == 0.002
    offset.add(0.051, now=100.0 + 2 * window)  # two windows later it is forgotten
    assert offset.value == 0.050
    offset.add(0.052, now=100.0 + 3 * window)
    assert offset.value == 0.051  # the clocks drifted apart: the offset follows


async def test_the_limit_is_never_exceeded(pool: Pool, fs: FreeSwitchTarget) -> None:
    generator, records = originator(pool, fs, rate=200, limit=5, duration=0.1, max_offered=200)
    await generator.load_app(Answer)
    peak = 0

    def watch(record: CallRecord) -> None:
        nonlocal peak
        peak = max(peak, generator.active_calls)

    generator.on_record.append(watch)
    await run_to_end(generator)
    assert generator.blocked > 0
    assert generator.peak_active_calls <= 5
    assert peak <= 5
    # FreeSWITCH's own view: calls whose caller legs overlap never exceed the limit.
    spans = sorted(
        (r.caller_create_time, r.caller_hangup_time)
        for r in records
        if r.caller_create_time is not None and r.caller_hangup_time is not None
    )
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    concurrent = most = 0
    for _, step in events:
        concurrent += step
        most = max(most, concurrent)
    assert most <= 5
    assert all(r.outcome in (ANSWERED, BLOCKED) for r in records)


async def test_stop_and_hupall_leave_nothing_behind(pool: Pool, fs: FreeSwitchTarget) -> None:
    generator, records = originator(pool, fs, rate=50, limit=20, duration=60)
    await generator.load_app(TonePlay)
    await generator.start()
    await asyncio.wait_for(
        pool.clients[0].tracker.wait_for(lambda: generator.answered + generator.active_calls >= 10),
        TIMEOUT,
    )
    await pool.clients[0].tracker.wait_for(lambda: generator.active_calls >= 10, TIMEOUT)
    generator.stop()
    assert generator.state == "STOPPED"
    assert not generator.is_alive() or generator.state == "STOPPED"
    offered = generator.offered
    await generator.hupall()
    await generator.waitwhile(timeout=TIMEOUT)
    assert generator.offered == offered
    assert generator.active_calls == 0
    assert not generator._callees
    assert len(records) == offered
    causes = Counter(r.caller_hangup_cause for r in records if r.outcome == ANSWERED)
    assert causes["NORMAL_CLEARING"] >= 1
    for client in pool:
        await client.tracker.wait_for(client.tracker.is_idle, TIMEOUT)
    assert_idle(pool)


async def test_app_mix_follows_the_weights_exactly(pool: Pool, fs: FreeSwitchTarget) -> None:
    generator, records = originator(pool, fs, rate=200, limit=50, duration=0.02, max_offered=60)
    await generator.load_app(Answer, weight=2)
    await generator.load_app(Reject, weight=1)
    assert generator.app_weights == {"Answer": 2, "Reject": 1}
    await run_to_end(generator)
    attempted = [r for r in records if r.outcome != BLOCKED]
    assert len(attempted) == 60
    assert Counter(r.app for r in attempted) == {"Answer": 40, "Reject": 20}
    busy = [r for r in attempted if r.app == "Reject"]
    assert all(r.outcome == FAILED and r.failure_cause == "USER_BUSY" for r in busy)
    assert generator.failures["USER_BUSY"] == 20
    assert all(r.outcome == ANSWERED for r in attempted if r.app == "Answer")


def test_weighted_interleave_spreads_evenly() -> None:
    mix = WeightedInterleave()
    mix.set("a", 3)
    mix.set("b", 1)
    picks = [mix.next() for _ in range(8)]
    assert picks.count("a") == 6
    assert picks[:4].count("b") == 1
    with pytest.raises(ValueError, match="weight"):
        mix.set("c", 0)


async def test_settings_change_while_running(pool: Pool, fs: FreeSwitchTarget) -> None:
    generator, records = originator(pool, fs, rate=20, limit=4, max_offered=None)
    await generator.load_app(Answer)
    assert generator.auto_duration
    assert generator.duration == pytest.approx(4 / 20)
    await generator.start()
    await pool.clients[0].tracker.wait_for(lambda: generator.offered >= 5, TIMEOUT)
    generator.rate = 200
    assert generator.duration == pytest.approx(4 / 200)  # Little's law kept
    generator.limit = 8
    assert generator.duration == pytest.approx(8 / 200)
    changed_at = generator.offered
    await pool.clients[0].tracker.wait_for(lambda: generator.offered >= changed_at + 100, TIMEOUT)
    generator.max_offered = generator.offered + 10
    await generator.waitwhile(timeout=TIMEOUT)
    late = sorted(r.scheduled_time for r in records if r.offered_index > changed_at + 5)
    gaps = [b - a for a, b in itertools.pairwise(late)]
    assert max(gaps) < 1 / 200 + 1e-6
    generator.duration = 0.5
    assert not generator.auto_duration
    assert repr(generator).startswith("<Originator STOPPED")


async def test_rate_zero_pauses_offering_until_the_rate_changes(
    pool: Pool, fs: FreeSwitchTarget
) -> None:
    generator, records = originator(pool, fs, rate=0, limit=10, duration=0.05, max_offered=20)
    await generator.load_app(Answer)
    await generator.start()
    assert generator.is_alive()
    with pytest.raises(TimeoutError):  # nothing is due at rate 0
        await generator.waitwhile(lambda: generator.offered == 0, timeout=0.2)
    generator.rate = 200
    await generator.waitwhile(timeout=TIMEOUT)
    assert not generator.is_alive()
    assert generator.offered == len(records) == 20
    generator.stop()  # stopping a generator that has stopped changes nothing
    await generator.shutdown(timeout=TIMEOUT)
    assert generator.offered == 20


async def test_poisson_arrivals_are_poisson(pool: Pool, fs: FreeSwitchTarget) -> None:
    # Nearly every arrival is blocked (limit 1, long holds): the schedule is what is tested.
    generator, records = originator(
        pool, fs, rate=2000, limit=1, duration=30, max_offered=4000, arrivals="poisson", seed=7
    )
    await generator.load_app(Answer)
    await generator.start()
    await generator.waitwhile("STOPPED", timeout=TIMEOUT)
    await generator.hupall()
    await generator.waitwhile(timeout=TIMEOUT)
    times = sorted(r.scheduled_time for r in records)
    gaps = sorted(b - a for a, b in itertools.pairwise(times))
    n = len(gaps)
    # Kolmogorov-Smirnov against Exp(rate): the largest CDF distance, at alpha = 0.01.
    distance = max(
        max(
            abs((i + 1) / n - (1 - math.exp(-2000 * gap))), abs(i / n - (1 - math.exp(-2000 * gap)))
        )
        for i, gap in enumerate(gaps)
    )
    assert distance < 1.628 / math.sqrt(n)
    # Index of dispersion of the counts in 10 ms windows: 1 for Poisson.
    start = times[0]
    counts = Counter(int((t - start) / 0.01) for t in times)
    windows = [counts.get(i, 0) for i in range(int((times[-1] - start) / 0.01))]
    mean = sum(windows) / len(windows)
    variance = sum((c - mean) ** 2 for c in windows) / (len(windows) - 1)
    assert 0.8 < variance / mean < 1.2


async def test_configuration_errors_are_clear(pool: Pool, fs: FreeSwitchTarget) -> None:
    generator = Originator(pool)
    with pytest.raises(ConfigurationError, match="no app loaded"):
        await generator.start()
    await generator.load_app(Answer)
    with pytest.raises(ConfigurationError, match="no originate destination"):
        await generator.start()
    with pytest.raises(ConfigurationError, match="rate"):
        generator.rate = -1
    with pytest.raises(ConfigurationError, match="limit"):
        generator.limit = 0
    for tick in (-0.001, math.nan, math.inf):
        with pytest.raises(ConfigurationError, match="tick"):
            generator.tick = tick
        with pytest.raises(ConfigurationError, match="tick"):
            get_originator(["127.0.0.1"], tick=tick)
    with pytest.raises(ConfigurationError, match="arrivals"):
        Originator(pool, arrivals="bursty")
    with pytest.raises(ConfigurationError, match="holding"):
        Originator(pool, holding="pareto")
    unreachable = get_originator(["127.0.0.1:1"])
    await unreachable.load_app(Answer)
    with pytest.raises(ConfigurationError, match="no node is reachable"):
        await unreachable.start()


async def test_measurers_give_the_original_access_paths(
    pool: Pool, fs: FreeSwitchTarget, tmp_path: Path
) -> None:
    async with CDRStore(tmp_path / "run", {"rate": 100}) as store:
        generator = Originator(pool, rate=100, limit=10, duration=0.05, max_offered=30, store=store)
        generator.set_orig_cmd(dest_url=f"measured@{fs.sip_address}", timeout=10)
        await generator.load_app(Answer)
        await run_to_end(generator)
        cdr = generator.measurers.stores.CDR
        assert len(cdr) == 30
        metrics = generator.measurers.ops.call_metrics
        assert len(metrics) == 30
        figures = generator.measurers.plot()
        assert figures
    with pytest.raises(ConfigurationError, match="store"):
        _ = Originator(pool).measurers


async def test_nodes_are_never_loaded_past_their_capacity(
    fs_simulator: Callable[..., SimulatorHandle],
) -> None:
    simulator = fs_simulator(nodes=2)
    targets = simulator.targets
    pool = Pool.from_contacts([(t.host, t.port) for t in targets])
    await pool.connect()
    sip = {client: t.sip_address for client, t in zip(pool, targets, strict=True)}
    peaks: dict[str, int] = {}
    generator = Originator(
        pool,
        rate=200,
        limit=50,
        duration=0.2,
        max_offered=100,
        node_capacity=3,
        node_choice="least-loaded",
    )

    def watch(record: CallRecord) -> None:
        for node, load in generator.calls_by_node.items():
            peaks[node] = max(peaks.get(node, 0), load)

    generator.on_record.append(watch)
    generator.set_orig_cmd(lambda client: {"dest_url": f"cap@{sip[client]}", "timeout": 10})
    await generator.load_app(Answer)
    await run_to_end(generator)
    await pool.disconnect()
    assert generator.peak_active_calls <= 6  # two nodes of three calls each
    assert max(peaks.values()) <= 3
    assert generator.blocked > 0


async def test_hard_hupall_clears_every_call_on_the_nodes(pool: Pool, fs: FreeSwitchTarget) -> None:
    generator, records = originator(pool, fs, rate=50, limit=10, duration=60)
    await generator.load_app(Answer)
    await generator.start()
    await pool.clients[0].tracker.wait_for(
        lambda: generator.answered + generator.active_calls >= 5, TIMEOUT
    )
    await pool.clients[0].tracker.wait_for(lambda: generator.active_calls >= 5, TIMEOUT)
    await generator.hard_hupall()
    await generator.waitwhile(timeout=TIMEOUT)
    assert generator.state == "STOPPED"
    assert generator.active_calls == 0
    await pool.clients[0].tracker.wait_for(pool.clients[0].tracker.is_idle, TIMEOUT)
    assert len(records) == generator.offered
