"""switchy: fast FreeSWITCH control and call-load generation over the event socket."""

from switchy.apps import app
from switchy.client import Client
from switchy.errors import (
    AccessDenied,
    APIError,
    AuthenticationError,
    CommandError,
    CommandTimeout,
    ConfigurationError,
    ConnectError,
    ConnectionLost,
    ProtocolError,
    SwitchyError,
)
from switchy.marks import event_callback, handler
from switchy.models import Call, Job, Session
from switchy.sync import active_client, sync_caller

__version__ = "0.1.0"

__all__ = [
    "APIError",
    "AccessDenied",
    "AuthenticationError",
    "Call",
    "Client",
    "CommandError",
    "CommandTimeout",
    "ConfigurationError",
    "ConnectError",
    "ConnectionLost",
    "Job",
    "ProtocolError",
    "Session",
    "SwitchyError",
    "active_client",
    "app",
    "event_callback",
    "handler",
    "sync_caller",
]
