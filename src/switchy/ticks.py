"""The grid of ticks on which batched work runs.

A busy load generator spends much of its CPU waking up: for each arrival, each
hang-up, each event and each reply. With a tick of T seconds, the connections'
reads (``read_interval``) and the originator's timers (``tick``) all fall on
the multiples of T of the event loop's clock, so one wake-up serves them all.
"""

from __future__ import annotations

import math


def next_tick(now: float, tick: float) -> float:
    """The first multiple of ``tick`` (seconds, > 0) after ``now`` (loop time)."""
    return (math.floor(now / tick) + 1) * tick
