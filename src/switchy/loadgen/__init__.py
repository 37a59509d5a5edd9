"""The load generator: offer calls to a device under test from FreeSWITCH nodes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from switchy.esl.connection import DEFAULT_PASSWORD
from switchy.loadgen.originator import Originator, State
from switchy.pool import Contact, Pool
from switchy.ticks import check_tick

__all__ = ["Originator", "State", "get_originator"]


def get_originator(
    contacts: Iterable[Contact],
    password: str = DEFAULT_PASSWORD,
    *,
    client_options: dict[str, Any] | None = None,
    **settings: Any,
) -> Originator:
    """An :class:`Originator` over one client per contact (``host``, ``host:port`` or a
    (host, port) pair); connect it with ``await originator.pool.connect()``. Clients
    reconnect to a lost node with backoff, and read on the originator's ``tick``,
    unless ``client_options`` say otherwise."""
    defaults = {"reconnect": True, "read_interval": check_tick(settings.get("tick", 0.0), "tick")}
    pool = Pool.from_contacts(contacts, password, **{**defaults, **(client_options or {})})
    return Originator(pool, **settings)
