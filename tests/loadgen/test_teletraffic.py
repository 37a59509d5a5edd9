"""Blocking against a device of N channels matches Erlang B for the offered load."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from switchy import Session, event_callback
from switchy.loadgen import Originator
from switchy.measure.cdr import FAILED
from switchy.measure.metrics import traffic_check
from switchy.measure.store import CDRStore
from switchy.pool import Pool
from switchy.sim.dut import DUTSettings
from switchy.sim.pytest_plugin import SimulatorHandle

CHANNELS = 20
RATE = 200.0  # calls/s
HOLDING = 0.1  # s, mean: offered load A = RATE * HOLDING = 20 erlangs


class Answer:
    @event_callback("CHANNEL_PARK")
    def on_park(self, session: Session) -> None:
        if session.is_inbound():
            session.answer()


async def test_measured_blocking_is_erlang_b(
    fs_simulator: Callable[..., SimulatorHandle], tmp_path: Path
) -> None:
    simulator = fs_simulator(nodes=1, dut=DUTSettings(capacity=CHANNELS))
    target = simulator.targets[0]
    assert simulator.cluster is not None
    dut = simulator.cluster.dut_address
    pool = Pool.from_contacts([(target.host, target.port)])
    await pool.connect()
    async with CDRStore(tmp_path / "erlang", {"channels": CHANNELS}) as store:
        generator = Originator(
            pool,
            rate=RATE,
            limit=1000,  # the generator never blocks: the device does
            duration=HOLDING,
            max_offered=2000,
            arrivals="poisson",
            holding="exp",
            seed=20,
            store=store,
        )
        generator.set_orig_cmd(dest_url=f"erlang@{target.sip_address}", proxy=dut, timeout=10)
        await generator.load_app(Answer)
        await generator.start()
        await generator.waitwhile(timeout=60)
        cdr = store.dataframe()
    await pool.disconnect()
    full = (cdr["outcome"] == FAILED) & (cdr["failure_cause"] == "NORMAL_TEMPORARY_FAILURE")
    assert full.sum() > 0  # the device did run out of channels
    assert set(cdr.loc[cdr["outcome"] == FAILED, "failure_cause"]) == {"NORMAL_TEMPORARY_FAILURE"}
    check = traffic_check(cdr, CHANNELS, lost_causes=["NORMAL_TEMPORARY_FAILURE"])
    # A channel is held from the INVITE to the BYE: the asked-for holding time plus
    # call setup and teardown, so the load offered to the device is at least 20 erlangs.
    assert check.offered_erlangs > RATE * HOLDING * 0.95
    assert check.steady
    assert check.consistent, (
        f"measured blocking {check.blocking:.3f} (Wilson {check.interval}, batches "
        f"{check.batch_interval}) vs Erlang B({check.offered_erlangs:.2f}, {CHANNELS}) = "
        f"{check.erlang_b:.3f}"
    )
