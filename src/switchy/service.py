"""A call-control service for a whole FreeSWITCH cluster.

::

    service = Service(["fs1", "fs2", "fs3"])
    service.apps.load_app(router, app_id="default")
    service.run()  # until SIGINT / SIGTERM

One :class:`~switchy.client.Client` per node (a :class:`~switchy.pool.Pool`),
the same apps on each: the "brains" of call control live in one Python
process, the "muscle" in as many FreeSWITCH processes as needed. A node that
drops is reconnected with backoff while the others keep serving; its apps are
still loaded when it is back, and apps loaded meanwhile are loaded then.

Stopping (:meth:`Service.stop`) is graceful: the apps are unloaded at once and
every inbound call that arrives from then on is refused with SIP 503 (Service
Unavailable: a caller may retry elsewhere) instead of being left parked; calls
already up are left alone (or hung up with ``hangup=True``), optionally after
waiting ``drain`` seconds for them to end. ``switchy serve`` runs a service
from the command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

import click

import switchy.apps
from switchy.apps import app_name
from switchy.cli_options import chosen_password, password_options
from switchy.client import Client
from switchy.conditions import Conditions
from switchy.errors import ConnectError, SwitchyError
from switchy.esl.connection import DEFAULT_PASSWORD, ReconnectPolicy
from switchy.marks import event_callback
from switchy.models import Session
from switchy.pool import Contact, Pool, parse_contact
from switchy.tracking import Tracker

__all__ = ["Service", "ServiceApps", "ServiceNode", "serve_command"]

log = logging.getLogger("switchy.service")

#: Backoff between reconnection attempts to a lost node.
DEFAULT_RECONNECT = ReconnectPolicy(initial=0.5, maximum=30.0)
#: The SIP response that refuses calls arriving while the service stops.
REFUSAL = 503
#: The cause of the calls a stopping service hangs up.
STOP_CAUSE = "MANAGER_REQUEST"
#: How long a stopping service waits for the calls it hung up to be gone.
HANGUP_WAIT = 10.0


@dataclass(eq=False)
class _AppEntry:
    """An app the service loads on every node."""

    app: object
    app_id: str
    header: str | None
    kwargs: dict[str, Any]

    def load_on(self, client: Client) -> Any:
        return client.load_app(self.app, self.app_id, header=self.header, **self.kwargs)


@dataclass(eq=False)
class ServiceNode:
    """One FreeSWITCH node of a service: its client and how it is doing.

    ``state`` is ``idle`` (before the service starts), ``up``, ``lost`` (being
    reconnected) or ``stopped``.
    """

    client: Client
    state: str = "idle"
    losses: int = 0
    last_error: str | None = None
    loaded: list[_AppEntry] = field(default_factory=list)

    @property
    def address(self) -> str:
        return self.client.address

    def __repr__(self) -> str:
        return f"<ServiceNode {self.address} {self.state}>"


class ServiceApps:
    """The apps a :class:`Service` serves on every node (``service.apps``)."""

    def __init__(self, service: Service) -> None:
        self._service = service
        self._entries: list[_AppEntry] = []

    def load_app(
        self, app: object, app_id: str = "default", header: str | None = None, **kwargs: Any
    ) -> str:
        """Serve ``app`` on every node under ``app_id``; returns the app id.

        ``app`` is a class (one instance per node, built with the ``kwargs`` its
        constructor takes), an instance (shared by every node) or a module; see
        :meth:`Client.load_app`. ``app_id="default"`` handles every call that no
        other app claims; ``header`` dispatches calls by that event header's value
        instead (``header="Caller-Context", app_id="switchy"``). The app is
        remembered: loaded when the service starts, and on any node that
        (re)connects without it. While serving, loading on the connected nodes
        happens in the background; a node that fails to load it logs why.
        """
        entry = _AppEntry(app, app_id, header, dict(kwargs))
        self._service._check_not_stopping()
        self._entries.append(entry)
        if self._service.state == "serving":
            self._service._spawn(self._service._load_everywhere(entry))
        return app_id

    def unload_app(self, app_id: str) -> None:
        """Stop serving the apps loaded under ``app_id`` (their teardown runs on each node)."""
        self._service._check_not_stopping()
        self._entries = [entry for entry in self._entries if entry.app_id != app_id]
        for node in self._service.nodes:
            node.loaded = [entry for entry in node.loaded if entry.app_id != app_id]
            if self._service.state == "serving":  # a lost node too: it comes back without
                self._service._spawn(self._service._unload_on(node, app_id))

    @property
    def app_ids(self) -> list[str]:
        """The app ids served, in load order."""
        return list(dict.fromkeys(entry.app_id for entry in self._entries))

    def __iter__(self) -> Iterator[object]:
        return iter([entry.app for entry in self._entries])

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"<ServiceApps {self.app_ids}>"


class _Refuser:
    """Takes the place of a stopping service's apps: refuses the calls that arrive."""

    def __init__(self, response: int) -> None:
        self.response = response

    @event_callback("CHANNEL_PARK")
    def on_park(self, session: Session) -> None:
        if session.is_inbound() and not session.answered:
            session.log.info("refused with %s: the service is stopping", self.response)
            session.respond(self.response)


