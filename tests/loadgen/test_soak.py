"""A short soak: 5,000 calls through a slow, picky device; every call accounted for once."""

from __future__ import annotations

import asyncio
import math
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from switchy import Session, event_callback
from switchy.loadgen import Originator
from switchy.measure.cdr import ANSWERED, BLOCKED, FAILED
from switchy.measure.store import CDRStore, load
from switchy.pool import Pool
from switchy.sim.dut import DUTSettings
from switchy.sim.pytest_plugin import SimulatorHandle

CALLS = 5000
REJECT = 0.10


class AnswerLate:
    """The called leg answers after a random delay (0 to 40 ms)."""

    def __init__(self) -> None:
        self.random = random.Random(3)

    @event_callback("CHANNEL_PARK")
    def on_park(self, session: Session) -> None:
        if session.is_inbound():
            asyncio.get_running_loop().call_later(self.random.uniform(0, 0.04), session.answer)


async def test_every_offered_call_appears_once_with_its_outcome(
    fs_simulator: Callable[..., SimulatorHandle], tmp_path: Path
) -> None:
    latency = random.Random(9)
    simulator = fs_simulator(
        nodes=1,
        dut=DUTSettings(
            reject=REJECT,
            reject_status=486,
            setup_delay=lambda: latency.uniform(0, 0.02),
            seed=11,
        ),
    )
    target = simulator.targets[0]
    assert simulator.cluster is not None
    pool = Pool.from_contacts([(target.host, target.port)])
    await pool.connect()
    results = tmp_path / "soak"
    async with CDRStore(results, {"soak": True}) as store:
        generator = Originator(
            pool,
            rate=250,
            limit=60,
            duration=0.05,
            holding="exp",
            max_offered=CALLS,
            seed=4,
            store=store,
        )
        generator.set_orig_cmd(
            dest_url=f"soak@{target.sip_address}", proxy=simulator.cluster.dut_address, timeout=10
        )
        await generator.load_app(AnswerLate)
        await generator.start()
        await generator.waitwhile(timeout=120)
    await pool.disconnect()
    cdr = load(results)
    assert len(cdr) == CALLS
    assert sorted(cdr["offered_index"]) == list(range(CALLS))
    assert cdr["caller_uuid"].dropna().is_unique
    outcomes = Counter(cdr["outcome"])
    assert outcomes[ANSWERED] + outcomes[FAILED] + outcomes[BLOCKED] == CALLS
    assert outcomes[ANSWERED] == generator.answered
    assert outcomes[BLOCKED] == generator.blocked
    attempted = CALLS - outcomes[BLOCKED]
    failed = cdr[cdr["outcome"] == FAILED]
    assert set(failed["failure_cause"]) == {"USER_BUSY"}  # only the device's rejects
    # The rejects are the device's 10%, within four standard deviations.
    busy = len(failed)
    spread = 4 * math.sqrt(attempted * REJECT * (1 - REJECT))
    assert abs(busy - attempted * REJECT) < spread
    answered = cdr[cdr["outcome"] == ANSWERED]
    assert (answered["callee_answer_time"] >= answered["callee_create_time"]).all()
    assert (answered["caller_hangup_cause"] == "NORMAL_CLEARING").all()
    for client in pool:
        assert client.tracker.is_idle()
