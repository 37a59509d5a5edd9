"""The simulator's wire format against ESL_PROTOCOL.md and the recorded traces."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote_to_bytes

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from switchy.errors import ProtocolError
from switchy.esl.protocol import Frame, Parser
from switchy.sim import wire
from switchy.sim.events import SimEvent

TRACES = Path(__file__).resolve().parents[1] / "data" / "traces"


def server_frames(trace: str) -> list[Frame]:
    """Every frame the real server sent in ``trace``."""
    rows = [json.loads(line) for line in (TRACES / trace).read_text().splitlines()]
    data = "".join(row["data"] for row in rows if row["dir"] == "S").encode("latin-1")
    return Parser().feed(data)


def packets(data: bytes, **limits: int) -> list[wire.Packet]:
    reader = wire.PacketReader(**limits)
    reader.feed(data)
    return list(iter(reader.next_packet, None))


def bgapi_event(body: str | None = "hello world") -> SimEvent:
    """The BACKGROUND_JOB of ESL_PROTOCOL.md §4."""
    return SimEvent(
        "BACKGROUND_JOB",
        [
            ("Event-Name", "BACKGROUND_JOB"),
            ("Core-UUID", "5a7e77c8-14de-4698-b2fd-0c8940a60d4b"),
            ("FreeSWITCH-Hostname", "vm"),
            ("FreeSWITCH-Switchname", "vm"),
            ("FreeSWITCH-IPv4", "192.0.2.2"),
            ("FreeSWITCH-IPv6", "fd00::2"),
            ("Event-Date-Local", "2026-11-26 22:30:45"),
            ("Event-Date-GMT", "Thu, 26 Nov 2026 22:30:45 GMT"),
            ("Event-Date-Timestamp", "1795732245734671"),
            ("Event-Calling-File", "mod_event_socket.c"),
            ("Event-Calling-Function", "api_exec"),
            ("Event-Calling-Line-Number", "1572"),
            ("Event-Sequence", "425"),
            ("Job-UUID", "my-own-job-id-0123456789-0123456789-XYZ"),
            ("Job-Command", "echo"),
            ("Job-Command-Arg", "hello world"),
        ],
        body,
    )


# -- URL encoding ---------------------------------------------------------------------


def test_url_encode_matches_the_live_example() -> None:
    raw = "50% off %41%4a %zz é+&:\"'/,;=?@[]^`{|}~\x7f"
    assert wire.url_encode(raw) == (
        "50%25%20off%20%41%254a%20%25zz%20%C3%A9%2B%26%3A%22'/,%3B%3D%3F%40%5B%5D%5E%60%7B%7C%7D~%7F"
    )


def test_url_encode_keeps_only_the_safe_set() -> None:
    safe = "AZaz09!$'()*,-./_~"
    assert wire.url_encode(safe) == safe
    assert wire.url_encode("\r\n \t\x00\x1f") == "%0D%0A%20%09%00%1F"


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        ("%41", "%41"),  # uppercase hex pair: copied
        ("%4a", "%254a"),  # lowercase: encoded
        ("%4", "%254"),  # too short
        ("%", "%25"),
        ("%%41", "%25%41"),
        ("100%FF", "100%FF"),
    ],
)
def test_url_encode_passes_uppercase_percent_pairs_through(raw: str, encoded: str) -> None:
    assert wire.url_encode(raw) == encoded


def test_url_encode_restores_raw_client_bytes() -> None:
    assert wire.url_encode(wire.from_bytes(b"\xff\xfe")) == "%FF%FE"


# -- plain, JSON and XML events ---------------------------------------------------------


def test_plain_event_matches_the_documented_background_job() -> None:
    frame = wire.event_frame(bgapi_event(), "plain")
    head, _, payload = frame.partition(b"\n\n")
    assert head == b"Content-Length: 578\nContent-Type: text/event-plain"
    assert payload.startswith(b"Event-Name: BACKGROUND_JOB\nCore-UUID: 5a7e")
    assert b"FreeSWITCH-IPv6: fd00%3A%3A2\n" in payload
    assert b"Event-Date-GMT: Thu,%2026%20Nov%202026%2022%3A30%3A45%20GMT\n" in payload
    assert payload.endswith(b"Job-Command-Arg: hello%20world\nContent-Length: 11\n\nhello world")


def test_plain_event_without_body_ends_with_a_blank_line() -> None:
    for body in (None, ""):
        event = SimEvent("X", [("Event-Name", "X"), ("Empty", "")], body)
        assert wire.serialize_plain(event) == b"Event-Name: X\nEmpty: _undef_\n\n"


def test_plain_body_length_counts_bytes() -> None:
    payload = wire.serialize_plain(SimEvent("X", [("A", "b")], "é\n"))
    assert payload == b"A: b\nContent-Length: 3\n\n\xc3\xa9\n"


def test_json_escapes_like_cjson() -> None:
    event = SimEvent("X", [("K\n", 'q"b\\s/\b\f\n\r\t\x01\x1fé\x7f')], None)
    assert wire.serialize_json(event) == (
        b'{"K\\n":"q\\"b\\\\s/\\b\\f\\n\\r\\t\\u0001\\u001f\xc3\xa9\x7f"}'
    )


def test_json_keeps_duplicates_arrays_and_an_empty_body() -> None:
    event = SimEvent(
        "CHANNEL_HANGUP_COMPLETE",
        [("Hangup-Cause", "NORMAL_CLEARING"), ("v", "ARRAY::a|:b"), ("Hangup-Cause", "X")],
        "",
    )
    assert wire.serialize_json(event) == (
        b'{"Hangup-Cause":"NORMAL_CLEARING","v":["a","b"],"Hangup-Cause":"X",'
        b'"Content-Length":"0","_body":""}'
    )


def test_xml_matches_the_documented_layout() -> None:
    event = SimEvent(
        "BACKGROUND_JOB",
        [("Event-Name", "BACKGROUND_JOB"), ("Job-Command-Arg", "a<b&c")],
        "a<b&c",
    )
    payload = (
        b"<event>\n  <headers>\n    <Event-Name>BACKGROUND_JOB</Event-Name>\n"
        b"    <Job-Command-Arg>a%3Cb%26c</Job-Command-Arg>\n  </headers>\n"
        b"  <Content-Length>5</Content-Length>\n  <body>a&lt;b&amp;c</body>\n</event>\n"
    )
    assert wire.event_frame(event, "xml") == (
        b"Content-Length: %d\nContent-Type: text/event-xml\n\n%s" % (len(payload), payload)
    )


def test_xml_body_escaping_and_closing_indent() -> None:
    body = wire.from_bytes("é>\r\n+OK ".encode() + b"\x80x\n")
    event = SimEvent("X", [("v", "ARRAY::a|:b")], body)
    assert wire.serialize_xml(event) == (
        b"<event>\n  <headers>\n    <v>a</v>\n    <v>b</v>\n  </headers>\n"
        b"  <Content-Length>12</Content-Length>\n"
        b"  <body>&#xE9;&gt;&#xD;\n+OK x\n  </body>\n</event>\n"
    )
    unescaped = wire.serialize_xml(SimEvent("X", [("A", "b")], "<!x&y"))
    assert b"<body><!x&y</body>" in unescaped
    assert wire.serialize_xml(SimEvent("X", [("A", "b")], None)).endswith(b"</headers>\n</event>\n")


def _decode_plain(payload: bytes) -> SimEvent:
    head, _, body = payload.partition(b"\n\n")
    headers = []
    for line in head.split(b"\n"):
        name, _, value = line.partition(b": ")
        raw = b"" if value == b"_undef_" else unquote_to_bytes(value)
        headers.append((wire.from_bytes(name), wire.from_bytes(raw)))
    if not body:
        return SimEvent(headers[0][1], headers)
    assert headers.pop()[0] == "Content-Length"
    return SimEvent(headers[0][1], headers, wire.from_bytes(body))


def _decode_json(payload: bytes) -> SimEvent:
    pairs = json.loads(payload, object_pairs_hook=list)
    body = None
    if pairs[-1][0] == "_body":
        body = pairs.pop()[1]
        pairs.pop()
    headers = [
        (name, "ARRAY::" + "|:".join(value) if isinstance(value, list) else value)
        for name, value in pairs
    ]
    return SimEvent(headers[0][1], headers, body)


@pytest.mark.parametrize("trace", sorted(path.name for path in TRACES.glob("*.jsonl")))
def test_every_recorded_event_reserializes_byte_for_byte(trace: str) -> None:
    events = [frame for frame in server_frames(trace) if frame.is_event]
    for frame in events:
        if frame.content_type == "text/event-plain":
            assert wire.serialize_plain(_decode_plain(frame.body)) == frame.body
        else:
            assert wire.serialize_json(_decode_json(frame.body)) == frame.body


_names = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_0123456789", min_size=1)
# Real events carry no NUL (C strings) and no lone surrogates (text, not bytes).
_values = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"))


@given(st.lists(st.tuples(_names, _values), min_size=1), st.none() | _values)
def test_events_round_trip_through_the_client_parser(
    headers: list[tuple[str, str]], body: str | None
) -> None:
    assume(all(name != "Content-Length" for name, _ in headers))
    assume(not any(value.startswith("ARRAY::") for _, value in headers))
    event = SimEvent("X", headers, body)
    (json_frame,) = Parser().feed(wire.event_frame(event, "json"))
    assert json_frame.event.items() == headers
    assert json_frame.event.body == (body or "")
    (plain_frame,) = Parser().feed(wire.event_frame(event, "plain"))
    assert plain_frame.event.body == (body or "")
    # Plain encoding passes "%XX" through, so only values without "%" come back intact.
    if not any("%" in value for _, value in headers):
        assert plain_frame.event.items() == [(name, value or "_undef_") for name, value in headers]


# -- replies and notices ------------------------------------------------------------------


def test_reply_frames() -> None:
    assert wire.command_reply("+OK accepted") == (
        b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n"
    )
    assert wire.api_response(b"-ERR no reply\n") == (
        b"Content-Type: api/response\nContent-Length: 14\n\n-ERR no reply\n"
    )
    assert wire.raw_command_reply("Reply-Text: +OK Job-UUID: j\nJob-UUID: j\n\n") == (
        b"Content-Type: command/reply\nReply-Text: +OK Job-UUID: j\nJob-UUID: j\n\n"
    )


def test_reply_text_is_cut_at_511_bytes() -> None:
    frame = wire.command_reply("x" * 600)
    assert frame == b"Content-Type: command/reply\nReply-Text: " + b"x" * 511 + b"\n\n"
    raw = wire.raw_command_reply("Reply-Text: " + "y" * 600)
    assert len(raw) == len(b"Content-Type: command/reply\n") + 510


def test_notices() -> None:
    goodbye = wire.disconnect_notice()
    assert goodbye == (
        b"Content-Type: text/disconnect-notice\nContent-Length: 67\n\n"
        b"Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
    )
    assert len(wire.GOODBYE) == 67
    assert wire.disconnect_notice(wire.SHUTDOWN, "u-1") == (
        b"Content-Type: text/disconnect-notice\nControlled-Session-UUID: u-1\n"
        b"Content-Disposition: disconnect\nContent-Length: 31\n\nThe system is being shut down.\n"
    )
    assert wire.linger_notice("u-1", "sofia/external/1000", -1) == (
        b"Content-Type: text/disconnect-notice\nControlled-Session-UUID: u-1\n"
        b"Content-Disposition: linger\nChannel-Name: sofia/external/1000\nLinger-Time: -1\n"
        b"Content-Length: 0\n\n"
    )
    assert wire.rude_rejection() == (
        b"Content-Type: text/rude-rejection\nContent-Length: 24\n\nAccess Denied, go away.\n"
    )


def test_reply_frames_parse_with_the_client_parser() -> None:
    data = (
        wire.GREETING
        + wire.command_reply("+OK bye")
        + wire.api_response(b"+OK\n")
        + wire.linger_notice("u", "n", 5)
        + wire.disconnect_notice()
    )
    frames = Parser().feed(data)
    assert [frame.content_type for frame in frames] == [
        "auth/request",
        "command/reply",
        "api/response",
        "text/disconnect-notice",
        "text/disconnect-notice",
    ]
    assert frames[2].body == b"+OK\n"
    assert frames[4].text == wire.GOODBYE


# -- client packets -----------------------------------------------------------------------


def test_strip_cr_and_atoi() -> None:
    assert wire.strip_cr("a\nb\rc") == "a\nb"
    assert wire.strip_cr("a\nb") == "a"
    assert wire.strip_cr("ab") == "ab"
    assert wire.c_atoi(" \t+12abc") == 12
    assert wire.c_atoi("-3") == -3
    assert wire.c_atoi("x1") == 0
    assert wire.c_atoi("4294967306") == 10  # wraps like glibc's (int) strtol
    assert wire.c_atoi("99999999999999999999") == -1


def test_a_lone_cr_truncates_the_command() -> None:
    (packet,) = packets(b"api echo x\rb\n\n")
    assert packet.command == "api echo x\rb\n\n"
    assert wire.strip_cr(packet.command) == "api echo x"


def test_mixed_line_endings_reattach_a_header_to_the_command() -> None:
    (packet,) = packets(b"api echo mixed\nJob-UUID: q\r\n\r\n")
    assert packet.headers == [("Command", "api echo mixed\nJob-UUID: q\r\n\r\n")]
    assert wire.strip_cr(packet.command or "") == "api echo mixed\nJob-UUID: q"


def test_a_cr_later_in_the_block_merges_lines() -> None:
    (packet,) = packets(b"a\nB: 1\r\nC: 2\n\n")
    assert packet.headers[1:] == [("C", "2")]


@pytest.mark.parametrize(
    ("ending", "line"),
    [
        (b"\n\n", "auth ClueCon"),
        (b"\r\n\r\n", "auth ClueCon"),
        # Framing accepts these, but strip_cr then cuts at the CR, keeping the LF.
        (b"\n\r\n", "auth ClueCon\n"),
        (b"\n\r\r\n", "auth ClueCon\n"),
    ],
)
def test_packet_endings(ending: bytes, line: str) -> None:
    (packet,) = packets(b"\r\n\n\rauth ClueCon" + ending)
    assert packet.command == "auth ClueCon" + wire.from_bytes(ending)
    assert wire.strip_cr(packet.command) == line


def test_header_lines() -> None:
    (packet,) = packets(
        b"sendevent X\nA: 1\n A: 2\nB:\t x\nno colon\nA: 3\nC: gone\nc:\nD:  spaced \n\n"
    )
    assert packet.headers[1:] == [
        ("A", "1"),
        (" A", "2"),
        ("B", "\t x"),
        ("A", "3"),
        ("D", "spaced "),
    ]
    assert packet.get("a") == "1"


def test_an_empty_command_header_line_deletes_the_command() -> None:
    (packet,) = packets(b"api status\nCommand:\n\n")
    assert packet.command is None


def test_bodies() -> None:
    (packet,) = packets(b"sendevent X\ncontent-length: 5\n\nab\n\ncrest")
    assert packet.body == "ab\n\nc"
    assert packet.headers[1:] == [("content-length", "5")]
    (packet,) = packets(b"sendmsg\nContent-Length: 3\n\na\x00b")
    assert packet.body == "a"
    (packet,) = packets(b"sendmsg\nContent-Length: -4\n\n")
    assert packet.body is None
    first, second = packets(b"x\nContent-Length: 2\nContent-Length: 1\n\nabcnext\n\n")
    assert first.body == "c"
    assert second.command == "next\n\n"


def test_a_nul_ends_the_header_block_text() -> None:
    (packet,) = packets(b"api echo a\x00b\nX: 1\n\n")
    assert packet.headers == [("Command", "api echo a")]


def test_byte_by_byte_feeding_gives_the_same_packets() -> None:
    data = b"\r\nauth x\n\napi echo 1\nContent-Length: 4\n\n\n\nabevent plain ALL\r\n\r\n"
    reader = wire.PacketReader()
    fed: list[wire.Packet] = []
    for index in range(len(data)):
        reader.feed(data[index : index + 1])
        fed.extend(iter(reader.next_packet, None))
    assert fed == packets(data)
    assert [wire.strip_cr(p.command or "") for p in fed] == [
        "auth x",
        "api echo 1",
        "event plain ALL",
    ]
    assert not reader.partial


def test_partial_packets_are_reported() -> None:
    reader = wire.PacketReader()
    states = []
    for chunk in (b"\r\n", b"api st", b"atus\n\n"):
        reader.feed(chunk)
        packet = reader.next_packet()
        states.append((reader.partial, packet is not None))
    assert states == [(False, False), (True, False), (False, True)]


def test_header_block_is_force_terminated_at_the_cap() -> None:
    first, second = packets(b"api echo " + b"x" * 20 + b"\n\n", max_header_block=16)
    assert first.command == "api echo xxxxxxx"
    assert second.command == "xxxxxxxxxxxxx\n\n"


def test_oversized_content_length_fails_after_earlier_packets() -> None:
    reader = wire.PacketReader(max_content_length=10)
    reader.feed(b"api status\n\nsendevent X\nContent-Length: 11\n\n")
    first = reader.next_packet()
    assert first is not None
    assert first.command == "api status\n\n"
    with pytest.raises(ProtocolError):
        reader.next_packet()
