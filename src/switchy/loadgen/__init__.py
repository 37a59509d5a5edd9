"""The load generator: offer calls to a device under test from FreeSWITCH nodes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from switchy.esl.connection import DEFAULT_PASSWORD
from switchy.loadgen.originator import Originator, State
from switchy.pool import Contact, Pool
from switchy.ticks import check_tick

__all__ = ["Originator", "State", "get_originator", "originator_pool"]


def originator_pool(
    contacts: Iterable[Contact],
    password: str = DEFAULT_PASSWORD,
    tick: float = 0.0,
    **client_options: Any,
) -> Pool:
    """One client per contact, as an :class:`Originator` on ``tick`` wants them: they
    reconnect to a lost node with backoff and read on the same ticks
    (``read_interval``), unless ``client_options`` say otherwise."""
    defaults = {"reconnect": True, "read_interval": check_tick(tick, "tick")}
    return Pool.from_contacts(contacts, password, **{**defaults, **client_options})


def get_originator(
    contacts: Iterable[Contact],
    password: str = DEFAULT_PASSWORD,
    *,
    client_options: dict[str, Any] | None = None,
    **settings: Any,
) -> Originator:
    """An :class:`Originator` over an :func:`originator_pool` of these contacts
    (``host``, ``host:port`` or a (host, port) pair); connect it with
    ``await originator.pool.connect()``."""
    pool = originator_pool(contacts, password, settings.get("tick", 0.0), **(client_options or {}))
    return Originator(pool, **settings)
