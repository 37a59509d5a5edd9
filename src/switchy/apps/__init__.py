"""Call apps: the registry that makes them discoverable by name.

An app is any namespace (class, instance or module) with methods marked
``@event_callback("EVENT")`` or ``@handler("EVENT")`` (see :mod:`switchy.marks`).
Registering it with ``@app`` lets ``switchy list-apps`` show it and
``switchy run --app NAME`` load it::

    @app                      # registered as "Counter"
    class Counter: ...

    @app("tone")              # or @app(name="tone")
    class TonePlayer: ...
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar, overload

from switchy.marks import event_callback, handler

__all__ = ["app", "app_name", "event_callback", "get", "groupbymod", "handler", "iterapps", "load"]

T = TypeVar("T")

#: The apps shipped with switchy, imported by :func:`load`.
BUILTIN_MODULES = ("switchy.apps.players",)

_registry: dict[str, Any] = {}


@overload
def app(target: T) -> T: ...
@overload
def app(target: str | None = None, *, name: str | None = None) -> Callable[[T], T]: ...
def app(target: Any = None, *, name: str | None = None) -> Any:
    """Register an app under its ``__name__`` or the name given."""

    def register(namespace: T) -> T:
        key = name or (target if isinstance(target, str) else None) or _own_name(namespace)
        existing = _registry.get(key)
        if (
            existing is not None
            and existing is not namespace
            and _origin(existing) != _origin(namespace)
        ):
            raise ValueError(f"an app named {key!r} is already registered by {_origin(existing)}")
        _registry[key] = namespace
        namespace.__switchy_app_name__ = key  # type: ignore[attr-defined]
        return namespace

    if target is None or isinstance(target, str):
        return register
    return register(target)


def _own_name(namespace: object) -> str:
    return str(getattr(namespace, "__name__", type(namespace).__name__)).rsplit(".", 1)[-1]


def _origin(namespace: object) -> str:
    module = inspect.getmodule(namespace)
    qualname = getattr(namespace, "__qualname__", _own_name(namespace))
    return f"{module.__name__ if module else '?'}.{qualname}"


def app_name(namespace: object) -> str:
    """The name an app is known by: its registered name, else its own name."""
    registered = getattr(namespace, "__switchy_app_name__", None)
    if registered is None and not inspect.isclass(namespace) and not inspect.ismodule(namespace):
        registered = getattr(type(namespace), "__switchy_app_name__", None)
    return str(registered) if registered else _own_name(namespace)


def get(name: str) -> Any:
    """The registered app called ``name`` (built-in apps are always available)."""
    load()
    try:
        return _registry[name]
    except KeyError:
        known = ", ".join(sorted(_registry)) or "none"
        raise KeyError(f"no app named {name!r}; known apps: {known}") from None


def iterapps() -> Iterator[tuple[str, Any]]:
    """(name, app) of every registered app, sorted by name."""
    load()
    return iter(sorted(_registry.items()))


def groupbymod() -> dict[str, list[tuple[str, Any]]]:
    """The registered apps grouped by the module that defines them."""
    groups: dict[str, list[tuple[str, Any]]] = {}
    for name, namespace in iterapps():
        module = inspect.getmodule(namespace)
        groups.setdefault(module.__name__ if module else "?", []).append((name, namespace))
    return groups


def load(packages: Iterable[str] = ()) -> dict[str, Any]:
    """Import the built-in apps and every module of ``packages`` so their ``@app``
    registrations run; return the registry (name -> app)."""
    for module_name in (*BUILTIN_MODULES, *packages):
        module = importlib.import_module(module_name)
        if hasattr(module, "__path__"):  # a package: import its modules too
            for info in pkgutil.walk_packages(module.__path__, prefix=f"{module.__name__}."):
                importlib.import_module(info.name)
    return dict(_registry)
