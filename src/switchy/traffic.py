"""Teletraffic mathematics for load generation and for checking measured blocking.

Notation: *A* is offered traffic in erlangs (call arrival rate × mean holding time),
*N* the number of channels (servers), *h* the mean holding time in seconds.

- Loss systems: :func:`erlang_b` (M/M/N/N, Poisson arrivals), :func:`engset` and
  :func:`engset_time_congestion` (finite number of sources), and the inverses
  :func:`erlang_b_channels`, :func:`erlang_b_traffic`, :func:`engset_channels`.
- Delay systems (M/M/N, infinite queue): :func:`erlang_c`, :func:`mean_wait`,
  :func:`service_level`, :func:`erlang_c_channels`.
- Measurement: :func:`blocking_interval` (Wilson score interval for measured blocking).
- Little's law: :func:`offered_load`, :func:`auto_duration`.
- Call schedules: :class:`DeterministicArrivals` and :class:`PoissonArrivals` give
  absolute arrival offsets, optionally ramping the rate linearly; the rate can be
  changed while running.
- Call durations: :class:`HoldingTime` and its subclasses, :meth:`HoldingTime.from_spec`.

Erlang B, Engset and Erlang C are computed by recurrences whose every step maps a
probability in [0, 1] to another one, so nothing overflows: any N works in O(N) time.
"""

from __future__ import annotations

import math
import operator
import random
from abc import ABC, abstractmethod
from dataclasses import dataclass
from statistics import NormalDist

__all__ = [
    "HOLDING_KINDS",
    "Arrivals",
    "DeterministicArrivals",
    "ExponentialHolding",
    "FixedHolding",
    "HoldingTime",
    "LognormalHolding",
    "PoissonArrivals",
    "UniformHolding",
    "auto_duration",
    "blocking_interval",
    "engset",
    "engset_channels",
    "engset_time_congestion",
    "erlang_b",
    "erlang_b_channels",
    "erlang_b_traffic",
    "erlang_c",
    "erlang_c_channels",
    "mean_wait",
    "offered_load",
    "service_level",
]

# Stopping tolerance of erlang_b_traffic's iteration; well below the 1e-9 it promises so
# that rounding in the O(N) evaluation of B cannot eat the guarantee.
_REL_TOL = 1e-12
_MAX_ITERATIONS = 200


# -- validation -----------------------------------------------------------------------------
def _nonnegative(value: float, name: str) -> float:
    value = float(value)
    if not 0.0 <= value < math.inf:  # also rejects NaN
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return value


def _positive(value: float, name: str) -> float:
    value = float(value)
    if not 0.0 < value < math.inf:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return value


def _count(value: int, name: str) -> int:
    number = operator.index(value)  # TypeError for 2.5, unlike int()
    if number < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {number}")
    return number


def _probability_target(value: float, name: str) -> float:
    value = float(value)
    if not 0.0 < value <= 1.0:
        raise ValueError(f"{name} must be in (0, 1], got {value!r}")
    return value


# -- Erlang B and C -------------------------------------------------------------------------
def erlang_b(traffic: float, channels: int) -> float:
    """Erlang B: probability that a call offered to *N* channels is blocked (lost).

    B(A, N) = (A^N / N!) / Σ_{k=0..N} A^k / k!, for *A* = ``traffic`` erlangs of Poisson
    arrivals with any holding-time distribution (the formula is insensitive to it).
    Computed by B(A, 0) = 1, B(A, n) = A·B(A, n−1) / (n + A·B(A, n−1)): O(N), exact
    for A = 0, no overflow. Each step damps the relative error it inherits, so rounding
    does not build up (about 10 units in the last place measured at N = 3,000; values
    below 1e-308 are subnormal floats and lose precision).

    Raises ValueError for negative or non-finite traffic, or negative channels.
    """
    a = _nonnegative(traffic, "traffic")
    n = _count(channels, "channels")
    b = 1.0
    for k in range(1, n + 1):
        ab = a * b
        b = ab / (k + ab)
        if b == 0.0:  # underflowed: stays 0 for every larger k
            break
    return b


