"""The node's session counters (``status``, HEARTBEAT), on a clock the test moves."""

from __future__ import annotations

from switchy.sim.switch import SessionStats


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_counters_follow_the_sessions_created_each_second() -> None:
    clock = Clock()
    stats = SessionStats(clock)
    for count in (1, 2, 3):
        stats.created(count)
    assert (stats.sps_now(), stats.sps_peak, stats.peak) == (3, 3, 3)
    clock.now += 1
    stats.created(2)
    assert (stats.sps_now(), stats.last_sps, stats.sps_peak) == (1, 3, 3)
    clock.now += 5  # seconds without sessions: the last second's rate is 0
    assert (stats.sps_now(), stats.last_sps) == (0, 0)
    assert stats.since_startup == 4


def test_five_minute_peaks_forget_older_seconds() -> None:
    clock = Clock()
    stats = SessionStats(clock)
    for count in range(1, 11):  # 10 sessions in one second, 10 at once at most
        stats.created(count)
    clock.now += 100
    stats.created(4)
    assert (stats.peak_five_minutes(), stats.sps_peak_five_minutes()) == (10, 10)
    clock.now += 250  # the busy second is more than five minutes old
    assert (stats.peak_five_minutes(), stats.sps_peak_five_minutes()) == (4, 1)
    assert (stats.peak, stats.sps_peak) == (10, 10)  # all-time peaks stay
    clock.now += 300
    assert (stats.peak_five_minutes(), stats.sps_peak_five_minutes()) == (0, 0)


def test_thousands_of_sessions_keep_one_sample_a_second() -> None:
    clock = Clock()
    stats = SessionStats(clock)
    for second in range(3):
        clock.now = 2_000.0 + second
        for count in range(1_000):
            stats.created(count + 1)
    assert stats.sps_peak_five_minutes() == 1_000
    assert len(stats._seconds) == 2  # the seconds before the current one
