"""A client for one FreeSWITCH: commands, call origination, and call apps.

::

    async with Client("127.0.0.1", password="ClueCon") as client:
        await client.load_app(TonePlay)
        job = await client.originate("doggy@127.0.0.1:5080", app_id="TonePlay")
        uuid = await job                      # the call is up
        await client.tracker.sessions[uuid].hangup()

A client holds two event-socket connections: one for commands, one whose
events feed its :class:`~switchy.tracking.Tracker`. FreeSWITCH runs each
connection's ``api`` commands one at a time, so keeping events apart means a
slow command never holds them back.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import time
import types
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from switchy import ids
from switchy.apps import app_name
from switchy.errors import APIError, ConfigurationError, SwitchyError
from switchy.esl import commands
from switchy.esl.connection import (
    DEFAULT_COMMAND_TIMEOUT,
    DEFAULT_PASSWORD,
    DEFAULT_PORT,
    Connection,
    ReconnectPolicy,
)
from switchy.esl.protocol import Frame
from switchy.marks import CALLBACK, collect
from switchy.models import DEFAULT_HISTORY, Job, Session
from switchy.tracking import APP_X_HEADER, CALL_HEADER, CALL_X_HEADER, AppRecord, Tracker

__all__ = ["AppNamespace", "Client"]

# Stands for the uuid in cached originate commands: a valid uuid argument that no
# escaping changes, and that nothing else in a command can contain.
_UUID_PLACEHOLDER = "switchy-uuid-placeholder-7d1c0e"

log = logging.getLogger("switchy.client")


class AppNamespace(Mapping[str, object]):
    """The apps loaded on a client, by name: ``client.apps.TonePlay`` or ``apps["TonePlay"]``."""

    def __init__(self) -> None:
        self._apps: dict[str, object] = {}

    def __getattr__(self, name: str) -> object:
        try:
            return self.__dict__["_apps"][name]
        except KeyError:
            raise AttributeError(f"no app {name!r} is loaded") from None

    def __getitem__(self, name: str) -> object:
        return self._apps[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._apps)

    def __len__(self) -> int:
        return len(self._apps)

    def __repr__(self) -> str:
        return f"<apps {', '.join(self._apps) or '(none)'}>"


class Client:
    """Controls one FreeSWITCH over its event socket (inbound method).

    It opens two connections: one for commands, one for events. A
    ``read_interval`` (seconds) batches the reads of both on the ticks of that
    period (see :func:`~switchy.esl.connection.connect`): less CPU per call on
    a busy node, each event and each command reply handled up to that much
    later.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        password: str = DEFAULT_PASSWORD,
        *,
        call_tracking_header: str = CALL_HEADER,
        subscribe_all: bool = False,
        history: int = DEFAULT_HISTORY,
        command_timeout: float | None = DEFAULT_COMMAND_TIMEOUT,
        reconnect: ReconnectPolicy | bool = False,
        read_interval: float = 0.0,
    ) -> None:
        self.host = host
        self.port = port
        self.address = f"{host}:{port}"
        self.connection = Connection(
            host,
            port,
            password,
            command_timeout=command_timeout,
            reconnect=reconnect,
            read_interval=read_interval,
        )
        self.events = Connection(
            host, port, password, reconnect=reconnect, read_interval=read_interval
        )
        self.tracker = Tracker(
            self.events,
            self.connection.api_nowait,
            call_tracking_header=call_tracking_header,
            history=history,
            subscribe_all=subscribe_all,
        )
        self.apps = AppNamespace()
        self._records: dict[str, list[AppRecord]] = {}
        self._lost_callbacks: list[Callable[[BaseException], Any]] = []
        self._back_callbacks: list[Callable[[], Any]] = []
        self._down = False
        self._coming_back: asyncio.Future[None] | None = None
        for connection in (self.connection, self.events):
            connection.on_disconnect(self._connection_lost)
            connection.on_reconnect(self._connection_back)
        self._originate_defaults: dict[str, Any] = {}
        self._originate_templates: dict[str | None, str] = {}

    # -- connecting ----------------------------------------------------------------------
    async def connect(self) -> None:
        """Open both connections and start tracking."""
        await self.connection.open()
        try:
            await self.events.open()
            await self.tracker.start()
        except BaseException:
            await self.disconnect()
            raise

    async def disconnect(self) -> None:
        """Unload every app and close the connections."""
        for app_id in list(self._records):
            await self.unload_app(app_id)
        self.tracker.stop()
        await self.events.close()
        await self.connection.close()

    @property
    def connected(self) -> bool:
        return self.connection.connected and self.events.connected

    def on_lost(self, callback: Callable[[BaseException], Any]) -> None:
        """Call ``callback(error)`` when the node is lost (either connection drops)."""
        self._lost_callbacks.append(callback)

    def on_back(self, callback: Callable[[], Any]) -> None:
        """Call ``callback()`` when a lost node is back (both connections restored and
        the tracker reconciled with what the node has)."""
        self._back_callbacks.append(callback)

    def _connection_lost(self, error: BaseException) -> None:
        if self._down:
            return
        self._down = True
        log.warning("%s: node lost: %s", self.address, error)
        for callback in list(self._lost_callbacks):
            try:
                callback(error)
            except Exception:
                log.exception("%s: node-lost callback %r failed", self.address, callback)

    def _connection_back(self) -> None:
        if self._down and self.connected and self._coming_back is None:
            self._coming_back = asyncio.ensure_future(self._back())

    async def _back(self) -> None:
        try:
            await self.tracker.reconcile()
        except (SwitchyError, ValueError) as exc:
            log.warning("%s: could not reconcile after reconnecting: %s", self.address, exc)
        finally:
            self._coming_back = None
        if not self.connected:
            return  # lost again meanwhile
        self._down = False
        log.warning("%s: node back", self.address)
        for callback in list(self._back_callbacks):
            try:
                callback()
            except Exception:
                log.exception("%s: node-back callback %r failed", self.address, callback)

    async def __aenter__(self) -> Client:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.disconnect()

    def __repr__(self) -> str:
        state = "connected" if self.connected else "disconnected"
        return f"<Client {self.address} {state} apps={list(self._records)}>"

    # -- commands ------------------------------------------------------------------------
    async def api(self, command: str, *, timeout: float | None = None) -> str:
        """Run an API command; its output (APIError on ``-ERR``)."""
        if timeout is None:
            return await self.connection.api(command)
        return await self.connection.api(command, timeout=timeout)

    async def cmd(self, command: str) -> str:
        """Run an API command; its output without surrounding white space."""
        return (await self.api(command)).strip()

    async def bgapi(
        self,
        command: str,
        *,
        callback: Callable[[Job], Any] | None = None,
        sess_uuid: str | None = None,
    ) -> Job:
        """Start an API command in the background; the :class:`Job` completes with its
        result. ``callback(job)`` runs when it does. Raises :class:`APIError` if
        FreeSWITCH refuses the command."""
        job, reply = self._send_bgapi(command, callback, sess_uuid)
        try:
            frame = await reply
        except BaseException:
            self.tracker.discard_job(job)
            raise
        if (refusal := self._accepted(job, frame)) is not None:
            raise refusal
        return job

    def bgapi_nowait(
        self,
        command: str,
        *,
        callback: Callable[[Job], Any] | None = None,
        sess_uuid: str | None = None,
    ) -> Job:
        """:meth:`bgapi` without waiting for FreeSWITCH to take the command (call it
        in the event loop): a refusal, or losing the connection first, fails the
        :class:`Job` instead of raising."""
        job, _ = self._send_bgapi(command, callback, sess_uuid, settle_on_reply=True)
        return job

    def _send_bgapi(
        self,
        command: str,
        callback: Callable[[Job], Any] | None,
        sess_uuid: str | None,
        settle_on_reply: bool = False,
    ) -> tuple[Job, asyncio.Future[Frame]]:
        job_uuid = ids.new_uuid()
        job = Job(
            job_uuid,
            command.split(" ", 1)[0],
            sess_uuid=sess_uuid,
            callback=callback,
            launch_time=time.time(),
        )
        # Tracked before sending: the result may arrive before the reply.
        self.tracker.add_job(job)
        try:
            reply = self.connection.send_nowait(
                f"bgapi {command}",
                [("Job-UUID", job_uuid)],
                on_done=functools.partial(self._bgapi_replied, job) if settle_on_reply else None,
            )
        except BaseException:
            self.tracker.discard_job(job)
            raise
        return job, reply

    def _accepted(self, job: Job, frame: Frame) -> APIError | None:
        """None if FreeSWITCH took the job (noting when), else why not."""
        text = frame.reply_text
        if text.startswith("+OK"):
            job.accept_time = self.tracker.clock()
            return None
        self.tracker.discard_job(job)
        return APIError(f"{self.address}: bgapi {job.command}: {text}", text)

    def _bgapi_replied(self, job: Job, reply: asyncio.Future[Frame]) -> None:
        error = asyncio.CancelledError() if reply.cancelled() else reply.exception()
        if error is not None:
            self.tracker.discard_job(job)
        else:
            error = self._accepted(job, reply.result())
        if error is not None:
            job.fail(error, self.tracker.clock())

    # -- originating calls ---------------------------------------------------------------
    def set_orig_cmd(self, dest_url: str | None = None, **options: Any) -> None:
        """Set the defaults of :meth:`originate` (any :func:`switchy.esl.commands.originate`
        option: ``profile``, ``proxy``, ``gateway``, ``timeout``, ``caller_id_name``...)."""
        if dest_url is not None:
            options["dest_url"] = dest_url
        # Fail now, not at the first call, on an option originate() does not know.
        self.originate_cmd(uuid=ids.new_uuid(), **{"dest_url": "check", **options})
        self._originate_defaults.update(options)
        self._originate_templates.clear()

    def originate_cmd(self, uuid: str, app_id: str | None = None, **options: Any) -> str:
        """The originate command :meth:`originate` would send for ``uuid``."""
        if options:
            return self._build_originate(uuid, app_id, options)
        # Only the uuid changes from call to call: build once per app, then substitute.
        template = self._originate_templates.get(app_id)
        if template is None:
            template = self._build_originate(_UUID_PLACEHOLDER, app_id, {})
            self._originate_templates[app_id] = template
        return template.replace(_UUID_PLACEHOLDER, commands.check_uuid(uuid, "originate(uuid=...)"))

    def _build_originate(self, uuid: str, app_id: str | None, options: dict[str, Any]) -> str:
        settings = {**self._originate_defaults, **options}
        dest_url = settings.pop("dest_url", None)
        if not dest_url:
            raise ConfigurationError(
                f"{self.address}: no originate destination: give dest_url or set_orig_cmd()"
            )
        x_headers = dict(settings.pop("x_headers", None) or {})
        x_headers[CALL_X_HEADER] = uuid
        if app_id is not None:
            x_headers[APP_X_HEADER] = app_id
        return commands.originate(dest_url, uuid=uuid, x_headers=x_headers, **settings)

    async def originate(
        self,
        dest_url: str | None = None,
        *,
        app_id: str | None = None,
        uuid: str | None = None,
        callback: Callable[[Job], Any] | None = None,
        **options: Any,
    ) -> Job:
        """Originate a call (``bgapi originate``); returns once FreeSWITCH took it.

        The :class:`Job` completes with the new session's uuid when the call is
        answered (or gets early media), or fails with the hangup cause. Both legs
        carry ``app_id`` in a SIP X-header, so the app loaded under that id
        handles them.
        """
        command, uuid = self._originate_command(dest_url, app_id, uuid, options)
        return await self.bgapi(command, callback=callback, sess_uuid=uuid)

    def originate_nowait(
        self,
        dest_url: str | None = None,
        *,
        app_id: str | None = None,
        uuid: str | None = None,
        callback: Callable[[Job], Any] | None = None,
        **options: Any,
    ) -> Job:
        """:meth:`originate` without waiting for FreeSWITCH to take the command (see
        :meth:`bgapi_nowait`): what a load generator sends hundreds of per second."""
        command, uuid = self._originate_command(dest_url, app_id, uuid, options)
        return self.bgapi_nowait(command, callback=callback, sess_uuid=uuid)

    def _originate_command(
        self, dest_url: str | None, app_id: str | None, uuid: str | None, options: dict[str, Any]
    ) -> tuple[str, str]:
        uuid = uuid or ids.new_uuid()
        if dest_url is not None:
            options["dest_url"] = dest_url
        return self.originate_cmd(uuid, app_id, **options), uuid

    async def hupall(self, app_id: str | None = None, cause: str = "NORMAL_CLEARING") -> None:
        """Hang up the calls of ``app_id``, or of every app loaded on this client."""
        app_ids = [app_id] if app_id is not None else list(self._records)
        for each in app_ids:
            await self.api(commands.hupall(cause, **{f"sip_h_X-{APP_X_HEADER}": each}))

    # -- apps ------------------------------------------------------------------------------
    async def load_app(
        self,
        app: object,
        app_id: str | None = None,
        header: str | None = None,
        prepend: bool = False,
        **kwargs: Any,
    ) -> str:
        """Load a call app; return its app id.

        ``app`` is a class (instantiated here, with the ``kwargs`` its constructor
        takes), an instance or a module. Its ``prepost()``, if any, runs now: a
        function, or a generator whose code after ``yield`` runs at unload; its
        parameters are filled by name from ``client``, ``tracker`` and the
        remaining ``kwargs``. ``app_id`` defaults to the app's name; sessions are
        dispatched to it by the X-header :meth:`originate` stamps, or by
        ``header`` when given. Loading is atomic: on any failure nothing stays
        loaded.
        """
        name = app_name(app)
        app_id = app_id or name
        instance, remaining = _instantiate(app, kwargs)
        record = AppRecord(app_id, name, instance)
        for kind, event_name, function in collect(instance):
            if kind == CALLBACK:
                record.callbacks.setdefault(event_name, []).append(function)
            else:
                record.handlers.setdefault(event_name, []).append(function)
        if not record.event_names:
            raise ConfigurationError(f"app {name!r} has no @event_callback or @handler")
        injectables = {"client": self, "tracker": self.tracker, **remaining}
        record.teardown = _run_prepost(instance, injectables, remaining)
        try:
            self.tracker.add_app(record, header, prepend)
            await self.tracker.update_subscriptions()
        except BaseException:
            self.tracker.remove_app(record)
            if record.teardown is not None:
                record.teardown()
            raise
        self._records.setdefault(app_id, []).append(record)
        self.apps._apps[name] = instance
        log.info("%s: loaded app %r as %r", self.address, name, app_id)
        return app_id

    async def unload_app(self, app_id: str) -> None:
        """Unload every app loaded under ``app_id`` (their prepost teardown runs)."""
        for record in self._records.pop(app_id, []):
            self.tracker.remove_app(record)
            if self.apps._apps.get(record.name) is record.instance:
                del self.apps._apps[record.name]
            if record.teardown is not None:
                try:
                    record.teardown()
                except Exception:
                    log.exception("%s: teardown of app %r failed", self.address, record.name)

    @property
    def app_ids(self) -> list[str]:
        return list(self._records)

    def sessions_of(self, app_id: str) -> list[Session]:
        return list(self.tracker.iter_sessions(app_id))


