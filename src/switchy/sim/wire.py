"""The simulator's side of the ESL wire format, sans-I/O.

Everything here turns values into the exact bytes FreeSWITCH 1.10.12 puts on an
event socket, or client bytes into the packets FreeSWITCH would see
(ESL_PROTOCOL.md §1 and §3). Nothing touches a socket.

Text crosses the wire as C strings of arbitrary bytes. The simulator holds it as
``str`` decoded with UTF-8 and ``surrogateescape``, so any byte a client sends
comes back out unchanged (:func:`to_bytes` / :func:`from_bytes`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from switchy.errors import ProtocolError
from switchy.sim.events import HeaderRun, SimEvent
from switchy.sim.plain import from_bytes, plain_lines, to_bytes, url_encode

__all__ = [
    "GOODBYE",
    "GREETING",
    "LOST_EVENTS",
    "MAX_CONTENT_LENGTH",
    "MAX_HEADER_BLOCK",
    "REPLY_MAX",
    "SHUTDOWN",
    "EventFormat",
    "Packet",
    "PacketReader",
    "add_header",
    "api_response",
    "c_atoi",
    "command_reply",
    "disconnect_notice",
    "event_frame",
    "event_frames",
    "from_bytes",
    "linger_notice",
    "raw_command_reply",
    "rude_rejection",
    "serialize_json",
    "serialize_plain",
    "serialize_xml",
    "strip_cr",
    "to_bytes",
    "truncate",
    "url_encode",
]

EventFormat = Literal["plain", "json", "xml"]

#: Sent as soon as a client connects (and passes the ACL).
GREETING = b"Content-Type: auth/request\n\n"

#: Body of the disconnect notice of a normal close (67 bytes).
GOODBYE = "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
#: Body of the notice every listener gets when the module unloads or the switch stops.
SHUTDOWN = "The system is being shut down.\n"
#: Body of the notice a listener gets when it lost too many events.
LOST_EVENTS = "killed listener because of lost events\n"

#: A client header block is force-terminated at this size (``read_packet`` max_len).
MAX_HEADER_BLOCK = 10_485_760
#: A larger client Content-Length drops the connection (newer FreeSWITCH; see PacketReader).
MAX_CONTENT_LENGTH = 16 * 1024 * 1024
#: Replies are built with snprintf into ``char reply[512]``.
REPLY_MAX = 511

_REJECTION = "Access Denied, go away.\n"


def truncate(data: bytes, size: int) -> bytes:
    """What ``snprintf`` into a buffer of ``size + 1`` bytes keeps of ``data``."""
    return data[:size]


def strip_cr(text: str) -> str:
    """FreeSWITCH's ``strip_cr``: cut at the first CR anywhere, else at the first LF."""
    cut = text.find("\r")
    if cut < 0:
        cut = text.find("\n")
    return text if cut < 0 else text[:cut]


_INT32 = 1 << 32
_LONG_MIN, _LONG_MAX = -(1 << 63), (1 << 63) - 1
_ATOI = re.compile(r"[ \t\n\v\f\r]*([+-]?[0-9]+)")


def c_atoi(text: str) -> int:
    """glibc ``atoi``: leading digits, 0 if none; overflow saturates, then wraps to int."""
    match = _ATOI.match(text)
    if match is None:
        return 0
    value = max(_LONG_MIN, min(_LONG_MAX, int(match.group(1))))
    return (value + (1 << 31)) % _INT32 - (1 << 31)


# -- event serialisation -------------------------------------------------------------


Encoder = Callable[[Sequence[tuple[str, str]]], bytes]


