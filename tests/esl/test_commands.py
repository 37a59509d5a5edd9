"""Command builders: exact output, and FreeSWITCH reads back exactly what was given.

"FreeSWITCH reads back" is checked with the simulator's model of its parsing
passes (:mod:`switchy.sim.dialstring`), applied the way each API applies them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchy.esl import commands
from switchy.esl.commands import (
    HANGUP_CAUSES,
    VariableValue,
    check_line,
    dial_string,
    fsctl,
    hangup_cause,
    hupall,
    originate,
    sched_api,
    sched_del,
    sched_hangup,
    uuid_answer,
    uuid_audio,
    uuid_break,
    uuid_bridge,
    uuid_broadcast,
    uuid_deflect,
    uuid_displace,
    uuid_exists,
    uuid_flush_dtmf,
    uuid_getvar,
    uuid_hold,
    uuid_kill,
    uuid_media,
    uuid_park,
    uuid_phone_event,
    uuid_record,
    uuid_send_dtmf,
    uuid_setvar,
    uuid_setvar_multi,
    uuid_transfer,
)
from switchy.sim.dialstring import OriginateRequest, parse_originate, separate_args, separate_string

TRACES = Path(__file__).resolve().parent.parent / "data" / "traces"
U = "73b6286d-e805-42e8-9cdc-e07f4c0a35a3"
V = "e7b06100-5258-47b8-8e40-35f43c837e5f"
BUSY = "a857dc08-8e23-4a1d-8527-0833257dde37"  # 07_reject_busy
HOP = "a182e887-8272-407c-a0cb-325c03340176"  # 08_bridge_onward
REC = "2479abb7-805a-44a8-a559-cb639077614b"  # 08_bridge_onward
BERT = "89375859-a2a7-412a-af7f-c0c8c48bc68e"  # 09_bert
# switch_strip_whitespace's set: what the API layer trims from an argument.
API_WHITESPACE = "\r\n\t \v"


def trace_commands() -> set[str]:
    """Every api/bgapi command line the recorded clients sent, without the prefix."""
    found = set()
    for path in TRACES.glob("*.jsonl"):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            if row["dir"] != "C":
                continue
            for block in row["data"].split("\n\n"):
                for prefix in ("api ", "bgapi "):
                    if block.startswith(prefix):
                        found.add(block[len(prefix) :].split("\n")[0])
    return found


TRACE_COMMANDS = trace_commands()


@pytest.mark.parametrize(
    ("built", "expected"),
    [
        (
            originate(
                "doggy@127.0.0.1:5080",
                uuid=U,
                timeout=10,
                x_headers={"switchy_app": "TonePlay", "originating_session_uuid": U},
            ),
            f"originate {{origination_uuid={U},originate_timeout=10,sip_h_X-switchy_app=TonePlay,"
            f"sip_h_X-originating_session_uuid={U}}}sofia/external/doggy@127.0.0.1:5080 &park()",
        ),
        (
            originate("nobody@127.0.0.1:5999", timeout=5),
            "originate {originate_timeout=5}sofia/external/nobody@127.0.0.1:5999 &park()",
        ),
        (
            originate("user_busy", endpoint="error", timeout=5),
            "originate {originate_timeout=5}error/user_busy &park()",
        ),
        (
            originate(
                "9999/switchy",
                endpoint="loopback",
                uuid="9bc405df-fd48-4d1f-8134-7627002d5cfe",
                timeout=5,
            ),
            "originate {origination_uuid=9bc405df-fd48-4d1f-8134-7627002d5cfe,"
            "originate_timeout=5}loopback/9999/switchy &park()",
        ),
        (uuid_answer(V), f"uuid_answer {V}"),
        (uuid_answer(BERT), f"uuid_answer {BERT}"),
        (
            uuid_broadcast(U, "playback::tone_stream://%(251,0,1004);loops=2"),
            f"uuid_broadcast {U} playback::tone_stream://%(251,0,1004);loops=2 aleg",
        ),
        (
            uuid_broadcast(U, "tone_stream://%(251,0,1004);loops=2", app="playback"),
            f"uuid_broadcast {U} playback::tone_stream://%(251,0,1004);loops=2 aleg",
        ),
        (uuid_broadcast(BUSY, "ring_ready"), f"uuid_broadcast {BUSY} ring_ready aleg"),
        (uuid_broadcast(BUSY, "respond::486"), f"uuid_broadcast {BUSY} respond::486 aleg"),
        (uuid_broadcast(BUSY, "486", app="respond"), f"uuid_broadcast {BUSY} respond::486 aleg"),
        (uuid_broadcast(BERT, "", app="bert_test"), f"uuid_broadcast {BERT} bert_test:: aleg"),
        (
            uuid_broadcast(HOP, "sofia/external/hop2@127.0.0.1:5080", app="bridge"),
            f"uuid_broadcast {HOP} bridge::sofia/external/hop2@127.0.0.1:5080 aleg",
        ),
        (uuid_setvar(U, "my_var", "hello%20world"), f"uuid_setvar {U} my_var hello%20world"),
        (uuid_getvar(U, "my_var"), f"uuid_getvar {U} my_var"),
        (uuid_send_dtmf(U, "1234"), f"uuid_send_dtmf {U} 1234"),
        (uuid_kill(U), f"uuid_kill {U}"),
        (uuid_record(REC, "start", "/tmp/trace.wav"), f"uuid_record {REC} start /tmp/trace.wav"),
        (uuid_record(REC, "stop", "/tmp/trace.wav"), f"uuid_record {REC} stop /tmp/trace.wav"),
        (hupall("NORMAL_CLEARING"), "hupall NORMAL_CLEARING"),
        (hupall(), "hupall"),
        (fsctl("shutdown"), "fsctl shutdown"),
    ],
)
def test_builders_reproduce_the_traces(built: str, expected: str) -> None:
    # The commands the recording clients sent, byte for byte.
    assert built == expected
    assert expected in TRACE_COMMANDS


@pytest.mark.parametrize(
    ("built", "expected"),
    [
        (
            originate("1000", gateway="carrier"),
            "originate sofia/gateway/carrier/1000 &park()",
        ),
        (
            originate("1000@example.com", proxy="10.0.0.1:5060"),
            "originate sofia/external/1000@example.com;fs_path=sip:10.0.0.1:5060 &park()",
        ),
        (
            originate("1000@example.com", profile="internal", proxy="sip:p.example;lr"),
            "originate sofia/internal/1000@example.com;fs_path=sip:p.example%3Blr &park()",
        ),
        (
            originate("1000@h", extension="9999"),
            "originate sofia/external/1000@h 9999",
        ),
        (
            originate("1000@h", extension="9999", context="switchy"),
            "originate sofia/external/1000@h 9999 XML switchy",
        ),
        (
            originate("1000@h", app_name="playback", app_args="/tmp/my file.wav"),
            r"originate sofia/external/1000@h &playback(/tmp/my\sfile.wav)",
        ),
        (
            originate(
                "1000@h",
                caller_id_name="Bob",
                caller_id_number="5551234",
                codec="PCMU,PCMA",
                variables={"flag": True, "count": 3},
            ),
            r"originate {origination_caller_id_name=Bob,origination_caller_id_number=5551234,"
            r"absolute_codec_string=PCMU\\,PCMA,flag=true,count=3}sofia/external/1000@h &park()",
        ),
        (
            originate("1000@h", variables={"name": "John Doe", "quote": "it's"}),
            r"originate {name=John\sDoe,quote=it\\\\\\\'s}sofia/external/1000@h &park()",
        ),
        (
            originate("1000@h", variables={"closing": "a}b"}),
            "originate <closing=a}b>sofia/external/1000@h &park()",
        ),
        (
            dial_string("1000@h", variables={"v": "a,b"}),
            r"{v=a\,b}sofia/external/1000@h",
        ),
        (uuid_kill(U, "user_busy"), f"uuid_kill {U} USER_BUSY"),
        (uuid_kill(U, 17), f"uuid_kill {U} USER_BUSY"),
        (uuid_park(U), f"uuid_park {U}"),
        (uuid_exists(U), f"uuid_exists {U}"),
        (uuid_flush_dtmf(U), f"uuid_flush_dtmf {U}"),
        (uuid_bridge(U, V), f"uuid_bridge {U} {V}"),
        (uuid_setvar(U, "v"), f"uuid_setvar {U} v"),
        (uuid_setvar(U, "v", " a  b "), rf"uuid_setvar {U} v \sa\s\sb\s"),
        (uuid_setvar(U, "v", False), f"uuid_setvar {U} v false"),
        (
            uuid_setvar_multi(U, {"a": "1", "b": "2;3", "c": "x "}),
            rf"uuid_setvar_multi {U} a=1;b=2\;3;c=x\s",
        ),
        (uuid_broadcast(U, "/tmp/a.wav", "both"), f"uuid_broadcast {U} /tmp/a.wav both"),
        (
            uuid_broadcast(U, "/tmp/a.wav", hangup_cause="normal_clearing"),
            f"uuid_broadcast {U} playback!NORMAL_CLEARING::/tmp/a.wav aleg",
        ),
        (
            uuid_broadcast(U, "echo::", hangup_cause=16),
            f"uuid_broadcast {U} echo!NORMAL_CLEARING:: aleg",
        ),
        # A file whose path starts like "app::" is played explicitly.
        (
            uuid_broadcast(U, "a::b.wav", app="playback"),
            f"uuid_broadcast {U} playback::a::b.wav aleg",
        ),
        (uuid_break(U), f"uuid_break {U}"),
        (uuid_break(U, all_queued=True, both_legs=True), f"uuid_break {U} all both"),
        (uuid_hold(U), f"uuid_hold {U}"),
        (uuid_hold(U, "off"), f"uuid_hold off {U}"),
        (uuid_hold(U, "toggle"), f"uuid_hold toggle {U}"),
        (uuid_media(U), f"uuid_media {U}"),
        (uuid_media(U, enabled=False), f"uuid_media off {U}"),
        (uuid_transfer(U, "1000"), f"uuid_transfer {U} 1000"),
        (uuid_transfer(U, "1000", context="c", leg="bleg"), f"uuid_transfer {U} -bleg 1000 XML c"),
        (
            uuid_transfer(U, "park:,hangup", dialplan="inline"),
            f"uuid_transfer {U} park:,hangup inline",
        ),
        (uuid_send_dtmf(U, "12#*AwW", 200), f"uuid_send_dtmf {U} 12#*AwW@200"),
        (uuid_record(U, "start", "/tmp/a b.wav", 30), rf"uuid_record {U} start /tmp/a\sb.wav 30"),
        (uuid_record(U, "stop", "all"), f"uuid_record {U} stop all"),
        (uuid_displace(U, "start", "/tmp/a.wav"), f"uuid_displace {U} start /tmp/a.wav"),
        (
            uuid_displace(U, "start", "/tmp/a.wav", mux=True),
            f"uuid_displace {U} start /tmp/a.wav 0 mux",
        ),
        (uuid_audio(U, "start", "write", "mute", 1), f"uuid_audio {U} start write mute 1"),
        (uuid_audio(U, "start", "read", "level", -2), f"uuid_audio {U} start read level -2"),
        (uuid_audio(U, "stop"), f"uuid_audio {U} stop"),
        (uuid_deflect(U, "sip:bob@example.com"), f"uuid_deflect {U} sip:bob@example.com"),
        (uuid_phone_event(U), f"uuid_phone_event {U}"),
        (uuid_phone_event(U, "hold"), f"uuid_phone_event {U} hold"),
        (
            hupall(sip_h_X_app="x", app_id="load test"),
            r"hupall MANAGER_REQUEST sip_h_X_app x app_id load\stest",
        ),
        (fsctl("loglevel", 7), "fsctl loglevel 7"),
        (sched_api(5, U, uuid_kill(U)), f"sched_api +5 {U} uuid_kill {U}"),
        (
            sched_api(0, "grp", "uuid_answer x", own_thread=True),
            "sched_api +0 grp uuid_answer x&",
        ),
        (sched_del(12), "sched_del 12"),
        (sched_del(U), f"sched_del {U}"),
        (sched_hangup(30, U), f"sched_hangup +30 {U}"),
        (sched_hangup(0, U, "NO_ANSWER"), f"sched_hangup +0 {U} NO_ANSWER"),
    ],
)
def test_exact_output(built: str, expected: str) -> None:
    assert built == expected


def test_hangup_causes() -> None:
    assert HANGUP_CAUSES["NORMAL_CLEARING"] == 16
    assert HANGUP_CAUSES["ORIGINATOR_CANCEL"] == 487
    assert HANGUP_CAUSES["REJECT_ALL"] == 625
    assert hangup_cause("user_busy") == "USER_BUSY"
    assert hangup_cause(17) == "USER_BUSY"
    assert hangup_cause("17") == "USER_BUSY"
    for bad in ("not_a_cause", 4, "", "NORMAL CLEARING"):
        with pytest.raises(ValueError, match="unknown hangup cause"):
            hangup_cause(bad)
    with pytest.raises(TypeError):
        hangup_cause(True)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("a\nb", "line break"),
        ("a\r", "line break"),
        ("a\0", "NUL"),
        ("unload mod_event_socket", "mod_event_socket"),
        ("echo RELOAD x Mod_Event_Socket_nope", "mod_event_socket"),
        ("xunloadx", None),
        ("mod_event_socket", None),
        ("", None),
    ],
)
def test_check_line(text: str, match: str | None) -> None:
    if match is None:
        assert check_line(text, "api(command=...)") == text
    else:
        with pytest.raises(ValueError, match=rf"^api\(command=\.\.\.\): .*{match}"):
            check_line(text, "api(command=...)")


def test_errors_name_the_argument() -> None:
    with pytest.raises(ValueError, match=r"^originate\(dest_url=\.\.\.\): contains a line break"):
        originate("1000\n@h")
    with pytest.raises(ValueError, match=r"^originate\(variables\['v'\]=\.\.\.\): .*'\$\{'"):
        originate("1000@h", variables={"v": "${uuid}"})
    with pytest.raises(ValueError, match=r"^originate\(caller_id_name=\.\.\.\): .*'\$\{'"):
        originate("1000@h", caller_id_name="${x}")
    with pytest.raises(ValueError, match=r"^originate\(x_headers\['App'\]=\.\.\.\): .*empty"):
        originate("1000@h", x_headers={"App": ""})
    with pytest.raises(ValueError, match=r"^originate: .*mod_event_socket"):
        originate("1000@h", variables={"unload_all": "mod_event_socket"})
    with pytest.raises(ValueError, match=r"^uuid_kill\(cause=\.\.\.\): unknown hangup cause"):
        uuid_kill(U, "BOGUS")
    with pytest.raises(ValueError, match=r"^uuid_send_dtmf\(digits=\.\.\.\): '12x'"):
        uuid_send_dtmf(U, "12x")
    with pytest.raises(ValueError, match=r"^uuid_answer\(uuid=\.\.\.\): 'a b'"):
        uuid_answer("a b")


@pytest.mark.parametrize(
    "build",
    [
        lambda: originate("1000@h", variables={"v": ""}),
        lambda: originate("1000@h", variables={"bad name": "x"}),
        lambda: originate("1000@h", variables={"v": "}>"}),
        lambda: originate("1000@h", variables={"origination_uuid": "x"}, uuid=U),
        lambda: originate("1000@h", timeout=0),
        lambda: originate("1000@h", uuid="not a uuid"),
        lambda: originate("1000@h", app_args="a)b"),
        lambda: originate("1000@h", extension="undef"),
        lambda: originate("1000@h", extension="&park"),
        lambda: originate("1000@h", extension="1", app_args="x"),
        lambda: originate("1000@h", context="c"),
        lambda: originate("1000@h", gateway="g", proxy="p"),
        lambda: originate("1000", profile="gateway"),
        lambda: originate("1000", endpoint="loopback", gateway="g"),
        lambda: originate("a:_:b"),
        lambda: originate("1000@h", x_headers={"bad header": "x"}),
        lambda: uuid_setvar(U, "v", ""),
        lambda: uuid_setvar_multi(U, {}),
        lambda: uuid_setvar_multi(U, {"v": "${x}"}),
        lambda: uuid_setvar_multi(U, {f"v{n}": "x" for n in range(65)}),
        lambda: uuid_broadcast(U, ""),
        lambda: uuid_broadcast(U, "/tmp/a.wav", "cleg"),
        lambda: uuid_broadcast(U, "x!USER_BUSY::", hangup_cause="NO_ANSWER"),
        lambda: uuid_transfer(U, "-both"),
        lambda: uuid_transfer(U, "1000", leg="aleg"),
        lambda: uuid_record(U, "begin", "/tmp/a.wav"),
        lambda: uuid_record(U, "stop", "/tmp/a.wav", 10),
        lambda: uuid_send_dtmf(U, ""),
        lambda: uuid_send_dtmf(U, "1", 0),
        lambda: uuid_audio(U, "start", "sideways"),
        lambda: uuid_deflect(U, "sip:a b"),
        lambda: hupall(a="1", b="2", c="3", d="4", e="5", f="6"),
        lambda: fsctl(),
        lambda: sched_api(-1, "g", "status"),
        lambda: sched_api(1, "g", "status&"),
        lambda: sched_api(1, "g", " status"),
        lambda: sched_del(0),
        lambda: sched_hangup(1, U, "SOON"),
    ],
)
def test_invalid_arguments_raise(build: Callable[[], str]) -> None:
    with pytest.raises(ValueError, match=r"^\w+"):
        build()


# --- what FreeSWITCH reads back ------------------------------------------------


def api_argument(command: str, name: str) -> str:
    """The argument string an API receives (switch_api_execute strips its ends)."""
    assert command.startswith(name + " ")
    return command[len(name) + 1 :].strip(API_WHITESPACE)


def read_originate(command: str) -> OriginateRequest:
    return parse_originate(api_argument(command, "originate"))


def originated(command: str) -> tuple[str, dict[str, str], str | None, str | None, str | None]:
    request = read_originate(command)
    ((leg,),) = request.legs
    return (
        leg.endpoint,
        leg.variables,
        request.application,
        request.application_args,
        (request.extension and f"{request.extension} {request.dialplan} {request.context}"),
    )


def fs_path_route(command: str) -> str:
    """The route mod_sofia takes from ;fs_path= (cut at ';' or '>', then URL-decoded)."""
    endpoint = originated(command)[0]
    route = endpoint.split(";fs_path=", 1)[1]
    for stop in ";>":
        route = route.split(stop, 1)[0]
    return unquote(route)


def setvar_multi_pairs(command: str) -> dict[str, str]:
    uuid, _, rest = api_argument(command, "uuid_setvar_multi").partition(" ")
    pairs = {"uuid": uuid}
    for part in separate_string(rest, ";", 64):
        name, _, value = part.partition("=")
        pairs[name] = value
    return pairs


def sched_api_parts(command: str) -> list[str]:
    when, group, rest = api_argument(command, "sched_api").split(" ", 2)
    return [when, group, rest]


# Each case: (argument name, builder taking the tested text, reader of the
# command, what the reader must find for the text). The builder must raise
# ValueError or produce a command read back exactly as expected.
Case = tuple[str, Callable[[str], str], Callable[[str], Any], Callable[[str], Any]]
CASES: list[Case] = [
    (
        "uuid_kill.uuid",
        lambda s: uuid_kill(s, "USER_BUSY"),
        lambda c: api_argument(c, "uuid_kill").partition(" ")[::2],
        lambda s: (s, "USER_BUSY"),
    ),
    (
        "uuid_kill.cause",
        lambda s: uuid_kill(U, s),
        lambda c: api_argument(c, "uuid_kill").partition(" ")[::2],
        lambda s: (U, s.upper()),
    ),
    (
        "uuid_answer.uuid",
        uuid_answer,
        lambda c: api_argument(c, "uuid_answer"),
        lambda s: s,
    ),
    (
        "uuid_bridge.other_uuid",
        lambda s: uuid_bridge(U, s),
        lambda c: separate_args(api_argument(c, "uuid_bridge"), 4),
        lambda s: [U, s],
    ),
    (
        "uuid_getvar.name",
        lambda s: uuid_getvar(U, s),
        lambda c: separate_args(api_argument(c, "uuid_getvar"), 4),
        lambda s: [U, s],
    ),
    (
        "uuid_setvar.name",
        lambda s: uuid_setvar(U, s, "x"),
        lambda c: separate_args(api_argument(c, "uuid_setvar"), 3),
        lambda s: [U, s, "x"],
    ),
    (
        "uuid_setvar.value",
        lambda s: uuid_setvar(U, "v", s),
        lambda c: separate_args(api_argument(c, "uuid_setvar"), 3),
        lambda s: [U, "v", s],
    ),
    (
        "uuid_setvar_multi.value",
        lambda s: uuid_setvar_multi(U, {"a": s, "b": "2"}),
        setvar_multi_pairs,
        lambda s: {"uuid": U, "a": s, "b": "2"},
    ),
    (
        "uuid_setvar_multi.last_value",
        lambda s: uuid_setvar_multi(U, {"b": "2", "a": s}),
        setvar_multi_pairs,
        lambda s: {"uuid": U, "a": s, "b": "2"},
    ),
    (
        "uuid_broadcast.path",
        lambda s: uuid_broadcast(U, s, "bleg"),
        lambda c: separate_args(api_argument(c, "uuid_broadcast"), 4),
        lambda s: [U, s, "bleg"],
    ),
    (
        "uuid_broadcast.args",
        lambda s: uuid_broadcast(U, s, app="playback"),
        lambda c: separate_args(api_argument(c, "uuid_broadcast"), 4),
        lambda s: [U, f"playback::{s}", "aleg"],
    ),
    (
        "uuid_transfer.dest",
        lambda s: uuid_transfer(U, s, "XML", "default"),
        lambda c: separate_args(api_argument(c, "uuid_transfer"), 5),
        lambda s: [U, s, "XML", "default"],
    ),
    (
        "uuid_transfer.context",
        lambda s: uuid_transfer(U, "1000", context=s),
        lambda c: separate_args(api_argument(c, "uuid_transfer"), 5),
        lambda s: [U, "1000", "XML", s],
    ),
    (
        "uuid_record.path",
        lambda s: uuid_record(U, "start", s, 30),
        lambda c: separate_args(api_argument(c, "uuid_record"), 5),
        lambda s: [U, "start", s, "30"],
    ),
    (
        "uuid_displace.path",
        lambda s: uuid_displace(U, "start", s, mux=True),
        lambda c: separate_args(api_argument(c, "uuid_displace"), 5),
        lambda s: [U, "start", s, "0", "mux"],
    ),
    (
        "uuid_deflect.uri",
        lambda s: uuid_deflect(U, s),
        lambda c: api_argument(c, "uuid_deflect").partition(" ")[::2],
        lambda s: (U, s),
    ),
    (
        "uuid_phone_event.event",
        lambda s: uuid_phone_event(U, s),
        lambda c: separate_args(api_argument(c, "uuid_phone_event"), 2),
        lambda s: [U, s],
    ),
    (
        "hupall.value",
        lambda s: hupall("NORMAL_CLEARING", v=s, w="x"),
        lambda c: separate_args(api_argument(c, "hupall"), 11),
        lambda s: ["NORMAL_CLEARING", "v", s, "w", "x"],
    ),
    (
        "fsctl.args",
        lambda s: fsctl("loglevel", s),
        lambda c: separate_args(api_argument(c, "fsctl")),
        lambda s: ["loglevel", s],
    ),
    (
        "sched_api.command",
        lambda s: sched_api(5, "grp", s),
        sched_api_parts,
        lambda s: ["+5", "grp", s],
    ),
    (
        "sched_api.group",
        lambda s: sched_api(5, s, "status"),
        sched_api_parts,
        lambda s: ["+5", s, "status"],
    ),
    (
        "sched_hangup.uuid",
        lambda s: sched_hangup(5, s),
        lambda c: separate_args(api_argument(c, "sched_hangup"), 4),
        lambda s: ["+5", s],
    ),
    (
        "originate.dest_url",
        originate,
        originated,
        lambda s: (f"sofia/external/{s}", {}, "park", "", None),
    ),
    (
        "originate.profile",
        lambda s: originate("1000@h", profile=s),
        originated,
        lambda s: (f"sofia/{s}/1000@h", {}, "park", "", None),
    ),
    (
        "originate.gateway",
        lambda s: originate("1000", gateway=s),
        originated,
        lambda s: (f"sofia/gateway/{s}/1000", {}, "park", "", None),
    ),
    (
        "originate.endpoint",
        lambda s: originate("1000", endpoint=s),
        originated,
        lambda s: (f"{s}/1000", {}, "park", "", None),
    ),
    (
        "originate.proxy",
        lambda s: originate("1000@h", proxy=s),
        fs_path_route,
        lambda s: s if s.lower().startswith(("sip:", "sips:")) else f"sip:{s}",
    ),
    (
        "originate.app_name",
        lambda s: originate("1000@h", app_name=s, app_args="x"),
        originated,
        lambda s: ("sofia/external/1000@h", {}, s, "x", None),
    ),
    (
        "originate.app_args",
        lambda s: originate("1000@h", app_name="playback", app_args=s),
        originated,
        lambda s: ("sofia/external/1000@h", {}, "playback", s, None),
    ),
    (
        "originate.extension",
        lambda s: originate("1000@h", extension=s, context="c"),
        originated,
        lambda s: ("sofia/external/1000@h", {}, None, None, f"{s} XML c"),
    ),
    (
        "originate.context",
        lambda s: originate("1000@h", extension="1", dialplan="XML", context=s),
        originated,
        lambda s: ("sofia/external/1000@h", {}, None, None, f"1 XML {s}"),
    ),
    (
        "originate.uuid",
        lambda s: originate("1000@h", uuid=s),
        originated,
        lambda s: ("sofia/external/1000@h", {"origination_uuid": s}, "park", "", None),
    ),
    (
        "originate.caller_id_name",
        lambda s: originate("1000@h", caller_id_name=s, timeout=9),
        originated,
        lambda s: (
            "sofia/external/1000@h",
            {"originate_timeout": "9", "origination_caller_id_name": s},
            "park",
            "",
            None,
        ),
    ),
    (
        "originate.codec",
        lambda s: originate("1000@h", codec=s),
        originated,
        lambda s: ("sofia/external/1000@h", {"absolute_codec_string": s}, "park", "", None),
    ),
    (
        "originate.x_header_value",
        lambda s: originate("1000@h", x_headers={"App": s}),
        originated,
        lambda s: ("sofia/external/1000@h", {"sip_h_X-App": s}, "park", "", None),
    ),
    (
        "originate.x_header_name",
        lambda s: originate("1000@h", x_headers={s: "v"}),
        originated,
        lambda s: ("sofia/external/1000@h", {f"sip_h_X-{s}": "v"}, "park", "", None),
    ),
    (
        "originate.variable_name",
        lambda s: originate("1000@h", variables={s: "v", "w": "2"}),
        originated,
        lambda s: ("sofia/external/1000@h", {s: "v", "w": "2"}, "park", "", None),
    ),
    (
        "originate.variable_value",
        lambda s: originate("1000@h", variables={"v": s, "w": "2"}),
        originated,
        lambda s: ("sofia/external/1000@h", {"v": s, "w": "2"}, "park", "", None),
    ),
]

HOSTILE = [
    "\r",
    "\n",
    "\0",
    "\r\n\r\napi echo injected",
    "\nJob-UUID: x",
    "unload mod_event_socket",
    "ReLoAd MOD_EVENT_SOCKET",
    "{",
    "}",
    "{x}",
    "[",
    "]",
    "<",
    ">",
    ",",
    "'",
    "''",
    '"',
    " ",
    "  ",
    "\t",
    "\v",
    "\\",
    "\\'",
    "\\s",
    "=",
    ";",
    "|",
    ":_:",
    "&",
    "(",
    ")",
    "!",
    "::",
    "^^:",
    "${uuid}",
    "$${x}",
    "undef",
    "-bleg",
    "%41",
    "origination_nested_vars=true",
    "é中😀",
]


@pytest.mark.parametrize(("name", "build", "read", "expected"), CASES, ids=[c[0] for c in CASES])
def test_hostile_arguments_raise_or_round_trip(
    name: str,
    build: Callable[[str], str],
    read: Callable[[str], Any],
    expected: Callable[[str], Any],
) -> None:
    for hostile in HOSTILE:
        for text in (hostile, f"a{hostile}b", f"a {hostile} b"):
            try:
                command = build(text)
            except ValueError:
                continue
            assert check_line(command, name) == command, text
            assert read(command) == expected(text), text


# --- round trips of arbitrary text -----------------------------------------------

TRICKY = [*" ,'\"\\={}[]<>|:_$^;&()!\t\x01\x02\x7fé中😀abnrst-%", "${", "::", ":_:"]
TEXT = st.lists(
    st.one_of(st.sampled_from(TRICKY), st.characters(exclude_categories=["Cs"])),
    max_size=16,
).map("".join)
ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def breaks_the_line(text: str) -> bool:
    lowered = text.translate(ASCII_LOWER)
    trigger = "mod_event_socket" in lowered and ("unload" in lowered or "reload" in lowered)
    return trigger or any(char in text for char in "\r\n\0")


def unwritable_word(text: str) -> bool:
    return not text or breaks_the_line(text) or "\v" in text or "\f" in text


def balanced(text: str, opener: str, closer: str) -> bool:
    depth = 0
    for char in text:
        depth += (char == opener) - (char == closer)
        if depth < 0:
            return False
    return depth == 0


@given(value=TEXT)
def test_originate_variable_values_round_trip(value: str) -> None:
    representable = not (
        unwritable_word(value)
        or "${" in value
        or not (balanced(value, "{", "}") or balanced(value, "<", ">"))
    )
    variables = {"first": value, "x_value": value, "last": "end"}
    if not representable:
        with pytest.raises(ValueError, match=r"^originate\("):
            originate("1000@127.0.0.1", variables=variables)
        return
    command = originate("1000@127.0.0.1", uuid=U, variables=variables)
    request = read_originate(command)
    ((leg,),) = request.legs
    assert leg.variables == {"origination_uuid": U, **variables}
    assert request.global_variables == leg.variables


@given(value=TEXT)
def test_nested_vars_let_dollar_values_round_trip(value: str) -> None:
    value = "${" + value + "}"
    variables: dict[str, VariableValue] = {"origination_nested_vars": True, "v": value}
    if unwritable_word(value) or not (balanced(value, "{", "}") or balanced(value, "<", ">")):
        return
    ((leg,),) = read_originate(originate("1000@h", variables=variables)).legs
    assert leg.variables == {"origination_nested_vars": "true", "v": value}


@given(value=TEXT)
def test_originate_app_args_round_trip(value: str) -> None:
    if breaks_the_line(value) or "\v" in value or "\f" in value or ")" in value:
        with pytest.raises(ValueError, match=r"^originate\(app_args=\.\.\.\)"):
            originate("1000@h", app_name="playback", app_args=value)
        return
    request = read_originate(originate("1000@h", app_name="playback", app_args=value))
    assert (request.application, request.application_args) == ("playback", value)


@given(value=TEXT, last=st.booleans())
def test_command_words_round_trip(value: str, last: bool) -> None:
    if unwritable_word(value):
        with pytest.raises(ValueError, match=r"^uuid_setvar\(value=\.\.\.\)"):
            uuid_setvar(U, "v", value)
        with pytest.raises(ValueError, match=r"^hupall\(v=\.\.\.\)"):
            hupall(v=value, w="x")
        return
    assert separate_args(api_argument(uuid_setvar(U, "v", value), "uuid_setvar"), 3) == [
        U,
        "v",
        value,
    ]
    match = {"v": value, "w": "x"} if not last else {"w": "x", "v": value}
    words = separate_args(api_argument(hupall(**match), "hupall"), 11)
    assert dict(zip(words[1::2], words[2::2], strict=True)) == match


@given(value=TEXT)
def test_setvar_multi_values_round_trip(value: str) -> None:
    if unwritable_word(value) or "${" in value:
        with pytest.raises(ValueError, match=r"^uuid_setvar_multi\(variables\['a'\]=\.\.\.\)"):
            uuid_setvar_multi(U, {"a": value, "b": value})
        return
    command = uuid_setvar_multi(U, {"a": value, "b": value})
    assert setvar_multi_pairs(command) == {"uuid": U, "a": value, "b": value}


def test_every_builder_is_exported() -> None:
    builders = {name for name in commands.__all__ if name.islower()}
    assert {"originate", "uuid_kill", "uuid_setvar_multi", "hupall", "sched_api"} <= builders
    for name in commands.__all__:
        assert hasattr(commands, name)
