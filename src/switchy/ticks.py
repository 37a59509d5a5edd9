"""The grid of ticks on which batched work runs.

A busy load generator spends much of its CPU waking up: for each arrival, each
hang-up, each event and each reply. With a tick of T seconds, the connections'
reads (``read_interval``) and the originator's timers (``tick``) all fall on
the multiples of T of the event loop's clock, so one wake-up serves them all.
"""

from __future__ import annotations

import math

from switchy.errors import ConfigurationError


def check_tick(value: float, name: str) -> float:
    """``value`` (seconds) as a tick period: 0 for none, else finite and positive.

    Anything else is a :class:`ConfigurationError` (a ``ValueError``) naming ``name``.
    """
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
        raise ConfigurationError(f"{name} must be >= 0 seconds and finite, got {value!r}")
    return float(value)


def next_tick(now: float, tick: float) -> float:
    """The first multiple of ``tick`` (seconds, > 0) after ``now`` (loop time)."""
    return (math.floor(now / tick) + 1) * tick
