"""switchy.traffic against exact rational arithmetic, published tables and statistics."""

from __future__ import annotations

import math
import random
import statistics
import time
from collections.abc import Callable, Sequence
from fractions import Fraction
from itertools import pairwise
from statistics import NormalDist

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switchy.traffic import (
    HOLDING_KINDS,
    DeterministicArrivals,
    ExponentialHolding,
    FixedHolding,
    HoldingTime,
    LognormalHolding,
    PoissonArrivals,
    UniformHolding,
    auto_duration,
    blocking_interval,
    engset,
    engset_channels,
    engset_time_congestion,
    erlang_b,
    erlang_b_channels,
    erlang_b_traffic,
    erlang_c,
    erlang_c_channels,
    mean_wait,
    offered_load,
    service_level,
)

# Property tests run the same examples every time.
deterministic = settings(derandomize=True, deadline=None, max_examples=150)

# Traffic values exactly representable in binary, so Fraction(a) is the float's value.
GRID_TRAFFIC = (0.25, 1.0, 2.5, 7.75, 20.0, 33.5, 60.0)


# -- references ---------------------------------------------------------------------------
def exact_erlang_b_column(a: float, n_max: int) -> list[Fraction]:
    """[B(a, n) for n = 0..n_max] from the defining sums of a^k/k!, exactly."""
    term, total, column = Fraction(1), Fraction(1), [Fraction(1)]
    for k in range(1, n_max + 1):
        term = term * Fraction(a) / k
        total += term
        column.append(term / total)
    return column


def exact_erlang_c(a: Fraction, n: int) -> Fraction:
    """C(a, n) from the M/M/n state probabilities: P(all n busy or queueing)."""
    terms = [a**k / math.factorial(k) for k in range(n)]
    queueing = a**n / math.factorial(n) * n / (n - a)
    return queueing / (sum(terms) + queueing)


def exact_engset_time(s: int, n: int, beta: Fraction) -> Fraction:
    if n > s:
        return Fraction(0)
    terms = [math.comb(s, k) * beta**k for k in range(n + 1)]
    return terms[n] / sum(terms)


def log_erlang_b(a: float, n: int) -> float:
    """ln B(a, n) from the log-sum-exp of k·ln a − ln k!: an independent route."""
    log_a = math.log(a)
    logs = [k * log_a - math.lgamma(k + 1) for k in range(n + 1)]
    top = max(logs)
    return logs[n] - top - math.log(math.fsum(math.exp(x - top) for x in logs))


def ks_statistic(samples: Sequence[float], cdf: Callable[[float], float]) -> float:
    """Kolmogorov-Smirnov D = sup |F_n − F| of the samples against ``cdf``."""
    n = len(samples)
    d = 0.0
    for i, x in enumerate(sorted(samples)):
        f = cdf(x)
        d = max(d, (i + 1) / n - f, f - i / n)
    return d


def ks_critical(n: int, alpha: float = 0.01) -> float:
    """Asymptotic KS critical value √(−ln(α/2)/2) / √n (1.628/√n at α = 0.01)."""
    return math.sqrt(-math.log(alpha / 2.0) / 2.0) / math.sqrt(n)


