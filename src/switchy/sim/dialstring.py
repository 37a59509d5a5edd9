"""How FreeSWITCH 1.10.12 reads the argument string of the ``originate`` API.

A model of the parsing passes, written from the FreeSWITCH sources
(``switch_utils.c``: ``switch_separate_string`` and ``cleanup_separated_string``;
``switch_event.c``: ``switch_event_create_brackets``; ``switch_ivr_originate.c``;
``mod_commands.c``: ``originate_function``) and the live-verified table of
ESL_PROTOCOL.md §6.1. The simulator executes ``originate`` with it, and
:mod:`switchy.esl.commands` is tested against it.

The argument string goes through these passes, each with its own unescaping:

1. ``switch_separate_string(' ')`` cuts the API argument into words (:func:`separate_args`).
2. The call URL: ``<...>`` and ``{...}`` blocks at its head hold variables for
   every leg; the rest is split on ``|`` (groups dialled one after the other),
   then on ``,`` (legs of a group dialled together), each leg may start with
   ``[...]`` blocks of its own variables; ``:_:`` separates enterprise threads.
3. Each block is split on ``,`` (or the ``^^X`` delimiter), then each
   ``name=value`` at its first ``=``.

Every split is a :func:`separate_string`, so quotes and backslash escapes are
consumed again at each level.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = [
    "MALFORMED_CAUSE",
    "MAX_PEERS",
    "ORIGINATE_USAGE",
    "DialGroup",
    "DialLeg",
    "DialThread",
    "OriginateError",
    "OriginateRequest",
    "cleanup_token",
    "parse_dial_string",
    "parse_originate",
    "separate_args",
    "separate_string",
]

#: ``MAX_PEERS`` of switch_ivr_originate.c: the most groups, legs or threads a split keeps.
MAX_PEERS = 128
#: The exact output of ``originate`` called with a wrong number of arguments.
ORIGINATE_USAGE = (
    "-USAGE: <call url> <exten>|&<application_name>(<app_args>) [<dialplan>] [<context>] "
    "[<cid_name>] [<cid_num>] [<timeout_sec>]\n"
)
#: The cause every malformed dial string ends with (ESL_PROTOCOL.md §4, observed live).
MALFORMED_CAUSE = "DESTINATION_OUT_OF_ORDER"

_ENTERPRISE_DELIMITER = ":_:"  # SWITCH_ENT_ORIGINATE_DELIM
_NESTED_VARS_TRIGGER = "origination_nested_vars=true"
_BLOCK_PAIRS = 1024  # var_array in switch_event_create_brackets
_ORIGINATE_WORDS = 10  # argv[10] in originate_function
_DEFAULT_TIMEOUT = 60  # SWITCH_DEFAULT_TIMEOUT
# switch_ivr_originate marks the commas inside a [] block with these bytes
# before it splits the legs, so that the leg split leaves them alone.
_QUOTED_COMMA = "\x01"
_UNQUOTED_COMMA = "\x02"
_ESCAPE = "\\"
_UNESCAPES = {"n": "\n", "r": "\r", "t": "\t", "s": " "}
_C_SPACE = " \t\n\v\f\r"  # isspace() in the C locale, which atoi skips
# What switch_strip_whitespace trims from an API argument (CR, LF, tab, space, VT).
_API_WHITESPACE = "\r\n\t \v"


class OriginateError(Exception):
    """``originate`` fails before dialling; ``output`` is FreeSWITCH's exact reply body."""

    def __init__(self, output: str) -> None:
        super().__init__(output.rstrip("\n"))
        self.output = output


@dataclass(frozen=True)
class DialLeg:
    """One leg to create: its endpoint string and the channel variables it gets.

    ``variables`` are the ``<>``/``{}`` variables overridden by the leg's ``[]``
    ones, without the values FreeSWITCH refuses to set (see :class:`DialThread`).
    """

    endpoint: str
    variables: dict[str, str] = field(default_factory=dict)

    @property
    def technology(self) -> str:
        """The endpoint module, before the first ``/`` (``sofia``, ``loopback``, ``error``...)."""
        return self.endpoint.partition("/")[0]

    @property
    def target(self) -> str:
        """What the endpoint module is asked to call: the text after the first ``/``."""
        return self.endpoint.partition("/")[2]


