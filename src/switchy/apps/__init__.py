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
import os
import pkgutil
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

from switchy.marks import event_callback, handler

__all__ = [
    "AppSpec",
    "app",
    "app_name",
    "event_callback",
    "from_spec",
    "get",
    "groupbymod",
    "handler",
    "iterapps",
    "load",
]

T = TypeVar("T")

#: The apps shipped with switchy, imported by :func:`load`.
BUILTIN_MODULES = (
    "switchy.apps.bert",
    "switchy.apps.blockers",
    "switchy.apps.dtmf",
    "switchy.apps.players",
    "switchy.apps.routers",
)

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


@dataclass(frozen=True)
class AppSpec:
    """An app chosen on a command line: the app, its weight in a mix, its keywords."""

    app: Any
    name: str
    weight: int = 1
    kwargs: dict[str, Any] = field(default_factory=dict)


def _keyword_value(text: str) -> Any:
    """An app keyword's value from text: int, float, true/false, or the text itself."""
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def from_spec(spec: str) -> AppSpec:
    """Resolve ``NAME[:WEIGHT][,key=value...]``; NAME is a registered app
    (``TonePlay``) or ``module:Attribute`` (``my_dialplan:router``, modules in the
    current directory included). ValueError with a one-line reason otherwise."""
    target, *pairs = spec.split(",")
    parts = target.split(":")
    weight = 1
    if len(parts) > 1 and parts[-1].isdigit():
        weight = int(parts.pop())
        if weight < 1:
            raise ValueError(f"{spec!r}: the weight must be a whole number > 0")
    target = ":".join(parts)
    kwargs: dict[str, Any] = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key.isidentifier():
            raise ValueError(f"{spec!r}: {pair!r} is not key=value")
        kwargs[key] = _keyword_value(value)
    if not target:
        raise ValueError(f"{spec!r}: no app name")
    module_name, colon, attribute = target.partition(":")
    if not colon:
        try:
            return AppSpec(get(target), target, weight, kwargs)
        except KeyError as exc:
            raise ValueError(str(exc.args[0])) from None
    if not module_name or not attribute:
        raise ValueError(f"{spec!r}: expected module:Name or an app name")
    # Like `python -m`: modules in the current directory can be used.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"{spec!r}: cannot import {module_name!r}: {exc}") from None
    try:
        app = getattr(module, attribute)
    except AttributeError:
        raise ValueError(f"{spec!r}: module {module_name!r} has no {attribute!r}") from None
    return AppSpec(app, app_name(app), weight, kwargs)


def load(packages: Iterable[str] = ()) -> dict[str, Any]:
    """Import the built-in apps and every module of ``packages`` so their ``@app``
    registrations run; return the registry (name -> app)."""
    for module_name in (*BUILTIN_MODULES, *packages):
        module = importlib.import_module(module_name)
        if hasattr(module, "__path__"):  # a package: import its modules too
            for info in pkgutil.walk_packages(module.__path__, prefix=f"{module.__name__}."):
                importlib.import_module(info.name)
    return dict(_registry)
