"""mod_bert in simulation: the ``bert_test`` application and the bit errors it measures.

A leg running ``bert_test`` sends the G.711 digital milliwatt and checks, one
window (``bert_window_ms``, 1 s) at a time, what it receives from its media
peer against the same pattern (``mod_bert.c:bert_test_function``):

* a window is errored when more than ``bert_max_err`` percent (10) of its
  samples are wrong: the peer sent no pattern (neither testing nor running
  ``echo``, which returns the leg's own pattern; gone, held, muted) or the
  node's :attr:`~switchy.sim.switch.Node.bert_errors` knob impairs it;
* the first clean window fires CUSTOM ``mod_bert::in_sync``; an errored
  window after that fires ``mod_bert::lost_sync`` (and counts in
  ``bert_stats_sync_lost_count``), a clean one syncs again;
* no sync within ``bert_timeout_ms`` (10 s) fires ``mod_bert::timeout`` once;
* ``bert_hangup_on_error=true`` hangs up with MEDIA_TIMEOUT on a lost sync
  or the timeout.

The events carry the channel's basic data without variables (trace 09).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from switchy.sim import wire
from switchy.sim.calling import At, CallingSite

if TYPE_CHECKING:
    from switchy.sim.channel import Channel

#: The error percentage a receiving channel measures in its window number
#: ``window`` (0 for the first window of its ``bert_test``): a node knob.
BertErrorModel = Callable[["Channel", int], float]

DEFAULT_WINDOW_MS = 1000
DEFAULT_MAX_ERR = 10.0
DEFAULT_TIMEOUT_MS = 10000

IN_SYNC = "mod_bert::in_sync"
LOST_SYNC = "mod_bert::lost_sync"
TIMEOUT = "mod_bert::timeout"

#: The ``Channel.privates`` key of a leg's pattern transmission.
SENDING = "__bert_sending"
#: The ``Channel.privates`` key of a leg running ``echo``: what it receives goes back.
ECHOING = "__echoing"
#: The ``Channel.privates`` key of the ``uuid_audio`` adjustments (switch_ivr_session_audio).
SESSION_AUDIO = "__audio"

# in_sync's line is in trace 09; the other two are counted from it in
# mod_bert.c (unverified against 1.10.12).
_LOST_SYNC_AT: CallingSite = ("mod_bert.c", "bert_test_function", 294)
_TIMEOUT_AT: CallingSite = ("mod_bert.c", "bert_test_function", 246)

_SAMPLES_PER_MS = 8  # PCMU
_FRAME_MS = 20
_TRUE_WORDS = frozenset({"yes", "on", "true", "t", "enabled", "allow", "active"})


def error_rate(percent: float) -> BertErrorModel:
    """Every window loses ``percent`` of its samples (above ``bert_max_err``: no sync)."""
    return lambda channel, window: percent


def errored_windows(windows: Iterable[int], percent: float = 100.0) -> BertErrorModel:
    """The listed windows (0 is the first) lose ``percent`` of their samples, others none.

    ``errored_windows([3, 4])`` makes a synced leg lose sync at its fourth
    window and sync again at its sixth.
    """
    bad = frozenset(windows)
    return lambda channel, window: percent if window in bad else 0.0


@dataclass
class _Span:
    """When a leg started (and stopped) sending the pattern or echoing, in loop time."""

    started: float
    stopped: float | None = None


@contextmanager
def _spanning(channel: Channel, key: str) -> Iterator[_Span]:
    """Mark ``channel`` with a :class:`_Span` under ``key`` while the block runs."""
    loop = asyncio.get_running_loop()
    span = _Span(loop.time())
    channel.privates[key] = span
    try:
        yield span
    finally:
        span.stopped = loop.time()
        channel.privates.pop(key, None)


async def echo(channel: Channel) -> None:
    """``echo``: send back what arrives, a testing peer's pattern included, until interrupted."""
    with _spanning(channel, ECHOING):
        await channel.wait()


@dataclass(frozen=True)
class _Settings:
    window: float
    window_samples: int
    max_err: float
    timeout: float
    hangup_on_error: bool


async def bert_test(channel: Channel, arg: str) -> None:
    """``bert_test``: send the pattern and measure what comes back until interrupted."""
    if channel.direction == "inbound":
        channel.answer()  # switch_channel_answer; outbound legs are answered by their far end
    codec = channel.read_codec
    if codec is None or codec.name != "PCMU":
        return  # "This application only works when using ulaw codec"
    settings = _settings(channel)
    channel.set_vars([("bert_stats_sync_lost_count", "0"), ("bert_stats_sync_lost", "false")])
    with _spanning(channel, SENDING) as sending:
        await _measure(channel, settings, sending.started)


