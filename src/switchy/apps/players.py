"""Apps that play media."""

from __future__ import annotations

from switchy.apps import app
from switchy.marks import event_callback
from switchy.models import Session

#: An endless 1004 Hz "milliwatt" tone.
ENDLESS_TONE = "{loops=-1}tone_stream://%(251,0,1004)"


@app
class TonePlay:
    """Play an endless tone on the calling leg; the called leg answers and echoes it back.

    The caller hears its own tone through the far end until someone hangs up.
    """

    @event_callback("CHANNEL_PARK")
    def on_park(self, session: Session) -> None:
        if session.is_inbound():
            session.answer()

    @event_callback("CHANNEL_ANSWER")
    def on_answer(self, session: Session) -> None:
        if session.is_inbound():
            session.echo()
        elif session.is_outbound():
            session.broadcast(ENDLESS_TONE, app="playback")