def _instantiate(app: object, kwargs: dict[str, Any]) -> tuple[object, dict[str, Any]]:
    """An app instance, and the kwargs its constructor did not take."""
    if not inspect.isclass(app):
        return app, dict(kwargs)
    accepted = _accepted(app, kwargs)
    return app(**accepted), {k: v for k, v in kwargs.items() if k not in accepted}


def _accepted(function: Callable[..., Any], available: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``available`` that ``function`` has parameters for."""
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return {}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return dict(available)
    return {name: value for name, value in available.items() if name in parameters}


def _run_prepost(
    instance: object, injectables: dict[str, Any], remaining: dict[str, Any]
) -> Callable[[], None] | None:
    """Run the app's ``prepost``; return its teardown (the rest of a generator)."""
    prepost = getattr(instance, "prepost", None)
    unused = set(remaining)
    if prepost is None:
        if unused:
            raise TypeError(f"app got unexpected keyword arguments: {', '.join(sorted(unused))}")
        return None
    arguments = _accepted(prepost, injectables)
    missing = [
        name
        for name, parameter in inspect.signature(prepost).parameters.items()
        if parameter.default is inspect.Parameter.empty
        and parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
        and name not in arguments
    ]
    if missing:
        raise TypeError(f"prepost() needs {', '.join(missing)}, which nobody provides")
    unused -= set(arguments)
    if unused:
        raise TypeError(f"app got unexpected keyword arguments: {', '.join(sorted(unused))}")
    result = prepost(**arguments)
    if not isinstance(result, types.GeneratorType):
        return None
    generator = result
    next(generator)  # setup runs up to the yield

    def teardown() -> None:
        try:
            next(generator)
        except StopIteration:
            return
        raise RuntimeError("an app's prepost() generator must yield once")

    return teardown