def _encoded_headers(
    event: SimEvent, fmt: str, encode: Encoder, encode_run: Encoder, sep: bytes
) -> bytes:
    """``encode`` of the event's headers, reusing each :class:`HeaderRun`'s encoding
    (made by ``encode_run``).

    Encodings of consecutive stretches are joined with ``sep``.
    """
    parts = event.parts
    if parts is not None:
        # An empty part encodes to nothing, and takes no separator.
        encoded = [_encoded_part(part, fmt, encode, encode_run) for part in parts]
        return sep.join([chunk for chunk in encoded if chunk])
    headers = event.headers
    encoded_parts: list[bytes] = []
    position = 0
    for start, run in event.runs:
        size = len(run.headers)
        if size == 0:
            continue
        in_place = (
            start >= position
            and start + size <= len(headers)
            and headers[start] is run.headers[0]
            and headers[start + size - 1] is run.headers[-1]
        )
        if not in_place:  # the headers were rearranged since: encode them all
            return encode(headers)
        if start > position:
            encoded_parts.append(encode(headers[position:start]))
        encoded_parts.append(_run_encoding(run, fmt, encode_run))
        position = start + size
    if not encoded_parts:
        return encode(headers)
    if position < len(headers):
        encoded_parts.append(encode(headers[position:]))
    return sep.join(encoded_parts)


def _encoded_part(
    part: list[tuple[str, str]] | HeaderRun, fmt: str, encode: Encoder, encode_run: Encoder
) -> bytes:
    if isinstance(part, HeaderRun):
        return _run_encoding(part, fmt, encode_run)
    return encode(part)


def _run_encoding(run: HeaderRun, fmt: str, encode_run: Encoder) -> bytes:
    encoded = run.encoded.get(fmt)
    if encoded is None:
        encoded = run.encoded[fmt] = encode_run(run.headers)
    return encoded


def serialize_plain(event: SimEvent) -> bytes:
    """``switch_event_serialize(..., encode=TRUE)``: the text/event-plain payload."""
    parts = event.parts
    if parts is None:
        head = _encoded_headers(event, "plain", plain_lines, plain_lines, b"")
    else:
        # _encoded_headers, unrolled for the common case: runs made with their
        # plain encoding, short lists of headers between them.
        chunks = []
        for part in parts:
            if isinstance(part, HeaderRun):
                encoded = part.encoded.get("plain")
                if encoded is None:
                    encoded = part.encoded["plain"] = plain_lines(part.headers)
                chunks.append(encoded)
            else:
                chunks.append(plain_lines(part))
        head = b"".join(chunks)
    if not event.body:
        return head + b"\n"
    body = to_bytes(event.body)
    return b"%sContent-Length: %d\n\n%s" % (head, len(body), body)


# cJSON's print_string_ptr: these short escapes, \u00xx (lowercase hex) for the
# other control characters; '/' and non-ASCII are emitted raw.
_JSON_ESCAPES: dict[int, str] = {code: f"\\u{code:04x}" for code in range(0x20)}
_JSON_ESCAPES.update(
    {
        ord('"'): '\\"',
        ord("\\"): "\\\\",
        ord("\b"): "\\b",
        ord("\f"): "\\f",
        ord("\n"): "\\n",
        ord("\r"): "\\r",
        ord("\t"): "\\t",
    }
)


def _json_string(text: str) -> str:
    return '"' + text.translate(_JSON_ESCAPES) + '"'


def _array_items(value: str) -> list[str] | None:
    """The items of an array header (stored as ``ARRAY::a|:b``), or None for a scalar."""
    if value.startswith("ARRAY::") and len(value) > len("ARRAY::"):
        return value[len("ARRAY::") :].split("|:")
    return None


def _json_value(value: str) -> str:
    items = _array_items(value)
    if items is None:
        return _json_string(value)
    return "[" + ",".join(_json_string(item) for item in items) + "]"


def serialize_json(event: SimEvent) -> bytes:
    """``switch_event_serialize_json``: cJSON unformatted, every value a string.

    Array headers become arrays of strings; duplicate header names give
    duplicate keys; a body, even an empty one, adds ``Content-Length`` and
    ``_body`` last.
    """
    members = _encoded_headers(event, "json", _json_members, _json_run, b",")
    parts = [members] if members else []
    if event.body is not None:
        length = len(to_bytes(event.body))
        parts.append(to_bytes(f'"Content-Length":"{length}","_body":{_json_string(event.body)}'))
    return b"{" + b",".join(parts) + b"}"


# Encoded members by header, as plain.py keeps lines.
_JSON_MEMBERS: dict[tuple[str, str], bytes] = {}
_JSON_MEMBERS_MAX = 65536