def erlang_c(traffic: float, channels: int) -> float:
    """Erlang C: probability that a call must wait in M/M/N (delay system, infinite queue).

    C(A, N) = N·B / (N − A·(1 − B)) with B = B(A, N) the Erlang B value, for A < N.
    For A >= N the queue has no steady state (it grows without bound) and every call
    waits: the result is 1.0.
    """
    a = _nonnegative(traffic, "traffic")
    n = _count(channels, "channels")
    if a >= n:
        return 1.0
    b = erlang_b(a, n)
    return n * b / (n - a * (1.0 - b))


def mean_wait(traffic: float, channels: int, holding_time: float) -> float:
    """Mean waiting time W_q over all calls (those served at once count as 0) in M/M/N.

    W_q = C(A, N) · h / (N − A) seconds, *h* = ``holding_time`` (mean, seconds).
    Calls that do wait, wait h / (N − A) on average. ``inf`` when A >= N.
    """
    h = _positive(holding_time, "holding_time")
    c = erlang_c(traffic, channels)
    spare = channels - float(traffic)
    return math.inf if spare <= 0.0 else c * h / spare


def service_level(traffic: float, channels: int, holding_time: float, target_wait: float) -> float:
    """Probability that a call waits at most ``target_wait`` seconds in M/M/N (FIFO).

    P(W <= t) = 1 − C(A, N) · exp(−(N − A) · t / h), *h* = ``holding_time`` (mean,
    seconds). 0.0 when A >= N (the queue grows without bound).
    """
    h = _positive(holding_time, "holding_time")
    t = _nonnegative(target_wait, "target_wait")
    c = erlang_c(traffic, channels)
    spare = channels - float(traffic)
    return 0.0 if spare <= 0.0 else 1.0 - c * math.exp(-spare * t / h)


# -- Engset ---------------------------------------------------------------------------------
def _engset_recurrence(sources: int, channels: int, beta: float) -> float:
    """E(S, N, β) = C(S,N)·β^N / Σ_{k=0..N} C(S,k)·β^k, by a bounded recurrence.

    Term n over term n − 1 is x_n / n with x_n = (S − n + 1)·β, hence E_0 = 1 and
    E_n = x_n·E_{n−1} / (n + x_n·E_{n−1}), which is 0 from n = S + 1 on.
    """
    e = 1.0
    for n in range(1, channels + 1):
        xe = (sources - n + 1) * beta * e
        e = xe / (n + xe)
        if e == 0.0:
            break
    return e


def engset_time_congestion(sources: int, channels: int, traffic_per_idle_source: float) -> float:
    """Engset time congestion: fraction of time all *N* channels are busy.

    *S* = ``sources`` each originate calls at rate γ while idle (none while in a call);
    β = γ·h = ``traffic_per_idle_source`` (erlangs). Blocked calls are lost. Then
    E(S, N, β) = C(S, N)·β^N / Σ_{k=0..N} C(S, k)·β^k, and 0 when N > S.
    """
    s = _count(sources, "sources")
    n = _count(channels, "channels")
    beta = _nonnegative(traffic_per_idle_source, "traffic_per_idle_source")
    return _engset_recurrence(s, n, beta)


def engset(sources: int, channels: int, traffic_per_idle_source: float) -> float:
    """Engset call congestion: fraction of call attempts that find all channels busy.

    Same model as :func:`engset_time_congestion`. An arriving call sees the other
    S − 1 sources, so the call congestion is the time congestion with one source
    fewer: B = E(S − 1, N, β). It is below the time congestion, and 0 when
    S <= N (a source that calls is idle, so at most S − 1 channels are busy).
    As S → ∞ with S·β = A fixed, it tends to Erlang B(A, N).
    """
    s = _count(sources, "sources")
    n = _count(channels, "channels")
    beta = _nonnegative(traffic_per_idle_source, "traffic_per_idle_source")
    if s <= n:
        return 0.0
    return _engset_recurrence(s - 1, n, beta)


# -- inverses -------------------------------------------------------------------------------
def erlang_b_channels(traffic: float, target_blocking: float) -> int:
    """Smallest N with Erlang B(A, N) <= ``target_blocking`` (in (0, 1]); one O(N) pass."""
    a = _nonnegative(traffic, "traffic")
    target = _probability_target(target_blocking, "target_blocking")
    n, b = 0, 1.0
    while b > target:  # B decreases strictly in N and reaches 0: this ends
        n += 1
        ab = a * b
        b = ab / (n + ab)
    return n