def dispersion_index(offsets: Sequence[float], width: float, intervals: int) -> float:
    """Variance / mean of the counts in ``intervals`` consecutive windows of ``width``."""
    counts = [0] * intervals
    for t in offsets:
        counts[int(t // width)] += 1
    return statistics.variance(counts) / statistics.fmean(counts)


# -- Erlang B -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("traffic", "channels", "published"),
    [
        (1.0, 1, 0.5),
        (10.0, 10, 0.2145823),
        (20.0, 20, 0.1588920),
        (5.0, 10, 0.0183846),
        (2.0, 5, 0.0366972),
    ],
)
def test_erlang_b_published_values(traffic: float, channels: int, published: float) -> None:
    assert erlang_b(traffic, channels) == pytest.approx(published, abs=5e-8)


def test_erlang_b_matches_exact_fractions_on_a_grid() -> None:
    for a in GRID_TRAFFIC:
        for n, exact in enumerate(exact_erlang_b_column(a, 60)):
            assert math.isclose(erlang_b(a, n), exact, rel_tol=1e-9), (a, n)


def test_erlang_b_zero_traffic_and_zero_channels_are_exact() -> None:
    assert erlang_b(0.0, 0) == 1.0
    assert erlang_b(7.5, 0) == 1.0
    assert all(erlang_b(0, n) == 0.0 for n in range(1, 20))


@pytest.mark.parametrize(
    ("traffic", "channels"), [(-1.0, 3), (math.nan, 3), (math.inf, 3), (1.0, -1)]
)
def test_erlang_b_rejects_bad_input(traffic: float, channels: int) -> None:
    with pytest.raises(ValueError, match=r"traffic|channels"):
        erlang_b(traffic, channels)


def test_erlang_b_rejects_fractional_channels() -> None:
    with pytest.raises(TypeError):
        erlang_b(1.0, 2.5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("traffic", "channels"),
    [(9_800.0, 10_000), (10_031.0, 10_000), (100_000.0, 100_000), (95_000.5, 100_000)],
)
def test_erlang_b_large_systems_match_log_space_reference(traffic: float, channels: int) -> None:
    start = time.perf_counter()
    value = erlang_b(traffic, channels)
    elapsed = time.perf_counter() - start
    assert 0.0 < value < 1.0
    assert math.isclose(math.log(value), log_erlang_b(traffic, channels), rel_tol=1e-9)
    assert elapsed < 0.5  # about 1 ms per 10,000 channels


def test_erlang_b_huge_traffic_neither_overflows_nor_underflows_wrongly() -> None:
    a = 1e5
    assert erlang_b(a, 1) == pytest.approx(a / (1 + a), rel=1e-15)
    assert erlang_b(a, 1000) == pytest.approx(1 - 1000 / a, rel=1e-3)  # fluid limit
    assert 0.0 <= erlang_b(a, 200_000) < 1e-300
    assert erlang_b(1.0, 100_000) == 0.0  # 1/100000! underflows to 0, no error


# -- Erlang C -----------------------------------------------------------------------------
def test_erlang_c_matches_exact_fractions() -> None:
    for a in GRID_TRAFFIC:
        for n in range(math.floor(a) + 1, 70):
            assert math.isclose(erlang_c(a, n), exact_erlang_c(Fraction(a), n), rel_tol=1e-9)


def test_erlang_c_known_value_and_limits() -> None:
    assert erlang_c(2, 3) == pytest.approx(4 / 9, rel=1e-14)  # M/M/3 at 2 erlangs
    assert erlang_c(0, 1) == 0.0
    assert erlang_c(5, 5) == 1.0
    assert erlang_c(6.5, 5) == 1.0


def test_mean_wait_matches_queue_length_from_state_probabilities() -> None:
    # W_q = L_q / λ, with L_q = Σ_{k>n} (k − n)·p_k = p_n·ρ/(1 − ρ)² and p_n ∝ a^n/n!.
    h = 90.0
    for a in GRID_TRAFFIC:
        for n in range(math.floor(a) + 1, math.floor(a) + 12):
            exact_a = Fraction(a)
            p = [exact_a**k / math.factorial(k) for k in range(n + 1)]
            rho = exact_a / n
            p0 = 1 / (sum(p[:n]) + p[n] / (1 - rho))
            lq = p0 * p[n] * rho / (1 - rho) ** 2
            assert math.isclose(mean_wait(a, n, h), lq * Fraction(h) / exact_a, rel_tol=1e-9)


def test_mean_wait_is_the_integral_of_the_waiting_tail() -> None:
    # E[W] = ∫ P(W > t) dt: the two helpers must agree (Simpson's rule).
    a, n, h = 8.0, 10, 120.0
    top, steps = 5000.0, 4000
    step = top / steps
    tail = [1.0 - service_level(a, n, h, i * step) for i in range(steps + 1)]
    integral = step / 3 * (tail[0] + tail[-1] + 4 * sum(tail[1:-1:2]) + 2 * sum(tail[2:-1:2]))
    assert integral == pytest.approx(mean_wait(a, n, h), rel=1e-8)


def test_service_level_limits() -> None:
    assert service_level(8, 10, 120, 0) == pytest.approx(1 - erlang_c(8, 10), rel=1e-15)
    assert service_level(8, 10, 120, 1e6) == 1.0
    assert service_level(10, 10, 120, 20) == 0.0
    assert mean_wait(10, 10, 120) == math.inf
    assert mean_wait(0, 3, 120) == 0.0
    with pytest.raises(ValueError, match="holding_time"):
        mean_wait(1, 3, 0)
    with pytest.raises(ValueError, match="target_wait"):
        service_level(1, 3, 60, -1)


@deterministic
@given(st.floats(0, 500), st.integers(1, 600))
def test_waiting_probability_is_at_least_blocking(traffic: float, channels: int) -> None:
    assert erlang_c(traffic, channels) >= erlang_b(traffic, channels)


# -- Engset -------------------------------------------------------------------------------
@pytest.mark.parametrize("beta", [0.0625, 0.5, 1.25, 3.0])
def test_engset_matches_exact_fractions(beta: float) -> None:
    exact_beta = Fraction(beta)
    for s in range(31):
        for n in range(s + 3):
            time_congestion = exact_engset_time(s, n, exact_beta)
            call_congestion = 0 if s <= n else exact_engset_time(s - 1, n, exact_beta)
            assert math.isclose(
                engset_time_congestion(s, n, beta), time_congestion, rel_tol=1e-9
            ), (s, n)
            assert math.isclose(engset(s, n, beta), call_congestion, rel_tol=1e-9), (s, n)


def test_engset_edge_cases() -> None:
    assert engset(5, 5, 2.0) == 0.0  # every source can hold a channel
    assert engset(0, 0, 2.0) == 0.0  # nobody calls
    assert engset(4, 0, 0.5) == 1.0
    assert engset_time_congestion(5, 5, 1.0) == pytest.approx(1 / 32)  # β^5/(1+β)^5
    assert engset_time_congestion(4, 5, 1.0) == 0.0
    assert engset(10, 3, 0.0) == 0.0
    with pytest.raises(ValueError, match="sources"):
        engset(-1, 3, 0.1)


def test_engset_tends_to_erlang_b_with_many_sources() -> None:
    a, n, s = 5.0, 10, 10**6
    assert engset(s, n, a / s) == pytest.approx(erlang_b(a, n), rel=1e-4)


# -- inverses -----------------------------------------------------------------------------
@deterministic
@given(st.floats(0, 3000), st.floats(1e-12, 1.0))
def test_erlang_b_channels_is_the_smallest_sufficient(traffic: float, target: float) -> None:
    n = erlang_b_channels(traffic, target)
    assert erlang_b(traffic, n) <= target
    assert n == 0 or erlang_b(traffic, n - 1) > target


@deterministic
@given(st.floats(0, 3000), st.floats(1e-12, 1.0))
def test_erlang_c_channels_is_the_smallest_stable_sufficient(traffic: float, target: float) -> None:
    n = erlang_c_channels(traffic, target)
    assert n > traffic
    assert erlang_c(traffic, n) <= target
    assert n - 1 <= traffic or erlang_c(traffic, n - 1) > target


@deterministic
@given(st.integers(0, 300), st.floats(0, 20), st.floats(1e-12, 1.0))
def test_engset_channels_is_the_smallest_sufficient(
    sources: int, beta: float, target: float
) -> None:
    n = engset_channels(sources, beta, target)
    assert n <= sources
    assert engset(sources, n, beta) <= target
    assert n == 0 or engset(sources, n - 1, beta) > target


@deterministic
@given(st.integers(1, 2000), st.floats(1e-9, 0.9))
def test_erlang_b_traffic_is_the_largest_within_1e9(channels: int, target: float) -> None:
    a = erlang_b_traffic(channels, target)
    assert erlang_b(a, channels) <= target
    assert erlang_b(a * (1 + 1e-9), channels) > target
    assert erlang_b_channels(a, target) == channels  # round trip


@pytest.mark.parametrize(
    ("channels", "target"),
    [(1, 1e-300), (5, 1e-200), (2000, 1e-300), (1, 0.999999), (50, 0.9999), (3, 1e-307)],
)
def test_erlang_b_traffic_extreme_targets(channels: int, target: float) -> None:
    a = erlang_b_traffic(channels, target)
    assert erlang_b(a, channels) <= target
    assert erlang_b(a * (1 + 1e-9), channels) > target


@pytest.mark.parametrize("channels", [100, 1000, 10_000])
def test_erlang_b_traffic_converges_in_a_few_newton_steps(
    channels: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    evaluations: list[float] = []

    def counting_erlang_b(traffic: float, n: int) -> float:
        evaluations.append(traffic)
        return erlang_b(traffic, n)

    monkeypatch.setattr("switchy.traffic.erlang_b", counting_erlang_b)
    erlang_b_traffic(channels, 0.01)
    assert len(evaluations) <= 8


@pytest.mark.parametrize(
    ("channels", "target", "published"),
    [(10, 0.01, 4.461), (100, 0.01, 84.06), (30, 0.02, 21.93), (1, 0.5, 1.0)],
)
def test_erlang_b_traffic_published_values(channels: int, target: float, published: float) -> None:
    assert erlang_b_traffic(channels, target) == pytest.approx(published, abs=0.005)


def test_inverse_edges() -> None:
    assert erlang_b_channels(0, 1e-9) == 1
    assert erlang_b_channels(50, 1.0) == 0  # B(A, 0) = 1 meets a target of 1
    # A queue is stable only with more channels than erlangs, whatever the target.
    assert erlang_c_channels(5, 1.0) == 6
    assert erlang_c_channels(0, 1e-9) == 1
    assert engset_channels(0, 2.0, 1e-9) == 0
    assert engset_channels(7, 1e9, 1e-12) == 7  # only as many channels as sources


def test_inverses_on_large_systems_are_fast() -> None:
    start = time.perf_counter()
    a = erlang_b_traffic(10_000, 0.01)
    assert erlang_b_channels(a, 0.01) == 10_000
    assert erlang_c_channels(9_800, 0.2) > 9_800
    assert time.perf_counter() - start < 1.0  # measured: ~10 ms


def test_inverses_reject_bad_targets() -> None:
    for bad in (0.0, -0.1, 1.5, math.nan):
        with pytest.raises(ValueError, match="target"):
            erlang_b_channels(10, bad)
        with pytest.raises(ValueError, match="target"):
            erlang_c_channels(10, bad)
        with pytest.raises(ValueError, match="target"):
            engset_channels(10, 0.1, bad)
    with pytest.raises(ValueError, match="target"):
        erlang_b_traffic(10, 1.0)
    with pytest.raises(ValueError, match="channels"):
        erlang_b_traffic(0, 0.01)


# -- Wilson interval ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("blocked", "offered", "published"),
    [(0, 10, (0.0, 0.2775)), (1, 10, (0.0179, 0.4042)), (5, 10, (0.2366, 0.7634))],
)
def test_wilson_interval_published_values(
    blocked: int, offered: int, published: tuple[float, float]
) -> None:
    lower, upper = blocking_interval(blocked, offered, confidence=0.95)
    assert lower == pytest.approx(published[0], abs=5e-5)
    assert upper == pytest.approx(published[1], abs=5e-5)


def test_wilson_interval_solves_its_defining_quadratic() -> None:
    # The bounds are the p with n·(p̂ − p)² = z²·p·(1 − p).
    z = NormalDist().inv_cdf(0.995)
    for n in (1, 7, 100, 12_345):
        for k in sorted({0, 1, n // 3, n // 2, n - 1, n}):
            qa, qb, qc = n + z * z, -(2 * k + z * z), k * k / n
            root = math.sqrt(qb * qb - 4 * qa * qc)
            expected = ((-qb - root) / (2 * qa), (-qb + root) / (2 * qa))
            lower, upper = blocking_interval(k, n)
            assert lower == pytest.approx(expected[0], abs=1e-12)
            assert upper == pytest.approx(expected[1], abs=1e-12)
            assert lower <= k / n <= upper


def test_wilson_interval_edges_and_errors() -> None:
    assert blocking_interval(0, 0) == (0.0, 1.0)
    lower, upper = blocking_interval(0, 1000)
    assert lower == 0.0 < upper < 0.01
    lower, upper = blocking_interval(1000, 1000)
    assert 0.99 < lower < upper == 1.0
    assert blocking_interval(50, 1000, 0.999)[0] < blocking_interval(50, 1000, 0.9)[0]
    with pytest.raises(ValueError, match="exceed"):
        blocking_interval(3, 2)
    with pytest.raises(ValueError, match="confidence"):
        blocking_interval(1, 2, confidence=1.0)


# -- Little's law -------------------------------------------------------------------------
def test_littles_law_helpers() -> None:
    assert offered_load(10.0, 90.0) == 900.0
    assert auto_duration(900.0, 10.0) == 90.0
    assert offered_load(200.0, auto_duration(1000.0, 200.0)) == pytest.approx(1000.0)
    with pytest.raises(ValueError, match="rate"):
        auto_duration(10.0, 0.0)


# -- arrivals -----------------------------------------------------------------------------
def test_deterministic_200_per_second_for_60_seconds() -> None:
    arrivals = DeterministicArrivals(200)
    offsets = arrivals.offsets_before(60.0)
    assert abs(len(offsets) - 12_000) <= 1
    assert arrivals.next_offset() == 60.0  # the 12,000th: ⌊Λ(60)⌋ calls in [0, 60]
    assert offsets[0] == 0.005
    # Absolute offsets: no drift however long the run.
    assert max(abs(t - (k + 1) / 200) for k, t in enumerate(offsets)) < 1e-12


def test_poisson_gaps_pass_kolmogorov_smirnov_against_the_exponential() -> None:
    rate, n = 50.0, 5000
    arrivals = PoissonArrivals(rate, seed=1)
    offsets = [arrivals.next_offset() for _ in range(n)]
    gaps = [b - a for a, b in pairwise([0.0, *offsets])]

    def exponential_cdf(x: float) -> float:
        return -math.expm1(-rate * x)

    assert ks_statistic(gaps, exponential_cdf) < ks_critical(n)
    # The same check rejects gaps of the right mean but the wrong shape.
    rng = random.Random(1)
    uniform_gaps = [rng.uniform(0, 2 / rate) for _ in range(n)]
    assert ks_statistic(uniform_gaps, exponential_cdf) > ks_critical(n)


def test_poisson_counts_have_unit_index_of_dispersion() -> None:
    rate, intervals = 20.0, 2000
    offsets = PoissonArrivals(rate, seed=2).offsets_before(intervals)
    assert len(offsets) == pytest.approx(rate * intervals, abs=4 * math.sqrt(rate * intervals))
    assert 0.85 <= dispersion_index(offsets, 1.0, intervals) <= 1.15
    # Evenly spaced calls are far under-dispersed: the check can tell them apart.
    even = DeterministicArrivals(rate).offsets_before(intervals)
    assert dispersion_index(even, 1.0, intervals) < 0.1


def test_poisson_is_reproducible_from_its_seed() -> None:
    first = PoissonArrivals(10, seed=7).offsets_before(100)
    assert first == PoissonArrivals(10, seed=7).offsets_before(100)
    assert first != PoissonArrivals(10, seed=8).offsets_before(100)


def test_deterministic_ramp_follows_the_integrated_rate() -> None:
    # 0 → 100 calls/s over 10 s: λ(t) = 10·t, Λ(t) = 5·t², so call k is at √(k/5).
    arrivals = DeterministicArrivals(100, initial_rate=0, ramp_time=10)
    offsets = arrivals.offsets_before(20.0)
    assert all(
        math.isclose(t, math.sqrt(k / 5), rel_tol=1e-12) for k, t in enumerate(offsets[:500], 1)
    )
    for second in range(10):
        count = sum(second <= t < second + 1 for t in offsets)
        assert abs(count - 5 * (2 * second + 1)) <= 1
    assert len([t for t in offsets if t <= 10.0]) == 500  # ⌊Λ(10)⌋
    tail = [t for t in offsets if t > 10.0]
    assert all(math.isclose(b - a, 0.01, rel_tol=1e-9) for a, b in pairwise(tail))
    assert arrivals.rate == arrivals.rate_at(10.0) == 100.0
    assert arrivals.rate_at(2.5) == 25.0


def test_deterministic_ramp_down_stops_after_the_integral() -> None:
    arrivals = DeterministicArrivals(0, initial_rate=100, ramp_time=10)
    offsets = arrivals.offsets_before(math.inf)
    assert len(offsets) == 500  # Λ(∞) = 100·10/2
    assert offsets[-1] == 10.0
    assert arrivals.next_offset() == math.inf


def test_poisson_ramp_is_a_rescaled_unit_poisson_process() -> None:
    # Time-rescaling: Λ(t_k) − Λ(t_{k−1}) must be Exp(1) throughout the ramp.
    arrivals = PoissonArrivals(50, initial_rate=1, ramp_time=200, seed=3)
    offsets = arrivals.offsets_before(200.0)
    expected = arrivals.integrated_rate(200.0)
    assert expected == pytest.approx(5100.0)
    assert len(offsets) == pytest.approx(expected, abs=4 * math.sqrt(expected))
    rescaled = [arrivals.integrated_rate(t) for t in offsets]
    gaps = [b - a for a, b in pairwise([0.0, *rescaled])]
    assert ks_statistic(gaps, lambda x: -math.expm1(-x)) < ks_critical(len(gaps))
    # Early and late halves of the ramp have the right number of calls.
    first_half = sum(t < 100 for t in offsets)
    assert first_half == pytest.approx(1275.0, abs=4 * math.sqrt(1275.0))


def test_rate_change_applies_from_then_on() -> None:
    arrivals = DeterministicArrivals(10)
    before = arrivals.offsets_before(5.05)
    assert len(before) == 50 and before[-1] == pytest.approx(5.0)
    arrivals.set_rate(100, now=5.05)  # Λ(5.05) = 50.5: half a gap already elapsed
    assert arrivals.rate == 100.0
    after = arrivals.offsets_before(6.05)
    assert after[0] == pytest.approx(5.055)  # the other half, at the new rate
    assert all(math.isclose(b - a, 0.01, rel_tol=1e-9) for a, b in pairwise(after))
    assert len(after) == 100


def test_rate_change_keeps_past_arrivals_a_lagging_scheduler_has_not_taken() -> None:
    arrivals = DeterministicArrivals(10)
    arrivals.offsets_before(4.95)
    arrivals.set_rate(100, now=5.05)
    assert arrivals.next_offset() == pytest.approx(5.0)  # happened under the old rate
    assert arrivals.next_offset() == pytest.approx(5.055)


def test_rate_change_withdraws_an_arrival_still_in_the_future() -> None:
    arrivals = DeterministicArrivals(1)
    assert [arrivals.next_offset(), arrivals.next_offset()] == [1.0, 2.0]
    arrivals.set_rate(10, now=1.5)  # the call due at 2.0 has not happened
    assert arrivals.next_offset() == pytest.approx(1.55)
    assert arrivals.next_offset() == pytest.approx(1.65)


def test_rate_zero_pauses_and_a_later_change_resumes_in_phase() -> None:
    arrivals = DeterministicArrivals(2)
    assert arrivals.offsets_before(1.2) == [0.5, 1.0]
    arrivals.set_rate(0, now=1.2)
    assert arrivals.next_offset() == math.inf
    arrivals.set_rate(2, now=10.0)  # Λ stood at 2.4 since 1.2: 0.6 of a call to go
    assert arrivals.next_offset() == pytest.approx(10.3)
    assert arrivals.peek_offset() == pytest.approx(10.8)


def test_rate_change_with_a_ramp() -> None:
    arrivals = DeterministicArrivals(10)
    arrivals.set_rate(50, now=10.0, ramp_time=4.0)
    assert arrivals.rate_at(12.0) == pytest.approx(30.0)
    assert arrivals.integrated_rate(14.0) == pytest.approx(100 + 4 * (10 + 50) / 2)
    offsets = arrivals.offsets_before(14.0 + 1e-9)
    assert sum(t > 10.0 for t in offsets) == 120


def test_poisson_rate_change_changes_the_count() -> None:
    arrivals = PoissonArrivals(10, seed=4)
    assert len(arrivals.offsets_before(100)) == pytest.approx(1000, abs=4 * math.sqrt(1000))
    arrivals.set_rate(100, now=100)
    later = arrivals.offsets_before(200)
    assert min(later) >= 100
    assert len(later) == pytest.approx(10_000, abs=4 * math.sqrt(10_000))


def test_offsets_increase_through_many_rate_changes() -> None:
    arrivals = PoissonArrivals(5, seed=5)
    rng = random.Random(5)
    offsets: list[float] = []
    for step in range(1, 200):
        offsets += arrivals.offsets_before(step)
        arrivals.set_rate(rng.choice([0, 1, 50, 300]), now=step, ramp_time=rng.choice([0, 0.5]))
    assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets)
    assert len(offsets) > 1000


def test_arrivals_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="rate"):
        PoissonArrivals(-1)
    with pytest.raises(ValueError, match="ramp_time"):
        DeterministicArrivals(1, ramp_time=math.nan)
    arrivals = DeterministicArrivals(1)
    arrivals.set_rate(2, now=5)
    with pytest.raises(ValueError, match="time order"):
        arrivals.set_rate(3, now=4)


# -- holding times ------------------------------------------------------------------------
SAMPLES = 50_000


def draw(holding: HoldingTime, n: int = SAMPLES) -> list[float]:
    return [holding.sample() for _ in range(n)]


def test_fixed_holding() -> None:
    assert set(draw(FixedHolding(90), 10)) == {90.0}


def test_exponential_holding_mean_and_std() -> None:
    samples = draw(ExponentialHolding(120, seed=1))
    assert statistics.fmean(samples) == pytest.approx(120, abs=4 * 120 / math.sqrt(SAMPLES))
    assert statistics.stdev(samples) == pytest.approx(120, rel=0.03)


def test_uniform_holding_mean_and_range() -> None:
    holding = UniformHolding(30, 150, seed=2)
    samples = draw(holding)
    assert holding.mean == 90.0
    assert statistics.fmean(samples) == pytest.approx(90, abs=4 * 120 / math.sqrt(12 * SAMPLES))
    assert min(samples) >= 30 and max(samples) <= 150


def test_lognormal_holding_is_parameterised_by_the_duration_not_its_log() -> None:
    mean, std, n = 120.0, 60.0, 100_000
    samples = draw(LognormalHolding(mean, std, seed=3), n)
    assert statistics.fmean(samples) == pytest.approx(mean, abs=4 * std / math.sqrt(n))
    # The sample standard deviation's relative standard error is √((κ − 1)/(4n)),
    # κ the lognormal kurtosis.
    w = 1 + (std / mean) ** 2
    kurtosis = w**4 + 2 * w**3 + 3 * w**2 - 3
    assert statistics.stdev(samples) == pytest.approx(
        std, rel=4 * math.sqrt((kurtosis - 1) / (4 * n))
    )
    logs = [math.log(x) for x in samples]
    assert statistics.stdev(logs) == pytest.approx(math.sqrt(math.log(w)), rel=0.01)


def test_holding_times_are_reproducible_from_their_seed() -> None:
    assert draw(ExponentialHolding(60, seed=9), 50) == draw(ExponentialHolding(60, seed=9), 50)
    assert draw(LognormalHolding(60, 5, seed=9), 50) != draw(LognormalHolding(60, 5, seed=8), 50)


def test_holding_from_spec() -> None:
    assert set(HOLDING_KINDS) == {"fixed", "exp", "uniform", "lognormal"}
    assert isinstance(HoldingTime.from_spec("fixed", mean=30), FixedHolding)
    exp = HoldingTime.from_spec("exp", mean=30, seed=1)
    assert isinstance(exp, ExponentialHolding) and exp.mean == 30.0
    uniform = HoldingTime.from_spec("uniform", low=10, high=20)
    assert isinstance(uniform, UniformHolding) and uniform.mean == 15.0
    lognormal = HoldingTime.from_spec("lognormal", mean=100, std=40)
    assert isinstance(lognormal, LognormalHolding) and lognormal.std == 40.0
    with pytest.raises(ValueError, match="unknown"):
        HoldingTime.from_spec("gamma", mean=3)
    with pytest.raises(ValueError, match="take mean; got mean, std"):
        HoldingTime.from_spec("exp", mean=3, std=1)
    with pytest.raises(ValueError, match="got nothing"):
        HoldingTime.from_spec("lognormal")


@pytest.mark.parametrize(
    "build",
    [
        lambda: FixedHolding(0),
        lambda: ExponentialHolding(-1),
        lambda: UniformHolding(20, 10),
        lambda: UniformHolding(-1, 10),
        lambda: LognormalHolding(10, -1),
        lambda: LognormalHolding(math.inf, 1),
    ],
)
def test_holding_times_reject_bad_parameters(build: Callable[[], HoldingTime]) -> None:
    with pytest.raises(ValueError, match=r"mean|low|high|std"):
        build()