def _settings(channel: Channel) -> _Settings:
    variables = channel.variables
    window_ms = _positive(variables.get("bert_window_ms"), DEFAULT_WINDOW_MS)
    # mod_bert reads bert_max_err with atoi: a fraction is not a valid override.
    max_err = float(_positive(variables.get("bert_max_err"), 0)) or DEFAULT_MAX_ERR
    timeout_ms = _positive(variables.get("bert_timeout_ms"), DEFAULT_TIMEOUT_MS)
    return _Settings(
        window=window_ms / 1000,
        window_samples=window_ms * _SAMPLES_PER_MS,
        max_err=max_err,
        timeout=timeout_ms / 1000,
        hangup_on_error=_switch_true(variables.get("bert_hangup_on_error")),
    )


async def _measure(channel: Channel, settings: _Settings, started: float) -> None:
    loop = asyncio.get_running_loop()
    timeout_at: float | None = started + settings.timeout
    window_start = started
    window_index = 0
    in_sync = False
    lost_count = 0
    cng_count = 0
    while True:
        window_end = window_start + settings.window
        wake_at = window_end if timeout_at is None else min(window_end, timeout_at)
        if not await channel.wait(max(wake_at - loop.time(), 0.0)):
            return
        if timeout_at is not None and loop.time() >= timeout_at:
            timeout_at = None
            channel.fire("CUSTOM", _TIMEOUT_AT, subclass=TIMEOUT, variables=False)
            if settings.hangup_on_error:
                channel.hangup("MEDIA_TIMEOUT")
        if loop.time() < window_end:
            continue
        err, cng_frames = _window_error(channel, window_start, window_end, window_index)
        cng_count += cng_frames
        if err > settings.max_err:
            if in_sync:
                in_sync = False
                lost_count += 1
                channel.set_vars(
                    [
                        ("bert_stats_sync_lost_count", str(lost_count)),
                        ("bert_stats_sync_lost", "true"),
                    ]
                )
                err_samples = round(err * settings.window_samples / 100)
                channel.fire(
                    "CUSTOM",
                    _LOST_SYNC_AT,
                    subclass=LOST_SYNC,
                    variables=False,
                    after=[
                        ("sync_lost_percent", f"{err:.6f}"),
                        ("sync_lost_count", str(lost_count)),
                        ("cng_count", str(cng_count)),
                        ("err_samples", str(err_samples)),
                    ],
                )
                if settings.hangup_on_error:
                    channel.hangup("MEDIA_TIMEOUT")
        elif not in_sync:
            in_sync = True
            cng_count = 0
            timeout_at = None
            channel.fire("CUSTOM", At.BERT_IN_SYNC, subclass=IN_SYNC, variables=False)
        window_start = window_end
        window_index += 1


def _window_error(channel: Channel, start: float, end: float, index: int) -> tuple[float, int]:
    """(percent of wrong samples, frames that carried no audio) of one window."""
    missing = 1.0 - _pattern_time(channel, start, end) / (end - start)
    model = channel.node.bert_errors
    impaired = min(max(model(channel, index), 0.0), 100.0) if model is not None else 0.0
    err = 100.0 * missing + (1.0 - missing) * impaired
    frames = round((end - start) * 1000 / _FRAME_MS)
    # Without the far end's pattern the leg reads comfort noise, which mod_bert counts.
    return err, round(missing * frames)


def _pattern_time(channel: Channel, start: float, end: float) -> float:
    """How long, within ``start``..``end``, the pattern reached ``channel``."""
    peer = channel.media_peer
    if peer is None or not peer.is_up or not peer.has_media:
        return 0.0
    if _muted(channel, "read_mute") or _muted(peer, "write_mute") or "CF_HOLD" in peer.flags:
        return 0.0  # silence replaces the pattern
    sending = peer.privates.get(SENDING)
    if isinstance(sending, _Span):
        return _overlap(start, end, sending)
    echoing, own = peer.privates.get(ECHOING), channel.privates.get(SENDING)
    if not (isinstance(echoing, _Span) and isinstance(own, _Span)):
        return 0.0
    if _muted(channel, "write_mute") or _muted(peer, "read_mute"):
        return 0.0  # the pattern does not reach the echo
    return _overlap(start, end, echoing, own)


def _overlap(start: float, end: float, *spans: _Span) -> float:
    """How long, within ``start``..``end``, every one of ``spans`` lasts."""
    since = max(start, *(span.started for span in spans))
    until = min(end, *(end if span.stopped is None else span.stopped for span in spans))
    return max(until - since, 0.0)


def _muted(channel: Channel, direction: str) -> bool:
    adjustments = channel.privates.get(SESSION_AUDIO)
    return isinstance(adjustments, dict) and bool(adjustments.get(direction))


def _positive(text: str | None, default: int) -> int:
    """``atoi(text)`` when it is above 0, else ``default``."""
    value = wire.c_atoi(text or "")
    return value if value > 0 else default


def _switch_true(text: str | None) -> bool:
    """``switch_true``: yes/on/true/t/enabled/allow/active, or a non-zero number."""
    if not text:
        return False
    lowered = text.lower()
    return lowered in _TRUE_WORDS or (lowered.isdigit() and int(lowered) != 0)
