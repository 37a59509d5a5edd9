"""The sans-I/O frame parser against every recorded frame, and its edge cases."""

from __future__ import annotations

import contextlib
import itertools
import json
import random
from pathlib import Path
from urllib.parse import unquote_to_bytes

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switchy.errors import ProtocolError
from switchy.esl.protocol import Event, Frame, JsonEvent, Parser, PlainEvent, _unquote

TRACES = Path(__file__).resolve().parent.parent / "data" / "traces"
TRACE_NAMES = sorted(path.stem for path in TRACES.glob("*.jsonl"))


def server_chunks(name: str) -> list[bytes]:
    """The server's bytes of one trace, split exactly as TCP delivered them."""
    rows = [json.loads(line) for line in (TRACES / f"{name}.jsonl").read_text().splitlines()]
    return [row["data"].encode("latin-1") for row in rows if row["dir"] == "S" and row["data"]]


def reference_frames(stream: bytes) -> list[tuple[bytes, bytes]]:
    """(header block, body) of every frame, split by the simplest possible rule."""
    frames = []
    position = 0
    while position < len(stream):
        end = stream.index(b"\n\n", position)
        head = stream[position:end]
        length = 0
        for line in head.split(b"\n"):
            if line.startswith(b"Content-Length: "):
                length = int(line.split(b": ")[1])
        frames.append((head, stream[end + 2 : end + 2 + length]))
        position = end + 2 + length
    return frames


def reference_headers(body: bytes) -> list[tuple[str, str]]:
    """Every header of a plain event, decoded line by line."""
    head = body.split(b"\n\n", 1)[0]
    pairs = []
    for line in head.split(b"\n"):
        name, value = line.split(b": ", 1)
        pairs.append((name.decode(), unquote_to_bytes(value).decode("utf-8", "replace")))
    if b"\n\n" in body.rstrip(b"\n") and pairs[-1][0] == "Content-Length":
        pairs.pop()
    return pairs


def parse_all(chunks: list[bytes]) -> list[Frame]:
    parser = Parser()
    frames = [frame for chunk in chunks for frame in parser.feed(chunk)]
    assert parser.buffered == 0
    return frames


def frame_key(frame: Frame) -> tuple[str, dict[str, str], bytes]:
    return frame.content_type, frame.headers, frame.body


@pytest.mark.parametrize("name", TRACE_NAMES)
def test_every_recorded_frame_is_reproduced(name: str) -> None:
    chunks = server_chunks(name)
    stream = b"".join(chunks)
    frames = parse_all(chunks)
    expected = reference_frames(stream)
    assert len(frames) == len(expected)
    for frame, (head, body) in zip(frames, expected, strict=True):
        assert frame.body == body
        assert "\n".join(f"{k}: {v}" for k, v in frame.headers.items()).encode() == head
    # Any other chunking gives the same frames: whole, byte by byte, random cuts.
    keys = [frame_key(frame) for frame in frames]
    assert [frame_key(f) for f in parse_all([stream])] == keys
    assert [frame_key(f) for f in parse_all([stream[i : i + 1] for i in range(len(stream))])] == (
        keys
    )
    cuts = sorted(random.Random(name).sample(range(1, len(stream)), min(200, len(stream) - 1)))
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    assert [frame_key(f) for f in parse_all(pieces)] == keys


@pytest.mark.parametrize("name", TRACE_NAMES)
def test_every_recorded_event_decodes_like_a_line_by_line_parser(name: str) -> None:
    for frame in parse_all(server_chunks(name)):
        if frame.content_type != "text/event-plain":
            continue
        event = frame.event
        expected = reference_headers(frame.body)
        assert event.items() == expected
        first = {}
        for key, value in expected:
            first.setdefault(key, value)
        # Lazy lookups agree with the full map, header by header.
        lazy = PlainEvent(frame.body)
        for key, value in first.items():
            assert lazy.get(key) == value, key
        names = [value for key, value in expected if key == "Event-Name"]
        assert lazy.name == (names[-1] if names[0] == "COMMAND" else names[0])
        assert lazy.uuid == first.get("Unique-ID")
        assert lazy.job_uuid == first.get("Job-UUID")
        assert lazy.get("No-Such-Header") is None