def erlang_c_channels(traffic: float, target_wait_probability: float) -> int:
    """Smallest N > A (a stable queue) with Erlang C(A, N) <= the target (in (0, 1])."""
    a = _nonnegative(traffic, "traffic")
    target = _probability_target(target_wait_probability, "target_wait_probability")
    n, b = 0, 1.0
    while True:  # C decreases in N above A and tends to 0: this ends
        n += 1
        ab = a * b
        b = ab / (n + ab)
        if n > a and n * b / (n - a * (1.0 - b)) <= target:
            return n


def engset_channels(sources: int, traffic_per_idle_source: float, target_blocking: float) -> int:
    """Smallest N with Engset call congestion :func:`engset` <= ``target_blocking``.

    At most S (``sources``), where the call congestion is 0; one O(N) pass.
    """
    s = _count(sources, "sources")
    beta = _nonnegative(traffic_per_idle_source, "traffic_per_idle_source")
    target = _probability_target(target_blocking, "target_blocking")
    if s == 0:
        return 0
    # Call congestion with n channels is E(S − 1, n), run along n.
    n, e = 0, 1.0
    while e > target:
        n += 1
        xe = (s - n) * beta * e
        e = xe / (n + xe)
    return n


def erlang_b_traffic(channels: int, target_blocking: float) -> float:
    """Largest offered traffic A (erlangs) with Erlang B(A, N) <= ``target_blocking``.

    ``channels`` >= 1 and 0 < ``target_blocking`` < 1. B rises continuously and strictly
    with A, so this is the root of B(A, N) = target, found to 1e-9 relative (B at the
    returned A is <= target) by Newton's method on ln B against ln A, safeguarded by
    bisection. ln B is concave in ln A (its slope N − A·(1 − B) falls as the carried
    traffic A·(1 − B) rises), so the iterates approach the root from below and
    converge quadratically; each costs one O(N) evaluation of B.
    """
    n = _count(channels, "channels")
    if n == 0:
        raise ValueError("channels must be >= 1: with no channel every call is blocked")
    target = float(target_blocking)
    if not 0.0 < target < 1.0:
        raise ValueError(f"target_blocking must be in (0, 1), got {target!r}")
    # B(A, N) >= 1 − N/A (at most N erlangs are carried), so B(hi, N) >= target.
    lo, hi = 0.0, n / (1.0 - target)
    a = hi
    for _ in range(_MAX_ITERATIONS):
        b = erlang_b(a, n)
        if b <= target:
            lo = a
        else:
            hi = a
        if hi - lo <= _REL_TOL * hi:
            break
        slope = n - a * (1.0 - b)  # d ln B / d ln A, > 0
        ratio = target / b if b > 0.0 else math.inf
        guess = math.nan
        if slope > 0.0 and ratio < math.inf:
            # ln of the ratio, not a difference of lns: near the root that would
            # cancel, and lose all precision when B is as small as 1e-300.
            step = math.log(ratio) / slope
            if step < math.log(hi / a):
                guess = a * math.exp(step)
        if b <= target and abs(guess - a) <= _REL_TOL * a:  # Newton has converged
            break
        if not lo < guess < hi:  # also catches NaN; halve ln A once it is bounded
            guess = math.sqrt(lo * hi) if lo > 0.0 else 0.5 * hi
        a = guess
    return lo


# -- measured blocking ----------------------------------------------------------------------
def blocking_interval(blocked: int, offered: int, confidence: float = 0.99) -> tuple[float, float]:
    """Wilson score interval for a blocking probability measured as blocked / offered.

    With p̂ = k/n and z the standard normal quantile at (1 + confidence)/2, the
    interval is the set of p with |p̂ − p| <= z·√(p(1 − p)/n):
    (k + z²/2 ± z·√(k(n − k)/n + z²/4)) / (n + z²). Unlike p̂ ± z·√(p̂(1 − p̂)/n) it
    stays inside [0, 1] and does not shrink to a point at k = 0 or k = n, which
    matters because measured blocking is often 0. ``offered`` = 0 gives (0.0, 1.0):
    no information.
    """
    k = _count(blocked, "blocked")
    n = _count(offered, "offered")
    if k > n:
        raise ValueError(f"blocked ({k}) cannot exceed offered ({n})")
    level = float(confidence)
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {level!r}")
    if n == 0:
        return 0.0, 1.0
    z = NormalDist().inv_cdf(0.5 + 0.5 * level)
    z2 = z * z
    centre = k + z2 / 2.0
    half = z * math.sqrt(k * (n - k) / n + z2 / 4.0)
    # At k = 0 (k = n) the bound is exactly 0 (1); rounding would leave a tiny residue.
    lower = 0.0 if k == 0 else max(0.0, (centre - half) / (n + z2))
    upper = 1.0 if k == n else min(1.0, (centre + half) / (n + z2))
    return lower, upper


