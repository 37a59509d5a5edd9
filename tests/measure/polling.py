"""Waiting for what a background task writes to a file: no event to await there."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(condition: Callable[[], bool], timeout: float = 10.0, step: float = 0.01) -> None:
    """Return once ``condition()`` is true; fail after ``timeout`` seconds."""
    for _ in range(int(timeout / step)):
        if condition():
            return
        await asyncio.sleep(step)
    raise AssertionError(f"still false after {timeout} s")