def test_plain_and_json_traces_carry_the_same_event_types() -> None:
    def names(trace: str) -> list[str]:
        return [f.event.name for f in parse_all(server_chunks(trace)) if f.is_event]

    def channel_events(trace: str) -> list[str]:
        return [name for name in names(trace) if name.startswith("CHANNEL_")]

    plain = channel_events("03_call_lifecycle_plain")
    assert plain == channel_events("03_call_lifecycle_json")
    for frame in parse_all(server_chunks("03_call_lifecycle_json")):
        if frame.is_event:
            event = frame.event
            assert isinstance(event, JsonEvent)
            assert event.name and event["Core-UUID"] == event.headers["Core-UUID"]


def test_background_job_body_and_headers() -> None:
    jobs = [
        f.event
        for f in parse_all(server_chunks("03_call_lifecycle_plain"))
        if f.is_event and f.event.name == "BACKGROUND_JOB"
    ]
    job = jobs[0]
    assert job.body.startswith("+OK ")
    assert job.job_uuid == job["Job-UUID"]
    assert job["Job-Command"] == "originate"
    assert "Content-Length" not in job.headers  # frames the body: not an event header
    assert job.get("Job-Command-Arg", "").startswith("{origination_uuid=")


def test_hangup_complete_keeps_both_hangup_causes() -> None:
    events = [f.event for f in parse_all(server_chunks("03_call_lifecycle_plain")) if f.is_event]
    complete = next(e for e in events if e.name == "CHANNEL_HANGUP_COMPLETE")
    assert complete.get_all("Hangup-Cause") == ["NORMAL_CLEARING", "NORMAL_CLEARING"]
    assert complete["Hangup-Cause"] == "NORMAL_CLEARING"


def test_timestamp_is_event_date_timestamp_in_seconds() -> None:
    events = [f.event for f in parse_all(server_chunks("03_call_lifecycle_plain")) if f.is_event]
    for event in events:
        assert event.timestamp == int(event["Event-Date-Timestamp"]) / 1e6
    stamp = '{"Event-Name": "X", "Event-Date-Timestamp": "1700000000123456"}'
    assert JsonEvent(stamp.encode()).timestamp == 1700000000.123456
    assert PlainEvent(plain_event("Event-Name: X")).timestamp is None
    assert PlainEvent(plain_event("Event-Name: X", "Event-Date-Timestamp: soon")).timestamp is None


def test_custom_event_subclass_is_the_first_header() -> None:
    events = [f.event for f in parse_all(server_chunks("09_bert")) if f.is_event]
    bert = next(e for e in events if e.name == "CUSTOM")
    assert bert.subclass == "mod_bert::in_sync"
    assert bert.items()[0] == ("Event-Subclass", "mod_bert::in_sync")


def plain_event(*lines: str, body: bytes = b"") -> bytes:
    data = "".join(f"{line}\n" for line in lines).encode()
    if body:
        return data + b"Content-Length: %d\n\n" % len(body) + body
    return data + b"\n"


def event_frame(data: bytes) -> bytes:
    return b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(data) + data


def test_an_encoded_newline_can_never_forge_a_header() -> None:
    data = plain_event(
        "Event-Name: CUSTOM",
        "variable_evil: x%0AUnique-ID: forged%0A%0AJob-UUID: forged",
        "Unique-ID: real",
    )
    (frame,) = Parser().feed(event_frame(data))
    event = frame.event
    assert event.uuid == "real"
    assert event.job_uuid is None
    assert event["variable_evil"] == "x\nUnique-ID: forged\n\nJob-UUID: forged"
    assert event.headers["Unique-ID"] == "real"
    assert len(event.items()) == 3


