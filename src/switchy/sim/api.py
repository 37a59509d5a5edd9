"""API commands of the simulated switch (``api <command> <args>``).

Outputs are byte-exact with FreeSWITCH 1.10.12 as ESL_PROTOCOL.md §6 and the
traces record them, trailing newlines and their absence included. Arguments
are split like mod_commands splits them (:func:`switchy.sim.dialstring.separate_args`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from switchy import ids
from switchy.sim import apps, bert, bridge, media, wire
from switchy.sim.calling import CallingSite
from switchy.sim.causes import str2cause
from switchy.sim.dialstring import separate_args, separate_string
from switchy.sim.originate import originate
from switchy.sim.scheduler import Task
from switchy.sim.sofia import SofiaChannel
from switchy.sim.version import VERSION_FULL, VERSION_REVISION, VERSION_SHORT

if TYPE_CHECKING:
    from switchy.sim.channel import Channel
    from switchy.sim.switch import Node

ApiHandler = Callable[["Node", str], Awaitable[str]]

#: Every API command the simulator knows, by lower-case name.
COMMANDS: dict[str, ApiHandler] = {}


class UnknownCommand(Exception):
    """The node has no API command of that name (or it failed in FreeSWITCH's "not SUCCESS" way)."""


def api_command(name: str) -> Callable[[ApiHandler], ApiHandler]:
    """Register an API command handler under ``name``."""

    def register(handler: ApiHandler) -> ApiHandler:
        COMMANDS[name] = handler
        return handler

    return register


NO_SUCH_CHANNEL = "-ERR No such channel!\n"


@api_command("echo")
async def echo(node: Node, args: str) -> str:
    return args


@api_command("originate")
async def originate_command(node: Node, args: str) -> str:
    return await originate(node, args)


@api_command("version")
async def version(node: Node, args: str) -> str:
    if args.strip().lower() == "short":
        return f"{VERSION_SHORT}\n"
    return f"FreeSWITCH Version {VERSION_FULL} ({VERSION_REVISION})\n"


@api_command("hostname")
async def hostname(node: Node, args: str) -> str:
    return node.identity.hostname


@api_command("create_uuid")
async def create_uuid(node: Node, args: str) -> str:
    return ids.new_uuid()


@api_command("status")
async def status(node: Node, args: str) -> str:
    stats = node.stats
    ready = "is not ready" if node.shutting_down else "is ready"
    return (
        f"UP {uptime_text(node.clock() - node.started_at)}\n"
        f"FreeSWITCH (Version {VERSION_SHORT}-release {VERSION_REVISION}) {ready}\n"
        f"{stats.since_startup} session(s) since startup\n"
        f"{len(node.channels)} session(s) - peak {stats.peak}, "
        f"last 5min {stats.peak_five_minutes()} \n"
        f"{stats.last_sps} session(s) per Sec out of max {node.sessions_per_second}, "
        f"peak {stats.sps_peak}, last 5min {stats.sps_peak_five_minutes()} \n"
        f"{node.max_sessions} session(s) max\n"
        "min idle cpu 0.00/99.00\n"
        "Current Stack Size/Max 240K/8192K\n"
    )


def uptime_text(seconds: float) -> str:
    """``0 years, 0 days, 1 hour, ...``: FreeSWITCH's uptime wording, singular for 1."""
    micro = int(seconds * 1_000_000)
    parts = [
        ("year", micro // (365 * 86400 * 1_000_000)),
        ("day", micro // (86400 * 1_000_000) % 365),
        ("hour", micro // (3600 * 1_000_000) % 24),
        ("minute", micro // (60 * 1_000_000) % 60),
        ("second", micro // 1_000_000 % 60),
        ("millisecond", micro // 1000 % 1000),
        ("microsecond", micro % 1000),
    ]
    return ", ".join(f"{value} {unit}{'' if value == 1 else 's'}" for unit, value in parts)


@api_command("global_getvar")
async def global_getvar(node: Node, args: str) -> str:
    name = args.strip()
    if name:
        return node.global_variables.get(name, "")
    return "".join(f"{key}={value}\n" for key, value in node.global_variables.items())


# -- show ---------------------------------------------------------------------

CALL_COLUMNS = (
    "uuid",
    "direction",
    "created",
    "created_epoch",
    "name",
    "state",
    "cid_name",
    "cid_num",
    "ip_addr",
    "dest",
    "presence_id",
    "presence_data",
    "accountcode",
    "callstate",
    "callee_name",
    "callee_num",
    "callee_direction",
    "call_uuid",
    "hostname",
    "sent_callee_name",
    "sent_callee_num",
)
#: The b-leg columns of ``show calls``: the call's columns without call_uuid and hostname.
B_LEG_COLUMNS = tuple(name for name in CALL_COLUMNS if name not in ("call_uuid", "hostname"))
#: The columns ``show channels like <text>`` searches.
LIKE_COLUMNS = (
    "uuid",
    "name",
    "cid_name",
    "cid_num",
    "presence_data",
    "accountcode",
    "application_data",
)
SHOW_USAGE = (
    "-USAGE: codec|endpoint|application|api|dialplan|file|timer|calls [count]|"
    "channels [count|like <match string>]|calls|detailed_calls|bridged_calls|"
    "detailed_bridged_calls|aliases|complete|chat|management|modules|nat_map|say|"
    "interfaces|interface_types|tasks|limits|status\n"
)


@api_command("show")
async def show(node: Node, args: str) -> str:
    words = args.split()
    if not words:
        return SHOW_USAGE
    what, rest = words[0].lower(), [w.lower() for w in words[1:]]
    count = bool(rest) and rest[0] == "count"
    if count:
        rest = rest[1:]
    like = ""
    if len(rest) >= 2 and rest[0] == "like":
        like, rest = words[len(words) - len(rest) + 1], rest[2:]
    fmt, delim = "csv", ","
    if len(rest) >= 2 and rest[0] == "as":
        fmt = rest[1]
        if fmt == "delim" and len(rest) >= 3:
            delim = words[-1]
    if what == "channels":
        rows = [channel.row() for channel in node.channels]
        if like:
            rows = [row for row in rows if any(like in row[key] for key in LIKE_COLUMNS)]
    elif what == "calls":
        rows = _call_rows(node)
    else:
        return SHOW_USAGE
    if count:
        if fmt == "json":
            return json.dumps({"row_count": len(rows), "rows": []}, separators=(",", ":"))
        return f"\n{len(rows)} total.\n"
    if fmt == "json":
        if not rows:
            return '{"row_count": 0}\n'
        return json.dumps(
            {"row_count": len(rows), "rows": rows}, separators=(",", ":"), ensure_ascii=False
        )
    if not rows:
        return "\n0 total.\n"
    lines = [delim.join(rows[0].keys())]
    lines += [delim.join(row.values()) for row in rows]
    return "\n".join(lines) + f"\n\n{len(rows)} total.\n"


def _call_rows(node: Node) -> list[dict[str, str]]:
    """``show calls``: one row per bridged pair, and one per channel in no bridge."""
    rows: list[dict[str, str]] = []
    seen: set[str] = set()
    for channel in node.channels:
        if channel.uuid in seen:
            continue
        partner = channel.bridged_to
        row = {name: channel.row()[name] for name in CALL_COLUMNS}
        if partner is not None:
            seen.add(partner.uuid)
            partner_row = partner.row()
            row.update({f"b_{name}": partner_row[name] for name in B_LEG_COLUMNS})
        else:
            row.update({f"b_{name}": "" for name in B_LEG_COLUMNS})
        row["call_created_epoch"] = row["created_epoch"] if partner is not None else ""
        rows.append(row)
    return rows


# -- hangups ------------------------------------------------------------------


@api_command("hupall")
async def hupall(node: Node, args: str) -> str:
    words = separate_args(args)
    cause = str2cause(words[0]) if words else "MANAGER_REQUEST"
    pairs = [(words[i], words[i + 1]) for i in range(1, len(words) - 1, 2)]
    if not pairs:
        node.hangup_all(cause)
        return f"+OK hangup all channels with cause {cause}\n"

    def matches(channel: Channel) -> bool:
        return all(channel.variables.get(name) == value for name, value in pairs)

    node.hangup_all(cause, matches)
    more = "..." if len(pairs) > 1 else ""
    name, value = pairs[0]
    return f"+OK hangup all channels matching [{name}]=[{value}]{more} with cause: {cause}\n"


@api_command("uuid_kill")
async def uuid_kill(node: Node, args: str) -> str:
    text = args.strip()
    if not text:
        return "-USAGE: <uuid> [cause]\n"
    uuid, _, cause_text = text.partition(" ")
    channel = node.get_channel(uuid)
    if channel is None:
        return NO_SUCH_CHANNEL
    channel.hangup(str2cause(cause_text) if cause_text.strip() else "NORMAL_CLEARING")
    return "+OK\n"


# -- channel state ------------------------------------------------------------


@api_command("uuid_answer")
async def uuid_answer(node: Node, args: str) -> str:
    uuid = args.strip()
    if not uuid:
        return "-USAGE: <uuid>\n"
    channel = node.get_channel(uuid)
    if channel is None or not channel.answer():
        return "-ERROR\n"
    return "+OK\n"


@api_command("uuid_pre_answer")
async def uuid_pre_answer(node: Node, args: str) -> str:
    uuid = args.strip()
    if not uuid:
        return "-USAGE: <uuid>\n"
    channel = node.get_channel(uuid)
    if channel is None or not channel.pre_answer():
        return "-ERROR\n"
    return "+OK\n"


@api_command("uuid_exists")
async def uuid_exists(node: Node, args: str) -> str:
    return "true" if node.has_channel(args.strip()) else "false"


@api_command("uuid_setvar")
async def uuid_setvar(node: Node, args: str) -> str:
    words = separate_args(args, 3)
    if len(words) < 2 or not words[1]:
        return "-USAGE: <uuid> <var> [value]\n"
    channel = node.get_channel(words[0])
    if channel is None:
        return NO_SUCH_CHANNEL
    channel.set_var(words[1], words[2] if len(words) > 2 else None)
    return "+OK\n"


@api_command("uuid_setvar_multi")
async def uuid_setvar_multi(node: Node, args: str) -> str:
    usage = "-USAGE: <uuid> <var>=<value>;<var>=<value>...\n"
    words = separate_args(args, 2)
    if not words:
        return usage
    channel = node.get_channel(words[0])
    if channel is None:
        return NO_SUCH_CHANNEL + usage
    if len(words) < 2:
        return ""
    pairs = []
    for assignment in separate_string(words[1], ";"):
        name, equals, value = assignment.partition("=")
        if not equals or not name:
            return usage
        pairs.append((name, value))
    for name, value in pairs:
        channel.set_var(name, value)
    return "+OK\n" if pairs else ""


@api_command("uuid_getvar")
async def uuid_getvar(node: Node, args: str) -> str:
    words = separate_args(args)
    if len(words) < 2:
        return "-USAGE: <uuid> <var>\n"
    channel = node.get_channel(words[0])
    if channel is None:
        return NO_SUCH_CHANNEL
    return _get_variable(channel, words[1])


def _get_variable(channel: Channel, name: str) -> str:
    """A variable's value, ``name[i]`` indexing an ``ARRAY::a|:b`` value; ``_undef_`` if unset."""
    index: int | None = None
    if name.endswith("]") and "[" in name:
        name, _, index_text = name[:-1].partition("[")
        index = int(index_text) if index_text.isdigit() else None
    value = channel.variables.get(name)
    if value is None:
        return "_undef_"
    if index is not None and value.startswith("ARRAY::"):
        items = value[len("ARRAY::") :].split("|:")
        return items[index] if index < len(items) else "_undef_"
    return value


@api_command("uuid_park")
async def uuid_park(node: Node, args: str) -> str:
    uuid = args.strip()
    if not uuid:
        return "-USAGE: <uuid>\n"
    channel = node.get_channel(uuid)
    if channel is None:
        return NO_SUCH_CHANNEL
    channel.redirect("park")
    return "+OK\n"


@api_command("uuid_transfer")
async def uuid_transfer(node: Node, args: str) -> str:
    usage = "-USAGE: <uuid> [-bleg|-both] <dest-exten> [<dialplan>] [<context>]\n"
    words = separate_args(args, 5)
    if not 2 <= len(words) <= 5:
        return usage
    channel = node.get_channel(words[0])
    if channel is None:
        return NO_SUCH_CHANNEL
    targets = [channel]
    rest = words[1:]
    if rest[0].startswith("-"):
        leg = rest[0][1:].lower()
        rest = rest[1:]
        partner = channel.bridged_to
        if leg == "bleg":
            if partner is None:
                return "-ERR\n"
            targets = [partner]
        elif leg == "both" and partner is not None:
            targets.append(partner)
    if not rest:
        return usage
    dest, dialplan, context = [*rest, "", ""][:3]
    for target in targets:
        apps.transfer_channel(target, dest, dialplan, context)
    return "+OK\n"


@api_command("uuid_bridge")
async def uuid_bridge(node: Node, args: str) -> str:
    words = separate_args(args)
    if len(words) not in (2, 3):
        return "-USAGE: <uuid> <other_uuid>\n"
    a, b = node.get_channel(words[0]), node.get_channel(words[1])
    if a is None or b is None or a is b:
        return "-ERR Invalid uuid\n"
    bridge.uuid_bridge(a, b)
    return f"+OK {b.uuid}\n"


# -- media --------------------------------------------------------------------


@api_command("uuid_broadcast")
async def uuid_broadcast(node: Node, args: str) -> str:
    words = separate_args(args)
    if len(words) < 2:
        return "-USAGE: <uuid> <path> [aleg|bleg|holdb|both]\n"
    channel = node.get_channel(words[0])
    if channel is None:
        return "-ERR invalid uuid\n"
    path = words[1]
    leg = words[2].lower() if len(words) > 2 else "aleg"
    # switch_ivr_broadcast: "app::args" when the first ':' is doubled; "app!CAUSE" hangs up after.
    colon = path.find(":")
    if colon >= 0 and path[colon : colon + 2] == "::":
        app, arg = path[:colon], path[colon + 2 :]
    else:
        app, arg = "playback", path
    app, bang, cause = app.partition("!")
    hangup: list[tuple[str, str]] = []
    if bang:
        hangup = [
            ("call-command", "execute"),
            ("execute-app-name", "hangup"),
            ("execute-app-arg", cause or "normal_clearing"),
        ]
    # switch_ivr_broadcast queues a COMMAND event; PRIVATE_COMMAND re-fires it whole.
    command = node.events.create("COMMAND", ("switch_ivr_async.c", "switch_ivr_broadcast", 5731))
    command.extend(
        [
            ("call-command", "execute"),
            ("execute-app-name", app),
            ("execute-app-arg", arg),
            ("event-lock", "true"),
            ("lead-frames", "5"),
        ]
    )
    message = command.headers
    targets: list[Channel] = []
    if leg in ("aleg", "both", "holdb"):
        targets.append(channel)
    if leg in ("bleg", "both") and channel.bridged_to is not None:
        targets.append(channel.bridged_to)
    for target in targets:
        target.queue_message(message)
        if hangup:
            target.queue_message(hangup)
    return "+OK Message sent\n"


@api_command("uuid_break")
async def uuid_break(node: Node, args: str) -> str:
    words = args.split()
    if not words:
        return "-USAGE: <uuid> [all]\n"
    channel = node.get_channel(words[0])
    if channel is None:
        return NO_SUCH_CHANNEL
    channel.stop_media()
    return "+OK\n"


@api_command("uuid_send_dtmf")
async def uuid_send_dtmf(node: Node, args: str) -> str:
    words = separate_args(args)
    if len(words) < 2:
        return "-USAGE: <uuid> <dtmf_data>\n"
    channel = node.get_channel(words[0])
    if channel is None:
        return "-ERR Cannot locate session!\n"
    if not channel.send_dtmf(words[1]):
        return "-ERR Operation failed\n"
    return f"+OK {channel.uuid} sent DTMF {words[1]}.\n"


@api_command("uuid_record")
async def uuid_record(node: Node, args: str) -> str:
    usage = "-USAGE: <uuid> [start|stop|mask|unmask] <path> [<limit>] [<recording_vars>]\n"
    words = separate_args(args)
    if len(words) < 3:
        return usage
    channel = node.get_channel(words[0])
    if channel is None:
        return "-ERR Cannot locate session!\n"
    action, path = words[1].lower(), words[2]
    if action == "start":
        limit = int(words[3]) if len(words) > 3 and words[3].isdigit() else 0
        if not apps.start_recording(channel, path, limit):
            return "-ERR Cannot record session!\n"
    elif action == "stop":
        if not apps.stop_recording(channel, path):
            return "-ERR Cannot stop record session!\n"
    elif action not in ("mask", "unmask", "pause", "resume"):
        return usage
    return "+OK Success\n"


# -- fsctl --------------------------------------------------------------------

CTL_SYNTAX = (
    "[recover|send_sighup|hupall|pause [inbound|outbound]|resume [inbound|outbound]|"
    "shutdown [cancel|elegant|asap|now|restart]|sps|sync_clock|sync_clock_when_idle|"
    "reclaim_mem|max_sessions|min_dtmf_duration [num]|max_dtmf_duration [num]|"
    "default_dtmf_duration [num]|min_idle_cpu|loglevel [level]|debug_level [level]]"
)
LOG_LEVELS = ("CONSOLE", "ALERT", "CRIT", "ERR", "WARNING", "NOTICE", "INFO", "DEBUG")


@api_command("fsctl")
async def fsctl(node: Node, args: str) -> str:
    words = args.split()
    if not words:
        return f"-USAGE: {CTL_SYNTAX}\n"
    command, rest = words[0].lower(), words[1:]
    value = _atoi(rest[0]) if rest else 0
    if command == "hupall":
        node.hangup_all("MANAGER_REQUEST")
    elif command in ("pause", "resume"):
        paused = command == "pause"
        which = rest[0].lower() if rest else ""
        if which != "outbound":
            node.paused_inbound = paused
        if which != "inbound":
            node.paused_outbound = paused
    elif command == "shutdown":
        options = {word.lower() for word in rest}
        if "cancel" not in options:
            node.request_shutdown(elegant="elegant" in options)
    elif command == "max_sessions":
        if value > 0:
            node.max_sessions = value
        return f"+OK max sessions: {node.max_sessions}\n"
    elif command == "sps":
        if value > 0:
            node.sessions_per_second = value
        return f"+OK sessions per second: {node.sessions_per_second}\n"
    elif command == "last_sps":
        return f"+OK last sessions per second: {node.stats.last_sps}\n"
    elif command == "loglevel":
        if rest:
            level = _log_level(rest[0])
            if level is None:
                return "-ERR syntax error, log level not set!\n"
            node.log_level = level
        return f"+OK log level: {LOG_LEVELS[node.log_level]} [{node.log_level}]\n"
    elif command == "ready_check":
        return "false" if node.shutting_down else "true"
    elif command == "shutdown_check":
        return "true" if node.shutting_down else "false"
    elif command not in ("send_sighup", "reclaim_mem", "recover", "flush_db_handles"):
        # The 1.10 sources print this without a final newline.
        return f"-ERR INVALID COMMAND\nUSAGE: fsctl {CTL_SYNTAX}"
    return "+OK\n"


def _log_level(text: str) -> int | None:
    if text[:1].isdigit():
        level = _atoi(text)
        return level if 0 <= level < len(LOG_LEVELS) else None
    name = text.upper()
    return LOG_LEVELS.index(name) if name in LOG_LEVELS else None


def _atoi(text: str) -> int:
    digits = ""
    for char in text.strip():
        if not char.isdigit():
            break
        digits += char
    return int(digits) if digits else 0


# -- sofia --------------------------------------------------------------------

RULE = "=" * 97


@api_command("sofia")
async def sofia(node: Node, args: str) -> str:
    words = args.split()
    if not words:
        return "Unknown Command []\n"
    if words[0].lower() != "status":
        return f"Unknown Command [{words[0]}]\n"
    if len(words) >= 3 and words[1].lower() == "profile":
        profile = node.sip_profiles.get(words[2])
        if profile is None:
            return "Invalid Profile!\n"
        return _profile_status(node, words[2])
    # Not in the traces: the summary table's layout is FreeSWITCH's from memory.
    lines = [f"{'Name':>25}\t{'Type':>10}\t{'Data':>40}\t{'State':}", RULE]
    for name, profile in node.sip_profiles.items():
        lines.append(f"{name:>25}\t{'profile':>10}\t{profile.url:>40}\tRUNNING (0)")
    lines += [
        RULE,
        f"{len(node.sip_profiles)} profile{'s' if len(node.sip_profiles) != 1 else ''} 0 aliases",
    ]
    return "\n".join(lines) + "\n"


def _profile_status(node: Node, name: str) -> str:
    profile = node.sip_profiles[name]
    rows = [
        ("Name", name),
        ("Domain Name", "N/A"),
        ("Auto-NAT", "false"),
        ("DBName", f"sofia_reg_{name}"),
        ("Pres Hosts", ""),
        ("Dialplan", profile.dialplan),
        ("Context", profile.context),
        ("Challenge Realm", "auto_to"),
        ("RTP-IP", profile.ip),
        ("SIP-IP", profile.ip),
        ("URL", profile.url),
        ("BIND-URL", f"{profile.url};transport=udp,tcp"),
        ("HOLD-MUSIC", "N/A"),
        ("OUTBOUND-PROXY", "N/A"),
        ("CODECS IN", "PCMU,PCMA"),
        ("CODECS OUT", "PCMU,PCMA"),
        ("TEL-EVENT", "101"),
        ("DTMF-MODE", "rfc2833"),
        ("CNG", "13"),
        ("SESSION-TO", "0"),
        ("MAX-DIALOG", "0"),
        ("MAX-RECV-RPS", "1000"),
        ("NOMEDIA", "false"),
        ("LATE-NEG", "false"),
        ("PROXY-MEDIA", "false"),
        ("AGGRESSIVENAT", "false"),
        ("CALLS-IN", str(profile.calls_in)),
        ("FAILED-CALLS-IN", str(profile.failed_calls_in)),
        ("CALLS-OUT", str(profile.calls_out)),
        ("FAILED-CALLS-OUT", str(profile.failed_calls_out)),
        ("REGISTRATIONS", "0"),
    ]
    return RULE + "\n" + "".join(f"{key:<17}\t{value}\n" for key, value in rows)


# -- scheduled tasks (switch_scheduler) ---------------------------------------

SCHED_SYNTAX = "[+@]<time> <group_name> <command_string>[&]"


@api_command("sched_api")
async def sched_api(node: Node, args: str) -> str:
    """Run an API command later: in ``+<secs>``, every ``@<secs>``, or at an epoch second."""
    bad = f"-ERR Invalid syntax. USAGE: {SCHED_SYNTAX}\n"
    when_text, space, rest = args.partition(" ")
    group, space2, command = rest.partition(" ")
    if not space or not space2:
        return bad
    now = int(node.clock())
    recur = 0
    if when_text.startswith("+"):
        when = now + wire.c_atoi(when_text[1:])
    elif when_text.startswith("@"):
        recur = wire.c_atoi(when_text[1:])
        when = now + recur
    else:
        when = wire.c_atoi(when_text)
    # A trailing '&' only runs the command on a thread of its own.
    command = command[:-1] if command.endswith("&") else command

    async def run(task: Task) -> None:
        name, _, arg = command.partition(" ")
        await node.api_execute(name, arg)
        if recur:
            task.runtime = int(node.clock()) + recur

    task_id = node.scheduler.add(when, "sched_api_function", group, run)
    return f"+OK Added: {task_id}\n"


@api_command("sched_del")
async def sched_del(node: Node, args: str) -> str:
    """Delete scheduled tasks by id, or by group (``sched_hangup`` groups them by channel)."""
    if not args:
        return "-ERR Invalid syntax\n"
    if args.isdigit():
        count = node.scheduler.delete(int(args)) if int(args) > 0 else 0
    else:
        count = node.scheduler.delete_group(args)
    return f"+OK Deleted: {count}\n"


@api_command("sched_hangup")
async def sched_hangup(node: Node, args: str) -> str:
    """Hang a channel up later (ALLOTTED_TIMEOUT by default); ``+0`` hangs it up at once."""
    words = separate_args(args, 4)
    if not words or not words[0]:
        return "-USAGE: [+]<time> <uuid> [<cause>]\n"
    uuid = words[1] if len(words) > 1 else ""
    cause = str2cause(words[2]) if len(words) > 2 else "ALLOTTED_TIMEOUT"
    # FreeSWITCH reads the seconds after the first character, '+' or not.
    seconds = wire.c_atoi(words[0][1:])
    when = int(node.clock()) + seconds if words[0].startswith("+") else wire.c_atoi(words[0])
    channel = node.get_channel(uuid)
    if channel is None:
        return NO_SUCH_CHANNEL
    if seconds == 0:
        channel.hangup(cause)
        return "+OK\n"

    async def run(task: Task) -> None:
        target = node.get_channel(uuid)
        if target is not None:
            target.hangup(cause)

    node.scheduler.add(when, "switch_ivr_schedule_hangup", uuid, run)
    return "+OK\n"


@api_command("sched_transfer")
async def sched_transfer(node: Node, args: str) -> str:
    """Transfer a channel to an extension later."""
    words = separate_args(args, 6)
    if not 2 <= len(words) <= 5 or not words[0]:
        return "-USAGE: [+]<time> <uuid> <extension> [<dialplan>] [<context>]\n"
    uuid = words[1]
    dest, dialplan, context = [*words[2:], "", "", ""][:3]
    when = (
        int(node.clock()) + wire.c_atoi(words[0][1:])
        if words[0].startswith("+")
        else wire.c_atoi(words[0])
    )
    if node.get_channel(uuid) is None:
        return NO_SUCH_CHANNEL

    async def run(task: Task) -> None:
        target = node.get_channel(uuid)
        if target is not None:
            # switch_ivr_session_transfer: no extension means "service".
            apps.transfer_channel(target, dest or "service", dialplan, context)

    node.scheduler.add(when, "switch_ivr_schedule_transfer", uuid, run)
    return "+OK\n"


# -- media adjustments --------------------------------------------------------

AUDIO_SYNTAX = "<uuid> [start [read|write] [mute|level <level>]|stop]"


@api_command("uuid_audio")
async def uuid_audio(node: Node, args: str) -> str:
    """Mute a direction or change its level (a media bug ``audio``), or stop doing so.

    As in mod_commands, an unknown uuid answers both the error and ``+OK``.
    """
    usage = f"-USAGE: {AUDIO_SYNTAX}\n"
    words = separate_args(args, 5)
    if len(words) < 2:
        return usage
    channel = node.get_channel(words[0])
    if channel is None:
        return "-ERR No such channel!\n+OK\n"
    action = words[1].lower()
    if action == "stop":
        _stop_session_audio(channel)
        return "+OK\n"
    if action != "start" or len(words) < 5 or words[2].lower() not in ("read", "write"):
        return usage
    adjustment = words[3].lower()
    if adjustment not in ("mute", "level"):
        return usage
    _session_audio(channel, adjustment, words[2].lower(), wire.c_atoi(words[4]))
    return "+OK\n"


def _session_audio(channel: Channel, adjustment: str, direction: str, level: int) -> None:
    """``switch_ivr_session_audio``: one bug per channel, its settings updated in place."""
    settings = channel.privates.get(bert.SESSION_AUDIO)
    if not isinstance(settings, dict):
        settings = {"read_mute": 0, "write_mute": 0, "read_level": 0, "write_level": 0}
        # Unverified: the bug needs media; an unanswered inbound leg gets early media for it.
        if not channel.has_media and channel.direction == "inbound":
            channel.pre_answer()
        apps.add_media_bug(channel, "audio", adjustment)
        channel.privates[bert.SESSION_AUDIO] = settings
    if adjustment == "mute":
        settings[f"{direction}_mute"] = level
        settings[f"{direction}_level"] = 0
    elif -5 < level < 5:
        settings[f"{direction}_level"] = level


def _stop_session_audio(channel: Channel) -> None:
    if channel.privates.pop(bert.SESSION_AUDIO, None) is None:
        return
    for bug in apps.media_bugs(channel):
        if bug.function == "audio":
            apps.remove_media_bug(channel, bug)


DISPLACE_SYNTAX = "<uuid> [start|stop] <path> [<limit>] [mux]"


@api_command("uuid_displace")
async def uuid_displace(node: Node, args: str) -> str:
    """Play a file in place of (``mux``: mixed with) what the channel sends."""
    usage = f"-USAGE: {DISPLACE_SYNTAX}\n"
    words = separate_args(args, 5)
    if len(words) < 3 or not all(words[:3]):
        return usage
    channel = node.get_channel(words[0])
    if channel is None:
        return "-ERR Cannot locate session!\n"
    action, path = words[1].lower(), words[2]
    if action == "start":
        limit = wire.c_atoi(words[3]) if len(words) > 3 else 0
        flags = words[4] if len(words) > 4 else ""
        if not _displace(channel, path, limit, loop="l" in flags):
            return "-ERR Cannot displace session!\n"
        return "+OK Success\n"
    if action == "stop":
        bug = _displace_bug(channel, path)
        if bug is None:
            return "-ERR Cannot stop displace session!\n"
        apps.remove_media_bug(channel, bug)
        return "+OK Success\n"
    return usage


def _displace(channel: Channel, path: str, limit: int, *, loop: bool) -> bool:
    """``switch_ivr_displace_session``: a ``displace`` bug until the file or the limit ends."""
    if channel.direction == "inbound" and not channel.has_media:
        channel.pre_answer()
    clip = media.clip_for(path)
    if not channel.has_media or clip is None or _displace_bug(channel, path) is not None:
        return False
    bug = apps.add_media_bug(channel, "displace", path)
    seconds = media.FOREVER if loop else clip.seconds
    if limit > 0 and (seconds == media.FOREVER or limit < seconds):
        seconds = limit
    if seconds != media.FOREVER:
        bug.expiry = asyncio.get_running_loop().call_later(
            seconds, apps.remove_media_bug, channel, bug
        )
    return True


def _displace_bug(channel: Channel, path: str) -> apps.MediaBug | None:
    return next(
        (b for b in apps.media_bugs(channel) if b.function == "displace" and b.target == path),
        None,
    )


@api_command("uuid_flush_dtmf")
async def uuid_flush_dtmf(node: Node, args: str) -> str:
    """Drop the DTMF the channel received and has not read yet."""
    channel = node.get_channel(args) if args else None
    if channel is None:
        return "-ERR no such session\n"
    channel.flush_dtmf()
    return "+OK\n"


# -- hold, media path, phone events (session messages to the endpoint) -------

OPERATION_FAILED = "-ERR Operation Failed\n"
SUCCESS = "+OK Success\n"
# Unverified: the line numbers of these sites in 1.10.12.
_HOLD_AT: CallingSite = ("switch_ivr.c", "switch_ivr_hold", 1593)
_UNHOLD_AT: CallingSite = ("switch_ivr.c", "switch_ivr_unhold", 1664)
_MARK_HOLD_AT: CallingSite = ("switch_channel.c", "switch_channel_mark_hold", 5290)
_REFER_ERROR_AT: CallingSite = ("sofia.c", "sofia_handle_sip_i_refer", 9383)


@api_command("uuid_hold")
async def uuid_hold(node: Node, args: str) -> str:
    """``uuid_hold [off|toggle] <uuid> [<display>]``: put a call on hold, or take it off.

    Like ``switch_ivr_hold_uuid``, any uuid succeeds, an unknown one doing nothing.
    """
    words = separate_args(args, 4)
    if not words or not words[0]:
        return "-USAGE: [off|toggle] <uuid> [<display>]\n" + OPERATION_FAILED
    mode = words[0].lower()
    if mode in ("off", "toggle"):
        uuid = words[1] if len(words) > 1 else ""
    else:
        mode, uuid = "on", words[0]
    channel = node.get_channel(uuid)
    if channel is not None:
        if mode == "off":
            unhold(channel)
        elif mode != "toggle" or channel.callstate == "ACTIVE":
            hold(channel)
        elif channel.callstate == "HELD":
            unhold(channel)
    return SUCCESS


def hold(channel: Channel) -> None:
    """``switch_ivr_hold``: a SIP leg holds its far end (``a=sendonly``), then CHANNEL_HOLD."""
    channel.flags |= {"CF_HOLD", "CF_SUSPEND"}
    if isinstance(channel, SofiaChannel):
        _set_leg_holding(channel, True)
        _reinvite_hold(channel, True)
    channel.fire("CHANNEL_HOLD", _HOLD_AT)


def unhold(channel: Channel) -> None:
    """``switch_ivr_unhold``: back to ``a=sendrecv``, then CHANNEL_UNHOLD (even if not held)."""
    channel.flags -= {"CF_HOLD", "CF_SUSPEND"}
    if isinstance(channel, SofiaChannel):
        _set_leg_holding(channel, False)
        _reinvite_hold(channel, False)
    channel.fire("CHANNEL_UNHOLD", _UNHOLD_AT)


def _set_leg_holding(channel: Channel, on: bool) -> None:
    """CF_LEG_HOLDING: an answered leg's call state becomes HELD, then UNHELD."""
    holding = "CF_LEG_HOLDING" in channel.flags
    times = channel.profile.times if channel.profile else None
    if on and not holding:
        channel.flags.add("CF_LEG_HOLDING")
        if channel.answered:
            if times:
                times.last_hold = channel.now_us()
            channel.set_callstate("HELD")
    elif not on and holding:
        channel.flags.discard("CF_LEG_HOLDING")
        if channel.answered:
            if times and times.last_hold:
                times.hold_accum += channel.now_us() - times.last_hold
            channel.set_callstate("UNHELD")


def _reinvite_hold(channel: SofiaChannel, on: bool) -> None:
    """The far end reads the re-INVITE's direction (``switch_core_media_toggle_hold``)."""
    dialog = channel.dialog
    if dialog is None or not channel.answered:
        return
    far = dialog.peer_of(channel)

    def toggle() -> None:
        if on and far.answered and "CF_PROTO_HOLD" not in far.flags:
            far.flags.add("CF_PROTO_HOLD")
            _mark_hold(far, True)
        elif not on and "CF_PROTO_HOLD" in far.flags:
            far.flags.discard("CF_PROTO_HOLD")
            _mark_hold(far, False)

    dialog.send(far, toggle, "INVITE")


def _mark_hold(channel: Channel, on: bool) -> None:
    """``switch_channel_mark_hold``: the call state, then CHANNEL_HOLD or CHANNEL_UNHOLD."""
    if on == ("CF_LEG_HOLDING" in channel.flags):
        return
    _set_leg_holding(channel, on)
    channel.fire("CHANNEL_HOLD" if on else "CHANNEL_UNHOLD", _MARK_HOLD_AT)


@api_command("uuid_media")
async def uuid_media(node: Node, args: str) -> str:
    """``uuid_media [off] <uuid>``: take the media path out of FreeSWITCH (bypass), or back.

    ``off`` succeeds on any existing channel and marks it (and its bridge
    partner) CF_PROXY_MODE; bringing media back succeeds only on a channel in
    that mode. The re-INVITEs carry no visible event; the re-bridging of a
    bridged pair is not simulated.
    """
    words = separate_args(args, 4)
    if not words or not words[0]:
        return "-USAGE: [off] <uuid>\n" + OPERATION_FAILED
    bypass = words[0].lower() == "off"
    uuid = (words[1] if len(words) > 1 else "") if bypass else words[0]
    channel = node.get_channel(uuid)
    if channel is None:
        return OPERATION_FAILED
    legs = [channel] if channel.bridged_to is None else [channel, channel.bridged_to]
    if bypass:
        for leg in legs:
            leg.flags.add("CF_PROXY_MODE")
        return SUCCESS
    if "CF_PROXY_MODE" not in channel.flags:
        return OPERATION_FAILED
    for leg in legs:
        leg.flags.discard("CF_PROXY_MODE")
    return SUCCESS


@api_command("uuid_phone_event")
async def uuid_phone_event(node: Node, args: str) -> str:
    """``uuid_phone_event <uuid> [talk|hold]``: a SIP NOTIFY to the phone (nothing else changes)."""
    words = separate_args(args, 2)
    if not words:
        return "-USAGE: <uuid>\n" + OPERATION_FAILED
    return SUCCESS if node.get_channel(words[0]) is not None else OPERATION_FAILED


# -- deflect (SIP REFER) ------------------------------------------------------

#: How long mod_sofia waits for the NOTIFY that says how the REFER went.
DEFLECT_REPLY_TIMEOUT = 10.0


@api_command("uuid_deflect")
async def uuid_deflect(node: Node, args: str) -> str:
    """Send a REFER to ``<uri>`` (``sip:`` optional), then hang up with BLIND_TRANSFER.

    The answer is ``+OK:`` and the far end's NOTIFY body (``SIP/2.0 200 OK``
    when it transferred its bridged partner, ``SIP/2.0 403 Forbidden`` when
    it had none), or ``no reply``.
    """
    uuid, space, uri = args.partition(" ")
    if not uuid or not space or not uri:
        return "-USAGE: <uuid> <uri>\n"
    channel = node.get_channel(uuid)
    if channel is None:
        return f"-ERR No such channel {uuid}!\n"
    reply = await deflect(channel, uri)
    # A leg that cannot deflect leaves the reply unset, which C prints as "(null)".
    return f"+OK:{'(null)' if reply is None else reply}\n"


@apps.application("deflect")
async def deflect_application(channel: Channel, arg: str) -> None:
    """mod_dptools ``deflect``: the same REFER as ``uuid_deflect``."""
    await deflect(channel, arg)


async def deflect(channel: Channel, uri: str) -> str | None:
    """SWITCH_MESSAGE_INDICATE_DEFLECT: what the leg answers (None if it ignores it)."""
    if not isinstance(channel, SofiaChannel):
        return None
    refer_to = uri if "sip:" in uri else f"sip:{uri}@{channel.sip_profile.ip}"
    loop = asyncio.get_running_loop()
    notified: asyncio.Future[str] = loop.create_future()
    dialog = channel.dialog
    if dialog is not None:
        far = dialog.peer_of(channel)

        def on_notify(payload: str) -> None:
            channel.set_var("sip_refer_reply", payload)
            if payload.split(" ")[1:2] == ["200"]:
                channel.hangup("BLIND_TRANSFER")
            if not notified.done():
                notified.set_result(payload)

        def on_refer() -> None:
            payload = _blind_transfer(far, refer_to, channel)
            dialog.send(channel, lambda: on_notify(payload), "NOTIFY")

        dialog.send(far, on_refer, "REFER")
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(notified, DEFLECT_REPLY_TIMEOUT)
    reply = channel.variables.get("sip_refer_reply") or "no reply"
    channel.hangup("BLIND_TRANSFER")
    return reply


def _blind_transfer(channel: Channel, refer_to: str, referrer: Channel) -> str:
    """A REFER reaches ``channel``: its partner goes to the Refer-To user. The NOTIFY body."""
    exten = refer_to.split(":", 1)[1].split("@", 1)[0]
    partner = channel.bridged_to
    channel.set_vars(
        [
            ("transfer_to", f"blind:{partner.uuid if partner is not None else exten}"),
            ("transfer_destination", f"blind:{exten}"),
        ]
    )
    if partner is not None and partner.is_up:
        referrer_profile = referrer.profile
        if referrer.direction == "inbound":
            from_user = referrer.variables.get("sip_to_user", "")
        else:
            from_user = referrer_profile.caller_id_number if referrer_profile else ""
        channel.set_vars(
            [("transfer_fallback_extension", from_user), ("endpoint_disposition", "BLIND_TRANSFER")]
        )
        apps.transfer_channel(partner, exten)
        return "SIP/2.0 200 OK\r\n"
    channel.fire(
        "CUSTOM",
        _REFER_ERROR_AT,
        subclass="sofia::error",
        before=[
            ("Error-Type", "blind_transfer"),
            ("Transfer-Exten", exten),
            ("Full-Refer-To", f"<{refer_to}>"),
        ],
    )
    channel.set_var("endpoint_disposition", "ATTENDED_TRANSFER_ERROR")
    return "SIP/2.0 403 Forbidden\r\n"
