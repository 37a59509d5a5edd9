"""What the service tests share: an event log app and small waits."""

from __future__ import annotations

from collections.abc import Callable

from switchy import Client, handler
from switchy.esl.protocol import Event

TIMEOUT = 10.0


class EventLog:
    """Keeps every event of the names given, from every session of the node."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    @handler(
        "CHANNEL_EXECUTE",
        "CHANNEL_HANGUP",
        "CHANNEL_PROGRESS",
        "CHANNEL_PROGRESS_MEDIA",
        "CHANNEL_ANSWER",
        "PLAYBACK_START",
        "RECORD_START",
    )
    def on_event(self, event: Event) -> None:
        self.events.append(event)

    def executed(self, application: str) -> list[Event]:
        """The CHANNEL_EXECUTE events of ``application``, in order."""
        return [
            e
            for e in self.events
            if e.name == "CHANNEL_EXECUTE" and e.get("Application") == application
        ]

    def of(self, name: str, **headers: str) -> list[Event]:
        """The events called ``name`` whose headers have these values."""
        return [
            e
            for e in self.events
            if e.name == name and all(e.get(k.replace("_", "-")) == v for k, v in headers.items())
        ]


async def log_events(client: Client) -> EventLog:
    log = EventLog()
    await client.load_app(log, app_id="event-log")
    return log


async def until(client: Client, predicate: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    """Wait, event by event on ``client``'s node, until ``predicate()`` holds."""
    await client.tracker.wait_for(predicate, timeout)
