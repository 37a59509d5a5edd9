"""Apps whose callee does not simply answer: the call rings, or is refused.

Mixed with answering apps in a load test (``switchy run --app
CalleeBlockOnInvite:1,response=404 --app TonePlay:3``) they make the traffic of
an auto-dialer, where many calls are never answered.
"""

from __future__ import annotations

import asyncio
import logging

from switchy.apps import app
from switchy.marks import event_callback
from switchy.models import Session

__all__ = ["CalleeBlockOnInvite", "CalleeRingback"]

log = logging.getLogger("switchy.apps.blockers")


@app
class CalleeRingback:
    """The callee rings (180) instead of answering; it answers after a while, if ever.

    The called leg runs ``ring_response`` (``ring_ready`` sends 180 Ringing,
    ``pre_answer`` 183 with early media) and answers ``answer_after`` seconds
    later (None: never). The calling leg hangs up ``caller_hangup_after`` seconds
    after the ringing started if nobody answered by then (None: it waits, up to
    its originate timeout), with cause ORIGINATOR_CANCEL.
    """

    def __init__(
        self,
        ring_response: str = "ring_ready",
        answer_after: float | None = None,
        caller_hangup_after: float | None = None,
    ) -> None:
        for name, value in (
            ("answer_after", answer_after),
            ("caller_hangup_after", caller_hangup_after),
        ):
            if value is not None and value < 0:
                raise ValueError(f"CalleeRingback: {name} must be >= 0, got {value}")
        self.ring_response = ring_response
        self.answer_after = answer_after
        self.caller_hangup_after = caller_hangup_after

    @event_callback("CHANNEL_PARK")
    def on_park(self, session: Session) -> None:
        if not session.is_inbound() or session.vars.get("ringing"):
            return
        session.vars["ringing"] = True
        session.execute(self.ring_response)
        if self.answer_after is not None:
            asyncio.get_running_loop().call_later(self.answer_after, _answer, session)

    @event_callback("CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA")
    def on_ringing(self, session: Session) -> None:
        if not session.is_outbound() or session.vars.get("ringing"):
            return
        session.vars["ringing"] = True
        if self.caller_hangup_after is not None:
            asyncio.get_running_loop().call_later(self.caller_hangup_after, _give_up, session)


def _answer(session: Session) -> None:
    if not (session.answered or session.hungup):
        session.answer()


def _give_up(session: Session) -> None:
    if not (session.answered or session.hungup):
        log.debug("session %s: nobody answered; the caller hangs up", session.uuid)
        session.hangup("ORIGINATOR_CANCEL")


@app
class CalleeBlockOnInvite:
    """The callee refuses every call with a SIP response (486 Busy Here by default).

    Any final status works: 404 (the caller gets UNALLOCATED_NUMBER), 486
    (USER_BUSY), 503 (NORMAL_TEMPORARY_FAILURE)...
    """

    def __init__(self, response: int = 486) -> None:
        if not 300 <= int(response) <= 699:
            raise ValueError(f"CalleeBlockOnInvite: {response} is not a SIP refusal (300-699)")
        self.response = int(response)

    @event_callback("CHANNEL_PARK")
    def on_park(self, session: Session) -> None:
        if session.is_inbound() and not session.answered:
            session.respond(self.response)
