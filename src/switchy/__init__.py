"""switchy: fast FreeSWITCH control and call-load generation over the event socket."""

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

__version__ = "0.1.0"

__all__ = [
    "APIError",
    "AccessDenied",
    "AuthenticationError",
    "CommandError",
    "CommandTimeout",
    "ConfigurationError",
    "ConnectError",
    "ConnectionLost",
    "ProtocolError",
    "SwitchyError",
]