# -- Little's law ---------------------------------------------------------------------------
def offered_load(rate: float, mean_holding: float) -> float:
    """Offered traffic in erlangs: A = λ·h, calls per second times mean holding seconds."""
    return _nonnegative(rate, "rate") * _nonnegative(mean_holding, "mean_holding")


def auto_duration(limit_erlangs: float, rate: float) -> float:
    """Mean holding time (seconds) that makes the offered load ``limit_erlangs``: limit / λ.

    By Little's law that many calls are in progress on average once the load is steady.
    """
    return _nonnegative(limit_erlangs, "limit_erlangs") / _positive(rate, "rate")


# -- arrival processes ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Segment:
    """The arrival intensity from ``start`` until the next segment starts.

    λ(t) goes linearly from ``rate0`` at ``start`` to ``rate1`` at ``end`` (a step when
    ``end == start``) and stays at ``rate1``. ``lam0`` and ``lam1`` are the integrated
    intensity Λ at ``start`` and ``end``.
    """

    start: float
    lam0: float
    rate0: float
    end: float
    rate1: float
    lam1: float

    @classmethod
    def build(cls, start: float, lam0: float, rate0: float, rate1: float, ramp: float) -> _Segment:
        if ramp == 0.0:
            return cls(start, lam0, rate1, start, rate1, lam0)
        return cls(start, lam0, rate0, start + ramp, rate1, lam0 + ramp * (rate0 + rate1) / 2.0)

    def rate_at(self, t: float) -> float:
        if t >= self.end:
            return self.rate1
        return self.rate0 + (self.rate1 - self.rate0) * (t - self.start) / (self.end - self.start)

    def integrated(self, t: float) -> float:
        if t >= self.end:
            return self.lam1 + self.rate1 * (t - self.end)
        return self.lam0 + (t - self.start) * (self.rate0 + self.rate_at(t)) / 2.0

    def time_of(self, u: float) -> float:
        """The first t >= start with Λ(t) = u (``inf`` if the intensity stays at 0)."""
        if u < self.lam1:  # on the ramp: solve rate0·s + slope·s²/2 = du for s
            du = u - self.lam0
            if du <= 0.0:
                return self.start
            slope = (self.rate1 - self.rate0) / (self.end - self.start)
            rate_u = math.sqrt(max(0.0, self.rate0 * self.rate0 + 2.0 * slope * du))
            # s = du / (mean rate over [0, s]): no cancellation whatever the slope's sign.
            return self.start + 2.0 * du / (self.rate0 + rate_u)
        du = u - self.lam1
        if du <= 0.0:
            return self.end
        return math.inf if self.rate1 == 0.0 else self.end + du / self.rate1


