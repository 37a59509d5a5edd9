"""The ESL wire format, sans-I/O: bytes in, frames and events out.

A :class:`Parser` turns the byte stream a FreeSWITCH event socket sends into
:class:`Frame` objects; an event frame's :attr:`Frame.event` is an :class:`Event`.
Nothing here touches a socket, so the parser can be fed from anything (a
socket, a recorded trace, a fuzzer) in chunks of any size.

Events are parsed lazily. Looking up a header scans the raw event bytes for
that one line and percent-decodes only its value, so routing an event by
name and Unique-ID costs a few substring searches; the full decoded header
map is built only when something asks for it.
"""

from __future__ import annotations

import binascii
import json
import re
from collections.abc import Iterator
from urllib.parse import unquote_to_bytes

from switchy.errors import ProtocolError

__all__ = [
    "DEFAULT_MAX_FRAME_SIZE",
    "EVENT_CONTENT_TYPES",
    "REPLY_CONTENT_TYPES",
    "Event",
    "Frame",
    "JsonEvent",
    "Parser",
    "PlainEvent",
]

#: Largest frame (header block or body) the parser accepts by default: 16 MiB,
#: the cap newer FreeSWITCH releases and the reference client apply.
DEFAULT_MAX_FRAME_SIZE = 16 * 1024 * 1024

#: Content types that answer a command, in the order the commands were sent.
REPLY_CONTENT_TYPES = frozenset({"command/reply", "api/response"})

#: Content types that carry an event.
EVENT_CONTENT_TYPES = frozenset({"text/event-plain", "text/event-json"})

_MAX_LENGTH_DIGITS = 12  # more digits than this can only exceed any sane cap


# The byte "%" as an int: `37 in data` is several times faster than `b"%" in data`.
_PERCENT = ord("%")
# A "%" that does not start a valid %XX escape.
_STRAY_PERCENT = re.compile(rb"%(?![0-9A-Fa-f]{2})")


def _unquote(raw: bytes) -> bytes:
    """Percent-decode ``raw``: ``%XX`` (either hex case) becomes byte XX; a stray
    ``%`` stays as it is.

    When every ``%`` starts a valid escape, the text is rewritten to
    quoted-printable (``=XX``) and decoded by :func:`binascii.a2b_qp` in C, which is
    many times faster than the pure-Python :func:`urllib.parse.unquote_to_bytes`.
    """
    if _STRAY_PERCENT.search(raw) is None:
        return binascii.a2b_qp(raw.replace(b"=", b"=3D").replace(b"%", b"="))
    return unquote_to_bytes(raw)


def _decode(raw: bytes) -> str:
    """Percent-decode one header value and decode it as UTF-8."""
    if _PERCENT in raw:
        raw = _unquote(raw)
    return raw.decode("utf-8", "replace")


