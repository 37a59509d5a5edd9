"""Bit error rate testing of calls with FreeSWITCH's mod_bert."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from switchy.apps import app
from switchy.esl.commands import VariableValue
from switchy.esl.protocol import Event
from switchy.marks import event_callback
from switchy.models import Session

__all__ = ["Bert"]

log = logging.getLogger("switchy.apps.bert")

IN_SYNC = "mod_bert::in_sync"
LOST_SYNC = "mod_bert::lost_sync"
TIMEOUT = "mod_bert::timeout"
#: The statistics a lost_sync event carries.
LOST_SYNC_STATS = ("sync_lost_percent", "sync_lost_count", "cng_count", "err_samples")


@app
class Bert:
    """Run mod_bert's bit error rate test on both legs of every call and count failures.

    The callee answers, then both legs run ``bert_test``: each sends a known
    pattern and checks what comes back (with ``two_sided=False`` the callee
    echoes the caller's pattern instead). Errors are counted by session uuid:
    ``lost_sync`` (a synced leg lost sync) and ``timed_out`` (it never synced).
    Each leg's ``sess.vars``: ``bert_in_sync`` (synced now), ``bert_lost_sync``
    (times lost), ``bert_timeout``, ``bert_stats`` (the last lost-sync figures).
    ``hangup_on_error`` makes mod_bert hang a failing leg up (MEDIA_TIMEOUT).
    ``window_ms``, ``max_err`` (percent) and ``timeout_ms`` tune mod_bert.
    """

    def __init__(
        self,
        two_sided: bool = True,
        hangup_on_error: bool = False,
        window_ms: int | None = None,
        max_err: int | None = None,
        timeout_ms: int | None = None,
    ) -> None:
        self.two_sided = two_sided
        self.hangup_on_error = hangup_on_error
        self.settings: dict[str, str] = {}
        for name, value in (
            ("bert_window_ms", window_ms),
            ("bert_max_err", max_err),
            ("bert_timeout_ms", timeout_ms),
        ):
            if value is not None:
                if int(value) <= 0:
                    raise ValueError(f"Bert: {name} must be > 0, got {value}")
                self.settings[name] = str(int(value))
        self.lost_sync: Counter[str] = Counter()
        self.timed_out: set[str] = set()
        self._last_event: Event | None = None

    @property
    def lost_sync_total(self) -> int:
        return sum(self.lost_sync.values())

    @property
    def errors(self) -> int:
        """Lost syncs plus timeouts, over every call."""
        return self.lost_sync_total + len(self.timed_out)

    @event_callback("CHANNEL_PARK")
    def on_park(self, session: Session) -> None:
        if session.is_inbound() and not session.answered:
            session.answer()

    @event_callback("CHANNEL_ANSWER")
    def on_answer(self, session: Session) -> None:
        if session.is_inbound() and not self.two_sided:
            session.echo()
            return
        variables: dict[str, VariableValue] = dict(self.settings)
        variables["bert_hangup_on_error"] = "true" if self.hangup_on_error else "false"
        session.setvars(variables)
        session.execute("bert_test")

    # FreeSWITCH only sends CUSTOM events whose subclass was subscribed by name:
    # the subclass names subscribe, while the tracker dispatches every CUSTOM
    # event under "CUSTOM". A tracker that also dispatched by subclass would hand
    # the same event over twice: it is counted once.
    @event_callback("CUSTOM", IN_SYNC, LOST_SYNC, TIMEOUT)
    def on_bert_event(self, session: Session) -> None:
        event = session.last_event
        if event is self._last_event:
            return
        self._last_event = event
        subclass = event.subclass
        if subclass == IN_SYNC:
            session.vars["bert_in_sync"] = True
        elif subclass == LOST_SYNC:
            self.on_lost_sync(session, event)
        elif subclass == TIMEOUT:
            self.on_timeout(session)

    def on_lost_sync(self, session: Session, event: Event) -> None:
        """Count a lost sync and keep mod_bert's figures in ``sess.vars["bert_stats"]``."""
        self.lost_sync[session.uuid] += 1
        stats: dict[str, Any] = {name: event.get(name) for name in LOST_SYNC_STATS}
        session.vars["bert_in_sync"] = False
        session.vars["bert_stats"] = stats
        session.vars["bert_lost_sync"] = self.lost_sync[session.uuid]
        log.warning(
            "session %s: BERT lost sync (%s%% errors)", session.uuid, stats["sync_lost_percent"]
        )

    def on_timeout(self, session: Session) -> None:
        """A leg never synced within mod_bert's timeout."""
        self.timed_out.add(session.uuid)
        session.vars["bert_timeout"] = True
        log.warning("session %s: BERT timed out without syncing", session.uuid)
