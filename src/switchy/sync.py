"""A blocking facade for scripts and the REPL.

The asyncio API is switchy's primary one; this runs it in a background event
loop thread so plain code can use it::

    from switchy import sync_caller
    from switchy.apps.players import TonePlay

    with sync_caller("127.0.0.1", apps={"TonePlay": TonePlay}) as caller:
        sess, waitfor = caller("doggy@127.0.0.1:5080", "TonePlay", timeout=3)
        assert sess.is_outbound()
        sess.hangup()

Calling one of these blocking methods from inside the event loop thread (from
an app callback, say) raises RuntimeError instead of waiting for itself forever.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Coroutine, Iterator, Mapping
from typing import Any, TypeVar

from switchy.background import LoopThread
from switchy.client import AppNamespace, Client
from switchy.errors import APIError
from switchy.esl.connection import DEFAULT_PASSWORD, DEFAULT_PORT
from switchy.models import Job, Session
from switchy.tracking import Tracker

__all__ = ["Caller", "SyncClient", "active_client", "sync_caller"]

T = TypeVar("T")


class SyncClient:
    """A :class:`~switchy.client.Client` driven from blocking code."""

    def __init__(self, client: Client, loop: LoopThread) -> None:
        self.client = client
        self._loop = loop

    def _run(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return self._loop.run(coroutine, timeout)

    @property
    def host(self) -> str:
        return self.client.host

    @property
    def tracker(self) -> Tracker:
        return self.client.tracker

    listener = tracker  # the original switchy's name

    @property
    def apps(self) -> AppNamespace:
        return self.client.apps

    def api(self, command: str, timeout: float | None = None) -> str:
        return self._run(self.client.api(command, timeout=timeout))

    def cmd(self, command: str) -> str:
        return self._run(self.client.cmd(command))

    def bgapi(self, command: str, **kwargs: Any) -> Job:
        return self._run(self.client.bgapi(command, **kwargs))

    def originate(self, dest_url: str | None = None, **kwargs: Any) -> Job:
        return self._run(self.client.originate(dest_url, **kwargs))

    def set_orig_cmd(self, dest_url: str | None = None, **options: Any) -> None:
        self.client.set_orig_cmd(dest_url, **options)

    def hupall(self, app_id: str | None = None, cause: str = "NORMAL_CLEARING") -> None:
        self._run(self.client.hupall(app_id, cause))

    def load_app(self, app: object, app_id: str | None = None, **kwargs: Any) -> str:
        return self._run(self.client.load_app(app, app_id, **kwargs))

    def unload_app(self, app_id: str) -> None:
        self._run(self.client.unload_app(app_id))

    def waitfor(self, session: Session, name: str, timeout: float | None = None) -> Any:
        """Block until ``session.vars[name]`` is true (set by an app callback)."""
        return self._run(session.wait_var(name, timeout))

    def wait_for(self, predicate: Callable[[], bool], timeout: float | None = None) -> None:
        """Block until ``predicate()`` holds, checked after every event."""
        self._run(self.client.tracker.wait_for(predicate, timeout))

    def count_calls(self) -> int:
        return self.client.tracker.count_calls()

    def __repr__(self) -> str:
        return f"<SyncClient {self.client!r}>"


@contextlib.contextmanager
def active_client(
    host: str,
    port: int = DEFAULT_PORT,
    password: str = DEFAULT_PASSWORD,
    apps: Mapping[str, object] | None = None,
    **client_options: Any,
) -> Iterator[SyncClient]:
    """A connected :class:`SyncClient` with ``apps`` (app id -> app) loaded."""
    with LoopThread(f"switchy-{host}:{port}") as loop:
        client = Client(host, port, password, **client_options)
        loop.run(client.connect())
        try:
            for app_id, app in (apps or {}).items():
                loop.run(client.load_app(app, app_id=app_id))
            yield SyncClient(client, loop)
        finally:
            loop.run(client.disconnect(), timeout=30)


class Caller:
    """Makes one call at a time and returns once it is up: see :func:`sync_caller`."""

    def __init__(self, client: SyncClient) -> None:
        self.client = client

    @property
    def apps(self) -> AppNamespace:
        return self.client.apps

    @property
    def app_names(self) -> list[str]:
        return self.client.client.app_ids

    def __call__(
        self,
        dest_url: str,
        app_name: str,
        timeout: float = 30,
        waitfor: tuple[str, float] | None = None,
        **originate_options: Any,
    ) -> tuple[Session, Callable[..., Any]]:
        """Originate to ``dest_url`` under app ``app_name``; block until answered.

        Returns the originating session and a ``waitfor(session, var,
        timeout)`` blocker; with ``waitfor=(var, timeout)`` it first waits for
        that variable on the originating session. A failed call raises the
        job's error (APIError carrying the hangup cause).
        """
        job = self.client.originate(dest_url, app_id=app_name, **originate_options)
        uuid = job.get(timeout)
        session = job.session or self.client.tracker.sessions.get(uuid)
        if session is None:
            raise APIError(f"call {uuid} is up but its session was not seen")
        call = session.call
        originator = (call.first if call is not None else None) or session
        if waitfor:
            name, seconds = waitfor
            self.client.waitfor(originator, name, seconds)
        return originator, self.client.waitfor


@contextlib.contextmanager
def sync_caller(
    host: str,
    port: int = DEFAULT_PORT,
    password: str = DEFAULT_PASSWORD,
    apps: Mapping[str, object] | None = None,
    **client_options: Any,
) -> Iterator[Caller]:
    """A blocking caller function (see :class:`Caller`), with ``apps`` loaded
    (by default the built-in ``TonePlay``)."""
    if apps is None:
        from switchy.apps.players import TonePlay

        apps = {"TonePlay": TonePlay}
    with active_client(host, port, password, apps, **client_options) as client:
        yield Caller(client)
