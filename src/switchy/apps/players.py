"""Apps that play media: a test tone, or a clip recorded at both ends."""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable
from typing import Any, NamedTuple

from switchy.apps import app
from switchy.errors import APIError
from switchy.marks import event_callback
from switchy.models import Session

__all__ = ["PlayRec", "Recording", "TonePlay"]

log = logging.getLogger("switchy.apps.players")

#: An endless 1004 Hz "milliwatt" tone.
ENDLESS_TONE = "{loops=-1}tone_stream://%(251,0,1004)"
#: PlayRec's default clip: three seconds of two tone pairs, playable on any FreeSWITCH.
DEFAULT_CLIP = "tone_stream://%(1000,500,350,440);%(1000,500,480,620)"
#: Where recordings go when FreeSWITCH has no ``recordings_dir``.
FALLBACK_RECORDINGS_DIR = "/tmp"


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


class Recording(NamedTuple):
    """A finished recording of one leg of a call, on the FreeSWITCH host ``host``."""

    host: str
    call: str  # the call's id (its call-tracking header)
    leg: str  # "caller" or "callee"
    path: str


@app
class PlayRec:
    """Play a clip from the caller to the callee and record both ends, for audio checks.

    The callee answers; the caller plays ``clip`` (a file on the FreeSWITCH
    host, or a ``tone_stream://``) ``iterations`` times, then hangs up. A share
    ``rec_rate`` (0 to 1) of calls is recorded, chosen from the call's id so both
    legs agree on any node: each leg records itself to ``<recordings_dir>/
    <caller|callee>_<uuid>.wav`` (FreeSWITCH's ``recordings_dir`` by default) at
    ``sample_rate`` Hz, the caller for ``tail`` more seconds after the clip.
    ``callback(Recording)`` gets each finished recording. ``sess.vars["recorded"]``
    is False while a leg records and True once its file is complete;
    ``call.vars["record"]`` marks a recorded call.
    """

    def __init__(
        self,
        clip: str = DEFAULT_CLIP,
        iterations: int = 1,
        rec_rate: float = 1.0,
        sample_rate: int = 8000,
        stereo: bool = False,
        tail: float = 1.0,
        recordings_dir: str | None = None,
        callback: Callable[[Recording], Any] | None = None,
    ) -> None:
        if iterations < 1:
            raise ValueError(f"PlayRec: iterations must be >= 1, got {iterations}")
        if not 0 <= rec_rate <= 1:
            raise ValueError(f"PlayRec: rec_rate is a share of calls, 0 to 1, got {rec_rate}")
        if tail < 0:
            raise ValueError(f"PlayRec: tail must be >= 0, got {tail}")
        self.clip = clip
        self.iterations = int(iterations)
        self.rec_rate = float(rec_rate)
        self.sample_rate = int(sample_rate)
        self.stereo = stereo
        self.tail = tail
        self.recordings_dir = recordings_dir.rstrip("/") if recordings_dir else None
        self.callback = callback
        self._directories: dict[str, str] = {}  # FreeSWITCH's recordings_dir, by host

    def records(self, call_id: str) -> bool:
        """Whether the call with this id is one of the share recorded."""
        if self.rec_rate >= 1:
            return True
        return zlib.crc32(call_id.encode()) < self.rec_rate * 2**32

    async def directory(self, session: Session) -> str:
        """Where the recordings of ``session`` go, on its FreeSWITCH host."""
        if self.recordings_dir is not None:
            return self.recordings_dir
        directory = self._directories.get(session.host)
        if directory is None:
            try:
                answer = await session.api("global_getvar recordings_dir")
            except APIError:  # "-ERR no reply": the variable is not set
                answer = ""
            directory = answer.strip().rstrip("/") or FALLBACK_RECORDINGS_DIR
            self._directories[session.host] = directory
        return directory

    @event_callback("CHANNEL_PARK")
    async def on_park(self, session: Session) -> None:
        if session.is_inbound() and not session.answered:
            await self.directory(session)  # known before the recording must start
            session.answer()

    @event_callback("CHANNEL_ANSWER")
    async def on_answer(self, session: Session) -> None:
        call = session.call
        if self.records(call.uuid if call is not None else session.uuid):
            if call is not None:
                call.vars["record"] = True
            leg = "caller" if session.is_outbound() else "callee"
            path = f"{await self.directory(session)}/{leg}_{session.uuid}.wav"
            session.vars["recording"] = path
            session.vars["recorded"] = False
            session.start_record(path, stereo=self.stereo, rate=self.sample_rate)
        elif session.is_outbound():
            self._play(session)

    @event_callback("CHANNEL_EXECUTE_COMPLETE")
    def on_execute_complete(self, session: Session) -> None:
        event = session.last_event
        application = event.get("Application")
        if application == "record_session":
            self._recording_started(session)
        elif application == "playback" and session.is_outbound() and "played" in session.vars:
            self._clip_played(session, event.get("Application-Response") or "")

    def _recording_started(self, session: Session) -> None:
        if "RECORD_START" not in session.times:
            path = session.vars.pop("recording", None)
            log.warning("session %s: cannot record to %s", session.uuid, path)
        # The caller plays its clip once it records, so the recording has it all.
        if session.is_outbound() and "played" not in session.vars:
            self._play(session)

    def _play(self, session: Session) -> None:
        session.vars["played"] = 0
        session.playback(self.clip)

    def _clip_played(self, session: Session, response: str) -> None:
        if session.hungup:
            return
        if response != "FILE PLAYED":
            log.warning("session %s: cannot play %r: %s", session.uuid, self.clip, response)
        session.vars["played"] += 1
        if response == "FILE PLAYED" and session.vars["played"] < self.iterations:
            session.playback(self.clip)
        elif "recording" in session.vars:
            session.stop_record(session.vars["recording"], delay=self.tail)
        else:
            session.hangup()

    @event_callback("RECORD_STOP")
    def on_record_stop(self, session: Session) -> None:
        path = session.last_event.get("Record-File-Path") or session.vars.get("recording", "")
        session.vars["recorded"] = True
        if session.is_outbound() and not session.hungup:
            session.hangup()  # the callee's recording ends with the call
        if self.callback is not None:
            call = session.call
            leg = "caller" if session.is_outbound() else "callee"
            self.callback(Recording(session.host, call.uuid if call else session.uuid, leg, path))
