"""Builders for the API commands switchy sends, with FreeSWITCH-proof escaping.

Each builder returns the command line without the leading ``api ``/``bgapi ``.
FreeSWITCH has no quoting scheme of its own: every API re-splits its argument
with ``switch_separate_string`` (quotes grouped and removed, ``\\'`` ``\\"``
``\\\\`` ``\\s`` ``\\t`` ``\\n`` ``\\r`` and the delimiter unescaped, ends
trimmed), and ``originate`` does so again at each level of its dial string
(ESL_PROTOCOL.md §6.1). The builders escape every argument for the exact passes
its API applies, so FreeSWITCH reads back exactly the value given, and raise
:class:`ValueError` naming the argument for a value it cannot read back (a line
break, a leading space FreeSWITCH trims, a ``${`` it refuses, ...), rather than
sending something that means something else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

__all__ = [
    "HANGUP_CAUSES",
    "VariableValue",
    "check_line",
    "check_uuid",
    "dial_string",
    "fsctl",
    "hangup_cause",
    "hupall",
    "originate",
    "sched_api",
    "sched_del",
    "sched_hangup",
    "uuid_answer",
    "uuid_audio",
    "uuid_break",
    "uuid_bridge",
    "uuid_broadcast",
    "uuid_deflect",
    "uuid_displace",
    "uuid_exists",
    "uuid_flush_dtmf",
    "uuid_getvar",
    "uuid_hold",
    "uuid_kill",
    "uuid_media",
    "uuid_park",
    "uuid_phone_event",
    "uuid_record",
    "uuid_send_dtmf",
    "uuid_setvar",
    "uuid_setvar_multi",
    "uuid_transfer",
]

#: A channel variable value: ints are written in decimal, bools as ``true``/``false``.
VariableValue = str | int | bool

#: Every hangup cause FreeSWITCH 1.10 names (``CAUSE_CHART`` of switch_channel.c), with
#: its ``switch_call_cause_t`` number: Q.850 codes up to 127, FreeSWITCH's own above.
HANGUP_CAUSES: Mapping[str, int] = MappingProxyType(
    {
        "NONE": 0,
        "UNALLOCATED_NUMBER": 1,
        "NO_ROUTE_TRANSIT_NET": 2,
        "NO_ROUTE_DESTINATION": 3,
        "CHANNEL_UNACCEPTABLE": 6,
        "CALL_AWARDED_DELIVERED": 7,
        "NORMAL_CLEARING": 16,
        "USER_BUSY": 17,
        "NO_USER_RESPONSE": 18,
        "NO_ANSWER": 19,
        "SUBSCRIBER_ABSENT": 20,
        "CALL_REJECTED": 21,
        "NUMBER_CHANGED": 22,
        "REDIRECTION_TO_NEW_DESTINATION": 23,
        "EXCHANGE_ROUTING_ERROR": 25,
        "DESTINATION_OUT_OF_ORDER": 27,
        "INVALID_NUMBER_FORMAT": 28,
        "FACILITY_REJECTED": 29,
        "RESPONSE_TO_STATUS_ENQUIRY": 30,
        "NORMAL_UNSPECIFIED": 31,
        "NORMAL_CIRCUIT_CONGESTION": 34,
        "NETWORK_OUT_OF_ORDER": 38,
        "NORMAL_TEMPORARY_FAILURE": 41,
        "SWITCH_CONGESTION": 42,
        "ACCESS_INFO_DISCARDED": 43,
        "REQUESTED_CHAN_UNAVAIL": 44,
        "PRE_EMPTED": 45,
        "FACILITY_NOT_SUBSCRIBED": 50,
        "OUTGOING_CALL_BARRED": 52,
        "INCOMING_CALL_BARRED": 54,
        "BEARERCAPABILITY_NOTAUTH": 57,
        "BEARERCAPABILITY_NOTAVAIL": 58,
        "SERVICE_UNAVAILABLE": 63,
        "BEARERCAPABILITY_NOTIMPL": 65,
        "CHAN_NOT_IMPLEMENTED": 66,
        "FACILITY_NOT_IMPLEMENTED": 69,
        "SERVICE_NOT_IMPLEMENTED": 79,
        "INVALID_CALL_REFERENCE": 81,
        "INCOMPATIBLE_DESTINATION": 88,
        "INVALID_MSG_UNSPECIFIED": 95,
        "MANDATORY_IE_MISSING": 96,
        "MESSAGE_TYPE_NONEXIST": 97,
        "WRONG_MESSAGE": 98,
        "IE_NONEXIST": 99,
        "INVALID_IE_CONTENTS": 100,
        "WRONG_CALL_STATE": 101,
        "RECOVERY_ON_TIMER_EXPIRE": 102,
        "MANDATORY_IE_LENGTH_ERROR": 103,
        "PROTOCOL_ERROR": 111,
        "INTERWORKING": 127,
        "SUCCESS": 142,
        "ORIGINATOR_CANCEL": 487,
        "CRASH": 700,
        "SYSTEM_SHUTDOWN": 701,
        "LOSE_RACE": 502,
        "MANAGER_REQUEST": 503,
        "BLIND_TRANSFER": 600,
        "ATTENDED_TRANSFER": 601,
        "ALLOTTED_TIMEOUT": 602,
        "USER_CHALLENGE": 603,
        "MEDIA_TIMEOUT": 604,
        "PICKED_OFF": 605,
        "USER_NOT_REGISTERED": 606,
        "PROGRESS_TIMEOUT": 607,
        "INVALID_GATEWAY": 608,
        "GATEWAY_DOWN": 609,
        "INVALID_URL": 610,
        "INVALID_PROFILE": 611,
        "NO_PICKUP": 612,
        "SRTP_READ_ERROR": 613,
        "BOWOUT": 614,
        "BUSY_EVERYWHERE": 615,
        "DECLINE": 616,
        "DOES_NOT_EXIST_ANYWHERE": 617,
        "NOT_ACCEPTABLE": 618,
        "UNWANTED": 619,
        "NO_IDENTITY": 620,
        "BAD_IDENTITY_INFO": 621,
        "UNSUPPORTED_CERTIFICATE": 622,
        "INVALID_IDENTITY": 623,
        "STALE_DATE": 624,
        "REJECT_ALL": 625,
    }
)
_CAUSE_NAMES = {code: name for name, code in HANGUP_CAUSES.items()}

# Uuids and names (of variables, applications, profiles...) go on the wire as
# they are, so only plain characters are accepted.
_UUID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\Z")
_DTMF = re.compile(r"[0-9A-Da-d#*WwFf]+\Z")  # is_dtmf() of switch_utils.h
# Characters a dial-string target cannot hold: they are delimiters, quotes or
# escapes at some level of originate's parsing, or whitespace.
_TARGET_FORBIDDEN = re.compile(r"[\s'\"\\{}<>,|\x00-\x1f\x7f]")
# Whitespace no escape produces, which the API layer would trim from the ends
# of a command (switch_strip_whitespace; form feed refused to be safe).
_WORD_CONTROL = re.compile(r"[\v\f]")
_URI_FORBIDDEN = re.compile(r"[\s\x00-\x1f\x7f]")
# mod_sofia URL-decodes the ;fs_path= route: everything else is percent-encoded.
_PROXY_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:.-~@/+=")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_ENTERPRISE_DELIMITER = ":_:"
_NESTED_VARS_TRIGGER = "origination_nested_vars=true"
_BROADCAST_LEGS = ("aleg", "bleg", "holdb", "both")
_RECORD_ACTIONS = ("start", "stop", "pause", "resume", "mask", "unmask")
_SETVAR_MULTI_MAX = 64  # argv[64] of uuid_setvar_multi
_HUPALL_MAX_PAIRS = 5  # argv[11] of hupall: a cause and five name/value pairs


def check_line(text: str, what: str) -> str:
    """Return ``text`` if it is safe inside one ESL command, else raise ValueError.

    Refused: CR, LF and NUL (they end or cut the command and let the rest be
    read as headers or a second command, ESL_PROTOCOL.md §2.8), and text holding
    ``unload`` or ``reload`` together with ``mod_event_socket`` in any case,
    which makes FreeSWITCH unload or reload the event socket instead (§2.1).
    ``what`` names the argument in the error.
    """
    if "\r" in text or "\n" in text:
        raise ValueError(f"{what}: contains a line break, which would end the ESL command")
    if "\0" in text:
        raise ValueError(f"{what}: contains a NUL byte, which cuts the ESL command")
    # FreeSWITCH folds ASCII letters only; str.lower() does the same on ASCII text.
    lowered = text.lower() if text.isascii() else text.translate(_ASCII_LOWER)
    if "mod_event_socket" in lowered and ("unload" in lowered or "reload" in lowered):
        raise ValueError(
            f"{what}: contains 'unload' or 'reload' with 'mod_event_socket', which makes "
            "FreeSWITCH unload or reload the event socket instead of running the command"
        )
    return text


def hangup_cause(cause: str | int) -> str:
    """The FreeSWITCH name of a hangup cause given by name (any case) or number."""
    if isinstance(cause, bool) or not isinstance(cause, str | int):
        raise TypeError(f"hangup cause must be a name or a number, not {cause!r}")
    if isinstance(cause, str) and cause.isascii() and cause.isdigit():
        cause = int(cause)
    if isinstance(cause, int):
        if cause not in _CAUSE_NAMES:
            raise ValueError(f"unknown hangup cause number {cause}")
        return _CAUSE_NAMES[cause]
    name = cause.translate(_ASCII_LOWER).upper()
    if name not in HANGUP_CAUSES:
        raise ValueError(f"unknown hangup cause {cause!r}")
    return name


def _cause(cause: str | int, what: str) -> str:
    try:
        return hangup_cause(cause)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{what}: {error}") from None


def _matching(text: str, pattern: re.Pattern[str], what: str, kind: str) -> str:
    check_line(text, what)
    if not pattern.match(text):
        raise ValueError(f"{what}: {text!r} is not a valid {kind}")
    return text


def _uuid(uuid: str, what: str) -> str:
    return _matching(uuid, _UUID, what, "channel uuid (letters, digits, '.', '_', '-')")


def _variable_name(name: str, what: str) -> str:
    kind = "variable name (letters, digits, '_', '.', '-')"
    return _matching(name, _NAME, what, kind)


def _command(*words: str) -> str:
    """Join a command's words; the whole line is checked, as FreeSWITCH scans it whole."""
    return check_line(" ".join(words), words[0])