def test_headers_in_the_body_are_not_headers() -> None:
    body = b"Unique-ID: forged\nJob-UUID: forged\n\nEvent-Name: FORGED\n"
    data = plain_event("Event-Name: BACKGROUND_JOB", "Job-Command: echo", body=body)
    event = PlainEvent(data)
    assert (event.name, event.uuid, event.job_uuid) == ("BACKGROUND_JOB", None, None)
    assert event.get("Unique-ID") is None
    assert event.body == body.decode()
    assert event.items() == [("Event-Name", "BACKGROUND_JOB"), ("Job-Command", "echo")]
    headless = PlainEvent(b"Content-Length: 14\n\nUnique-ID: x\n\n")
    assert headless.uuid is None and headless.items() == []
    assert headless.body == "Unique-ID: x\n\n"


def test_invalid_utf8_decodes_with_replacement() -> None:
    event = PlainEvent(plain_event("Event-Name: X", "Caller-Caller-ID-Name: %C3%28%FF ok"))
    assert event["Caller-Caller-ID-Name"] == "\ufffd(\ufffd ok"
    assert event.headers["Caller-Caller-ID-Name"] == "\ufffd(\ufffd ok"
    raw = PlainEvent(b"Event-Name: X\nRaw: \xff\xfe\n\n")
    assert raw["Raw"] == "\ufffd\ufffd"


def test_percent_decoding_matches_freeswitch_encoding() -> None:
    # ESL_PROTOCOL.md §3.1's verified example, decoded back.
    encoded = (
        "50%25%20off%20%41%254a%20%25zz%20%C3%A9"
        "%2B%26%3A%22'/,%3B%3D%3F%40%5B%5D%5E%60%7B%7C%7D~%7F"
    )
    event = PlainEvent(plain_event("Event-Name: X", f"V: {encoded}"))
    assert event["V"] == "50% off A%4a %zz é+&:\"'/,;=?@[]^`{|}~\x7f"


def test_json_event_lookups_and_body() -> None:
    data = json.dumps(
        {
            "Event-Name": "BACKGROUND_JOB",
            "Job-UUID": "j-1",
            "Quoted": 'say "hi"\n',
            "Content-Length": "9",
            "_body": '+OK "a"\n',
        }
    ).encode()
    event = JsonEvent(data)
    assert (event.name, event.job_uuid, event.uuid) == ("BACKGROUND_JOB", "j-1", None)
    assert event["Quoted"] == 'say "hi"\n'
    assert event.body == '+OK "a"\n'
    assert "Content-Length" not in event.headers and "_body" not in event.headers
    duplicated = JsonEvent(b'{"Event-Name":"X","H":"1","H":"2","A":["x","y"]}')
    assert duplicated.get_all("H") == ["1", "2"] and duplicated["H"] == "1"
    assert duplicated.get_all("A") == ["x", "y"]
    with pytest.raises(ProtocolError):
        JsonEvent(b'{"Event-Name": ').items()