def _json_member(header: tuple[str, str]) -> bytes:
    name, value = header
    member = to_bytes(f"{_json_string(name)}:{_json_value(value)}")
    if len(_JSON_MEMBERS) >= _JSON_MEMBERS_MAX:
        _JSON_MEMBERS.clear()
    _JSON_MEMBERS[header] = member
    return member


def _json_members(headers: Sequence[tuple[str, str]]) -> bytes:
    members = _JSON_MEMBERS
    return b",".join([members.get(header) or _json_member(header) for header in headers])


def _json_run(headers: Sequence[tuple[str, str]]) -> bytes:
    try:
        return b",".join(map(_JSON_MEMBERS.__getitem__, headers))
    except KeyError:
        return _json_members(headers)


_XML_SIMPLE = re.compile(rb"[&<>\r\x80-\xff]")
_XML_RAW = frozenset(b'\n\t"')


def _xml_text(data: bytes) -> bytes:
    """Element text as ``switch_xml_ampencode`` writes it (not in an attribute).

    Besides ``& < >`` and CR, every UTF-8 sequence becomes ``&#xHEX;``; a stray
    byte that cannot start or continue a sequence is dropped, and ``<!`` turns
    escaping off for the rest of the text, as in FreeSWITCH.
    """
    if _XML_SIMPLE.search(data) is None:
        return data
    out = bytearray()
    pending = 0  # continuation bytes still expected
    code = 0
    for index, byte in enumerate(data):
        if byte in _XML_RAW:  # handled before any UTF-8 state, as in the C switch
            out.append(byte)
        elif byte == 0x26:
            out += b"&amp;"
        elif byte == 0x3C:
            if data[index + 1 : index + 2] == b"!":
                out += data[index:]
                break
            out += b"&lt;"
        elif byte == 0x3E:
            out += b"&gt;"
        elif byte == 0x0D:
            out += b"&#xD;"
        elif pending == 0 and byte >= 0x80:
            width = 1
            while width < 4 and byte >> (7 - width) & 1:
                width += 1
            code = byte & {2: 0x1F, 3: 0x0F, 4: 0x07}.get(width, 0xFF)
            pending = width - 1
        elif pending > 0:
            if byte >> 6 != 0b10:
                pending = 0
                continue
            code = code << 6 | byte & 0x3F
            pending -= 1
            if pending == 0:
                out += b"&#x%X;" % code
        else:
            out.append(byte)
    return bytes(out)


def serialize_xml(event: SimEvent) -> bytes:
    """``switch_event_xmlize`` + ``switch_xml_toxml``: the text/event-xml payload.

    Header values are URL-encoded then XML-escaped, one element per item of an
    array header; the body is XML-escaped only and, like every element whose
    text ends in a newline, gets its closing tag indented.
    """
    parts = [b"<event>\n  <headers>\n"]
    for name, value in event.headers:
        tag = to_bytes(name)
        for item in _array_items(value) or [value]:
            text = _xml_text(url_encode(item).encode("ascii"))
            parts.append(b"    <%s>%s</%s>\n" % (tag, text, tag))
    parts.append(b"  </headers>\n")
    if event.body:
        body = to_bytes(event.body)
        text = _xml_text(body)
        indent = b"  " if text.endswith(b"\n") else b""
        parts.append(b"  <Content-Length>%d</Content-Length>\n" % len(body))
        parts.append(b"  <body>%s%s</body>\n" % (text, indent))
    parts.append(b"</event>\n")
    return b"".join(parts)


_SERIALIZERS = {"plain": serialize_plain, "json": serialize_json, "xml": serialize_xml}


def event_frame(event: SimEvent, fmt: EventFormat) -> bytes:
    """One event frame: ``Content-Length`` first, then ``Content-Type``, then the payload."""
    return event_frames([event], fmt)


def event_frames(events: Iterable[SimEvent], fmt: EventFormat) -> bytes:
    """The frames of ``events``, one after the other (as :func:`event_frame` makes each)."""
    serialize = _SERIALIZERS[fmt]
    content_type = _CONTENT_TYPES[fmt]
    chunks: list[bytes] = []
    for event in events:
        payload = serialize(event)
        # The frame's head and payload joined once, with the other frames.
        chunks += (b"Content-Length: %d\n%s" % (len(payload), content_type), payload)
    return b"".join(chunks)


