"""A pool of clients, one per FreeSWITCH node, acted on all at once.

::

    pool = Pool.from_contacts(["fs1", ("fs2", 8022)], password="ClueCon")
    await pool.connect()
    await pool.load_app(TonePlay)
    busy = await pool.reduce(lambda total, client: total + client.tracker.count_calls(), 0)

The original switchy evaluated strings of Python over its nodes; here every
helper takes a plain callable.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar, overload

from switchy.client import Client
from switchy.errors import ConnectError
from switchy.esl.connection import DEFAULT_PASSWORD, DEFAULT_PORT

__all__ = ["Contact", "Pool", "parse_contact"]

log = logging.getLogger("switchy.pool")

T = TypeVar("T")
R = TypeVar("R")

#: ``"host"``, ``"host:port"`` or ``("host", port)``.
Contact = str | tuple[str, int]


def parse_contact(contact: Contact) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]:port`` or a (host, port) pair -> (host, port)."""
    if isinstance(contact, tuple):
        host, port = contact
    else:
        text = contact.strip()
        if text.startswith("["):  # [IPv6]:port
            host, _, rest = text[1:].partition("]")
            port = int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else DEFAULT_PORT
            if rest and not rest.startswith(":"):
                raise ValueError(f"{contact!r} is not HOST[:PORT]")
        elif text.count(":") == 1:
            host, _, port_text = text.partition(":")
            if not port_text.isdigit():
                raise ValueError(f"{contact!r} is not HOST[:PORT]: bad port {port_text!r}")
            port = int(port_text)
        else:
            host, port = text, DEFAULT_PORT  # a bare host name, or a bare IPv6 address
    if not host or not 0 < int(port) < 65536:
        raise ValueError(f"{contact!r} is not HOST[:PORT]")
    return host, int(port)


class Pool:
    """Clients for several FreeSWITCH nodes."""

    def __init__(self, clients: Sequence[Client]) -> None:
        if not clients:
            raise ValueError("a pool needs at least one client")
        self.clients = list(clients)

    @classmethod
    def from_contacts(
        cls, contacts: Iterable[Contact], password: str = DEFAULT_PASSWORD, **client_options: Any
    ) -> Pool:
        """One :class:`Client` per contact (``host``, ``host:port`` or a pair)."""
        clients = []
        for contact in contacts:
            host, port = parse_contact(contact)
            clients.append(Client(host, port, password, **client_options))
        return cls(clients)

    def __iter__(self) -> Iterator[Client]:
        return iter(self.clients)

    def __len__(self) -> int:
        return len(self.clients)

    def __repr__(self) -> str:
        return f"<Pool {', '.join(client.address for client in self.clients)}>"

    async def connect(self) -> None:
        """Connect every client at once; ConnectError naming each node that failed."""
        results = await asyncio.gather(
            *(client.connect() for client in self.clients), return_exceptions=True
        )
        failures = [result for result in results if isinstance(result, BaseException)]
        if failures:
            await self.disconnect()
            for failure in failures:
                if not isinstance(failure, Exception):
                    raise failure
            raise ConnectError("; ".join(str(failure) for failure in failures))

    async def disconnect(self) -> None:
        await asyncio.gather(
            *(client.disconnect() for client in self.clients), return_exceptions=True
        )

    @overload
    async def map(self, function: Callable[[Client], Awaitable[T]]) -> list[T]: ...
    @overload
    async def map(self, function: Callable[[Client], T]) -> list[T]: ...
    async def map(self, function: Callable[[Client], Any]) -> list[Any]:
        """``function(client)`` for every client, in order; coroutines run concurrently."""
        results: list[Any] = [function(client) for client in self.clients]
        pending = [(i, result) for i, result in enumerate(results) if inspect.isawaitable(result)]
        if pending:
            done = await asyncio.gather(*(result for _, result in pending))
            for (index, _), value in zip(pending, done, strict=True):
                results[index] = value
        return results

    async def reduce(self, function: Callable[[R, Client], R], initial: R) -> R:
        """Fold ``function(accumulated, client)`` over the clients, starting from ``initial``."""
        value = initial
        for client in self.clients:
            value = function(value, client)
        return value

    async def load_app(self, app: object, app_id: str | None = None, **kwargs: Any) -> str:
        """Load ``app`` on every node (a class gets one instance per node); its app id."""
        results = await asyncio.gather(
            *(client.load_app(app, app_id, **kwargs) for client in self.clients),
            return_exceptions=True,
        )
        loaded = [
            (client, result)
            for client, result in zip(self.clients, results, strict=True)
            if isinstance(result, str)
        ]
        if len(loaded) < len(self.clients):  # all or nothing
            for client, loaded_id in loaded:
                await client.unload_app(loaded_id)
            raise next(result for result in results if isinstance(result, BaseException))
        return loaded[0][1]

    async def unload_app(self, app_id: str) -> None:
        await self.map(lambda client: client.unload_app(app_id))

    def count_calls(self) -> int:
        """Calls up on all nodes."""
        return sum(client.tracker.count_calls() for client in self.clients)

    def count_sessions(self) -> int:
        return sum(client.tracker.count_sessions() for client in self.clients)
