"""Routing apps: a Flask-like dialplan in Python, and apps that bridge calls onward.

A :class:`Router` is a dialplan for a whole FreeSWITCH cluster::

    router = Router(guards={"variable_sofia_profile_name": "external"})

    @router.route(r"00(.*)|011(.*)", response=407)
    def reject_international(session, match, router, response):
        session.respond(response)

    service = Service(["fs1", "fs2"])
    service.apps.load_app(router, app_id="default")
    service.run()

:class:`Proxier` bridges every inbound call to its own SIP Request-URI (a
FreeSWITCH used as a proxy); :class:`Bridger` bridges the legs of one call
onward a chosen number of times.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from switchy.apps import app
from switchy.marks import event_callback
from switchy.models import Pending, Session

__all__ = [
    "Bridger",
    "Proxier",
    "Route",
    "Router",
    "StopRouting",
    "bridge_onward",
    "forwarded_headers",
    "request_uri",
]

log = logging.getLogger("switchy.apps.routers")

F = TypeVar("F", bound=Callable[..., Any])

#: The header routes match by default: the number dialled.
DEFAULT_FIELD = "Caller-Destination-Number"
#: What a :class:`Router` does with a call no route handled: what FreeSWITCH's own
#: dialplan does when no extension matches.
NO_ROUTE = "NO_ROUTE_DESTINATION"
#: A refusal: a SIP status (an int, or digits) answers the INVITE; other text is a
#: hangup cause.
Refusal = int | str

_X_HEADER_VARIABLE = "variable_sip_h_X-"


class StopRouting(Exception):
    """Raised by a route function: run no further route for this call ("break on true")."""


@dataclass(frozen=True)
class Route:
    """A route: ``function(session, match, router, **kwargs)`` runs when ``pattern``
    matches the start of header ``field``."""

    pattern: re.Pattern[str]
    field: str
    function: Callable[..., Any]
    kwargs: Mapping[str, Any]


class Router:
    """A dialplan in Python: regex routes over event headers, Flask style.

    Every inbound session is routed when it parks (``CHANNEL_PARK``, which a
    park-only dialplan gives every call), once per caller profile: a call
    transferred back into the parking context is routed again with its new
    destination. Routing happens only if every header of ``guards`` has exactly
    the value given; a session failing them is left alone, or refused with
    ``reject_on_guard`` (a SIP status such as 403, or a hangup cause).

    Then every route whose pattern matches (``re.match``: from the start of the
    header) runs, in registration order, as ``function(session, match, router,
    **kwargs)``; plain functions and coroutines both work. A route raising
    :attr:`StopRouting` ends the routing. A route raising anything else is logged
    and routing goes on with the next route. When no route ran to completion the
    call gets ``default``: a hangup cause (``NO_ROUTE_DESTINATION`` by default, as
    FreeSWITCH's XML dialplan), a SIP status, or None to leave it parked.
    """

    #: ``raise router.StopRouting`` stops further routes ("break on true").
    StopRouting = StopRouting

    def __init__(
        self,
        guards: Mapping[str, str] | None = None,
        reject_on_guard: Refusal | None = None,
        default: Refusal | None = NO_ROUTE,
    ) -> None:
        self.guards = dict(guards or {})
        self.reject_on_guard = reject_on_guard
        self.default = default
        self.routes: list[Route] = []
        # The key of the per-session note of the caller profile already routed:
        # one per router, as several routers may share an app id.
        self._routed_key = f"switchy.router.{id(self)}"

    def __repr__(self) -> str:
        return f"<Router {len(self.routes)} route(s) guards={self.guards}>"

    def route(
        self, pattern: str | re.Pattern[str], field: str = DEFAULT_FIELD, **kwargs: Any
    ) -> Callable[[F], F]:
        """Register the decorated function for calls whose ``field`` matches ``pattern``.

        ``kwargs`` are passed to the function when this route calls it. Decorators
        stacked on one function take effect in reading order (top first). The
        function is returned as it is, so routes can call each other.
        """
        compiled = re.compile(pattern) if isinstance(pattern, str) else pattern

        def register(function: F) -> F:
            entry = Route(compiled, field, function, dict(kwargs))
            # Stacked decorators run bottom-up: insert before the routes the
            # decorators below this one just added, so the top one comes first.
            index = len(self.routes)
            while index and self.routes[index - 1].function is function:
                index -= 1
            self.routes.insert(index, entry)
            return function

        return register

    def guards_pass(self, session: Session) -> bool:
        """True if every guard header of ``session`` has exactly its value."""
        return all(session.get(header) == value for header, value in self.guards.items())

    async def dispatch(self, session: Session) -> bool:
        """Route ``session`` now, ignoring guards; True if some route handled it.

        Useful to hand a call over to another router ("transfer to a context").
        """
        handled = False
        for route in list(self.routes):
            value = session.get(route.field)
            match = route.pattern.match(value) if value is not None else None
            if match is None:
                continue
            name = getattr(route.function, "__qualname__", repr(route.function))
            log.debug("session %s: route %s matched %r", session.uuid, name, value)
            try:
                result = route.function(session, match, self, **route.kwargs)
                if inspect.isawaitable(result):
                    await result
            except StopRouting:
                return True
            except Exception:
                log.exception(
                    "session %s: route %s failed; trying the next route", session.uuid, name
                )
                continue
            handled = True
        return handled

    @event_callback("CHANNEL_PARK")
    async def on_park(self, session: Session) -> None:
        """Route inbound sessions as they park."""
        if not session.is_inbound():
            return
        profile = session.get("Caller-Profile-Index", "1")
        if session.vars.get(self._routed_key) == profile:
            return  # parked again (after a media application, say): already routed
        session.vars[self._routed_key] = profile
        if not self.guards_pass(session):
            if self.reject_on_guard is not None:
                log.info("session %s: refused by the router's guards", session.uuid)
                await _refuse(session, self.reject_on_guard)
            return
        if not await self.dispatch(session) and self.default is not None:
            log.info(
                "session %s: no route for %r: %s",
                session.uuid,
                session.get(DEFAULT_FIELD),
                self.default,
            )
            await _refuse(session, self.default)


async def _refuse(session: Session, how: Refusal) -> None:
    """Refuse a call: answer its INVITE with a SIP status, or hang it up with a cause."""
    if isinstance(how, int) or how.isdigit():
        pending = session.respond(how) if not session.answered else session.hangup()
    else:
        pending = session.hangup(how)
    try:
        await pending
    except Exception as exc:  # the caller may have hung up meanwhile
        log.info("session %s: could not refuse the call: %s", session.uuid, exc)


def forwarded_headers(session: Session) -> dict[str, str]:
    """The session's SIP X-headers, as dial-string variables that send them onward.

    They carry switchy's app id and call-tracking headers: the next leg of the
    call then belongs to the same app and :class:`~switchy.models.Call`.
    """
    headers = session.create_event.items()
    prefix = len("variable_")
    return {name[prefix:]: value for name, value in headers if name.startswith(_X_HEADER_VARIABLE)}


def bridge_onward(
    session: Session,
    dest_url: str | None = None,
    *,
    profile: str | None = None,
    gateway: str | None = None,
    proxy: str | None = None,
    params: Mapping[str, str] | None = None,
) -> Pending:
    """Bridge an inbound session onward, like a proxy would.

    ``dest_url`` defaults to the call's own Request-URI, built from its
    ``sip_req_user``, ``sip_req_host`` and ``sip_req_port``. The call's SIP
    X-headers go along (see :func:`forwarded_headers`) and the session hangs up
    when the far leg does (``hangup_after_bridge``): the caller sees what the
    far end does.
    """
    if dest_url is None:
        dest_url = request_uri(session)
    session.setvar("hangup_after_bridge", "true")
    variables: dict[str, str] = {**forwarded_headers(session), **(params or {})}
    return session.bridge(
        dest_url, profile=profile, gateway=gateway, proxy=proxy, params=dict(variables)
    )


def request_uri(session: Session) -> str:
    """``user@host[:port]`` of the session's SIP Request-URI."""
    user = session.get("variable_sip_req_user", "") or ""
    host = session.get("variable_sip_req_host")
    if not host:
        raise ValueError(f"session {session.uuid} has no SIP Request-URI (not a SIP call?)")
    port = session.get("variable_sip_req_port")
    return f"{user}@{host}:{port}" if port else f"{user}@{host}"


@app
class Proxier:
    """Bridge every inbound call to its own SIP Request-URI: FreeSWITCH as a SIP proxy.

    Load it on the FreeSWITCH that calls pass through: each inbound call is
    bridged, on the profile it arrived on, to ``sip_req_user@sip_req_host:sip_req_port``
    and hangs up when the far end does. The call's X-headers go along, so switchy
    tracks both legs as one call.
    """

    @event_callback("CHANNEL_PARK")
    def on_park(self, session: Session) -> None:
        if session.is_inbound() and not session.vars.get("proxied"):
            session.vars["proxied"] = True
            bridge_onward(session)


#: A hop of :class:`Bridger`: "proxy" (to the leg's Request-URI), a destination
#: ``user@host[:port]``, or keywords of :meth:`Session.bridge`.
Hop = str | Mapping[str, Any]


@app
class Bridger:
    """Bridge the legs of a call onward an arbitrary number of times, then answer.

    The n-th inbound leg of one call to reach this node is bridged as ``hops[n-1]``
    says: ``"proxy"`` (to its own Request-URI), a destination ``user@host[:port]``,
    or a dict of bridge keywords (dest_url, profile, gateway, proxy, params). The
    first leg beyond the list answers: the call ends there. ``hops=N`` means N hops
    to the Request-URI. X-headers go along each hop, so every leg belongs to the
    same call (and app). The count of legs per call is in ``call.vars["hops"]``.
    """

    def __init__(self, hops: int | Sequence[Hop] = 1) -> None:
        if isinstance(hops, int):
            if hops < 0:
                raise ValueError(f"Bridger: hops must be >= 0, got {hops}")
            hops = ["proxy"] * hops
        elif isinstance(hops, str):
            hops = [hops]
        self.hops: list[Hop] = list(hops)
        for hop in self.hops:
            if not isinstance(hop, str | Mapping):
                raise TypeError(f"Bridger: a hop is a str or a mapping, got {hop!r}")

    @event_callback("CHANNEL_PARK")
    def on_park(self, session: Session) -> None:
        if not session.is_inbound() or session.vars.get("hop"):
            return
        call = session.call
        entry = 1 if call is None else call.vars.get("hops", 0) + 1
        if call is not None:
            call.vars["hops"] = entry
        session.vars["hop"] = entry
        if entry > len(self.hops):
            session.answer()
            return
        hop = self.hops[entry - 1]
        if hop == "proxy":
            bridge_onward(session)
        elif isinstance(hop, str):
            bridge_onward(session, hop)
        else:
            bridge_onward(session, **hop)
