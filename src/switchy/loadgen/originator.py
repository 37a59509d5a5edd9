"""The call generator: offers calls to a device under test from a pool of FreeSWITCH nodes.

Traffic is described the way teletraffic theory does:

- **rate** (calls/s): the arrival intensity. Arrivals are deterministic
  (evenly spaced) or Poisson (exponential gaps), optionally ramped, and
  scheduled against absolute time, so the schedule never drifts.
- **limit** (erlangs): the most calls up at once. An arrival that finds
  ``limit`` calls up is *blocked at the generator* and recorded as such:
  ``offered = attempted + blocked`` always holds.
- **duration** (s): the mean holding time, from answer to hangup, drawn from
  a distribution (fixed, exponential, uniform or lognormal) scaled to it. It
  counts from the answer as the node timed it (its CHANNEL_ANSWER's
  timestamp), however long that event waited to be handled. With
  ``auto_duration`` (the default), duration follows Little's law,
  ``duration = limit / rate``, so that the offered load ``rate × duration``
  equals ``limit`` erlangs.
- **max_offered**: stop offering after this many calls (None: until stopped).
- **tick** (s, 0 by default): offer arrivals and hang up calls on the ticks of
  this period (:mod:`switchy.ticks`) rather than at their exact times. With
  the pool's clients reading on the same ticks (``read_interval``), a busy
  generator wakes once per tick for all its work, at about half the CPU per
  call at hundreds of calls/s; each arrival is up to one tick late (arrivals
  keep their schedule, so the rate is unchanged) and each hang-up on the
  nearest tick (holding times stay exact on average).

Every offered call ends as one :class:`~switchy.measure.cdr.CallRecord`, passed
to the ``on_record`` callbacks when its last leg has hung up.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import heapq
import itertools
import logging
import math
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from switchy import ids
from switchy.client import Client
from switchy.errors import ConfigurationError, ConnectionLost, SwitchyError
from switchy.esl import commands
from switchy.esl.protocol import Event
from switchy.marks import handler
from switchy.measure.cdr import ANSWERED, BLOCKED, FAILED, NODE_LOST, CallRecord
from switchy.measure.store import CDRStore
from switchy.models import Job
from switchy.pool import Pool
from switchy.ticks import check_tick, next_tick
from switchy.tracking import CALL_HEADER
from switchy.traffic import (
    Arrivals,
    DeterministicArrivals,
    HoldingTime,
    PoissonArrivals,
    auto_duration,
)

if TYPE_CHECKING:
    from switchy.measure.metrics import Measurers

__all__ = [
    "ARRIVAL_KINDS",
    "NODE_CHOICES",
    "NODE_LOSS_POLICIES",
    "NodeLoss",
    "Originator",
    "State",
    "WeightedInterleave",
]

log = logging.getLogger("switchy.loadgen")

ARRIVAL_KINDS = ("fixed", "poisson")
NODE_CHOICES = ("round-robin", "least-loaded")
#: What a lost node does to the run: "continue" on the other nodes, or "stop" it.
NODE_LOSS_POLICIES = ("continue", "stop")
#: How the unit-mean holding-time shape of each ``holding`` kind is built.
_UNIT_HOLDING = {
    "fixed": {"mean": 1.0},
    "exp": {"mean": 1.0},
    "uniform": {"low": 0.0, "high": 2.0},
}
# App id of the originator's own event recorder on each client (handlers only).
_RECORDER_ID = "switchy.loadgen.recorder"


class State(enum.Enum):
    """The originator's state machine: INITIAL -> ORIGINATING -> STOPPED (-> ORIGINATING)."""

    INITIAL = "INITIAL"
    ORIGINATING = "ORIGINATING"
    STOPPED = "STOPPED"


class WeightedInterleave:
    """Picks keys in proportion to their weights, deterministically and evenly spread.

    Smooth weighted round-robin: over any run of ``sum(weights)`` picks each key
    comes exactly ``weight`` times, interleaved (weights 2:1 give A, B, A, ...).
    """

    def __init__(self) -> None:
        self._weights: dict[str, int] = {}
        self._credit: dict[str, int] = {}

    def set(self, key: str, weight: int) -> None:
        if weight < 1:
            raise ValueError(f"weight must be a positive integer, got {weight!r}")
        self._weights[key] = weight
        self._credit.setdefault(key, 0)

    def remove(self, key: str) -> None:
        self._weights.pop(key, None)
        self._credit.pop(key, None)

    @property
    def weights(self) -> dict[str, int]:
        return dict(self._weights)

    def __bool__(self) -> bool:
        return bool(self._weights)

    def next(self) -> str:
        total = 0
        best: str | None = None
        for key, weight in self._weights.items():
            self._credit[key] += weight
            total += weight
            if best is None or self._credit[key] > self._credit[best]:
                best = key
        if best is None:
            raise ConfigurationError("no app loaded")
        self._credit[best] -= total
        return best


