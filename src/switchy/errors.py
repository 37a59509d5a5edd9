"""Exceptions raised by switchy."""

from __future__ import annotations


class SwitchyError(Exception):
    """Base class of every switchy error."""


class ProtocolError(SwitchyError):
    """The peer sent bytes that are not valid ESL framing."""


class ConnectError(SwitchyError, ConnectionError):
    """The event socket could not be reached (refused, unreachable, timed out)."""


class AuthenticationError(ConnectError):
    """The server rejected the password (or user) given."""


class AccessDenied(ConnectError):
    """The server's ACL rejected this client's address (``text/rude-rejection``)."""


class ConnectionLost(SwitchyError, ConnectionError):
    """The connection closed while a command or job was waiting for its answer."""


class CommandTimeout(SwitchyError, TimeoutError):
    """A command got no reply within its timeout."""


class CommandError(SwitchyError):
    """The server answered a command with an error.

    ``reply`` holds the server's text: the Reply-Text of a ``command/reply`` or the
    body of an ``api/response`` / BACKGROUND_JOB.
    """

    def __init__(self, message: str, reply: str = "") -> None:
        super().__init__(message)
        self.reply = reply


class APIError(CommandError):
    """An ``api`` or ``bgapi`` command answered ``-ERR ...`` or ``-USAGE: ...``."""

    @property
    def cause(self) -> str | None:
        """The hangup cause of a failed originate (``-ERR USER_BUSY``), else None."""
        text = self.reply.strip()
        if not text.startswith("-ERR "):
            return None
        word = text[5:]
        return word if word.replace("_", "").isalpha() and word.isupper() else None


class ConfigurationError(SwitchyError, ValueError):
    """switchy was asked to run with settings that cannot work."""