@dataclass(frozen=True)
class DialGroup:
    """Legs dialled at the same time (``a,b``).

    A group whose text is malformed has ``failure_cause`` set: when the switch
    reaches it, it creates the legs parsed before the fault, then gives up with
    that cause. Groups after a successful one are never parsed by FreeSWITCH,
    so their faults never show.
    """

    legs: tuple[DialLeg, ...]
    failure_cause: str | None = None


@dataclass(frozen=True)
class DialThread:
    """One ``switch_ivr_originate`` run: groups tried one after the other (``a|b``).

    ``variables`` is the ``<>``/``{}`` event that originate itself consults
    (``originate_timeout``, ``ignore_early_media``...). ``check_vars`` is false
    when ``origination_nested_vars=true`` lets values containing ``${`` through.
    ``failure_cause`` is set on an enterprise thread whose text is malformed.
    """

    variables: dict[str, str]
    groups: tuple[DialGroup, ...]
    check_vars: bool = True
    failure_cause: str | None = None

    def originate_timeout(self, api_timeout: int) -> int:
        """Seconds to wait for answer: ``originate_timeout`` if positive, else ``api_timeout``."""
        timeout = _atoi(self.variables.get("originate_timeout", ""))
        return timeout if timeout > 0 else api_timeout


@dataclass(frozen=True)
class OriginateRequest:
    """An ``originate`` API call, as FreeSWITCH understood it."""

    call_url: str
    threads: tuple[DialThread, ...]
    application: str | None
    application_args: str | None
    extension: str | None
    dialplan: str
    context: str
    caller_id_name: str | None
    caller_id_number: str | None
    timeout: int

    @property
    def enterprise(self) -> bool:
        """True when ``:_:`` splits the call URL into threads dialled in parallel."""
        return _ENTERPRISE_DELIMITER in self.call_url

    @property
    def legs(self) -> tuple[tuple[DialLeg, ...], ...]:
        """The legs of each sequential group; for enterprise originate use :attr:`threads`."""
        return tuple(group.legs for group in self._single_thread.groups)

    @property
    def global_variables(self) -> dict[str, str]:
        """The ``<>``/``{}`` variables; for enterprise originate use :attr:`threads`."""
        return self._single_thread.variables

    @property
    def _single_thread(self) -> DialThread:
        if self.enterprise:
            raise ValueError("enterprise originate (':_:') has several threads: use .threads")
        return self.threads[0]


def separate_string(text: str, delim: str, limit: int | None = None) -> list[str]:
    """Split ``text`` like ``switch_separate_string(text, delim, argv, limit)``.

    ``'...'`` groups are kept whole, a backslash protects the next character,
    and every part is cleaned by :func:`cleanup_token`. With ``limit`` parts the
    last one holds the rest of the text, unsplit but cleaned. A text starting
    ``^^X`` (and longer than that) is split on ``X`` instead. An empty
    ``delim`` never splits (a ``^^`` block with nothing after it gives one).
    """
    # C strings end at the first NUL.
    text = text.partition("\0")[0]
    limit = len(text) + 1 if limit is None else limit
    if text.startswith("^^") and len(text) > 3:
        delim, text = text[2], text[3:]
    if limit <= 0 or not text:
        return []
    if _ESCAPE not in text and "'" not in text:
        # Nothing quoted or escaped (nearly every dial string): str methods find
        # the same parts, and cleaning a part only trims its spaces.
        return _plain_split(text, delim, limit)
    if delim == " ":
        spans = _blank_spans(text, limit)
        return [cleanup_token(text[start:end], "") for start, end in spans]
    spans = _char_spans(text, delim, limit)
    return [cleanup_token(text[start:end], delim) for start, end in spans]


_SPACES = re.compile(" +")


def _plain_split(text: str, delim: str, limit: int) -> list[str]:
    """:func:`separate_string` of a non-empty ``text`` without quotes or backslashes."""
    if delim == " ":
        words = text.lstrip(" ")
        if not words:
            return [""]  # only blanks: one empty word
        # Runs of blanks separate words; blanks ending the text open no word.
        # (re.split takes a maxsplit of 0 as no limit.)
        parts = _SPACES.split(words, limit - 1) if limit > 1 else [words]
    else:
        # A delimiter ending the text opens no empty part.
        parts = text.split(delim, limit - 1) if delim else [text]
    if len(parts) > 1 and not parts[-1]:
        parts.pop()
    return [part.strip(" ") for part in parts]


def separate_args(text: str, limit: int | None = None) -> list[str]:
    """Split an API argument into words, as most ``mod_commands`` APIs do.

    With ``limit`` words the last one is the rest of the line, quote-stripped
    and trimmed: ``uuid_setvar`` reads its value with ``limit=3``.
    """
    return separate_string(text, " ", limit)