@dataclass
class NodeLoss:
    """A node that went away during the run: when, for how long, what it cost."""

    node: str
    lost_at: float
    reason: str
    back_at: float | None = None
    calls_lost: int = 0

    @property
    def seconds_down(self) -> float | None:
        return None if self.back_at is None else self.back_at - self.lost_at


class _Call:
    """An attempted call while it is up: its record and what it waits for."""

    __slots__ = (
        "callee_client",
        "callee_done",
        "callee_seen",
        "caller_created",
        "caller_done",
        "client",
        "hangup_due",
        "job",
        "job_failed",
        "record",
        "uuid",
    )

    def __init__(self, record: CallRecord, uuid: str, client: Client) -> None:
        self.record = record
        self.uuid = uuid
        self.client = client
        self.job: Job | None = None
        self.callee_client: Client | None = None
        self.job_failed = False
        self.caller_created = False
        self.caller_done = False
        self.callee_seen = False
        self.callee_done = False
        #: When (loop time) its holding time ends, while that hang-up is still planned.
        self.hangup_due: float | None = None


class _HangupSchedule:
    """The calls to hang up when their holding time ends: one heap and one event
    loop timer for all of them. (A timer per call would put as many entries as
    there are calls up into the event loop's own heap, whose entries compare in
    Python; here they are tuples, compared in C, and on a tick the calls due at
    the same moment share one wake-up.)

    A cancelled hang-up stays in the heap until it is due, unless cancelled
    ones come to outnumber the rest: then the heap is rebuilt without them, so
    calls that end long before their holding time do not pile up in it.
    """

    def __init__(self, hang_up: Callable[[_Call], None]) -> None:
        self._hang_up = hang_up
        self._due: list[tuple[float, int, _Call]] = []
        self._order = itertools.count()  # ties in time keep their order; calls never compare
        self._cancelled = 0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf

    def add(self, call: _Call, when: float, loop: asyncio.AbstractEventLoop) -> None:
        """Hang ``call`` up at ``loop`` time ``when`` (unless cancelled first)."""
        self.cancel(call)
        call.hangup_due = when
        heapq.heappush(self._due, (when, next(self._order), call))
        if when < self._timer_at:  # (never for an endless holding time)
            if self._timer is not None:
                self._timer.cancel()
            self._timer = loop.call_at(when, self._run)
            self._timer_at = when

    def cancel(self, call: _Call) -> None:
        """Forget ``call``'s planned hang-up, if it has one."""
        if call.hangup_due is None:
            return
        call.hangup_due = None
        self._cancelled += 1
        if self._cancelled > 100 and 2 * self._cancelled > len(self._due):
            self._due = [entry for entry in self._due if entry[2].hangup_due == entry[0]]
            heapq.heapify(self._due)
            self._cancelled = 0

    def _run(self) -> None:
        loop = asyncio.get_running_loop()
        # The loop may run a timer a clock resolution early: what was due then is due.
        now = max(loop.time(), self._timer_at)
        self._timer, self._timer_at = None, math.inf
        due = self._due
        while due and due[0][0] <= now:
            when, _, call = heapq.heappop(due)
            if call.hangup_due == when:
                call.hangup_due = None
                self._hang_up(call)
            else:  # cancelled
                self._cancelled -= 1
        if due and due[0][0] < math.inf:
            self._timer_at = due[0][0]
            self._timer = loop.call_at(self._timer_at, self._run)

    def __len__(self) -> int:
        return len(self._due)


class _ClockOffset:
    """How far a node's event timestamps run ahead of this host's clock.

    Each sample is a caller leg's Event-Date-Timestamp at CHANNEL_CREATE less
    the local time its originate was sent: the difference of the clocks plus
    the trip there and the node's work. The least sample is the best guess of
    the first two: a node's time less it is the local time of the same moment,
    however long the event then waited to be read. The least is taken over the
    last one or two windows of WINDOW seconds, so it follows the clocks' drift.
    """

    WINDOW = 10.0

    def __init__(self) -> None:
        self._least = math.inf  # in the current window
        self._earlier = math.inf  # in the one before
        self._window_end = -math.inf

    def add(self, sample: float, now: float) -> None:
        if now >= self._window_end:
            self._earlier, self._least = self._least, math.inf
            self._window_end = now + self.WINDOW
        self._least = min(self._least, sample)

    @property
    def value(self) -> float | None:
        """The offset in seconds, None before the first sample."""
        least = min(self._least, self._earlier)
        return None if least == math.inf else least


