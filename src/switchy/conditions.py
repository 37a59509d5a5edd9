"""Waiting until a condition holds, checked each time its owner's state changes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class Conditions:
    """Predicates that coroutines wait on; the owner calls :meth:`check` after each change."""

    __slots__ = ("_owner", "_waiting")

    def __init__(self, owner: str) -> None:
        self._owner = owner  # names the owner in the TimeoutError
        self._waiting: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []

    async def wait(self, predicate: Callable[[], bool], timeout: float | None = None) -> None:
        """Return once ``predicate()`` holds; TimeoutError after ``timeout`` seconds.

        What ``predicate`` raises when checked is raised here.
        """
        if predicate():
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (predicate, future)
        self._waiting.append(entry)
        try:
            await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"{self._owner}: condition not met within {timeout}s") from None
        finally:
            if entry in self._waiting:
                self._waiting.remove(entry)

    def check(self) -> None:
        """Wake the waiters whose predicate now holds (or raises)."""
        if not self._waiting:  # the usual case, on every event of a tracker
            return
        for predicate, future in list(self._waiting):
            if future.done():
                continue
            try:
                if predicate():
                    future.set_result(None)
            except Exception as exc:
                future.set_exception(exc)