class Service:
    """Call apps served to a cluster of FreeSWITCH nodes.

    ``contacts`` are ``host``, ``host:port`` or (host, port); every node takes
    ``password``. ``reconnect`` is the backoff between attempts to reach a lost
    node (True: :data:`DEFAULT_RECONNECT`, False: a lost node stays lost).
    ``refuse_with`` is the SIP response of calls arriving while the service
    stops. Other keywords go to each :class:`~switchy.client.Client`.

    ``state``: ``idle``, ``starting``, ``serving``, ``stopping``, ``stopped``.
    """

    def __init__(
        self,
        contacts: Iterable[Contact],
        password: str = DEFAULT_PASSWORD,
        *,
        reconnect: ReconnectPolicy | bool = True,
        refuse_with: int = REFUSAL,
        **client_options: Any,
    ) -> None:
        policy = DEFAULT_RECONNECT if reconnect is True else reconnect
        self.reconnecting = policy is not False
        self.pool = Pool.from_contacts(list(contacts), password, reconnect=policy, **client_options)
        self.nodes = [ServiceNode(client) for client in self.pool]
        self.apps = ServiceApps(self)
        self.refuse_with = refuse_with
        self.state = "idle"
        self._tasks: set[asyncio.Future[Any]] = set()
        self._conditions = Conditions("service")
        self._stopped: asyncio.Event | None = None
        self._cut_short: asyncio.Event | None = None

    def __repr__(self) -> str:
        nodes = ", ".join(f"{node.address} {node.state}" for node in self.nodes)
        return f"<Service {self.state} [{nodes}] apps={self.apps.app_ids}>"

    @property
    def clients(self) -> list[Client]:
        return self.pool.clients

    def count_calls(self) -> int:
        """Calls up on every node."""
        return self.pool.count_calls()

    # -- serving -----------------------------------------------------------------------
    async def start(self) -> None:
        """Connect to every node and load the apps; return once serving.

        Raises :class:`~switchy.errors.ConnectError` naming each node that could
        not be reached, or what loading an app raised; nothing stays connected then.
        """
        if self.state != "idle":
            raise RuntimeError(f"a service starts once; this one is {self.state}")
        self.state = "starting"
        self._stopped = asyncio.Event()
        self._cut_short = asyncio.Event()
        entries = list(self.apps._entries)
        try:
            await self.pool.connect()
            for entry in entries:
                await self.pool.load_app(
                    entry.app, entry.app_id, header=entry.header, **entry.kwargs
                )
        except BaseException:
            await self.pool.disconnect()
            self._set_stopped()
            raise
        for node in self.nodes:
            node.loaded = list(entries)
            node.state = "up"
            node.client.on_lost(functools.partial(self._lost, node))
            node.client.on_back(functools.partial(self._back, node))
            log.info("%s: connected", node.address)
        self.state = "serving"
        log.info("serving %s on %d node(s)", self.apps.app_ids or "no app", len(self.nodes))
        for entry in self.apps._entries:
            if entry not in entries:  # loaded while connecting
                self._spawn(self._load_everywhere(entry))
        self._changed()

    async def serve(self) -> None:
        """Start (unless started) and serve until :meth:`stop` has finished.

        Cancelling it stops the service (gracefully) first.
        """
        if self.state == "idle":
            await self.start()
        assert self._stopped is not None
        try:
            await self._stopped.wait()
        finally:
            if self.state != "stopped":
                await self.stop()

    def run(self, hangup: bool = False, drain: float = 0.0) -> None:
        """Serve in an event loop of its own, blocking until SIGINT or SIGTERM.

        The signal stops the service with ``hangup`` and ``drain`` (see
        :meth:`stop`); a second signal while draining hangs the calls up at once.
        """
        asyncio.run(self.serve_until_signalled(hangup, drain))

    async def serve_until_signalled(self, hangup: bool = False, drain: float = 0.0) -> None:
        """:meth:`serve` until SIGINT or SIGTERM, which stop the service (see :meth:`run`)."""
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []

        def on_signal(signum: signal.Signals) -> None:
            name = signum.name
            if self.state == "stopping":
                log.warning("%s: hanging up the calls still up", name)
            else:
                log.warning("%s: stopping", name)
            self._spawn(self.stop(hangup=hangup or self.state == "stopping", drain=drain))

        for each in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(each, on_signal, each)
                installed.append(each)
        try:
            await self.serve()
        finally:
            for signum in installed:
                loop.remove_signal_handler(signum)

    async def stop(self, hangup: bool = False, drain: float = 0.0) -> None:
        """Stop serving, gracefully; return once every node is disconnected.

        At once the apps are unloaded (their teardown runs) and every inbound
        call that parks from then on is refused with ``refuse_with`` (503). Then
        the service waits up to ``drain`` seconds for the calls of its apps to
        end; with ``hangup`` those still up are hung up (MANAGER_REQUEST), else
        they are left to FreeSWITCH as they are (bridged calls go on). Calling
        ``stop(hangup=True)`` while a stop drains cuts the drain short.
        """
        if self.state == "starting":
            await self.wait_until(lambda: self.state != "starting")
        if self.state == "idle":
            self._set_stopped()
            return
        assert self._stopped is not None and self._cut_short is not None
        if self.state in ("stopping", "stopped"):
            if hangup:
                self._cut_short.set()
            await self._stopped.wait()
            return
        self.state = "stopping"
        self._changed()
        app_ids = self.apps.app_ids
        log.info("stopping: calls arriving now are refused with %s", self.refuse_with)
        refuser = _Refuser(self.refuse_with)
        for node in self.nodes:
            for app_id in app_ids:
                await node.client.unload_app(app_id)
            node.loaded = []
            if node.client.connected:
                for app_id in app_ids:
                    await node.client.load_app(refuser, app_id)
        try:
            if drain > 0 and self._served_sessions(app_ids):
                log.info("waiting up to %gs for %d call(s) to end", drain, self.count_calls())
                await self._calls_gone(app_ids, drain, self._cut_short)
            if hangup or self._cut_short.is_set():
                await self._hang_up(app_ids)
        finally:
            for task in list(self._tasks):
                if task is not asyncio.current_task():
                    task.cancel()
            await self.pool.disconnect()
            self._set_stopped()
        log.info("stopped")

    def _set_stopped(self) -> None:
        self.state = "stopped"
        for node in self.nodes:
            node.state = "stopped"
        if self._stopped is not None:
            self._stopped.set()
        self._changed()

    def _check_not_stopping(self) -> None:
        if self.state in ("stopping", "stopped"):
            raise RuntimeError(f"the service is {self.state}")

    def _served_sessions(self, app_ids: Sequence[str]) -> list[Session]:
        return [
            session
            for node in self.nodes
            if node.client.connected
            for session in node.client.tracker.sessions.values()
            if session.app_id in app_ids
        ]

    async def _calls_gone(
        self, app_ids: Sequence[str], timeout: float, cut_short: asyncio.Event | None = None
    ) -> None:
        """Wait up to ``timeout`` seconds until the apps' sessions are gone (or cut short)."""
        ids = set(app_ids)
        trackers = [node.client.tracker for node in self.nodes if node.client.connected]

        async def all_gone() -> None:
            for tracker in trackers:
                await tracker.wait_for(functools.partial(_none_left, tracker, ids))

        waiting: set[asyncio.Future[Any]] = {asyncio.ensure_future(all_gone())}
        if cut_short is not None:
            waiting.add(asyncio.ensure_future(cut_short.wait()))
        try:
            await asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for each in waiting:
                each.cancel()
            await asyncio.gather(*waiting, return_exceptions=True)

    async def _hang_up(self, app_ids: Sequence[str]) -> None:
        sessions = [s for s in self._served_sessions(app_ids) if not s.hungup]
        if not sessions:
            return
        log.info("hanging up %d session(s)", len(sessions))
        await asyncio.gather(
            *(_ignore_errors(session.hangup(STOP_CAUSE)) for session in sessions),
            return_exceptions=True,
        )
        await self._calls_gone(app_ids, HANGUP_WAIT)

    # -- nodes coming and going -------------------------------------------------------------
    def _lost(self, node: ServiceNode, error: BaseException) -> None:
        if self.state != "serving":
            return
        node.state = "lost"
        node.losses += 1
        node.last_error = str(error)
        up = sum(1 for each in self.nodes if each.state == "up")
        then = "reconnecting" if self.reconnecting else "not reconnecting"
        log.warning("%s: lost (%s); %s, %d other node(s) serving", node.address, error, then, up)
        self._changed()

    def _back(self, node: ServiceNode) -> None:
        if self.state != "serving":
            return
        node.state = "up"
        log.warning("%s: back (lost %d time(s) so far)", node.address, node.losses)
        missing = [entry for entry in self.apps._entries if entry not in node.loaded]
        if missing:
            self._spawn(self._catch_up(node, missing))
        self._changed()

    async def _catch_up(self, node: ServiceNode, entries: list[_AppEntry]) -> None:
        """Load on a node that is back the apps loaded while it was away."""
        for entry in entries:
            await self._load_on(node, entry)
        self._changed()

    async def _load_everywhere(self, entry: _AppEntry) -> None:
        await asyncio.gather(
            *(self._load_on(node, entry) for node in self.nodes if node.state == "up")
        )
        self._changed()

    async def _unload_on(self, node: ServiceNode, app_id: str) -> None:
        await node.client.unload_app(app_id)
        self._changed()

    async def _load_on(self, node: ServiceNode, entry: _AppEntry) -> None:
        if entry in node.loaded or entry not in self.apps._entries:
            return
        try:
            await entry.load_on(node.client)
        except Exception:
            log.exception("%s: cannot load app %r", node.address, entry.app_id)
            return
        node.loaded.append(entry)

    # -- waiting -----------------------------------------------------------------------------
    async def wait_until(self, predicate: Callable[[], bool], timeout: float | None = None) -> None:
        """Return once ``predicate()`` holds, checked whenever the service or a node
        changes state (or an app finished loading); TimeoutError after ``timeout``."""
        await self._conditions.wait(predicate, timeout)

    def _changed(self) -> None:
        self._conditions.check()

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("service task failed", exc_info=task.exception())


