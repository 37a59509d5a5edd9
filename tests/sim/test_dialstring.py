"""The simulator's model of FreeSWITCH's originate argument parsing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchy.sim.dialstring import (
    MAX_PEERS,
    ORIGINATE_USAGE,
    DialLeg,
    OriginateError,
    OriginateRequest,
    _blank_spans,
    _char_spans,
    cleanup_token,
    parse_dial_string,
    parse_originate,
    separate_args,
    separate_string,
)

TRACES = Path(__file__).resolve().parent.parent / "data" / "traces"
DOO = "-ERR DESTINATION_OUT_OF_ORDER\n"


def only_leg(request: OriginateRequest) -> DialLeg:
    (group,) = request.legs
    (leg,) = group
    return leg


def leg_variables(url: str) -> dict[str, str]:
    return only_leg(parse_originate(f"{url}sofia/external/1000@127.0.0.1 &park()")).variables


# ESL_PROTOCOL.md §6.1, every row of the table (verified live against 1.10.12).
@pytest.mark.parametrize(
    ("fragment", "expected"),
    [
        ("{v='John Doe'}", {"v": "John Doe"}),
        (r"{v=John\sDoe}", {"v": "John Doe"}),
        ("{v='a,b'}", {"v": "a"}),
        (r"{v=\'a,b\'}", {"v": "a,b"}),
        (r"{v=a\,b}", {"v": "a,b"}),
        ("{^^:v=a,b:w=c}", {"v": "a,b", "w": "c"}),
        ('{v=a=b=c,w="dq"}', {"v": "a=b=c", "w": '"dq"'}),
        (r"{v=glob,u=1}[v=leg,w=x\,y]", {"v": "leg", "u": "1", "w": "x,y"}),
        ("{v=${uuid}x}", {}),
        ("{v=}", {}),
    ],
)
def test_escaping_table(fragment: str, expected: dict[str, str]) -> None:
    assert leg_variables(fragment) == expected


def test_unquoted_space_splits_the_argument() -> None:
    with pytest.raises(OriginateError) as failure:
        parse_originate("{v= spaced }sofia/external/1000@127.0.0.1 &park()")
    assert failure.value.output == DOO


def test_section_5_command() -> None:
    request = parse_originate(
        r"{origination_uuid=U,sip_h_X-Test=hello,my_var=a\,b}"
        "sofia/external/1000@127.0.0.1:15080 &park()"
    )
    leg = only_leg(request)
    assert leg.endpoint == "sofia/external/1000@127.0.0.1:15080"
    assert leg.technology == "sofia"
    assert leg.target == "external/1000@127.0.0.1:15080"
    assert leg.variables == {"origination_uuid": "U", "sip_h_X-Test": "hello", "my_var": "a,b"}
    assert request.global_variables == leg.variables
    assert (request.application, request.application_args) == ("park", "")
    assert request.extension is None
    assert (request.dialplan, request.context, request.timeout) == ("XML", "default", 60)


@pytest.mark.parametrize(
    "args",
    [
        "",
        "   ",
        "sofia/external/1000",
        "a b c d e f g h",
        "a b c d e f g h i j k l",
    ],
)
def test_usage(args: str) -> None:
    with pytest.raises(OriginateError) as failure:
        parse_originate(args)
    assert failure.value.output == ORIGINATE_USAGE
    assert ORIGINATE_USAGE == (
        "-USAGE: <call url> <exten>|&<application_name>(<app_args>) [<dialplan>] "
        "[<context>] [<cid_name>] [<cid_num>] [<timeout_sec>]\n"
    )


def test_all_positional_arguments() -> None:
    request = parse_originate(r"loopback/1000 2000 XML ctx John\sDoe 5551234 15")
    assert request.extension == "2000"
    assert request.application is None
    assert (request.dialplan, request.context) == ("XML", "ctx")
    assert (request.caller_id_name, request.caller_id_number) == ("John Doe", "5551234")
    assert request.timeout == 15


def test_undef_stands_for_an_absent_argument() -> None:
    request = parse_originate("loopback/1000 2000 undef UNDEF Bob undef 0")
    assert (request.dialplan, request.context) == ("XML", "default")
    assert (request.caller_id_name, request.caller_id_number) == ("Bob", None)
    # timeout 0 means the default.
    assert request.timeout == 60


def test_undef_call_url_has_nothing_to_dial() -> None:
    with pytest.raises(OriginateError) as failure:
        parse_originate("undef &park()")
    assert failure.value.output == DOO


@pytest.mark.parametrize(
    ("timeout", "expected"),
    [("30", 30), (" 7x", 7), ("+9", 9), ("abc", 60), ("-1", 2**32 - 1)],
)
def test_timeout_is_read_with_atoi(timeout: str, expected: int) -> None:
    word = timeout.replace(" ", r"\s")
    assert parse_originate(f"error/x 1 XML default a b {word}").timeout == expected


@pytest.mark.parametrize(
    ("exten", "application", "args", "extension"),
    [
        ("&park()", "park", "", None),
        ("&park", "park", None, None),
        ("&playback(/tmp/a.wav)", "playback", "/tmp/a.wav", None),
        # The args end at the first ')'.
        ("&playback(/tmp/a(1).wav)", "playback", "/tmp/a(1", None),
        (r"&playback(/tmp/my\sfile.wav)", "playback", "/tmp/my file.wav", None),
        ("&", None, None, "&"),
        ("9999", None, None, "9999"),
    ],
)
def test_application_or_extension(
    exten: str, application: str | None, args: str | None, extension: str | None
) -> None:
    request = parse_originate(f"loopback/9999/default {exten}")
    assert (request.application, request.application_args) == (application, args)
    assert request.extension == extension


def test_legs_simultaneous_and_sequential() -> None:
    request = parse_originate("{a=1}[b=2]sofia/x/1,sofia/x/2|[b=3]loopback/3 &park()")
    assert [[leg.endpoint for leg in group] for group in request.legs] == [
        ["sofia/x/1", "sofia/x/2"],
        ["loopback/3"],
    ]
    assert [[leg.variables for leg in group] for group in request.legs] == [
        [{"a": "1", "b": "2"}, {"a": "1"}],
        [{"a": "1", "b": "3"}],
    ]


def test_leg_block_commas() -> None:
    # Quoted commas stay in the value, but the '|' split consumes one level of quotes first.
    variables = only_leg(parse_originate(r"[a=1,b=\\\'x,y\\\']sofia/x/1 &park()")).variables
    assert variables == {"a": "1", "b": "x,y"}
    variables = only_leg(parse_originate(r"[a=1,b=\'x,y\']sofia/x/1 &park()")).variables
    assert variables == {"a": "1", "b": "x"}
    variables = only_leg(parse_originate("[^^:a=1,2:b=3]sofia/x/1 &park()")).variables
    assert variables == {"a": "1,2", "b": "3"}


def test_several_leading_blocks() -> None:
    assert leg_variables("<u=0,a=0>{a=1}{b=2}[c=3][b=4]") == {
        "u": "0",
        "a": "1",
        "b": "4",
        "c": "3",
    }


def test_a_later_empty_value_clears_the_variable() -> None:
    assert leg_variables(r"{v=a,w=1,v=\'\s\'}") == {"w": "1"}


def test_braces_nest_inside_a_block() -> None:
    assert leg_variables("{v={x},w=y}") == {"v": "{x}", "w": "y"}


def test_backslashes_need_one_escape_per_pass() -> None:
    # Three passes each halve the backslashes: pass 1, the ',' split, the '=' split.
    assert leg_variables(r"{v=a\\\\\\\\b}") == {"v": "a\\b"}
    # An escape no pass knows is kept.
    assert leg_variables(r"{v=a\xb}") == {"v": r"a\xb"}


def test_nested_vars_let_dollar_values_through() -> None:
    assert leg_variables("{origination_nested_vars=true,v=${uuid}}") == {
        "origination_nested_vars": "true",
        "v": "${uuid}",
    }
    # The switch looks for the text anywhere in the dial string, in any case.
    assert leg_variables("{v=${x},ORIGINATION_NESTED_VARS=TRUE}")["v"] == "${x}"
    assert leg_variables("{origination_nested_vars=yes,v=${uuid}}") == {
        "origination_nested_vars": "yes"
    }


def test_per_leg_dollar_values_are_refused_too() -> None:
    assert leg_variables("{v=ok}[v=${x},w=1]") == {"v": "ok", "w": "1"}


@pytest.mark.parametrize("url", ["{v=1", "{v=1}", r"{v=1}\s\s", "<v=1", "<v=1>{"])
def test_malformed_call_url(url: str) -> None:
    with pytest.raises(OriginateError) as failure:
        parse_originate(f"{url} &park()")
    assert failure.value.output == DOO


def test_a_malformed_group_fails_only_when_reached() -> None:
    request = parse_originate("sofia/x/1|sofia/x/2,[v=1sofia/x/3 &park()")
    first, second = request.threads[0].groups
    assert first.failure_cause is None
    assert second.failure_cause == "DESTINATION_OUT_OF_ORDER"
    assert [leg.endpoint for leg in second.legs] == ["sofia/x/2"]


def test_enterprise_threads() -> None:
    request = parse_originate("<u=1>{a=2}sofia/x/1:_:[b=3]loopback/2 &park()")
    assert request.enterprise
    first, second = request.threads
    assert first.groups[0].legs[0].endpoint == "sofia/x/1"
    assert first.groups[0].legs[0].variables == {
        "u": "1",
        "ignore_early_media": "true",
        "a": "2",
    }
    assert second.groups[0].legs[0].variables == {
        "u": "1",
        "ignore_early_media": "true",
        "b": "3",
    }
    with pytest.raises(ValueError, match="threads"):
        _ = request.legs


def test_enterprise_thread_failures() -> None:
    first, second = parse_dial_string("sofia/x/1:_:{v=1")
    assert first.failure_cause is None
    assert second.failure_cause == "DESTINATION_OUT_OF_ORDER"
    with pytest.raises(OriginateError):
        parse_dial_string("{v=1:_:")


def test_group_count_is_capped() -> None:
    request = parse_originate("|".join(f"error/{n}" for n in range(MAX_PEERS + 2)) + " &park()")
    assert len(request.legs) == MAX_PEERS
    assert request.legs[-1][0].endpoint == "error/127|error/128|error/129"


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("uuid var hello   world  ", 3, ["uuid", "var", "hello   world"]),
        ("  a   b  ", None, ["a", "b"]),
        ("a 'b c' d", None, ["a", "b c", "d"]),
        (r"a b\sc d", None, ["a", "b c", "d"]),
        (r"\\ \' \" \n \t \x", None, ["\\", "'", '"', "\n", "\t", r"\x"]),
        # A lone quote groups the rest of the text but is kept.
        ("a 'b c", None, ["a", "'b c"]),
        ("'' x", None, ["", "x"]),
        ("a\\", None, ["a\\"]),
        ("^^:a:b c", None, ["a", "b c"]),
        ("", None, []),
    ],
)
def test_separate_args(text: str, limit: int | None, expected: list[str]) -> None:
    assert separate_args(text, limit) == expected


@pytest.mark.parametrize(
    ("text", "delim", "expected"),
    [
        ("a,b,,c,", ",", ["a", "b", "", "c"]),
        (",a", ",", ["", "a"]),
        (r"a\,b,c", ",", ["a,b", "c"]),
        ("'a,b',c", ",", ["a,b", "c"]),
        # Without a closing quote the quote is an ordinary character.
        ("'a,b", ",", ["'a", "b"]),
        (r"a=b\;c;d=e", ";", ["a=b;c", "d=e"]),
        ("a= b ; c", ";", ["a= b", "c"]),
    ],
)
def test_separate_string(text: str, delim: str, expected: list[str]) -> None:
    assert separate_string(text, delim) == expected


def test_separate_string_limit_keeps_the_rest() -> None:
    assert separate_string("a=b=c", "=", 2) == ["a", "b=c"]
    assert separate_string("a=b=c", "=", 1) == ["a=b=c"]


@pytest.mark.parametrize(
    ("token", "delim", "expected"),
    [
        ("  x  ", "", "x"),
        (r"\sx\s", "", " x "),
        ("' x '", "", " x "),
        ("x\t", "", "x\t"),
        (r"a\,b", "", r"a\,b"),
        (r"a\,b", ",", "a,b"),
        ("it's", "", "it's"),
    ],
)
def test_cleanup_token(token: str, delim: str, expected: str) -> None:
    assert cleanup_token(token, delim) == expected


def _trace_originates() -> list[str]:
    commands = []
    for path in sorted(TRACES.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            for command in row["data"].split("\n\n"):
                for prefix in ("api originate ", "bgapi originate "):
                    if row["dir"] == "C" and command.startswith(prefix):
                        commands.append(command[len(prefix) :])
    return commands


@pytest.mark.parametrize("args", _trace_originates())
def test_trace_originates(args: str) -> None:
    request = parse_originate(args)
    leg = only_leg(request)
    assert request.application == "park"
    assert leg.variables["originate_timeout"].isdigit()
    if "origination_uuid=" in args:
        assert leg.variables["origination_uuid"] in args
    assert " " not in leg.endpoint


def test_trace_originates_were_found() -> None:
    assert len(_trace_originates()) >= 10


@pytest.mark.parametrize(
    ("variable", "expected"),
    [
        ("", 30),
        ("originate_timeout=10,", 10),
        ("originate_timeout=0,", 30),
        ("originate_timeout=x,", 30),
    ],
)
def test_thread_originate_timeout(variable: str, expected: int) -> None:
    request = parse_originate(f"{{{variable}a=1}}error/x 1 XML default a b 30")
    assert request.threads[0].originate_timeout(request.timeout) == expected


@given(
    text=st.text(st.sampled_from(" ,|[]{}<>=:ab\t\x01"), min_size=1, max_size=16),
    delim=st.sampled_from([" ", ",", "|", "=", ""]),
    limit=st.sampled_from([1, 2, 3, MAX_PEERS]),
)
def test_unquoted_text_splits_as_the_character_scan_does(text: str, delim: str, limit: int) -> None:
    # Text without quotes or backslashes takes a shortcut: it must find the same parts.
    if delim == " ":
        spans = _blank_spans(text, limit)
        cleanup_delim = ""
    else:
        spans = _char_spans(text, delim, limit)
        cleanup_delim = delim
    expected = [cleanup_token(text[start:end], cleanup_delim) for start, end in spans]
    assert separate_string(text, delim, limit) == expected