class Arrivals(ABC):
    """Call arrival schedule: absolute arrival offsets (seconds since start), increasing.

    The arrival intensity λ(t) (calls per second) is piecewise linear: at t = 0 it goes
    linearly from ``initial_rate`` (default: ``rate``) to ``rate`` over ``ramp_time``
    seconds, then stays at ``rate``; :meth:`set_rate` changes it from a given time on.
    With Λ(t) = ∫₀ᵗ λ the integrated intensity, the k-th arrival happens when Λ reaches
    u_k, where 0 < u_1 < u_2 < ... is a unit-rate point pattern that each subclass
    defines (time-rescaling). Offsets are computed from the start, not from the previous
    arrival, so a scheduler that sleeps until each offset never accumulates errors.
    """

    def __init__(
        self, rate: float, *, initial_rate: float | None = None, ramp_time: float = 0.0
    ) -> None:
        rate = _nonnegative(rate, "rate")
        start_rate = rate if initial_rate is None else _nonnegative(initial_rate, "initial_rate")
        ramp = _nonnegative(ramp_time, "ramp_time")
        self._segments = [_Segment.build(0.0, 0.0, start_rate, rate, ramp)]
        self._cursor = 0  # the segment holding the next arrival: u only grows
        self._next_u = self._gap()  # Λ of the next arrival
        self._issued_u = 0.0  # Λ and offset of the arrival returned last
        self._issued_t = -math.inf

    @abstractmethod
    def _gap(self) -> float:
        """The next gap of the unit-rate point pattern."""

    @property
    def rate(self) -> float:
        """The rate (calls/s) set last; during a ramp, the rate the ramp ends at."""
        return self._segments[-1].rate1

    def _segment_at(self, t: float) -> _Segment:
        for segment in reversed(self._segments):
            if segment.start <= t:
                return segment
        raise ValueError(f"time must be >= 0, got {t!r}")

    def rate_at(self, t: float) -> float:
        """The intensity λ(t), calls per second at ``t`` seconds after the start."""
        return self._segment_at(t).rate_at(t)

    def integrated_rate(self, t: float) -> float:
        """Λ(t) = ∫₀ᵗ λ(s) ds, the integrated intensity.

        It is the mean number of arrivals in [0, t] of a Poisson schedule; a
        deterministic one has exactly ⌊Λ(t)⌋ there.
        """
        return self._segment_at(t).integrated(t)

    def set_rate(self, rate: float, now: float, ramp_time: float = 0.0) -> None:
        """Change the rate to ``rate`` calls/s from ``now`` (seconds since start) on.

        The intensity before ``now`` is untouched. With ``ramp_time`` > 0 it goes
        linearly from its value at ``now`` to ``rate`` over ``ramp_time`` seconds,
        otherwise it steps. The unit-rate pattern is kept and only re-timed, so a
        deterministic schedule keeps its phase (the part of the current gap already
        elapsed counts) and a Poisson one stays Poisson. ``rate`` 0 pauses arrivals
        (the next offset is ``inf``) until a later change. If the offset returned last
        by :meth:`next_offset` lies after ``now``, that arrival has not happened yet:
        it is withdrawn, and the next call returns it re-timed, so a scheduler waiting
        for one arrival just asks again. Changes must come in time order.
        """
        rate = _nonnegative(rate, "rate")
        ramp = _nonnegative(ramp_time, "ramp_time")
        now = _nonnegative(now, "now")
        last = self._segments[-1]
        if now < last.start:
            raise ValueError(f"rate changes must come in time order: {now} < {last.start}")
        segment = _Segment.build(now, last.integrated(now), last.rate_at(now), rate, ramp)
        if now == last.start:
            self._segments[-1] = segment
        else:
            self._segments.append(segment)
        if self._issued_t > now:
            self._next_u = self._issued_u

    def _time_of(self, u: float) -> float:
        segments = self._segments
        i = self._cursor
        last = len(segments) - 1
        while i < last and segments[i + 1].lam0 < u:
            i += 1
        self._cursor = i
        t = segments[i].time_of(u)
        # Rounding must not push an arrival past the next segment's start.
        return min(t, segments[i + 1].start) if i < last else t

    def peek_offset(self) -> float:
        """The offset of the next arrival, without consuming it."""
        return self._time_of(self._next_u)

    def next_offset(self) -> float:
        """Consume and return the offset of the next arrival (``inf`` while paused)."""
        u = self._next_u
        t = self._time_of(u)
        self._issued_u, self._issued_t = u, t
        self._next_u = u + self._gap()
        return t

    def offsets_before(self, end: float) -> list[float]:
        """Consume and return the offsets of all remaining arrivals before ``end``."""
        offsets: list[float] = []
        while self.peek_offset() < end:
            offsets.append(self.next_offset())
        return offsets


class DeterministicArrivals(Arrivals):
    """Evenly spaced calls: arrival k = 1, 2, 3, ... at the time where Λ(t) = k.

    At a constant rate λ the calls come at 1/λ, 2/λ, ...; in general the number of
    calls in [0, t] is ⌊Λ(t)⌋, the integrated rate rounded down.
    """

    def _gap(self) -> float:
        return 1.0


class PoissonArrivals(Arrivals):
    """Poisson arrivals: exponential gaps at a constant rate, seeded.

    The unit-rate pattern has independent Exp(1) gaps; mapped through Λ⁻¹ it is a
    (non-homogeneous) Poisson process with intensity λ(t): counts in disjoint intervals
    are independent and Poisson distributed with mean ∫λ over the interval.
    """

    def __init__(
        self,
        rate: float,
        *,
        initial_rate: float | None = None,
        ramp_time: float = 0.0,
        seed: int | None = None,
    ) -> None:
        self._random = random.Random(seed)  # before __init__ draws the first gap
        super().__init__(rate, initial_rate=initial_rate, ramp_time=ramp_time)

    def _gap(self) -> float:
        return self._random.expovariate(1.0)