def _none_left(tracker: Tracker, app_ids: set[str]) -> bool:
    return not any(session.app_id in app_ids for session in tracker.sessions.values())


async def _ignore_errors(pending: Any) -> None:
    with contextlib.suppress(SwitchyError):
        await pending


# -- switchy serve ----------------------------------------------------------------------------
class _ServeError(click.ClickException):
    """A one-line error of ``switchy serve`` (exit status 2, like ``switchy run``)."""

    exit_code = 2


def resolve_app(spec: str) -> tuple[object, dict[str, Any]]:
    """``module:Name[,key=value...]`` or ``RegisteredName[,key=value...]`` -> (app, keywords).

    Raises ValueError with a one-line explanation.
    """
    chosen = switchy.apps.from_spec(spec)
    return chosen.app, chosen.kwargs


async def _serve_from_cli(service: Service, hangup: bool, drain: float) -> None:
    await service.start()
    apps = ", ".join(app_name(app) for app in service.apps)
    nodes = ", ".join(node.address for node in service.nodes)
    click.echo(f"switchy: serving {apps} on {nodes} (Ctrl-C to stop)")
    await service.serve_until_signalled(hangup, drain)
    click.echo("switchy: stopped")


@click.command("serve")
@click.argument("contacts", nargs=-1, required=True, metavar="HOST[:PORT]...")
@click.option(
    "--app",
    "app_specs",
    multiple=True,
    required=True,
    metavar="APP[,key=value...]",
    help="The call app to serve: module:Name (a Router, an app class or instance) or a "
    "registered app (see list-apps), with keywords for it. Repeatable.",
)
@click.option(
    "--app-id",
    default="default",
    show_default=True,
    help="The app id the apps are served under ('default' takes every call).",
)
@click.option(
    "--app-header",
    metavar="HEADER",
    help="Hand calls to the apps by this event header, whose value must be the app id "
    "(e.g. --app-header Caller-Context --app-id switchy).",
)
@password_options
@click.option(
    "--drain",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="On Ctrl-C, refuse new calls and wait up to this many seconds for the calls up "
    "to end (a second Ctrl-C hangs them up).",
)
@click.option(
    "--hangup",
    is_flag=True,
    help="Hang up the calls still up when stopping (default: leave them to FreeSWITCH).",
)
def serve_command(
    contacts: Sequence[str],
    app_specs: Sequence[str],
    app_id: str,
    app_header: str | None,
    password: str,
    password_file: TextIO | None,
    drain: float,
    hangup: bool,
) -> None:
    """Serve call apps to FreeSWITCH nodes (HOST[:PORT]...) until Ctrl-C.

    Every node runs the same apps, e.g. a Router dialplan: switchy serve fs1 fs2
    --app mydialplan:router. A lost node is reconnected while the others serve.
    Calls arriving once stopping are refused with 503. Exit status: 0 once
    stopped by Ctrl-C or SIGTERM; 2 on a bad option, an unknown app, an
    unreachable node or a wrong password.
    """
    password = chosen_password(password, password_file)
    try:
        nodes = [parse_contact(contact) for contact in contacts]
    except ValueError as exc:
        raise _ServeError(str(exc)) from None
    service = Service(nodes, password)
    for spec in app_specs:
        try:
            app, kwargs = resolve_app(spec)
        except ValueError as exc:
            raise _ServeError(str(exc)) from None
        service.apps.load_app(app, app_id, header=app_header, **kwargs)
    try:
        asyncio.run(_serve_from_cli(service, hangup, drain))
    except KeyboardInterrupt:  # before the service could take over the signals
        raise SystemExit(130) from None
    except ConnectError as exc:
        raise _ServeError(str(exc)) from None
    except (SwitchyError, TypeError, ValueError) as exc:
        raise _ServeError(f"cannot serve: {exc}") from None