def cleanup_token(token: str, delim: str) -> str:
    """Clean one split part like ``cleanup_separated_string``.

    Leading and trailing spaces (not tabs) are dropped, except quoted or
    escaped ones; ``'`` quotes are removed when another ``'`` follows (or one
    is open); ``\\'``, ``\\"``, ``\\\\`` and ``\\<delim>`` stand for the character,
    ``\\n \\r \\t \\s`` for newline, CR, tab and space; any other backslash is kept.
    """
    if _ESCAPE not in token and "'" not in token:
        return token.strip(" ")
    out: list[str] = []
    end = 0
    last_quote = token.rfind("'")
    inside_quotes = False
    i = len(token) - len(token.lstrip(" "))
    while i < len(token):
        char = token[i]
        if char == _ESCAPE and i + 1 < len(token):
            following = token[i + 1]
            unescaped: str | None
            if following in ("'", '"', _ESCAPE) or (delim and following == delim):
                unescaped = following
            else:
                unescaped = _UNESCAPES.get(following)
            if unescaped is not None:
                out.append(unescaped)
                end = len(out)
                i += 2
                continue
        if char == "'" and (inside_quotes or i < last_quote):
            inside_quotes = not inside_quotes
            if inside_quotes:
                end = len(out)
        else:
            out.append(char)
            if char != " " or inside_quotes:
                end = len(out)
        i += 1
    return "".join(out[:end])


def _blank_spans(text: str, limit: int) -> list[tuple[int, int]]:
    """Word boundaries of separate_string_blank_delim (before cleanup)."""
    starts: list[int] = []
    ends: list[int] = []
    inside_quotes = False
    i = 0
    while i < len(text) and len(starts) < limit:
        while i < len(text) and text[i] == " ":
            i += 1
        starts.append(i)
        if len(starts) == limit:
            break
        while i < len(text):
            char = text[i]
            if char == _ESCAPE:
                i += 1
            elif char == "'":
                # Unlike the other splits, a lone quote here runs to the end of the text.
                inside_quotes = not inside_quotes
            elif char == " " and not inside_quotes:
                ends.append(i)
                break
            i += 1
        while i < len(text) and text[i] == " ":
            i += 1
    ends.extend([len(text)] * (len(starts) - len(ends)))
    return list(zip(starts, ends, strict=True))


def _char_spans(text: str, delim: str, limit: int) -> list[tuple[int, int]]:
    """Part boundaries of separate_string_char_delim (before cleanup)."""
    starts = [0]
    ends: list[int] = []
    # A quote opens a group only when another one follows somewhere in the text.
    last_quote = text.rfind("'")
    inside_quotes = False
    i = 0
    while i < len(text) and len(starts) < limit:
        char = text[i]
        if char == _ESCAPE:
            i += 1
        elif char == "'" and (inside_quotes or i < last_quote):
            inside_quotes = not inside_quotes
        elif char == delim and not inside_quotes:
            ends.append(i)
            if i + 1 == len(text):
                # A delimiter ending the text opens no empty part.
                break
            starts.append(i + 1)
        i += 1
    ends.extend([len(text)] * (len(starts) - len(ends)))
    return list(zip(starts, ends, strict=True))


def _find_end_paren(text: str, opener: str, closer: str) -> int | None:
    """Index of the bracket closing the one ``text`` opens with (``switch_find_end_paren``).

    Nesting counts, quotes and backslashes do not: a ``}`` inside a value ends a
    ``{}`` block unless a ``{`` before it balances it.
    """
    start = len(text) - len(text.lstrip(" "))
    if text[start : start + 1] != opener:
        return None
    close = text.find(closer, start + 1)
    if close < 0:
        return None
    if text.find(opener, start + 1, close) < 0:
        return close  # nothing nested
    depth = 1
    for index in range(start + 1, len(text)):
        char = text[index]
        if char == opener:
            depth += 1
        elif char == closer:
            depth -= 1
            if depth == 0:
                return index
    return None


def _set_variable(event: dict[str, str], name: str, value: str) -> None:
    """Add a header the way switch_event_add_header_string does.

    An empty value deletes the header. Not modelled: header names compare
    case-insensitively in FreeSWITCH, and a repeated name is kept twice in the
    event (lookups see the first, the channel ends with the last).
    """
    if not name:
        # switch_channel_set_variable ignores an empty name.
        return
    if value:
        event.pop(name, None)
        event[name] = value
    else:
        event.pop(name, None)