# -- holding times --------------------------------------------------------------------------
HOLDING_KINDS = ("fixed", "exp", "uniform", "lognormal")
"""The names :meth:`HoldingTime.from_spec` accepts (``--holding`` choices)."""


class HoldingTime(ABC):
    """A call holding-time (duration) distribution in seconds, with mean ``mean``."""

    mean: float

    @abstractmethod
    def sample(self) -> float:
        """One holding time, seconds."""

    @staticmethod
    def from_spec(
        kind: str,
        *,
        mean: float | None = None,
        std: float | None = None,
        low: float | None = None,
        high: float | None = None,
        seed: int | None = None,
    ) -> HoldingTime:
        """Build a distribution by name (one of :data:`HOLDING_KINDS`).

        ``fixed`` and ``exp`` take ``mean``; ``uniform`` takes ``low`` and ``high``;
        ``lognormal`` takes ``mean`` and ``std`` (of the duration itself). A missing or
        superfluous parameter raises ValueError, so a mistyped command line is not
        silently ignored.
        """
        params = {"mean": mean, "std": std, "low": low, "high": high}
        values = {name: float(value) for name, value in params.items() if value is not None}
        wanted = {
            "fixed": {"mean"},
            "exp": {"mean"},
            "uniform": {"low", "high"},
            "lognormal": {"mean", "std"},
        }.get(kind)
        if wanted is None:
            raise ValueError(f"unknown holding-time kind {kind!r}; use one of {HOLDING_KINDS}")
        if values.keys() != wanted:
            raise ValueError(
                f"{kind} holding times take {', '.join(sorted(wanted))}; "
                f"got {', '.join(sorted(values)) or 'nothing'}"
            )
        if kind == "fixed":
            return FixedHolding(values["mean"])
        if kind == "exp":
            return ExponentialHolding(values["mean"], seed=seed)
        if kind == "uniform":
            return UniformHolding(values["low"], values["high"], seed=seed)
        return LognormalHolding(values["mean"], values["std"], seed=seed)


class FixedHolding(HoldingTime):
    """Every call lasts exactly ``mean`` seconds (> 0)."""

    def __init__(self, mean: float) -> None:
        self.mean = _positive(mean, "mean")

    def sample(self) -> float:
        return self.mean


class ExponentialHolding(HoldingTime):
    """Exponential durations with mean ``mean`` seconds (> 0): the M/M/N assumption."""

    def __init__(self, mean: float, *, seed: int | None = None) -> None:
        self.mean = _positive(mean, "mean")
        self._random = random.Random(seed)

    def sample(self) -> float:
        return self._random.expovariate(1.0 / self.mean)


class UniformHolding(HoldingTime):
    """Durations uniform on [``low``, ``high``] seconds, 0 <= low <= high, high > 0."""

    def __init__(self, low: float, high: float, *, seed: int | None = None) -> None:
        self.low = _nonnegative(low, "low")
        self.high = _positive(high, "high")
        if self.high < self.low:
            raise ValueError(f"high ({self.high}) must be >= low ({self.low})")
        self.mean = (self.low + self.high) / 2.0
        self._random = random.Random(seed)

    def sample(self) -> float:
        return self._random.uniform(self.low, self.high)


class LognormalHolding(HoldingTime):
    """Lognormal durations given by the mean and standard deviation of the duration.

    ``mean`` (> 0) and ``std`` (>= 0) are those of the holding time itself, in seconds,
    not of its logarithm. The log is normal with σ² = ln(1 + (std/mean)²) and
    μ = ln(mean) − σ²/2.
    """

    def __init__(self, mean: float, std: float, *, seed: int | None = None) -> None:
        self.mean = _positive(mean, "mean")
        self.std = _nonnegative(std, "std")
        self._sigma = math.sqrt(math.log1p((self.std / self.mean) ** 2))
        self._mu = math.log(self.mean) - self._sigma**2 / 2.0
        self._random = random.Random(seed)

    def sample(self) -> float:
        return self._random.lognormvariate(self._mu, self._sigma)