def _non_negative(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what}: must be a whole number >= 0, not {value!r}")
    return value


def _positive(value: int, what: str) -> int:
    if _non_negative(value, what) == 0:
        raise ValueError(f"{what}: must be > 0")
    return value


def _choice(value: str, choices: tuple[str, ...], what: str) -> str:
    if value not in choices:
        raise ValueError(f"{what}: must be one of {', '.join(choices)}, not {value!r}")
    return value


def _variable_text(value: VariableValue, what: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return check_line(value, what)
    raise TypeError(f"{what}: a variable value must be str, int or bool, not {value!r}")


def _word(text: str, what: str) -> str:
    """Escape ``text`` to come back whole from one word of ``switch_separate_string(' ')``.

    That split cleans each word: it unescapes ``\\\\ \\' \\s \\t``, drops
    quotes and trims spaces, so backslashes, quotes, spaces and tabs are all
    written as escapes.
    """
    check_line(text, what)
    if not text:
        raise ValueError(f"{what}: must not be empty")
    if _WORD_CONTROL.search(text):
        raise ValueError(f"{what}: vertical tab and form feed cannot be passed")
    return text.replace("\\", "\\\\").replace("'", "\\'").replace(" ", "\\s").replace("\t", "\\t")


def _escape_cleanup(text: str, delim: str) -> str:
    """Escape ``text`` to survive one ``cleanup_separated_string`` with ``delim``.

    The cleanup trims spaces at both ends: those are written ``\\s``.
    """
    text = text.replace("\\", "\\\\").replace("'", "\\'")
    if delim:
        text = text.replace(delim, "\\" + delim)
    core = text.strip(" ")
    if not core:
        return "\\s" * len(text)
    leading = len(text) - len(text.lstrip(" "))
    trailing = len(text) - len(text.rstrip(" "))
    return "\\s" * leading + core + "\\s" * trailing


def _break_triggers(text: str) -> str:
    """Hide ``:_:`` and ``origination_nested_vars=true`` from originate's raw text scans.

    switch_ivr_originate searches the whole dial string for these before any
    block is read; an empty quote pair inside them is removed by the block's
    comma split, after the scans.
    """
    text = text.replace(":_", ":''_")
    return re.sub(r"(?i)(o)(rigination_nested_vars=true)", r"\1''\2", text)


def _brackets_balanced(text: str, opener: str, closer: str) -> bool:
    """True when no prefix of ``text`` closes more than it opened, and all is closed.

    switch_find_end_paren ignores escapes and quotes: only such a value can sit
    inside a block delimited by these brackets.
    """
    depth = 0
    for char in text:
        if char == opener:
            depth += 1
        elif char == closer:
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def _block(pairs: list[tuple[str, str]], opener: str, closer: str) -> str:
    if not pairs:
        return ""
    body = ",".join(f"{name}={_escape_block_value(value)}" for name, value in pairs)
    return f"{opener}{body}{closer}"


def _escape_block_value(value: str) -> str:
    # Inner pass first: the cleanup after the name=value split (the value is
    # never split again, so '=' needs no escape), then the ',' split's.
    return _break_triggers(_escape_cleanup(_escape_cleanup(value, ""), ","))


def _encode_proxy(proxy: str) -> str:
    if not proxy.translate(_ASCII_LOWER).startswith(("sip:", "sips:")):
        proxy = "sip:" + proxy
    encoded = []
    for char in proxy:
        if char in _PROXY_SAFE:
            encoded.append(char)
        else:
            encoded.extend(f"%{byte:02X}" for byte in char.encode("utf-8"))
    return "".join(encoded)


def _target(text: str, what: str) -> str:
    check_line(text, what)
    if not text:
        raise ValueError(f"{what}: must not be empty")
    found = _TARGET_FORBIDDEN.search(text)
    if found:
        raise ValueError(f"{what}: {found.group()!r} cannot appear in a dial string")
    if _ENTERPRISE_DELIMITER in text:
        raise ValueError(f"{what}: ':_:' would split the dial string (enterprise originate)")
    if "${" in text:
        raise ValueError(f"{what}: '${{' cannot appear in a dial string")
    return text


def _endpoint_string(
    func: str,
    dest_url: str,
    profile: str,
    gateway: str | None,
    proxy: str | None,
    endpoint: str,
) -> str:
    _target(dest_url, f"{func}(dest_url=...)")
    _matching(endpoint, _NAME, f"{func}(endpoint=...)", "endpoint name")
    if endpoint != "sofia":
        if gateway is not None or proxy is not None:
            raise ValueError(f"{func}: gateway and proxy only apply to the sofia endpoint")
        return f"{endpoint}/{dest_url}"
    if gateway is not None:
        if proxy is not None:
            # A gateway brings its own proxy from its configuration.
            raise ValueError(f"{func}: give either gateway or proxy, not both")
        _matching(gateway, _NAME, f"{func}(gateway=...)", "gateway name")
        return f"sofia/gateway/{gateway}/{dest_url}"
    _matching(profile, _NAME, f"{func}(profile=...)", "sofia profile name")
    if profile == "gateway":
        raise ValueError(f"{func}(profile=...): 'gateway' names a gateway; use gateway=...")
    url = f"sofia/{profile}/{dest_url}"
    if proxy is not None:
        check_line(proxy, f"{func}(proxy=...)")
        if not proxy.strip():
            raise ValueError(f"{func}(proxy=...): must not be empty")
        # mod_sofia sends the INVITE through the route given after ";fs_path=".
        url += ";fs_path=" + _encode_proxy(proxy)
    return url


def dial_string(
    dest_url: str,
    *,
    profile: str = "external",
    gateway: str | None = None,
    proxy: str | None = None,
    endpoint: str = "sofia",
    variables: Mapping[str, VariableValue] | None = None,
) -> str:
    """The dial string (``{vars}endpoint/target``) as FreeSWITCH's dial-string parser reads it.

    This is the text ``originate`` and the ``bridge`` application parse, after
    their argument was cut into words: :func:`originate` escapes it once more as
    its first word. ``endpoint="sofia"`` dials ``sofia/<profile>/<dest_url>``,
    or ``sofia/gateway/<gateway>/<dest_url>``; ``proxy`` (``host[:port]`` or a
    ``sip:`` URI) routes the call with mod_sofia's ``;fs_path=`` suffix. Other
    endpoints dial ``<endpoint>/<dest_url>`` (``loopback/9999/default``,
    ``error/user_busy``). See :func:`originate` for ``variables``.
    """
    return _dial_string("dial_string", dest_url, profile, gateway, proxy, endpoint, variables, {})


def _dial_string(
    func: str,
    dest_url: str,
    profile: str,
    gateway: str | None,
    proxy: str | None,
    endpoint: str,
    variables: Mapping[str, VariableValue] | None,
    arguments: Mapping[str, str],
) -> str:
    """Build the dial string; ``arguments`` maps variables set by a builder argument to its name."""
    url = _endpoint_string(func, dest_url, profile, gateway, proxy, endpoint)
    braced: list[tuple[str, str]] = []
    angled: list[tuple[str, str]] = []
    labels = {
        name: f"{func}({arguments[name]}=...)"
        if name in arguments
        else f"{func}(variables[{name!r}]=...)"
        for name in variables or {}
    }
    for name, raw in (variables or {}).items():
        what = labels[name]
        _variable_name(name, f"{func}(variables=...) name {name!r}")
        value = _variable_text(raw, what)
        if not value:
            raise ValueError(f"{what}: FreeSWITCH ignores an empty value; leave the variable out")
        if _WORD_CONTROL.search(value):
            raise ValueError(f"{what}: vertical tab and form feed cannot be passed")
        # Block ends are found by counting brackets, whatever the escaping: a
        # value with unbalanced braces can still ride in the <> block.
        if _brackets_balanced(value, "{", "}"):
            braced.append((name, value))
        elif _brackets_balanced(value, "<", ">"):
            angled.append((name, value))
        else:
            raise ValueError(f"{what}: unbalanced '{{}}' and '<>' cannot both be represented")
    text = _block(angled, "<", ">") + _block(braced, "{", "}") + url
    nested = _NESTED_VARS_TRIGGER in text.translate(_ASCII_LOWER)
    for name, raw in (variables or {}).items():
        if not nested and "${" in _variable_text(raw, name):
            raise ValueError(
                f"{labels[name]}: FreeSWITCH refuses values containing '${{' "
                "unless origination_nested_vars=true"
            )
    return text


def originate(
    dest_url: str,
    *,
    profile: str = "external",
    gateway: str | None = None,
    proxy: str | None = None,
    endpoint: str = "sofia",
    app_name: str = "park",
    app_args: str = "",
    extension: str | None = None,
    dialplan: str | None = None,
    context: str | None = None,
    timeout: int | None = None,
    caller_id_name: str | None = None,
    caller_id_number: str | None = None,
    codec: str | None = None,
    x_headers: Mapping[str, str] | None = None,
    variables: Mapping[str, VariableValue] | None = None,
    uuid: str | None = None,
) -> str:
    """``originate <dial string> &<app>(<args>)``, or ``... <extension> [<dialplan> <context>]``.

    The new leg is put in ``app_name`` (``park`` by default) once answered, or
    sent to ``extension`` through the dialplan. These become ``{}`` channel
    variables, in this order: ``uuid`` (``origination_uuid``), ``timeout``
    (``originate_timeout``, seconds), ``caller_id_name`` / ``caller_id_number``
    (``origination_caller_id_*``), ``codec`` (``absolute_codec_string``),
    ``x_headers`` (``sip_h_X-<name>``, sent as SIP headers ``X-<name>``), then
    ``variables``. Values are escaped so that FreeSWITCH sets exactly them;
    empty values, and values containing ``${`` unless
    ``origination_nested_vars=true`` is among ``variables``, raise ValueError.
    ``app_args`` reach the application verbatim (FreeSWITCH expands ``${...}``
    in them when the application runs) and cannot contain ``)``.
    See :func:`dial_string` for the destination arguments.
    """
    managed: dict[str, VariableValue] = {}
    arguments: dict[str, str] = {}
    for name, argument, value in (
        ("origination_uuid", "uuid", uuid),
        ("originate_timeout", "timeout", timeout),
        ("origination_caller_id_name", "caller_id_name", caller_id_name),
        ("origination_caller_id_number", "caller_id_number", caller_id_number),
        ("absolute_codec_string", "codec", codec),
    ):
        if value is not None:
            managed[name] = value
            arguments[name] = argument
    if uuid is not None:
        _uuid(uuid, "originate(uuid=...)")
    if timeout is not None:
        _positive(timeout, "originate(timeout=...)")
    for header, value in (x_headers or {}).items():
        _matching(header, _NAME, "originate(x_headers=...)", "SIP header name")
        managed[f"sip_h_X-{header}"] = value
        arguments[f"sip_h_X-{header}"] = f"x_headers[{header!r}]"
    for name in variables or {}:
        if name in managed:
            raise ValueError(f"originate(variables=...): {name!r} is already set by an argument")
    all_variables = {**managed, **(variables or {})}
    url = _dial_string(
        "originate", dest_url, profile, gateway, proxy, endpoint, all_variables, arguments
    )
    # Arguments were checked one by one: only a mix of them can fail here.
    words = [_word(url, "originate")]
    if extension is None:
        if dialplan is not None or context is not None:
            raise ValueError("originate: dialplan and context only apply with an extension")
        _matching(app_name, _NAME, "originate(app_name=...)", "application name")
        check_line(app_args, "originate(app_args=...)")
        if ")" in app_args:
            raise ValueError("originate(app_args=...): ')' would end the application arguments")
        words.append(_word(f"&{app_name}({app_args})", "originate(app_args=...)"))
    else:
        if app_args:
            raise ValueError("originate: give either extension or app_args, not both")
        if extension.startswith("&"):
            raise ValueError("originate(extension=...): a leading '&' names an application")
        words.append(_positional(extension, "originate(extension=...)"))
        if dialplan is not None or context is not None:
            words.append(_positional(dialplan or "XML", "originate(dialplan=...)"))
        if context is not None:
            words.append(_positional(context, "originate(context=...)"))
    return _command("originate", *words)


def _positional(text: str, what: str) -> str:
    if text.translate(_ASCII_LOWER) == "undef":
        raise ValueError(f"{what}: FreeSWITCH reads 'undef' as an absent argument")
    return _word(text, what)


def uuid_kill(uuid: str, cause: str | int | None = None) -> str:
    """``uuid_kill <uuid> [<cause>]``: hang up a channel (NORMAL_CLEARING by default)."""
    words = ["uuid_kill", _uuid(uuid, "uuid_kill(uuid=...)")]
    if cause is not None:
        words.append(_cause(cause, "uuid_kill(cause=...)"))
    return _command(*words)


def uuid_answer(uuid: str) -> str:
    """``uuid_answer <uuid>``."""
    return _command("uuid_answer", _uuid(uuid, "uuid_answer(uuid=...)"))


def uuid_park(uuid: str) -> str:
    """``uuid_park <uuid>``."""
    return _command("uuid_park", _uuid(uuid, "uuid_park(uuid=...)"))


def check_uuid(uuid: str, what: str = "uuid") -> str:
    """Return ``uuid`` if it can be a channel or job uuid argument, else raise ValueError."""
    return _uuid(uuid, what)


def uuid_exists(uuid: str) -> str:
    """``uuid_exists <uuid>``: answers ``true`` or ``false``."""
    return _command("uuid_exists", _uuid(uuid, "uuid_exists(uuid=...)"))


def uuid_flush_dtmf(uuid: str) -> str:
    """``uuid_flush_dtmf <uuid>``: drop the channel's queued DTMF."""
    return _command("uuid_flush_dtmf", _uuid(uuid, "uuid_flush_dtmf(uuid=...)"))


def uuid_bridge(uuid: str, other_uuid: str) -> str:
    """``uuid_bridge <uuid> <other_uuid>``: bridge two existing channels."""
    return _command(
        "uuid_bridge",
        _uuid(uuid, "uuid_bridge(uuid=...)"),
        _uuid(other_uuid, "uuid_bridge(other_uuid=...)"),
    )


def uuid_getvar(uuid: str, name: str) -> str:
    """``uuid_getvar <uuid> <name>``: answers the raw value, or ``_undef_``."""
    return _command(
        "uuid_getvar",
        _uuid(uuid, "uuid_getvar(uuid=...)"),
        _variable_name(name, "uuid_getvar(name=...)"),
    )


def uuid_setvar(uuid: str, name: str, value: VariableValue | None = None) -> str:
    """``uuid_setvar <uuid> <name> [<value>]``; no value unsets the variable.

    The value is the rest of the line, escaped to arrive whole (spaces, quotes,
    backslashes included). uuid_setvar does not refuse ``${``.
    """
    words = [
        "uuid_setvar",
        _uuid(uuid, "uuid_setvar(uuid=...)"),
        _variable_name(name, "uuid_setvar(name=...)"),
    ]
    if value is not None:
        what = "uuid_setvar(value=...)"
        text = _variable_text(value, what)
        if not text:
            raise ValueError(f"{what}: an empty value unsets the variable; pass None to unset")
        words.append(_word(text, what))
    return _command(*words)


def uuid_setvar_multi(uuid: str, variables: Mapping[str, VariableValue]) -> str:
    """``uuid_setvar_multi <uuid> <name>=<value>;...``: set several variables at once.

    Values are escaped for the ``;`` split (``\\;``). FreeSWITCH refuses values
    containing ``${`` here, so they raise ValueError; use :func:`uuid_setvar`.
    """
    channel = _uuid(uuid, "uuid_setvar_multi(uuid=...)")
    if not variables:
        raise ValueError("uuid_setvar_multi(variables=...): give at least one variable")
    if len(variables) > _SETVAR_MULTI_MAX:
        raise ValueError(f"uuid_setvar_multi(variables=...): at most {_SETVAR_MULTI_MAX}")
    pairs = []
    for name, raw in variables.items():
        what = f"uuid_setvar_multi(variables[{name!r}]=...)"
        _variable_name(name, f"uuid_setvar_multi(variables=...) name {name!r}")
        value = _variable_text(raw, what)
        if not value:
            raise ValueError(f"{what}: an empty value unsets the variable")
        if "${" in value:
            raise ValueError(f"{what}: uuid_setvar_multi refuses values containing '${{'")
        if _WORD_CONTROL.search(value):
            raise ValueError(f"{what}: vertical tab and form feed cannot be passed")
        # A trailing tab of the last value would be trimmed with the command line.
        escaped = _escape_cleanup(value, ";").replace("\t", "\\t")
        pairs.append(f"{name}={escaped}")
    return _command("uuid_setvar_multi", channel, ";".join(pairs))


def uuid_broadcast(
    uuid: str,
    path: str,
    leg: str = "aleg",
    *,
    app: str | None = None,
    hangup_cause: str | int | None = None,
) -> str:
    """``uuid_broadcast <uuid> <path> <leg>``: run an application on a channel.

    ``path`` is a file to play, or ``app::args`` (``playback::/tmp/a.wav``,
    ``respond::486``); with ``app`` given, ``path`` holds its args. ``leg`` is
    ``aleg``, ``bleg``, ``holdb`` or ``both``. ``hangup_cause`` hangs the
    channel up with that cause once the application ends (``app!CAUSE::args``).
    """
    channel = _uuid(uuid, "uuid_broadcast(uuid=...)")
    _choice(leg, _BROADCAST_LEGS, "uuid_broadcast(leg=...)")
    check_line(path, "uuid_broadcast(path=...)")
    application: str | None = None
    if app is not None:
        application = _matching(app, _NAME, "uuid_broadcast(app=...)", "application name")
    else:
        # switch_ivr_broadcast splits "app::args" at the first ':' when a second follows.
        colon = path.find(":")
        if colon >= 0 and path[colon : colon + 2] == "::":
            application, path = path[:colon], path[colon + 2 :]
    if hangup_cause is not None:
        cause = _cause(hangup_cause, "uuid_broadcast(hangup_cause=...)")
        application = application or "playback"
        if "!" in application:
            raise ValueError("uuid_broadcast: the path already names a hangup cause ('!')")
        application += "!" + cause
    spec = path if application is None else f"{application}::{path}"
    return _command("uuid_broadcast", channel, _word(spec, "uuid_broadcast(path=...)"), leg)


def uuid_break(uuid: str, *, all_queued: bool = False, both_legs: bool = False) -> str:
    """``uuid_break <uuid> [all] [both]``: stop the media playing on the channel.

    ``all_queued`` also drops queued applications; ``both_legs`` breaks the
    bridged partner too.
    """
    flags = [flag for flag, wanted in (("all", all_queued), ("both", both_legs)) if wanted]
    return _command("uuid_break", _uuid(uuid, "uuid_break(uuid=...)"), *flags)


def uuid_hold(uuid: str, mode: str = "on") -> str:
    """``uuid_hold [off|toggle] <uuid>``; ``mode`` is ``on``, ``off`` or ``toggle``."""
    channel = _uuid(uuid, "uuid_hold(uuid=...)")
    _choice(mode, ("on", "off", "toggle"), "uuid_hold(mode=...)")
    return _command("uuid_hold", channel) if mode == "on" else _command("uuid_hold", mode, channel)


def uuid_media(uuid: str, enabled: bool = True) -> str:
    """``uuid_media [off] <uuid>``: bring media back through FreeSWITCH, or take it out."""
    channel = _uuid(uuid, "uuid_media(uuid=...)")
    return _command("uuid_media", channel) if enabled else _command("uuid_media", "off", channel)


def uuid_transfer(
    uuid: str,
    dest: str,
    dialplan: str | None = None,
    context: str | None = None,
    leg: str | None = None,
) -> str:
    """``uuid_transfer <uuid> [-bleg|-both] <dest> [<dialplan> [<context>]]``.

    ``leg`` is None (this channel), ``bleg`` or ``both``. A context without a
    dialplan gets the default ``XML``.
    """
    words = [_uuid(uuid, "uuid_transfer(uuid=...)")]
    if leg is not None:
        words.append("-" + _choice(leg, ("bleg", "both"), "uuid_transfer(leg=...)"))
    if dest.startswith("-"):
        raise ValueError("uuid_transfer(dest=...): a leading '-' is read as a leg option")
    words.append(_word(dest, "uuid_transfer(dest=...)"))
    if dialplan is not None or context is not None:
        words.append(_word(dialplan or "XML", "uuid_transfer(dialplan=...)"))
    if context is not None:
        words.append(_word(context, "uuid_transfer(context=...)"))
    return _command("uuid_transfer", *words)


def uuid_send_dtmf(uuid: str, digits: str, duration_ms: int | None = None) -> str:
    """``uuid_send_dtmf <uuid> <digits>[@<duration_ms>]``.

    Digits are ``0-9 * # A-D`` (any case), ``w``/``W`` for a 0.5/1 s pause and
    ``F`` for a flash. FreeSWITCH ignores a duration below its minimum.
    """
    channel = _uuid(uuid, "uuid_send_dtmf(uuid=...)")
    _matching(digits, _DTMF, "uuid_send_dtmf(digits=...)", "DTMF string (0-9*#A-DwWF)")
    if duration_ms is not None:
        digits += f"@{_positive(duration_ms, 'uuid_send_dtmf(duration_ms=...)')}"
    return _command("uuid_send_dtmf", channel, digits)


def uuid_record(uuid: str, action: str, path: str, limit: int | None = None) -> str:
    """``uuid_record <uuid> <action> <path> [<limit>]``.

    ``action`` is start, stop, pause, resume, mask or unmask; ``path`` may be
    ``all`` to stop every recording; ``limit`` (seconds) applies to start.
    """
    channel = _uuid(uuid, "uuid_record(uuid=...)")
    _choice(action, _RECORD_ACTIONS, "uuid_record(action=...)")
    words = ["uuid_record", channel, action, _word(path, "uuid_record(path=...)")]
    if limit is not None:
        if action != "start":
            raise ValueError("uuid_record(limit=...): only applies to start")
        words.append(str(_non_negative(limit, "uuid_record(limit=...)")))
    return _command(*words)


def uuid_displace(
    uuid: str, action: str, path: str, limit: int | None = None, mux: bool = False
) -> str:
    """``uuid_displace <uuid> start|stop <path> [<limit>] [mux]``.

    Plays ``path`` in place of (or, with ``mux``, mixed into) the audio the
    channel sends; ``limit`` is in seconds, 0 for none.
    """
    channel = _uuid(uuid, "uuid_displace(uuid=...)")
    _choice(action, ("start", "stop"), "uuid_displace(action=...)")
    words = [channel, action, _word(path, "uuid_displace(path=...)")]
    if limit is not None or mux:
        words.append(str(_non_negative(limit or 0, "uuid_displace(limit=...)")))
    if mux:
        words.append("mux")
    return _command("uuid_displace", *words)


def uuid_audio(
    uuid: str,
    action: str = "start",
    direction: str = "write",
    adjustment: str = "mute",
    level: int = 1,
) -> str:
    """``uuid_audio <uuid> start read|write mute|level <level>``, or ``uuid_audio <uuid> stop``.

    ``mute`` with ``level`` 1 silences the direction (0 leaves it audible; above 1
    adds comfort noise of that level); ``level`` changes its volume (-4 to 4).
    """
    channel = _uuid(uuid, "uuid_audio(uuid=...)")
    if _choice(action, ("start", "stop"), "uuid_audio(action=...)") == "stop":
        return _command("uuid_audio", channel, "stop")
    _choice(direction, ("read", "write"), "uuid_audio(direction=...)")
    _choice(adjustment, ("mute", "level"), "uuid_audio(adjustment=...)")
    if isinstance(level, bool) or not isinstance(level, int):
        raise ValueError(f"uuid_audio(level=...): must be a whole number, not {level!r}")
    return _command("uuid_audio", channel, "start", direction, adjustment, str(level))


def uuid_deflect(uuid: str, uri: str) -> str:
    """``uuid_deflect <uuid> <uri>``: send a SIP REFER to ``uri`` (``sip:`` optional)."""
    channel = _uuid(uuid, "uuid_deflect(uuid=...)")
    check_line(uri, "uuid_deflect(uri=...)")
    # The URI is the raw rest of the line: no escape applies to it.
    if not uri or _URI_FORBIDDEN.search(uri):
        raise ValueError("uuid_deflect(uri=...): must be a non-empty URI without whitespace")
    return _command("uuid_deflect", channel, uri)


def uuid_phone_event(uuid: str, event: str | None = None) -> str:
    """``uuid_phone_event <uuid> [<event>]``: send a phone event (e.g. ``talk``, ``hold``)."""
    words = ["uuid_phone_event", _uuid(uuid, "uuid_phone_event(uuid=...)")]
    if event is not None:
        words.append(_word(event, "uuid_phone_event(event=...)"))
    return _command(*words)


def hupall(cause: str | int | None = None, **match: str) -> str:
    """``hupall [<cause> [<name> <value>]...]``: hang up every channel, or those matching.

    Each keyword is a channel variable the channel must hold with that exact
    value (at most five). The cause defaults to MANAGER_REQUEST.
    """
    if len(match) > _HUPALL_MAX_PAIRS:
        raise ValueError(f"hupall: at most {_HUPALL_MAX_PAIRS} variables can be matched")
    if cause is None and not match:
        return "hupall"
    words = [_cause("MANAGER_REQUEST" if cause is None else cause, "hupall(cause=...)")]
    for name, value in match.items():
        words.append(_variable_name(name, f"hupall({name}=...)"))
        words.append(_word(_variable_text(value, f"hupall({name}=...)"), f"hupall({name}=...)"))
    return _command("hupall", *words)


def fsctl(*args: str | int) -> str:
    """``fsctl <args>...``: switch-wide controls (``fsctl loglevel DEBUG``, ``fsctl pause``...)."""
    if not args:
        raise ValueError("fsctl: give the control and its arguments")
    words = []
    for index, arg in enumerate(args):
        what = f"fsctl(args[{index}]=...)"
        words.append(_word(_variable_text(arg, what), what))
    return _command("fsctl", *words)


def sched_api(delay: int, group: str, command: str, *, own_thread: bool = False) -> str:
    """``sched_api +<delay> <group> <command>[&]``: run API ``command`` in ``delay`` seconds.

    ``command`` is passed verbatim (build it with these builders); ``group``
    names the task for :func:`sched_del`; ``own_thread`` runs it on its own
    thread (the trailing ``&``).
    """
    seconds = _non_negative(delay, "sched_api(delay=...)")
    group_word = _matching(group, _NAME, "sched_api(group=...)", "task group name")
    check_line(command, "sched_api(command=...)")
    if not command.strip(" ") or command != command.strip(" \t\v"):
        raise ValueError("sched_api(command=...): must not be empty nor start or end with spaces")
    if command.endswith("&"):
        raise ValueError("sched_api(command=...): a trailing '&' is read as own_thread")
    return _command("sched_api", f"+{seconds}", group_word, command + ("&" if own_thread else ""))


def sched_del(task: str | int) -> str:
    """``sched_del <task id or group>``: cancel scheduled API tasks."""
    if isinstance(task, int) and not isinstance(task, bool):
        return _command("sched_del", str(_positive(task, "sched_del(task=...)")))
    if not isinstance(task, str):
        raise ValueError(f"sched_del(task=...): must be a task id or a group name, not {task!r}")
    return _command("sched_del", _matching(task, _NAME, "sched_del(task=...)", "task group name"))


def sched_hangup(delay: int, uuid: str, cause: str | int | None = None) -> str:
    """``sched_hangup +<delay> <uuid> [<cause>]``: hang up in ``delay`` s (ALLOTTED_TIMEOUT)."""
    seconds = _non_negative(delay, "sched_hangup(delay=...)")
    words = ["sched_hangup", f"+{seconds}", _uuid(uuid, "sched_hangup(uuid=...)")]
    if cause is not None:
        words.append(_cause(cause, "sched_hangup(cause=...)"))
    return _command(*words)