def _parse_block(
    data: str, opener: str, closer: str, delim: str, event: dict[str, str]
) -> str | None:
    """Read one block at the head of ``data`` into ``event`` (``switch_event_create_brackets``).

    Returns the text after the block, or None when the block never closes.
    """
    end = _find_end_paren(data, opener, closer)
    if end is None:
        return None
    content = data[1:end]
    if content.startswith("^^"):
        # {^^X...}: X is the delimiter. FreeSWITCH reads past the end of a bare
        # "{^^}"; taking it as empty is the harmless reading.
        delim, content = content[2:3], content[3:]
    for pair in separate_string(content, delim, _BLOCK_PAIRS):
        name_value = separate_string(pair, "=", 2)
        if len(name_value) == 2:
            _set_variable(event, name_value[0], name_value[1])
    # switch_event_create_brackets has a second-block path for "{..}{{..}}";
    # it is unreachable for sane input and not modelled.
    return data[end + 1 :]


def _mark_block_commas(group: str) -> str:
    """Hide the commas of ``[...]`` blocks from the leg split, as switch_ivr_originate does.

    A comma inside a ``[]`` block (not after a backslash) becomes a private
    byte: the quoted ones, and all those of a ``[^^X...]`` block, turn back into
    commas before the block is read; the others become the block's delimiter.
    """
    if "[" not in group:
        return group
    chars = list(group)
    end: int | None = None
    quoted = False
    alternate = False
    for index, char in enumerate(chars):
        if end is None and char == "[":
            found = _find_end_paren(group[index:], "[", "]")
            end = None if found is None else index + found
            alternate = group[index + 1 : index + 3] == "^^"
            quoted = False
        if char == "'":
            quoted = not quoted
        escaped = index > 0 and group[index - 1] == _ESCAPE
        if end is not None and index < end and char == "," and not escaped:
            chars[index] = _QUOTED_COMMA if quoted or alternate else _UNQUOTED_COMMA
        if index == end:
            end = None
    return "".join(chars)


def _parse_leg(text: str, thread_variables: Mapping[str, str], check_vars: bool) -> DialLeg | None:
    """Read one leg (``[...]`` blocks then the endpoint); None when malformed."""
    leg = text.lstrip(" ")
    leg_variables: dict[str, str] = {}
    while leg.startswith("["):
        block_end = _find_end_paren(leg, "[", "]")
        if block_end is None:
            return None
        leg = leg[:block_end].replace(_QUOTED_COMMA, ",") + leg[block_end:]
        rest = _parse_block(leg, "[", "]", _UNQUOTED_COMMA, leg_variables)
        if rest is None:
            return None
        leg = rest
    variables: dict[str, str] = {}
    # [] wins over {} (ESL_PROTOCOL.md §6.1, verified live with uuid_getvar).
    for source in (thread_variables, leg_variables):
        for name, value in source.items():
            # switch_channel_set_variable_var_check refuses values holding "${".
            if check_vars and "${" in value:
                continue
            variables.pop(name, None)
            variables[name] = value
    return DialLeg(endpoint=leg.lstrip(" "), variables=variables)


def _parse_group(group: str, thread_variables: Mapping[str, str], check_vars: bool) -> DialGroup:
    legs: list[DialLeg] = []
    for text in separate_string(_mark_block_commas(group), ",", MAX_PEERS):
        leg = _parse_leg(text, thread_variables, check_vars)
        if leg is None:
            return DialGroup(legs=tuple(legs), failure_cause=MALFORMED_CAUSE)
        legs.append(leg)
    return DialGroup(legs=tuple(legs))


def _ascii_lower(text: str) -> str:
    # strcasecmp and friends fold ASCII letters only.
    return text.translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _switch_true(value: str | None) -> bool:
    """``switch_true``: yes/on/true/t/enabled/active/allow or a non-zero number."""
    if value is None:
        return False
    if _ascii_lower(value) in ("yes", "on", "true", "t", "enabled", "active", "allow"):
        return True
    return value.isascii() and value.isdigit() and int(value) != 0