_CONTENT_TYPES = {fmt: b"Content-Type: text/event-%s\n\n" % fmt.encode() for fmt in _SERIALIZERS}


# -- replies and notices -------------------------------------------------------------


def command_reply(text: str) -> bytes:
    """``command/reply`` with ``Reply-Text``, truncated to 511 bytes as FreeSWITCH does."""
    reply = truncate(to_bytes(text), REPLY_MAX)
    return b"Content-Type: command/reply\nReply-Text: %s\n\n" % reply


def raw_command_reply(header_block: str) -> bytes:
    """A ``~`` reply: ``header_block`` is every header line after Content-Type.

    FreeSWITCH builds it as ``~<header_block>`` in the 512-byte reply buffer, so
    the block is cut to 510 bytes, even if that loses its final blank line.
    """
    return b"Content-Type: command/reply\n" + truncate(to_bytes(header_block), REPLY_MAX - 1)


def api_response(body: bytes) -> bytes:
    """``api/response`` carrying ``body``."""
    return b"Content-Type: api/response\nContent-Length: %d\n\n%s" % (len(body), body)


def disconnect_notice(message: str = GOODBYE, session_uuid: str | None = None) -> bytes:
    """``text/disconnect-notice``; the session-bound form when ``session_uuid`` is given."""
    body = to_bytes(message)
    if session_uuid is None:
        head = b"Content-Type: text/disconnect-notice\nContent-Length: %d\n\n" % len(body)
    else:
        head = (
            b"Content-Type: text/disconnect-notice\nControlled-Session-UUID: %s\n"
            b"Content-Disposition: disconnect\nContent-Length: %d\n\n"
            % (to_bytes(session_uuid), len(body))
        )
    return head + body


def linger_notice(session_uuid: str, channel_name: str, linger_time: int) -> bytes:
    """The notice a lingering session socket gets when its channel hangs up."""
    return (
        b"Content-Type: text/disconnect-notice\nControlled-Session-UUID: %s\n"
        b"Content-Disposition: linger\nChannel-Name: %s\nLinger-Time: %d\n"
        b"Content-Length: 0\n\n" % (to_bytes(session_uuid), to_bytes(channel_name), linger_time)
    )


def rude_rejection() -> bytes:
    """What a client the ACL refuses gets (the goodbye notice follows it)."""
    body = _REJECTION.encode("ascii")
    return b"Content-Type: text/rude-rejection\nContent-Length: %d\n\n%s" % (len(body), body)


# -- client packets ------------------------------------------------------------------


