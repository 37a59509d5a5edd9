"""Header lines as ``text/event-plain`` writes them, sans-I/O.

The event model (:mod:`switchy.sim.events`, :mod:`switchy.sim.channel`) encodes
the headers that recur from event to event once, as they are made, and the
serialiser (:mod:`switchy.sim.wire`) joins those encodings; both use these
functions, so a header's line is the same bytes whichever side made it.

Text crosses the wire as C strings of arbitrary bytes. The simulator holds it as
``str`` decoded with UTF-8 and ``surrogateescape``, so any byte a client sends
comes back out unchanged (:func:`to_bytes` / :func:`from_bytes`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from urllib.parse import quote

Header = tuple[str, str]


def to_bytes(text: str) -> bytes:
    """Encode simulator text back into the bytes it came from."""
    return text.encode("utf-8", "surrogateescape")


def from_bytes(data: bytes) -> str:
    """Decode wire bytes without losing any of them."""
    return data.decode("utf-8", "surrogateescape")


# -- URL encoding (switch_utils.c:switch_url_encode_opt) ---------------------------

# quote() always keeps letters, digits and "_.-~"; these are FreeSWITCH's other
# never-encoded characters. Everything else (the SWITCH_URL_UNSAFE set, bytes
# below 0x20 or above 0x7E) becomes %XX with uppercase hex, as FreeSWITCH does.
_URL_SAFE = "!$'()*,/"
_PASS_THROUGH = re.compile(rb"%[0-9A-F]{2}")
# Any character url_encode would change: most values have none.
_URL_UNSAFE = re.compile(r"[^A-Za-z0-9_.~!$'()*,/-]")


def url_encode(value: str) -> str:
    """Encode ``value`` exactly as ``switch_url_encode`` does for plain events.

    A ``%`` followed by two characters of ``0-9A-F`` (uppercase only) is copied
    verbatim, so the encoding is lossy; UTF-8 bytes are encoded one by one.
    """
    if _URL_UNSAFE.search(value) is None:
        return value
    return _url_encode(value)


# What url_encode makes of each unsafe ASCII character.
_ASCII_ESCAPES = {
    code: f"%{code:02X}" for code in range(128) if _URL_UNSAFE.match(chr(code)) is not None
}


@lru_cache(maxsize=4096)
def _url_encode_ascii(value: str) -> str:
    return value.translate(_ASCII_ESCAPES)


@lru_cache(maxsize=8192)
def _url_encode(value: str) -> str:
    # Cached: a channel's variables come back in event after event.
    if value.isascii() and "%" not in value:
        if "\r\n" in value:
            # Text of several lines (an SDP): most of its lines recur from call to call.
            return "%0D%0A".join(map(_url_encode_ascii, value.split("\r\n")))
        return value.translate(_ASCII_ESCAPES)  # byte by byte, in C
    raw = to_bytes(value)
    if b"%" not in raw:
        return quote(raw, safe=_URL_SAFE)
    parts: list[str] = []
    start = 0
    for match in _PASS_THROUGH.finditer(raw):
        parts.append(quote(raw[start : match.start()], safe=_URL_SAFE))
        parts.append(match.group().decode("ascii"))
        start = match.end()
    parts.append(quote(raw[start:], safe=_URL_SAFE))
    return "".join(parts)


# -- header lines ----------------------------------------------------------------------

# Encoded lines by header name, then value: the same headers (common variables,
# a profile's fields) recur from call to call. Two levels, not (name, value)
# keys: the lookup then needs no tuple.
_LINES: dict[str, dict[str, bytes]] = {}
# The same for channel variables, by variable name (their header is variable_<name>).
_VARIABLE_LINES: dict[str, dict[str, bytes]] = {}
_NO_LINES: dict[str, bytes] = {}  # stays empty: what a name not seen yet has
# A name with this many values cached takes no more: its values hardly recur
# (uuids, times), keeping them would only crowd the cache.
_VALUES_MAX = 256
# All caches are emptied at this many lines (many names, each with many values).
_LINES_MAX = 65536
_line_count = [0]  # lines in both caches


def _remember(cache: dict[str, dict[str, bytes]], name: str, value: str, line: bytes) -> bytes:
    by_value = cache.get(name)
    if by_value is None:
        if _line_count[0] >= _LINES_MAX:
            _LINES.clear()
            _VARIABLE_LINES.clear()
            _line_count[0] = 0
        by_value = cache[name] = {}
    elif len(by_value) >= _VALUES_MAX:
        return line
    by_value[value] = line
    _line_count[0] += 1
    return line


def _encoded(value: str) -> bytes:
    """A header value as its line carries it: URL-encoded, ``_undef_`` when empty."""
    if not value:
        return b"_undef_"
    if _URL_UNSAFE.search(value) is None:
        return value.encode("ascii")  # nothing to encode (the safe set is ASCII)
    return _url_encode(value).encode("ascii")


def _new_line(name: str, value: str) -> bytes:
    return _remember(_LINES, name, value, b"%s: %s\n" % (to_bytes(name), _encoded(value)))


def plain_lines(headers: Iterable[Header]) -> bytes:
    """The lines of ``headers``, in order: ``Name: <url-encoded value>`` and a
    newline each (``_undef_`` for an empty value)."""
    lines, none = _LINES, _NO_LINES
    return b"".join(
        [lines.get(name, none).get(value) or _new_line(name, value) for name, value in headers]
    )


def field_line(name: str, value: str | int) -> bytes:
    """The line of header ``name`` with ``value``; nothing when the value is empty
    (the header is left out)."""
    text = value if type(value) is str else str(value)
    if not text:
        return b""
    return _LINES.get(name, _NO_LINES).get(text) or _new_line(name, text)


def _new_variable_line(name: str, value: str) -> bytes:
    line = b"variable_%s: %s\n" % (to_bytes(name), _encoded(value))
    return _remember(_VARIABLE_LINES, name, value, line)


def set_variables(
    variables: dict[str, str], lines: dict[str, bytes], pairs: Iterable[Header]
) -> None:
    """Set channel variables, and keep ``lines`` (each one's header line) in the same order.

    Setting a variable moves it last; an empty value deletes it.
    """
    cache, none = _VARIABLE_LINES, _NO_LINES
    for name, value in pairs:
        if variables.pop(name, None) is not None:  # most names are new
            del lines[name]
        if value:
            variables[name] = value
            lines[name] = cache.get(name, none).get(value) or _new_variable_line(name, value)