def _parse_thread(text: str, inherited: Mapping[str, str]) -> DialThread:
    """One switch_ivr_originate pass over ``text``; raises ValueError when malformed."""
    data = text.lstrip(" ")
    check_vars = not (
        _switch_true(inherited.get("origination_nested_vars"))
        or _NESTED_VARS_TRIGGER in _ascii_lower(data)
    )
    variables = dict(inherited)
    for opener, closer in (("<", ">"), ("{", "}")):
        while data.startswith(opener):
            rest = _parse_block(data, opener, closer, ",", variables)
            if rest is None:
                raise ValueError(f"unclosed {opener}{closer} block")
            data = rest
    data = data.lstrip(" ")
    if not data:
        raise ValueError("no origination URL")
    groups = tuple(
        _parse_group(group, variables, check_vars)
        for group in separate_string(data, "|", MAX_PEERS)
    )
    return DialThread(variables=variables, groups=groups, check_vars=check_vars)


def parse_dial_string(dial_string: str) -> tuple[DialThread, ...]:
    """Parse a call URL (the first ``originate`` argument, after :func:`separate_args`).

    Returns one thread, or one per ``:_:`` part for enterprise originate.
    Raises :class:`OriginateError` (``-ERR DESTINATION_OUT_OF_ORDER``) when
    nothing can be dialled.
    """
    failure = OriginateError(f"-ERR {MALFORMED_CAUSE}\n")
    if _ENTERPRISE_DELIMITER not in dial_string:
        try:
            return (_parse_thread(dial_string, {}),)
        except ValueError:
            raise failure from None
    data = dial_string.lstrip(" ")
    shared: dict[str, str] = {}
    while data.startswith("<"):
        rest = _parse_block(data, "<", ">", ",", shared)
        if rest is None:
            raise failure
        data = rest
    _set_variable(shared, "ignore_early_media", "true")
    threads: list[DialThread] = []
    for part in data.lstrip(" ").split(_ENTERPRISE_DELIMITER, MAX_PEERS - 1):
        try:
            threads.append(_parse_thread(part, shared))
        except ValueError:
            threads.append(
                DialThread(variables=dict(shared), groups=(), failure_cause=MALFORMED_CAUSE)
            )
    if all(thread.failure_cause for thread in threads):
        raise failure
    return tuple(threads)


def _atoi(text: str) -> int:
    """C ``atoi``: leading whitespace, a sign, digits; strtol's long, truncated to a 32-bit int."""
    digits = text.lstrip(_C_SPACE)
    sign = -1 if digits.startswith("-") else 1
    digits = digits[1:] if digits[:1] in ("+", "-") else digits
    length = 0
    while length < len(digits) and digits[length] in "0123456789":
        length += 1
    value = sign * int(digits[:length]) if length else 0
    value = max(min(value, 2**63 - 1), -(2**63)) & 0xFFFFFFFF
    return value - 2**32 if value >= 2**31 else value


def parse_originate(args: str) -> OriginateRequest:
    """Parse the argument string of ``api originate`` like FreeSWITCH 1.10.12.

    Raises :class:`OriginateError` carrying the exact output FreeSWITCH gives
    without dialling: ``-USAGE: ...`` for fewer than 2 or more than 7 words,
    ``-ERR DESTINATION_OUT_OF_ORDER`` for a call URL it cannot read.
    """
    words = separate_args(args.strip(_API_WHITESPACE), _ORIGINATE_WORDS)
    if not 2 <= len(words) <= 7:
        raise OriginateError(ORIGINATE_USAGE)
    slots: list[str | None] = [None if _ascii_lower(w) == "undef" else w for w in words]
    slots += [None] * (7 - len(slots))
    call_url, exten, dialplan, context, cid_name, cid_num, timeout = slots
    if exten is None:
        # FreeSWITCH asserts (aborts) here; the usage text is the simulator's stand-in.
        raise OriginateError(ORIGINATE_USAGE)
    threads = parse_dial_string(call_url or "")
    application = application_args = extension = None
    if exten.startswith("&") and len(exten) > 1:
        # The args end at the first ')' and start after the first '('.
        application, _, _ = exten[1:].partition(")")
        application, paren, application_args = application.partition("(")
        if not paren:
            application_args = None
    else:
        extension = exten
    return OriginateRequest(
        call_url=call_url or "",
        threads=threads,
        application=application,
        application_args=application_args,
        extension=extension,
        dialplan=dialplan or "XML",
        context=context or "default",
        caller_id_name=cid_name,
        caller_id_number=cid_num,
        # The timeout is stored in a uint32_t, where 0 means the default.
        timeout=(_atoi(timeout) & 0xFFFFFFFF or _DEFAULT_TIMEOUT) if timeout else _DEFAULT_TIMEOUT,
    )