class _Recorder:
    """Per-client event handlers feeding the originator's CDRs."""

    def __init__(self, originator: Originator, client: Client) -> None:
        self._originator = originator
        self._client = client

    @handler(
        "CHANNEL_CREATE",
        "CHANNEL_PROGRESS",
        "CHANNEL_PROGRESS_MEDIA",
        "CHANNEL_ANSWER",
        "CHANNEL_HANGUP",
    )
    def on_event(self, event: Event) -> None:
        self._originator._channel_event(event, self._client)


class Originator:
    """Offers calls from a :class:`~switchy.pool.Pool` of nodes; see the module docstring.

    Settings (``rate``, ``limit``, ``duration``, ``max_offered``,
    ``auto_duration``, ``tick``) can all be changed while it runs.
    """

    def __init__(
        self,
        pool: Pool,
        *,
        rate: float = 30.0,
        limit: int = 1,
        duration: float | None = None,
        max_offered: int | None = None,
        auto_duration: bool = True,
        arrivals: str = "fixed",
        ramp_time: float = 0.0,
        holding: str = "fixed",
        holding_cv: float = 1.0,
        node_choice: str = "round-robin",
        node_capacity: int | None = None,
        on_node_loss: str = "continue",
        tick: float = 0.0,
        seed: int | None = None,
        on_record: Iterable[Callable[[CallRecord], Any]] = (),
        store: CDRStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if arrivals not in ARRIVAL_KINDS:
            raise ConfigurationError(f"arrivals must be one of {ARRIVAL_KINDS}, got {arrivals!r}")
        if on_node_loss not in NODE_LOSS_POLICIES:
            raise ConfigurationError(
                f"on_node_loss must be one of {NODE_LOSS_POLICIES}, got {on_node_loss!r}"
            )
        if node_choice not in NODE_CHOICES:
            raise ConfigurationError(
                f"node_choice must be one of {NODE_CHOICES}, got {node_choice!r}"
            )
        self.pool = pool
        self.arrival_kind = arrivals
        self.ramp_time = _non_negative(ramp_time, "ramp_time")
        self.node_choice = node_choice
        self.node_capacity = node_capacity
        self.on_node_loss = on_node_loss
        self.seed = seed
        self.clock = clock
        self.on_record: list[Callable[[CallRecord], Any]] = list(on_record)
        #: Where the CDRs go (the caller opens and closes it), for :attr:`measurers`.
        self.store = store
        if store is not None:
            self.on_record.insert(0, store.append)
        self._rate = _non_negative(rate, "rate")
        self._limit = _limit(limit)
        self._auto_duration = auto_duration and duration is None
        self._duration = (
            auto_duration_of(self._limit, self._rate)
            if self._auto_duration
            else _positive(duration if duration is not None else 10.0, "duration")
        )
        self.max_offered = max_offered
        self._tick = check_tick(tick, "tick")
        self._holding = _unit_holding(holding, holding_cv, seed)
        self.holding_kind = holding
        self._state = State.INITIAL
        self._apps = WeightedInterleave()
        self._calls: dict[str, _Call] = {}  # by caller uuid
        self._callees: dict[str, _Call] = {}  # by callee uuid, from the callee's first event
        self._per_node: Counter[Client] = Counter()
        self._round_robin = itertools.cycle(pool.clients)
        self._arrivals: Arrivals | None = None
        self._start_mono = 0.0
        self._start_wall = 0.0
        self._first_offer = self._last_offer = 0.0  # scheduled offsets
        # Offering runs in timer callbacks, not a task (a task would take one more
        # pass of the event loop per arrival): the timer of the next look at the
        # schedule, and a future resolved when offering stops.
        self._offer_timer: asyncio.Handle | None = None
        self._offering: asyncio.Future[None] | None = None
        self._state_changed = asyncio.Event()
        self._hanging_up = False  # after hupall(): calls are killed as soon as seen
        self._hangups = _HangupSchedule(self._hang_up)
        self._clock_offsets: dict[Client, _ClockOffset] = {}
        self._rounding_carry = 0.0  # what rounding hang-ups to ticks has taken off so far
        # Counters.
        self.offered = 0
        self.attempted = 0
        self.blocked = 0
        self.answered = 0
        self.failed = 0
        self.failures: Counter[str] = Counter()
        #: The most calls that were up at once.
        self.peak_active_calls = 0
        #: Nodes lost during the run, in order.
        self.node_losses: list[NodeLoss] = []
        #: Why the run failed, if it did (a node lost with on_node_loss="stop", or a
        #: node that dropped this generator for reading its events too slowly).
        self.failure: str | None = None
        for client in pool:
            client.on_lost(functools.partial(self._node_lost, client))
            client.on_back(functools.partial(self._node_back, client))
        #: How late each arrival was offered against its schedule (seconds), recent ones.
        self.lateness: deque[float] = deque(maxlen=10_000)
        #: Call setup latencies (caller create -> caller answer) of recent calls.
        self.setup_latencies: deque[float] = deque(maxlen=10_000)
        self._recorder_loaded = False

    # -- settings ----------------------------------------------------------------------------
    @property
    def rate(self) -> float:
        """Calls offered per second."""
        return self._rate

    @rate.setter
    def rate(self, value: float) -> None:
        self._rate = _non_negative(value, "rate")
        if self._auto_duration:
            self._duration = auto_duration_of(self._limit, self._rate)
        if self._arrivals is not None:
            self._arrivals.set_rate(self._rate, self._elapsed())
            self._wake()

    @property
    def limit(self) -> int:
        """The most calls up at once (erlangs)."""
        return self._limit

    @limit.setter
    def limit(self, value: int) -> None:
        self._limit = _limit(value)
        if self._auto_duration:
            self._duration = auto_duration_of(self._limit, self._rate)

    @property
    def duration(self) -> float:
        """Mean holding time (seconds); setting it turns ``auto_duration`` off."""
        return self._duration

    @duration.setter
    def duration(self, value: float) -> None:
        self._duration = _positive(value, "duration")
        self._auto_duration = False

    @property
    def auto_duration(self) -> bool:
        """Whether ``duration`` follows ``limit / rate`` (Little's law)."""
        return self._auto_duration

    @auto_duration.setter
    def auto_duration(self, value: bool) -> None:
        self._auto_duration = value
        if value:
            self._duration = auto_duration_of(self._limit, self._rate)

    @property
    def tick(self) -> float:
        """Arrivals and hang-ups fall on multiples of this (seconds; 0: exact times)."""
        return self._tick

    @tick.setter
    def tick(self, value: float) -> None:
        self._tick = check_tick(value, "tick")
        self._wake()

    @property
    def state(self) -> str:
        return self._state.value

    @property
    def measurers(self) -> Measurers:
        """The original switchy's access paths to this run's data:
        ``measurers.stores.CDR`` (the CDR DataFrame so far),
        ``measurers.ops.call_metrics`` (per-call metrics) and ``measurers.plot()``."""
        if self.store is None:
            raise ConfigurationError("no CDR store: create the originator with store=CDRStore(...)")
        from switchy.measure.metrics import Measurers  # pandas is imported on first use

        return Measurers(self.store)

    @property
    def active_calls(self) -> int:
        """Calls attempted and not yet ended."""
        return len(self._calls)

    @property
    def calls_by_node(self) -> dict[str, int]:
        """Calls attempted and not yet ended, by node (``host:port``)."""
        return {client.address: count for client, count in self._per_node.items() if count}

    @property
    def offered_rate(self) -> float:
        """Calls offered per second: (offered - 1) over the time from the first offer's
        schedule to the last's (0 until two calls were offered)."""
        span = self._last_offer - self._first_offer
        return (self.offered - 1) / span if self.offered > 1 and span > 0 else 0.0

    @property
    def elapsed(self) -> float:
        """Seconds since :meth:`start` (0 before)."""
        return self._elapsed() if self._start_mono else 0.0

    def _elapsed(self) -> float:
        return max(asyncio.get_running_loop().time() - self._start_mono, 0.0)

    def __repr__(self) -> str:
        return (
            f"<Originator {self.state} active-calls={self.active_calls} offered={self.offered} "
            f"rate={self._rate:g} limit={self._limit} duration={self._duration:.4g} "
            f"max-offered={self.max_offered if self.max_offered is not None else 'inf'}>"
        )

    # -- configuration ---------------------------------------------------------------------
    async def load_app(
        self, app: object, app_id: str | None = None, weight: int = 1, **app_kwargs: Any
    ) -> str:
        """Load a call app on every node; calls are spread over apps by ``weight``."""
        app_id = await self.pool.load_app(app, app_id, **app_kwargs)
        self._apps.set(app_id, weight)
        return app_id

    @property
    def app_weights(self) -> dict[str, int]:
        return self._apps.weights

    def set_orig_cmd(
        self, destination: Callable[[Client], dict[str, Any]] | None = None, **options: Any
    ) -> None:
        """Set every node's originate destination: ``options`` for all nodes (e.g.
        ``proxy=``), plus what ``destination(client)`` returns for each (e.g.
        ``{"dest_url": f"1000@{sip_address_of(client)}"}``)."""
        for client in self.pool:
            try:
                client.set_orig_cmd(**{**options, **(destination(client) if destination else {})})
            except ValueError as exc:
                raise ConfigurationError(
                    f"{client.address}: bad originate setting: {exc}"
                ) from None

    # -- running -----------------------------------------------------------------------------
    async def start(self) -> None:
        """Start (or resume) offering calls; ConfigurationError for what cannot work."""
        if self._state is State.ORIGINATING:
            return
        if not self._apps:
            raise ConfigurationError("no app loaded: load_app() one before start()")
        reachable = [client for client in self.pool if client.connected]
        if not reachable:
            raise ConfigurationError("no node is reachable: connect the pool first")
        for client in reachable:
            try:
                client.originate_cmd(ids.new_uuid())
            except ConfigurationError:
                raise ConfigurationError(
                    f"{client.address}: no originate destination set: use set_orig_cmd()"
                ) from None
        if not self._recorder_loaded:
            await self.pool.map(
                lambda client: client.load_app(_Recorder(self, client), _RECORDER_ID)
            )
            self._recorder_loaded = True
        loop = asyncio.get_running_loop()
        if self._arrivals is None:
            self._arrivals = self._new_arrivals()
            self._start_mono = loop.time()
            self._start_wall = self.clock()
        else:  # resuming: the schedule continues from now
            self._arrivals.set_rate(self._rate, self._elapsed())
        self._hanging_up = False
        if self._offering is None or self._offering.done():
            self._offering = loop.create_future()
        self._set_state(State.ORIGINATING)
        self._wake()
        log.info("originating: %r", self)

    def _new_arrivals(self) -> Arrivals:
        if self.arrival_kind == "poisson":
            return PoissonArrivals(
                self._rate,
                initial_rate=0.0 if self.ramp_time else None,
                ramp_time=self.ramp_time,
                seed=self.seed,
            )
        return DeterministicArrivals(
            self._rate, initial_rate=0.0 if self.ramp_time else None, ramp_time=self.ramp_time
        )

    def stop(self) -> None:
        """Stop offering calls; calls up finish as planned."""
        if self._state is State.ORIGINATING:
            self._set_state(State.STOPPED)
            self._wake()
            log.info("stopped offering: %r", self)

    def is_alive(self) -> bool:
        """Whether calls are being offered."""
        return self._offering is not None and not self._offering.done()

    async def hupall(self, cause: str = "NORMAL_CLEARING") -> None:
        """Stop offering and hang up every call of this originator.

        Calls still being set up are hung up as soon as their caller leg appears.
        """
        self.stop()
        self._hanging_up = True
        await self.pool.map(
            lambda client: _ignore_errors(
                asyncio.gather(*(client.hupall(app_id, cause) for app_id in self._apps.weights))
            )
        )
        for call in list(self._calls.values()):
            if call.caller_created and not call.caller_done:
                self._hang_up(call)

    async def hard_hupall(self, cause: str = "NORMAL_CLEARING") -> None:
        """Stop offering and hang up every call on every node, this originator's or not."""
        self.stop()
        await self.pool.map(lambda client: client.api(f"hupall {cause}"))

    async def shutdown(self, timeout: float = 30.0) -> None:
        """Stop, hang up this originator's calls and wait for them to end."""
        await self.hupall()
        await self.waitwhile(timeout=timeout)
        if self._offering is not None:
            await self._offering

    async def waitwhile(
        self, predicate: Callable[[], bool] | str | None = None, timeout: float | None = None
    ) -> None:
        """Wait while ``predicate()`` holds, or until the state is ``predicate`` (a
        state name); by default until offering stopped and every call ended."""
        if predicate is None:

            def busy() -> bool:
                return self._state is State.ORIGINATING or bool(self._calls)

        elif isinstance(predicate, str):
            wanted = State(predicate)

            def busy() -> bool:
                return self._state is not wanted

        else:
            busy = predicate

        async def wait() -> None:
            while busy():
                self._state_changed.clear()
                await self._state_changed.wait()

        try:
            await asyncio.wait_for(wait(), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"still busy after {timeout}s: {self!r}") from None

    def _set_state(self, state: State) -> None:
        if state is not self._state:
            log.info("state %s -> %s", self._state.value, state.value)
            self._state = state
        self._state_changed.set()

    # -- offering ----------------------------------------------------------------------------
    def _offer_due(self) -> None:
        """Offer every arrival that is due, then set the timer of the next one."""
        self._offer_timer = None  # the one that ran this: each new timer cancels the last
        offering = self._offering
        if offering is None or offering.done():
            return
        assert self._arrivals is not None
        arrivals = self._arrivals
        loop = offering.get_loop()
        try:
            while self._state is State.ORIGINATING:
                if self.max_offered is not None and self.offered >= self.max_offered:
                    self._set_state(State.STOPPED)
                    break
                due = self._start_mono + arrivals.peek_offset()
                if due - loop.time() > 0.0005:
                    if due < math.inf:  # an infinite due: rate 0, no arrival until it changes
                        self._set_offer_timer(next_tick(due, self._tick) if self._tick else due)
                    return
                offset = arrivals.next_offset()
                self.lateness.append(loop.time() - (self._start_mono + offset))
                self._offer(self._start_wall + offset)
        except Exception as exc:
            log.exception("offering failed")
            self._set_state(State.STOPPED)
            offering.set_exception(exc)
            return
        offering.set_result(None)

    def _wake(self) -> None:
        """Look at the schedule again at once: the rate, the tick or the state changed."""
        if self._offering is not None and not self._offering.done():
            self._set_offer_timer(None)

    def _set_offer_timer(self, when: float | None) -> None:
        """Run :meth:`_offer_due` at loop time ``when`` (None: at once), and not before."""
        assert self._offering is not None
        if self._offer_timer is not None:
            self._offer_timer.cancel()
        loop = self._offering.get_loop()
        if when is None:
            self._offer_timer = loop.call_soon(self._offer_due)
        else:
            self._offer_timer = loop.call_at(when, self._offer_due)

    def _offer(self, scheduled_time: float) -> None:
        index = self.offered
        if not index:
            self._first_offer = scheduled_time
        self._last_offer = scheduled_time
        self.offered += 1
        client = self._pick_node() if len(self._calls) < self._limit else None
        if client is None:
            self.blocked += 1
            self._emit(CallRecord(index, scheduled_time, BLOCKED))
            return
        app_id = self._apps.next()
        uuid = ids.new_uuid()
        holding = self._holding.sample() * self._duration
        record = CallRecord(
            index,
            scheduled_time,
            FAILED,
            app=app_id,
            node=client.address,
            holding_time=holding,
            caller_uuid=uuid,
        )
        call = _Call(record, uuid, client)
        self._calls[uuid] = call
        self.peak_active_calls = max(self.peak_active_calls, len(self._calls))
        self._per_node[client] += 1
        self.attempted += 1
        self._originate(call)

    def _pick_node(self) -> Client | None:
        capacity = self.node_capacity
        candidates = [
            client
            for client in self.pool.clients
            if client.connected and (capacity is None or self._per_node[client] < capacity)
        ]
        if not candidates:
            return None
        if self.node_choice == "least-loaded":
            return min(candidates, key=lambda client: self._per_node[client])
        for _ in range(len(self.pool.clients)):
            client = next(self._round_robin)
            if client in candidates:
                return client
        return None

    def _originate(self, call: _Call) -> None:
        record = call.record
        record.request_time = self.clock()
        try:
            call.job = call.client.originate_nowait(
                app_id=record.app, uuid=call.uuid, callback=lambda job: self._job_done(call, job)
            )
        except (SwitchyError, ValueError) as exc:
            cause = NODE_LOST if isinstance(exc, ConnectionLost) else type(exc).__name__
            record.failure_cause = cause
            log.warning("%s: originate failed: %s", call.client.address, exc)
            self._finish(call)

    def _job_done(self, call: _Call, job: Job) -> None:
        record = call.record
        record.job_launch_time = job.accept_time
        record.job_result_time = self.clock()
        if not job.successful():
            call.job_failed = True
            lost = isinstance(job.result, ConnectionLost)
            record.failure_cause = NODE_LOST if lost else job.cause or _describe(job.result)
            if not call.caller_created or call.caller_done:
                self._finish(call)

    # -- events ------------------------------------------------------------------------------
    def _channel_event(self, event: Event, client: Client) -> None:
        uuid = event.uuid
        if uuid is None:
            return
        call = self._calls.get(uuid)
        if call is not None:
            self._caller_event(call, event)
            return
        call = self._callees.get(uuid)
        if call is None:  # a callee leg's first event, or a channel not of this originator
            key = event.get(CALL_HEADER)
            call = self._calls.get(key) if key else None
            if call is None:
                return
            self._callees[uuid] = call
            call.callee_client = client
            call.record.callee_uuid = uuid
        self._callee_event(call, event)

    def _caller_event(self, call: _Call, event: Event) -> None:
        record = call.record
        name = event.name
        if name == "CHANNEL_CREATE":
            call.caller_created = True
            record.caller_create_time = event.timestamp
            if record.caller_create_time is not None and record.request_time is not None:
                offset = self._clock_offsets.get(call.client)
                if offset is None:
                    offset = self._clock_offsets[call.client] = _ClockOffset()
                offset.add(record.caller_create_time - record.request_time, record.request_time)
            record.active_sessions_at_create = self.pool.count_sessions()
            record.active_calls_at_create = self.pool.count_calls()
            if self._hanging_up:
                self._hang_up(call)
        elif name == "CHANNEL_PROGRESS":
            record.caller_progress_time = record.caller_progress_time or event.timestamp
        elif name == "CHANNEL_PROGRESS_MEDIA":
            record.caller_progress_media_time = record.caller_progress_media_time or event.timestamp
        elif name == "CHANNEL_ANSWER":
            record.caller_answer_time = event.timestamp
            record.outcome = ANSWERED
            if record.caller_create_time is not None and record.caller_answer_time is not None:
                self.setup_latencies.append(record.caller_answer_time - record.caller_create_time)
            holding = 0.0 if self._hanging_up else record.holding_time or 0.0
            loop = asyncio.get_running_loop()
            self._hangups.add(call, self._hangup_time(call, holding, loop.time()), loop)
        elif name == "CHANNEL_HANGUP":
            record.caller_hangup_time = event.timestamp
            record.caller_hangup_cause = event.get("Hangup-Cause")
            call.caller_done = True
            self._hangups.cancel(call)
            if call.callee_done or not call.callee_seen:
                self._finish(call)

    def _hangup_time(self, call: _Call, holding: float, now: float) -> float:
        """The loop time to hang up ``call``, answered ``holding`` seconds before.

        Counted from the answer as the node timed it (its CHANNEL_ANSWER's
        timestamp, brought to this host's clock), not from ``now``, when the
        event was handled: read on ticks, or by a busy generator, an event waits
        before it is handled. On a tick of the originator's, the time is rounded
        to the nearest tick, and each rounding's error carried to the next call,
        so holding times stay exact on average (each within a tick).
        """
        if not holding:
            return now  # after hupall(): at once
        due = now + holding
        answered = call.record.caller_answer_time
        offset = self._clock_offsets.get(call.client)
        if answered is not None and offset is not None and offset.value is not None:
            due -= max(self.clock() - (answered - offset.value), 0.0)  # how long ago it was
        tick = self._tick
        if tick:
            wanted = due + self._rounding_carry
            due = math.floor(wanted / tick + 0.5) * tick
            self._rounding_carry = wanted - due
        return due

    def _callee_event(self, call: _Call, event: Event) -> None:
        record = call.record
        name = event.name
        if name == "CHANNEL_CREATE":
            call.callee_seen = True
            record.callee_create_time = event.timestamp
        elif name == "CHANNEL_ANSWER":
            record.callee_answer_time = event.timestamp
        elif name == "CHANNEL_HANGUP":
            record.callee_hangup_time = event.timestamp
            record.callee_hangup_cause = event.get("Hangup-Cause")
            call.callee_done = True
            self._callees.pop(event.uuid or "", None)
            if call.caller_done:
                self._finish(call)

    def _hang_up(self, call: _Call) -> None:
        self._hangups.cancel(call)
        if not call.caller_done:
            try:
                call.client.connection.api_nowait(
                    commands.uuid_kill(call.uuid), on_done=_ignore_failure
                )
            except SwitchyError as exc:  # the node is gone: its calls end with it
                log.debug("%s: cannot hang up %s: %s", call.client.address, call.uuid, exc)

    # -- nodes lost --------------------------------------------------------------------------
    def _node_lost(self, client: Client, error: BaseException) -> None:
        """A node went away: its calls end as failed with cause NODE_LOST."""
        loss = NodeLoss(client.address, self.clock(), str(error))
        self.node_losses.append(loss)
        for call in list(self._calls.values()):
            if call.client is client:
                loss.calls_lost += 1
                self._hangups.cancel(call)
                call.record.outcome = FAILED
                call.record.failure_cause = NODE_LOST
                self._finish(call)
            elif call.callee_client is client and not call.callee_done:
                call.callee_done = True  # its end will never be seen
                if call.caller_done:
                    self._finish(call)
        if "lost events" in str(error):
            # The node dropped us for reading too slowly: events, hence calls, are missing.
            self.failure = f"{client.address}: {error}"
        elif self.on_node_loss == "stop" and self.failure is None:
            self.failure = f"{client.address} lost: {error}"
        log.error(
            "%s: node lost (%s); %d call(s) lost; %s",
            client.address,
            error,
            loss.calls_lost,
            "stopping" if self.failure else "carrying on with the other nodes",
        )
        if self.failure:
            self.stop()

    def _node_back(self, client: Client) -> None:
        for loss in reversed(self.node_losses):
            if loss.node == client.address and loss.back_at is None:
                loss.back_at = self.clock()
                log.warning("%s: node back after %.1f s", client.address, loss.seconds_down)
                break

    # -- records -----------------------------------------------------------------------------
    def _finish(self, call: _Call) -> None:
        if self._calls.pop(call.uuid, None) is None:
            return
        if call.record.callee_uuid is not None:
            self._callees.pop(call.record.callee_uuid, None)
        self._per_node[call.client] -= 1
        if self._per_node[call.client] <= 0:
            del self._per_node[call.client]
        record = call.record
        if record.outcome == ANSWERED:
            self.answered += 1
        else:
            record.outcome = FAILED
            record.failure_cause = record.failure_cause or record.caller_hangup_cause or "UNKNOWN"
            self.failed += 1
            self.failures[record.failure_cause] += 1
        self._emit(record)
        if not self._calls:
            self._state_changed.set()

    def _emit(self, record: CallRecord) -> None:
        for callback in self.on_record:
            try:
                callback(record)
            except Exception:
                log.exception("CDR callback %r failed", callback)


def auto_duration_of(limit: int, rate: float) -> float:
    """Little's law, guarded: a zero rate leaves the duration at the limit itself."""
    return auto_duration(limit, rate) if rate > 0 else float(limit)


def _unit_holding(kind: str, cv: float, seed: int | None) -> HoldingTime:
    """A holding-time distribution of mean 1, scaled by ``duration`` at each draw."""
    if kind == "lognormal":
        return HoldingTime.from_spec(
            "lognormal", mean=1.0, std=_non_negative(cv, "holding_cv"), seed=seed
        )
    try:
        return HoldingTime.from_spec(kind, seed=seed, **_UNIT_HOLDING[kind])
    except KeyError:
        raise ConfigurationError(
            f"holding must be one of fixed, exp, uniform, lognormal; got {kind!r}"
        ) from None


def _describe(result: object) -> str:
    return type(result).__name__ if isinstance(result, BaseException) else str(result)


def _ignore_failure(future: asyncio.Future[Any]) -> None:
    """A hangup that fails: the call is already gone, which is all that was wanted."""
    if (error := future.exception()) is not None:
        log.debug("ignored: %s", error)


async def _ignore_errors(work: Awaitable[Any]) -> None:
    try:
        await work
    except (SwitchyError, ConnectionError) as exc:
        log.debug("ignored: %s", exc)


def _non_negative(value: float, name: str) -> float:
    if not isinstance(value, (int, float)) or math.isnan(value) or value < 0:
        raise ConfigurationError(f"{name} must be a number >= 0, got {value!r}")
    return float(value)


def _positive(value: float, name: str) -> float:
    if _non_negative(value, name) == 0:
        raise ConfigurationError(f"{name} must be > 0, got {value!r}")
    return float(value)


def _limit(value: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigurationError(f"limit must be a whole number >= 1, got {value!r}")
    return value