def test_frames_without_events_say_so() -> None:
    (reply,) = Parser().feed(b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n")
    assert reply.is_reply and not reply.is_event
    assert reply.reply_text == "+OK accepted"
    with pytest.raises(ProtocolError, match="command/reply"):
        _ = reply.event


def test_every_content_type_of_the_protocol() -> None:
    stream = (
        b"Content-Type: auth/request\n\n"
        b"Content-Type: command/reply\nReply-Text: +OK Job-UUID: 1\nJob-UUID: 1\n\n"
        b"Content-Type: api/response\nContent-Length: 3\n\nok\n"
        + event_frame(plain_event("Event-Name: HEARTBEAT"))
        + b'Content-Length: 20\nContent-Type: text/event-json\n\n{"Event-Name":"API"}'
        b"Content-Type: log/data\nContent-Length: 4\nLog-Level: 7\nText-Channel: 3\n"
        b"Log-File: a.c\nLog-Func: f\nLog-Line: 1\nUser-Data: \n\nlog\n"
        b"Content-Type: text/rude-rejection\nContent-Length: 24\n\nAccess Denied, go away.\n"
        b"Content-Type: text/disconnect-notice\nContent-Length: 31\n\n"
        b"The system is being shut down.\n"
    )
    frames = Parser().feed(stream)
    assert [f.content_type for f in frames] == [
        "auth/request",
        "command/reply",
        "api/response",
        "text/event-plain",
        "text/event-json",
        "log/data",
        "text/rude-rejection",
        "text/disconnect-notice",
    ]
    assert frames[1].headers["Job-UUID"] == "1"
    assert frames[2].text == "ok\n"
    assert frames[3].event.name == "HEARTBEAT"
    assert frames[3].headers == {"Content-Length": "23", "Content-Type": "text/event-plain"}
    assert frames[4].event.name == "API"
    assert frames[5].headers["User-Data"] == "" and frames[5].body == b"log\n"
    assert frames[7].text == "The system is being shut down.\n"


def test_content_length_counts_bytes_not_characters() -> None:
    body = "é€😀".encode()
    (frame,) = Parser().feed(
        b"Content-Type: api/response\nContent-Length: %d\n\n" % len(body) + body
    )
    assert frame.text == "é€😀"


def test_stray_blank_lines_between_frames_are_skipped() -> None:
    frames = Parser().feed(b"\n\nContent-Type: auth/request\n\n\nContent-Type: auth/request\n\n")
    assert [f.content_type for f in frames] == ["auth/request", "auth/request"]


@pytest.mark.parametrize(
    ("stream", "message"),
    [
        (b"Content-Type: api/response\nContent-Length: -1\n\n", "Content-Length"),
        (b"Content-Type: api/response\nContent-Length: 1_0\n\n", "Content-Length"),
        (b"Content-Type: api/response\nContent-Length: \xd9\xa1\n\n", "Content-Length"),
        (b"Content-Length: 5\n\nhello", "Content-Type"),
        (b"Content-Type: x\ngarbage line\n\n", "malformed"),
        (b"Content-Length: x\nContent-Type: text/event-plain\n\n", "Content-Length"),
    ],
)
def test_malformed_frames_raise_protocol_error(stream: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        Parser().feed(stream)


def test_frames_larger_than_the_cap_are_refused() -> None:
    parser = Parser(max_frame_size=1024)
    with pytest.raises(ProtocolError, match="cap"):
        parser.feed(b"Content-Type: api/response\nContent-Length: 1025\n\n")
    with pytest.raises(ProtocolError, match="cap"):
        Parser(max_frame_size=1024).feed(event_frame(b"x" * 1025))
    endless = Parser(max_frame_size=1024)
    endless.feed(b"Content-Type: api/response\nX: ")
    for _ in range(15):
        endless.feed(b"y" * 64)
    with pytest.raises(ProtocolError, match="without a blank line"):
        endless.feed(b"y" * 64)
    assert endless.buffered < 2048
    huge = b"Content-Type: api/response\nContent-Length: 99999999999999999999\n\n"
    with pytest.raises(ProtocolError):
        Parser().feed(huge)


# -- property-based ----------------------------------------------------------------------

RECORDED = b"".join(server_chunks("02_api_basics") + server_chunks("07_reject_busy"))
RECORDED_FRAMES = [frame_key(f) for f in parse_all([RECORDED])]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(RECORDED) - 1), max_size=60, unique=True))
def test_any_chunking_yields_the_same_frames(cuts: list[int]) -> None:
    cuts = sorted(cuts)
    pieces = [RECORDED[a:b] for a, b in zip([0, *cuts], [*cuts, len(RECORDED)], strict=True)]
    assert [frame_key(f) for f in parse_all(pieces)] == RECORDED_FRAMES


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=200_000), min_size=1, max_size=40))
def test_reading_into_the_buffer_yields_the_same_frames(reads: list[int]) -> None:
    """Like a socket's recv_into: each read fills part of what buffer() offers,
    and the view of the previous read may still be alive when the next is asked."""
    stream = RECORDED + event_frame(b"Event-Name: CUSTOM\n" + b"x" * 300_000)
    parser, frames, position, views = Parser(), [], 0, []
    for wanted in itertools.cycle(reads):
        if position == len(stream):
            break
        view = parser.buffer()
        views = [*views[-2:], view]
        size = min(wanted, len(view), len(stream) - position)
        view[:size] = stream[position : position + size]
        position += size
        frames += parser.commit(size)
    assert [frame_key(f) for f in frames] == [frame_key(f) for f in parse_all([stream])]
    assert parser.buffered == 0


