"""DTMF tools: check that digits sent on one leg arrive, exactly, on the other."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from switchy.apps import app
from switchy.marks import event_callback
from switchy.models import Session

__all__ = ["DtmfChecker", "DtmfFailure"]

log = logging.getLogger("switchy.apps.dtmf")

_DIGITS = frozenset("0123456789*#ABCD")


@dataclass(frozen=True)
class DtmfFailure:
    """A receiving leg that did not get exactly the digits sent."""

    uuid: str
    expected: str
    received: str
    reason: str  # "mismatch", "extra" (more digits came) or "incomplete" (hung up first)


@app
class DtmfChecker:
    """Send a DTMF sequence from the caller and check the callee receives exactly it.

    The callee answers; once the call is up the caller sends ``sequence`` with
    ``duration`` ms per digit. The callee leg collects its DTMF events: a wrong
    digit, a digit after the whole sequence, or a hangup before it, is a failure,
    kept by session uuid in ``failed``. The callee's ``sess.vars["dtmf_checked"]``
    is set once the sequence is complete or failed, ``sess.vars["dtmf_received"]``
    holds the digits so far and ``sess.vars["dtmf_ok"]`` whether they match.
    ``passed`` counts the legs whose sequence matched.
    """

    def __init__(self, sequence: str = "0123456789*#", duration: int = 200) -> None:
        sequence = str(sequence).upper()
        if not sequence or not set(sequence) <= _DIGITS:
            raise ValueError(f"DtmfChecker: {sequence!r} is not a DTMF sequence (0-9*#A-D)")
        if duration <= 0:
            raise ValueError(f"DtmfChecker: duration must be > 0 ms, got {duration}")
        self.sequence = sequence
        self.duration = int(duration)
        self.failed: dict[str, DtmfFailure] = {}
        self.passed = 0

    @event_callback("CHANNEL_PARK")
    def on_park(self, session: Session) -> None:
        if session.is_inbound() and not session.answered:
            session.answer()

    @event_callback("CHANNEL_ANSWER")
    def on_answer(self, session: Session) -> None:
        if session.is_inbound():
            session.vars["dtmf_received"] = ""
        elif session.is_outbound():
            session.send_dtmf(self.sequence, self.duration)

    @event_callback("DTMF")
    def on_digit(self, session: Session) -> None:
        if not session.is_inbound() or session.uuid in self.failed:
            return
        received = session.vars.get("dtmf_received", "") + (
            session.last_event.get("DTMF-Digit") or "?"
        )
        session.vars["dtmf_received"] = received
        if session.vars.get("dtmf_ok"):
            self.passed -= 1
            self._fail(session, "extra")
        elif not self.sequence.startswith(received):
            self._fail(session, "mismatch")
        elif received == self.sequence:
            self.passed += 1
            session.vars["dtmf_ok"] = True
            session.vars["dtmf_checked"] = True

    @event_callback("CHANNEL_HANGUP")
    def on_hangup(self, session: Session) -> None:
        if (
            session.is_inbound()
            and "dtmf_received" in session.vars
            and not session.vars.get("dtmf_checked")
        ):
            self._fail(session, "incomplete")

    def _fail(self, session: Session, reason: str) -> None:
        received = session.vars.get("dtmf_received", "")
        log.warning(
            "session %s: DTMF %s: expected %r, received %r",
            session.uuid,
            reason,
            self.sequence,
            received,
        )
        self.failed[session.uuid] = DtmfFailure(session.uuid, self.sequence, received, reason)
        session.vars["dtmf_ok"] = False
        session.vars["dtmf_checked"] = True
