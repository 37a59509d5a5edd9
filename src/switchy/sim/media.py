"""How long the simulated switch takes to play something.

The simulator carries no audio, but playback must end when FreeSWITCH's
would: after the tones of a ``tone_stream://``, the milliseconds of a
``silence_stream://``, or the frames of a wav file (read with :mod:`wave`).
"""

from __future__ import annotations

import re
import wave
from dataclasses import dataclass
from pathlib import Path

#: Playback lasts until interrupted.
FOREVER = -1.0

_TONE_SEGMENT = re.compile(r"%\(([^)]*)\)")


@dataclass(frozen=True)
class Clip:
    """A playable file: its kind (Playback-File-Type) and duration in seconds."""

    kind: str
    seconds: float


def clip_for(path: str) -> Clip | None:
    """The clip ``path`` names, or None when FreeSWITCH would not find it.

    A leading ``{loops=N}`` block plays the file N times (-1: forever).
    """
    loops = 1
    if path.startswith("{") and "}" in path:
        block, _, path = path[1:].partition("}")
        for pair in block.split(","):
            key, _, value = pair.partition("=")
            if key.strip() == "loops":
                loops = _int(value, 1)
    clip = _clip(path)
    if clip is None or loops == 1 or clip.seconds == FOREVER:
        return clip
    return Clip(clip.kind, FOREVER if loops < 0 else clip.seconds * max(loops, 0))


def _clip(path: str) -> Clip | None:
    scheme, sep, rest = path.partition("://")
    if sep:
        if scheme == "tone_stream":
            return Clip("tone_stream", tone_seconds(rest))
        if scheme == "silence_stream":
            return Clip("silence_stream", silence_seconds(rest))
        if scheme == "local_stream":
            return Clip("local_stream", FOREVER)
        return None
    return _wav_clip(Path(path))


def tone_seconds(spec: str) -> float:
    """Duration of a teletone script: each ``%(on,off,freq...)`` once, times ``loops``.

    ``loops=-1`` (or ``L=-1``) repeats forever.
    """
    loops = 1
    total_ms = 0
    for part in spec.split(";"):
        part = part.strip()
        key, _, value = part.partition("=")
        if key in ("loops", "L") and value:
            loops = _int(value, 1)
            continue
        for segment in _TONE_SEGMENT.findall(part):
            fields = [f.strip() for f in segment.split(",")]
            if len(fields) >= 2:
                total_ms += max(_int(fields[0], 0), 0) + max(_int(fields[1], 0), 0)
    if loops < 0:
        return FOREVER
    return total_ms * loops / 1000


def silence_seconds(spec: str) -> float:
    """Duration of ``silence_stream://<ms>[,<divisor>]``; 0 or negative plays forever."""
    ms = _int(spec.split(",", 1)[0], -1)
    return FOREVER if ms <= 0 else ms / 1000


def _wav_clip(path: Path) -> Clip | None:
    try:
        with wave.open(str(path), "rb") as audio:
            frames = audio.getnframes()
            rate = audio.getframerate()
    except (OSError, EOFError, wave.Error):
        return None
    return Clip("", frames / rate if rate else 0.0)


def _int(text: str, default: int) -> int:
    try:
        return int(text.strip())
    except ValueError:
        return default