def test_the_buffer_shrinks_back_after_a_huge_frame() -> None:
    parser = Parser()
    (frame,) = parser.feed(event_frame(b"Event-Name: CUSTOM\n" + b"x" * 5_000_000))
    assert len(frame.body) > 5_000_000
    assert len(parser.buffer()) <= 4 * Parser.READ_SIZE
    with pytest.raises(ValueError, match="room for fewer"):
        parser.commit(len(parser.buffer()) + 1)


mutations = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, len(RECORDED) - 1), st.integers(0, 255)),
    st.tuples(st.just("cut"), st.integers(0, len(RECORDED) - 1), st.integers(1, 64)),
    st.tuples(st.just("insert"), st.integers(0, len(RECORDED)), st.binary(min_size=1, max_size=32)),
    st.tuples(
        st.just("insert"),
        st.integers(0, len(RECORDED)),
        st.sampled_from(
            [
                b"Content-Length: 999999999\n",
                b"Content-Length: -5\n",
                b"\n\n",
                b"%0A",
                b"Content-Length: 10\n",
                b"\x00\xff",
            ]
        ),
    ),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(mutations, min_size=1, max_size=5), st.integers(1, 4096))
def test_mutated_streams_yield_frames_or_protocol_error(
    edits: list[tuple[str, int, object]], chunk: int
) -> None:
    stream = bytearray(RECORDED)
    for kind, position, value in edits:
        position = min(position, len(stream))
        if kind == "flip" and position < len(stream):
            stream[position] = int(value)  # type: ignore[call-overload]
        elif kind == "cut":
            del stream[position : position + int(value)]  # type: ignore[call-overload]
        elif kind == "insert":
            stream[position:position] = value  # type: ignore[assignment]
    parser = Parser(max_frame_size=64 * 1024)
    data = bytes(stream)
    try:
        for start in range(0, len(data), chunk):
            for frame in parser.feed(data[start : start + chunk]):
                if frame.is_event:
                    event: Event = frame.event
                    event.name, event.uuid, event.job_uuid, event.body  # noqa: B018
                    with contextlib.suppress(ProtocolError):  # a corrupted JSON event says so
                        event.items()
    except ProtocolError:
        return
    # Nothing is buffered past the cap, whatever arrived.
    assert parser.buffered <= 64 * 1024 + 4096 + 64


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_fast_percent_decoding_equals_the_reference(raw: bytes) -> None:
    assert _unquote(raw) == unquote_to_bytes(raw)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,20}", fullmatch=True), st.text()))
)
def test_plain_event_decoding_round_trips_encoded_values(headers: list[tuple[str, str]]) -> None:
    def encode(value: str) -> str:
        return "".join(
            chr(b) if chr(b).isalnum() and b < 128 else f"%{b:02X}" for b in value.encode()
        )

    pairs = [("Event-Name", "CUSTOM"), *headers]
    data = "".join(f"{name}: {encode(value) or '_undef_'}\n" for name, value in pairs) + "\n"
    event = PlainEvent(data.encode())
    expected = [(n, v or "_undef_") for n, v in pairs]
    assert event.items() == expected
    lazy = PlainEvent(data.encode())
    for name, _ in expected:
        assert lazy.get(name) == next(v for n, v in expected if n == name)
    assert lazy.name == "CUSTOM"


def test_a_refired_command_is_named_by_its_last_prefix() -> None:
    events = [f.event for f in parse_all(server_chunks("03_call_lifecycle_plain")) if f.is_event]
    private = [e for e in events if "PRIVATE_COMMAND" in e.get_all("Event-Name")]
    assert private
    assert all(e.name == "PRIVATE_COMMAND" for e in private)
    assert private[0].get_all("Event-Name") == ["COMMAND", "PRIVATE_COMMAND"]