@dataclass(slots=True)
class Packet:
    """One client packet as FreeSWITCH parses it into a ``CLONE`` event.

    ``headers`` holds ``Command`` (the *entire* raw header block) first, then the
    ``Name: value`` lines, in order, duplicates kept. ``body`` is the last
    Content-Length body read, cut at its first NUL, or None.
    """

    headers: list[tuple[str, str]]
    body: str | None = None

    def get(self, name: str) -> str | None:
        """First value of header ``name``, compared case-insensitively like FreeSWITCH."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None

    @property
    def command(self) -> str | None:
        """The ``Command`` header; None when a client header line deleted it."""
        return self.get("Command")


class PacketReader:
    """Incremental reader of client→server packets, exactly per ``read_packet``.

    :meth:`feed` buffers bytes; :meth:`next_packet` returns the next complete
    packet. Leading CR/LF bytes are skipped. A header block ends at two LFs with
    only CRs between them, or is force-terminated at ``max_header_block`` bytes.
    Each ``Content-Length`` header with a positive value (``atoi``) makes the
    reader take that many raw bytes as the body right after the block.

    A Content-Length above ``max_content_length`` makes :meth:`next_packet`
    raise :class:`ProtocolError`: the connection must be dropped without a
    reply. That is the newer FreeSWITCH behaviour; 1.10.12 would try to
    allocate and read it all.
    """

    __slots__ = ("_buffer", "_max_body", "_max_head", "_pending", "_scan")

    def __init__(
        self,
        *,
        max_header_block: int = MAX_HEADER_BLOCK,
        max_content_length: int = MAX_CONTENT_LENGTH,
    ) -> None:
        self._buffer = bytearray()
        self._max_head = max_header_block
        self._max_body = max_content_length
        self._scan = 0  # where the search for the end of the block resumes
        # A parsed header block waiting for its body bytes: (packet, body lengths).
        self._pending: tuple[Packet, list[int]] | None = None

    @property
    def partial(self) -> bool:
        """True while bytes of a packet are buffered (FreeSWITCH sends no events then)."""
        return bool(self._buffer) or self._pending is not None

    def feed(self, data: bytes) -> None:
        """Buffer ``data`` received from the client."""
        self._buffer += data
        if self._pending is None:
            self._skip_blank_lines()

    def next_packet(self) -> Packet | None:
        """The next complete packet, or None until more bytes arrive."""
        if self._pending is None:
            block = self._take_block()
            if block is None:
                return None
            packet, lengths = _parse_block(block)
            if any(length > self._max_body for length in lengths):
                raise ProtocolError(f"Content-Length above {self._max_body} bytes")
            self._pending = (packet, lengths)
        packet, lengths = self._pending
        needed = sum(lengths)
        if len(self._buffer) < needed:
            return None
        if lengths:
            body = bytes(self._buffer[needed - lengths[-1] : needed])
            packet.body = from_bytes(body.split(b"\0", 1)[0])
            del self._buffer[:needed]
        self._pending = None
        self._skip_blank_lines()
        return packet

    def _skip_blank_lines(self) -> None:
        buffer = self._buffer
        start = 0
        while start < len(buffer) and buffer[start] in (10, 13):
            start += 1
        if start:
            del buffer[:start]
            self._scan = 0

    def _take_block(self) -> bytes | None:
        """Remove and return one complete header block, or None if none is complete."""
        buffer = self._buffer
        scan = self._scan
        end = -1
        while True:
            newline = buffer.find(b"\n", scan, self._max_head)
            if newline < 0:
                scan = max(scan, min(len(buffer), self._max_head))
                break
            after = newline + 1
            while after < len(buffer) and buffer[after] == 13:
                after += 1
            if after == len(buffer):
                scan = newline  # a CR run may still end in the LF that closes the block
                break
            if buffer[after] == 10:
                end = after + 1
                break
            scan = after
        if end < 0 or end > self._max_head:
            if len(buffer) < self._max_head:
                self._scan = scan
                return None
            end = self._max_head
        block = bytes(buffer[:end])
        del buffer[:end]
        self._scan = 0
        return block


def _parse_block(block: bytes) -> tuple[Packet, list[int]]:
    """Split a header block into a packet and the body lengths it announces."""
    # FreeSWITCH handles the block as a C string.
    block = block.split(b"\0", 1)[0]
    packet = Packet([])
    if block:
        packet.headers.append(("Command", from_bytes(block)))
    lengths: list[int] = []
    cursor: int | None = 0
    first = True
    while cursor is not None:
        # The line ends at the first CR of the *rest of the block*, else the first
        # LF: with mixed line endings, several lines merge into one.
        cut = block.find(b"\r", cursor)
        if cut < 0:
            cut = block.find(b"\n", cursor)
        line = block[cursor : cut if cut >= 0 else len(block)]
        if cut < 0:
            next_cursor = None
        else:
            next_cursor = cut
            while next_cursor < len(block) and block[next_cursor] in (10, 13):
                next_cursor += 1
        if not first and line:
            name, colon, value = line.partition(b":")
            if colon:
                add_header(packet.headers, from_bytes(name), from_bytes(value.lstrip(b" ")))
                if name.lower() == b"content-length":
                    length = c_atoi(from_bytes(value.lstrip(b" ")))
                    if length > 0:
                        lengths.append(length)
        first = False
        cursor = next_cursor
    return packet, lengths


def add_header(headers: list[tuple[str, str]], name: str, value: str) -> None:
    """``switch_event_add_header_string`` on a CLONE event: an empty value deletes."""
    if value:
        headers.append((name, value))
    else:
        lowered = name.lower()
        headers[:] = [(key, val) for key, val in headers if key.lower() != lowered]