class Frame:
    """One ESL frame: its outer headers and its body.

    Outer header values are raw (FreeSWITCH does not encode them); ``body`` holds
    exactly ``Content-Length`` bytes, or ``b""`` when the frame has none.
    """

    __slots__ = ("_headers", "body", "content_type")

    def __init__(
        self, content_type: str, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> None:
        self.content_type = content_type
        self.body = body
        # None: the frame has only Content-Length and Content-Type (a frame on the
        # parser's fast path); the dict is built if someone asks for it.
        self._headers = headers

    @property
    def headers(self) -> dict[str, str]:
        """The outer headers (Content-Type, Content-Length, Reply-Text, ...)."""
        if self._headers is None:  # in the order FreeSWITCH writes them
            length = str(len(self.body))
            if self.content_type == "api/response":
                self._headers = {"Content-Type": self.content_type, "Content-Length": length}
            else:
                self._headers = {"Content-Length": length, "Content-Type": self.content_type}
        return self._headers

    @property
    def is_reply(self) -> bool:
        """True for ``command/reply`` and ``api/response`` frames."""
        return self.content_type in REPLY_CONTENT_TYPES

    @property
    def is_event(self) -> bool:
        """True for ``text/event-plain`` and ``text/event-json`` frames."""
        return self.content_type in EVENT_CONTENT_TYPES

    @property
    def reply_text(self) -> str:
        """The ``Reply-Text`` of a ``command/reply`` (empty when absent)."""
        return self.headers.get("Reply-Text", "")

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (invalid bytes replaced)."""
        return self.body.decode("utf-8", "replace")

    @property
    def event(self) -> Event:
        """The event this frame carries; :class:`ProtocolError` if it carries none."""
        if self.content_type == "text/event-plain":
            return PlainEvent(self.body)
        if self.content_type == "text/event-json":
            return JsonEvent(self.body)
        raise ProtocolError(f"a {self.content_type!r} frame carries no event")

    def __repr__(self) -> str:
        return f"<Frame {self.content_type} headers={self.headers!r} body={len(self.body)}B>"


def _parse_outer_headers(block: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in block.split(b"\n"):
        name, colon, value = line.partition(b":")
        if not colon or not name:
            raise ProtocolError(f"malformed header line {line[:80]!r}")
        headers[name.decode("utf-8", "replace")] = value.lstrip(b" ").decode("utf-8", "replace")
    return headers


# The bulk of a busy stream: the two frames FreeSWITCH writes with just these two
# headers, in this order, a plain event (Content-Length first) and an API reply
# (Content-Type first). Group 1 or 2 is the length, a length of more digits
# takes the general path (and its error).
_FAST_HEAD = re.compile(
    rb"Content-Length: ([0-9]{1,9})\nContent-Type: text/event-plain\n\n"
    rb"|Content-Type: api/response\nContent-Length: ([0-9]{1,9})\n\n"
)
_FAST_CONTENT_TYPES = ("", "text/event-plain", "api/response")


def _frame_from_head(head: bytes) -> Frame:
    headers = _parse_outer_headers(head)
    content_type = headers.get("Content-Type")
    if content_type is None:
        raise ProtocolError(f"frame without Content-Type: {head[:120]!r}")
    return Frame(content_type, headers)


class Parser:
    """Incremental ESL frame parser.

    ``feed()`` accepts bytes in chunks of any size and returns the frames
    completed so far. A reader that can receive straight into memory (a socket's
    ``recv_into``, asyncio's ``BufferedProtocol``) writes into :meth:`buffer`
    and calls :meth:`commit` instead, saving a copy and an allocation per read.
    A header block or body larger than ``max_frame_size`` raises
    :class:`ProtocolError`, so the buffer never grows without bound. After a
    ``ProtocolError`` the stream is unusable: drop the connection.
    """

    __slots__ = ("_buffer", "_end", "_max_frame_size", "_pending", "_start")

    #: Free space :meth:`buffer` offers at least: most reads fit in one go.
    READ_SIZE = 64 * 1024

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        if max_frame_size < 1:
            raise ValueError(f"max_frame_size must be positive, got {max_frame_size}")
        # Bytes received and not yet parsed are self._buffer[self._start:self._end].
        self._buffer = bytearray(2 * self.READ_SIZE)
        self._start = 0
        self._end = 0
        self._max_frame_size = max_frame_size
        # A header block already parsed, waiting for its body: (frame, body length).
        self._pending: tuple[Frame, int] | None = None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as part of a frame."""
        return self._end - self._start

    def buffer(self, size: int = READ_SIZE) -> memoryview:
        """Writable memory for at least ``size`` more bytes of the stream; write
        into its beginning, then call :meth:`commit` with how many were written."""
        buffer, start, end = self._buffer, self._start, self._end
        if len(buffer) - end < size:
            kept = end - start
            if kept + size > len(buffer):  # grow (the old buffer may still be in use)
                self._buffer = bytearray(max(kept + size, 2 * len(buffer)))
                self._buffer[:kept] = buffer[start:end]
            elif kept:
                buffer[:kept] = buffer[start:end]  # same length: no resize
            self._start, self._end = 0, kept
        elif start == end:
            self._start = self._end = 0
        return memoryview(self._buffer)[self._end :]

    def feed(self, data: bytes) -> list[Frame]:
        """Add ``data`` to the stream; return every frame it completes, in order."""
        size = len(data)
        self.buffer(size)[:size] = data
        return self.commit(size)

    def commit(self, size: int) -> list[Frame]:
        """Take ``size`` bytes written into :meth:`buffer`; return every frame they
        complete, in order."""
        buffer = self._buffer
        end = self._end + size
        if not 0 <= size <= len(buffer) - self._end:
            raise ValueError(f"cannot commit {size} bytes: the buffer has room for fewer")
        self._end = end
        frames: list[Frame] = []
        position = self._start
        pending = self._pending
        max_frame_size = self._max_frame_size
        fast_head = _FAST_HEAD.match
        view = memoryview(buffer)  # slices of a view are copied once, not twice
        try:
            while True:
                if pending is None:
                    # Fast path for the bulk of a busy stream (see _FAST_HEAD).
                    match = fast_head(buffer, position, end)
                    if match is not None:
                        group = match.lastindex or 0  # 1: a plain event, 2: an API reply
                        length = int(match[group])
                        if length > max_frame_size:
                            self._content_length(match[group])  # raises the right error
                        content_type = _FAST_CONTENT_TYPES[group]
                        position = match.end()
                        if end - position >= length:
                            body = bytes(view[position : position + length])
                            frames.append(Frame(content_type, None, body))
                            position += length
                            continue
                        pending = (Frame(content_type), length)
                    else:
                        head = self._next_head(buffer, position, end)
                        if head is None:
                            break
                        if not head:  # a stray line break between frames
                            position += 1
                            continue
                        position += len(head) + 2
                        frame = _frame_from_head(head)
                        raw_length = frame.headers.get("Content-Length")
                        length = 0 if raw_length is None else self._content_length(raw_length)
                        if not length:
                            frames.append(frame)
                            continue
                        pending = (frame, length)
                frame, length = pending
                if end - position < length:
                    break
                frame.body = bytes(view[position : position + length])
                frames.append(frame)
                position += length
                pending = None
        finally:
            view.release()
            self._pending = pending
            self._start = position
        if position == end and len(buffer) > 4 * self.READ_SIZE:
            self._buffer = bytearray(2 * self.READ_SIZE)  # a huge frame has passed
            self._start = self._end = 0
        return frames

    def _next_head(self, buffer: bytearray, position: int, end: int) -> bytes | None:
        """The header block starting at ``position`` (b"" for a stray line break),
        or None while its blank line has not arrived before ``end``."""
        if buffer.startswith(b"\n", position, end):
            return b""  # FreeSWITCH never sends these; tolerate them anyway
        head_end = buffer.find(b"\n\n", position, end)
        if head_end >= 0:
            return bytes(buffer[position:head_end])
        if end - position > self._max_frame_size:
            raise ProtocolError(
                f"header block exceeds {self._max_frame_size} bytes without a blank line"
            )
        return None

    def _content_length(self, raw: bytes | str) -> int:
        if not (raw.isascii() and raw.isdigit()):
            raise ProtocolError(f"invalid Content-Length {raw[:40]!r}")
        if len(raw) > _MAX_LENGTH_DIGITS or int(raw) > self._max_frame_size:
            raise ProtocolError(
                f"Content-Length {raw[:40]!r} exceeds the {self._max_frame_size}-byte cap"
            )
        return int(raw)


class Event:
    """A FreeSWITCH event, decoded lazily from its serialised form.

    ``event["Header"]`` and ``event.get("Header")`` return the header's first
    value, percent-decoded; :meth:`get_all` returns every value of a header that
    occurs more than once (CHANNEL_HANGUP_COMPLETE carries ``Hangup-Cause``
    twice). :attr:`headers` is the full decoded map, built on first use.
    """

    # Routing headers are cached; False means "not looked up yet" (None: absent).
    __slots__ = ("_job_uuid", "_map", "_pairs", "_timestamp", "_uuid", "name")

    #: ``Event-Name``, e.g. ``CHANNEL_ANSWER`` (``""`` if absent): read when the
    #: event is made, as everything that gets an event dispatches on it.
    name: str

    def __init__(self) -> None:
        self._uuid: str | bool | None = False
        self._job_uuid: str | bool | None = False
        self._timestamp: float | bool | None = False
        self._pairs: list[tuple[str, str]] | None = None
        self._map: dict[str, str] | None = None

    # -- subclasses provide these -------------------------------------------------
    def _lookup(self, name: str) -> str | None:
        """The first value of header ``name``, or None."""
        raise NotImplementedError

    def _parse_pairs(self) -> list[tuple[str, str]]:
        """Every header as a (name, value) pair, in wire order, body excluded."""
        raise NotImplementedError

    @property
    def body(self) -> str:
        """The event body (a BACKGROUND_JOB result, for instance); ``""`` if none."""
        raise NotImplementedError

    # -- routing headers, cached ---------------------------------------------------
    @property
    def uuid(self) -> str | None:
        """``Unique-ID``: the channel this event is about, if any."""
        uuid = self._uuid
        if uuid is False:
            uuid = self._uuid = self._lookup("Unique-ID")
        return uuid  # type: ignore[return-value]

    @property
    def job_uuid(self) -> str | None:
        """``Job-UUID`` of a BACKGROUND_JOB (or of an event carrying one)."""
        job_uuid = self._job_uuid
        if job_uuid is False:
            job_uuid = self._job_uuid = self._lookup("Job-UUID")
        return job_uuid  # type: ignore[return-value]

    @property
    def timestamp(self) -> float | None:
        """When FreeSWITCH made the event: ``Event-Date-Timestamp`` in seconds since
        the epoch (microsecond resolution), or None if absent or unreadable."""
        timestamp = self._timestamp
        if timestamp is False:
            stamp = self._lookup("Event-Date-Timestamp")
            timestamp = self._timestamp = int(stamp) / 1e6 if stamp and stamp.isdigit() else None
        return timestamp

    @property
    def subclass(self) -> str | None:
        """``Event-Subclass`` of a CUSTOM event, e.g. ``mod_bert::lost_sync``."""
        return self.get("Event-Subclass")

    # -- general access --------------------------------------------------------------
    def items(self) -> list[tuple[str, str]]:
        """Every header as (name, decoded value), in wire order, duplicates kept."""
        if self._pairs is None:
            self._pairs = self._parse_pairs()
        return self._pairs

    @property
    def headers(self) -> dict[str, str]:
        """All headers, decoded; a duplicated header maps to its first value."""
        if self._map is None:
            items = self.items()
            result = dict(items)
            if len(result) < len(items):  # duplicates: keep the first value, as get() does
                result = {}
                for name, value in items:
                    result.setdefault(name, value)
            self._map = result
        return self._map

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of header ``name``, or ``default``."""
        value = self._lookup(name) if self._map is None else self._map.get(name)
        return default if value is None else value

    def get_all(self, name: str) -> list[str]:
        """Every value of header ``name`` in wire order (empty if absent)."""
        return [value for key, value in self.items() if key == name]

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self.headers)

    def __repr__(self) -> str:
        detail = f" {self.subclass}" if self.name == "CUSTOM" else ""
        uuid = f" uuid={self.uuid}" if self.uuid else ""
        job = f" job={self.job_uuid}" if self.job_uuid else ""
        return f"<{type(self).__name__} {self.name}{detail}{uuid}{job}>"


def _true_name(first: str, event: Event) -> str:
    """The event's type. FreeSWITCH re-fires a session's COMMAND message as
    PRIVATE_COMMAND by prepending nothing and appending a second standard prefix,
    so such an event names itself twice, and the last name is its type."""
    if first == "COMMAND":
        return event.get_all("Event-Name")[-1]
    return first


# Header name -> (b"\nName: ", b"Name: ", anchor): what a lookup searches for.
_PLAIN_KEYS: dict[str, tuple[bytes, bytes, int]] = {}
# "J" is rare in FreeSWITCH's serialised events (about once in eight events in the
# recorded traces, against 3.6 kB of other text): a lookup for a name holding one
# (Job-UUID, Job-Command) hops from "J" to "J" with memchr-speed find() instead of
# searching for the whole key, which matters because Job-UUID is absent from
# nearly every event and an absent key costs a scan of all of it.
_ANCHOR = b"J"
_BODY_LENGTH_KEY = b"\nContent-Length: "
_BODY_LENGTH_LINE = _BODY_LENGTH_KEY[1:]
# The rest of a JSON string once its opening quote was consumed, closing quote included.
_JSON_STRING_REST = re.compile(r'(?:[^"\\]|\\.)*"', re.DOTALL)


def _plain_keys(name: str) -> tuple[bytes, bytes, int]:
    line = name.encode() + b": "
    key = b"\n" + line
    keys = _PLAIN_KEYS[name] = (key, line, key.find(_ANCHOR))
    return keys


_EVENT_NAME_KEYS = _plain_keys("Event-Name")
_UNIQUE_ID_KEYS = _plain_keys("Unique-ID")
_JOB_UUID_KEYS = _plain_keys("Job-UUID")


def _json_string_at(text: str, start: int) -> str | None:
    """Decode the JSON string whose opening quote is just before ``start``."""
    match = _JSON_STRING_REST.match(text, start)
    if match is None:
        return None
    try:
        value = json.loads(text[start - 1 : match.end()])
    except ValueError:
        return None
    return value if isinstance(value, str) else None


class PlainEvent(Event):
    """An event in ``text/event-plain`` form: ``Name: url-encoded value`` lines.

    The header block ends at the first blank line; only a body may follow it,
    announced by a ``Content-Length`` header. Values are encoded, so neither a
    line break nor ``: `` can occur inside one. A lookup searches for
    ``\\nName: `` and knows the match is a header when no ``Content-Length``
    line precedes it (checking each byte for that at most once per event);
    otherwise it finds the exact end of the header block first.
    """

    __slots__ = ("_clean", "_data", "_first_key", "_head_end")

    def __init__(self, data: bytes) -> None:
        self._uuid = self._job_uuid = self._timestamp = False
        self._pairs = self._map = None
        self._data = data
        self._head_end = -1  # index just past the last header line; -1: not known yet
        self._clean = 0  # data[:_clean] is known to hold no body Content-Length line
        # The first line's "Name: " (no line break precedes that header): a lookup
        # compares its own with it instead of testing the data each time.
        colon = data.find(b": ")
        self._first_key = data[: colon + 2] if colon >= 0 else b""
        if self._first_key == _BODY_LENGTH_LINE:
            # Lookups find headers as "\nName: " after no body Content-Length line:
            # a first line that is one needs the exact end of the header block.
            end = data.find(b"\n\n")
            self._head_end = len(data) if end < 0 else end + 1
        self.name = _true_name(self._find(_EVENT_NAME_KEYS) or "", self)

    def _find_head_end(self) -> int:
        data = self._data
        if data.endswith(b"\n\n") and data.find(_BODY_LENGTH_KEY, self._clean) < 0:
            end = len(data) - 2  # no body, so the final blank line ends the headers
        else:
            # A body, or a sendevent event whose own Content-Length header stays
            # among the others (ESL_PROTOCOL §2.6): the first blank line decides.
            end = data.find(b"\n\n", max(self._clean - 1, 0))
        self._head_end = len(data) if end < 0 else end + 1
        return self._head_end

    def _lookup(self, name: str) -> str | None:
        return self._find(_PLAIN_KEYS.get(name) or _plain_keys(name))

    def get(self, name: str, default: str | None = None) -> str | None:
        # Event.get() without one call layer: this is the hot path of apps.
        if self._map is None:
            value = self._find(_PLAIN_KEYS.get(name) or _plain_keys(name))
        else:
            value = self._map.get(name)
        return default if value is None else value

    def _find(self, keys: tuple[bytes, bytes, int]) -> str | None:
        """The value of the first header line ``keys[1]``, or None.

        ``keys[0]`` is that line with its leading line break, ``keys[2]`` the
        offset of :data:`_ANCHOR` in it (-1: none).
        """
        key, first_line, anchor = keys
        data = self._data
        if first_line == self._first_key:
            start = len(first_line)
        else:
            if anchor < 0:
                found = data.find(key)
            else:
                found = data.find(_ANCHOR, anchor)
                while found >= 0 and not data.startswith(key, found - anchor):
                    found = data.find(_ANCHOR, found + 1)
                if found >= 0:
                    found -= anchor
            if found > self._clean:
                head_end = self._head_end
                if head_end < 0:
                    # In the header block unless the body's Content-Length line comes first.
                    if data.find(_BODY_LENGTH_KEY, self._clean, found) < 0:
                        self._clean = found
                    elif found >= self._find_head_end():
                        return None
                elif found >= head_end:
                    return None
            elif found < 0:
                return None
            start = found + len(key)
        try:
            raw = data[start : data.index(b"\n", start)]
        except ValueError:  # the last line, without its line break
            raw = data[start:]
        if _PERCENT in raw:
            raw = _unquote(raw)
        return raw.decode("utf-8", "replace")

    @property
    def uuid(self) -> str | None:
        uuid = self._uuid
        if uuid is False:
            uuid = self._uuid = self._find(_UNIQUE_ID_KEYS)
        return uuid  # type: ignore[return-value]

    @property
    def job_uuid(self) -> str | None:
        job_uuid = self._job_uuid
        if job_uuid is False:
            job_uuid = self._job_uuid = self._find(_JOB_UUID_KEYS)
        return job_uuid  # type: ignore[return-value]

    def _parse_pairs(self) -> list[tuple[str, str]]:
        head_end = self._head_end if self._head_end >= 0 else self._find_head_end()
        head = self._data[:head_end]
        if head_end < len(self._data):
            # The Content-Length line that frames the body is not an event header.
            last_line = head.rfind(b"\n", 0, len(head) - 1) + 1
            if head.startswith(_BODY_LENGTH_LINE, last_line):
                head = head[:last_line]
        if not head:
            return []
        if not head.endswith(b"\n"):
            head += b"\n"
        # Every line is "Name: value" and neither part can hold ": " or a line
        # break, so one split yields names and values alternately. Values hold no
        # raw control bytes either (they are encoded), so they are joined with
        # \x01 and percent-decoded in one pass, unless an encoded \x01 would then
        # be mistaken for the separator.
        parts = head.replace(b"\n", b": ").split(b": ")
        if (
            len(parts) != 2 * head.count(b"\n") + 1
            or not parts[0]
            or b"\x01" in head
            or b"%01" in head
        ):
            return _parse_plain_lines(head)  # malformed or unusual: go line by line
        names = b"\n".join(parts[0:-1:2]).decode("utf-8", "replace").split("\n")
        raw_values = b"\x01".join(parts[1::2])
        if _PERCENT in raw_values:
            raw_values = _unquote(raw_values)
        values = raw_values.decode("utf-8", "replace").split("\x01")
        return list(zip(names, values, strict=False))

    @property
    def body(self) -> str:
        head_end = self._head_end if self._head_end >= 0 else self._find_head_end()
        return self._data[head_end + 1 :].decode("utf-8", "replace")


def _parse_plain_lines(head: bytes) -> list[tuple[str, str]]:
    pairs = []
    for line in head.split(b"\n"):
        name, colon, value = line.partition(b": ")
        if colon:
            pairs.append((name.decode("utf-8", "replace"), _decode(value)))
    return pairs


class JsonEvent(Event):
    """An event in ``text/event-json`` form: one flat JSON object of strings.

    FreeSWITCH writes it unformatted, so a lookup finds ``"Name":"`` and decodes
    just that string; anything else (arrays, whitespace) takes the full parse.
    """

    __slots__ = ("_body", "_text")

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self._text = data.decode("utf-8", "replace")
        self._body: str | None = None
        self.name = _true_name(self._lookup("Event-Name") or "", self)

    def _lookup(self, name: str) -> str | None:
        if self._pairs is None:
            quoted = json.dumps(name)
            found = self._text.find(quoted + ':"')
            if found >= 0:
                value = _json_string_at(self._text, found + len(quoted) + 2)
                if value is not None:
                    return value
            elif quoted not in self._text:
                return None
        return self.headers.get(name)

    def _parse_pairs(self) -> list[tuple[str, str]]:
        try:
            raw = json.loads(self._text, object_pairs_hook=list)
        except ValueError as exc:
            raise ProtocolError(f"malformed JSON event: {exc}") from None
        if not isinstance(raw, list):
            raise ProtocolError("a JSON event must be an object")
        pairs: list[tuple[str, str]] = []
        self._body = ""
        for name, value in raw:
            if name == "_body":
                self._body = value if isinstance(value, str) else json.dumps(value)
            elif name == "Content-Length":
                continue  # frames the body; not an event header
            elif isinstance(value, list):  # array headers
                pairs.extend((name, str(item)) for item in value)
            else:
                pairs.append((name, value if isinstance(value, str) else str(value)))
        return pairs

    @property
    def body(self) -> str:
        if self._body is None:
            found = self._text.rfind('"_body":"')
            value = _json_string_at(self._text, found + 9) if found >= 0 else None
            if value is not None:
                self._body = value
            elif '"_body"' in self._text:
                self.items()  # unusual layout: the full parse finds it
            else:
                self._body = ""
        return self._body or ""
