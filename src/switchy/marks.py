"""Marks that make a method part of a call app: ``@event_callback`` and ``@handler``.

::

    class Counter:
        @event_callback("CHANNEL_ANSWER")
        def on_answer(self, session): ...

        @handler("HEARTBEAT")
        async def on_heartbeat(self, event): ...

An ``event_callback`` receives the :class:`~switchy.models.Session` an event is
about, and runs only for sessions of the app it belongs to. A ``handler``
receives the raw :class:`~switchy.esl.protocol.Event`, for every event of that
name the node sends. Both may be plain functions or coroutines.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["CALLBACK", "HANDLER", "collect", "event_callback", "handler"]

F = TypeVar("F", bound=Callable[..., Any])

CALLBACK = "callback"
HANDLER = "handler"
_ATTRIBUTE = "_switchy_marks"


def _mark(kind: str, event_names: tuple[str, ...]) -> Callable[[F], F]:
    if not event_names:
        raise TypeError(f"@{kind} needs at least one event name")
    for name in event_names:
        if not isinstance(name, str) or not name or " " in name:
            raise TypeError(f"@{kind}: invalid event name {name!r}")

    def mark(function: F) -> F:
        marks = list(getattr(function, _ATTRIBUTE, ()))
        marks.extend((kind, name) for name in event_names)
        setattr(function, _ATTRIBUTE, marks)
        return function

    return mark


def event_callback(*event_names: str) -> Callable[[F], F]:
    """Call the decorated function with the Session each of these events is about."""
    return _mark(CALLBACK, event_names)


def handler(*event_names: str) -> Callable[[F], F]:
    """Call the decorated function with every raw event of these names."""
    return _mark(HANDLER, event_names)


def collect(namespace: object) -> list[tuple[str, str, Callable[..., Any]]]:
    """Every marked callable of ``namespace`` as (kind, event name, callable).

    ``namespace`` is an instance, a class or a module; methods come bound.
    Order: definition order, so callbacks of one app run in the order written.
    """
    found: list[tuple[str, str, Callable[..., Any]]] = []
    seen: set[str] = set()
    names = list(vars(namespace)) if inspect.ismodule(namespace) else []
    if not inspect.ismodule(namespace):
        for klass in reversed(
            type(namespace).__mro__ if not inspect.isclass(namespace) else namespace.__mro__
        ):
            names.extend(vars(klass))
        names.extend(getattr(namespace, "__dict__", {}))
    for name in names:
        if name in seen or name.startswith("__"):
            continue
        seen.add(name)
        member = getattr(namespace, name, None)
        for kind, event_name in getattr(member, _ATTRIBUTE, ()):
            assert callable(member)
            found.append((kind, event_name, member))
    return found
